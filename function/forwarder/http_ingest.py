"""The HTTP ingest contract shared by API Gateway and functions-framework: same checks, same answers.

Request -> (405 method, 401 token, 413 size) -> settings -> (413 items, 400 body or flag) -> events
-> Report -> status and JSON body: 201 all accepted, 207 some rejected, 400 nothing valid or
unreadable body, 502/503 Cloud Eye failed after retries (503, with Retry-After, when trying again
later can help).

Refusals come first and read nothing: the token is checked before the settings are read (a caller
without it never learns about the configuration) and before any of the body is; a body is read
no further than the cap. A body holding more than ``FORWARDER_MAX_ITEMS`` items is refused with
413 after counting them one at a time, so the answer stays proportional to what is processed.
Standard library only until there are events to validate.
"""

from __future__ import annotations

import hmac
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import chain
from typing import TYPE_CHECKING, Any, NamedTuple

from . import jsontext
from .errors import BodyError, SettingsError
from .intake import Candidate, Unreadable, report_candidates
from .report import Report
from .settings import Secret, ingest_token_from_env, parse_bool

if TYPE_CHECKING:
    from .json_items import ArrayPieces
    from .logs import Invocation
    from .settings import Settings

NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"}
)
DEFAULT_RETRY_AFTER_S = 5
JSON_CONTENT_TYPE = "application/json"
BODY_FORMS = 'a JSON array of events, one event object, {"events": [...]}, or NDJSON (one event per line)'


class HttpRequest(NamedTuple):
    """What the ingest contract needs from a request, whoever received it.

    ``body`` is the whole body when already in memory: bytes, or the text API Gateway delivers
    (read as its UTF-8 bytes). Otherwise ``read_body(n)`` returns at most ``n`` bytes, so an
    oversized body is never read whole.
    """

    method: str
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes | str | None = None
    body_error: str | None = None
    content_length: int | None = None
    read_body: Callable[[int], bytes] | None = None


