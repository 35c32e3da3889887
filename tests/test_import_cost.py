"""Cold start: `import forwarder` and `import index` stay cheap (no pydantic, no web framework),
and the validator is built once per process.

Each check runs in a fresh interpreter so nothing imported by other tests hides a regression.
What it takes in time is a benchmark figure, not a test.
"""

from __future__ import annotations

from tests.support.fresh_process import run_fresh


def test_import_forwarder_does_not_load_pydantic() -> None:
    result = run_fresh(
        "import json, sys\n"
        "import forwarder\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pydantic', 'pydantic_core', 'typing_extensions', 'http', 'ssl', 'huaweicloudsdkcore'))\n"
        "mine = sorted(m for m in sys.modules if m.startswith('forwarder.'))\n"
        "print(json.dumps({'heavy': heavy, 'mine': mine}))\n"
    )
    assert result["heavy"] == []
    assert result["mine"] == []  # the package __init__ imports none of its modules


def test_settings_do_not_load_pydantic() -> None:
    result = run_fresh(
        "import json, sys\n"
        "from forwarder import Settings\n"
        "Settings.from_env(environ={'CLOUDEYE_REGION': 'eu-de', 'HUAWEICLOUD_SDK_PROJECT_ID': 'p'})\n"
        "print(json.dumps({'pydantic': 'pydantic' in sys.modules}))\n"
    )
    assert result["pydantic"] is False


def test_pydantic_loads_on_first_use() -> None:
    # The counterpart of the test above: proves the sys.modules check can see pydantic.
    result = run_fresh(
        "import json, sys\n"
        "import forwarder\n"
        "forwarder.validate_events([])\n"
        "print(json.dumps({'pydantic': 'pydantic' in sys.modules}))\n"
    )
    assert result["pydantic"] is True


def test_the_validator_is_built_once_per_process() -> None:
    result = run_fresh(
        "import json\n"
        "import forwarder\n"
        "from forwarder.events import event_adapter\n"
        "item = {'event_name': 'a', 'event_source': 'abc.def', 'time': 1, 'detail': {}}\n"
        "forwarder.validate_events([item])\n"
        "print(json.dumps({'same': event_adapter() is event_adapter(),"
        " 'cached': event_adapter.cache_info().hits >= 1}))\n"
    )
    assert result == {"same": True, "cached": True}


def test_import_index_loads_the_standard_library_only() -> None:
    # The FunctionGraph entry and its adapter layer: no pydantic, no web framework, nothing that
    # only a body or a queue batch needs (the item walker, the pipeline, the HTTP client).
    result = run_fresh(
        "import json, sys\n"
        "import index\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pydantic', 'pydantic_core', 'flask', 'werkzeug', 'functions_framework', 'ssl')"
        " or m in ('forwarder.json_items', 'forwarder.pipeline', 'forwarder.client'))\n"
        "print(json.dumps({'loaded': loaded, 'entry': 'forwarder.entry' in sys.modules}))\n"
    )
    assert result == {"loaded": [], "entry": True}
