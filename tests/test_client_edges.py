"""The Cloud Eye client's edges: exact error texts, configuration errors per credential source, the
watchdog over whole exchanges, and failures in the middle of a split request.

test_client.py covers the main behaviour; these pin the exact values it leaves open.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from forwarder import client as client_module
from forwarder import report_events
from forwarder.batching import Chunk
from forwarder.client import CloudEyeClient, describe_error, error_code
from forwarder.events import now_ms
from forwarder.settings import Secret, Settings
from tests.support.fresh_process import FUNCTION_ROOT, run_command
from tests.support.loopback import Answer, LoopbackServer

AK, SK = "edge-access-key", "edge-secret-key"
PROJECT = "0123456789abcdef0123456789abcdef"

pytestmark = pytest.mark.usefixtures("fresh_connection_pool")


def env(url: str, **extra: str) -> dict[str, str]:
    return {
        "HUAWEICLOUD_SDK_AK": AK,
        "HUAWEICLOUD_SDK_SK": SK,
        "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT,
        "CLOUDEYE_ENDPOINT": url,
        **extra,
    }


def events(count: int) -> list[dict[str, Any]]:
    now = now_ms()
    return [
        {
            "event_name": f"event{i}",
            "event_source": "app.orders",
            "time": now,
            "detail": {"content": "something happened", "event_type": "EVENT.CUSTOM"},
        }
        for i in range(count)
    ]


def no_sleep(seconds: float) -> None:
    pass


# --- error texts ----------------------------------------------------------------------------------

LONG = "y" * 400


@pytest.mark.parametrize(
    ("status", "body", "request_id", "expected"),
    [
        (
            400,
            {"error_code": "ces.0014", "error_msg": "Some content is invalid.", "message": "ignored"},
            "hdr-1",
            "Cloud Eye answered 400 ces.0014: Some content is invalid. (request id hdr-1)",
        ),
        (
            400,
            {"http_code": 400, "message": {"code": "ces.0050", "details": "Request body is invalid."}},
            None,
            "Cloud Eye answered 400 ces.0050: Request body is invalid.",
        ),
        (
            400,
            {"message": {"code": "ces.0051", "message": "Only a message."}},
            None,
            "Cloud Eye answered 400 ces.0051: Only a message.",
        ),
        (
            401,
            {"code": "APIGW.0301", "message": "Incorrect IAM authentication", "details": "verify aksk"},
            None,
            "Cloud Eye answered 401 APIGW.0301: Incorrect IAM authentication: verify aksk",
        ),
        (
            401,
            {"code": "APIGW.0301", "message": "Same text", "details": "Same text"},
            None,
            "Cloud Eye answered 401 APIGW.0301: Same text",
        ),
        (400, {"details": "Only details."}, None, "Cloud Eye answered 400: Only details."),
        (
            400,
            {"error_code": "ces.0001", "code": "other", "error_msg": "Error code first."},
            None,
            "Cloud Eye answered 400 ces.0001: Error code first.",
        ),
        (
            404,
            {"error": {"code": "APIGW.0101", "message": "The API does not exist"}},
            None,
            "Cloud Eye answered 404 APIGW.0101: The API does not exist",
        ),
        (
            400,
            {"error_code": "ces.0014", "error_msg": "bad", "request_id": "body-id"},
            None,
            "Cloud Eye answered 400 ces.0014: bad (request id body-id)",
        ),
        (
            400,
            {"error_code": "ces.0014", "error_msg": "bad", "request_id": "body-id"},
            "hdr-2",
            "Cloud Eye answered 400 ces.0014: bad (request id hdr-2)",
        ),
        (400, {"error_code": 14, "error_msg": "a number"}, None, "Cloud Eye answered 400 14: a number"),
        (400, {"error": "not an object"}, None, "Cloud Eye answered 400"),
        (400, [1, 2], None, "Cloud Eye answered 400: [1, 2]"),
        (
            502,
            b"<html>502 Bad Gateway</html>\n",
            None,
            "Cloud Eye answered 502: <html>502 Bad Gateway</html>",
        ),
        (500, b"\xffbroken \xfe text", None, "Cloud Eye answered 500: \ufffdbroken \ufffd text"),
        (None, b"", "r-9", "Cloud Eye could not be reached (request id r-9)"),
        (503, b"", None, "Cloud Eye answered 503"),
    ],
)
def test_describe_error_gives_one_exact_line_for_each_body_shape(status, body, request_id, expected) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    assert describe_error(status, raw, request_id) == expected


def test_each_part_of_an_error_line_is_cut_to_300_characters() -> None:
    body = json.dumps({"error_code": "c" * 400, "error_msg": "m" * 400, "request_id": "r" * 400}).encode()
    assert (
        describe_error(400, body, None)
        == f"Cloud Eye answered 400 {'c' * 300}: {'m' * 300} (request id {'r' * 300})"
    )
    assert error_code(body) == "c" * 300
    assert describe_error(400, b"t" * 400, None) == f"Cloud Eye answered 400: {'t' * 300}"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"error_code": "ces.0014", "code": "other"}', "ces.0014"),
        (b'{"code": "APIGW.0301"}', "APIGW.0301"),
        (b'{"message": {"code": "ces.0050"}, "code": "outer"}', "ces.0050"),
        (b'{"error": {"code": "APIGW.0101"}}', "APIGW.0101"),
        (b'{"error_msg": "no code"}', None),
        (b"[1]", None),
        (b"not json", None),
        (b"", None),
    ],
)
def test_error_code_reads_every_shape(body: bytes, code: str | None) -> None:
    assert error_code(body) == code


# --- configuration errors name the setting to fix ------------------------------------------------

REFUSED = {"code": "APIGW.0301", "message": "Incorrect IAM authentication information"}
CREDENTIALS_TEXT = (
    "Cloud Eye answered {status} APIGW.0301: Incorrect IAM authentication information (request id cfg)"
)


class AgencyContext:
    """FunctionGraph's context object offering the agency's temporary keys."""

    def getSecurityAccessKey(self) -> str:
        return "agency-ak"

    def getSecuritySecretKey(self) -> str:
        return "agency-sk"

    def getSecurityToken(self) -> str:
        return "agency-token"


def settings_for(source: str, url: str) -> Settings:
    if source == "environment":
        return Settings.from_env(environ=env(url, CLOUDEYE_MAX_ATTEMPTS="1"))
    base = {"HUAWEICLOUD_SDK_PROJECT_ID": PROJECT, "CLOUDEYE_ENDPOINT": url}
    if source == "agency":
        return Settings.from_env(environ=base, context=AgencyContext())
    if source == "token":
        return Settings.from_env(environ={**base, "CLOUDEYE_AUTH_TOKEN": "iam-token"})
    # Built directly by a library user: no source recorded.
    return Settings(access_key=AK, secret_key=Secret(SK), project_id=PROJECT, endpoint=url)


@pytest.mark.parametrize(
    ("source", "status", "advice"),
    [
        (
            "environment",
            401,
            "Cloud Eye refused the credentials: check HUAWEICLOUD_SDK_AK / HUAWEICLOUD_SDK_SK "
            "(and HUAWEICLOUD_SDK_SECURITY_TOKEN)",
        ),
        (
            "agency",
            403,
            "Cloud Eye refused the credentials' permissions: check the function's agency (its keys and "
            "its Cloud Eye permissions)",
        ),
        (
            "agency",
            401,
            "Cloud Eye refused the credentials: check the function's agency (its keys and its Cloud Eye "
            "permissions)",
        ),
        ("token", 401, "Cloud Eye refused the credentials: check CLOUDEYE_AUTH_TOKEN"),
        ("direct", 403, "Cloud Eye refused the credentials' permissions: check the credentials"),
    ],
)
def test_a_refused_credential_names_where_the_credentials_came_from(source, status, advice) -> None:
    with LoopbackServer([Answer(status, REFUSED, request_id="cfg")]) as server:
        settings = settings_for(source, server.url)
        report = report_events(events(2), settings=settings, sleep=no_sleep)

    assert [r["status"] for r in report.results] == ["failed", "failed"]
    expected = f"{CREDENTIALS_TEXT.format(status=status)}; {advice}"
    assert [r["error"] for r in report.results] == [expected, expected]
    assert report.failures_retryable is False
    assert len(server.requests) == 1


def test_a_wrong_endpoint_names_the_url_that_was_tried() -> None:
    with LoopbackServer([Answer(404, {"error_code": "APIGW.0101", "error_msg": "no such API"})]) as server:
        report = report_events(events(1), settings=Settings.from_env(environ=env(server.url)), sleep=no_sleep)

    [result] = report.results
    assert result["error"] == (
        f"Cloud Eye answered 404 APIGW.0101: no such API; http://127.0.0.1:{server.port}/V1.0/{PROJECT}"
        "/events is not Cloud Eye's events API: check CLOUDEYE_ENDPOINT (or CLOUDEYE_REGION) and "
        "HUAWEICLOUD_SDK_PROJECT_ID"
    )
    assert report.failures_retryable is False


# --- failures in the middle of a split request --------------------------------------------------


def test_an_error_after_part_of_a_split_request_got_through_fails_only_the_rest(monkeypatch) -> None:
    # Cloud Eye refuses the whole request (400) and takes each half; reading the second half's
    # answer breaks: the first half stays accepted, the second fails alone.
    original = client_module._created
    calls = []

    def created_then_broken(answer, expected):
        calls.append(expected)
        if len(calls) == 2:
            raise RuntimeError("broken")
        return original(answer, expected)

    monkeypatch.setattr(client_module, "_created", created_then_broken)
    refused = Answer(400, {"error_code": "ces.0014", "error_msg": "invalid"})
    with LoopbackServer([refused, Answer(201), Answer(201)]) as server:
        settings = Settings.from_env(environ=env(server.url))
        client = CloudEyeClient(settings, sleep=no_sleep, rng=random.Random(1))
        chunk = Chunk((10, 11, 12, 13), json.dumps(events(4)).encode())
        [outcome] = client.send([chunk])

    assert [(part.indexes, part.verdict, part.error) for part in outcome.parts] == [
        ((10, 11), "accepted", None),
        ((12, 13), "failed", "the request could not be sent (RuntimeError)"),
    ]
    assert outcome.parts[1].transient is True and not outcome.ok
    assert outcome.settled() == {10, 11, 12, 13}


# --- the watchdog bounds each whole exchange ------------------------------------------------------

DRIP_EVERY_S = 0.05
DRIP_FOR_S = 3.0  # then the server closes: a client that never cuts sees a broken answer instead


class DripServer:
    """A keep-alive Cloud Eye stand-in: requests are answered 201 at once (or after ``slow`` seconds),
    except those whose number (from 0) is in ``drip``: their answer promises 1000 bytes and sends
    one every 0.05 s."""

    def __init__(self, drip: set[int], slow: dict[int, float] | None = None) -> None:
        self.drip = drip
        self.slow = slow or {}  # request number -> seconds before its 201
        self.requests = 0
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._conns: list[socket.socket] = []
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> DripServer:
        self._threads[0].start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # ends a read waiting for the next request
        for thread in self._threads:
            thread.join(timeout=DRIP_FOR_S + 2)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as reader:
            while not self._stop.is_set():
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                count = len(json.loads(reader.read(length)))
                number, self.requests = self.requests, self.requests + 1
                if number in self.drip:
                    conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 1000\r\n\r\n")
                    ends = time.monotonic() + DRIP_FOR_S
                    while time.monotonic() < ends and not self._stop.wait(DRIP_EVERY_S):
                        try:
                            conn.sendall(b" ")
                        except OSError:
                            return  # the client hung up
                    return
                if self._stop.wait(self.slow.get(number, 0.0)):
                    return
                body = json.dumps([{"event_id": f"id{number}-{i}"} for i in range(count)]).encode()
                conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


@pytest.fixture
def own_watchdog(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A watchdog of this test's own, started by its first exchange (the shared one is started
    once per process, before the test)."""
    monkeypatch.setattr(client_module, "_watchdog", client_module._Watchdog())
    yield


