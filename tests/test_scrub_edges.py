"""What :func:`forwarder.scrub.scrub` masks in upstream text, beyond the cases in test_secrets.py."""

from __future__ import annotations

from forwarder.scrub import configured_secrets, scrub
from forwarder.settings import Secret, Settings

# A secret key with characters JSON escapes: an answer quoting it shows `\"` and `\\`.
ODD_SK = 'sk"with\\backslash'


def test_the_credentials_settings_hold_are_listed_as_text_and_unset_ones_left_out() -> None:
    settings = Settings(access_key="AKPLAIN", secret_key=Secret("SKHIDDEN"), auth_token=Secret("TOKEN1"))
    assert configured_secrets(settings) == ["AKPLAIN", "SKHIDDEN", "TOKEN1"]
    assert configured_secrets(Settings(secret_key=Secret(""))) == []
    assert configured_secrets(None) == []


def test_a_secret_is_masked_in_the_escaped_form_a_json_answer_quotes_it_in() -> None:
    settings = Settings(access_key="AKPLAIN", secret_key=Secret(ODD_SK))
    answer = '{"message": "signature does not match the key sk\\"with\\\\backslash"}'
    assert scrub(answer, settings) == '{"message": "signature does not match the key ***"}'
    # and as it is, in plain text
    assert scrub(f"key {ODD_SK} refused", settings) == "key *** refused"


def test_without_settings_only_key_fragments_are_masked() -> None:
    text = "ak=AKQ1W2E3 refused; SKHIDDEN is a word here"
    assert scrub(text) == "ak=*** refused; SKHIDDEN is a word here"
    assert scrub("x-auth-token: abc.def-ghi") == "x-auth-token: ***"


def test_a_configured_secret_and_a_fragment_in_one_text_are_both_masked() -> None:
    settings = Settings(access_key="AKPLAIN", secret_key=Secret("SKHIDDEN"))
    text = "Credential=AKOTHER/20240101 with SKHIDDEN, AKPLAIN"
    assert scrub(text, settings) == "Credential=*** with ***, ***"
