"""The quickstart demo: the whole product on this machine, against the local Cloud Eye emulator.

Starts the emulator and the function's HTTP entry (functions-framework, each in its own process
group on a free loopback port), sends a mixed batch through HTTP and a Kafka-shaped batch through
``index.handler``, prints what happened to every event and what Cloud Eye stored, then stops
everything it started (also on Ctrl-C, SIGTERM and failure). Run it with the project's virtualenv:
``make demo`` or ``.venv/bin/python scripts/demo``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "function")]

import send_events  # noqa: E402  (scripts/: the table and the HTTP poster are shared with the CLI)

# The emulator's documented demo keys (emulator/auth.py): not secrets, only valid locally.
DEMO_AK = "demo-ak"
DEMO_SK = "demo-sk-not-secret"
DEMO_PROJECT_ID = "0123456789abcdef0123456789abcdef"
HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
# Variables the children and the in-process handler must not inherit from the user's shell:
# the demo never talks to a real Cloud Eye, whatever is configured.
_ISOLATED_PREFIXES = ("HUAWEICLOUD_SDK_", "CLOUDEYE_", "FORWARDER_", "RUNTIME_PROJECT_ID", "EMULATOR_")

# What the demo batches must produce; anything else makes the demo exit 1.
HTTP_EVENTS = 130
HTTP_REJECTED = {  # index -> the field its rejection must name
    17: "time",  # seconds instead of milliseconds
    58: "detail.event_type",  # EVENT.SYS: users cannot report system events
    93: "event_name",  # not a valid name
    121: "severity",  # a field Cloud Eye does not know
}
# Cloud Eye's custom namespace form, service.item; the Kafka invocation reports its counts there.
METRICS_NAMESPACE = "FORWARDER.EVENTS"
KAFKA_ACCEPTED = 9  # of 11 items: 6 single-event messages + 3 in one message; 1 unreadable, 1 invalid


class DemoError(Exception):
    """Something the demo did not expect; the message says what."""


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class StopSignals:
    """Turns SIGINT/SIGTERM into ``Interrupted``, or holds it back inside ``deferred()``."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._defer = False

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = signal.Signals(signum).name
        if not self._defer:
            raise Interrupted(self.received)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Between starting a process and recording it, a signal must not leave it untracked."""
        self._defer = True
        try:
            yield
        finally:
            self._defer = False
        if self.received:
            raise Interrupted(self.received)

    @staticmethod
    def ignore() -> None:
        """While stopping, a second Ctrl-C must not cut the clean-up short."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


# --- processes ---------------------------------------------------------------------------------


@dataclass
class Service:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 15) -> str:
        """The end of the process's output, indented, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(f"    {line}" for line in text.splitlines()[-lines:])


# Everything started, in order, so the clean-up finds it whatever happened in between.
STARTED: list[Service] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """True when nothing listens on ``HOST:port`` (SO_REUSEADDR: closed connections don't count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
        return True


def clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_ISOLATED_PREFIXES)}
    env.update(values)
    return env


def start(
    name: str, source: str, target: str, port: int, env: dict[str, str], logs: Path, signals: StopSignals
) -> Service:
    """``functions-framework --source .. --target .. --port ..`` in its own process group."""
    if not port_is_free(port):
        # Otherwise whatever already listens there would answer in its place.
        raise DemoError(f"port {port} for the {name} is already in use")
    command = [
        sys.executable, "-m", "functions_framework",
        "--source", str(ROOT / source), "--target", target, "--host", HOST, "--port", str(port),
    ]  # fmt: skip
    log_path = logs / f"{name}.log"
    with signals.deferred(), open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: Ctrl-C reaches only the demo, which stops it
        )  # fmt: skip
        service = Service(name, port, process, log_path)
        STARTED.append(service)
    return service


def wait_until_answering(services: list[Service], timeout: float = START_TIMEOUT_S) -> None:
    """Any HTTP answer counts: the server is listening and its code is loaded."""
    deadline = time.monotonic() + timeout
    waiting = list(services)
    while waiting:
        for service in list(waiting):
            if service.process.poll() is not None:
                raise DemoError(
                    f"the {service.name} exited with status {service.process.returncode} while starting:\n"
                    f"{service.log_tail()}"
                )
            connection = http.client.HTTPConnection(HOST, service.port, timeout=2)
            try:
                connection.request("GET", "/_emulator/stats" if service.name == "emulator" else "/")
                connection.getresponse().read()
                waiting.remove(service)
            except OSError:
                pass
            finally:
                connection.close()
        if waiting and time.monotonic() > deadline:
            names = ", ".join(s.name for s in waiting)
            raise DemoError(f"no answer from the {names} after {timeout:.0f} s:\n{waiting[0].log_tail()}")
        if waiting:
            time.sleep(0.05)


