"""SDK-HMAC-SHA256: the published vectors, agreement with huaweicloudsdkcore's Signer, verify()."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator import signature as emulator_signature
from forwarder import signer

HOST = "service.endpoint.myhuaweicloud.com"
DATE = "20200608T023900Z"
ROOT = Path(__file__).resolve().parent.parent
# A zone far from UTC (UTC+8 all year), where a local-time date is eight hours off.
FAR_ZONE = "Asia/Shanghai"


def _sdk_sign(method, path, query, headers, body, ak, sk) -> dict[str, str]:
    """What the official SDK puts in the headers (it mutates what it is given: pass copies)."""
    request = SdkRequest(
        method=method,
        schema="https",
        host=HOST,
        resource_path=path,
        query_params=list(query),
        header_params=dict(headers),
        body=body,
    )
    return Signer(BasicCredentials(ak, sk)).sign(request).header_params


def _signature(authorization: str) -> str:
    parsed = signer.parse_authorization(authorization)
    assert parsed is not None, authorization
    return parsed[2]


# --- the published vectors (huaweicloudsdkcore's own signer tests) -----------------------------


@pytest.mark.parametrize(
    ("method", "body", "expected"),
    [
        ("GET", b"", "cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842"),
        (
            "POST",
            b'{"name":"test","id":1}',
            "436b1ac0a1ae03705934bb70ef2f2e09f7bfed2117d731a38235053199323a1f",
        ),
    ],
)
def test_published_vectors(method: str, body: bytes, expected: str) -> None:
    headers = {"Host": HOST, "X-Sdk-Date": DATE}
    signed = signer.sign(method, "/resources", [("size", "1")], headers, body, "AccessKey", "SecretKey")

    assert signed["Authorization"] == (
        f"SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=host;x-sdk-date, Signature={expected}"
    )
    assert signed["X-Sdk-Date"] == DATE
    # The caller's dict is not modified.
    assert "Authorization" not in headers
    # And the official SDK agrees on the same request (guards the oracle used below).
    assert (
        _sdk_sign(method, "/resources", [("size", "1")], headers, body, "AccessKey", "SecretKey")[
            "Authorization"
        ]
        == signed["Authorization"]
    )


def test_date_header_added_when_missing() -> None:
    moment = datetime(2020, 6, 8, 2, 39, 0, tzinfo=timezone.utc)
    signed = signer.sign(
        "GET", "/resources", [("size", "1")], {"Host": HOST}, b"", "AccessKey", "SecretKey", moment=moment
    )
    assert signed["X-Sdk-Date"] == DATE
    assert _signature(signed["Authorization"]) == (
        "cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842"
    )


def test_canonical_pieces() -> None:
    assert signer.canonical_uri("/V1.0/p/events") == "/V1.0/p/events/"
    assert signer.canonical_uri("/a b/é") == "/a%20b/%C3%A9/"
    assert signer.canonical_uri("/a%20b/") == "/a%20b/"
    assert signer.canonical_query([("b", "2"), ("a", "x y"), ("a", ""), ("", "v")]) == "=v&a=&a=x%20y&b=2"
    assert signer.canonical_query([("flag", True)]) == "flag=true"
    # Like the SDK, numbers sort as numbers, not as their text ("10" < "9").
    assert signer.canonical_query([("limit", 10), ("limit", 9), ("flag", False)]) == (
        "flag=false&limit=9&limit=10"
    )


def test_numeric_query_values_sign_like_the_sdk() -> None:
    headers = {"Host": HOST, "X-Sdk-Date": DATE}
    query = [("limit", 10), ("limit", 9), ("flag", False)]
    ours = signer.sign("GET", "/r", query, headers, b"", "AK", "SK")
    assert ours["Authorization"] == _sdk_sign("GET", "/r", query, headers, b"", "AK", "SK")["Authorization"]
    assert _signature(ours["Authorization"]) == (
        "9d8e058d1e706afa2f56adebdb60d28d2b3106e32d804f891214b6d66d7b341f"
    )


# --- the date comes from the real clock, in UTC whatever the machine's zone ---------------------


@pytest.fixture
def far_zone(monkeypatch: pytest.MonkeyPatch):
    """The process's local zone set to UTC+8 for the test, then restored."""
    monkeypatch.setenv("TZ", FAR_ZONE)
    time.tzset()
    try:
        # Guard: the zone really changed, or the test below would prove nothing.
        assert time.localtime().tm_gmtoff == 8 * 3600
        yield
    finally:
        monkeypatch.undo()
        time.tzset()


