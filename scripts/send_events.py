"""send-events: post custom events to a running forwarder in batches and report each event.

Standard library only, so it runs with any Python 3.10+ (no virtualenv needed).
``scripts/send-events`` is the command; this module holds the logic so tests can import it.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

EXIT_OK = 0  # every event accepted
EXIT_NOT_ALL_ACCEPTED = 1  # some events rejected or failed
EXIT_USAGE = 2  # bad arguments or an unreadable input file
EXIT_UNREACHABLE = 3  # the forwarder could not be reached

DEFAULT_URL = "http://127.0.0.1:8080/"
DEFAULT_BATCH_SIZE = 500
# The forwarder's default body cap (FORWARDER_MAX_BODY_BYTES); batches are packed to stay under it.
MAX_BODY_BYTES = 6_291_456
DEFAULT_TIMEOUT_S = 60.0
TOKEN_VARIABLE = "FORWARDER_INGEST_TOKEN"  # noqa: S105 (a variable name, not a secret)
MAX_SNIPPET = 200

EXAMPLES = f"""\
input: a JSON array of events, one event object, {{"events": [...]}}, or NDJSON (one event per line;
a line that is not JSON is rejected alone and the others are sent).

examples:
  # send a file to the forwarder on this machine (started with: make serve)
  scripts/send-events events.ndjson
  # validate only: the forwarder checks every event and sends nothing to Cloud Eye
  scripts/send-events events.ndjson --dry-run --quiet
  # read stdin, send to a deployed forwarder (token from ${TOKEN_VARIABLE}), keep every result
  scripts/send-events - --url https://<api-host>/cloudeye/events --json results.json < events.json

exit status: 0 every event accepted, 1 some rejected or failed, 2 bad usage or unreadable input,
3 the forwarder could not be reached.
"""


class InputError(Exception):
    """The input cannot be read or parsed; the message names the file (and line, when known)."""


class Unreachable(Exception):
    """No HTTP answer from the forwarder (refused, DNS, TLS, timeout)."""


# ---------------------------------------------------------------------------------------------
# input


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "true/false"}.get(
        type(value), "null" if value is None else "a number"
    )


@dataclass(frozen=True)
class UnreadableLine:
    """An NDJSON line that is not JSON: rejected alone, never sent; the other lines go on."""

    line: int
    reason: str

    def result(self, index: int) -> dict[str, Any]:
        # The forwarder's own shape for such a line, so the table and --json read the same.
        errors = [{"field": f"(line {self.line})", "message": self.reason}]
        return {"index": index, "status": "rejected", "errors": errors}


def parse_events(text: str, name: str) -> list[Any]:
    """Events from a JSON array, one object, ``{"events": [...]}`` or NDJSON text.

    An NDJSON line that is not JSON becomes an ``UnreadableLine`` in its place. Raises InputError
    naming ``name`` (and, for invalid JSON, the line and column) when nothing in it is usable.
    """
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise InputError(f"{name} is empty: expected a JSON array of events, one event object or NDJSON")
    if name.endswith((".ndjson", ".jsonl")):
        return _parse_ndjson(text)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        # "Extra data": a first value parsed and more follow. Otherwise it is NDJSON only when most
        # lines are JSON on their own; a pretty-printed document with a typo is not.
        if exc.msg.startswith("Extra data") or _mostly_json_lines(text):
            return _parse_ndjson(text)
        raise InputError(f"{name} line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}") from None
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        if "events" in document:
            if not isinstance(document["events"], list):
                raise InputError(
                    f'{name}: "events" must be an array of events, got {_kind(document["events"])}'
                )
            return document["events"]
        return [document]
    raise InputError(
        f'{name}: expected a JSON array of events, one event object, {{"events": [...]}} or NDJSON; '
        f"got {_kind(document)}"
    )


def _mostly_json_lines(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    readable = 0
    for line in lines:
        with contextlib.suppress(ValueError, RecursionError):
            readable += isinstance(json.loads(line), (dict, list))
    return len(lines) > 1 and readable * 2 > len(lines)


def _json_error(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} (column {exc.colno})"
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)


def _parse_ndjson(text: str) -> list[Any]:
    """One event per line (a line may hold an array of events, like a queue message)."""
    events: list[Any] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as exc:
            events.append(UnreadableLine(number, f"line {number} is not JSON: {_json_error(exc)}"))
            continue
        # Anything else (a number, a string) is sent as it is: the forwarder rejects it with a reason.
        events.extend(value if isinstance(value, list) else [value])
    return events


def read_events(path: str, stdin: Any = None) -> list[Any]:
    """Read and parse events from ``path`` (``-`` is stdin)."""
    name = "stdin" if path == "-" else path
    try:
        if path == "-":
            stream = stdin if stdin is not None else sys.stdin
            raw = stream.buffer.read() if hasattr(stream, "buffer") else stream.read()
        else:
            with open(path, "rb") as handle:
                raw = handle.read()
    except FileNotFoundError:
        raise InputError(f"cannot read {name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"cannot read {name}: it is a directory") from None
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    if isinstance(raw, str):
        return parse_events(raw, name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{name} is not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})"
        ) from None
    return parse_events(text, name)


# ---------------------------------------------------------------------------------------------
# batches and HTTP


@dataclass(frozen=True)
class Batch:
    """The input's events at ``indexes`` (in order), as one JSON array body."""

    indexes: tuple[int, ...]
    body: bytes

    @property
    def count(self) -> int:
        return len(self.indexes)


