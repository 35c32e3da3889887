"""Peak memory of the worst bodies the caps allow: ``python -m benchmarks.memory`` (``make bench-memory``).

Each body goes through a real entry in a fresh process: the HTTP entry (``function/main.py``'s
``ingest``, driven in-process by functions-framework's test client) or ``index.handler`` for an
API Gateway event with a base64 body. Valid events go on to the loopback Cloud Eye stand-in. The
child reports its peak RSS (``VmHWM``); this process watches its RSS and stops it at
``--ceiling-mib``, so a body that would take gigabytes costs a bounded amount of a shared machine.
Last, the 10,000-event batch against the official SDK, as ``make bench`` measures it.

Sizes follow the caps: ``FORWARDER_MAX_BODY_BYTES`` (default 6 MiB) and the item cap
(``--max-items``, default 10,000). Not a pass/fail test: figures for benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import ROOT, child, workload
from benchmarks.run import contender_env, measure_batch_memory
from benchmarks.standin import StandIn

DEFAULT_BODY_BYTES = 6_291_456  # the forwarder's default FORWARDER_MAX_BODY_BYTES
DEFAULT_MAX_ITEMS = 10_000
DEFAULT_OUTPUT = Path(ROOT) / "build" / "bench-memory.json"
GOAL_MIB = 200.0
JSON = "application/json"
NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class Body:
    """One worst-case body: which entry takes it, and how it is built."""

    name: str
    entry: str  # "http" (main.ingest) or "apig" (index.handler)
    content_type: str
    build: Callable[[int, int], bytes]  # (body cap in bytes, item cap) -> the body


def valid_events(max_bytes: int, max_items: int) -> list[dict[str, Any]]:
    """``max_items`` valid events whose JSON array just fits ``max_bytes``: longer content each."""
    events = workload.make_events(max_items)
    size = len(json.dumps(events, separators=(",", ":")))
    room = (max_bytes - size) * 97 // 100 // max_items  # a margin for the NDJSON newlines
    for event in events:
        content = event["detail"]["content"]
        extra = max(0, min(room, 4096 - len(content)))  # Cloud Eye's content limit
        event["detail"]["content"] = content + ("x" * extra)
    return events


def _array(max_bytes: int, max_items: int) -> bytes:
    return json.dumps(valid_events(max_bytes, max_items), separators=(",", ":")).encode()


def _ndjson(max_bytes: int, max_items: int) -> bytes:
    events = valid_events(max_bytes, max_items)
    return "\n".join(json.dumps(event, separators=(",", ":")) for event in events).encode()


def _zeros_at_item_cap(max_bytes: int, max_items: int) -> bytes:
    return b"[" + b",".join([b"0"] * max_items) + b"]"


def _zeros_filling_body(max_bytes: int, max_items: int) -> bytes:
    return b"[" + b"0," * ((max_bytes - 3) // 2) + b"0]"  # 2k + 3 bytes: at most the cap


def _zero_lines_filling_body(max_bytes: int, max_items: int) -> bytes:
    return b"0\n" * (max_bytes // 2)


BODIES = (
    Body("valid events, JSON array", "http", JSON, _array),
    Body("valid events, NDJSON", "http", NDJSON, _ndjson),
    Body("tiny invalid items at the item cap, JSON array", "http", JSON, _zeros_at_item_cap),
    Body("tiny invalid items filling the body cap, JSON array", "http", JSON, _zeros_filling_body),
    Body("tiny invalid lines filling the body cap, NDJSON", "http", NDJSON, _zero_lines_filling_body),
    Body("valid events, API Gateway base64", "apig", JSON, _array),
    Body("tiny invalid items filling the body cap, API Gateway base64", "apig", JSON, _zeros_filling_body),
)


def apig_base64_event(body: bytes, content_type: str) -> dict[str, Any]:
    event = workload.apig_event(base64.b64encode(body).decode("ascii"))
    event["headers"]["content-type"] = content_type
    event["isBase64Encoded"] = True
    return event


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_watched(
    args: list[str], env: dict[str, str], workdir: Path, ceiling_mib: float, timeout_s: float
) -> dict[str, Any]:
    """``benchmarks.child ARGS`` with its RSS watched: stopped past the ceiling or the timeout.
    Its output (log lines included: one per reject) goes to a file, never a full pipe."""
    log_path = workdir / "child.log"
    with open(log_path, "w+b") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.child", *args], cwd=ROOT, env=env, stdout=log, stderr=log
        )
        started, peak_seen, stopped = time.monotonic(), 0, None
        while process.poll() is None:
            peak_seen = max(peak_seen, _rss_kib(process.pid))
            if peak_seen > ceiling_mib * 1024:
                stopped = f"stopped above {ceiling_mib:.0f} MiB"
            elif time.monotonic() - started > timeout_s:
                stopped = f"stopped after {timeout_s:.0f} s"
            if stopped:
                process.kill()
                process.wait()
                break
            time.sleep(0.02)
        wall = time.monotonic() - started
        log_bytes = log.tell()
        log.seek(0)
        result = None
        for line in log:
            if line.startswith(child.RESULT_PREFIX.encode()):
                result = json.loads(line[len(child.RESULT_PREFIX) :])
    if stopped:
        return {"stopped": stopped, "peak_mib": peak_seen / 1024, "seconds": wall, "log_bytes": log_bytes}
    if process.returncode != 0 or result is None:
        raise RuntimeError(f"benchmarks.child {args[0]} failed ({process.returncode}): see {log_path}")
    return {
        "stopped": None,
        "peak_mib": result["peak_kib"] / 1024,
        "before_mib": result["before_kib"] / 1024,
        "status": result["status"],
        "answer_bytes": result["answer_bytes"],
        "seconds": result["seconds"],
        "log_bytes": log_bytes,
    }


def measure(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    results: dict[str, Any] = {"bodies": [], "batch": None}
    with StandIn() as standin, tempfile.TemporaryDirectory(prefix="cloudeye-memory-") as tmp:
        workdir = Path(tmp)
        env = contender_env(standin.url)
        env["FORWARDER_MAX_BODY_BYTES"] = str(args.body_bytes)
        env["FORWARDER_MAX_ITEMS"] = str(args.max_items)
        for body in BODIES:
            if args.only and args.only not in body.name:
                continue
            data = body.build(args.body_bytes, args.max_items)
            path = workdir / "body"
            if body.entry == "http":
                path.write_bytes(data)
                child_args = ["memory-http", str(path), body.content_type]
            else:
                path.write_text(json.dumps(apig_base64_event(data, body.content_type)), encoding="utf-8")
                child_args = ["memory-apig", str(path)]
            log(f"{body.name}: {len(data):,} bytes ...")
            figures = run_watched(child_args, env, workdir, args.ceiling_mib, args.timeout_s)
            figures = {"body": body.name, "entry": body.entry, "body_bytes": len(data), **figures}
            results["bodies"].append(figures)
            log(f"  peak {figures['peak_mib']:.0f} MiB, {figures.get('status') or figures['stopped']}")
        if not args.only:
            log(f"{args.batch_events:,}-event batch, forwarder and SDK ...")
            results["batch"] = measure_batch_memory(
                args.batch_events, workload.make_events(args.batch_events), workdir, standin
            )
    return results


def render_table(results: dict[str, Any], args: argparse.Namespace) -> str:
    rows = [
        "| body | entry | size | answer | peak RSS (MiB) | RSS before (MiB) | time (s) |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for row in results["bodies"]:
        entry = "main.ingest" if row["entry"] == "http" else "index.handler"
        if row["stopped"]:
            answer, peak, before = row["stopped"], f"> {row['peak_mib']:.0f}", "-"
        else:
            answer = f"{row['status']}, {row['answer_bytes'] / 1024:,.0f} KiB"
            peak, before = f"{row['peak_mib']:.0f}", f"{row['before_mib']:.0f}"
        rows.append(
            f"| {row['body']} | {entry} | {row['body_bytes'] / 1048576:.2f} MiB | {answer} | {peak} | "
            f"{before} | {row['seconds']:.1f} |"
        )
    worst = max((row["peak_mib"] for row in results["bodies"]), default=0.0)
    rows += ["", f"Worst peak {worst:.0f} MiB (goal: under {GOAL_MIB:.0f} MiB for every body). Body cap "
             f"{args.body_bytes:,} bytes, item cap {args.max_items:,}; the answer's size is shown, the log "
             f"output is not counted; {os.cpu_count()} cores."]  # fmt: skip
    batch = results["batch"]
    if batch:
        ratio = batch["forwarder"] / batch["sdk"]
        rows += ["", f"{args.batch_events:,}-event batch: forwarder (index.handler, one API Gateway body) "
                 f"{batch['forwarder']:.1f} MiB peak ({batch['forwarder_before']:.1f} before), SDK "
                 f"{batch['sdk']:.1f} MiB ({batch['sdk_before']:.1f} before): {ratio:.2f}x the SDK "
                 "(goal: at most 1.00x)."]  # fmt: skip
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.memory",
        description="Peak RSS of a fresh process handling the worst body the caps allow, per shape "
        "(valid events, tiny invalid items, NDJSON, base64 API Gateway), and of a 10,000-event batch "
        "against the official SDK.",
    )
    parser.add_argument("--body-bytes", type=int, default=DEFAULT_BODY_BYTES,
                        help="the body cap the bodies fill (FORWARDER_MAX_BODY_BYTES, default 6 MiB)")
    parser.add_argument("--max-items", type=int, default=DEFAULT_MAX_ITEMS,
                        help="items per body at the item cap (FORWARDER_MAX_ITEMS, default 10000)")
    parser.add_argument("--batch-events", type=int, default=10_000, help="events in the batch vs the SDK")
    parser.add_argument("--ceiling-mib", type=float, default=1024.0,
                        help="stop a child whose RSS passes this (default 1024)")
    parser.add_argument("--timeout-s", type=float, default=120.0,
                        help="stop a child after this many seconds (default 120)")
    parser.add_argument("--only", help="run only the bodies whose name contains this text (no SDK batch)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help=f"results JSON (default {DEFAULT_OUTPUT.relative_to(ROOT)})")
    parser.add_argument("--quiet", action="store_true", help="print only the table")
    args = parser.parse_args(argv)  # fmt: skip
    if min(args.body_bytes, args.max_items, args.batch_events) < 1:
        parser.error("sizes must be at least 1")

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    results = measure(args, log)
    table = render_table(results, args)
    print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    document = {"parameters": {k: str(v) for k, v in vars(args).items()}, **results, "table_markdown": table}
    args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"\nResults written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
