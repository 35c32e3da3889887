"""The emulator's HTTP layer through Flask's test client (no socket): auth, bodies, errors, control."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import pytest

from emulator import auth
from emulator.models import BACKEND
from forwarder import signer
from tests.support.emulator_server import load_emulator_app
from tests.support.entry_helpers import short_event

NOW = 1_700_000_000_000
NOW_DT = datetime.fromtimestamp(NOW / 1000, tz=timezone.utc)
PROJECT = "project-a"
HOST = "ces.emulator.test"


def event(name: str = "DiskFull", **detail: Any) -> dict[str, Any]:
    return short_event(name, time_ms=NOW, **detail)


@pytest.fixture(scope="module")
def app() -> Any:
    return load_emulator_app()


@pytest.fixture
def client(app: Any) -> Iterator[Any]:
    BACKEND.reset()
    BACKEND.set_clock(lambda: NOW)
    yield app.test_client()
    BACKEND.reset()


def keys() -> auth.AuthSettings:
    """The keys the emulator accepts right now (env, demo defaults, or the test server's pin)."""
    return auth.AuthSettings.from_env()


def signed(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    query: dict[str, Any] | None = None,
    secret_key: str | None = None,
    access_key: str | None = None,
    moment: datetime = NOW_DT,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    headers = {"Host": HOST, "Content-Type": "application/json;charset=UTF-8", **(extra or {})}
    pairs = [(k, str(v)) for k, v in (query or {}).items()]
    return signer.sign(
        method,
        path,
        pairs,
        headers,
        body,
        access_key or keys().access_key,
        secret_key or keys().secret_key,
        moment=moment,
    )


def post(client: Any, items: Any, *, project: str = PROJECT, **sign_options: Any) -> Any:
    body = items if isinstance(items, bytes) else json.dumps(items).encode()
    path = f"/V1.0/{project}/events"
    return client.post(path, data=body, headers=signed("POST", path, body, **sign_options))


def get(client: Any, path: str, query: dict[str, Any] | None = None) -> Any:
    target = path + (f"?{urlencode(query)}" if query else "")
    return client.get(target, headers=signed("GET", path, query=query))


# --- success -----------------------------------------------------------------------------------


def test_a_signed_post_is_stored_and_answered_201(client: Any) -> None:
    response = post(client, [event("First"), event("Second")])

    assert response.status_code == 201
    assert response.content_type.startswith("application/json")
    assert len(response.headers["X-Request-Id"]) == 32
    assert [a["event_name"] for a in response.get_json()] == ["First", "Second"]
    assert [s.event["event_name"] for s in BACKEND.stored_events(PROJECT)] == ["First", "Second"]


def test_the_query_apis_answer_what_was_stored(client: Any) -> None:
    post(client, [event("First", event_user="alice"), event("Second")])

    listed = get(client, f"/V1.0/{PROJECT}/events", {"event_type": "EVENT.CUSTOM", "limit": 10})
    detail = get(client, f"/V1.0/{PROJECT}/event/First", {"event_type": "EVENT.CUSTOM"})

    assert listed.status_code == 200 and listed.get_json()["meta_data"] == {"total": 2}
    assert detail.status_code == 200
    assert detail.get_json()["event_users"] == ["alice"]
    assert detail.get_json()["event_info"][0]["event_name"] == "First"


@pytest.mark.parametrize(
    ("path", "query", "words"),
    [
        (f"/V1.0/{PROJECT}/events", {"limit": "many"}, "limit must be an integer"),
        (f"/V1.0/{PROJECT}/events", {"limit": 500}, "limit must be between 1 and 100"),
        (f"/V1.0/{PROJECT}/event/First", {}, "event_type is required"),
    ],
)
def test_bad_query_parameters_get_400_ces_0013(
    client: Any, path: str, query: dict[str, Any], words: str
) -> None:
    response = get(client, path, query)

    assert response.status_code == 400
    assert response.get_json()["error_code"] == "ces.0013"
    assert words in response.get_json()["error_msg"]


# --- authentication ----------------------------------------------------------------------------


def _wrong_host(client: Any) -> Any:
    body = json.dumps([event()]).encode()
    headers = signed("POST", f"/V1.0/{PROJECT}/events", body)
    headers["Host"] = "somewhere.else"
    return client.post(f"/V1.0/{PROJECT}/events", data=body, headers=headers)


def _tampered(client: Any) -> Any:
    body = json.dumps([event()]).encode()
    headers = signed("POST", f"/V1.0/{PROJECT}/events", body)
    return client.post(
        f"/V1.0/{PROJECT}/events", data=body.replace(b"DiskFull", b"DiskGone"), headers=headers
    )


def _unsigned_host(client: Any) -> Any:
    body = json.dumps([event()]).encode()
    headers = signer.sign(
        "POST", f"/V1.0/{PROJECT}/events", [], {"Content-Type": "application/json"}, body,
        keys().access_key, keys().secret_key, moment=NOW_DT,
    )  # fmt: skip
    return client.post(f"/V1.0/{PROJECT}/events", data=body, headers=headers)


@pytest.mark.parametrize(
    ("send", "words"),
    [
        (lambda c: c.post(f"/V1.0/{PROJECT}/events", json=[event()]), "no authentication information"),
        (lambda c: post(c, [event()], secret_key="not-the-secret"), "verify aksk signature fail"),
        (lambda c: post(c, [event()], access_key="someone-else"), "ak:someone-else,err:ak not exist"),
        (lambda c: post(c, [event()], moment=NOW_DT - timedelta(minutes=16)), "at most 15 minutes"),
        (lambda c: post(c, [event()], moment=NOW_DT + timedelta(minutes=16)), "at most 15 minutes"),
        (_wrong_host, "verify aksk signature fail"),
        (_tampered, "verify aksk signature fail"),
        (_unsigned_host, "SignedHeaders must include host"),
        (
            lambda c: c.post(
                f"/V1.0/{PROJECT}/events", json=[event()], headers={"Authorization": "Basic dXNlcjpwYXNz"}
            ),
            "is not 'SDK-HMAC-SHA256",
        ),
        (
            lambda c: c.post(f"/V1.0/{PROJECT}/events", json=[event()], headers={"X-Auth-Token": "t"}),
            "EMULATOR_TOKEN",
        ),
    ],
    ids=[
        "no-auth",
        "wrong-sk",
        "wrong-ak",
        "stale-date",
        "future-date",
        "host-changed",
        "body-changed",
        "host-unsigned",
        "other-scheme",
        "token-off",
    ],
)
def test_unauthenticated_posts_get_401_in_gateway_shape_and_store_nothing(
    client: Any, send: Any, words: str
) -> None:
    response = send(client)

    assert response.status_code == 401
    body = response.get_json()
    assert body["error_code"] == "APIGW.0301"
    assert body["error_msg"].startswith("Incorrect IAM authentication information: ")
    assert words in body["error_msg"]
    assert body["request_id"] == response.headers["X-Request-Id"]
    assert BACKEND.stored_events() == []


def test_a_date_within_15_minutes_is_accepted(client: Any) -> None:
    assert post(client, [event()], moment=NOW_DT - timedelta(minutes=14)).status_code == 201


def test_the_query_apis_need_authentication_too(client: Any) -> None:
    assert client.get(f"/V1.0/{PROJECT}/events").status_code == 401
    assert client.get(f"/V1.0/{PROJECT}/event/X?event_type=EVENT.CUSTOM").status_code == 401


def test_iam_token_is_accepted_when_it_equals_emulator_token(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMULATOR_TOKEN", "token-for-tests")
    path = f"/V1.0/{PROJECT}/events"

    good = client.post(path, json=[event()], headers={"X-Auth-Token": "token-for-tests"})
    bad = client.post(path, json=[event("Other")], headers={"X-Auth-Token": "another-token"})

    assert good.status_code == 201
    assert bad.status_code == 401 and "decrypt token fail" in bad.get_json()["error_msg"]


def test_security_token_must_match_when_emulator_security_token_is_set(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMULATOR_SECURITY_TOKEN", "temporary-token")

    with_token = post(client, [event("A")], extra={"X-Security-Token": "temporary-token"})
    wrong_token = post(client, [event("B")], extra={"X-Security-Token": "stolen"})
    without = post(client, [event("C")])

    assert with_token.status_code == 201
    assert (
        wrong_token.status_code == 401 and "security token is invalid" in wrong_token.get_json()["error_msg"]
    )
    assert without.status_code == 401 and "X-Security-Token" in without.get_json()["error_msg"]


def test_any_signed_security_token_is_accepted_when_none_is_configured(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EMULATOR_SECURITY_TOKEN", raising=False)

    assert post(client, [event()], extra={"X-Security-Token": "any-token"}).status_code == 201


def test_environment_keys_are_read_per_request(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    saved = dict(auth._pinned)
    auth.unpin()
    try:
        monkeypatch.setenv("EMULATOR_AK", "rotated-ak")
        monkeypatch.setenv("EMULATOR_SK", "rotated-sk")
        rotated = post(client, [event()], access_key="rotated-ak", secret_key="rotated-sk")
        monkeypatch.delenv("EMULATOR_AK")
        monkeypatch.delenv("EMULATOR_SK")
        demo = post(client, [event("Demo")], access_key="demo-ak", secret_key="demo-sk-not-secret")
    finally:
        auth.pin(**saved)

    assert rotated.status_code == 201
    assert demo.status_code == 201


def test_x_project_id_must_match_the_url(client: Any) -> None:
    response = post(client, [event()], extra={"X-Project-Id": "another-project"})

    assert response.status_code == 400
    assert response.get_json()["error_code"] == "ces.0003"


# --- bodies ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ([event(), event("Bad", event_level="Serious")], "ces.0014", "event [1] detail.event_level"),
        ([{**event(), "time": 1_700_000_000}], "ces.0014", "event [0] time: 1700000000 looks like seconds"),
        ([event(event_type="EVENT.SYS")], "ces.0014", "EVENT.SYS is for Cloud Eye's own events"),
        ([], "ces.0014", "1 to 100 events, this one holds 0"),
        ([event(f"E{i}") for i in range(101)], "ces.0014", "1 to 100 events, this one holds 101"),
        (b"this is not json", "ces.0014", "the body is not valid JSON"),
        (b'{"event_name": "x"}', "ces.0014", "must be a JSON array of events"),
        (b"[NaN]", "ces.0014", "NaN is not valid JSON"),
        (b"\xff\xfe[]", "ces.0014", "not UTF-8"),
        (b"", "ces.0001", "the body is empty"),
    ],
    ids=["bad-level", "seconds", "sys", "zero", "101", "not-json", "object", "nan", "not-utf8", "empty"],
)
def test_bad_bodies_get_400_with_a_readable_reason_and_store_nothing(
    client: Any, body: Any, code: str, words: str
) -> None:
    response = post(client, body)

    assert response.status_code == 400
    assert response.get_json()["error_code"] == code
    assert words in response.get_json()["error_msg"]
    assert set(response.get_json()) == {"error_code", "error_msg"}
    assert BACKEND.stored_events() == []


def test_bodies_over_the_size_limit_get_413(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMULATOR_MAX_BODY_BYTES", "2048")

    response = post(client, [event(content="x" * 3000)])

    assert response.status_code == 413
    assert response.get_json()["error_code"] == "APIGW.0201"
    assert BACKEND.stored_events() == []


# --- routing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/V2.0/p/events", "The API does not exist or has not been published in the environment."),
        ("POST", "/V1.0/p/metrics", "The API does not exist or has not been published in the environment."),
        ("DELETE", "/V1.0/p/events", "The API does not exist."),
        ("POST", "/V1.0/p/event/DiskFull", "The API does not exist."),
    ],
)
def test_unknown_apis_get_404_in_gateway_shape(client: Any, method: str, path: str, message: str) -> None:
    response = client.open(path, method=method)

    assert response.status_code == 404
    assert response.get_json()["error_code"] == "APIGW.0101"
    assert response.get_json()["error_msg"] == message
    assert response.headers["X-Request-Id"] == response.get_json()["request_id"]


# --- control endpoints -------------------------------------------------------------------------


def test_control_endpoints_report_and_reset(client: Any) -> None:
    post(client, [event()])

    raw = client.get("/_emulator/events").get_json()
    stats = client.get("/_emulator/stats").get_json()
    log = client.get("/_emulator/requests").get_json()["requests"]

    assert raw["count"] == 1
    assert raw["events"][0]["event"] == event() and raw["events"][0]["project_id"] == PROJECT
    assert stats["posts_received"] == 1 and stats["responses"] == {"201": 1}
    assert log[0]["status"] == 201 and log[0]["events"] == 1 and log[0]["method"] == "POST"
    assert client.post("/_emulator/reset").get_json() == {"reset": True}
    assert client.get("/_emulator/events").get_json()["count"] == 0


def test_fault_plan_round_trips_and_bad_plans_are_refused(client: Any) -> None:
    set_plan = client.post("/_emulator/faults", json={"status": 503, "count": 2, "retry_after": 1})
    shown = client.get("/_emulator/faults").get_json()
    bad = client.post("/_emulator/faults", data=b"{not json")
    typo = client.post("/_emulator/faults", json={"max_concurent": 4})
    cleared = client.delete("/_emulator/faults").get_json()

    assert set_plan.status_code == 200
    assert shown["faults"] == [
        {"kind": "status", "count": 2, "delay_ms": 0, "scope": "events", "status": 503, "retry_after": 1}
    ]
    assert bad.status_code == 400 and bad.get_json()["error_code"] == "EMULATOR.0400"
    assert typo.status_code == 400 and "max_concurent" in typo.get_json()["error_msg"]
    assert cleared["faults"] == []


def test_injected_faults_can_bring_their_own_body(client: Any) -> None:
    shape = {"http_code": 503, "message": {"code": "ces.0007", "details": "maintenance"}}
    client.post("/_emulator/faults", json={"status": 503, "body": shape})

    response = post(client, [event()])

    assert response.status_code == 503 and response.get_json() == shape


def test_the_clock_endpoint_freezes_and_releases_time(client: Any) -> None:
    frozen = client.post("/_emulator/clock", json={"now_ms": NOW + 5}).get_json()
    shifted = client.post("/_emulator/clock", json={"offset_ms": -3_600_000}).get_json()
    bad = client.post("/_emulator/clock", json={"now_ms": "soon"})
    real = client.post("/_emulator/clock", json={}).get_json()

    assert frozen == {"now_ms": NOW + 5}
    assert abs(shifted["now_ms"] + 3_600_000 - real["now_ms"]) < 60_000
    assert bad.status_code == 400
    assert real["now_ms"] > NOW


def test_unknown_control_paths_get_404(client: Any) -> None:
    assert client.get("/_emulator/nothing").status_code == 404
    assert client.get("/_emulator/reset").status_code == 404


def test_the_html_page_escapes_what_events_carry(client: Any) -> None:
    post(client, [event("Hostile", content="<script>alert('x')</script> & more")])

    response = client.get("/_emulator/")

    html = response.get_data(as_text=True)
    assert response.status_code == 200 and response.content_type.startswith("text/html")
    assert "Hostile" in html
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in html
