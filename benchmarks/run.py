"""The benchmark's one entry point: ``python -m benchmarks.run [--quick] [--output PATH]``.

In one run, on the same generated events and the same loopback Cloud Eye stand-in (its own
process), it measures the forwarder against the official SDK, a raw standard-library baseline
and the ideal, prints a table of figures, ratios and goals, and writes ``benchmarks/results.json``
(a ``--quick`` run writes ``build/bench-quick.json``, leaving the committed figures alone).
See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import FUNCTION_DIR, ROOT, child, raw, workload
from benchmarks.http_entry import HttpEntry, encode_bodies
from benchmarks.standin import StandIn

DEFAULT_OUTPUT = Path(ROOT) / "benchmarks" / "results.json"  # committed: the full run's figures
QUICK_OUTPUT = Path(ROOT) / "build" / "bench-quick.json"  # a quick run never replaces them
SERVICE_TIMES_MS = (30, 0)
# The forwarder once more with a wider request window: what the configuration could reach.
WIDE_CONCURRENCY = 16
WIDE = f"forwarder_concurrency_{WIDE_CONCURRENCY}"
PROJECT_ID = "0123456789abcdef0123456789abcdef"
CREDENTIALS = {"HUAWEICLOUD_SDK_AK": "BENCHAK000000000000", "HUAWEICLOUD_SDK_SK": "bench-secret-key"}
# Host settings must not leak into the contenders (a CLOUDEYE_MAX_CONCURRENCY in the shell, say).
_ISOLATED_PREFIXES = ("HUAWEICLOUD_SDK_", "CLOUDEYE_", "FORWARDER_", "RUNTIME_PROJECT_ID")


# (what, ratio key, comparison, target): the benchmark's goals, the CPU ones at both service times.
GOALS = (
    ("throughput (30 ms) vs SDK", "throughput_30ms_forwarder_vs_sdk", ">=", 10.0),
    ("throughput (30 ms) vs ideal", "throughput_30ms_forwarder_vs_ideal", ">=", 0.9),
    ("CPU per event vs raw (30 ms)", "cpu_30ms_forwarder_vs_raw", "<=", 1.5),
    ("CPU per event vs raw (0 ms)", "cpu_0ms_forwarder_vs_raw", "<=", 1.5),
    ("CPU per event vs SDK (30 ms)", "cpu_30ms_forwarder_vs_sdk", "<=", 0.3),
    ("CPU per event vs SDK (0 ms)", "cpu_0ms_forwarder_vs_sdk", "<=", 0.3),
    ("cold start vs SDK", "cold_start_forwarder_vs_sdk", "<=", 0.5),
    ("peak memory vs SDK", "peak_rss_forwarder_vs_sdk", "<=", 1.0),
)


@dataclass(frozen=True)
class Plan:
    events: int = 16_000
    rounds: int = 5
    cold_runs: int = 7
    memory_events: int = 10_000
    http_batch: int = 8_000  # events per HTTP request (10,000 x ~510 B fits FORWARDER_MAX_BODY_BYTES)


FULL = Plan()
QUICK = Plan(events=8_000, rounds=2, cold_runs=3)


@dataclass
class Sample:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    # Garbage collections (by generation) during the runs: a full one costs a heap walk.
    collections: list[int] = field(default_factory=lambda: [0, 0, 0])


def contender_env(endpoint: str) -> dict[str, str]:
    """The environment every contender gets: the stand-in, the benchmark's keys, nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_ISOLATED_PREFIXES)}
    env.update(CREDENTIALS)
    env["HUAWEICLOUD_SDK_PROJECT_ID"] = PROJECT_ID
    env["CLOUDEYE_ENDPOINT"] = endpoint
    env["PYTHONPATH"] = ROOT
    return env


def _timed(action: Callable[[], int], expected: int, sample: Sample) -> None:
    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            sample.collections[info["generation"]] += 1

    gc.collect()
    gc.callbacks.append(count)
    try:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        done = action()
        sample.wall.append(time.perf_counter() - wall0)
        sample.cpu.append(time.process_time() - cpu0)
    finally:
        gc.callbacks.remove(count)
    if done != expected:
        raise RuntimeError(f"{done} of {expected} events got through: the figures would mean nothing")


