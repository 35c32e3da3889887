"""Take credentials out of text that came from Cloud Eye or the network.

An upstream may quote what it was sent: a 401 that names the access key, a proxy that echoes the
request headers (the security token, the IAM token). Such text ends up in answers, log lines and
exceptions, so it passes through :func:`scrub` first: every configured credential, every
``ak:<value>`` / ``Access=<value>`` / ``Credential=<value>`` fragment and every echoed token header
becomes ``***``.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .settings import Settings

MASK = "***"
# "ak: ABC", "AK=ABC", "Access=ABC" (the signature header), "Credential=ABC/..." (other signers),
# and echoed token headers ("X-Auth-Token: ...", "X-Security-Token: ..."), whatever their value.
# Compiled (and cached by ``re``) on the first text scrubbed: most invocations have none.
_FRAGMENTS = (
    r"(?i)(?<![A-Za-z0-9])((?:ak|access[_ -]?key(?:[_ -]?id)?|access|credential"
    r"|x-auth-token|x-security-token|x-subject-token)\s*[:=]\s*)"
    r"[\"']?[A-Za-z0-9+/=_.-]+"
)


def configured_secrets(settings: Settings | None) -> list[str]:
    """The credential values ``settings`` holds, as text."""
    if settings is None:
        return []
    values = [settings.access_key, settings.secret_key, settings.security_token, settings.auth_token]
    texts = [value if isinstance(value, str) else value.reveal() for value in values if value]
    return [text for text in texts if text]


def scrub(text: str, settings: Settings | None = None) -> str:
    """``text`` with the credentials of ``settings`` and key fragments masked."""
    for secret in configured_secrets(settings):
        # Also the form a JSON answer quotes it in; matched as a whole token so a short key does not
        # mangle the words around it.
        for form in dict.fromkeys((secret, json.dumps(secret)[1:-1])):
            if form in text:
                text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])", MASK, text)
    return re.sub(_FRAGMENTS, lambda match: match.group(1) + MASK, text)