def send_one(url: str, timeout_s: str) -> dict[str, Any]:
    settings = Settings.from_env(environ=env(url, CLOUDEYE_TIMEOUT_S=timeout_s, CLOUDEYE_MAX_ATTEMPTS="1"))
    [result] = report_events(events(1), settings=settings, sleep=no_sleep).results
    return result


@pytest.mark.usefixtures("own_watchdog")
def test_answers_within_their_time_keep_their_connection_alive() -> None:
    with DripServer(drip=set()) as server:
        results = [send_one(server.url, "10") for _ in range(3)]
    assert [(r["status"], r["event_id"]) for r in results] == [
        ("accepted", "id0-0"),
        ("accepted", "id1-0"),
        ("accepted", "id2-0"),
    ]
    assert server.connections == 1  # none was cut: the kept-alive connection carried all three


@pytest.mark.usefixtures("own_watchdog")
def test_a_dripping_answer_is_cut_at_the_attempt_timeout_even_after_an_idle_while() -> None:
    with DripServer(drip={1}) as server:
        first = send_one(server.url, "0.3")
        time.sleep(0.5)  # the first exchange's time passes with nothing left to watch
        started = time.monotonic()
        second = send_one(server.url, "0.3")
        waited = time.monotonic() - started

    assert first["status"] == "accepted"
    assert second["status"] == "failed"
    assert (
        second["error"]
        == f"Cloud Eye could not be reached at {server.url}: timed out: no whole answer within 0.3 s"
    )
    assert waited < DRIP_FOR_S  # cut by the client, not ended by the server