def measure_in_process(
    plan: Plan, events: list[dict[str, Any]], log: Callable[[str], None]
) -> dict[str, Any]:
    """Throughput and CPU of every contender at both service times; rounds interleaved."""
    import forwarder
    from benchmarks import sdk

    n = len(events)
    chunks = raw.prebuilt_chunks(events)
    bodies = encode_bodies(events, plan.http_batch)
    ak, sk = CREDENTIALS["HUAWEICLOUD_SDK_AK"], CREDENTIALS["HUAWEICLOUD_SDK_SK"]
    out: dict[str, Any] = {"throughput_eps": {}, "cpu_s_per_10k": {}, "gc_collections_per_run": {}}
    with StandIn() as standin, contextlib.ExitStack() as stack:
        env = contender_env(standin.url)
        wide_env = {**env, "CLOUDEYE_MAX_CONCURRENCY": str(WIDE_CONCURRENCY)}
        settings = forwarder.Settings.from_env(environ=env)
        dry = forwarder.report_events(events, settings=settings, dry_run=True)
        requests_needed = dry.stats["requests_needed"]
        client = sdk.make_client(standin.url, ak, sk, PROJECT_ID)

        def run_forwarder(environ: dict[str, str]) -> int:
            # Settings are read per invocation, as the handler does.
            return forwarder.report_events(
                events, settings=forwarder.Settings.from_env(environ=environ)
            ).accepted

        entry = stack.enter_context(HttpEntry(env))
        contenders: dict[str, Callable[[], int]] = {
            "forwarder": lambda: run_forwarder(env),
            "sdk": lambda: sdk.send_all(client, events),
            "raw": lambda: raw.send_all(chunks, standin.url, ak, sk, PROJECT_ID),
            "http_entry": lambda: entry.send_all(bodies),
            WIDE: lambda: run_forwarder(wide_env),
        }

        # Warm up: validator build, first connections, the HTTP entry's lazy imports.
        standin.set_delay(0)
        warm = events[:200]
        forwarder.report_events(warm, settings=settings)
        sdk.send_all(client, warm)
        raw.send_all(raw.prebuilt_chunks(warm), standin.url, ak, sk, PROJECT_ID)
        entry.send_all(encode_bodies(warm, len(warm)))

        for service_ms in SERVICE_TIMES_MS:
            standin.set_delay(service_ms)
            before = standin.stats()
            samples = {name: Sample() for name in contenders}
            for round_no in range(plan.rounds):
                for name, action in contenders.items():
                    _timed(action, n, samples[name])
                    last = samples[name]
                    log(f"{service_ms:>2} ms, round {round_no + 1}: {name:<24} {last.wall[-1]:.3f} s wall, "
                        f"{last.cpu[-1]:.3f} s CPU")  # fmt: skip
            after = standin.stats()
            key = f"{service_ms}ms"
            throughput: dict[str, float | None] = {
                name: n / statistics.median(s.wall) for name, s in samples.items()
            }
            throughput["ideal"] = _ideal(n, requests_needed, service_ms / 1000, settings.max_concurrency)
            served = max(1, after["requests"] - before["requests"])
            measured_service_s = (after["busy_s"] - before["busy_s"]) / served
            throughput["ideal_at_measured_service_time"] = _ideal(
                n, requests_needed, measured_service_s, settings.max_concurrency
            )
            out["throughput_eps"][key] = throughput
            out.setdefault("standin_service_ms", {})[key] = measured_service_s * 1000
            # The HTTP entry spends its CPU in its own server process: not comparable here.
            out["cpu_s_per_10k"][key] = {
                name: statistics.median(samples[name].cpu) / n * 10_000
                for name in ("forwarder", "sdk", "raw")
            }
            out["gc_collections_per_run"][key] = {
                name: [round(c / plan.rounds, 1) for c in samples[name].collections]
                for name in ("forwarder", "sdk", "raw")
            }
        out["requests_needed"] = requests_needed
        out["concurrency"] = settings.max_concurrency
    return out


