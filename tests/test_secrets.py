"""No secret (SK, security token, auth token, ingest token) in repr, str, exception text or logs."""

from __future__ import annotations

import dataclasses
import json
import logging
import traceback

import pytest

from forwarder import report_events
from forwarder.events import now_ms
from forwarder.settings import Secret, Settings, SettingsError
from tests.support.loopback import Answer, LoopbackServer

SK = "SK-7c1e9f0b-secret-key-value"
SECURITY_TOKEN = "SECTOKEN-3b8d2a77-value"
AUTH_TOKEN = "AUTHTOKEN-91ce0f3e-value"
INGEST_TOKEN = "INGEST-5d4f7a10-value"
SECRETS = (SK, SECURITY_TOKEN, AUTH_TOKEN, INGEST_TOKEN)
PROJECT = "0123456789abcdef0123456789abcdef"


pytestmark = pytest.mark.usefixtures("fresh_connection_pool")


def assert_no_secret(text: str) -> None:
    assert text, "nothing to check: the test must look at real output"
    for secret in SECRETS:
        assert secret not in text
        assert secret[:-6] not in text  # nor a recognisable part of it


def full_text(exc: BaseException) -> str:
    """What a log handler would print: message, repr, causes and traceback."""
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


def env(**extra: str) -> dict[str, str]:
    return {
        "HUAWEICLOUD_SDK_AK": "AKIDEXAMPLE",
        "HUAWEICLOUD_SDK_SK": SK,
        "HUAWEICLOUD_SDK_SECURITY_TOKEN": SECURITY_TOKEN,
        "CLOUDEYE_AUTH_TOKEN": AUTH_TOKEN,
        "FORWARDER_INGEST_TOKEN": INGEST_TOKEN,
        "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT,
        "CLOUDEYE_REGION": "ap-southeast-1",
        **extra,
    }


class Context:
    def getSecurityAccessKey(self) -> str:
        return "AGENCYAK"

    def getSecuritySecretKey(self) -> str:
        return SK

    def getSecurityToken(self) -> str:
        return SECURITY_TOKEN


def events(count: int) -> list[dict]:
    now = now_ms()
    return [
        {"event_name": f"e{i}", "event_source": "app.orders", "time": now, "detail": {"content": "x" * 700}}
        for i in range(count)
    ]


# --- repr and str ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: Settings.from_env(environ=env()),
        lambda: Settings.from_env(environ={"HUAWEICLOUD_SDK_PROJECT_ID": PROJECT}, context=Context()),
        lambda: Settings.from_env(
            environ={"RUNTIME_PROJECT_ID": PROJECT, "RUNTIME_FUNC_NAME": "forwarder"},
            headers={
                "X-CFF-Security-Access-Key": "HDRAK",
                "X-CFF-Security-Secret-Key": SK,
                "X-CFF-Security-Token": SECURITY_TOKEN,
            },
        ),
        lambda: Settings.from_env(
            environ={"CLOUDEYE_AUTH_TOKEN": AUTH_TOKEN, "FORWARDER_INGEST_TOKEN": INGEST_TOKEN}
        ),
        lambda: Settings.from_env(
            environ={},
            secret_key=SK,
            security_token=SECURITY_TOKEN,
            auth_token=AUTH_TOKEN,
            ingest_token=INGEST_TOKEN,
            access_key="AK",
        ),
    ],
    ids=["env", "agency-context", "agency-headers", "token", "explicit"],
)
def test_settings_repr_and_str_hide_secrets(build) -> None:
    settings = build()
    # The secrets are really there (so this test can fail)...
    held = [
        s.reveal()
        for s in (settings.secret_key, settings.security_token, settings.auth_token, settings.ingest_token)
        if s
    ]
    assert held and set(held) <= set(SECRETS)
    # ...and never printed.
    for text in (
        repr(settings),
        str(settings),
        f"{settings}",
        f"{settings!r}",
        repr(dataclasses.asdict(settings)),
        repr(vars(settings)),
    ):
        assert_no_secret(text)
        assert "**********" in text


def test_secret_wrapper() -> None:
    secret = Secret(SK)
    assert_no_secret(repr(secret) + str(secret) + f"{secret}" + repr([secret]) + repr({"k": secret}))
    assert secret.reveal() == SK
    assert secret == Secret(SK) and secret != Secret("other") and secret != SK
    assert bool(Secret("")) is False


