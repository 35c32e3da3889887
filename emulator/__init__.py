"""A local stand-in for Huawei Cloud Cloud Eye's event API, built the moto way.

``backend`` holds the state and the rules (no HTTP), ``auth`` decides who may call, ``errors``
carries Cloud Eye's and its API gateway's codes, ``page`` renders the read-only HTML view, and
``main`` is the thin functions-framework layer (target ``cloudeye``).
"""
