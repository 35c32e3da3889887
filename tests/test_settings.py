"""Settings and credentials: env names, endpoints, agency credentials, refusals."""

from __future__ import annotations

from typing import Any

import pytest

from forwarder.settings import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_TIMEOUT_S,
    Secret,
    Settings,
    SettingsError,
    parse_bool,
)

PROJECT = "0123456789abcdef0123456789abcdef"
SENDABLE = {
    "HUAWEICLOUD_SDK_AK": "AK",
    "HUAWEICLOUD_SDK_SK": "SK",
    "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT,
    "CLOUDEYE_REGION": "ap-southeast-1",
}


class Context:
    """FunctionGraph's event-function context, as far as credentials go."""

    def __init__(self, **values: str | None) -> None:
        defaults = {"ak": "agency-ak", "sk": "agency-sk", "token": "agency-tok"}
        values = {**defaults, **values}
        self.ak, self.sk, self.token = values["ak"], values["sk"], values["token"]

    def getSecurityAccessKey(self) -> str | None:
        return self.ak

    def getSecuritySecretKey(self) -> str | None:
        return self.sk

    def getSecurityToken(self) -> str | None:
        return self.token


def test_defaults_with_an_empty_environment() -> None:
    settings = Settings.from_env(environ={})
    assert settings.access_key is None and settings.secret_key is None
    assert settings.security_token is None and settings.auth_token is None
    assert settings.project_id is None and settings.endpoint is None and settings.region is None
    assert settings.max_concurrency == DEFAULT_MAX_CONCURRENCY == 8
    assert settings.max_attempts == DEFAULT_MAX_ATTEMPTS == 4
    assert settings.timeout_s == DEFAULT_TIMEOUT_S
    assert settings.max_request_bytes == DEFAULT_MAX_REQUEST_BYTES == 524_288
    assert settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 6_291_456
    assert settings.ingest_token is None and settings.default_source is None
    assert settings.credential_source == "none"


@pytest.mark.parametrize(
    ("variable", "raw", "attribute", "expected"),
    [
        ("HUAWEICLOUD_SDK_PROJECT_ID", PROJECT, "project_id", PROJECT),
        ("CLOUDEYE_REGION", "ap-southeast-1", "region", "ap-southeast-1"),
        ("CLOUDEYE_ENDPOINT", "https://ces.example.com", "endpoint", "https://ces.example.com"),
        ("CLOUDEYE_MAX_CONCURRENCY", "3", "max_concurrency", 3),
        ("CLOUDEYE_MAX_ATTEMPTS", "1", "max_attempts", 1),
        ("CLOUDEYE_TIMEOUT_S", "2.5", "timeout_s", 2.5),
        ("CLOUDEYE_MAX_REQUEST_BYTES", "100000", "max_request_bytes", 100_000),
        ("FORWARDER_MAX_BODY_BYTES", "1024", "max_body_bytes", 1024),
        ("FORWARDER_DEFAULT_SOURCE", "app.orders", "default_source", "app.orders"),
        ("FORWARDER_INGEST_TOKEN", "ingest-tok", "ingest_token", Secret("ingest-tok")),
        ("CLOUDEYE_AUTH_TOKEN", "iam-tok", "auth_token", Secret("iam-tok")),
        ("CLOUDEYE_REGION", "  eu-de  ", "region", "eu-de"),  # surrounding spaces trimmed
    ],
)
def test_each_variable_is_read(variable: str, raw: str, attribute: str, expected: Any) -> None:
    assert getattr(Settings.from_env(environ={variable: raw}), attribute) == expected


def test_environment_credentials() -> None:
    settings = Settings.from_env(
        environ={
            "HUAWEICLOUD_SDK_AK": "AK1",
            "HUAWEICLOUD_SDK_SK": "SK1",
            "HUAWEICLOUD_SDK_SECURITY_TOKEN": "TOK1",
        }
    )
    assert settings.access_key == "AK1"
    assert settings.secret_key.reveal() == "SK1"
    assert settings.security_token.reveal() == "TOK1"
    assert settings.credential_source == "environment"


def test_os_environ_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", "from-os-environ")
    assert Settings.from_env().project_id == "from-os-environ"