def _utc_dates_between(before: float, after: float) -> set[str]:
    """Every X-Sdk-Date a clock read between the two moments can give, computed with time.gmtime."""
    return {time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(s)) for s in range(int(before), int(after) + 1)}


def test_date_from_the_clock_is_utc_in_a_far_zone(far_zone) -> None:
    before = time.time()
    signed = signer.sign("GET", "/resources", [], {"Host": HOST}, b"", "AccessKey", "SecretKey")
    after = time.time()

    assert signed["X-Sdk-Date"] in _utc_dates_between(before, after)
    assert signer.sdk_date() in _utc_dates_between(before, time.time())
    # The signature covers that date exactly as the official SDK computes it.
    with_date = {"Host": HOST, "X-Sdk-Date": signed["X-Sdk-Date"]}
    assert signed["Authorization"] == _sdk_sign(
        "GET", "/resources", [], with_date, b"", "AccessKey", "SecretKey"
    )["Authorization"]


def test_signer_tests_pass_under_a_far_zone() -> None:
    """This whole file, run by another interpreter whose TZ is UTC+8 from the start."""
    env = {**os.environ, "TZ": FAR_ZONE}
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "not under_a_far_zone",
         str(Path(__file__))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert " passed" in completed.stdout and " failed" not in completed.stdout
    assert signer.signed_header_names({"Host": "h", "X-Sdk-Date": "d", "X_Under": "u"}) == [
        "host",
        "x-sdk-date",
    ]


# --- agreement with the official SDK on generated requests ------------------------------------

_PATH_CHARS = "abcXYZ019-_.~ é中€😀+=&@!$'()*,;:%"
_QUERY_CHARS = "abz09-_.~ é中/?=&+%"
_HEADER_VALUE_CHARS = "abcXYZ019-_.:/;=, é"
_CONTENT_TYPES = [
    "application/json;charset=UTF-8",
    "application/json",
    "application/bson",
    "text/plain",
    "application/octet-stream",
    "application/x-ndjson",
]


def _random_text(rng: random.Random, chars: str, low: int, high: int) -> str:
    return "".join(rng.choice(chars) for _ in range(rng.randint(low, high)))


