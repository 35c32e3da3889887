"""Resource groups in the served emulator: an event naming an unknown group refuses its request."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.emulator_server import EmulatorServer
from tests.support.entry_helpers import short_event
from tests.support.environ import environment

KNOWN = "rg15221211517051YWWkEnVd"
OTHER = "rg00000000000000000000ab"


def test_no_group_is_known_until_one_is_configured(cloudeye: EmulatorServer) -> None:
    assert cloudeye.resource_groups() == []
    refused = cloudeye.post_events([short_event(group_id=KNOWN)])
    assert refused.status == 400
    assert refused.json()["error_code"] == "ces.0014"
    assert KNOWN in refused.json()["error_msg"]
    assert cloudeye.stored_events() == []


def test_one_unknown_group_refuses_the_whole_request_and_names_it(cloudeye: EmulatorServer) -> None:
    assert cloudeye.set_resource_groups([KNOWN]) == [KNOWN]
    batch = [short_event("First", group_id=KNOWN), short_event("Plain"), short_event("Third", group_id=OTHER)]
    refused = cloudeye.post_events(batch)
    assert refused.status == 400
    body = refused.json()
    assert set(body) == {"error_code", "error_msg"}
    assert "event [2] detail.group_id" in body["error_msg"] and OTHER in body["error_msg"]
    assert KNOWN not in body["error_msg"]
    assert cloudeye.stored_events() == []
    accepted = cloudeye.post_events(batch[:2])
    assert accepted.status == 201
    assert [s["event"]["event_name"] for s in cloudeye.stored_events()] == ["First", "Plain"]


def test_put_replaces_the_groups_and_reset_forgets_them(cloudeye: EmulatorServer) -> None:
    cloudeye.set_resource_groups([KNOWN, OTHER])
    assert cloudeye.set_resource_groups([OTHER]) == [OTHER]
    assert cloudeye.post_events([short_event(group_id=KNOWN)]).status == 400
    cloudeye.reset()
    assert cloudeye.resource_groups() == []


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        ({"group_ids": ["short"]}, "group_ids[0]"),
        ({"group_ids": [KNOWN, 24]}, "group_ids[1]"),
        ({"group_ids": KNOWN}, "list"),
        ({"groups": [KNOWN]}, "group_ids"),
    ],
)
def test_a_bad_group_list_is_refused_and_changes_nothing(
    cloudeye: EmulatorServer, payload: Any, named: str
) -> None:
    cloudeye.set_resource_groups([KNOWN])
    reply = cloudeye.request("PUT", "/_emulator/resource-groups", body=json.dumps(payload).encode())
    assert reply.status == 400 and named in reply.json()["error_msg"]
    assert cloudeye.resource_groups() == [KNOWN]


def test_the_environment_variable_names_the_groups_a_reset_returns_to(cloudeye: EmulatorServer) -> None:
    with environment({"EMULATOR_RESOURCE_GROUPS": f" {KNOWN} ,{OTHER},"}):
        cloudeye.reset()
        assert cloudeye.resource_groups() == sorted([KNOWN, OTHER])
        assert cloudeye.post_events([short_event(group_id=OTHER)]).status == 201
    cloudeye.reset()
    assert cloudeye.resource_groups() == []