def test_read_per_call_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDEYE_MAX_ATTEMPTS", "2")
    assert Settings.from_env().max_attempts == 2
    monkeypatch.setenv("CLOUDEYE_MAX_ATTEMPTS", "5")
    assert Settings.from_env().max_attempts == 5


# --- endpoints ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "endpoint"),
    [
        ("ap-southeast-1", "https://ces.ap-southeast-1.myhuaweicloud.com"),
        ("cn-north-4", "https://ces.cn-north-4.myhuaweicloud.com"),
        ("la-south-2", "https://ces.la-south-2.myhuaweicloud.com"),
        ("eu-de", "https://ces.eu-de.otc.t-systems.com"),
        ("eu-nl", "https://ces.eu-nl.otc.t-systems.com"),
    ],
)
def test_region_to_endpoint(region: str, endpoint: str) -> None:
    assert Settings.from_env(environ={"CLOUDEYE_REGION": region}).base_url == endpoint


@pytest.mark.parametrize(
    "region", ["Ap-Southeast-1", "ap", "ap_southeast_1", "evil.com/x", "ap-southeast-1.x"]
)
def test_bad_region_refused(region: str) -> None:
    with pytest.raises(SettingsError, match="CLOUDEYE_REGION"):
        Settings.from_env(environ={"CLOUDEYE_REGION": region})


def test_explicit_endpoint_overrides_region() -> None:
    settings = Settings.from_env(
        environ={"CLOUDEYE_REGION": "ap-southeast-1", "CLOUDEYE_ENDPOINT": "https://ces.internal.example/"}
    )
    assert settings.base_url == "https://ces.internal.example"


def test_no_endpoint_nor_region_is_named() -> None:
    settings = Settings.from_env(
        environ={
            "HUAWEICLOUD_SDK_AK": "AK",
            "HUAWEICLOUD_SDK_SK": "SK",
            "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT,
        }
    )
    with pytest.raises(SettingsError, match=r"CLOUDEYE_REGION.*CLOUDEYE_ENDPOINT"):
        settings.require_sending()


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:8900",
        "http://127.0.0.1",
        "http://localhost:8900",
        "http://[::1]:8900",
        "https://ces.example.com",
        "https://10.0.0.1:443/prefix",
    ],
)
def test_endpoint_accepted(endpoint: str) -> None:
    assert Settings.from_env(environ={"CLOUDEYE_ENDPOINT": endpoint}).base_url == endpoint.rstrip("/")


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://ces.example.com",
        "http://10.0.0.1:8900",
        "http://192.168.1.2",
        "http://localhost.example.com",
        "http://127.0.0.1.nip.io",
        "ftp://127.0.0.1",
        "ces.example.com",
        "https://",
        "https://user:pw@ces.example.com",
        "https://ces.example.com/?x=1",
    ],
)
def test_endpoint_refused(endpoint: str) -> None:
    with pytest.raises(SettingsError, match="CLOUDEYE_ENDPOINT"):
        Settings.from_env(environ={"CLOUDEYE_ENDPOINT": endpoint})


# --- project id ---------------------------------------------------------------------------------


def test_runtime_project_id_fallback() -> None:
    assert Settings.from_env(environ={"RUNTIME_PROJECT_ID": "rt-project"}).project_id == "rt-project"
    both = {"RUNTIME_PROJECT_ID": "rt-project", "HUAWEICLOUD_SDK_PROJECT_ID": "sdk-project"}
    assert Settings.from_env(environ=both).project_id == "sdk-project"


@pytest.mark.parametrize("project_id", ["a", "A-b-0", "x" * 64])
def test_project_id_accepted(project_id: str) -> None:
    assert Settings.from_env(environ={"HUAWEICLOUD_SDK_PROJECT_ID": project_id}).project_id == project_id


@pytest.mark.parametrize(
    "project_id", ["../x", "a/b", "?", "a?b=c", "a b", "x" * 65, "a_b", "a.b", "é", "a%2Fb", "abc\n"]
)
def test_project_id_refused(project_id: str) -> None:
    with pytest.raises(SettingsError, match="HUAWEICLOUD_SDK_PROJECT_ID"):
        Settings.from_env(environ={}, project_id=project_id)
    if project_id.strip() == project_id:
        with pytest.raises(SettingsError, match="HUAWEICLOUD_SDK_PROJECT_ID"):
            Settings.from_env(environ={"HUAWEICLOUD_SDK_PROJECT_ID": project_id})


