"""report_events and report_json_array at their edges: what the options change, what reaches the
Cloud Eye stand-in, and the result of every kind of outcome (refused, late while waiting, failed,
never reported), with the report's retry figures."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

import forwarder.client
from forwarder import report_events
from forwarder.client import LATE_WHILE_WAITING, ChunkOutcome, Part
from forwarder.pipeline import report_json_array
from forwarder.settings import Settings
from tests.support.loopback import Answer, LoopbackServer

NOW = 1_709_294_400_000
TWO_HOURS_MS = 2 * 3_600_000
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


def event(name: str, when: int = NOW, **detail: Any) -> dict[str, Any]:
    return {
        "event_name": name,
        "event_source": "app.orders",
        "time": when,
        "detail": {"content": "c", **detail},
    }


def sent_events(server: LoopbackServer) -> list[dict[str, Any]]:
    return [item for request in server.requests for item in json.loads(request.body)]


class Sleeps:
    """An injected sleep: records each wait instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


# --- report_json_array: the one-pass path takes the same options as report_events ---------------


def test_json_array_sends_by_default_with_the_callers_clock() -> None:
    # NOW is long past: with the wall clock instead of the one given, the event would be late.
    pieces = [json.dumps([event("a"), event("b")])]  # one piece: the whole array
    with LoopbackServer() as server:
        report = report_json_array(pieces, settings=Settings.from_env(environ=env(server)), clock=lambda: NOW)
    assert report is not None
    assert [item["event_name"] for item in sent_events(server)] == ["a", "b"]
    assert [(r["status"], r["event_name"]) for r in report.results] == [("accepted", "a"), ("accepted", "b")]
    assert report.dry_run is False and report.requests == 1


def test_json_array_applies_the_late_events_setting() -> None:
    pieces = [json.dumps([event("old", NOW - TWO_HOURS_MS)])]  # one piece: the whole array
    with LoopbackServer() as server:
        settings = Settings.from_env(environ=env(server, FORWARDER_LATE_EVENTS="retime"))
        report = report_json_array(pieces, settings=settings, clock=lambda: NOW)
    assert report is not None
    [sent] = sent_events(server)
    assert sent["time"] == NOW
    [result] = report.results
    assert result["status"] == "accepted" and result["retimed_from"] == NOW - TWO_HOURS_MS


def test_json_array_stops_at_the_deadline_and_retries_with_the_given_sleep() -> None:
    pieces = [json.dumps([event("a")])]  # one piece: the whole array
    with LoopbackServer() as server:
        settings = Settings.from_env(environ=env(server))
        late = report_json_array(pieces, settings=settings, clock=lambda: NOW, deadline=time.monotonic() - 1)
        assert server.requests == []
    assert late is not None
    assert late.results[0]["status"] == "failed" and "out of time" in late.results[0]["error"]

    sleeps = Sleeps()
    with LoopbackServer([Answer(503), Answer(201)]) as server:
        settings = Settings.from_env(environ=env(server))
        report = report_json_array(pieces, settings=settings, clock=lambda: NOW, sleep=sleeps)
    assert report is not None and report.results[0]["status"] == "accepted"
    assert len(server.requests) == 2 and len(sleeps.waits) == 1


def test_json_array_paces_like_report_events() -> None:
    # After Cloud Eye's 429s the learned rate says how long the failed request needs: the
    # answer's retry_after. Without pacing (report_events(adaptive=False)) there is none.
    pieces = [json.dumps([event("a")])]  # one piece: the whole array
    with LoopbackServer([Answer(429)]) as server:
        settings = Settings.from_env(environ=env(server, CLOUDEYE_MAX_ATTEMPTS="2"))
        report = report_json_array(pieces, settings=settings, clock=lambda: NOW, sleep=Sleeps())
    assert report is not None and report.results[0]["status"] == "failed"
    assert report.retry_after is not None and report.retry_after > 0


# --- report_events: settings from the environment when none are given ----------------------------


def test_without_settings_the_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    item = {"event_name": "a", "time": NOW, "detail": {"content": "c"}}  # no event_source
    with LoopbackServer() as server:
        for name, value in env(server, FORWARDER_DEFAULT_SOURCE="app.from_env").items():
            monkeypatch.setenv(name, value)
        report = report_events([item], clock=lambda: NOW)
    [sent] = sent_events(server)
    assert sent["event_source"] == "app.from_env"
    assert report.results[0]["status"] == "accepted"


# --- report_events: deadline, sleep, pacing -------------------------------------------------------


