"""The emulator's backend on its own (no HTTP): storage, ids, the duplicate rule, queries, faults."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest

from emulator import errors
from emulator.faults import Fault, parse_fault_plan
from emulator.models import Backend

NOW = 1_700_000_000_000
PROJECT = "project-a"
ID_SHAPE = re.compile(r"^ev\d{13}[A-Za-z0-9]{10}$")


def event(name: str = "DiskFull", *, time: int = NOW - 1_000, source: str = "ops.Storage", **detail: Any):
    return {
        "event_name": name,
        "event_source": source,
        "time": time,
        "detail": {"event_type": "EVENT.CUSTOM", "resource_id": "vol-1", **detail},
    }


@pytest.fixture
def backend() -> Backend:
    fresh = Backend()
    fresh.set_clock(lambda: NOW)
    return fresh


# --- storing -----------------------------------------------------------------------------------


def test_put_events_answers_ids_in_input_order_with_cloud_eye_shape(backend: Backend) -> None:
    answer = backend.put_events(PROJECT, [event("First"), event("Second"), event("Third")])

    assert [a["event_name"] for a in answer] == ["First", "Second", "Third"]
    assert all(ID_SHAPE.match(a["event_id"]) for a in answer)
    assert all(a["event_id"].startswith(f"ev{NOW}") for a in answer)
    assert len({a["event_id"] for a in answer}) == 3
    assert [s.event["event_name"] for s in backend.stored_events(PROJECT)] == ["First", "Second", "Third"]


def test_repost_of_the_same_event_returns_the_same_id_and_stores_nothing(backend: Backend) -> None:
    first = backend.put_events(PROJECT, [event()])
    again = backend.put_events(PROJECT, [event(content="a different text is not part of the key")])

    assert again == first
    assert len(backend.stored_events()) == 1
    assert backend.stats()["duplicates"] == 1


@pytest.mark.parametrize(
    "change",
    [
        {"time": NOW - 999},
        {"event_source": "ops.Other"},
        {"event_name": "DiskFuller"},
        {"detail": {"event_type": "EVENT.CUSTOM", "resource_id": "vol-1", "event_state": "warning"}},
        {"detail": {"event_type": "EVENT.CUSTOM", "resource_id": "vol-1", "event_level": "Major"}},
        {"detail": {"event_type": "EVENT.CUSTOM", "resource_id": "vol-1", "event_user": "ops"}},
        {"detail": {"event_type": "EVENT.CUSTOM", "resource_id": "vol-2"}},
        {"detail": {"event_type": "EVENT.CUSTOM", "resource_id": "vol-1", "resource_name": "disk"}},
    ],
    ids=["time", "source", "name", "state", "level", "user", "resource_id", "resource_name"],
)
def test_any_duplicate_key_field_makes_a_new_event(backend: Backend, change: dict[str, Any]) -> None:
    first = backend.put_events(PROJECT, [event()])
    second = backend.put_events(PROJECT, [{**event(), **change}])

    assert second[0]["event_id"] != first[0]["event_id"]
    assert len(backend.stored_events()) == 2


def test_missing_event_type_counts_as_custom_for_duplicates(backend: Backend) -> None:
    explicit = backend.put_events(PROJECT, [event()])
    implicit = {**event(), "detail": {"resource_id": "vol-1"}}

    assert backend.put_events(PROJECT, [implicit]) == explicit


def test_duplicates_inside_one_post_share_one_id(backend: Backend) -> None:
    answer = backend.put_events(PROJECT, [event(), event(), event("Other")])

    assert answer[0]["event_id"] == answer[1]["event_id"] != answer[2]["event_id"]
    assert len(backend.stored_events()) == 2


def test_projects_are_separate(backend: Backend) -> None:
    a = backend.put_events("project-a", [event()])
    b = backend.put_events("project-b", [event()])

    assert a != b
    assert len(backend.stored_events("project-a")) == len(backend.stored_events("project-b")) == 1
    assert backend.list_events("project-c")["meta_data"]["total"] == 0


def test_one_invalid_event_refuses_the_whole_post_naming_index_and_field(backend: Backend) -> None:
    items = [event("Good"), event("Bad", event_level="Serious"), {"event_name": "x"}]

    with pytest.raises(errors.InvalidBody) as caught:
        backend.put_events(PROJECT, items)

    message = caught.value.message
    assert message.startswith("Some content in message body is not correct:")
    assert "event [1] detail.event_level" in message
    assert "event [2] event_source: is required" in message
    assert caught.value.error_code == "ces.0014" and caught.value.status == 400
    assert backend.stored_events() == []


@pytest.mark.parametrize(
    ("items", "words"),
    [
        ([], "1 to 100 events, this one holds 0"),
        ([event(time=NOW - i) for i in range(101)], "1 to 100 events, this one holds 101"),
        ({"events": []}, "must be a JSON array of events, got a JSON object"),
        ("text", "got a JSON string"),
    ],
    ids=["none", "101", "object", "string"],
)
def test_batch_shape_rules(backend: Backend, items: Any, words: str) -> None:
    with pytest.raises(errors.InvalidBody, match=re.escape(words)):
        backend.put_events(PROJECT, items)
    assert backend.stored_events() == []


def test_time_window_follows_the_injected_clock(backend: Backend) -> None:
    old = event(time=NOW - 2 * 3_600_000)

    with pytest.raises(errors.InvalidBody, match="s old; at most 1 hour"):
        backend.put_events(PROJECT, [old])

    backend.set_clock(lambda: NOW - 2 * 3_600_000)
    assert backend.put_events(PROJECT, [old])[0]["event_id"].startswith(f"ev{NOW - 2 * 3_600_000}")


def test_many_threads_store_each_event_once(backend: Backend) -> None:
    def post(worker: int) -> None:
        for i in range(20):
            backend.put_events(PROJECT, [event(f"W{worker}E{i}"), event("Shared", time=NOW - i)])

    threads = [threading.Thread(target=post, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stored = backend.stored_events(PROJECT)
    assert len(stored) == 8 * 20 + 20
    assert len({s.event_id for s in stored}) == len(stored)
    assert backend.stats()["duplicates"] == 7 * 20


def test_reset_empties_everything(backend: Backend) -> None:
    backend.put_events(PROJECT, [event()])
    backend.faults.configure({"status": 503, "count": 3, "max_concurrent": 2})
    backend.record_response(status=201, method="POST", path="/x", request_id="r")

    backend.reset()

    assert backend.stored_events() == []
    assert backend.faults.to_dict()["faults"] == [] and backend.faults.to_dict()["max_concurrent"] is None
    assert backend.stats()["responses"] == {} and backend.stats()["requests"] == 0
    assert backend.request_log() == []


# --- queries -----------------------------------------------------------------------------------


def _fill(backend: Backend) -> None:
    backend.put_events(
        PROJECT,
        [
            event("DiskFull", time=NOW - 5_000, event_user="alice", event_level="Major"),
            event("DiskFull", time=NOW - 3_000, source="ops.Disks", event_user="bob", event_level="Minor"),
            event("DiskFull", time=NOW - 1_000, event_user="alice", event_level="Major", resource_id="v2"),
            event("CpuHot", time=NOW - 4_000, sub_event_type="SUB_EVENT.OPS"),
        ],
    )


def test_list_events_groups_by_name_latest_first(backend: Backend) -> None:
    _fill(backend)

    answer = backend.list_events(PROJECT, event_type="EVENT.CUSTOM")

    assert answer["meta_data"] == {"total": 2}
    disk, cpu = answer["events"]
    assert disk == {
        "event_name": "DiskFull",
        "event_type": "EVENT.CUSTOM",
        "sub_event_type": "SUB_EVENT.CUSTOM",
        "event_count": 3,
        "latest_occur_time": NOW - 1_000,
        "latest_event_source": "ops.Storage",
    }
    assert cpu["event_name"] == "CpuHot" and cpu["sub_event_type"] == "SUB_EVENT.OPS"


def test_list_events_filters_and_pages(backend: Backend) -> None:
    _fill(backend)

    window = backend.list_events(PROJECT, from_ms=NOW - 4_500, to_ms=NOW - 2_000)
    by_name = backend.list_events(PROJECT, event_name="CpuHot")
    second_page = backend.list_events(PROJECT, start=1, limit=1)

    assert {e["event_name"]: e["event_count"] for e in window["events"]} == {"DiskFull": 1, "CpuHot": 1}
    assert [e["event_name"] for e in by_name["events"]] == ["CpuHot"]
    assert [e["event_name"] for e in second_page["events"]] == ["CpuHot"]
    assert second_page["meta_data"]["total"] == 2
    assert backend.list_events(PROJECT, event_type="EVENT.SYS")["events"] == []
    assert backend.list_events(PROJECT, sub_event_type="SUB_EVENT.OPS")["meta_data"]["total"] == 1


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"limit": 0}, "limit must be between 1 and 100"),
        ({"limit": 101}, "limit must be between 1 and 100"),
        ({"start": -1}, "start must be 0 or more"),
        ({"from_ms": NOW, "to_ms": NOW}, "must be smaller than to"),
        ({"event_type": "EVENT.OTHER"}, "event_type must be one of"),
        ({"sub_event_type": "SUB_EVENT.X"}, "sub_event_type must be one of"),
    ],
)
def test_list_events_refuses_bad_parameters(backend: Backend, query: dict[str, Any], words: str) -> None:
    with pytest.raises(errors.InvalidQuery, match=words) as caught:
        backend.list_events(PROJECT, **query)
    assert caught.value.error_code == "ces.0013"


def test_list_event_detail_returns_matching_events_latest_first(backend: Backend) -> None:
    _fill(backend)

    answer = backend.list_event_detail(PROJECT, "DiskFull", event_type="EVENT.CUSTOM")

    assert answer["meta_data"] == {"total": 3}
    assert [info["time"] for info in answer["event_info"]] == [NOW - 1_000, NOW - 3_000, NOW - 5_000]
    assert answer["event_users"] == ["alice", "bob"]
    assert answer["event_sources"] == ["ops.Storage", "ops.Disks"]
    first = answer["event_info"][0]
    assert set(first) == {"event_name", "event_source", "time", "detail", "event_id"}
    assert first["detail"]["resource_id"] == "v2"


def test_list_event_detail_filters_and_pages(backend: Backend) -> None:
    _fill(backend)

    def total(**query: Any) -> int:
        return backend.list_event_detail(PROJECT, "DiskFull", event_type="EVENT.CUSTOM", **query)[
            "meta_data"
        ]["total"]

    assert total(event_user="alice") == 2
    assert total(event_level="Minor") == 1
    assert total(event_source="ops.Disks") == 1
    assert total(event_state="incident") == 0
    assert total(from_ms=NOW - 3_000, to_ms=NOW - 1_000) == 2
    page = backend.list_event_detail(PROJECT, "DiskFull", event_type="EVENT.CUSTOM", start=2, limit=5)
    assert [info["time"] for info in page["event_info"]] == [NOW - 5_000]
    with pytest.raises(errors.InvalidQuery, match="event_type is required"):
        backend.list_event_detail(PROJECT, "DiskFull", event_type=None)


# --- faults and rate limits --------------------------------------------------------------------


def test_a_top_level_status_is_one_fault_with_its_own_delay() -> None:
    settings, faults, append = parse_fault_plan({"status": 503, "count": 2, "delay_ms": 5, "retry_after": 1})

    assert settings == {} and append is False
    assert faults == [Fault("status", count=2, status=503, delay_ms=5, retry_after=1)]


def test_without_status_delay_ms_is_the_standing_latency() -> None:
    settings, faults, _ = parse_fault_plan(
        {"delay_ms": 20, "max_concurrent": 4, "faults": [{"kind": "drop"}, {"kind": "slow", "delay_ms": 9}]}
    )

    assert settings == {"delay_ms": 20, "max_concurrent": 4}
    assert [f.kind for f in faults] == ["drop", "slow"]


@pytest.mark.parametrize(
    ("plan", "words"),
    [
        ([], "must be a JSON object"),
        ({"stauts": 503}, "unknown keys \\['stauts'\\]"),
        ({"status": 200}, "status must be between 400 and 599"),
        ({"status": 503, "count": 0}, "count must be at least 1"),
        ({"status": "503"}, "status must be an integer"),
        ({"kind": "slow"}, "slow fault needs delay_ms > 0"),
        ({"kind": "explode"}, "kind must be one of"),
        ({"kind": "drop", "retry_after": 1}, "only apply to status faults"),
        ({"faults": {"status": 500}}, "faults must be a list"),
        ({"faults": [{"status": 500, "colour": "red"}]}, "faults\\[0\\] has unknown keys"),
        ({"max_concurrent": 0}, "max_concurrent must be at least 1"),
    ],
)
def test_fault_plans_are_checked(backend: Backend, plan: Any, words: str) -> None:
    with pytest.raises(errors.ControlError, match=words):
        backend.faults.configure(plan)


def test_queued_faults_are_consumed_in_order(backend: Backend) -> None:
    backend.faults.configure({"faults": [{"status": 503, "count": 2}, {"kind": "drop"}]})
    backend.faults.configure({"append": True, "faults": [{"status": 500}]})

    taken = [backend.faults.take() for _ in range(5)]

    assert [(f.kind, f.status) if f else None for f in taken] == [
        ("status", 503),
        ("status", 503),
        ("drop", None),
        ("status", 500),
        None,
    ]
    assert backend.stats()["faults_injected"] == 4


def test_posting_a_plan_replaces_the_previous_one(backend: Backend) -> None:
    backend.faults.configure({"delay_ms": 50, "faults": [{"status": 503}]})

    plan = backend.faults.configure({"max_per_second": 5})

    assert plan == {
        "delay_ms": 0,
        "max_concurrent": None,
        "max_per_second": 5,
        "retry_after": 1,
        "faults": [],
    }


def test_max_concurrent_refuses_posts_past_the_limit(backend: Backend) -> None:
    backend.faults.configure({"max_concurrent": 2, "retry_after": 3})

    # The third post is refused while two hold their slots.
    with (
        backend.admit_post(),
        backend.admit_post(),
        pytest.raises(errors.Throttled) as caught,
        backend.admit_post(),
    ):
        pass
    with backend.admit_post():
        pass

    assert caught.value.status == 429 and caught.value.headers == {"Retry-After": "3"}
    assert caught.value.error_code == "APIGW.0308"
    stats = backend.stats()
    assert stats["throttled"] == 1 and stats["posts_received"] == 4 and stats["peak_in_flight"] == 2


def test_max_per_second_refuses_posts_past_the_rate(backend: Backend) -> None:
    backend.faults.configure({"max_per_second": 3})
    outcomes = []
    for _ in range(5):
        try:
            with backend.admit_post():
                outcomes.append("ok")
        except errors.Throttled as exc:
            outcomes.append(exc.headers["Retry-After"])

    assert outcomes == ["ok", "ok", "ok", "1", "1"]