def stop_all(services: list[Service]) -> list[str]:
    """Stop each process group (TERM, then KILL), reap it and check its port; returns problems."""
    # SIGTERM is gunicorn's graceful stop (about 2 s). Its quick stop (INT/QUIT) exits its
    # worker from inside a signal handler, which now and then deadlocks the worker.
    for service in services:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for service in services:
        with contextlib.suppress(subprocess.TimeoutExpired):
            service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.process.pid, signal.SIGKILL)  # whatever is left of the group
        service.process.wait()
    problems = []
    for service in services:
        # A killed worker whose parent is gone is reaped by init a moment later.
        if not wait_for(lambda s=service: not group_alive(s.process.pid)):
            problems.append(f"process group {service.process.pid} of the {service.name} still has members")
        if not wait_for(lambda s=service: port_is_free(s.port)):
            problems.append(f"port {service.port} of the {service.name} is still bound")
    return problems


def group_alive(pgid: int) -> bool:
    """True while process group ``pgid`` has a member."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(condition: Callable[[], bool], timeout: float = 3.0, poll_s: float = 0.05) -> bool:
    """True once ``condition()`` holds, False when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_s)
    return True


# --- the demo batches --------------------------------------------------------------------------

_KINDS = [
    ("DeploymentFinished", "ops.Pipeline", "normal", "Info", "SUB_EVENT.OPS",
     "release 2.4.{i} of checkout-api rolled out to 3 of 3 instances"),
    ("DiskAlmostFull", "ops.Storage", "warning", "Major", "SUB_EVENT.CUSTOM",
     "volume data-{i} is 91% full"),
    ("PaymentGatewayTimeout", "shop.Payments", "incident", "Critical", "SUB_EVENT.CUSTOM",
     "card authorisation took more than 10 s for order 10{i:04d}"),
    ("BackupCompleted", "ops.Backup", "normal", "Info", "SUB_EVENT.PLAN",
     "nightly backup of orders-db finished (run {i})"),
    ("CertificateExpiring", "sec.Certificates", "warning", "Minor", "SUB_EVENT.CUSTOM",
     "TLS certificate shop-{i}.example.com expires in 14 days"),
]  # fmt: skip


def make_event(i: int, now_ms: int) -> dict[str, Any]:
    name, source, state, level, sub_type, content = _KINDS[i % len(_KINDS)]
    return {
        "event_name": name,
        "event_source": source,
        # Spread over the last ~30 minutes; distinct times keep Cloud Eye from merging events.
        "time": now_ms - 30_000 - i * 7_000,
        "detail": {
            "content": content.format(i=i),
            "resource_id": f"res-{name.lower()[:8]}-{i:04d}",
            "resource_name": f"{source.split('.')[1].lower()}-{i % 3}",
            "event_state": state,
            "event_level": level,
            "event_user": "ci/release-bot" if name == "DeploymentFinished" else "monitoring",
            "event_type": "EVENT.CUSTOM",
            "sub_event_type": sub_type,
            "dimensions": [{"name": "env", "value": "production"}],
        },
    }


def http_batch(now_ms: int) -> list[dict[str, Any]]:
    """130 events for the HTTP entry: 126 valid (two Cloud Eye requests: 100 + 26) and 4 invalid."""
    events = [make_event(i, now_ms) for i in range(HTTP_EVENTS)]
    events[17]["time"] = events[17]["time"] // 1000  # seconds, the most common mistake
    events[58]["detail"]["event_type"] = "EVENT.SYS"
    events[93]["event_name"] = "disk-full!"
    events[121]["severity"] = "high"
    return events


def kafka_messages(now_ms: int) -> list[str]:
    """Kafka messages: single events, one message holding three, one unreadable, one invalid."""
    base = 200
    single = [json.dumps(make_event(base + i, now_ms)) for i in range(6)]
    several = json.dumps([make_event(base + 10 + i, now_ms) for i in range(3)])
    invalid = make_event(base + 20, now_ms)
    invalid["detail"]["event_level"] = "Urgent"
    return [*single[:3], several, "deploy of checkout-api finished", *single[3:], json.dumps(invalid)]


