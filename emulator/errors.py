"""What the emulator answers when it refuses a request: Cloud Eye's and its API gateway's codes.

Cloud Eye itself answers ``{"error_code": "ces.XXXX", "error_msg": "..."}``; the API gateway in
front of it (authentication, unknown paths, throttling, size limits, backend outages) answers
``{"error_code": "APIGW.XXXX", "error_msg": "...", "request_id": "..."}``.
"""

from __future__ import annotations

from typing import Any


class EmulatorError(Exception):
    """A refusal with an HTTP status, a service error code and a message a caller can act on."""

    status = 500
    error_code = "ces.0007"
    summary = "Internal service error."
    # Gateway-made answers carry the request id in the body as well as in X-Request-Id.
    gateway = False

    def __init_subclass__(
        cls, *, status: int | None = None, code: str | None = None, summary: str | None = None
    ) -> None:
        # A refusal is declared in its class line: ``class X(Base, status=..., code=..., summary=...)``.
        super().__init_subclass__()
        if status is not None:
            cls.status = status
        if code is not None:
            cls.error_code = code
        if summary is not None:
            cls.summary = summary

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        self.detail = detail
        self.headers = dict(headers or {})
        super().__init__(self.message)

    @property
    def message(self) -> str:
        if not self.detail:
            return self.summary
        return f"{self.summary.rstrip('.')}: {self.detail}"

    def body(self, request_id: str) -> Any:
        """The JSON body of the answer."""
        payload: dict[str, str] = {"error_code": self.error_code, "error_msg": self.message}
        if self.gateway:
            payload["request_id"] = request_id
        return payload


# --- Cloud Eye (ces.*) -------------------------------------------------------------------------


class EmptyBody(EmulatorError, status=400, code="ces.0001", summary="The content must be specified."):
    """No body at all."""


class ProjectMismatch(
    EmulatorError, status=400, code="ces.0003", summary="The tenant ID is left blank or incorrect."
):
    """The X-Project-Id header names another project than the URL."""


class InvalidProjectId(ProjectMismatch):
    """The project id in the URL is not 1-64 letters, digits or '-'."""


class InvalidQuery(
    EmulatorError, status=400, code="ces.0013", summary="The URL parameter is invalid or does not exist."
):
    """A query parameter is missing or not of its form."""


class InvalidBody(
    EmulatorError, status=400, code="ces.0014", summary="Some content in message body is not correct."
):
    """The body is not UTF-8 JSON of the documented shape."""


class UnknownResourceGroup(InvalidBody):
    """An event names a resource group the project does not have."""


# --- API gateway (APIGW.*) ---------------------------------------------------------------------


class GatewayError(EmulatorError):
    gateway = True


class ApiNotFound(
    GatewayError,
    status=404,
    code="APIGW.0101",
    summary="The API does not exist or has not been published in the environment.",
):
    """No API at this path."""


class MethodNotFound(GatewayError, status=404, code="APIGW.0101", summary="The API does not exist."):
    """The path exists, but not with this method."""


class EntityTooLarge(GatewayError, status=413, code="APIGW.0201", summary="Request entity too large."):
    """The body is over the size limit."""


class AuthenticationFailed(
    GatewayError, status=401, code="APIGW.0301", summary="Incorrect IAM authentication information."
):
    """Keys, signature, date or security token do not check out."""


class Throttled(
    GatewayError, status=429, code="APIGW.0308", summary="The throttling threshold has been reached."
):
    def __init__(self, detail: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


# --- Injected faults ---------------------------------------------------------------------------

# The body each injected status answers with unless the fault brings its own.
_INJECTED_DEFAULTS: dict[int, tuple[str, str, bool]] = {
    400: ("ces.0014", "Some content in message body is not correct.", False),
    401: ("APIGW.0301", "Incorrect IAM authentication information: verify aksk signature fail", True),
    403: (
        "ces.0017",
        "The authentication information is incorrect or the service invoker does not have sufficient rights.",
        False,
    ),
    404: ("ces.0016", "The requested resource does not exist.", False),
    429: ("APIGW.0308", "The throttling threshold has been reached.", True),
    500: ("ces.0007", "Internal service error.", False),
    502: ("APIGW.0202", "Backend unavailable.", True),
    503: ("APIGW.0202", "Backend unavailable.", True),
    504: ("APIGW.0203", "Backend timeout.", True),
}


class InjectedError(EmulatorError):
    """An answer queued through ``POST /_emulator/faults``; ``body`` replaces the default one."""

    def __init__(self, status: int, *, retry_after: int | None = None, body: Any = None) -> None:
        self.status = status
        code, summary, gateway = _INJECTED_DEFAULTS.get(
            status,
            ("ces.0007", "Internal service error.", False)
            if status >= 500
            else ("ces.0011", "The request is invalid.", False),
        )
        self.error_code, self.summary, self.gateway = code, summary, gateway
        self.custom_body = body
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        super().__init__(None, headers=headers)

    def body(self, request_id: str) -> Any:
        if self.custom_body is not None:
            return self.custom_body
        return super().body(request_id)


# --- Control endpoints -------------------------------------------------------------------------


class ControlError(EmulatorError, status=400, code="EMULATOR.0400", summary="Invalid control request."):
    """A malformed request to one of the ``/_emulator/`` control endpoints."""
