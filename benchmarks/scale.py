"""Scale-out simulation: N forwarder processes share one account-wide Cloud Eye rate limit.

``python -m benchmarks.scale`` (``make scale``) serves the Cloud Eye emulator in its own process
with an account limit of ``--limit`` requests per second, then, for each N of ``--instances``,
starts N forwarder processes with one batch each, starts them together and prints per N:

- goodput: events stored / (limit x 100 events x duration), the share of the account's capacity
  the instances turned into stored events (the emulator's window is a sliding second, so a burst
  that fits in one window can read slightly above 1);
- 429s: the share of event posts the emulator refused for the rate limit;
- failed events: events the instances reported as failed (their batch would be redelivered), plus
  every event of an instance that crashed or ran out of time;
- time: from the start signal to the last instance's answer.

Each instance runs at default settings unless ``--set NAME=VALUE`` says otherwise. Bounded in
time: an instance still running ``--remaining-s`` + 30 s after the start is stopped and its
events count as failed. Not a pass/fail test: figures for benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import ROOT
from benchmarks.scale_instance import READY_LINE, RESULT_PREFIX, SCENARIOS
from benchmarks.served_emulator import ServedEmulator

EVENTS_PER_REQUEST = 100  # Cloud Eye's per-request maximum, which the forwarder fills
DEFAULT_INSTANCES = (1, 8, 16, 32)
READY_TIMEOUT_S = 180.0  # imports of 32 fresh processes on a busy 2-core machine
OVERRUN_S = 30.0
# Host settings must not leak into the instances (a CLOUDEYE_MAX_ATTEMPTS in the shell, say).
_ISOLATED_PREFIXES = ("HUAWEICLOUD_SDK_", "CLOUDEYE_", "FORWARDER_", "RUNTIME_PROJECT_ID")


@dataclass
class Instance:
    """One forwarder process and what it said."""

    process: subprocess.Popen[str]
    ready: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] | None = None
    finished_at: float | None = None
    tail: list[str] = field(default_factory=list)

    def read_stdout(self) -> None:
        """Runs in a thread: the ready line, the result line, the last lines of logs and errors."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(READY_LINE):
                self.ready.set()
            elif line.startswith(RESULT_PREFIX):
                self.finished_at = time.perf_counter()
                self.result = json.loads(line[len(RESULT_PREFIX) :])
            else:
                self.tail = [*self.tail[-7:], line.rstrip()[:300]]
        self.ready.set()  # exited: nothing more to wait for

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@dataclass(frozen=True)
class Run:
    instances: int
    events_per_instance: int
    stored: int
    posts: int
    throttled: int
    failed: int
    seconds: float
    limit: int
    crashed: list[str]

    @property
    def goodput(self) -> float:
        return self.stored / (self.limit * EVENTS_PER_REQUEST * self.seconds) if self.seconds else 0.0

    @property
    def throttled_share(self) -> float:
        return self.throttled / self.posts if self.posts else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "instances": self.instances,
            "events": self.instances * self.events_per_instance,
            "stored": self.stored,
            "failed": self.failed,
            "posts": self.posts,
            "throttled": self.throttled,
            "throttled_share": round(self.throttled_share, 4),
            "goodput": round(self.goodput, 4),
            "seconds": round(self.seconds, 3),
            "crashed": self.crashed,
        }


def _instance_env(emulator: ServedEmulator, settings: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_ISOLATED_PREFIXES)}
    return {**env, **emulator.forwarder_env(), **settings, "PYTHONPATH": ROOT}