def kafka_event(messages: list[str]) -> dict[str, Any]:
    """The shape FunctionGraph's DMS for Kafka trigger delivers (see tests/events/)."""
    return {
        "event_version": "v1.0",
        "event_time": int(time.time()),
        "trigger_type": "KAFKA",
        "region": "ap-southeast-1",
        "instance_id": "demo-kafka-instance",
        "records": [{"messages": messages, "topic_id": "cloudeye-events"}],
    }


class DemoContext:
    """The parts of FunctionGraph's context object the handler may ask for (its method names)."""

    def getRequestID(self) -> str:
        return "demo-kafka-invocation"

    def getRemainingTimeInMilliSeconds(self) -> int:
        return 30_000

    def getFunctionName(self) -> str:
        return "cloudeye-forwarder-demo"

    def getProjectID(self) -> str:
        return DEMO_PROJECT_ID


# --- Cloud Eye's view --------------------------------------------------------------------------


def cloud_eye_get(emulator: Service, path: str, query: list[tuple[str, str]]) -> Any:
    """A GET on the Cloud Eye API, signed with SDK-HMAC-SHA256 like any Cloud Eye client."""
    from urllib.parse import urlencode

    from forwarder import signer

    headers = {
        "Host": f"{HOST}:{emulator.port}",
        "Content-Type": "application/json;charset=UTF-8",
        "X-Project-Id": DEMO_PROJECT_ID,
    }
    headers = signer.sign("GET", path, query, headers, b"", DEMO_AK, DEMO_SK)
    return get_json(emulator, f"{path}?{urlencode(query)}", headers)


def get_json(service: Service, target: str, headers: dict[str, str] | None = None) -> Any:
    status, document = get_json_or_status(service, target, headers)
    if status != 200:
        raise DemoError(f"GET {target} answered {status}: {str(document)[:300]}")
    return document


