"""Fresh-process measurements: ``python -m benchmarks.child MODE ARGS...`` prints one result line.

Modes: ``cold-forwarder URL EVENT`` / ``cold-sdk URL EVENT`` (import + first invocation),
``imports`` (pydantic import and validator build), ``memory-forwarder URL FILE COUNT`` /
``memory-sdk URL FILE COUNT`` (peak RSS for one batch), ``memory-http FILE CONTENT-TYPE`` (peak
RSS for one body through the served ``ingest`` entry, in-process with functions-framework's test
client) and ``memory-apig FILE`` (one API Gateway event through ``index.handler``). The clock
starts before anything the contender needs is imported; credentials for the stand-in come from
the environment.
"""

import time

T0 = time.perf_counter()

import os  # noqa: E402  (already loaded by the interpreter's startup: free)
import sys  # noqa: E402

RESULT_PREFIX = "BENCH-RESULT "


def _context() -> object:
    from benchmarks.context import FakeContext

    return FakeContext()


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _rss_kib() -> int:
    """The current resident set size (not the peak)."""
    return _status_kib("VmRSS") or 0


def _emit(**figures: object) -> None:
    import json

    print(RESULT_PREFIX + json.dumps(figures), flush=True)


def _check_answer(answer: dict, expected: int) -> None:
    import json

    body = json.loads(answer["body"])
    if answer["statusCode"] != 201 or body.get("accepted") != expected:
        raise SystemExit(f"the handler answered {answer['statusCode']}: {answer['body'][:300]}")


def cold_forwarder(event_json: str) -> None:
    import index

    answer = index.handler(
        {
            "httpMethod": "POST",
            "path": "/events",
            "headers": {"content-type": "application/json"},
            "queryStringParameters": {},
            "body": "[" + event_json + "]",
            "isBase64Encoded": False,
        },
        _context(),
    )
    elapsed = time.perf_counter() - T0
    _check_answer(answer, 1)
    _emit(seconds=elapsed)


def cold_sdk(endpoint: str, event_json: str) -> None:
    import json

    from benchmarks import sdk

    env = os.environ
    client = sdk.make_client(
        endpoint, env["HUAWEICLOUD_SDK_AK"], env["HUAWEICLOUD_SDK_SK"], env["HUAWEICLOUD_SDK_PROJECT_ID"]
    )
    created = sdk.send_all(client, [json.loads(event_json)])
    elapsed = time.perf_counter() - T0
    if created != 1:
        raise SystemExit(f"the SDK created {created} events, not 1")
    _emit(seconds=elapsed)


def imports() -> None:
    start = time.perf_counter()
    from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError  # noqa: F401

    pydantic_done = time.perf_counter()
    from forwarder import events

    module_done = time.perf_counter()
    events.event_adapter()
    built = time.perf_counter()
    _emit(
        pydantic_import=pydantic_done - start,
        events_module=module_done - pydantic_done,
        validator_build=built - module_done,
    )


def memory_forwarder(apig_file: str, expected: int) -> None:
    import json

    with open(apig_file, encoding="utf-8") as handle:
        event = json.load(handle)
    import index

    before = _rss_kib()
    answer = index.handler(event, _context())
    _check_answer(answer, expected)
    _emit(peak_kib=_peak_kib(), before_kib=before)


def memory_sdk(endpoint: str, events_file: str, expected: int) -> None:
    import json

    from benchmarks import sdk

    with open(events_file, encoding="utf-8") as handle:
        events = json.load(handle)
    env = os.environ
    client = sdk.make_client(
        endpoint, env["HUAWEICLOUD_SDK_AK"], env["HUAWEICLOUD_SDK_SK"], env["HUAWEICLOUD_SDK_PROJECT_ID"]
    )
    before = _rss_kib()
    created = sdk.send_all(client, events)
    if created != expected:
        raise SystemExit(f"the SDK created {created} events, not {expected}")
    _emit(peak_kib=_peak_kib(), before_kib=before)


def memory_http(body_file: str, content_type: str) -> None:
    """One body through the ``ingest`` entry as functions-framework serves it (its test client
    drives the same WSGI app in this process, so the peak is the entry's, not a server's)."""
    from benchmarks.http_entry import create_ingest_app

    client = create_ingest_app().test_client()
    with open(body_file, "rb") as handle:
        body = handle.read()
    before = _rss_kib()
    started = time.perf_counter()
    answer = client.post("/", data=body, headers={"Content-Type": content_type})
    seconds = time.perf_counter() - started
    _emit(peak_kib=_peak_kib(), before_kib=before, status=answer.status_code,
          answer_bytes=len(answer.get_data()), seconds=seconds)  # fmt: skip


def memory_apig(event_file: str) -> None:
    """One API Gateway event (its body base64 or not) through ``index.handler``."""
    import json

    import index

    with open(event_file, encoding="utf-8") as handle:
        event = json.load(handle)
    before = _rss_kib()
    started = time.perf_counter()
    answer = index.handler(event, _context())
    seconds = time.perf_counter() - started
    _emit(peak_kib=_peak_kib(), before_kib=before, status=answer["statusCode"],
          answer_bytes=len(answer["body"].encode()), seconds=seconds)  # fmt: skip


def _peak_kib() -> int:
    """Peak RSS of this process. Not ru_maxrss: Linux carries the parent's peak into a child
    started with vfork/exec (as subprocess does), so every child would report the runner's size."""
    peak = _status_kib("VmHWM")
    if peak is not None:
        return peak
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def main(argv: list[str]) -> None:
    mode, args = argv[0], argv[1:]
    if mode == "cold-forwarder":
        cold_forwarder(args[1])
    elif mode == "cold-sdk":
        cold_sdk(args[0], args[1])
    elif mode == "imports":
        imports()
    elif mode == "memory-forwarder":
        memory_forwarder(args[1], int(args[2]))
    elif mode == "memory-sdk":
        memory_sdk(args[0], args[1], int(args[2]))
    elif mode == "memory-http":
        memory_http(args[0], args[1])
    elif mode == "memory-apig":
        memory_apig(args[0])
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