@pytest.mark.usefixtures("own_watchdog")
def test_two_dripping_answers_at_once_are_both_cut() -> None:
    with DripServer(drip={0, 1}) as server:
        settings = Settings.from_env(
            environ=env(
                server.url,
                CLOUDEYE_TIMEOUT_S="0.3",
                CLOUDEYE_MAX_ATTEMPTS="1",
                CLOUDEYE_MAX_REQUEST_BYTES="1024",
            )
        )
        items = events(2)
        for item in items:
            item["detail"]["content"] = "x" * 700  # one event per request: two requests at once
        report = report_events(items, settings=settings, sleep=no_sleep)

    assert [r["status"] for r in report.results] == ["failed", "failed"]
    assert all(r["error"].endswith("timed out: no whole answer within 0.3 s") for r in report.results)


# --- a 2xx answer that is not the list of created events ------------------------------------------


def test_an_odd_2xx_body_is_logged_once_with_what_was_seen(caplog) -> None:
    caplog.set_level("WARNING", logger="forwarder")
    with LoopbackServer([Answer(200, b'{"ok": true}', request_id="odd-2")]) as server:
        settings = Settings.from_env(environ=env(server.url))
        report = report_events(events(3), settings=settings, sleep=no_sleep)

    assert [(r["status"], r["event_id"]) for r in report.results] == [("accepted", None)] * 3
    [line] = [json.loads(record.getMessage()) for record in caplog.records]
    assert line == {
        "level": "WARNING",
        "logger": "forwarder",
        "message": "Cloud Eye accepted events with an unexpected answer body; their event ids are unknown",
        "status": 200,
        "cloud_eye_request_id": "odd-2",
        "events": 3,
        "body_bytes": 12,
    }


