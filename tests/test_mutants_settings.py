"""Where credentials come from when several places offer them, and endpoint and secret edge cases."""

from __future__ import annotations

import pytest

from forwarder.errors import SettingsError
from forwarder.settings import Secret, Settings, check_endpoint, is_loopback

PROJECT = "0123456789abcdef0123456789abcdef"


class Context:
    """A platform context offering an agency's keys and/or an IAM token."""

    def __init__(self, **values: str) -> None:
        self.values = values

    def __getattr__(self, name: str):
        if name not in self.values:
            raise AttributeError(name)
        return lambda: self.values[name]


AGENCY = Context(getSecurityAccessKey="ctx-ak", getSecuritySecretKey="ctx-sk", getToken="ctx-token")

# Credential headers count only where FunctionGraph set its runtime variables.
ON_FUNCTIONGRAPH = {"RUNTIME_PROJECT_ID": "p", "RUNTIME_FUNC_NAME": "f"}


def test_an_access_key_alone_in_the_environment_is_not_replaced_by_the_agency() -> None:
    # Half a key pair in the environment is a mistake to report, not a reason to use other keys.
    settings = Settings.from_env(environ={"HUAWEICLOUD_SDK_AK": "env-ak"}, context=AGENCY)
    assert settings.credential_source == "environment"
    assert (settings.access_key, settings.secret_key) == ("env-ak", None)
    environ = {"HUAWEICLOUD_SDK_AK": "env-ak", "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT}
    environ["CLOUDEYE_REGION"] = "eu-de"
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(environ=environ, context=AGENCY).require_sending()
    assert str(refused.value) == "HUAWEICLOUD_SDK_SK is not set (HUAWEICLOUD_SDK_AK is)"


def test_half_an_agency_key_pair_in_headers_is_ignored() -> None:
    settings = Settings.from_env(environ={}, headers={"X-CFF-Security-Access-Key": "h-ak"})
    assert (settings.credential_source, settings.access_key) == ("none", None)


def test_iam_token_from_the_request_headers() -> None:
    settings = Settings.from_env(environ=ON_FUNCTIONGRAPH, headers={"X-CFF-Auth-Token": "header-token"})
    assert settings.credential_source == "token"
    assert settings.auth_token == Secret("header-token")


def test_iam_token_from_the_platform_context() -> None:
    settings = Settings.from_env(environ={}, context=Context(getToken=" ctx-token "))
    assert settings.credential_source == "token"
    assert settings.auth_token == Secret("ctx-token")


def test_no_context_and_no_token_means_no_credentials() -> None:
    settings = Settings.from_env(environ={})
    assert (settings.credential_source, settings.auth_token, settings.access_key) == ("none", None, None)


@pytest.mark.parametrize(
    "endpoint",
    ["https://user@ces.example.com", "https://ces.example.com/#part", "https://:pw@ces.example.com"],
)
def test_endpoint_with_user_info_or_fragment_is_refused(endpoint: str) -> None:
    with pytest.raises(SettingsError) as refused:
        check_endpoint(endpoint)
    assert str(refused.value) == "CLOUDEYE_ENDPOINT must be a plain base URL without query or user info"


def test_bracketed_ipv6_loopback_is_loopback() -> None:
    assert is_loopback("[::1]") is True
    assert check_endpoint("http://[::1]:8900/") == "http://[::1]:8900"


def test_secret_repr_hides_the_value() -> None:
    assert repr(Secret("s3cret")) == "Secret('**********')"


SEND = {"HUAWEICLOUD_SDK_PROJECT_ID": PROJECT, "CLOUDEYE_REGION": "eu-de"}
KEYS = {**SEND, "HUAWEICLOUD_SDK_AK": "ak", "HUAWEICLOUD_SDK_SK": "sk"}
NOT_ASCII = "has characters that cannot be sent in an HTTP header (only printable ASCII is allowed)"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"HUAWEICLOUD_SDK_PROJECT_ID": "a" * 65},
            "HUAWEICLOUD_SDK_PROJECT_ID must be 1-64 letters, digits or '-' (got 65 characters)",
        ),
        ({"FORWARDER_INGEST_TOKEN": "tøken"}, f"FORWARDER_INGEST_TOKEN {NOT_ASCII}"),
        (
            {"FORWARDER_DEFAULT_SOURCE": "nodot"},
            "FORWARDER_DEFAULT_SOURCE must look like 'service.item' (each part 3-32 letters, digits or "
            "'_', starting with a letter); got 'nodot'",
        ),
    ],
)
def test_shape_errors_word_for_word(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(environ=environ)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"CLOUDEYE_REGION": "eu-de", "CLOUDEYE_AUTH_TOKEN": "t"},
            "HUAWEICLOUD_SDK_PROJECT_ID is not set (nor FunctionGraph's RUNTIME_PROJECT_ID)",
        ),
        ({**SEND, "HUAWEICLOUD_SDK_SK": "sk"}, "HUAWEICLOUD_SDK_AK is not set (HUAWEICLOUD_SDK_SK is)"),
        (
            SEND,
            "no credentials: set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK, give the function an agency, "
            "or set CLOUDEYE_AUTH_TOKEN",
        ),
        (
            {**KEYS, "HUAWEICLOUD_SDK_AK": "ák"},
            f"HUAWEICLOUD_SDK_AK (or the agency's access key) {NOT_ASCII}",
        ),
        (
            {**KEYS, "HUAWEICLOUD_SDK_SECURITY_TOKEN": "tö"},
            f"HUAWEICLOUD_SDK_SECURITY_TOKEN (or the agency's security token) {NOT_ASCII}",
        ),
        ({**SEND, "CLOUDEYE_AUTH_TOKEN": "tö"}, f"CLOUDEYE_AUTH_TOKEN {NOT_ASCII}"),
    ],
)
def test_cannot_send_errors_word_for_word(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(environ=environ).require_sending()
    assert str(refused.value) == message


def test_agency_keys_from_headers_without_a_token_have_none() -> None:
    headers = {"X-CFF-Security-Access-Key": "h-ak", "X-CFF-Security-Secret-Key": "h-sk"}
    settings = Settings.from_env(environ=ON_FUNCTIONGRAPH, headers=headers)
    assert (settings.credential_source, settings.access_key) == ("agency", "h-ak")
    assert settings.secret_key == Secret("h-sk")
    assert settings.security_token is None


def test_endpoint_loses_only_its_trailing_slashes() -> None:
    assert check_endpoint("https://ces.example.X//") == "https://ces.example.X"


def test_smallest_body_limit_is_one_byte() -> None:
    assert Settings.from_env(environ={"FORWARDER_MAX_BODY_BYTES": "1"}).max_body_bytes == 1
    with pytest.raises(SettingsError, match="FORWARDER_MAX_BODY_BYTES"):
        Settings.from_env(environ={"FORWARDER_MAX_BODY_BYTES": "0"})