def get_json_or_status(
    service: Service, target: str, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    connection = http.client.HTTPConnection(HOST, service.port, timeout=10)
    try:
        connection.request("GET", target, headers=headers or {})
        response = connection.getresponse()
        body = response.read()
    except OSError as exc:
        raise DemoError(f"could not reach the {service.name} at {service.url}{target}: {exc}") from None
    finally:
        connection.close()
    try:
        return response.status, json.loads(body)
    except ValueError:
        return response.status, body[:300].decode("utf-8", "replace")


def utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# --- output ------------------------------------------------------------------------------------


def say(text: str = "") -> None:
    print(text, flush=True)


def heading(text: str) -> None:
    say()
    say(f"== {text} " + "=" * max(0, 94 - len(text)))


def print_results(results: list[dict[str, Any]], verbose: bool) -> dict[str, int]:
    """The rows worth reading: every event not accepted (with --verbose, every event)."""
    shown = results if verbose else [r for r in results if r["status"] != "accepted"]
    if shown:
        say(send_events.format_table(shown))
    return send_events.totals(results)


def summary(counts: dict[str, int]) -> str:
    return (
        f"{counts['received']} received, {counts['accepted']} accepted, "
        f"{counts['rejected']} rejected, {counts['failed']} failed"
    )


def check(problems: list[str], condition: bool, message: str) -> None:
    if not condition:
        problems.append(message)


def rejected_fields(results: list[dict[str, Any]]) -> dict[int, str]:
    return {
        r["index"]: (r.get("errors") or [{}])[0].get("field", "?")
        for r in results
        if r["status"] == "rejected"
    }


# --- the steps ---------------------------------------------------------------------------------


def run_http(function: Service, now_ms: int, problems: list[str], verbose: bool) -> int:
    events = http_batch(now_ms)
    heading(f"1. HTTP entry: {len(events)} events in one POST to {function.url}/")
    body = json.dumps(events).encode()
    try:
        answer = send_events.Poster(function.url + "/", None, timeout=60).post(body)
    except send_events.Unreachable as exc:
        raise DemoError(f"could not reach the function at {function.url}/: {exc}") from None
    results = send_events.batch_results(send_events.Batch(tuple(range(len(events))), body), answer)
    counts = send_events.totals(results)
    say(f"HTTP {answer.status}: {summary(counts)}")
    print_results(results, verbose)
    check(problems, answer.status == 207, f"the HTTP entry answered {answer.status}, expected 207 (mixed)")
    check(problems, counts["failed"] == 0, f"{counts['failed']} HTTP events failed")
    check(
        problems,
        rejected_fields(results) == HTTP_REJECTED,
        f"HTTP rejections {rejected_fields(results)} differ from the expected {HTTP_REJECTED}",
    )
    return counts["accepted"]


class LogCapture(logging.Handler):
    """Collects the forwarder's JSON log lines (rejects with their position, the summary)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(ValueError):
            self.lines.append(json.loads(record.getMessage()))


def run_kafka(emulator: Service, now_ms: int, problems: list[str], verbose: bool) -> int:
    messages = kafka_messages(now_ms)
    heading(f"2. Kafka trigger: {len(messages)} messages through index.handler (in this process)")
    os.environ.update(
        CLOUDEYE_ENDPOINT=emulator.url,
        HUAWEICLOUD_SDK_AK=DEMO_AK,
        HUAWEICLOUD_SDK_SK=DEMO_SK,
        HUAWEICLOUD_SDK_PROJECT_ID=DEMO_PROJECT_ID,
        # The forwarder's own counts as Cloud Eye custom metrics, shown after the batch.
        FORWARDER_METRICS_NAMESPACE=METRICS_NAMESPACE,
    )
    import index  # function/index.py, the FunctionGraph entry; reads its settings per invocation

    # The handler answers a queue trigger with counts only and logs each reject with its position;
    # the demo reads those lines, and finds the accepted events' ids in what Cloud Eye stored.
    capture = LogCapture()
    forwarder_log = logging.getLogger("forwarder")
    forwarder_log.addHandler(capture)
    forwarder_log.setLevel(logging.INFO)
    try:
        answer = index.handler(kafka_event(messages), DemoContext())
    finally:
        forwarder_log.removeHandler(capture)
    say(f"index.handler returned {json.dumps(answer)}")
    rejects = {
        _position_label(line["position"]): line for line in capture.lines if line.get("message") == "rejected"
    }
    stored = {
        s["event"]["detail"].get("resource_id"): s["event_id"]
        for s in get_json(emulator, "/_emulator/events")["events"]
    }
    results = []
    for label, item in kafka_items(messages):
        if label in rejects:
            results.append({"index": label, "status": "rejected", "errors": rejects[label]["errors"]})
        elif isinstance(item, dict) and item.get("detail", {}).get("resource_id") in stored:
            event_id = stored[item["detail"]["resource_id"]]
            results.append({"index": label, "status": "accepted", "event_id": event_id,
                            "event_name": item["event_name"]})  # fmt: skip
        else:
            results.append({"index": label, "status": "failed", "error": "neither rejected nor stored"})
    say("index: the message's number, and .N for the N-th event of a message holding several")
    counts = print_results(results, verbose)
    invocation = next((line for line in capture.lines if line.get("message") == "invocation"), None)
    if invocation:
        say(f"the invocation's log line: {json.dumps(invocation)}")
    show_metrics(emulator, counts, problems)
    expected = {"received": 11, "accepted": KAFKA_ACCEPTED, "rejected": 2, "failed": 0}
    got = {name: answer.get(name) for name in expected} if isinstance(answer, dict) else answer
    check(problems, got == expected, f"index.handler counted {got}, expected {expected}")
    check(problems, counts == expected, f"the Kafka items came out as {counts}, expected {expected}")
    return counts["accepted"]


def show_metrics(emulator: Service, counts: dict[str, int], problems: list[str]) -> None:
    """The custom metrics the invocation reported about itself, as Cloud Eye received them."""
    status, document = get_json_or_status(emulator, "/_emulator/metrics")
    if status == 404:
        return  # an emulator without metric-data support: nothing to show
    values = metric_values(document)
    if not values:
        say("custom metrics: none received (see /_emulator/metrics)")
        return
    say(f"custom metrics sent to Cloud Eye ({METRICS_NAMESPACE}): " + ", ".join(
        f"{name} {value:g}{' ' + unit if unit not in ('', 'count') else ''}"
        for name, (value, unit) in values.items()
    ))  # fmt: skip
    for name in ("received", "accepted", "rejected", "failed"):
        if name in values:
            got = values[name][0]
            message = f"the metric {name} is {got:g}, the invocation counted {counts[name]}"
            check(problems, got == counts[name], message)


def metric_values(document: Any) -> dict[str, tuple[float, str]]:
    """{metric_name: (value, unit)} from every metric-data item in ``document``; the last one wins.

    An item has Cloud Eye's shape: ``{"metric": {"namespace", "metric_name", ...}, "value", "unit"}``.
    """
    found: dict[str, tuple[float, str]] = {}
    stack = [document]
    while stack:
        value = stack.pop(0)
        if isinstance(value, list):
            stack[:0] = value
        elif isinstance(value, dict):
            metric = value.get("metric")
            number = value.get("value")
            if isinstance(metric, dict) and "metric_name" in metric and isinstance(number, (int, float)):
                found[str(metric["metric_name"])] = (float(number), str(value.get("unit", "")))
            else:
                stack[:0] = list(value.values())
    return found


def _position_label(position: dict[str, Any]) -> str:
    label = str(position.get("message", "?"))
    return f"{label}.{position['event']}" if "event" in position else label


def kafka_items(messages: list[str]) -> list[tuple[str, Any]]:
    """(label, item) for every item of the batch, the way the demo built it."""
    items: list[tuple[str, Any]] = []
    for number, message in enumerate(messages):
        try:
            value = json.loads(message)
        except ValueError:
            value = message
        if isinstance(value, list):
            items.extend((f"{number}.{k}", item) for k, item in enumerate(value))
        else:
            items.append((str(number), value))
    return items


def show_cloud_eye(emulator: Service, expected: int, problems: list[str]) -> None:
    heading("3. What Cloud Eye received and stored")
    path = f"/V1.0/{DEMO_PROJECT_ID}/events"
    sizes = [
        entry["events"]
        for entry in get_json(emulator, "/_emulator/requests")["requests"]
        if entry["method"] == "POST" and entry["status"] == 201 and entry["path"] == path
    ]
    say(f"{len(sizes)} signed requests to POST {path}: {' + '.join(map(str, sizes))} events")
    say("(the HTTP batch's 126 valid events in two requests of at most 100, sent concurrently; then Kafka's)")
    expected_sizes = sorted(sizes[:2]) == [26, 100] and sizes[2:] == [KAFKA_ACCEPTED]
    check(problems, expected_sizes, f"Cloud Eye got requests of {sizes} events, expected 100 and 26, then 9")

    listing = cloud_eye_get(emulator, path, [("limit", "100")])
    say()
    say(f"GET {path} (the query API, signed):")
    say(f"{'event name':<24}{'type':<14}{'count':>5}  {'latest (UTC)':<21}source")
    stored = 0
    for group in listing["events"]:
        stored += group["event_count"]
        say(
            f"{group['event_name']:<24}{group['event_type']:<14}{group['event_count']:>5}  "
            f"{utc(group['latest_occur_time']):<21}{group['latest_event_source']}"
        )
    say(f"{stored} events stored")
    check(
        problems, stored == expected, f"Cloud Eye stored {stored} events, the forwarder accepted {expected}"
    )

    if listing["events"]:
        name = listing["events"][0]["event_name"]
        detail_path = f"/V1.0/{DEMO_PROJECT_ID}/event/{name}"
        detail = cloud_eye_get(emulator, detail_path, [("event_type", "EVENT.CUSTOM"), ("limit", "1")])
        latest = (detail.get("event_info") or [{}])[0]
        say()
        say(f"GET {detail_path}?event_type=EVENT.CUSTOM&limit=1 (the latest one):")
        say(f"  event_id  {latest.get('event_id')}")
        say(f"  time      {latest.get('time')} ({utc(latest.get('time', 0))} UTC)")
        say(f"  source    {latest.get('event_source')}")
        say(f"  detail    {json.dumps(latest.get('detail'), ensure_ascii=False)}")


def look_around(emulator: Service, function: Service, logs: Path) -> None:
    """Addresses to try while both keep running; none of them needs a signature."""
    heading("4. Look around (both keep running; Ctrl-C stops them)")
    say(f"emulator page:       {emulator.url}/_emulator/")
    say(f"events stored:       curl {emulator.url}/_emulator/events")
    say(f"requests received:   curl {emulator.url}/_emulator/requests")
    say(f"counters:            curl {emulator.url}/_emulator/stats")
    if get_json_or_status(emulator, "/_emulator/metrics")[0] == 200:
        say(f"custom metrics:      curl {emulator.url}/_emulator/metrics")
    say(f"send events:         scripts/send-events FILE --url {function.url}/")
    say(
        f"validate only:       curl -X POST '{function.url}/?dry_run=true' "
        "-H 'Content-Type: application/json' -d @events.json"
    )
    say(f"their logs:          {logs}")


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/demo",
        description="Run the Cloud Eye event forwarder end to end against the local emulator.",
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="leave the emulator and the function up after the demo, until Ctrl-C",
    )
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="list every event with its id, not only rejected ones"
    )
    parser.add_argument("--emulator-port", type=int, default=0, help="default: a free port")
    parser.add_argument("--function-port", type=int, default=0, help="default: a free port")
    parser.add_argument("--pause-after-start", action="store_true",
                        help="wait for a signal once both are up (used by the tests)")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signals = StopSignals()
    signals.install()
    started = time.monotonic()
    problems: list[str] = []
    logs = Path(tempfile.mkdtemp(prefix="cloudeye-demo-"))
    status = 0
    try:
        emulator = start(
            "emulator", "emulator/main.py", "cloudeye", args.emulator_port or free_port(),
            clean_env(EMULATOR_AK=DEMO_AK, EMULATOR_SK=DEMO_SK), logs, signals,
        )  # fmt: skip
        function = start(
            "function", "function/main.py", "ingest", args.function_port or free_port(),
            clean_env(
                CLOUDEYE_ENDPOINT=emulator.url, HUAWEICLOUD_SDK_AK=DEMO_AK, HUAWEICLOUD_SDK_SK=DEMO_SK,
                HUAWEICLOUD_SDK_PROJECT_ID=DEMO_PROJECT_ID,
            ),
            logs, signals,
        )  # fmt: skip
        for service in STARTED:
            say(f"demo: {service.name} pid={service.process.pid} port={service.port} url={service.url}")
        wait_until_answering(STARTED)
        say(f"demo: both answering after {time.monotonic() - started:.1f} s")
        if args.pause_after_start:
            say("demo: paused after start; send SIGINT or SIGTERM to stop")
            while True:
                signal.pause()

        # Times are taken now, so every event is inside Cloud Eye's window (now - 1 h .. now + 10 min).
        now_ms = time.time_ns() // 1_000_000
        for name in list(os.environ):
            if name.startswith(_ISOLATED_PREFIXES):
                del os.environ[name]
        accepted = run_http(function, now_ms, problems, args.verbose)
        accepted += run_kafka(emulator, now_ms, problems, args.verbose)
        show_cloud_eye(emulator, accepted, problems)
        if problems:
            status = 1
        elif args.keep_running:
            look_around(emulator, function, logs)
            try:
                while True:
                    signal.pause()
            except Interrupted:
                pass
        else:
            say()
            say("demo: --verbose lists every event; --keep-running leaves both up to try things by hand")
    except Interrupted as exc:
        say()
        say(f"demo: interrupted by {exc.name}")
        status = 128 + signal.Signals[exc.name].value
    except DemoError as exc:
        problems.append(str(exc))
        status = 1
    except Exception:  # a bug or a broken install: still stop everything, then say what happened
        problems.append(traceback.format_exc().rstrip())
        status = 1
    finally:
        signals.ignore()
        leftovers = stop_all(STARTED)
        if STARTED:
            names = ", ".join(f"{s.name} (pid {s.process.pid}, port {s.port})" for s in STARTED)
            say(f"demo: stopped {names}" + ("" if leftovers else "; their ports are free"))
        problems += leftovers
        if problems and status == 1:
            for service in STARTED:
                tail = service.log_tail()
                if tail:
                    say(f"demo: the end of the {service.name}'s output:\n{tail}")
        for path in logs.iterdir():
            path.unlink()
        logs.rmdir()
    if problems:
        status = status or 1
        say()
        for problem in problems:
            say(f"demo: UNEXPECTED: {problem}")
    say(f"demo: {'finished' if status == 0 else 'FAILED' if status == 1 else 'stopped'} in "
        f"{time.monotonic() - started:.1f} s (exit {status})")  # fmt: skip
    return status


if __name__ == "__main__":
    sys.exit(main())