def test_created_ids_are_taken_only_when_there_is_one_per_event(caplog) -> None:
    caplog.set_level("WARNING", logger="forwarder")
    three = [{"event_id": "a"}, {"event_id": "b"}, {"event_id": "c"}]
    with LoopbackServer(
        [Answer(201, json.dumps(three).encode()), Answer(201, json.dumps(three[:2]).encode())]
    ) as server:
        settings = Settings.from_env(environ=env(server.url, CLOUDEYE_MAX_CONCURRENCY="1"))
        exact = report_events(events(3), settings=settings, sleep=no_sleep)
        short = report_events(events(3), settings=settings, sleep=no_sleep)

    assert [r["event_id"] for r in exact.results] == ["a", "b", "c"]
    assert [r["event_id"] for r in short.results] == [None, None, None]
    assert len(caplog.records) == 1


# --- where requests go, and the deadline before the first one ------------------------------------


def test_an_endpoint_with_a_path_prefix_keeps_it_and_the_host_header_names_the_port() -> None:
    with LoopbackServer() as server:
        settings = Settings.from_env(environ=env(f"{server.url}/gateway/CESX/"))
        report = report_events(events(1), settings=settings, sleep=no_sleep)

    assert report.accepted == 1
    [request] = server.requests
    assert request.path == f"/gateway/CESX/V1.0/{PROJECT}/events"
    assert request.headers["Host"] == f"127.0.0.1:{server.port}"