def _random_request(rng: random.Random) -> tuple:
    method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH", "post", "get"])
    segments = [_random_text(rng, _PATH_CHARS, 0, 8) for _ in range(rng.randint(1, 4))]
    path = "/" + "/".join(segments)
    if rng.random() < 0.3:
        path += "/"
    keys = [_random_text(rng, _QUERY_CHARS, 0, 5) for _ in range(rng.randint(0, 3))]
    query = []
    for _ in range(rng.randint(0, 6)):
        key = rng.choice(keys) if keys and rng.random() < 0.6 else _random_text(rng, _QUERY_CHARS, 0, 5)
        value = "" if rng.random() < 0.25 else _random_text(rng, _QUERY_CHARS, 0, 8)
        query.append((key, value))
    if query and rng.random() < 0.3:
        query.append(rng.choice(query))  # an exact repeat of a key and value
    moment = datetime(2020, 1, 1, tzinfo=timezone.utc).timestamp() + rng.randint(0, 10**8)
    headers = {
        "Host": rng.choice([HOST, "ces.ap-southeast-1.myhuaweicloud.com", "127.0.0.1:8900"]),
        "X-Sdk-Date": datetime.fromtimestamp(moment, timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
    }
    if rng.random() < 0.7:
        headers["Content-Type"] = rng.choice(_CONTENT_TYPES)
    if rng.random() < 0.6:
        headers["X-Project-Id"] = _random_text(rng, "0123456789abcdef", 32, 32)
    if rng.random() < 0.4:
        headers["X-Security-Token"] = _random_text(rng, "ABCxyz0189+/=", 20, 200)
    if rng.random() < 0.3:
        headers["X-Custom-Header"] = "  " + _random_text(rng, _HEADER_VALUE_CHARS, 0, 20) + " "
    if rng.random() < 0.3:
        headers["X_Not_Signed"] = "underscores are left out of SignedHeaders"
    if rng.random() < 0.4:
        body = b""
    else:
        body = _random_text(rng, '{}[]":,abc é中0123456789\n', 1, 300).encode("utf-8")
    ak = _random_text(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 20, 20)
    sk = _random_text(rng, "abcdefghijklmnopqrstuvwxyzABC0123456789", 40, 40)
    return method, path, query, headers, body, ak, sk


def _assert_agrees(method, path, query, headers, body, ak, sk) -> None:
    ours = signer.sign(method, path, query, headers, body, ak, sk)
    theirs = _sdk_sign(method, path, query, headers, body, ak, sk)
    assert ours["Authorization"] == theirs["Authorization"], (method, path, query, headers, body)
    # Same extra headers (X-Sdk-Content-Sha256 for non-JSON payloads), same values once stripped.
    assert set(ours) == set(theirs)


def test_agrees_with_sdk_on_300_seeded_requests() -> None:
    rng = random.Random(20200608)
    requests = [_random_request(rng) for _ in range(300)]
    # The generator covers the hard cases (so this test cannot pass on trivial inputs).
    assert any(" " in r[1] for r in requests)
    assert any(not r[1].isascii() for r in requests)
    assert any(len({k for k, _ in r[2]}) < len(r[2]) for r in requests)  # repeated keys
    assert any(k == "" or v == "" for r in requests for k, v in r[2])  # empty keys/values
    assert any(r[4] == b"" for r in requests) and any(r[4] for r in requests)
    assert any("X-Security-Token" in r[3] for r in requests)
    for request in requests:
        _assert_agrees(*request)


_segment = st.text(alphabet=st.sampled_from(list(_PATH_CHARS)), max_size=10)
_query_text = st.text(alphabet=st.sampled_from(list(_QUERY_CHARS)), max_size=8)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    segments=st.lists(_segment, min_size=1, max_size=4),
    query=st.lists(st.tuples(_query_text, _query_text), max_size=6),
    content_type=st.none() | st.sampled_from(_CONTENT_TYPES),
    project_id=st.none() | st.text(alphabet="0123456789abcdef", min_size=1, max_size=32),
    token=st.none() | st.text(alphabet="ABCxyz0189+/=", min_size=1, max_size=64),
    body=st.binary(max_size=200),
)
def test_agrees_with_sdk_property(method, segments, query, content_type, project_id, token, body) -> None:
    headers = {"Host": HOST, "X-Sdk-Date": DATE}
    if content_type:
        headers["Content-Type"] = content_type
    if project_id:
        headers["X-Project-Id"] = project_id
    if token:
        headers["X-Security-Token"] = token
    _assert_agrees(method, "/" + "/".join(segments), query, headers, body, "AccessKey", "SecretKey")


def test_non_json_payload_is_unsigned_like_the_sdk() -> None:
    headers = {"Host": HOST, "X-Sdk-Date": DATE, "Content-Type": "text/plain"}
    signed = signer.sign("POST", "/a", [], headers, b"hello", "AK", "SK")
    assert signed["X-Sdk-Content-Sha256"] == "UNSIGNED-PAYLOAD"
    assert "x-sdk-content-sha256" in signer.parse_authorization(signed["Authorization"])[1]
    json_signed = signer.sign(
        "POST", "/a", [], {**headers, "Content-Type": "application/json"}, b"{}", "AK", "SK"
    )
    assert "X-Sdk-Content-Sha256" not in json_signed


# --- parse_authorization and verify -----------------------------------------------------------


def _signed_request():
    headers = {
        "Host": HOST,
        "Content-Type": "application/json;charset=UTF-8",
        "X-Project-Id": "0123456789abcdef",
        "X-Security-Token": "tok+/=",
        "X-Sdk-Date": DATE,
    }
    body = b'[{"event_name":"a"}]'
    signed = signer.sign("POST", "/V1.0/0123456789abcdef/events", [], headers, body, "AccessKey", "SecretKey")
    return signed, body


def test_parse_authorization_round_trip() -> None:
    signed, _ = _signed_request()
    access, names, signature = signer.parse_authorization(signed["Authorization"])
    assert access == "AccessKey"
    assert names == ["content-type", "host", "x-project-id", "x-sdk-date", "x-security-token"]
    # The official SDK's signature for the same request.
    assert signature == "b353aaf282bcbad42d33a73fa104d571bf6f4720e3da03a11c39e385496ec0c2"


