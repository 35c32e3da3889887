"""Pipelining: items are validated and packed a slice at a time, and each request goes to the
client's workers as soon as it is made. Same requests, same results as doing it all up front."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder import report_events
from forwarder.batching import (
    Chunk,
    Oversized,
    chunk_events,
    encode_event,
    iter_chunks,
    iter_chunks_of_slices,
)
from forwarder.client import CloudEyeClient
from forwarder.events import validate_events, validate_in_slices
from forwarder.settings import Settings
from scripts.demo import wait_for
from tests.support.loopback import Answer, LoopbackServer, forget_pooled_connections

NOW = 1_709_294_400_000
PROJECT = "0123456789abcdef0123456789abcdef"


pytestmark = pytest.mark.usefixtures("fresh_connection_pool")


def env(server: LoopbackServer, **extra: str) -> dict[str, str]:
    return {
        "HUAWEICLOUD_SDK_AK": "test-access-key",
        "HUAWEICLOUD_SDK_SK": "test-secret-key",
        "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT,
        "CLOUDEYE_ENDPOINT": server.url,
        **extra,
    }


def _event(index: int, content_bytes: int = 20) -> dict[str, Any]:
    return {
        "event_name": f"e{index}",
        "event_source": "app.orders",
        "time": NOW,
        "detail": {"content": "x" * content_bytes, "event_type": "EVENT.CUSTOM"},
    }


def _mixed_items(rng: random.Random, count: int, big_every: int = 0) -> list[Any]:
    """Valid events with invalid items, time-window rejects and (optionally) large events between."""
    items: list[Any] = []
    for index in range(count):
        roll = rng.random()
        if big_every and index % big_every == 0:
            items.append(_event(index, rng.choice([900, 1500, 3000])))
        elif roll < 0.1:
            items.append({**_event(index), "event_name": "not valid!"})
        elif roll < 0.15:
            items.append({**_event(index), "time": NOW - 7_200_000})  # too old
        elif roll < 0.18:
            items.append(rng.choice([None, 42, "text", []]))
        else:
            items.append(_event(index, rng.randint(0, 200)))
    return items


# --- the streaming chunker makes the chunks the whole-batch chunker makes ------------------------


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=700), max_size=120),
    max_events=st.integers(min_value=1, max_value=12),
    max_bytes=st.integers(min_value=60, max_value=2500),
)
def test_iter_chunks_makes_exactly_the_chunks_of_chunk_events(
    sizes: list[int], max_events: int, max_bytes: int
) -> None:
    # Indexes with gaps (rejected items in between); 'é' is 2 bytes: sizes are bytes, not characters.
    events = [(i * 3, {"event_name": f"e{i}", "content": "é" * (size // 2)}) for i, size in enumerate(sizes)]
    expected_chunks, expected_oversized = chunk_events(events, max_events=max_events, max_bytes=max_bytes)

    oversized: list[Oversized] = []
    chunks = list(iter_chunks(iter(events), oversized, max_events=max_events, max_bytes=max_bytes))

    assert chunks == expected_chunks
    assert sorted(oversized, key=lambda big: big.input_index) == expected_oversized


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=700), max_size=150),
    cuts=st.lists(st.integers(min_value=0, max_value=150), max_size=12),
    max_events=st.integers(min_value=1, max_value=12),
    max_bytes=st.integers(min_value=60, max_value=2500),
)
def test_chunks_of_slices_are_the_chunks_of_the_whole_sequence(
    sizes: list[int], cuts: list[int], max_events: int, max_bytes: int
) -> None:
    events = [(i * 2, {"event_name": f"e{i}", "content": "x" * size}) for i, size in enumerate(sizes)]
    bounds = [0, *sorted(cut for cut in cuts if cut <= len(events)), len(events)]
    slices = [events[start:end] for start, end in pairwise(bounds)]  # empty ones too
    expected_chunks, expected_oversized = chunk_events(events, max_events=max_events, max_bytes=max_bytes)

    oversized: list[Oversized] = []
    chunks = list(iter_chunks_of_slices(iter(slices), oversized, max_events=max_events, max_bytes=max_bytes))

    assert chunks == expected_chunks
    assert sorted(oversized, key=lambda big: big.input_index) == expected_oversized


def test_iter_chunks_yields_a_full_chunk_before_reading_further() -> None:
    taken: list[int] = []

    def events():
        for index in range(250):
            taken.append(index)
            yield index, _event(index)

    stream = iter_chunks(events(), [])
    first = next(stream)
    assert first.indexes == tuple(range(100))
    assert len(taken) == 100  # not the whole input
    assert [len(chunk.indexes) for chunk in stream] == [100, 50]


# --- validation in slices ------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10_000), count=st.integers(0, 350), size=st.integers(1, 120))
def test_slices_together_are_the_whole_batch_validation(seed: int, count: int, size: int) -> None:
    items = _mixed_items(random.Random(seed), count)
    whole = validate_events(items, clock=lambda: NOW)

    slices = list(validate_in_slices(items, clock=lambda: NOW, size=size))

    assert [index for part in slices for index, _ in part.valid] == [index for index, _ in whole.valid]
    assert [event for part in slices for _, event in part.valid] == [event for _, event in whole.valid]
    assert {i: e for part in slices for i, e in part.errors.items()} == whole.errors


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=10_000),
    count=st.integers(0, 350),
    size=st.integers(1, 120),
    bad_every=st.sampled_from([0, 7, 97, 301]),
    late=st.sampled_from(["reject", "retime"]),
)
def test_slices_checked_in_one_call_match_the_item_by_item_validation(
    seed: int, count: int, size: int, bad_every: int, late: str
) -> None:
    # Mostly valid batches (a slice is then checked in one call) with late events among them, and
    # a bad item now and then (from the first bad slice on, item by item).
    rng = random.Random(seed)
    items: list[Any] = []
    for index in range(count):
        item = _event(index, rng.randint(0, 50))
        if rng.random() < 0.05:
            item["time"] = NOW - 7_200_000
        if bad_every and index % bad_every == bad_every - 1:
            item = {**item, "event_name": "not valid!"}
        items.append(item)
    whole = validate_events(items, clock=lambda: NOW, late=late)

    slices = list(validate_in_slices(items, clock=lambda: NOW, size=size, late=late))

    # The same events, retimed ones included (their times continue from slice to slice).
    assert [pair for part in slices for pair in part.valid] == whole.valid
    assert {i: t for part in slices for i, t in part.retimed.items()} == whole.retimed
    assert {i: e for part in slices for i, e in part.errors.items()} == whole.errors
    assert sum(part.count for part in slices) == count


def test_late_events_of_one_batch_are_retimed_to_distinct_times_across_slices() -> None:
    # Equal but for their original time: sent at one time, Cloud Eye would keep one of them.
    items = [{**_event(0), "time": NOW - 7_200_000 - index} for index in range(250)]

    slices = list(validate_in_slices(items, clock=lambda: NOW, size=100, late="retime"))

    times = [event["time"] for part in slices for _, event in part.valid]
    assert times == [NOW + index for index in range(250)]


def test_slices_read_the_clock_once() -> None:
    reads = []

    def clock() -> int:
        reads.append(1)
        return NOW

    list(validate_in_slices([_event(i) for i in range(450)], clock=clock, size=100))
    assert len(reads) == 1  # one batch, one window


# --- the client sends while the caller still prepares chunks ------------------------------------


def _wait_for(condition: Callable[[], bool]) -> bool:
    return wait_for(condition, timeout=5.0, poll_s=0.005)


def _chunk(index: int) -> Chunk:
    return Chunk((index,), json.dumps([_event(index)]).encode())


def test_the_first_request_leaves_before_the_last_chunk_is_made() -> None:
    with LoopbackServer() as server:
        client = CloudEyeClient(Settings.from_env(environ=env(server)))

        def chunks():
            yield _chunk(0)
            # The caller is still busy here: the first request must get out without waiting for it.
            assert _wait_for(lambda: len(server.requests) == 1), "nothing was sent before the end"
            yield _chunk(1)

        outcomes = client.send(chunks())

    assert [outcome.chunk.indexes for outcome in outcomes] == [(0,), (1,)]
    assert all(outcome.ok for outcome in outcomes)


def test_a_failing_chunk_source_still_delivers_what_it_made_and_leaves_no_threads() -> None:
    before = threading.active_count()
    with LoopbackServer() as server:
        client = CloudEyeClient(Settings.from_env(environ=env(server)))

        def chunks():
            yield _chunk(0)
            raise RuntimeError("bug while preparing")

        with pytest.raises(RuntimeError, match="bug while preparing"):
            client.send(chunks())
        assert len(server.requests) == 1
        forget_pooled_connections()  # so the server's connection threads end too
    assert _wait_for(lambda: threading.active_count() <= before)


def test_each_outcome_is_handed_over_as_soon_as_it_is_final() -> None:
    # The first request to arrive is answered slowly: the others are reported meanwhile.
    script = [Answer(201, delay_s=0.5), *[Answer(201)] * 4]
    with LoopbackServer(script) as server:
        client = CloudEyeClient(Settings.from_env(environ=env(server, CLOUDEYE_MAX_CONCURRENCY="2")))
        done: list[tuple[tuple[int, ...], bool]] = []
        outcomes = client.send(
            (_chunk(index) for index in range(5)),
            on_done=lambda outcome: done.append((outcome.chunk.indexes, outcome.ok)),
        )

    assert sorted(done) == [((index,), True) for index in range(5)]
    slow = int(json.loads(server.requests[0].body)[0]["event_name"][1:])  # chunk 0 or 1
    assert done[-1] == ((slow,), True)  # the slow one last, though it was among the first sent
    assert [outcome.chunk.indexes for outcome in outcomes] == [(index,) for index in range(5)]


def test_workers_never_exceed_the_concurrency_setting() -> None:
    with LoopbackServer([Answer(201, delay_s=0.02)]) as server:
        client = CloudEyeClient(Settings.from_env(environ=env(server, CLOUDEYE_MAX_CONCURRENCY="3")))
        outcomes = client.send(_chunk(index) for index in range(12))

    assert [outcome.chunk.indexes for outcome in outcomes] == [(index,) for index in range(12)]
    assert all(outcome.ok for outcome in outcomes)
    assert server.max_active <= 3


# --- report_events end to end: order, exactly once, oversized, dry run ---------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_valid_event_in_exactly_one_request_and_results_in_order(seed: int) -> None:
    rng = random.Random(seed)
    items = _mixed_items(rng, 640, big_every=rng.choice([0, 7, 23]))
    max_bytes = rng.choice([2000, 4000, 524_288])
    expected = validate_events(items, clock=lambda: NOW)
    expected_chunks, expected_oversized = chunk_events(expected.valid, max_bytes=max_bytes)

    with LoopbackServer() as server:
        settings_ = Settings.from_env(environ=env(server, CLOUDEYE_MAX_REQUEST_BYTES=str(max_bytes)))
        report = report_events(items, settings=settings_, clock=lambda: NOW)
        dry = report_events(items, settings=settings_, clock=lambda: NOW, dry_run=True)

    assert [result["index"] for result in report.results] == list(range(len(items)))
    too_big = {big.input_index for big in expected_oversized}
    accepted = [r["index"] for r in report.results if r["status"] == "accepted"]
    assert accepted == [index for index, _ in expected.valid if index not in too_big]
    rejected = {r["index"] for r in report.results if r["status"] == "rejected"}
    assert rejected == set(expected.errors) | too_big
    for index in too_big:
        assert "CLOUDEYE_MAX_REQUEST_BYTES" in report.results[index]["errors"][0]["message"]
    # What went on the wire: every valid event once, in the same requests as chunk_events makes.
    assert sorted(request.body for request in server.requests) == sorted(c.body for c in expected_chunks)
    assert report.requests == len(expected_chunks)
    assert dry.stats["requests_needed"] == len(expected_chunks)
    assert [r["status"] for r in dry.results] == [r["status"] for r in report.results]
    assert all(r["event_name"] == items[r["index"]]["event_name"] for r in dry.results if "event_name" in r)


def test_an_oversized_event_alone_is_rejected_by_name_and_sends_nothing() -> None:
    with LoopbackServer() as server:
        settings_ = Settings.from_env(environ=env(server, CLOUDEYE_MAX_REQUEST_BYTES="1024"))
        report = report_events([_event(0, 1100)], settings=settings_, clock=lambda: NOW)

    assert server.requests == []
    [result] = report.results
    assert result["status"] == "rejected"
    size = len(encode_event(_event(0, 1100))) + 2
    assert result["errors"] == [
        {
            "field": "(event)",
            "message": f"the event is {size} bytes of JSON, over the 1024-byte request limit "
            "(CLOUDEYE_MAX_REQUEST_BYTES)",
        }
    ]


# --- copies sent once ----------------------------------------------------------------------------


def test_copies_inside_one_batch_are_sent_once_and_share_the_event_id() -> None:
    first = _event(1)
    same_rule = {**_event(1), "detail": {"content": "other words", "event_type": "EVENT.CUSTOM"}}
    other_level = {**_event(1), "detail": {**_event(1)["detail"], "event_level": "Major"}}
    items = [first, _event(2), dict(first), same_rule, other_level]
    with LoopbackServer() as server:
        report = report_events(items, settings=Settings.from_env(environ=env(server)), clock=lambda: NOW)

    [request] = server.requests
    assert [e["detail"].get("event_level") for e in json.loads(request.body)] == [None, None, "Major"]
    assert [r["status"] for r in report.results] == ["accepted"] * 5
    ids = [r["event_id"] for r in report.results]
    assert ids[2] == ids[0] and ids[3] == ids[0]  # a copy, and an event Cloud Eye counts as the same
    assert len({ids[0], ids[1], ids[4]}) == 3
    assert [r.get("copy_of") for r in report.results] == [None, None, 0, 0, None]
    assert [r["index"] for r in report.results] == [0, 1, 2, 3, 4]


IDENTITY_CHANGES = [
    ("time", NOW - 1),
    ("event_source", "app.billing"),
    ("event_name", "e9"),
    ("detail.event_state", "warning"),
    ("detail.event_level", "Minor"),
    ("detail.event_user", "ops"),
    ("detail.resource_id", "vm-2"),
    ("detail.resource_name", "vm two"),
]
NOT_IDENTITY_CHANGES = [
    ("detail.content", "other words"),
    ("detail.event_type", None),  # absent means EVENT.CUSTOM
    ("detail.group_id", "rg15221211517051YWWkEnVd"),
    ("detail.sub_event_type", "SUB_EVENT.OPS"),
    ("detail.dimensions", [{"name": "zone", "value": "a"}]),
]


def _changed(path: str, value: Any) -> dict[str, Any]:
    event = {**_event(1), "detail": {**_event(1)["detail"], "event_state": "normal", "resource_id": "vm-1"}}
    if path.startswith("detail."):
        detail = event["detail"]
        key = path.removeprefix("detail.")
        if value is None:
            del detail[key]
        else:
            detail[key] = value
    else:
        event[path] = value
    return event


@pytest.mark.parametrize(("path", "value"), IDENTITY_CHANGES + NOT_IDENTITY_CHANGES)
def test_one_field_decides_whether_two_events_are_copies(path: str, value: Any) -> None:
    original = _changed("detail.content", "The financial system was invaded")
    settings = Settings.from_env(environ={})
    items = [original, _changed(path, value)]
    report = report_events(items, settings=settings, dry_run=True, clock=lambda: NOW)
    copy_of = report.results[1].get("copy_of")
    assert copy_of == (None if (path, value) in IDENTITY_CHANGES else 0)
    assert report.stats["requests_needed"] == 1


def test_a_copy_of_an_event_cloud_eye_refused_is_refused_too() -> None:
    refused = {"error_code": "ces.0014", "error_msg": "no such resource group"}
    bad = {**_event(1), "detail": {"group_id": "rg15221211517051YWWkEnVd"}}
    def answer_for(body: bytes) -> Answer:
        return Answer(400, refused) if b"group_id" in body else Answer(201)

    with LoopbackServer(answer_for=answer_for) as server:
        settings = Settings.from_env(environ=env(server))
        report = report_events([bad, _event(2), bad], settings=settings, clock=lambda: NOW)
    assert [(r["status"], r.get("by"), r.get("copy_of")) for r in report.results] == [
        ("rejected", "cloudeye", None),
        ("accepted", None, None),
        ("rejected", "cloudeye", 0),
    ]


# --- late events ---------------------------------------------------------------------------------


def test_a_late_event_is_rejected_by_default_naming_the_setting() -> None:
    old = {**_event(1), "time": NOW - 2 * 3_600_000}
    with LoopbackServer() as server:
        report = report_events([old], settings=Settings.from_env(environ=env(server)), clock=lambda: NOW)
    assert server.requests == []
    [result] = report.results
    assert result["status"] == "rejected" and result["by"] == "forwarder"
    [error] = result["errors"]
    assert error["field"] == "time" and "older than Cloud Eye accepts" in error["message"]
    assert "FORWARDER_LATE_EVENTS=retime" in error["message"]


def test_with_retime_a_late_event_is_sent_now_and_keeps_its_original_time() -> None:
    two_hours_ago = NOW - 2 * 3_600_000
    old = {**_event(1), "time": two_hours_ago}
    ahead = {**_event(2), "time": NOW + 3_600_000}
    too_long = {**_event(3, 4096), "time": two_hours_ago}
    seconds = {**_event(4), "time": NOW // 1000}
    with LoopbackServer() as server:
        settings = Settings.from_env(environ=env(server, FORWARDER_LATE_EVENTS="retime"))
        report = report_events([old, ahead, too_long, seconds], settings=settings, clock=lambda: NOW)

    [request] = server.requests
    sent = json.loads(request.body)
    assert [event["time"] for event in sent] == [NOW, NOW + 1, NOW + 2]  # distinct, in order
    assert sent[0]["detail"]["content"] == (
        "x" * 20 + " [original time 2024-03-01T10:00:00.000Z = 1709287200000 ms]"
    )
    assert len(sent[2]["detail"]["content"]) == 4096  # cut to fit, the note kept whole
    assert sent[2]["detail"]["content"].endswith(f"= {two_hours_ago} ms]")
    retimed_from = [r.get("retimed_from") for r in report.results[:3]]
    assert retimed_from == [two_hours_ago, NOW + 3_600_000, two_hours_ago]
    assert report.results[3]["status"] == "rejected"  # looks like seconds: a bug, not lateness
    assert "looks like seconds" in report.results[3]["errors"][0]["message"]


def test_retime_is_a_checked_setting() -> None:
    from forwarder.errors import SettingsError

    with pytest.raises(SettingsError, match="FORWARDER_LATE_EVENTS must be reject or retime"):
        Settings.from_env(environ={"FORWARDER_LATE_EVENTS": "later"})
    assert Settings.from_env(environ={"FORWARDER_LATE_EVENTS": "RETIME"}).late_events == "retime"
    assert Settings.from_env(environ={}).late_events == "reject"


# --- any iterable, consumed lazily ---------------------------------------------------------------


def test_items_are_read_lazily_a_slice_at_a_time() -> None:
    taken: list[int] = []

    with LoopbackServer() as server:

        def items():
            for index in range(450):
                taken.append(index)
                if index == 250:
                    # Still reading: the first requests must already be out, or this waits in vain.
                    assert _wait_for(lambda: len(server.requests) >= 1), "nothing sent before the end"
                yield _event(index)

        settings = Settings.from_env(environ=env(server, CLOUDEYE_MAX_CONCURRENCY="1"))
        report = report_events(items(), settings=settings, clock=lambda: NOW)

    assert report.accepted == 450 and [r["index"] for r in report.results] == list(range(450))
    assert len(server.requests) == 5 and len(taken) == 450


def test_report_candidates_takes_a_stream_with_unreadable_pieces() -> None:
    from forwarder.events import now_ms
    from forwarder.intake import Candidate, Unreadable, report_candidates

    def live(index: int) -> dict[str, Any]:
        return {**_event(index), "time": now_ms()}

    first = live(0)

    def stream():
        yield Candidate(first, {})
        yield Candidate(Unreadable("line 2 is not JSON", "x"), {})
        yield Candidate(dict(first), {})  # a copy of the first
        yield Candidate(live(3), {})

    with LoopbackServer() as server:
        report = report_candidates(stream(), settings=Settings.from_env(environ=env(server)))
    assert [r["status"] for r in report.results] == ["accepted", "rejected", "accepted", "accepted"]
    assert report.results[2]["copy_of"] == 0  # the candidate index, not the readable one
    assert report.results[2]["event_id"] == report.results[0]["event_id"]
    assert report.results[1]["errors"] == [{"field": "(message)", "message": "line 2 is not JSON"}]
    assert [len(json.loads(request.body)) for request in server.requests] == [2]