def test_a_deadline_gone_before_the_first_attempt_says_nothing_was_sent() -> None:
    with LoopbackServer() as server:
        settings = Settings.from_env(environ=env(server.url))
        report = report_events(events(2), settings=settings, sleep=no_sleep, deadline=time.monotonic() - 1)

    assert server.requests == []
    assert [r["error"] for r in report.results] == ["not sent; stopped: the invocation is out of time"] * 2
    assert report.failures_retryable is True


# --- sending many chunks --------------------------------------------------------------------------


def one_event_chunks(count: int) -> list[Chunk]:
    return [Chunk((i,), json.dumps(events(1)).encode()) for i in range(count)]


def test_a_failing_result_callback_does_not_stop_the_other_chunks() -> None:
    seen: list[tuple[int, ...]] = []

    def on_done(outcome) -> None:
        seen.append(outcome.chunk.indexes)
        if len(seen) == 1:
            raise KeyError("the caller's bug")

    with LoopbackServer() as server:
        settings = Settings.from_env(environ=env(server.url, CLOUDEYE_MAX_CONCURRENCY="1"))
        outcomes = CloudEyeClient(settings, sleep=no_sleep).send(one_event_chunks(3), on_done=on_done)

    assert seen == [(0,), (1,), (2,)]
    assert [[(p.indexes, p.verdict) for p in o.parts] for o in outcomes] == [
        [((0,), "accepted")],
        [((1,), "accepted")],
        [((2,), "accepted")],
    ]
    assert len(server.requests) == 3


def test_a_fresh_client_starts_with_two_requests_in_flight() -> None:
    with LoopbackServer([Answer(201, delay_s=0.3)]) as server:
        settings = Settings.from_env(environ=env(server.url, CLOUDEYE_MAX_CONCURRENCY="6"))
        outcomes = CloudEyeClient(settings, sleep=no_sleep).send(one_event_chunks(6))

    assert all(outcome.ok for outcome in outcomes)
    # The third request leaves only once one of the first two is answered.
    assert [request.in_flight for request in server.requests[:3]] in ([1, 2, 2], [1, 2, 1])


# --- the concurrency limit ------------------------------------------------------------------------


def fill(limit: client_module.AdaptiveLimit) -> None:
    while limit._in_flight < limit.limit:
        limit.acquire()


def test_a_start_below_one_request_starts_at_one() -> None:
    assert client_module.AdaptiveLimit(8, start=0).limit == 1
    assert client_module.AdaptiveLimit(8, start=1).limit == 1
    assert client_module.AdaptiveLimit(8, start=20).limit == 8


def test_a_success_that_did_not_find_the_limit_full_does_not_grow_it() -> None:
    limit = client_module.AdaptiveLimit(8, start=2)
    limit.acquire()
    limit.release(throttled=False)  # one of two slots used: proves nothing
    assert limit.limit == 2
    fill(limit)
    limit.release(throttled=False)
    assert limit.limit == 3


def test_after_a_429_the_limit_does_not_grow_until_its_retry_after_has_passed() -> None:
    held = client_module.AdaptiveLimit(8)
    held.acquire()
    held.release(throttled=True, retry_after=30.0)
    for _ in range(5):
        fill(held)
        held.release(throttled=False)
    assert held._limit == 4.0

    brief = client_module.AdaptiveLimit(8)
    brief.acquire()
    brief.release(throttled=True, retry_after=0.1)
    time.sleep(0.2)
    fill(brief)
    brief.release(throttled=False)
    assert brief._limit == pytest.approx(4.25)


def test_a_slot_freed_within_the_timeout_is_taken() -> None:
    limit = client_module.AdaptiveLimit(1)
    limit.acquire()
    releaser = threading.Timer(0.2, lambda: limit.release(throttled=False))
    releaser.start()
    try:
        assert limit.acquire(timeout=0.9) is True
    finally:
        releaser.join()