# The emulator checks signatures with its own code: both parsers must refuse the same headers.
@pytest.mark.parametrize(
    "parse",
    [signer.parse_authorization, emulator_signature.parse_authorization],
    ids=["forwarder", "emulator"],
)
@pytest.mark.parametrize(
    "value",
    [
        "",
        "Bearer abc",
        "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host",
        "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host, Signature=not-hex",
        "SDK-HMAC-SHA256 Access=ak, SignedHeaders=host;x-sdk-date, Signature=not-hex",
        "SDK-HMAC-SM3 Access=AK, SignedHeaders=host, Signature=abcdef",
    ],
)
def test_parse_authorization_refuses_malformed(parse, value: str) -> None:
    assert parse(value) is None


def _verify(signed: dict[str, str], body: bytes, secret_key: str, *, path="/V1.0/0123456789abcdef/events"):
    _, names, signature = signer.parse_authorization(signed["Authorization"])
    # A server sees header names in whatever case: verify must not care.
    received = {name.lower(): value for name, value in signed.items()}
    return signer.verify("POST", path, [], received, body, names, signature, secret_key)


def test_verify_accepts_the_right_key() -> None:
    signed, body = _signed_request()
    assert _verify(signed, body, "SecretKey") is True


def test_verify_refuses_wrong_key_and_tampering() -> None:
    signed, body = _signed_request()
    assert _verify(signed, body, "SecretKeY") is False
    assert _verify(signed, body + b" ", "SecretKey") is False
    assert _verify(signed, body, "SecretKey", path="/V1.0/other/events") is False
    assert _verify({**signed, "X-Project-Id": "other"}, body, "SecretKey") is False
    assert _verify({**signed, "X-Sdk-Date": "20200608T024000Z"}, body, "SecretKey") is False


def test_verify_accepts_the_official_sdk_signature() -> None:
    headers = {"Host": HOST, "Content-Type": "application/json", "X-Sdk-Date": DATE}
    body = b'{"name":"test","id":1}'
    theirs = _sdk_sign("POST", "/V1.0/p/events", [("a", "1")], headers, body, "AccessKey", "SecretKey")
    _, names, signature = signer.parse_authorization(theirs["Authorization"])
    assert signer.verify("POST", "/V1.0/p/events", [("a", "1")], theirs, body, names, signature, "SecretKey")
    assert not signer.verify(
        "POST", "/V1.0/p/events", [("a", "2")], theirs, body, names, signature, "SecretKey"
    )


def test_unsigned_payload_header_only_counts_when_signed() -> None:
    signed, body = _signed_request()
    # An attacker adding the header (not in SignedHeaders) cannot swap the body.
    forged = {**signed, "X-Sdk-Content-Sha256": "UNSIGNED-PAYLOAD"}
    assert _verify(forged, body, "SecretKey") is True
    assert _verify(forged, b'[{"event_name":"evil"}]', "SecretKey") is False
    # A request signed with it (a non-JSON payload, as the SDK does) verifies with its body.
    headers = {"Host": HOST, "X-Sdk-Date": DATE, "Content-Type": "text/plain"}
    text_signed = signer.sign(
        "POST", "/V1.0/0123456789abcdef/events", [], headers, b"hi", "AccessKey", "SecretKey"
    )
    assert _verify(text_signed, b"hi", "SecretKey") is True


def test_signed_header_a_proxy_dropped_counts_as_empty() -> None:
    """An empty header (here X-Sdk-Date and X-Trace) that does not reach the server still
    verifies: a signed header that is absent is read as the empty value it was signed with."""
    headers = {"Host": HOST, "X-Sdk-Date": "", "X-Trace": "", "Content-Type": "application/json"}
    signed = signer.sign("POST", "/V1.0/p/events", [], headers, b"{}", "AccessKey", "SecretKey")
    _, names, signature = signer.parse_authorization(signed["Authorization"])
    assert names == ["content-type", "host", "x-sdk-date", "x-trace"]
    received = {"host": HOST, "content-type": "application/json"}

    assert signer.verify("POST", "/V1.0/p/events", [], received, b"{}", names, signature, "SecretKey")
    assert not signer.verify(
        "POST", "/V1.0/p/events", [], {**received, "x-trace": "1"}, b"{}", names, signature, "SecretKey"
    )