def test_a_deadline_already_past_sends_nothing_and_fails_every_event() -> None:
    with LoopbackServer() as server:
        settings = Settings.from_env(environ=env(server))
        report = report_events(
            [event("a"), event("b")], settings=settings, clock=lambda: NOW, deadline=time.monotonic() - 1
        )
    assert server.requests == []
    assert [r["status"] for r in report.results] == ["failed", "failed"]
    assert all("out of time" in r["error"] for r in report.results)


def test_retries_wait_with_the_given_sleep() -> None:
    sleeps = Sleeps()
    with LoopbackServer([Answer(503), Answer(201)]) as server:
        report = report_events(
            [event("a")], settings=Settings.from_env(environ=env(server)), clock=lambda: NOW, sleep=sleeps
        )
    assert report.results[0]["status"] == "accepted"
    assert len(server.requests) == 2 and len(sleeps.waits) == 1
    assert report.requests == 2 and report.retries == 1 and report.throttled == 0


def test_throttled_requests_are_counted_in_the_report() -> None:
    with LoopbackServer([Answer(429), Answer(429), Answer(201)]) as server:
        report = report_events(
            [event("a")], settings=Settings.from_env(environ=env(server)), clock=lambda: NOW, sleep=Sleeps()
        )
    assert report.results[0]["status"] == "accepted"
    assert (report.requests, report.retries, report.throttled) == (3, 2, 2)


@pytest.mark.parametrize("adaptive", [None, False])
def test_the_learned_rate_gives_the_retry_after_only_when_pacing(adaptive: bool | None) -> None:
    options = {} if adaptive is None else {"adaptive": adaptive}  # None: the default, which paces
    with LoopbackServer([Answer(429)]) as server:
        settings = Settings.from_env(environ=env(server, CLOUDEYE_MAX_ATTEMPTS="2"))
        report = report_events([event("a")], settings=settings, clock=lambda: NOW, sleep=Sleeps(), **options)
    assert report.results[0]["status"] == "failed" and report.failures_retryable is True
    if adaptive is None:
        assert report.retry_after is not None and report.retry_after > 0
    else:
        assert report.retry_after is None  # no Retry-After asked, no rate learned


def test_a_fast_learned_rate_gives_a_retry_after_under_a_second() -> None:
    # Many requests got through before the 429s: the learned rate is several per second, so the
    # one failed request needs a fraction of a second.
    script = [Answer(201)] * 40 + [Answer(429)]
    with LoopbackServer(script) as server:
        settings = Settings.from_env(
            environ=env(
                server,
                CLOUDEYE_MAX_ATTEMPTS="2",
                CLOUDEYE_MAX_CONCURRENCY="1",
                CLOUDEYE_MAX_REQUEST_BYTES="1024",
            )
        )
        items = [event(f"e{index}", content="x" * 600) for index in range(41)]  # one per request
        report = report_events(items, settings=settings, clock=lambda: NOW, sleep=Sleeps())
    assert [r["status"] for r in report.results] == ["accepted"] * 40 + ["failed"]
    assert report.retry_after is not None and 0 < report.retry_after <= 1


def test_cloud_eyes_retry_after_is_the_reports() -> None:
    with LoopbackServer([Answer(503, retry_after="7")]) as server:
        settings = Settings.from_env(environ=env(server, CLOUDEYE_MAX_ATTEMPTS="1"))
        report = report_events([event("a")], settings=settings, clock=lambda: NOW, sleep=Sleeps())
    assert report.results[0]["status"] == "failed"
    assert report.retry_after == 7 and report.failures_retryable is True


def test_everything_accepted_leaves_no_retry_after() -> None:
    with LoopbackServer() as server:
        report = report_events(
            [event("a")], settings=Settings.from_env(environ=env(server)), clock=lambda: NOW
        )
    assert report.results[0]["status"] == "accepted"
    assert report.retry_after is None and report.failures_retryable is True


def test_a_configuration_failure_is_not_retryable() -> None:
    with LoopbackServer([Answer(401)]) as server:
        report = report_events(
            [event("a")], settings=Settings.from_env(environ=env(server)), clock=lambda: NOW
        )
    assert report.results[0]["status"] == "failed"
    assert report.failures_retryable is False


# --- outcomes: late while waiting, refused, retimed copies ----------------------------------------


def clock_then(first: int, later: int) -> Callable[[], int]:
    """A clock that reads ``first`` once (the batch's validation) and ``later`` afterwards."""
    readings = iter([first])
    return lambda: next(readings, later)