def _ideal(events: int, requests: int, service_s: float, concurrency: int) -> float | None:
    """Events/s if every request took exactly the service time and ``concurrency`` were always busy."""
    if service_s <= 0:
        return None
    return events / (requests * service_s / concurrency)


def run_child(args: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float]:
    """``python -m benchmarks.child ARGS``: its result line and the process's wall time."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.child", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - start
    lines = [line for line in done.stdout.splitlines() if line.startswith(child.RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"benchmarks.child {args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(lines[-1][len(child.RESULT_PREFIX) :]), wall


def compile_bytecode() -> None:
    """Write the bytecode of the function and of the benchmark's own modules before any fresh
    process starts, as the code package ships it. A .pyc that is missing or older than its source
    (an edit, ``PYTHONDONTWRITEBYTECODE``) would otherwise put Python's compiler into every cold
    start measured."""
    for tree in (FUNCTION_DIR, os.path.join(ROOT, "benchmarks")):
        if not compileall.compile_dir(tree, quiet=1):
            raise RuntimeError(f"could not compile {tree}: the cold start would measure the compiler")


def measure_fresh_processes(
    plan: Plan, events: list[dict[str, Any]], workdir: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """Cold start (median of ``cold_runs``), its pydantic parts, and peak RSS for one big batch."""
    one = json.dumps(events[0])
    cold: dict[str, list[float]] = {k: [] for k in ("forwarder", "sdk", "forwarder_process", "sdk_process")}
    parts: dict[str, list[float]] = {"pydantic_import": [], "events_module": [], "validator_build": []}
    compile_bytecode()
    with StandIn() as standin:
        env = contender_env(standin.url)
        for run_no in range(plan.cold_runs):
            figures, wall = run_child(["cold-forwarder", standin.url, one], env)
            cold["forwarder"].append(figures["seconds"])
            cold["forwarder_process"].append(wall)
            figures, wall = run_child(["cold-sdk", standin.url, one], env)
            cold["sdk"].append(figures["seconds"])
            cold["sdk_process"].append(wall)
            figures, _ = run_child(["imports"], env)
            for name in parts:
                parts[name].append(figures[name])
            log(f"cold start run {run_no + 1}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in cold.items()))
        cold_start = {name: statistics.median(v) for name, v in cold.items()}
        cold_start.update({name: statistics.median(v) for name, v in parts.items()})
        peak = measure_batch_memory(plan.memory_events, events, workdir, standin)
        log(f"peak RSS: {peak}")
    return {"cold_start_s": cold_start, "peak_rss_mib": peak}


def measure_batch_memory(
    count: int, events: list[dict[str, Any]], workdir: Path, standin: StandIn
) -> dict[str, float]:
    """Peak RSS (MiB) of a fresh process sending one ``count``-event batch: ``index.handler``
    answering it as one API Gateway body, and the SDK sending the same events."""
    batch = events[:count] if len(events) >= count else workload.make_events(count)
    events_file = workdir / "memory-events.json"
    events_file.write_text(json.dumps(batch), encoding="utf-8")
    apig_file = workdir / "memory-apig.json"
    apig_file.write_text(
        json.dumps(workload.apig_event(json.dumps(batch, separators=(",", ":")))), encoding="utf-8"
    )
    env = contender_env(standin.url)
    forwarder, _ = run_child(["memory-forwarder", standin.url, str(apig_file), str(count)], env)
    sdk, _ = run_child(["memory-sdk", standin.url, str(events_file), str(count)], env)
    return {
        "forwarder": forwarder["peak_kib"] / 1024,
        "forwarder_before": forwarder["before_kib"] / 1024,
        "sdk": sdk["peak_kib"] / 1024,
        "sdk_before": sdk["before_kib"] / 1024,
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def ratios_and_goals(figures: dict[str, Any]) -> tuple[dict[str, float | None], list[dict[str, Any]]]:
    tp30, tp0 = figures["throughput_eps"]["30ms"], figures["throughput_eps"]["0ms"]
    cpu30, cpu0 = figures["cpu_s_per_10k"]["30ms"], figures["cpu_s_per_10k"]["0ms"]
    cold, rss = figures["cold_start_s"], figures["peak_rss_mib"]
    ratios = {
        "throughput_30ms_forwarder_vs_sdk": _ratio(tp30["forwarder"], tp30["sdk"]),
        "throughput_30ms_forwarder_vs_ideal": _ratio(tp30["forwarder"], tp30["ideal"]),
        "throughput_30ms_forwarder_vs_ideal_at_measured_service_time": _ratio(
            tp30["forwarder"], tp30["ideal_at_measured_service_time"]
        ),
        "throughput_30ms_http_entry_vs_sdk": _ratio(tp30["http_entry"], tp30["sdk"]),
        "throughput_30ms_http_entry_vs_ideal": _ratio(tp30["http_entry"], tp30["ideal"]),
        f"throughput_30ms_{WIDE}_vs_sdk": _ratio(tp30[WIDE], tp30["sdk"]),
        "throughput_0ms_forwarder_vs_sdk": _ratio(tp0["forwarder"], tp0["sdk"]),
        "throughput_0ms_http_entry_vs_sdk": _ratio(tp0["http_entry"], tp0["sdk"]),
        "cpu_30ms_forwarder_vs_raw": _ratio(cpu30["forwarder"], cpu30["raw"]),
        "cpu_30ms_forwarder_vs_sdk": _ratio(cpu30["forwarder"], cpu30["sdk"]),
        "cpu_30ms_sdk_vs_raw": _ratio(cpu30["sdk"], cpu30["raw"]),
        "cpu_0ms_forwarder_vs_raw": _ratio(cpu0["forwarder"], cpu0["raw"]),
        "cpu_0ms_forwarder_vs_sdk": _ratio(cpu0["forwarder"], cpu0["sdk"]),
        "cpu_0ms_sdk_vs_raw": _ratio(cpu0["sdk"], cpu0["raw"]),
        "cold_start_forwarder_vs_sdk": _ratio(cold["forwarder"], cold["sdk"]),
        "cold_start_process_forwarder_vs_sdk": _ratio(cold["forwarder_process"], cold["sdk_process"]),
        "peak_rss_forwarder_vs_sdk": _ratio(rss["forwarder"], rss["sdk"]),
    }
    goals = []
    for name, key, op, target in GOALS:
        value = ratios[key]
        met = None if value is None else (value >= target if op == ">=" else value <= target)
        goals.append({"goal": name, "ratio": key, "value": value, "target": f"{op} {target:g}", "met": met})
    return ratios, goals


def machine_info() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next(
                (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), model
            )
    except OSError:
        pass
    from importlib.metadata import version

    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "pydantic": version("pydantic"),
        "huaweicloudsdkces": version("huaweicloudsdkces"),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _fmt(value: float | None, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{suffix}"


def render_table(results: dict[str, Any]) -> str:
    """The figures, goals and machine as Markdown (printed, and quoted in the README)."""
    f, r, p, m = results["figures"], results["ratios"], results["parameters"], results["machine"]
    tp30, tp0 = f["throughput_eps"]["30ms"], f["throughput_eps"]["0ms"]
    cpu30, cpu0 = f["cpu_s_per_10k"]["30ms"], f["cpu_s_per_10k"]["0ms"]
    cold, rss = f["cold_start_s"], f["peak_rss_mib"]

    def ms(value: float | None) -> str:
        return _fmt(None if value is None else value * 1000)

    def x(key: str) -> str:
        return _fmt(r[key], 2, "x")

    rows = [
        ("figure", "forwarder", "HTTP entry", "SDK", "raw", "ideal"),
        ("throughput, 30 ms service time (events/s)", _fmt(tp30["forwarder"]),
         _fmt(tp30["http_entry"]), _fmt(tp30["sdk"]), _fmt(tp30["raw"]), _fmt(tp30["ideal"])),
        ("throughput, 0 ms service time (events/s)", _fmt(tp0["forwarder"]),
         _fmt(tp0["http_entry"]), _fmt(tp0["sdk"]), _fmt(tp0["raw"]), "-"),
        ("client CPU s per 10,000 events, 30 ms", _fmt(cpu30["forwarder"], 3), "-",
         _fmt(cpu30["sdk"], 3), _fmt(cpu30["raw"], 3), "-"),
        ("client CPU s per 10,000 events, 0 ms", _fmt(cpu0["forwarder"], 3), "-",
         _fmt(cpu0["sdk"], 3), _fmt(cpu0["raw"], 3), "-"),
        ("cold start: import + first event (ms)", ms(cold["forwarder"]), "-", ms(cold["sdk"]), "-", "-"),
        ("cold start: whole process (ms)", ms(cold["forwarder_process"]), "-",
         ms(cold["sdk_process"]), "-", "-"),
        (f"peak RSS, one {p['memory_events']:,}-event batch (MiB)", _fmt(rss["forwarder"], 1), "-",
         _fmt(rss["sdk"], 1), "-", "-"),
        ("RSS just before sending it (MiB)", _fmt(rss["forwarder_before"], 1), "-",
         _fmt(rss["sdk_before"], 1), "-", "-"),
    ]  # fmt: skip
    lines = [_md_row(rows[0]), _md_row(["---"] + ["---:"] * 5), *(_md_row(row) for row in rows[1:])]
    lines += ["", _md_row(("goal", "ratio", "target", "result")), _md_row(("---", "---:", "---:", "---"))]
    for goal in results["goals"]:
        met = {True: "met", False: "**missed**", None: "not measured"}[goal["met"]]
        lines.append(_md_row((goal["goal"], _fmt(goal["value"], 2, "x"), goal["target"] + "x", met)))
    service = results["figures"]["standin_service_ms"]["30ms"]
    lines += [
        "",
        f"Cold-start parts (median, fresh process): pydantic import {ms(cold['pydantic_import'])} ms, "
        f"forwarder.events import {ms(cold['events_module'])} ms, validator build (`event_adapter()`) "
        f"{ms(cold['validator_build'])} ms.",
        f"Stand-in service time as measured: {service:.1f} ms per request (nominal 30); ideal at that "
        f"time {_fmt(tp30['ideal_at_measured_service_time'])} events/s, forwarder "
        f"{x('throughput_30ms_forwarder_vs_ideal_at_measured_service_time')} of it. "
        f"Forwarder with CLOUDEYE_MAX_CONCURRENCY={WIDE_CONCURRENCY}: {_fmt(tp30[WIDE])} events/s at 30 ms "
        f"({x(f'throughput_30ms_{WIDE}_vs_sdk')} the SDK).",
        f"HTTP entry vs SDK: {x('throughput_30ms_http_entry_vs_sdk')} (30 ms), "
        f"{x('throughput_0ms_http_entry_vs_sdk')} (0 ms); HTTP entry vs ideal "
        f"{x('throughput_30ms_http_entry_vs_ideal')}. Forwarder vs SDK at 0 ms "
        f"{x('throughput_0ms_forwarder_vs_sdk')}. SDK CPU vs raw {x('cpu_30ms_sdk_vs_raw')} (30 ms), "
        f"{x('cpu_0ms_sdk_vs_raw')} (0 ms). Whole-process cold start vs SDK "
        f"{x('cold_start_process_forwarder_vs_sdk')}.",
        "Garbage collections per run, generations 0/1/2 (30 ms): "
        + ", ".join(
            f"{name} {'/'.join(f'{c:g}' for c in gcs)}"
            for name, gcs in f["gc_collections_per_run"]["30ms"].items()
        )
        + ".",
        "",
        f"{p['events']:,} events of ~{p['mean_event_bytes']:.0f} B JSON ({p['requests_needed']} requests, "
        f"concurrency {p['concurrency']}), median of {p['rounds']} round(s); cold start: median of "
        f"{p['cold_runs']} fresh processes. Machine: {m['cpu_model']}, {m['usable_cores']} cores, "
        f"load {m['load_average'][0]:.2f}, Python {m['python']}, pydantic {m['pydantic']}, huaweicloudsdkces "
        f"{m['huaweicloudsdkces']}; {m['date']}, {results['mode']} mode, {results['duration_s']:.0f} s.",
    ]
    return "\n".join(lines)


def _md_row(cells: Any) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def run(plan: Plan, mode: str, output: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure everything per ``plan``, write ``output`` (JSON) and return the results."""
    started = time.perf_counter()
    machine = machine_info()
    # The contenders share this process. The SDK's modules (~40,000 objects) would not be in the
    # forwarder's process, so keep them out of the collector's full walks: import them first and
    # freeze what exists so far. The forwarder's own modules and the input events stay tracked.
    from benchmarks import sdk  # noqa: F401

    gc.collect()
    gc.freeze()
    try:
        events = workload.make_events(plan.events)
        log(f"{len(events):,} events generated (seed {workload.SEED}); measuring in-process contenders")
        in_process = measure_in_process(plan, events, log)
    finally:
        gc.unfreeze()
    with tempfile.TemporaryDirectory(prefix="cloudeye-bench-") as tmp:
        fresh = measure_fresh_processes(plan, events, Path(tmp), log)
    figures = {
        "throughput_eps": in_process["throughput_eps"],
        "standin_service_ms": in_process["standin_service_ms"],
        "cpu_s_per_10k": in_process["cpu_s_per_10k"],
        "gc_collections_per_run": in_process["gc_collections_per_run"],
        "cold_start_s": fresh["cold_start_s"],
        "peak_rss_mib": fresh["peak_rss_mib"],
    }
    ratios, goals = ratios_and_goals(figures)
    results: dict[str, Any] = {
        "schema": 1,
        "mode": mode,
        "machine": machine,
        "parameters": {
            "events": plan.events,
            "rounds": plan.rounds,
            "cold_runs": plan.cold_runs,
            "memory_events": plan.memory_events,
            "http_batch": plan.http_batch,
            "service_times_ms": list(SERVICE_TIMES_MS),
            "concurrency": in_process["concurrency"],
            "requests_needed": in_process["requests_needed"],
            "mean_event_bytes": workload.mean_json_bytes(events),
            "seed": workload.SEED,
        },
        "figures": figures,
        "ratios": ratios,
        "goals": goals,
    }
    results["duration_s"] = time.perf_counter() - started
    results["table_markdown"] = render_table(results)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".tmp")
    partial.write_text(json.dumps(results, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    partial.replace(output)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the forwarder against the official SDK.")
    parser.add_argument("--quick", action="store_true", help="fewer events and runs (under a minute)")
    parser.add_argument("--output", type=Path,
                        help=f"results JSON path (default {DEFAULT_OUTPUT.relative_to(ROOT)}, "
                        f"with --quick {QUICK_OUTPUT.relative_to(ROOT)})")  # fmt: skip
    parser.add_argument("--events", type=int, help="events per throughput/CPU run")
    parser.add_argument("--rounds", type=int, help="rounds per contender (median)")
    parser.add_argument("--cold-runs", type=int, help="fresh processes per cold-start figure (median)")
    parser.add_argument("--memory-events", type=int, help="events in the peak-memory batch")
    parser.add_argument("--http-batch", type=int, help="events per request to the HTTP entry")
    parser.add_argument("--quiet", action="store_true", help="print only the table")
    args = parser.parse_args(argv)
    output = args.output or (QUICK_OUTPUT if args.quick else DEFAULT_OUTPUT)
    plan = QUICK if args.quick else FULL
    overrides = {
        name: getattr(args, name)
        for name in ("events", "rounds", "cold_runs", "memory_events", "http_batch")
        if getattr(args, name) is not None
    }
    plan = Plan(**{**plan.__dict__, **overrides})
    if min(plan.__dict__.values()) < 1:
        parser.error("counts must be at least 1")

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    results = run(plan, "quick" if args.quick else "full", output, log)
    print(results["table_markdown"])
    print(f"\nResults written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