@pytest.mark.usefixtures("own_watchdog")
def test_a_short_exchange_started_during_a_long_one_is_cut_at_its_own_time() -> None:
    with DripServer(drip={1}, slow={0: 1.5}) as server:
        long_one: list[dict[str, Any]] = []
        waiting = threading.Thread(target=lambda: long_one.append(send_one(server.url, "10")))
        waiting.start()
        while server.requests == 0:  # the long exchange is under way
            time.sleep(0.01)
        started = time.monotonic()
        short = send_one(server.url, "0.3")
        waited = time.monotonic() - started
        waiting.join()

    assert short["status"] == "failed" and short["error"].endswith("no whole answer within 0.3 s")
    assert waited < 1.5  # not when the long one ended
    assert long_one[0]["status"] == "accepted"


def test_the_watchdog_never_keeps_the_process_alive() -> None:
    # One exchange from the main thread, as the metrics publisher makes; then the interpreter
    # must end (the watchdog thread, still waiting for work, is a daemon).
    code = f"""
import sys
from forwarder.client import CloudEyeClient
from forwarder.settings import Settings
settings = Settings.from_env(environ={{
    "HUAWEICLOUD_SDK_AK": "ak", "HUAWEICLOUD_SDK_SK": "sk",
    "HUAWEICLOUD_SDK_PROJECT_ID": "{PROJECT}", "CLOUDEYE_ENDPOINT": sys.argv[1]}})
print(CloudEyeClient(settings).post_once(b"[]", 30.0).status)
"""
    with LoopbackServer([Answer(201)]) as server:
        completed = run_command([sys.executable, "-c", code, server.url], cwd=FUNCTION_ROOT, timeout=20)
    assert (completed.returncode, completed.stdout.strip()) == (0, "201"), completed.stderr


def test_an_unexpected_error_inside_the_exchange_fails_the_chunk_by_its_type() -> None:
    # A str body with a character latin-1 lacks: http.client refuses it inside the exchange.
    with LoopbackServer() as server:
        token = {
            "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT,
            "CLOUDEYE_ENDPOINT": server.url,
            "CLOUDEYE_AUTH_TOKEN": "t",
        }
        client = CloudEyeClient(Settings.from_env(environ=token), sleep=no_sleep)
        [outcome] = client.send([Chunk((0, 1), '["\u20ac"]')])  # type: ignore[arg-type]

    assert [(p.indexes, p.verdict, p.error) for p in outcome.parts] == [
        ((0, 1), "failed", "the request could not be sent (UnicodeEncodeError)")
    ]
    assert server.requests == []


def test_after_a_send_that_met_a_429_the_next_starts_narrow_again() -> None:
    script = [Answer(201), Answer(429, retry_after="0"), Answer(201)] + [Answer(201, delay_s=0.3)] * 6
    with LoopbackServer(script) as server:
        settings = Settings.from_env(environ=env(server.url, CLOUDEYE_MAX_CONCURRENCY="6"))
        first = CloudEyeClient(settings, sleep=no_sleep).send(one_event_chunks(1))
        throttled = CloudEyeClient(settings, sleep=no_sleep).send(one_event_chunks(1))
        CloudEyeClient(settings, sleep=no_sleep).send(one_event_chunks(6))

    assert first[0].ok and throttled[0].ok
    assert [request.in_flight for request in server.requests[3:6]] in ([1, 2, 2], [1, 2, 1])


@pytest.mark.parametrize(
    ("status", "meaning"), [(199, "configuration"), (300, "configuration"), (600, "configuration")]
)
def test_statuses_just_outside_the_known_ranges_are_configuration_problems(status, meaning) -> None:
    assert client_module.verdict(status) == meaning


def test_a_retry_after_below_one_second_reaches_the_caller_as_it_is() -> None:
    with LoopbackServer([Answer(503, retry_after="0.5")]) as server:
        settings = Settings.from_env(environ=env(server.url, CLOUDEYE_MAX_ATTEMPTS="1"))
        report = report_events(events(1), settings=settings, sleep=no_sleep)
    assert report.failed == 1
    assert report.retry_after == 0.5