def make_batches(events: Sequence[Any], batch_size: int, max_bytes: int = MAX_BODY_BYTES) -> Iterator[Batch]:
    """Order-keeping batches of at most ``batch_size`` events and (where possible) ``max_bytes``.

    Unreadable lines are left out: they are rejected here and never sent.
    """
    parts: list[bytes] = []
    indexes: list[int] = []
    size = 0
    for index, event in enumerate(events):
        if isinstance(event, UnreadableLine):
            continue
        encoded = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if parts and (len(parts) >= batch_size or size + len(encoded) + 1 > max_bytes):
            yield Batch(tuple(indexes), b"[" + b",".join(parts) + b"]")
            parts, indexes, size = [], [], 0
        parts.append(encoded)
        indexes.append(index)
        size += len(encoded) + 1
    if parts:
        yield Batch(tuple(indexes), b"[" + b",".join(parts) + b"]")


def with_dry_run(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "dry_run"]
    query.append(("dry_run", "true"))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


@dataclass
class Answer:
    status: int
    body: Any  # the parsed JSON, or None
    text: str  # the start of the raw body, for error messages


class Poster:
    """POSTs JSON bodies to one URL; proxies from the environment apply, except for loopback hosts."""

    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self.headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "User-Agent": "send-events/1",
        }
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        host = urlsplit(url).hostname or ""
        handlers = [urllib.request.ProxyHandler({})] if _is_loopback(host) else []
        self.opener = urllib.request.build_opener(*handlers)

    def post(self, body: bytes) -> Answer:
        request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return _answer(response.status, response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return _answer(exc.code, exc.read())
        except urllib.error.URLError as exc:
            raise Unreachable(_reason(exc.reason)) from None
        except TimeoutError:
            raise Unreachable(f"no answer within {self.timeout:g} s") from None
        except http.client.HTTPException as exc:
            raise Unreachable(f"the answer is not HTTP ({type(exc).__name__})") from None
        except OSError as exc:  # connection reset mid-answer and the like
            raise Unreachable(_reason(exc)) from None


def _reason(reason: Any) -> str:
    if isinstance(reason, TimeoutError):
        return "no answer in time"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)


def _answer(status: int, raw: bytes) -> Answer:
    text = raw[:MAX_SNIPPET].decode("utf-8", "replace").strip()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    return Answer(status, body, text)


def _answer_error(answer: Answer) -> str:
    """A one-line description of an answer that carries no per-event results."""
    message = None
    if isinstance(answer.body, dict):
        message = answer.body.get("error") or answer.body.get("message") or answer.body.get("error_msg")
        if isinstance(message, dict):
            message = message.get("message") or json.dumps(message)
    message = message or answer.text or "(empty body)"
    hint = {
        401: f" (give --token or set {TOKEN_VARIABLE})",
        404: " (is --url the forwarder's address?)",
        413: " (lower --batch-size)",
    }.get(answer.status, "")
    return f"forwarder answered {answer.status}: {message}{hint}"


def batch_results(batch: Batch, answer: Answer) -> list[dict[str, Any]]:
    """The forwarder's per-event results with input indexes; every event of the batch gets one."""
    results: dict[int, dict[str, Any]] = {}
    items = answer.body.get("results") if isinstance(answer.body, dict) else None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("index"), int) and 0 <= item["index"] < batch.count:
            results[item["index"]] = {**item, "index": batch.indexes[item["index"]]}
    # No results at all: the answer stopped before the events (401, 413, 400 unreadable, ...).
    error = (
        f"no result for this event in the forwarder's answer ({answer.status})"
        if results
        else _answer_error(answer)
    )
    return [
        results.get(local, {"index": index, "status": "failed", "error": error})
        for local, index in enumerate(batch.indexes)
    ]


NOT_SENT = "not sent: "  # the prefix of the error of events in batches never sent