def run_once(
    emulator: ServedEmulator,
    count: int,
    args: argparse.Namespace,
    settings: dict[str, str],
    progress: Callable[[str], None],
) -> Run:
    """N instances, one batch each, against a freshly reset emulator with the account limit."""
    emulator.reset()
    emulator.set_faults(max_per_second=args.limit)
    env = _instance_env(emulator, settings)
    command = [
        sys.executable, "-m", "benchmarks.scale_instance", "--scenario", args.scenario,
        "--events", str(args.events), "--per-message", str(args.per_message),
        "--remaining-ms", str(int(args.remaining_s * 1000)),
    ]  # fmt: skip
    instances: list[Instance] = []
    try:
        for number in range(count):
            process = subprocess.Popen(
                [*command, "--instance", str(number)],
                cwd=ROOT, env=env, text=True, bufsize=1,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )  # fmt: skip
            instance = Instance(process)
            threading.Thread(target=instance.read_stdout, daemon=True).start()
            instances.append(instance)
        ready_by = time.monotonic() + READY_TIMEOUT_S
        for number, instance in enumerate(instances):
            if not instance.ready.wait(max(0.0, ready_by - time.monotonic())):
                raise RuntimeError(f"instance {number} did not get ready in {READY_TIMEOUT_S:.0f} s")
            if instance.process.poll() is not None:
                raise RuntimeError(f"instance {number} exited before the start: {_said(instance)}")
        started = time.perf_counter()
        for instance in instances:
            assert instance.process.stdin is not None
            instance.process.stdin.write("go\n")
            instance.process.stdin.flush()
        _wait(instances, started, count * args.events, args.remaining_s + OVERRUN_S, emulator, progress)
    finally:
        for instance in instances:
            instance.stop()
    stats = emulator.stats()
    failed, crashed = 0, []
    for number, instance in enumerate(instances):
        result = instance.result
        if result is None or result.get("accepted") is None:
            failed += args.events
            crashed.append(f"instance {number}: {result.get('error') if result else _said(instance)}")
        else:
            failed += result.get("failed") or 0
    ends = [instance.finished_at for instance in instances if instance.finished_at is not None]
    return Run(
        instances=count,
        events_per_instance=args.events,
        stored=stats["events_stored"],
        posts=stats["posts_received"],
        throttled=stats["throttled"],
        failed=failed,
        seconds=(max(ends) if len(ends) == count else time.perf_counter()) - started,
        limit=args.limit,
        crashed=crashed,
    )


def _said(instance: Instance) -> str:
    return " / ".join(instance.tail)[-600:] or f"exit status {instance.process.poll()}"


def _wait(
    instances: Sequence[Instance],
    started: float,
    events: int,
    bound_s: float,
    emulator: ServedEmulator,
    progress: Callable[[str], None],
) -> None:
    """Until every instance answered or the time bound passed, with a progress line each second."""
    while True:
        elapsed = time.perf_counter() - started
        done = sum(instance.process.poll() is not None for instance in instances)
        if done == len(instances) or elapsed > bound_s:
            return
        stats = emulator.stats()
        share = stats["throttled"] / stats["posts_received"] if stats["posts_received"] else 0.0
        progress(
            f"  {len(instances):>3} instances: {elapsed:5.1f} s, {stats['events_stored']:,} of {events:,} "
            f"events stored, {share:.0%} 429s, {done} done"
        )
        time.sleep(1.0)


def render_table(runs: Sequence[Run], args: argparse.Namespace, settings: dict[str, str]) -> str:
    rows = [
        "| instances | failed events | goodput (share of the limit) | 429s among requests | time (s) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        rows.append(
            f"| {run.instances} | {run.failed:,} of {run.instances * run.events_per_instance:,} | "
            f"{run.goodput:.2f} | {run.throttled_share:.0%} | {run.seconds:.1f} |"
        )
    what = (
        f"one index.handler invocation per instance: a Kafka batch of {args.events:,} events "
        f"({args.per_message} per message), {args.remaining_s:g} s left"
        if args.scenario == "kafka"
        else f"one report_events call of {args.events:,} events per instance"
    )
    set_text = ", ".join(f"{k}={v}" for k, v in settings.items()) or "default settings"
    rows += ["", f"Emulator limit {args.limit} requests/s ({args.limit * EVENTS_PER_REQUEST:,} events/s); "
             f"{what}; {set_text}; {os.cpu_count()} cores. Goodput is events stored / (limit x duration); "
             "a run of a few seconds can read above 1, since the emulator counts the limit over a "
             "sliding second and admits the first requests at once."]  # fmt: skip
    for run in runs:
        for line in run.crashed:
            rows.append(f"- {run.instances} instances, {line}")
    return "\n".join(rows)