def test_settings_are_checked_when_built_without_from_env() -> None:
    with pytest.raises(SettingsError, match="HUAWEICLOUD_SDK_PROJECT_ID"):
        Settings(access_key="AK", secret_key=Secret("SK"), project_id="../x", region="ap-southeast-1")
    with pytest.raises(SettingsError, match="CLOUDEYE_ENDPOINT"):
        Settings(endpoint="https://host:abc")
    with pytest.raises(SettingsError, match="FORWARDER_MAX_ITEMS"):
        Settings(max_items=0)
    # a plain string given for a secret is wrapped, so it never prints
    assert isinstance(Settings(secret_key="SK").secret_key, Secret)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "endpoint",
    ["https://host:abc", "https://host:99999", "https://host:-1", "https://[::1", "http://127.0.0.1:8x"],
)
def test_an_endpoint_with_a_bad_port_or_form_names_the_variable(endpoint: str) -> None:
    with pytest.raises(SettingsError, match="CLOUDEYE_ENDPOINT") as caught:
        Settings.from_env(environ={"CLOUDEYE_ENDPOINT": endpoint})
    assert endpoint not in str(caught.value) or "got" not in str(caught.value)


def test_repr_and_str_mask_the_access_key() -> None:
    settings = Settings(access_key="AKVISIBLE123", secret_key=Secret("SK-VALUE"), project_id="p1")
    for text in (repr(settings), str(settings), f"{settings}"):
        assert "AKVISIBLE123" not in text and "SK-VALUE" not in text
        assert "access_key=Secret('**********')" in text and "project_id='p1'" in text


@pytest.mark.parametrize(
    ("variable", "field", "raw", "expected"),
    [
        ("FORWARDER_MAX_ITEMS", "max_items", None, 10_000),
        ("FORWARDER_MAX_ITEMS", "max_items", "50", 50),
        ("FORWARDER_HTTP_DEADLINE_S", "http_deadline_s", None, 25.0),
        ("FORWARDER_HTTP_DEADLINE_S", "http_deadline_s", "9.5", 9.5),
    ],
)
def test_item_cap_and_http_deadline(variable: str, field: str, raw: str | None, expected: float) -> None:
    environ = {} if raw is None else {variable: raw}
    assert getattr(Settings.from_env(environ=environ), field) == expected


@pytest.mark.parametrize("raw", ["0", "-3", "many", "nan", "inf"])
def test_item_cap_and_http_deadline_refuse_bad_values(raw: str) -> None:
    for variable in ("FORWARDER_MAX_ITEMS", "FORWARDER_HTTP_DEADLINE_S"):
        with pytest.raises(SettingsError, match=variable):
            Settings.from_env(environ={variable: raw})


def test_credential_headers_count_only_on_functiongraph_without_configured_credentials() -> None:
    headers = {"x-cff-security-access-key": "HAK", "x-cff-security-secret-key": "HSK"}
    platform = {"RUNTIME_PROJECT_ID": "p1", "RUNTIME_FUNC_NAME": "fn"}
    assert Settings.from_env(environ=platform, headers=headers).access_key == "HAK"
    # not FunctionGraph: ignored
    assert Settings.from_env(environ={"RUNTIME_PROJECT_ID": "p1"}, headers=headers).access_key is None
    # any configured credential: ignored
    for variable in ("CLOUDEYE_AUTH_TOKEN", "HUAWEICLOUD_SDK_SECURITY_TOKEN"):
        settings = Settings.from_env(environ={**platform, variable: "configured"}, headers=headers)
        assert settings.access_key is None
    token_only = Settings.from_env(
        environ={**platform, "CLOUDEYE_AUTH_TOKEN": "configured"},
        headers={**headers, "x-cff-auth-token": "caller"},
    )
    assert token_only.auth_token is not None and token_only.auth_token.reveal() == "configured"


# --- explicit arguments win ---------------------------------------------------------------------


