"""A warm instance freezes its long-lived objects once (``gc.freeze``); the collector stays on.

Each check runs in a fresh interpreter: freezing is a process-wide, one-time act.
"""

from __future__ import annotations

from tests.support.fresh_process import run_fresh


def test_nothing_is_frozen_before_the_validator_is_loaded_and_then_once() -> None:
    result = run_fresh(
        "import gc, json\n"
        "from forwarder import collector\n"
        "collector.freeze_when_warm()\n"
        "cold = gc.get_freeze_count()\n"
        "from forwarder import events\n"
        "events.event_adapter()\n"
        "collector.freeze_when_warm()\n"
        "warm = gc.get_freeze_count()\n"
        "more = [[] for _ in range(1000)]\n"
        "collector.freeze_when_warm()\n"
        "print(json.dumps({'cold': cold, 'warm': warm, 'again': gc.get_freeze_count(),"
        " 'enabled': gc.isenabled()}))\n"
    )
    assert result["cold"] == 0
    assert result["warm"] > 10_000  # pydantic, the validator, the modules
    assert result["again"] == result["warm"]  # once per process
    assert result["enabled"] is True  # the collector stays on for everything else


def test_the_handler_freezes_at_the_start_of_the_second_invocation_not_the_cold_one() -> None:
    result = run_fresh(
        "import gc, json\n"
        "import index\n"
        "event = {'httpMethod': 'POST', 'headers': {}, 'queryStringParameters': {'dry_run': 'true'},\n"
        "         'body': json.dumps([{'event_name': 'a', 'event_source': 'abc.def', 'time': 1,"
        " 'detail': {}}])}\n"
        "index.handler(event)\n"
        "first = gc.get_freeze_count()\n"
        "index.handler(event)\n"
        "print(json.dumps({'first': first, 'second': gc.get_freeze_count()}))\n"
    )
    assert result["first"] == 0
    assert result["second"] > 10_000