class HttpAnswer:
    """An answer to one HTTP request; the entry adds its ``Content-Type`` and ``X-Request-Id``."""

    def __init__(
        self,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
        report: Report | None = None,
        *,
        configuration_error: SettingsError | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = {} if headers is None else headers
        self.report = report
        self.configuration_error = configuration_error

    def body_text(self) -> str:
        return json.dumps(self.body, separators=(",", ":"))


def normalise_headers(headers: Any) -> dict[str, str]:
    """Lower-case names; a list value (multi-value headers) becomes its comma-joined text."""
    joined = _as_text(headers, lambda values: ",".join(str(item) for item in values))
    return {name.lower(): value for name, value in joined.items()}


def normalise_query(query: Any) -> dict[str, str]:
    """Query parameters as text; of a repeated parameter the first value counts."""
    return _as_text(query, lambda values: values[0] if values else "")


def _as_text(mapping: Any, one_of: Callable[[list[Any] | tuple[Any, ...]], Any]) -> dict[str, str]:
    """Names and values as text (``None`` as ""); ``one_of`` makes one value of a list value.
    Anything but a mapping (a platform that sent none) is empty."""
    if not isinstance(mapping, Mapping):
        return {}
    result: dict[str, str] = {}
    for name, value in mapping.items():
        if isinstance(value, list | tuple):
            value = one_of(value)
        result[str(name)] = "" if value is None else str(value)
    return result


def bearer_ok(headers: Mapping[str, str], token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    scheme, _, given = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return _same(given.strip(), token)


def query_token_ok(query: Mapping[str, str], token: str) -> bool:
    """``?token=<token>`` (how a push subscription carries a shared secret), in constant time."""
    given = query.get("token")
    return given is not None and _same(given, token)


def _same(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), token.encode("utf-8"))


def token_refusal(
    headers: Mapping[str, str], query: Mapping[str, str] | None = None, token: Secret | None = None
) -> HttpAnswer | None:
    """The 401 answer when ``FORWARDER_INGEST_TOKEN`` is set and the request does not carry it
    (as a bearer token, or with ``query`` given, as ``?token=``); ``None`` when it may go on."""
    token = ingest_token_from_env() if token is None else token
    if not token:
        return None
    if bearer_ok(headers, token.reveal()) or (query is not None and query_token_ok(query, token.reveal())):
        return None
    wanted = "a valid 'Authorization: Bearer <token>' header"
    return HttpAnswer(
        401,
        empty_body(f"{wanted} is required" if query is None else f"{wanted} or ?token=<token> is required"),
        {"WWW-Authenticate": 'Bearer realm="cloudeye-forwarder"'},
    )


class TooLarge(BodyError):
    """A body over the byte or the item cap: answered 413."""


def dry_run_flag(query: Mapping[str, str]) -> bool:
    """``?dry_run`` / ``?dry_run=true`` validate only; ``false``/absent send; anything else is an error."""
    raw = query.get("dry_run")
    if raw is None:
        return False
    if raw.strip() == "":
        return True  # a bare ?dry_run flag
    try:
        return parse_bool("dry_run", raw)
    except SettingsError:
        raise BodyError(f"the query parameter dry_run must be true or false (got {raw[:40]!r})") from None


def _json_error(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


def _ndjson(text: str, *, strict: bool) -> list[Candidate]:
    """One event per non-blank line; with ``strict`` an unreadable line is rejected alone."""
    candidates = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value: Any = json.loads(line)
        except (ValueError, RecursionError) as exc:
            if not strict:
                raise
            value = Unreadable(f"line {number} is not JSON: {_json_error(exc)}", line, f"(line {number})")
        candidates.append(Candidate(value, {"line": number}))
    return candidates


def _text(body: bytes | str) -> str:
    if isinstance(body, str):
        text = body.removeprefix("\ufeff")  # already text: drop a BOM, as decoding would
    else:
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise BodyError(f"the body is not UTF-8 text (bad byte at offset {exc.start})") from None
    if not text.strip():
        raise BodyError(f"the body is empty; send {BODY_FORMS}")
    return text


def _is_ndjson(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() in NDJSON_TYPES


class BodyItems(NamedTuple):
    """What one look over a body's text found: its array of events cut into pieces (``None``: not
    an array, or an array inside something else)."""

    text: str
    array: ArrayPieces | None


def check_items(body: bytes | str, content_type: str, max_items: int) -> BodyItems:
    """Raise ``TooLarge`` when the body holds more than ``max_items`` items (array items, or lines
    of NDJSON), counted a piece of the text at a time so that counting costs no more memory than
    one piece."""
    from .json_items import count_lines, events_array

    text = _text(body)
    array = None
    count = 0
    if not _is_ndjson(content_type):
        try:
            array = events_array(text)
        except (ValueError, RecursionError):
            array = None  # not one JSON value: perhaps NDJSON, else parse_body says what is wrong
        else:
            if array is None:
                return BodyItems(text, None)  # one event object, or a value parse_body refuses
            count = array.count
    if array is None:
        count = count_lines(text, max_items)
    if count > max_items:
        raise TooLarge(
            f"the body holds more than {max_items} items (FORWARDER_MAX_ITEMS); send fewer per request"
        )
    return BodyItems(text, array)


def iter_candidates(items: BodyItems, content_type: str) -> Iterator[Candidate]:
    """The body's items one at a time: an array's are parsed from its text as they are taken
    (never the whole array at once); other forms through ``parse_body``."""
    from .json_items import iter_array

    if items.array is None:
        yield from refuse_too_wide(parse_body(items.text, content_type))
    else:
        yield from refuse_too_wide(Candidate(item, {}) for item in iter_array(items.text, items.array.start))


def refuse_too_wide(candidates: Iterable[Candidate]) -> Iterator[Candidate]:
    """Items far wider than any event become one rejection each, before any field is checked."""
    from .json_items import too_wide

    for candidate in candidates:
        reason = too_wide(candidate.value) if candidate.readable else None
        if reason is not None:
            candidate = Candidate(Unreadable(reason, candidate.value, "(event)"), candidate.position)
        yield candidate


def parse_body(body: bytes | str, content_type: str = "") -> list[Candidate]:
    """The events a body holds, in order; raises ``BodyError`` when it holds none readable."""
    text = _text(body)
    if _is_ndjson(content_type):
        return _ndjson(text, strict=True)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        lines = [line for line in text.split("\n") if line.strip()]
        if len(lines) > 1:
            try:
                return _ndjson(text, strict=False)
            except (ValueError, RecursionError):
                pass
        raise BodyError(f"the body is not JSON: {_json_error(exc)}; send {BODY_FORMS}") from None
    if jsontext.is_events_wrapper(value):
        value = jsontext.unwrap_events(value)
        if not isinstance(value, list):
            raise BodyError('"events" must be an array of event objects')
    if isinstance(value, dict):
        return [Candidate(value, {})]
    if isinstance(value, list):
        return [Candidate(item, {}) for item in value]
    raise BodyError(f"the body holds a JSON {jsontext.kind(value)}; send {BODY_FORMS}")


def _report(
    body: bytes | str, content_type: str, settings: Settings, dry_run: bool, deadline: float | None
) -> Report:
    """Validate and send a body's events. A JSON array goes a piece at a time, each piece of
    valid events checked in one pass (the common case, and the cheap one); anything else item by item."""
    items = check_items(body, content_type, settings.max_items)
    if items.array is not None:
        from .pipeline import report_json_array  # loads pydantic: there is something to check

        report = report_json_array(items.array.texts(), settings=settings, dry_run=dry_run, deadline=deadline)
        if report is not None:
            return report
    # The items flow to the pipeline as they are parsed, a slice at a time: never all at once.
    candidates = iter_candidates(items, content_type)
    first = next(candidates, None)
    if first is None:
        raise BodyError(f"the body holds no events; send {BODY_FORMS}")
    candidates = chain([first], candidates)
    return report_candidates(candidates, settings=settings, dry_run=dry_run, deadline=deadline)


def status_for(report: Report) -> int:
    """The HTTP status for a finished report (see the module docstring)."""
    if report.failed:
        return 503 if report.failures_retryable else 502
    if report.accepted == 0:
        return 400
    return 207 if report.rejected else 201


def empty_body(error: str) -> dict[str, Any]:
    return {"received": 0, "accepted": 0, "rejected": 0, "failed": 0, "results": [], "error": error}


def _read(request: HttpRequest, limit: int) -> bytes | str:
    if isinstance(request.body, str):
        # ASCII text is its own UTF-8 (same length, same parse), so a large body is not copied.
        return request.body if request.body.isascii() else request.body.encode("utf-8", "surrogatepass")
    if request.body is not None:
        return request.body
    if request.read_body is None:
        return b""
    return request.read_body(limit + 1)


def serve(
    request: HttpRequest,
    *,
    settings_factory: Callable[[], Settings],
    invocation: Invocation,
    deadline: float | None = None,
    deadline_for: Callable[[Settings], float | None] | None = None,
) -> HttpAnswer:
    """Answer one ingest request and write the invocation's log line.

    ``deadline_for(settings)`` (else ``deadline``) gives the ``time.monotonic()`` moment after
    which no Cloud Eye attempt starts."""
    answer = _answer(request, settings_factory, deadline_for or (lambda _settings: deadline))
    if answer.configuration_error is not None:
        from .entry import configuration_error

        configuration_error(invocation, answer.configuration_error)
    answer.headers.setdefault("Content-Type", JSON_CONTENT_TYPE)
    answer.headers["X-Request-Id"] = invocation.request_id
    counts = answer.report.counts() if answer.report is not None else {}
    extra: dict[str, Any] = {"status": answer.status}
    if answer.report is not None and answer.report.dry_run:
        extra["dry_run"] = True
    if "error" in answer.body:
        extra["error"] = answer.body["error"]
    invocation.summary(counts, **extra)
    return answer


def misconfigured(exc: SettingsError) -> HttpAnswer:
    return HttpAnswer(500, empty_body(f"the forwarder is misconfigured: {exc}"), configuration_error=exc)


def too_large(limit: int) -> HttpAnswer:
    return HttpAnswer(
        413, empty_body(f"the body is larger than {limit} bytes (FORWARDER_MAX_BODY_BYTES)")
    )


def _answer(
    request: HttpRequest,
    settings_factory: Callable[[], Settings],
    deadline_for: Callable[[Settings], float | None],
) -> HttpAnswer:
    if request.method != "POST":
        return HttpAnswer(405, empty_body("send events with POST"), {"Allow": "POST"})
    refusal = token_refusal(request.headers)
    if refusal is not None:
        return refusal
    try:
        settings = settings_factory()
    except SettingsError as exc:
        return misconfigured(exc)
    limit = settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return too_large(limit)
    body = _read(request, limit)
    if len(body) > limit:
        return too_large(limit)
    try:
        if request.body_error:
            raise BodyError(request.body_error)
        dry_run = dry_run_flag(request.query)
        report = _report(
            body, request.headers.get("content-type", ""), settings, dry_run, deadline_for(settings)
        )
    except TooLarge as exc:
        return HttpAnswer(413, empty_body(str(exc)))
    except BodyError as exc:
        return HttpAnswer(400, empty_body(str(exc)))
    except SettingsError as exc:
        return misconfigured(exc)
    status = status_for(report)
    headers = {}
    if status == 503:
        wait = report.retry_after if report.retry_after is not None else DEFAULT_RETRY_AFTER_S
        headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return HttpAnswer(status, report.to_dict(), headers, report)