def test_explicit_overrides_win() -> None:
    env = {**SENDABLE, "CLOUDEYE_MAX_ATTEMPTS": "2", "HUAWEICLOUD_SDK_SECURITY_TOKEN": "env-tok"}
    settings = Settings.from_env(
        environ=env,
        project_id="explicit",
        max_attempts=7,
        endpoint="https://explicit.example",
        access_key="EXPLICIT-AK",
        secret_key="EXPLICIT-SK",
        security_token="explicit-tok",
    )
    assert settings.project_id == "explicit"
    assert settings.max_attempts == 7
    assert settings.base_url == "https://explicit.example"
    assert settings.access_key == "EXPLICIT-AK"
    assert isinstance(settings.secret_key, Secret) and settings.secret_key.reveal() == "EXPLICIT-SK"
    assert settings.security_token.reveal() == "explicit-tok"


def test_explicit_overrides_are_checked_too() -> None:
    with pytest.raises(SettingsError, match="CLOUDEYE_ENDPOINT"):
        Settings.from_env(environ={}, endpoint="http://ces.example.com")


# --- credentials: env first, then agency, then token --------------------------------------------


def test_agency_credentials_from_context() -> None:
    settings = Settings.from_env(environ={"HUAWEICLOUD_SDK_PROJECT_ID": PROJECT}, context=Context())
    assert settings.access_key == "agency-ak"
    assert settings.secret_key.reveal() == "agency-sk"
    assert settings.security_token.reveal() == "agency-tok"
    assert settings.credential_source == "agency"


def test_agency_credentials_from_http_headers() -> None:
    headers = {
        "X-CFF-Security-Access-Key": "hdr-ak",
        "x-cff-security-secret-key": "hdr-sk",
        "X-Cff-Security-Token": "hdr-tok",
        "X-CFF-Request-Id": "r1",
    }
    on_functiongraph = {"RUNTIME_PROJECT_ID": "p1", "RUNTIME_FUNC_NAME": "forwarder"}
    settings = Settings.from_env(environ=on_functiongraph, headers=headers)
    assert settings.access_key == "hdr-ak"
    assert settings.secret_key.reveal() == "hdr-sk"
    assert settings.security_token.reveal() == "hdr-tok"
    assert settings.credential_source == "agency"


def test_environment_wins_over_agency_and_token() -> None:
    env = {"HUAWEICLOUD_SDK_AK": "env-ak", "HUAWEICLOUD_SDK_SK": "env-sk", "CLOUDEYE_AUTH_TOKEN": "iam"}
    headers = {"X-CFF-Security-Access-Key": "hdr-ak", "X-CFF-Security-Secret-Key": "hdr-sk"}
    settings = Settings.from_env(environ=env, context=Context(), headers=headers)
    assert settings.access_key == "env-ak" and settings.secret_key.reveal() == "env-sk"
    assert settings.security_token is None  # the agency's token belongs to the agency's keys
    assert settings.auth_token is None
    assert settings.credential_source == "environment"


def test_agency_wins_over_token() -> None:
    settings = Settings.from_env(environ={"CLOUDEYE_AUTH_TOKEN": "iam"}, context=Context())
    assert settings.access_key == "agency-ak"
    assert settings.auth_token is None


def test_token_when_no_keys() -> None:
    settings = Settings.from_env(environ={"CLOUDEYE_AUTH_TOKEN": "iam"}, context=Context(ak=None, sk=None))
    assert settings.access_key is None
    assert settings.auth_token.reveal() == "iam"
    assert settings.credential_source == "token"


def test_agency_without_token_is_permanent_keys() -> None:
    settings = Settings.from_env(environ={}, context=Context(token=None))
    assert settings.access_key == "agency-ak" and settings.security_token is None


def test_half_agency_credentials_are_ignored() -> None:
    settings = Settings.from_env(environ={}, context=Context(sk=""))
    assert settings.access_key is None and settings.credential_source == "none"


def test_broken_context_is_treated_as_absent() -> None:
    class Broken:
        def getSecurityAccessKey(self) -> str:
            raise RuntimeError("no agency")

    assert Settings.from_env(environ={}, context=Broken()).access_key is None
    assert Settings.from_env(environ={}, context=object()).access_key is None


def test_agency_values_are_trimmed() -> None:
    settings = Settings.from_env(environ={}, context=Context(ak=" ak ", sk="sk\n", token="tok\r\n"))
    assert settings.access_key == "ak"
    assert settings.secret_key.reveal() == "sk"
    assert settings.security_token.reveal() == "tok"