def _settings(pairs: Sequence[str], parser: argparse.ArgumentParser) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.startswith(("CLOUDEYE_", "FORWARDER_")):
            parser.error(f"--set takes CLOUDEYE_*/FORWARDER_* NAME=VALUE, not {pair!r}")
        settings[name] = value
    return settings


def _counts(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive numbers, e.g. 1,8,16")
    return values


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, dict[str, str]]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale",
        description="Scale-out simulation: N forwarder processes, one batch each, against the Cloud "
        "Eye emulator limited to --limit requests/s. Prints per N the goodput (events stored / "
        "(limit x 100 x duration)), the share of 429s among event posts, failed events and time.",
        epilog="Examples: `make scale`; `python -m benchmarks.scale --instances 16`; the many-events "
        "case: `python -m benchmarks.scale --scenario report-events --events 16000 --instances 1,8,16 "
        "--set CLOUDEYE_MAX_ATTEMPTS=8`.",
    )
    parser.add_argument("--instances", type=_counts, default=list(DEFAULT_INSTANCES),
                        help="comma-separated instance counts to run, in turn (default 1,8,16,32)")
    parser.add_argument("--scenario", choices=SCENARIOS, default="kafka",
                        help="kafka: one index.handler invocation of a Kafka batch per instance "
                        "(default); report-events: one forwarder.report_events call per instance")
    parser.add_argument("--events", type=int, default=1000, help="events per instance (default 1000)")
    parser.add_argument("--per-message", type=int, default=100,
                        help="events per Kafka message, a JSON array each (default 100)")
    parser.add_argument("--limit", type=int, default=20,
                        help="the emulator's account limit in requests per second (default 20)")
    parser.add_argument("--remaining-s", type=float, default=60.0,
                        help="time left in each invocation's platform context (default 60); an "
                        "instance still running 30 s after that is stopped, its events failed")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a forwarder setting for every instance (repeatable), e.g. "
                        "CLOUDEYE_MAX_ATTEMPTS=8")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines, only the table")
    args = parser.parse_args(argv)  # fmt: skip
    if min(args.events, args.per_message, args.limit) < 1 or args.remaining_s <= 0:
        parser.error("--events, --per-message, --limit and --remaining-s must be positive")
    return args, _settings(args.set, parser)


def main(argv: Sequence[str] | None = None) -> int:
    args, settings = parse_args(argv)

    overwrite = sys.stderr.isatty()  # a terminal gets one progress line that updates in place

    def progress(message: str) -> None:
        if args.quiet:
            return
        if overwrite and message.startswith("  "):
            print("\r" + message, end="", file=sys.stderr, flush=True)
        else:
            print(("\r\033[K" if overwrite else "") + message, file=sys.stderr, flush=True)

    runs = []
    with ServedEmulator() as emulator:
        for count in args.instances:
            progress(f"{count} instance(s): starting {count} processes")
            run = run_once(emulator, count, args, settings, progress)
            runs.append(run)
            progress(
                f"{count} instance(s): goodput {run.goodput:.2f}, {run.throttled_share:.0%} 429s, "
                f"{run.failed:,} failed, {run.seconds:.1f} s"
            )
    print(render_table(runs, args, settings))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "parameters": {**{k: v for k, v in vars(args).items() if k not in ("json", "quiet", "set")},
                           "settings": settings, "events_per_request": EVENTS_PER_REQUEST},
            "runs": [run.to_dict() for run in runs],
        }  # fmt: skip
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0 if all(not run.crashed for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
