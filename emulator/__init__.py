"""A local stand-in for Huawei Cloud Cloud Eye's event and metric-data API, built the moto way.

It shares no code with the forwarder, so it checks the forwarder rather than agreeing with it:

- ``rules``: what Cloud Eye accepts in reported events and custom metric data (its current
  documentation), as plain checks that name the field and the reason;
- ``signature`` and ``auth``: who may call (``SDK-HMAC-SHA256`` signatures, tokens);
- ``models``: the state (events, metric data, resource groups, counters, the clock);
- ``faults``: misbehaviour on demand (queued faults, latency, rate limits);
- ``responses``: request handling and Cloud Eye-shaped answers; ``urls``: the route table;
- ``errors``: Cloud Eye's and its API gateway's error codes; ``page``: the HTML view;
- ``main``: the functions-framework entry point (target ``cloudeye``).
"""