def test_an_event_that_leaves_the_window_while_waiting_is_rejected_on_its_time() -> None:
    with LoopbackServer() as server:
        report = report_events(
            [event("a")],
            settings=Settings.from_env(environ=env(server)),
            clock=clock_then(NOW, NOW + TWO_HOURS_MS),
        )
    assert server.requests == []
    [result] = report.results
    assert result == {
        "index": 0,
        "status": "rejected",
        "by": "forwarder",
        "errors": [{"field": "time", "message": LATE_WHILE_WAITING}],
    }
    # Rejected, not failed: sending again cannot help, and nothing failed.
    assert report.failures_retryable is True and report.retry_after is None


def test_a_refusal_carries_cloud_eyes_message_and_code_and_drops_the_retime_note() -> None:
    refused = {"error_code": "ces.0014", "error_msg": "no such resource group"}

    def answer_for(body: bytes) -> Answer:
        return Answer(400, refused) if b"group_id" in body else Answer(201)

    bad = event("bad", NOW - TWO_HOURS_MS, group_id="rg15221211517051YWWkEnVd")
    with LoopbackServer(answer_for=answer_for) as server:
        settings = Settings.from_env(environ=env(server, FORWARDER_LATE_EVENTS="retime"))
        report = report_events([bad, event("good", NOW - TWO_HOURS_MS)], settings=settings, clock=lambda: NOW)
    first, second = report.results
    assert first["status"] == "rejected" and first["by"] == "cloudeye"
    assert "retimed_from" not in first  # only an accepted event says it was sent with another time
    [error] = first["errors"]
    assert error["field"] == "(event)" and error["code"] == "ces.0014"
    assert "no such resource group" in error["message"]
    assert second["status"] == "accepted" and second["retimed_from"] == NOW - TWO_HOURS_MS


def test_late_copies_are_still_copies_when_retimed() -> None:
    old = event("old", NOW - TWO_HOURS_MS)
    items = [old, event("fresh"), dict(old), event("fresh"), event("other_old", NOW - TWO_HOURS_MS)]
    with LoopbackServer() as server:
        settings = Settings.from_env(environ=env(server, FORWARDER_LATE_EVENTS="retime"))
        report = report_events(items, settings=settings, clock=lambda: NOW)
    assert [e["event_name"] for e in sent_events(server)] == ["old", "fresh", "other_old"]
    summary = [(r["status"], r.get("copy_of"), r.get("retimed_from")) for r in report.results]
    assert summary == [
        ("accepted", None, NOW - TWO_HOURS_MS),
        ("accepted", None, None),
        ("accepted", 0, NOW - TWO_HOURS_MS),
        ("accepted", 1, None),
        ("accepted", None, NOW - TWO_HOURS_MS),
    ]
    assert report.results[2]["event_id"] == report.results[0]["event_id"]


# --- what the pipeline makes of the client's outcomes ---------------------------------------------
# A stand-in for CloudEyeClient reports outcomes the real client never produces over HTTP (no
# text, nothing at all): the pipeline's safety nets still give every event one clear result.


class StandInClient:
    """``send`` hands each chunk to ``parts_for`` and reports the parts it returns."""

    parts_for: Callable[[tuple[int, ...]], list[Part]] = staticmethod(lambda indexes: [])
    report_nothing = False

    def __init__(self, settings: Settings, **options: Any) -> None:
        self.stats = SimpleNamespace(failed_requests=0, requests=0, retries=0, throttled=0)

    def send(
        self, chunks: Iterable[Any], on_done: Callable[[ChunkOutcome], None] | None = None
    ) -> Iterator[Any]:
        outcomes = []
        for chunk in chunks:
            if self.report_nothing:
                continue
            outcome = ChunkOutcome(chunk, parts=type(self).parts_for(chunk.indexes))
            if on_done is not None:
                on_done(outcome)
            outcomes.append(outcome)
        return iter(outcomes)

    def retry_after_hint(self, failed_requests: int) -> float:
        return 0.0


def test_parts_without_text_get_a_default_message(monkeypatch: pytest.MonkeyPatch) -> None:
    class Client(StandInClient):
        @staticmethod
        def parts_for(indexes: tuple[int, ...]) -> list[Part]:
            refused, late, failed = indexes
            return [Part((refused,), "refused"), Part((late,), "late"), Part((failed,), "failed")]

    monkeypatch.setattr(forwarder.client, "CloudEyeClient", Client)
    report = report_events(
        [event("a"), event("b"), event("c")], settings=Settings.from_env(environ={}), clock=lambda: NOW
    )
    assert report.results == [
        {
            "index": 0,
            "status": "rejected",
            "by": "cloudeye",
            "errors": [{"field": "(event)", "message": "refused by Cloud Eye"}],
        },
        {"index": 1, "status": "rejected", "by": "forwarder", "errors": [{"field": "time", "message": ""}]},
        {"index": 2, "status": "failed", "error": "not sent"},
    ]