def test_after_a_429_asking_to_wait_the_concurrency_does_not_grow_back_before_the_wait_is_over() -> None:
    # Of the two first requests, one gets 429 "Retry-After: 30" at once: the limit halves to one
    # and stays there for the 30 s (the injected sleep lets the retry go at once), however many
    # requests succeed meanwhile.
    script = [Answer(429, retry_after="30"), Answer(201, delay_s=0.05)]
    with LoopbackServer(script) as server:
        settings = Settings.from_env(environ=env(server.url, CLOUDEYE_MAX_CONCURRENCY="4"))
        outcomes = CloudEyeClient(settings, sleep=no_sleep).send(one_event_chunks(12))

    assert all(outcome.ok for outcome in outcomes) and len(server.requests) == 13
    # (2, not 1: the server may count an answered request for a moment after the client has it.)
    assert max(request.in_flight for request in server.requests[2:]) <= 2


# --- the watchdog and the pool, driven directly ---------------------------------------------------


class _Conn:
    """What the watchdog needs of a connection: its socket."""

    def __init__(self, sock: socket.socket | None) -> None:
        self.sock = sock


def _fired_within(entry: list[Any], seconds: float = 10.0) -> bool:
    # A generous bound: the point is whether the watchdog acts at all, not how fast.
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if entry[3]:
            return True
        time.sleep(0.01)
    return bool(entry[3])


def test_the_watchdog_goes_on_after_an_entry_disarmed_below_a_live_one() -> None:
    # B is disarmed while A (earlier) is still armed, so B stays in the heap until the thread
    # reaches it; the thread must then go on watching, and cut C.
    watchdog = client_module._Watchdog()
    with socket.socket() as a_sock, socket.socket() as c_sock:
        now = time.monotonic()
        a = watchdog.arm(now + 0.05, _Conn(a_sock))  # type: ignore[arg-type]
        b = watchdog.arm(now + 0.1, _Conn(None))  # type: ignore[arg-type]
        assert watchdog.disarm(b) is False
        assert _fired_within(a)
        time.sleep(0.2)  # past B's time: the thread has popped it
        c = watchdog.arm(time.monotonic() + 0.05, _Conn(c_sock))  # type: ignore[arg-type]
        assert _fired_within(c)


def test_the_watchdog_goes_on_after_cutting_a_socket_that_cannot_be_shut_down() -> None:
    # An unconnected socket refuses shutdown() with an OSError: nothing left to cut, and the
    # thread must live on for the next entry.
    watchdog = client_module._Watchdog()
    with socket.socket() as first_sock, socket.socket() as second_sock:
        first = watchdog.arm(time.monotonic() + 0.02, _Conn(first_sock))  # type: ignore[arg-type]
        assert _fired_within(first)
        time.sleep(0.1)
        second = watchdog.arm(time.monotonic() + 0.02, _Conn(second_sock))  # type: ignore[arg-type]
        assert _fired_within(second)


def test_a_pooled_connection_whose_socket_was_closed_is_not_reused() -> None:
    sock = socket.socket()
    sock.close()  # select() refuses a closed socket (ValueError): it is not open
    assert client_module._still_open(_Conn(sock)) is False  # type: ignore[arg-type]
    idle, peer = socket.socketpair()
    with idle, peer:  # connected, nothing to read: open as far as select() can tell
        assert client_module._still_open(_Conn(idle)) is True  # type: ignore[arg-type]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
@pytest.mark.usefixtures("own_watchdog")
def test_a_process_forked_after_use_gets_its_own_watchdog_and_connections() -> None:
    # A server that loads the app, uses it, then forks workers: the parent's watchdog thread does
    # not exist in the child, and its kept-alive socket must not be shared.
    with DripServer(drip={1}) as server:
        assert send_one(server.url, "0.3")["status"] == "accepted"  # starts the watchdog, keeps a socket
        parent_watchdog = client_module._watchdog
        assert parent_watchdog._thread is not None and client_module._pools
        pid = os.fork()
        if pid == 0:  # the child answers by its exit code and never returns into pytest
            code = 1
            try:
                fresh = client_module._watchdog is not parent_watchdog and not client_module._pools
                dripped = send_one(server.url, "0.3")  # only a live watchdog cuts this one
                cut = dripped["error"] == (
                    f"Cloud Eye could not be reached at {server.url}: timed out: no whole answer within 0.3 s"
                )
                code = 0 if fresh and cut else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client_module._watchdog is parent_watchdog  # the parent keeps its own