# --- exception text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"HUAWEICLOUD_SDK_PROJECT_ID": "../x"}, "HUAWEICLOUD_SDK_PROJECT_ID"),
        ({"CLOUDEYE_MAX_ATTEMPTS": "many"}, "CLOUDEYE_MAX_ATTEMPTS"),
        ({"CLOUDEYE_ENDPOINT": "http://ces.example.com"}, "CLOUDEYE_ENDPOINT"),
        ({"CLOUDEYE_ENDPOINT": f"http://user:{SK}@ces.example.com"}, "CLOUDEYE_ENDPOINT"),
        ({"CLOUDEYE_ENDPOINT": f"https://ces.example.com/?token={AUTH_TOKEN}"}, "CLOUDEYE_ENDPOINT"),
        ({"FORWARDER_DEFAULT_SOURCE": "nope"}, "FORWARDER_DEFAULT_SOURCE"),
        ({"CLOUDEYE_REGION": "Nowhere"}, "CLOUDEYE_REGION"),
    ],
)
def test_settings_errors_hide_secrets(overrides: dict, named: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ=env(**overrides))
    assert named in str(caught.value)
    assert_no_secret(full_text(caught.value))


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        (
            {"HUAWEICLOUD_SDK_SK": SK, "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT, "CLOUDEYE_REGION": "eu-de"},
            "HUAWEICLOUD_SDK_AK",
        ),
        ({"HUAWEICLOUD_SDK_SK": SK, "CLOUDEYE_AUTH_TOKEN": AUTH_TOKEN}, "HUAWEICLOUD_SDK_PROJECT_ID"),
        (
            {**env(), "HUAWEICLOUD_SDK_SECURITY_TOKEN": SECURITY_TOKEN[:8] + "\n" + SECURITY_TOKEN[8:]},
            "HUAWEICLOUD_SDK_SECURITY_TOKEN",
        ),
        (
            {
                **env(),
                "HUAWEICLOUD_SDK_AK": "",
                "HUAWEICLOUD_SDK_SK": "",
                "CLOUDEYE_AUTH_TOKEN": AUTH_TOKEN + "\x00",
            },
            "CLOUDEYE_AUTH_TOKEN",
        ),
    ],
    ids=["sk-without-ak", "no-project", "token-with-newline", "auth-token-with-nul"],
)
def test_sending_errors_hide_secrets(environ: dict, named: str) -> None:
    settings = Settings.from_env(environ=environ)
    with pytest.raises(SettingsError) as caught:
        report_events(events(1), settings=settings)
    assert named in str(caught.value)
    assert_no_secret(full_text(caught.value))


def test_agency_token_with_a_line_break_never_reaches_http_client() -> None:
    # http.client would raise "Invalid header value b'<the token>'": the secret in the message.
    class BadContext(Context):
        def getSecurityToken(self) -> str:
            return SECURITY_TOKEN[:5] + "\r\n" + SECURITY_TOKEN[5:]

    with LoopbackServer() as server:
        settings = Settings.from_env(
            environ={"HUAWEICLOUD_SDK_PROJECT_ID": PROJECT, "CLOUDEYE_ENDPOINT": server.url},
            context=BadContext(),
        )
        with pytest.raises(SettingsError) as caught:
            report_events(events(3), settings=settings)
    assert server.requests == []
    assert "security token" in str(caught.value)
    assert_no_secret(full_text(caught.value))


# --- client failures and logs ---------------------------------------------------------------------

FAILURES = [
    [
        Answer(
            401,
            {"error_code": "APIGW.0301", "error_msg": "Incorrect IAM authentication information"},
            request_id="req-401",
        )
    ],
    [Answer(403, {"error": {"code": "APIGW.0302", "message": "The IAM user is not authorized"}})],
    [Answer(drop=True)],
    [Answer(503, b"<html>Service Unavailable</html>", retry_after="0")],
]