def test_an_event_the_client_never_reports_fails_and_so_do_its_copies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Client(StandInClient):
        report_nothing = True

    monkeypatch.setattr(forwarder.client, "CloudEyeClient", Client)
    items = [event("a"), {"event_name": "not valid!"}, event("a")]
    report = report_events(items, settings=Settings.from_env(environ={}), clock=lambda: NOW)
    first, invalid, copy = report.results
    assert first == {"index": 0, "status": "failed", "error": "no result recorded"}
    assert invalid["status"] == "rejected"
    assert copy == {"index": 2, "status": "failed", "error": "no result recorded", "copy_of": 0}


# --- report_json_array: pieces the one-pass check cannot take go item by item -----------------


def _wide_item() -> dict[str, Any]:
    return {f"k{number}": number for number in range(60)}  # more fields than any event has


@pytest.mark.parametrize("with_wide_item", [False, True], ids=["invalid item", "too wide item"])
def test_an_item_by_item_piece_keeps_the_callers_clock_and_late_setting(with_wide_item: bool) -> None:
    # The piece holds an item the one-pass check refuses, so it is validated item by item: that
    # path too must judge times by the caller's clock (NOW is long past: by the wall clock the
    # fresh event would be late) and retime as FORWARDER_LATE_EVENTS says.
    bad: Any = _wide_item() if with_wide_item else 0
    pieces = [json.dumps([event("fresh"), event("old", NOW - TWO_HOURS_MS), bad])]
    with LoopbackServer() as server:
        settings = Settings.from_env(environ=env(server, FORWARDER_LATE_EVENTS="retime"))
        report = report_json_array(pieces, settings=settings, clock=lambda: NOW)
    assert report is not None
    fresh, old, refused = report.results
    assert fresh["status"] == "accepted" and "retimed_from" not in fresh
    assert old["status"] == "accepted" and old["retimed_from"] == NOW - TWO_HOURS_MS
    assert refused["status"] == "rejected" and refused["index"] == 2
    assert sorted(item["time"] for item in sent_events(server)) == [NOW, NOW]


class OnePassCalls:
    """Counts the one-pass checks report_json_array tries, passing each on to the real one."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import forwarder.pipeline as pipeline

        self.calls = 0
        real = pipeline.validate_json_array

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(pipeline, "validate_json_array", counted)


def test_the_one_pass_check_is_skipped_after_four_failed_pieces_in_a_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from forwarder.pipeline import MAX_ONE_PASS_MISSES

    assert MAX_ONE_PASS_MISSES == 4
    invalid, valid = json.dumps([event("a"), 0]), json.dumps([event("b")])
    calls = OnePassCalls(monkeypatch)
    with LoopbackServer() as server:
        settings = Settings.from_env(environ=env(server))
    # Six failing pieces: four tries, then item by item without trying.
    report_json_array([invalid] * 6, settings=settings, clock=lambda: NOW, dry_run=True)
    assert calls.calls == 4
    # A piece that passes starts the count again: 3 tries, 1 pass, then 4 more tries.
    calls.calls = 0
    report = report_json_array([invalid] * 3 + [valid] + [invalid] * 6, settings=settings, clock=lambda: NOW,
                               dry_run=True)  # fmt: skip
    assert calls.calls == 3 + 1 + 4
    assert report is not None
    assert [r["status"] for r in report.results] == ["accepted", "rejected"] * 3 + ["accepted"] + [
        "accepted", "rejected"] * 6  # fmt: skip


def test_the_one_pass_check_takes_pieces_up_to_its_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from forwarder.pipeline import MAX_ONE_PASS_CHARS

    def piece_of(length: int) -> str:
        text = json.dumps([event("a")])
        return text[:-1] + " " * (length - len(text)) + "]"  # blanks between items are JSON

    with LoopbackServer() as server:
        settings = Settings.from_env(environ=env(server))  # dry runs: nothing is sent
    for length, tried in ((MAX_ONE_PASS_CHARS, 1), (MAX_ONE_PASS_CHARS + 1, 0)):
        calls = OnePassCalls(monkeypatch)
        piece = piece_of(length)
        assert len(piece) == length
        report = report_json_array([piece], settings=settings, clock=lambda: NOW, dry_run=True)
        assert report is not None and report.results[0]["status"] == "accepted"
        assert calls.calls == tried, length
