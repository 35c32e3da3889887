"""One forwarder instance of the scale-out simulation: ``python -m benchmarks.scale_instance ...``.

Started by ``benchmarks.scale``. It imports the handler, builds its batch, prints a ready line and
waits for ``go`` on stdin, so every instance starts sending at the same moment however long the
imports took on a busy machine. Then it runs one invocation and prints one result line.

Scenarios: ``kafka`` is one ``index.handler`` invocation of a Kafka trigger batch (JSON-array
messages) with a platform context counting down from ``--remaining-ms``; ``report-events`` is one
``forwarder.report_events`` call holding every event, with no deadline.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from benchmarks import workload
from benchmarks.context import FakeContext

READY_LINE = "SCALE-READY"
RESULT_PREFIX = "SCALE-RESULT "
SCENARIOS = ("kafka", "report-events")
COUNTS = ("received", "accepted", "rejected", "failed", "requests", "retries", "throttled")


def kafka_event(events: list[dict[str, Any]], per_message: int) -> dict[str, Any]:
    """A Kafka trigger batch as FunctionGraph delivers it: one record, each message a JSON array."""
    messages = [
        json.dumps(events[start : start + per_message], separators=(",", ":"))
        for start in range(0, len(events), per_message)
    ]
    return {
        "event_version": "v1.0",
        "event_time": int(time.time()),
        "trigger_type": "KAFKA",
        "region": "bench-region-1",
        "instance_id": "bench-kafka-instance",
        "records": [{"messages": messages, "topic_id": "cloudeye-events"}],
    }


def run_kafka(event: dict[str, Any], request_id: str, remaining_ms: int) -> dict[str, Any]:
    import index
    from forwarder import DeliveryError

    try:
        answer = index.handler(event, FakeContext(request_id=request_id, remaining_ms=remaining_ms))
    except DeliveryError as exc:  # the platform would redeliver the batch
        return {key: exc.counts.get(key) for key in COUNTS} | {"error": "DeliveryError"}
    return {key: answer.get(key) for key in COUNTS}


def run_report_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    import forwarder

    counts = forwarder.report_events(events, settings=forwarder.Settings.from_env()).counts()
    return {key: counts.get(key) for key in COUNTS}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=SCENARIOS, default="kafka")
    parser.add_argument("--instance", type=int, default=0, help="seeds this instance's events")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--per-message", type=int, default=100)
    parser.add_argument("--remaining-ms", type=int, default=60_000)
    args = parser.parse_args(argv)

    events = workload.make_events(args.events, seed=workload.SEED + args.instance)
    kafka = kafka_event(events, args.per_message)
    # Import what an invocation loads (and build the validators) before the start signal:
    # instances start together, and the figures are about sharing the limit, not cold starts.
    import index  # noqa: F401
    from forwarder import client, pipeline, queue_ingest  # noqa: F401
    from forwarder import events as event_models

    event_models.event_adapter()
    event_models.event_list_adapter()
    print(READY_LINE, flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    started = time.perf_counter()
    error = None
    try:
        if args.scenario == "kafka":
            figures = run_kafka(kafka, f"scale-{args.instance:03d}", args.remaining_ms)
        else:
            figures = run_report_events(events)
    except Exception as exc:  # reported, not raised: the runner counts this instance's events as failed
        figures, error = {}, f"{type(exc).__name__}: {exc}"[:300]
    figures = {"error": error, **figures, "seconds": time.perf_counter() - started}
    print(RESULT_PREFIX + json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