@pytest.mark.parametrize("script", FAILURES, ids=["401", "403", "dropped", "503"])
@pytest.mark.parametrize("credentials", ["aksk+token", "auth-token"])
def test_failed_runs_leak_nothing(script, credentials, caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level
    with LoopbackServer(script) as server:
        extra = {
            "CLOUDEYE_ENDPOINT": server.url,
            "CLOUDEYE_MAX_ATTEMPTS": "2",
            "CLOUDEYE_MAX_REQUEST_BYTES": "1024",
        }
        if credentials == "auth-token":
            extra |= {
                "HUAWEICLOUD_SDK_AK": "",
                "HUAWEICLOUD_SDK_SK": "",
                "HUAWEICLOUD_SDK_SECURITY_TOKEN": "",
            }
        settings = Settings.from_env(environ=env(**extra))
        report = report_events(events(4), settings=settings, sleep=lambda _s: None)

    # The run really failed, and the secrets really went over the wire (the test is not vacuous).
    assert report.failed == 4 and report.accepted == 0
    sent = server.requests[0].headers
    if credentials == "auth-token":
        assert sent["X-Auth-Token"] == AUTH_TOKEN
    else:
        assert sent["X-Security-Token"] == SECURITY_TOKEN

    body = json.dumps(report.to_dict())
    assert '"failed": 4' in body
    assert_no_secret(body)
    assert_no_secret(json.dumps(report.counts()) + repr(report))
    for result in report.results:
        assert_no_secret(result["error"])
    captured = capsys.readouterr()
    for text in (caplog.text, captured.out, captured.err):
        for secret in SECRETS:
            assert secret not in text
    for record in caplog.records:
        assert_no_secret(record.getMessage() + repr(record.args))


# --- upstream text is scrubbed ------------------------------------------------------------------

UNKNOWN_AK = "AKUNKNOWN4C2D9E7F1A"


def test_a_401_naming_the_access_key_reaches_no_answer_log_or_exception(cloudeye, monkeypatch, caplog):
    import index
    from forwarder import DeliveryError
    from tests.support.entry_helpers import FakeContext, make_events

    # GIVEN keys Cloud Eye does not know: its 401 quotes the access key ("ak:<value>")
    caplog.set_level(logging.INFO, logger="forwarder")
    for name, value in cloudeye.forwarder_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", UNKNOWN_AK)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SECURITY_TOKEN", SECURITY_TOKEN)
    monkeypatch.setenv("CLOUDEYE_MAX_ATTEMPTS", "1")
    # WHEN the API Gateway entry and a Kafka batch send through them
    answer = index.handler(
        {"httpMethod": "POST", "headers": {}, "body": json.dumps(make_events(2))}, FakeContext()
    )
    kafka = {"records": [{"messages": [json.dumps(make_events(2))], "topic_id": "t"}]}
    with pytest.raises(DeliveryError) as raised:
        index.handler(kafka, FakeContext())
    # THEN Cloud Eye's refusal is there, but not the key (nor any other credential)
    assert answer["statusCode"] in (401, 502, 503), answer
    body = answer["body"]
    assert "401" in body and "***" in body
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for text in (body, logged, full_text(raised.value)):
        assert UNKNOWN_AK not in text
        assert_no_secret(text)


def test_an_upstream_echoing_the_request_headers_leaks_no_token() -> None:
    # A proxy that refuses the request quoting the headers it was sent.
    echoed = (
        f"X-Security-Token: {SECURITY_TOKEN}\n"
        "Authorization: SDK-HMAC-SHA256 Access=AKIDEXAMPLE, SignedHeaders=host, Signature=ab"
    )
    with LoopbackServer([Answer(status=400, body=echoed.encode())] * 2) as upstream:
        settings = Settings.from_env(environ=env(CLOUDEYE_ENDPOINT=upstream.url, CLOUDEYE_MAX_ATTEMPTS="1"))
        report = report_events(events(1), settings=settings)
    text = json.dumps(report.to_dict())
    assert "Cloud Eye answered 400" in text
    assert "AKIDEXAMPLE" not in text
    assert_no_secret(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Get secretKey failed,ak:AKQ1W2E3,err:ak not exist", "Get secretKey failed,ak:***,err:ak not exist"),
        (
            "Authorization: SDK-HMAC-SHA256 Access=AKQ1W2E3, SignedHeaders=host",
            "Authorization: SDK-HMAC-SHA256 Access=***, SignedHeaders=host",
        ),
        (f"token {SECURITY_TOKEN} and {json.dumps(AUTH_TOKEN)}", 'token *** and "***"'),
        ("nothing to hide here: BREAK, TAKEN", "nothing to hide here: BREAK, TAKEN"),
    ],
)
def test_scrub_masks_credentials_and_key_fragments(text: str, expected: str) -> None:
    from forwarder.scrub import scrub

    settings = Settings(
        access_key="AK",
        secret_key=Secret(SK),
        security_token=Secret(SECURITY_TOKEN),
        auth_token=Secret(AUTH_TOKEN),
    )
    assert scrub(text, settings) == expected