def failed_batch(batch: Batch, error: str) -> list[dict[str, Any]]:
    return [{"index": index, "status": "failed", "error": error} for index in batch.indexes]


# ---------------------------------------------------------------------------------------------
# output


class Progress:
    """A bar redrawn on a terminal, or a progress line at most every ``interval`` seconds."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO, mode: str | None, interval: float = 1.0) -> None:
        self.total, self.stream, self.mode, self.interval = total, stream, mode, interval
        self.started = time.monotonic()
        self.last_line = float("-inf")

    def update(self, done: int, counts: dict[str, int], *, final: bool = False) -> None:
        if self.mode is None:
            return
        elapsed = time.monotonic() - self.started
        share = done / self.total if self.total else 1.0
        figures = (
            f"{done}/{self.total} events {share:4.0%}  accepted {counts['accepted']}  "
            f"rejected {counts['rejected']}  failed {counts['failed']}  {elapsed:.1f} s"
        )
        if self.mode == "bar":
            filled = int(self.WIDTH * share)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            self.stream.write(f"\r[{bar}] {figures}" + ("\n" if final else ""))
        elif final or elapsed - self.last_line >= self.interval:
            self.last_line = elapsed
            self.stream.write(f"progress: {figures}\n")
        self.stream.flush()


def describe(result: dict[str, Any]) -> list[str]:
    """The event id, or the reason(s) it was not accepted, as one or more lines of text."""
    status = result.get("status")
    if status == "accepted":
        event_id = result.get("event_id") or "(valid; dry run, not sent)"
        name = result.get("event_name")
        return [f"{event_id}  {name}" if name else str(event_id)]
    if status == "rejected":
        errors = result.get("errors") or [{"field": "(event)", "message": "rejected"}]
        return [f"{error.get('field', '(event)')}: {error.get('message', '')}" for error in errors]
    return [str(result.get("error") or "failed")]


def _cause(result: dict[str, Any]) -> str:
    return str(result.get("error") or "failed").removeprefix(NOT_SENT)


def _follows(before: dict[str, Any], after: dict[str, Any]) -> bool:
    first, second = before.get("index"), after.get("index")
    return isinstance(first, int) and isinstance(second, int) and second == first + 1


def _rows(results: Sequence[dict[str, Any]]) -> Iterator[tuple[str, str, list[str]]]:
    """(index, status, texts) per event; a run of failed events with one cause is one row."""
    position = 0
    while position < len(results):
        first = results[position]
        end = position + 1
        if first.get("status") == "failed":
            while (
                end < len(results)
                and results[end].get("status") == "failed"
                and _cause(results[end]) == _cause(first)
                and _follows(results[end - 1], results[end])
            ):
                end += 1
        run = results[position:end]
        if len(run) == 1:
            yield str(first.get("index", "")), str(first.get("status", "?")), describe(first)
        else:
            unsent = sum(str(r.get("error", "")).startswith(NOT_SENT) for r in run)
            note = f" ({unsent} of them not sent)" if unsent else ""
            yield f"{first.get('index')}-{run[-1].get('index')}", "failed", [_cause(first) + note]
        position = end


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """index | status | event id or reason; extra reasons of one event go on continuation lines."""
    rows = list(_rows(results))
    width = max([len("index")] + [len(label) for label, _, _ in rows])
    lines = [f"{'index':>{width}}  {'status':<8}  event id / reason"]
    for label, status, texts in rows:
        lines.append(f"{label:>{width}}  {status:<8}  {texts[0]}")
        lines.extend(f"{'':>{width}}  {'':<8}  {text}" for text in texts[1:])
    return "\n".join(lines)


def totals(results: Sequence[dict[str, Any]]) -> dict[str, int]:
    counts = {"received": len(results), "accepted": 0, "rejected": 0, "failed": 0}
    for result in results:
        status = result.get("status")
        counts[status if status in counts else "failed"] += 1
    return counts


# ---------------------------------------------------------------------------------------------
# command line


def _count(number: int, noun: str) -> str:
    plural = noun + ("es" if noun.endswith("ch") else "s")
    return f"{number} {noun if number == 1 else plural}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="send-events",
        description="Send custom events to a Cloud Eye event forwarder (its HTTP entry) in batches and "
        "print what happened to each event.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", help="events file (JSON or NDJSON); '-' reads stdin")
    parser.add_argument(
        "--url", default=DEFAULT_URL, help=f"the forwarder's HTTP entry (default {DEFAULT_URL})"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"events per HTTP request (default {DEFAULT_BATCH_SIZE}; the forwarder splits each "
        "request into Cloud Eye calls of up to 100)",
    )
    parser.add_argument(
        "--token",
        help=f"ingest token, sent as 'Authorization: Bearer ...' (default: ${TOKEN_VARIABLE}; "
        "prefer the variable, a command line is visible to other users)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="validate only (adds ?dry_run=true); nothing is sent"
    )
    parser.add_argument(
        "--json",
        metavar="OUT",
        help="write all results as JSON to OUT ('-' for stdout) instead of printing the table",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="list only events that were not accepted")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="always show progress on stderr (a bar on a terminal, else a line per second)",
    )
    shown.add_argument("--no-progress", dest="progress", action="store_false", help="never show progress")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds to wait for each answer (default {DEFAULT_TIMEOUT_S:g})",
    )
    return parser


def _progress_mode(option: bool | None, stream: TextIO, batches: int) -> str | None:
    tty = hasattr(stream, "isatty") and stream.isatty()
    if option is False:
        return None
    if option is True:
        return "bar" if tty else "lines"
    return "bar" if tty and batches > 1 else None  # by default only large inputs on a terminal


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: Any = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: dict[str, str] | None = None,
) -> int:
    """Run the command; returns the exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    env = os.environ if environ is None else environ
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage and 0 on --help
        return int(exc.code or 0)

    def fail(message: str, code: int = EXIT_USAGE) -> int:
        err.write(f"send-events: {message}\n")
        return code

    if args.batch_size < 1:
        return fail("--batch-size must be at least 1")
    if args.timeout <= 0:
        return fail("--timeout must be positive")
    url_parts = urlsplit(args.url)
    if url_parts.scheme not in ("http", "https") or not url_parts.hostname:
        return fail(f"--url must be an http:// or https:// URL (got {args.url!r})")
    try:
        events = read_events(args.file, stdin)
    except InputError as exc:
        return fail(str(exc))
    if not events:
        err.write(
            f"send-events: {'stdin' if args.file == '-' else args.file} holds no events; nothing sent\n"
        )
        return EXIT_OK

    url = with_dry_run(args.url) if args.dry_run else args.url
    poster = Poster(url, args.token or env.get(TOKEN_VARIABLE) or None, args.timeout)
    batches = list(make_batches(events, args.batch_size))
    progress = Progress(len(events), err, _progress_mode(args.progress, err, len(batches)))
    started = time.monotonic()
    by_index = {i: e.result(i) for i, e in enumerate(events) if isinstance(e, UnreadableLine)}
    stop: str | None = None  # a failure every later batch would meet too: the rest is not sent
    unreachable = False
    sent = 0
    for batch in batches:
        if stop:
            by_index.update((r["index"], r) for r in failed_batch(batch, NOT_SENT + stop))
            continue
        sent += 1
        try:
            answer = poster.post(batch.body)
        except Unreachable as exc:
            # The request may have arrived; resending is safe because Cloud Eye de-duplicates.
            stop, unreachable = f"could not reach the forwarder at {args.url}: {exc}", True
            outcome = failed_batch(batch, stop)
        else:
            outcome = batch_results(batch, answer)
            if answer.status == 401:
                stop = _answer_error(answer)
        by_index.update((r["index"], r) for r in outcome)
        progress.update(len(by_index), totals(list(by_index.values())))
    results = [by_index[i] for i in sorted(by_index)]
    progress.update(len(results), totals(results), final=True)
    elapsed = time.monotonic() - started

    counts = totals(results)
    if args.json:
        document = {
            "url": args.url,
            "dry_run": args.dry_run,
            "batches": len(batches),
            "batches_sent": sent,
            **counts,
            "results": results,
        }
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        if args.json == "-":
            out.write(text)
        else:
            try:
                with open(args.json, "w", encoding="utf-8") as handle:
                    handle.write(text)
            except OSError as exc:
                return fail(f"cannot write {args.json}: {exc.strerror or exc}")
    else:
        shown = [r for r in results if r.get("status") != "accepted"] if args.quiet else results
        if shown:
            out.write(format_table(shown) + "\n")
    where = (
        f", stopped after batch {sent} of {len(batches)}"
        if sent < len(batches)
        else f" in {_count(len(batches), 'batch')}"
    )
    summary = (
        f"{'dry run: ' if args.dry_run else ''}{_count(counts['received'], 'event')}{where}: "
        f"{counts['accepted']} accepted, {counts['rejected']} rejected, {counts['failed']} failed "
        f"({elapsed:.1f} s)\n"
    )
    (err if args.json == "-" else out).write(summary)
    out.flush()
    if stop:
        err.write(f"send-events: {stop}\n")
    if unreachable:
        return EXIT_UNREACHABLE
    return EXIT_OK if counts["accepted"] == counts["received"] else EXIT_NOT_ALL_ACCEPTED


if __name__ == "__main__":
    sys.exit(main())