# --- require_sending names what is missing -------------------------------------------------------


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("HUAWEICLOUD_SDK_PROJECT_ID", "HUAWEICLOUD_SDK_PROJECT_ID"),
        ("CLOUDEYE_REGION", "CLOUDEYE_REGION"),
        ("HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SK"),
        ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_AK"),
    ],
)
def test_missing_variable_is_named(missing: str, named: str) -> None:
    env = {name: value for name, value in SENDABLE.items() if name != missing}
    settings = Settings.from_env(environ=env)
    with pytest.raises(SettingsError, match=named):
        settings.require_sending()


def test_no_credentials_names_every_way_to_give_them() -> None:
    env = {"HUAWEICLOUD_SDK_PROJECT_ID": PROJECT, "CLOUDEYE_REGION": "ap-southeast-1"}
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ=env).require_sending()
    for word in ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "agency", "CLOUDEYE_AUTH_TOKEN"):
        assert word in str(caught.value)


def test_sendable_settings_pass() -> None:
    keys = Settings.from_env(environ=SENDABLE)
    keys.require_sending()
    assert keys.credential_source == "environment"
    token_only = {
        "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT,
        "CLOUDEYE_REGION": "eu-de",
        "CLOUDEYE_AUTH_TOKEN": "t",
    }
    token = Settings.from_env(environ=token_only)
    token.require_sending()
    assert (token.credential_source, token.auth_token, token.access_key) == ("token", Secret("t"), None)
    assert token.base_url == "https://ces.eu-de.otc.t-systems.com"


def test_report_events_raises_only_when_it_must_send() -> None:
    from forwarder import report_events

    item = {"event_name": "a", "event_source": "abc.def", "time": 1, "detail": {}}
    # Nothing valid to send: no settings needed.
    assert report_events([item], settings=Settings.from_env(environ={})).rejected == 1
    valid = {**item, "time": 1_709_294_400_000}
    with pytest.raises(SettingsError, match="HUAWEICLOUD_SDK_PROJECT_ID"):
        report_events([valid], settings=Settings.from_env(environ={}), clock=lambda: 1_709_294_400_000)


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"HUAWEICLOUD_SDK_SECURITY_TOKEN": "tok\nen"}, "HUAWEICLOUD_SDK_SECURITY_TOKEN"),
        ({"HUAWEICLOUD_SDK_SECURITY_TOKEN": "tökén"}, "HUAWEICLOUD_SDK_SECURITY_TOKEN"),
        ({"HUAWEICLOUD_SDK_AK": "a\tk"}, "HUAWEICLOUD_SDK_AK"),
    ],
)
def test_credentials_that_cannot_go_in_a_header_are_named(variables: dict, named: str) -> None:
    settings = Settings.from_env(environ={**SENDABLE, **variables})
    with pytest.raises(SettingsError, match=named) as caught:
        settings.require_sending()
    for value in variables.values():
        assert value not in str(caught.value)


# --- strict booleans and numbers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        (" True ", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("off", False),
        (None, False),
        ("", False),
        ("  ", False),
    ],
)
def test_parse_bool(raw: str | None, expected: bool) -> None:
    assert parse_bool("FORWARDER_FLAG", raw) is expected


def test_parse_bool_default() -> None:
    assert parse_bool("FORWARDER_FLAG", None, default=True) is True
    assert parse_bool("FORWARDER_FLAG", "", default=True) is True
    assert parse_bool("FORWARDER_FLAG", "false", default=True) is False


@pytest.mark.parametrize("raw", ["maybe", "2", "truthy", "t", "y", "-1", "nope"])
def test_parse_bool_is_strict(raw: str) -> None:
    with pytest.raises(SettingsError, match="FORWARDER_FLAG"):
        parse_bool("FORWARDER_FLAG", raw)


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("CLOUDEYE_MAX_CONCURRENCY", "eight"),
        ("CLOUDEYE_MAX_CONCURRENCY", "0"),
        ("CLOUDEYE_MAX_CONCURRENCY", "2.5"),
        ("CLOUDEYE_MAX_ATTEMPTS", "-1"),
        ("CLOUDEYE_MAX_ATTEMPTS", "0"),
        ("CLOUDEYE_TIMEOUT_S", "soon"),
        ("CLOUDEYE_TIMEOUT_S", "0"),
        ("CLOUDEYE_MAX_REQUEST_BYTES", "1k"),
        ("CLOUDEYE_MAX_REQUEST_BYTES", "100"),
        ("FORWARDER_MAX_BODY_BYTES", "lots"),
    ],
)
def test_bad_numbers_are_named(variable: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=variable) as caught:
        Settings.from_env(environ={variable: raw})
    assert repr(raw) in str(caught.value)


