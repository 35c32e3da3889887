"""The benchmarks' stand-in for FunctionGraph's context object (the parts a handler may call).

Standard library only: the cold-start child imports it before its clock would notice.
"""

from __future__ import annotations

import logging
import os
import time


class FakeContext:
    """An invocation given ``remaining_ms`` when the context is made, counting down as the
    platform's does; project and user data come from the environment."""

    def __init__(self, *, request_id: str = "bench-0001", remaining_ms: int = 60_000) -> None:
        self._request_id = request_id
        self._ends_at = time.monotonic() + remaining_ms / 1000

    def getRequestID(self) -> str:
        return self._request_id

    def getRemainingTimeInMilliSeconds(self) -> int:
        return max(0, int((self._ends_at - time.monotonic()) * 1000))

    def getFunctionName(self) -> str:
        return "cloudeye-forwarder"

    def getProjectID(self) -> str:
        return os.environ.get("HUAWEICLOUD_SDK_PROJECT_ID", "")

    def getUserData(self, key: str, default: str = "") -> str:
        return os.environ.get(key, default)

    # No temporary agency keys: the benchmarks configure keys in the environment.
    def getSecurityAccessKey(self) -> str:
        return ""

    def getSecuritySecretKey(self) -> str:
        return ""

    def getSecurityToken(self) -> str:
        return ""

    def getToken(self) -> str:
        return ""

    def getLogger(self) -> logging.Logger:
        return logging.getLogger("bench")
