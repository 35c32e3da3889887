"""The emulator's own event rules, as Cloud Eye's current documentation states them."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from emulator import rules

NOW = 1_700_000_000_000
EMULATOR_DIR = Path(__file__).resolve().parents[1] / "emulator"


def event(**detail: Any) -> dict[str, Any]:
    return {"event_name": "DiskFull", "event_source": "ops.Storage", "time": NOW - 1_000, "detail": detail}


def problems(item: Any, now: int = NOW) -> list[str]:
    return [str(problem) for problem in rules.check_event(item, now)]


@pytest.mark.parametrize(
    "detail",
    [
        {"resource_name": "web-01.example.com"},
        {"resource_name": "db@prod"},
        {"resource_name": "my vm"},
        {"resource_name": "数据库"},
        {"resource_name": "订单 service_02"},
        {"resource_name": "r" * 128},
        {"event_user": ""},
        {"event_user": "ops/alerting team_1-a"},
        {"event_user": "u" * 64},
        {"group_id": "rg15221211517051YWWkEnVd"},
        {"resource_id": "6a69bf28-ee62-49f3-9785-845dacd799ec:vol_1"},
        {"content": "", "event_state": "incident", "event_level": "Info"},
        {"content": "c" * 4096, "event_type": "EVENT.CUSTOM", "sub_event_type": "SUB_EVENT.PLAN"},
        {"dimensions": [{"name": f"d{i}", "value": "v" * 256} for i in range(4)]},
        {"dimensions": []},
    ],
)
def test_values_the_current_documentation_allows_pass(detail: dict[str, Any]) -> None:
    assert problems(event(**detail)) == []


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ({"resource_name": ""}, "detail.resource_name: must have 1-128 letters"),
        ({"resource_name": "r" * 129}, "detail.resource_name: must have 1-128 letters"),
        ({"resource_name": "web#01"}, "detail.resource_name: must have 1-128 letters"),
        ({"resource_name": "naïve"}, "detail.resource_name: must have 1-128 letters"),
        ({"event_user": "u" * 65}, "detail.event_user: must have 0-64"),
        ({"event_user": "a@b"}, "detail.event_user: must have 0-64"),
        ({"group_id": "rg1522121151705"}, "detail.group_id: must have exactly 24 characters, it has 15"),
        ({"group_id": ""}, "detail.group_id: must have exactly 24 characters, it has 0"),
        ({"group_id": "g" * 5000}, "detail.group_id: must have exactly 24 characters, it has 5000"),
        ({"resource_id": "a b"}, "detail.resource_id: must have 1-128 letters, digits, '_', '-' or ':'"),
        ({"content": "c" * 4097}, "detail.content: must have at most 4096 characters, it has 4097"),
        ({"event_state": "fine"}, "detail.event_state: must be one of ['normal', 'warning', 'incident']"),
        (
            {"event_level": "major"},
            "detail.event_level: must be one of ['Critical', 'Major', 'Minor', 'Info']",
        ),
        ({"event_type": "EVENT.SYS"}, "detail.event_type: EVENT.SYS is for Cloud Eye's own events"),
        ({"event_type": "custom"}, "detail.event_type: must be EVENT.CUSTOM"),
        ({"sub_event_type": "SUB_EVENT.X"}, "detail.sub_event_type: must be one of"),
        ({"dimensions": [{"name": "d", "value": "v"}] * 5}, "detail.dimensions: must hold 0 to 4 dimensions"),
        (
            {"dimensions": [{"name": "_d", "value": "v"}]},
            "detail.dimensions[0].name: must start with a letter",
        ),
        ({"severity": "high"}, "detail.severity: is not a field Cloud Eye accepts"),
        ({"content": 5}, "detail.content: must be a string, got a JSON number"),
        ({"content": "\ud800"}, "detail.content: must be valid Unicode text"),
    ],
)
def test_values_the_documentation_refuses_are_named(detail: dict[str, Any], expected: str) -> None:
    found = problems(event(**detail))
    assert len(found) == 1 and found[0].startswith(expected), found


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"event_name": "1st"}, "event_name: must start with a letter"),
        ({"event_name": "e" * 65}, "event_name: must start with a letter and have 1-64"),
        ({"event_source": "ops"}, "event_source: must be 'service.item'"),
        ({"event_source": "op.Storage"}, "event_source: must be 'service.item'"),
        ({"time": NOW - 3_600_000 + 9_999}, "time: is 3590 s old; at most 1 hour (minus 10 s)"),
        ({"time": NOW + 600_000 - 9_999}, "time: is 590 s ahead; at most 10 minutes (minus 10 s)"),
        ({"time": 1_700_000_000}, "time: 1700000000 looks like seconds"),
        ({"time": "1700000000000"}, "time: must be a whole number"),
        ({"time": True}, "time: must be a whole number"),
        ({"time": 1.5}, "time: must be a whole number"),
        ({"detail": []}, "detail: must be an object, got a JSON array"),
        ({"extra": 1}, "extra: is not a field Cloud Eye accepts"),
    ],
)
def test_event_level_rules(changes: dict[str, Any], expected: str) -> None:
    found = problems({**event(), **changes})
    assert len(found) == 1 and found[0].startswith(expected), found


def test_the_time_window_edges_are_inside() -> None:
    assert problems({**event(), "time": NOW - 3_600_000 + 10_000}) == []
    assert problems({**event(), "time": NOW + 600_000 - 10_000}) == []
    assert problems({**event(), "time": float(NOW)}) == []


def test_missing_fields_are_each_named() -> None:
    assert problems({}) == [
        "detail: is required",
        "event_name: is required",
        "event_source: is required",
        "time: is required",
    ]
    assert problems("DiskFull") == ["(event): must be an object, got a JSON string"]


def test_no_emulator_module_imports_the_forwarder() -> None:
    imported = set()
    for source in EMULATOR_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    assert "emulator" in imported  # the scan does see imports
    assert "forwarder" not in imported and "function" not in imported