@pytest.mark.parametrize("source", ["orders", "ab.orders", "app.orders.x", "1pp.orders", "app.ord-ers"])
def test_bad_default_source_refused(source: str) -> None:
    with pytest.raises(SettingsError, match="FORWARDER_DEFAULT_SOURCE"):
        Settings.from_env(environ={"FORWARDER_DEFAULT_SOURCE": source})


@pytest.mark.parametrize("token", ["caf\u00e9-token", "tok\udcffen", "two\nlines"])
def test_ingest_token_that_no_header_can_carry_is_refused_without_showing_it(token: str) -> None:
    with pytest.raises(SettingsError, match="FORWARDER_INGEST_TOKEN") as raised:
        Settings.from_env({"FORWARDER_INGEST_TOKEN": token})
    assert token not in str(raised.value)


def test_repr_lists_every_field_in_order_with_the_keys_masked() -> None:
    from dataclasses import fields

    settings = Settings.from_env(
        environ={
            "HUAWEICLOUD_SDK_AK": "AKID-NOT-SHOWN",
            "HUAWEICLOUD_SDK_SK": "sk-not-shown",
            "HUAWEICLOUD_SDK_PROJECT_ID": "p" * 32,
            "CLOUDEYE_REGION": "cn-north-4",
        }
    )
    text = repr(settings)
    assert text.startswith("Settings(access_key=Secret('**********'), secret_key=Secret('**********'), ")
    assert "AKID" not in text and "sk-not-shown" not in text
    names = [part.split("=", 1)[0] for part in text.removeprefix("Settings(").removesuffix(")").split(", ")]
    assert names == [item.name for item in fields(settings)]


def test_the_ingest_token_and_the_platform_are_read_from_the_mapping_given_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from forwarder.settings import FUNCTIONGRAPH_MARKERS, ingest_token_from_env, on_functiongraph

    monkeypatch.delenv("FORWARDER_INGEST_TOKEN", raising=False)
    token = ingest_token_from_env({"FORWARDER_INGEST_TOKEN": "from-the-mapping"})
    assert token is not None and token.reveal() == "from-the-mapping"
    assert ingest_token_from_env() is None
    monkeypatch.setenv("FORWARDER_INGEST_TOKEN", "from-the-environment")
    token = ingest_token_from_env()
    assert token is not None and token.reveal() == "from-the-environment"

    for name in FUNCTIONGRAPH_MARKERS:
        monkeypatch.setenv(name, "x")
    assert on_functiongraph() is True
    assert on_functiongraph({}) is False
    monkeypatch.delenv(FUNCTIONGRAPH_MARKERS[0])
    assert on_functiongraph() is False
    assert on_functiongraph(dict.fromkeys(FUNCTIONGRAPH_MARKERS, "x")) is True


@pytest.mark.parametrize(("ak", "sk"), [("agency-ak", None), (None, "agency-sk")])
def test_an_agency_with_half_a_key_pair_gives_way_to_the_token(ak: str | None, sk: str | None) -> None:
    settings = Settings.from_env(environ={"CLOUDEYE_AUTH_TOKEN": "iam"}, context=Context(ak=ak, sk=sk))
    assert settings.credential_source == "token"
    assert settings.access_key is None and settings.secret_key is None
    assert settings.auth_token is not None and settings.auth_token.reveal() == "iam"


@pytest.mark.parametrize("present", ["X-CFF-Security-Access-Key", "X-CFF-Security-Secret-Key"])
def test_request_headers_with_half_a_key_pair_give_way_to_the_token_header(present: str) -> None:
    from forwarder.settings import FUNCTIONGRAPH_MARKERS

    on_the_platform = dict.fromkeys(FUNCTIONGRAPH_MARKERS, "x")
    headers = {present: "half", "X-CFF-Auth-Token": "hdr-iam"}
    settings = Settings.from_env(environ=on_the_platform, headers=headers)
    assert settings.credential_source == "token"
    assert settings.access_key is None and settings.secret_key is None
    assert settings.auth_token is not None and settings.auth_token.reveal() == "hdr-iam"
