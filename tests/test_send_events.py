"""scripts/send-events against a stub forwarder: input formats, batching, results, exit codes."""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from scripts import send_events
from scripts.send_events import EXIT_NOT_ALL_ACCEPTED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "send-events"
TOKEN = "stub-ingest-token-value"


def event(i: int, **changes: Any) -> dict[str, Any]:
    return {
        "event_name": f"DiskAlmostFull{i % 7}",
        "event_source": "ops.Storage",
        "time": 1_700_000_000_000 + i,
        "detail": {"event_type": "EVENT.CUSTOM", "resource_id": f"vol-{i}"},
        **changes,
    }


class StubForwarder:
    """A forwarder stand-in: events whose name starts with 'Bad' are rejected, the rest accepted."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status_override: int | None = None
        self.token: str | None = None
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                stub.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if stub.token and self.headers.get("Authorization") != f"Bearer {stub.token}":
                    # The forwarder's shape for answers that stop before the events.
                    zero = {"received": 0, "accepted": 0, "rejected": 0, "failed": 0, "results": []}
                    return self.answer(401, {**zero, "error": "missing or wrong ingest token"})
                if stub.status_override:
                    return self.answer(stub.status_override, {"error": "request body too large"})
                events = json.loads(body)
                results = []
                for index, item in enumerate(events):
                    if str(item.get("event_name", "")).startswith("Bad"):
                        errors = [{"field": "event_name", "message": "is not allowed here"}]
                        results.append({"index": index, "status": "rejected", "errors": errors})
                    else:
                        results.append(
                            {
                                "index": index,
                                "status": "accepted",
                                "event_id": f"ev{len(stub.requests)}x{index}",
                                "event_name": item["event_name"],
                            }
                        )
                accepted = sum(r["status"] == "accepted" for r in results)
                status = 201 if accepted == len(results) else 207 if accepted else 400
                self.answer(status, {"received": len(results), "accepted": accepted, "results": results})

            def answer(self, status: int, document: Any) -> None:
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def batch_sizes(self) -> list[int]:
        return [len(json.loads(request["body"])) for request in self.requests]


@pytest.fixture
def stub() -> Iterator[StubForwarder]:
    server = StubForwarder()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def run(*argv: str, stdin: str | None = None, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = send_events.main(
        list(argv), stdin=io.StringIO(stdin or ""), stdout=out, stderr=err, environ=environ or {}
    )
    return code, out.getvalue(), err.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- input formats -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count"),
    [
        (json.dumps([event(0), event(1)]), 2),
        (json.dumps(event(0)), 1),
        (json.dumps({"events": [event(0), event(1), event(2)]}), 3),
        ("\n".join(json.dumps(event(i)) for i in range(4)) + "\n", 4),
        (json.dumps(event(0)) + "\n\n" + json.dumps([event(1), event(2)]) + "\n", 3),
        ("\ufeff" + json.dumps([event(0)], indent=2), 1),
        ("[]", 0),
    ],
    ids=["array", "object", "events-key", "ndjson", "ndjson-with-array-line", "bom-pretty", "empty-array"],
)
def test_parse_events_accepts_every_documented_shape(text: str, count: int) -> None:
    assert len(send_events.parse_events(text, "in.json")) == count


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "in.json is empty"),
        ("  \n\n", "in.json is empty"),
        ('[\n  {"event_name": "a",\n  "time" 1}\n]', "in.json line 3 column 10: invalid JSON"),
        ('"just a string"', "got a string"),
        (json.dumps({"events": {"a": 1}}), '"events" must be an array'),
        ('[\n  {"a": 1},\n  {"b": 2}\n', "in.json line 4 column 1: invalid JSON"),
    ],
    ids=["empty", "blank", "pretty-line-3", "scalar", "events-not-list", "pretty-unclosed"],
)
def test_parse_events_names_the_file_and_line_of_a_problem(text: str, expected: str) -> None:
    with pytest.raises(send_events.InputError, match=re.escape(expected)):
        send_events.parse_events(text, "in.json")


@pytest.mark.parametrize("name", ["in.json", "in.ndjson"])
def test_an_unreadable_ndjson_line_stands_alone(name: str) -> None:
    # GIVEN NDJSON whose third line is cut short and whose fourth is a bare number
    text = "\n".join([json.dumps(event(0)), json.dumps([event(1), event(2)]), '{"event_name": ', "42"])

    # WHEN parsed THEN the readable lines give their events, the broken one its place and reason
    items = send_events.parse_events(text, name)
    assert items[:3] == [event(0), event(1), event(2)]
    assert items[3] == send_events.UnreadableLine(3, "line 3 is not JSON: Expecting value (column 16)")
    assert items[4] == 42  # valid JSON: the forwarder judges it and says why it is rejected


def test_read_events_explains_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(send_events.InputError, match=r"cannot read .*missing\.json: no such file"):
        send_events.read_events(str(tmp_path / "missing.json"))
    with pytest.raises(send_events.InputError, match="is a directory"):
        send_events.read_events(str(tmp_path))
    binary = tmp_path / "binary.json"
    binary.write_bytes(b'[{"a": "\xff"}]')
    with pytest.raises(
        send_events.InputError, match=r"binary\.json is not UTF-8 text \(byte 0xff at offset 8\)"
    ):
        send_events.read_events(str(binary))


# --- batching ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("total", "size"), [(1, 500), (499, 500), (500, 500), (1001, 500), (10, 3), (7, 1)])
def test_batches_keep_order_and_cover_every_event_once(total: int, size: int) -> None:
    events = [event(i) for i in range(total)]
    batches = list(send_events.make_batches(events, size))
    assert [b.count for b in batches] == [min(size, total - start) for start in range(0, total, size)]
    assert [b.indexes[0] for b in batches] == list(range(0, total, size))
    assert [i for b in batches for i in b.indexes] == list(range(total))
    assert [e for b in batches for e in json.loads(b.body)] == events


def test_batches_also_respect_the_body_byte_cap() -> None:
    events = [event(i, detail={"content": "x" * 1000}) for i in range(20)]
    batches = list(send_events.make_batches(events, 500, max_bytes=5000))
    assert all(len(b.body) <= 5000 for b in batches)
    assert [e for b in batches for e in json.loads(b.body)] == events
    assert len(batches) == 5


def test_dry_run_is_added_to_the_query_string() -> None:
    assert send_events.with_dry_run("http://h:1/") == "http://h:1/?dry_run=true"
    assert send_events.with_dry_run("http://h/x?a=1&dry_run=no") == "http://h/x?a=1&dry_run=true"


# --- against the stub forwarder ------------------------------------------------------------------


def test_large_input_goes_in_batches_with_global_indexes(stub: StubForwarder, tmp_path: Path) -> None:
    # GIVEN 1,234 events, two of them invalid, as NDJSON
    events = [event(i) for i in range(1234)]
    events[7]["event_name"] = "BadName"
    events[1100]["event_name"] = "BadAgain"
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")

    # WHEN it is sent with the default batch size
    code, out, err = run(str(path), "--url", stub.url)

    # THEN three requests of at most 500 events went out, and the table uses input indexes
    assert stub.batch_sizes() == [500, 500, 234]
    assert code == EXIT_NOT_ALL_ACCEPTED
    lines = out.splitlines()
    assert lines[0].split() == ["index", "status", "event", "id", "/", "reason"]
    assert lines[1 + 7].split()[:3] == ["7", "rejected", "event_name:"]
    assert lines[1 + 1100].split()[:2] == ["1100", "rejected"]
    assert lines[1 + 1233].split()[:3] == ["1233", "accepted", "ev3x233"]
    assert "1234 events in 3 batches: 1232 accepted, 2 rejected, 0 failed" in out
    assert err == ""  # not a terminal and no --progress: no progress output


def test_everything_accepted_exits_zero_and_quiet_lists_nothing(stub: StubForwarder) -> None:
    code, out, _ = run("-", "--url", stub.url, "--quiet", stdin=json.dumps([event(i) for i in range(3)]))
    assert code == EXIT_OK
    assert out.startswith("3 events in 1 batch: 3 accepted, 0 rejected, 0 failed")


def test_progress_lines_when_forced_and_not_a_terminal(stub: StubForwarder) -> None:
    ndjson = "\n".join(json.dumps(event(i)) for i in range(1000))
    code, _, err = run("-", "--url", stub.url, "--batch-size", "100", "--progress", stdin=ndjson)
    assert code == EXIT_OK
    assert len(stub.requests) == 10
    assert err.splitlines()[-1].startswith("progress: 1000/1000 events 100%  accepted 1000")


def test_progress_bar_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = send_events.Progress(10, stream, send_events._progress_mode(None, stream, batches=2))
    progress.update(5, {"accepted": 5, "rejected": 0, "failed": 0})
    progress.update(10, {"accepted": 9, "rejected": 1, "failed": 0}, final=True)
    assert stream.getvalue().startswith("\r[###############---------------] 5/10 events  50%")
    assert stream.getvalue().endswith("\n") and "\r[" + "#" * 30 + "] 10/10" in stream.getvalue()
    # small inputs (one batch) and --no-progress stay quiet even on a terminal
    assert send_events._progress_mode(None, stream, batches=1) is None
    assert send_events._progress_mode(False, stream, batches=9) is None


def test_token_from_environment_or_flag_is_sent_but_never_printed(stub: StubForwarder) -> None:
    stub.token = TOKEN
    body = json.dumps([event(0)])
    code, out, err = run("-", "--url", stub.url, stdin=body, environ={"FORWARDER_INGEST_TOKEN": TOKEN})
    assert code == EXIT_OK
    code, out2, err2 = run("-", "--url", stub.url, "--token", TOKEN, stdin=body)
    assert code == EXIT_OK
    assert [r["headers"]["Authorization"] for r in stub.requests] == [f"Bearer {TOKEN}"] * 2
    assert TOKEN not in out + err + out2 + err2


def test_wrong_token_stops_after_the_first_batch_and_says_so_once(stub: StubForwarder) -> None:
    stub.token = TOKEN
    ndjson = "\n".join(json.dumps(event(i)) for i in range(30))
    code, out, err = run("-", "--url", stub.url, "--batch-size", "10", "--token", "wrong", stdin=ndjson)
    assert code == EXIT_NOT_ALL_ACCEPTED
    assert len(stub.requests) == 1
    hint = (
        "forwarder answered 401: missing or wrong ingest token "
        "(give --token or set FORWARDER_INGEST_TOKEN)"
    )
    assert out.splitlines() == [
        "index  status    event id / reason",
        f" 0-29  failed    {hint} (20 of them not sent)",
        out.splitlines()[-1],
    ]
    assert out.splitlines()[-1].startswith(
        "30 events, stopped after batch 1 of 3: 0 accepted, 0 rejected, 30 failed ("
    )
    assert err == f"send-events: {hint}\n"
    assert "wrong" not in err.replace("wrong ingest token", "")


def test_unreachable_forwarder_is_one_line_not_a_thousand(tmp_path: Path) -> None:
    # GIVEN 1,000 events and no forwarder at the address
    url = f"http://127.0.0.1:{free_port()}/"
    ndjson = "\n".join(json.dumps(event(i)) for i in range(1000))

    # WHEN they are sent in batches of 100
    code, out, err = run("-", "--url", url, "--batch-size", "100", stdin=ndjson)

    # THEN the first batch fails naming the address, the other nine are not tried,
    # and that is one row, one summary and one error line
    cause = f"could not reach the forwarder at {url}: Connection refused"
    assert code == EXIT_UNREACHABLE
    lines = out.splitlines()
    assert lines[:2] == [
        "index  status    event id / reason",
        f"0-999  failed    {cause} (900 of them not sent)",
    ]
    assert len(lines) == 3
    summary = "1000 events, stopped after batch 1 of 10: 0 accepted, 0 rejected, 1000 failed ("
    assert lines[2].startswith(summary)
    assert err == f"send-events: {cause}\n"

    # AND --json still has every event, marked not sent where it never left
    target = tmp_path / "results.json"
    run("-", "--url", url, "--batch-size", "100", "--json", str(target), stdin=ndjson)
    document = json.loads(target.read_text())
    assert (document["batches"], document["batches_sent"], document["failed"]) == (10, 1, 1000)
    assert document["results"][99]["error"] == cause
    assert document["results"][100]["error"] == f"not sent: {cause}"


def test_runs_of_one_failure_collapse_but_rejections_do_not() -> None:
    results = [
        {"index": 0, "status": "failed", "error": "Cloud Eye answered 503"},
        {"index": 1, "status": "failed", "error": "Cloud Eye answered 503"},
        {"index": 2, "status": "rejected", "errors": [{"field": "time", "message": "too old"}]},
        {"index": 3, "status": "rejected", "errors": [{"field": "time", "message": "too old"}]},
        {"index": 4, "status": "failed", "error": "Cloud Eye answered 503"},
        {"index": 6, "status": "failed", "error": "Cloud Eye answered 503"},  # 5 is not in this run
    ]
    assert send_events.format_table(results).splitlines() == [
        "index  status    event id / reason",
        "  0-1  failed    Cloud Eye answered 503",
        "    2  rejected  time: too old",
        "    3  rejected  time: too old",
        "    4  failed    Cloud Eye answered 503",
        "    6  failed    Cloud Eye answered 503",
    ]


def test_an_unreadable_line_is_rejected_and_the_rest_is_sent(stub: StubForwarder, tmp_path: Path) -> None:
    # GIVEN an NDJSON file whose second line is broken
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join([json.dumps(event(0)), "{oops", json.dumps(event(2)), json.dumps(event(3))]))

    # WHEN it is sent in batches of two
    code, out, _ = run(str(path), "--url", stub.url, "--batch-size", "2")

    # THEN the three readable events are sent, keeping their input indexes, and line 2 is rejected alone
    assert code == EXIT_NOT_ALL_ACCEPTED
    assert stub.batch_sizes() == [2, 1]
    assert [json.loads(r["body"])[0]["time"] for r in stub.requests] == [event(0)["time"], event(3)["time"]]
    lines = out.splitlines()
    assert lines[1].split()[:3] == ["0", "accepted", "ev1x0"]
    assert lines[2] == (
        "    1  rejected  (line 2): line 2 is not JSON: "
        "Expecting property name enclosed in double quotes (column 2)"
    )
    assert lines[3].split()[:3] == ["2", "accepted", "ev1x1"]
    assert lines[4].split()[:3] == ["3", "accepted", "ev2x0"]
    assert lines[5].startswith("4 events in 2 batches: 3 accepted, 1 rejected, 0 failed")


def test_an_answer_without_results_fails_its_batch_with_the_reason(stub: StubForwarder) -> None:
    stub.status_override = 413
    code, out, _ = run("-", "--url", stub.url, stdin=json.dumps([event(0), event(1)]))
    assert code == EXIT_NOT_ALL_ACCEPTED
    assert "forwarder answered 413: request body too large (lower --batch-size)" in out


def test_dry_run_and_json_output(stub: StubForwarder, tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    events = [event(0), event(1, event_name="BadOne")]
    code, out, _ = run("-", "--url", stub.url, "--dry-run", "--json", str(target), stdin=json.dumps(events))
    assert code == EXIT_NOT_ALL_ACCEPTED
    assert stub.requests[0]["path"] == "/?dry_run=true"
    document = json.loads(target.read_text())
    assert (document["received"], document["accepted"], document["rejected"]) == (2, 1, 1)
    assert [r["index"] for r in document["results"]] == [0, 1]
    assert out.startswith("dry run: 2 events in 1 batch: 1 accepted, 1 rejected, 0 failed (")
    assert "index" not in out  # JSON instead of the table

    code, out, err = run("-", "--url", stub.url, "--json", "-", stdin=json.dumps(events))
    assert json.loads(out)["results"][1]["errors"][0]["field"] == "event_name"
    assert "2 events in 1 batch" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--url", "ftp://x/"], "--url must be an http:// or https:// URL"),
        (["--timeout", "0"], "--timeout must be positive"),
    ],
)
def test_bad_usage_exits_two(argv: list[str], message: str, tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    path.write_text("[]")
    code, _, err = run(str(path), *argv)
    assert code == EXIT_USAGE
    assert message in err


def test_bad_input_file_exits_two_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"event_name": "a",\n  "time" 1}\n]')
    code, out, err = run(str(path), "--url", "http://127.0.0.1:9/")
    assert code == EXIT_USAGE
    assert err == f"send-events: {path} line 3 column 10: invalid JSON: Expecting ':' delimiter\n"
    assert out == ""


def test_unreachable_forwarder_exits_three(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    code, out, err = run("-", "--url", url, "--batch-size", "1", stdin=json.dumps([event(0), event(1)]))
    assert code == EXIT_UNREACHABLE
    assert err == f"send-events: could not reach the forwarder at {url}: Connection refused\n"
    assert "2 events, stopped after batch 1 of 2: 0 accepted, 0 rejected, 2 failed" in out


def test_the_command_runs_with_plain_python(stub: StubForwarder) -> None:
    # GIVEN the executable script (stdlib only) WHEN run with this interpreter THEN it works end to end
    help_text = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True
    )
    assert "examples:" in help_text.stdout and "exit status:" in help_text.stdout
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "-", "--url", stub.url],
        input=json.dumps({"events": [event(0), event(1)]}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "2 events in 1 batch: 2 accepted" in done.stdout


def test_a_server_that_does_not_speak_http_counts_as_unreachable() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def answer_garbage() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"garbage\r\n\r\n")

        thread = threading.Thread(target=answer_garbage, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        code, out, err = run("-", "--url", url, stdin=json.dumps(event(0)))
        thread.join(timeout=5)
    assert code == EXIT_UNREACHABLE
    assert (
        err
        == f"send-events: could not reach the forwarder at {url}: the answer is not HTTP (BadStatusLine)\n"
    )
    assert "1 event in 1 batch: 0 accepted, 0 rejected, 1 failed" in out
