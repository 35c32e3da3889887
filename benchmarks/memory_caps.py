"""Peak memory of one invocation for the worst bodies the caps allow, each in a fresh process.

    .venv/bin/python -m benchmarks.memory_caps

Each shape is sent once through ``index.handler`` (API Gateway, ``?dry_run`` so nothing leaves the
process) in a new interpreter; the figure is the process's peak resident memory (``VmHWM`` in
``/proc/self/status``), body included, next to its resident memory before the body was built.
The bodies are as large as ``FORWARDER_MAX_BODY_BYTES`` (6 MiB) and ``FORWARDER_MAX_ITEMS``
(10,000) allow, or just over the item cap where that is the worst case.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

FUNCTION_ROOT = Path(__file__).resolve().parents[1] / "function"

# 10,000 valid events of about 600 bytes: both caps reached at once.
VALID_EVENTS = """
pad = "x" * 380
items = [{"event_name": "Load", "event_source": "bench.memory", "time": now,
          "detail": {"content": f"{i} {pad}", "resource_id": f"r:{i}", "event_state": "normal",
                     "event_level": "Info", "event_user": "bench", "event_type": "EVENT.CUSTOM"}}
         for i in range(10_000)]
body = json.dumps(items, separators=(",", ":")); del items
"""
# Each builds ``body`` (text) and sets ``b64`` when API Gateway base64-encodes it.
SHAPES: dict[str, str] = {
    "valid events (10,000, 6 MiB)": VALID_EVENTS,
    "tiny invalid items (3,000,000 zeros, 6 MB)": 'body = "[" + "0," * 2_999_999 + "0]"',
    "tiny invalid items at the item cap (10,000 {})": 'body = "[" + "{}," * 9_999 + "{}]"',
    "invalid items at both caps (10,000 x 600 B)": """
bad = {"event_name": "1bad", "event_source": "x", "time": "soon", "detail": {"content": "y" * 500}}
body = json.dumps([bad] * 10_000)
""",
    'wrapped {"events": 2,000,000 x {}}': 'body = \'{"events": [\' + "{}," * 2_000_000 + "{}]}"',
    "NDJSON (3,000,000 lines)": 'body = "0\\n" * 3_000_000',
    "base64 API Gateway, tiny items (6 MB decoded)": 'body = "[" + "0," * 2_999_999 + "0]"; b64 = True',
    "base64 API Gateway, valid events (10,000, 6 MiB)": VALID_EVENTS + "b64 = True",
    "10,000 items of 40 unknown keys each": """
item = {f"k{i:02d}": 0 for i in range(40)}
body = json.dumps([item] * 10_000, separators=(",", ":"))
""",
    "10,000 items of 43 empty dimensions each": """
item = {"event_name": "E", "event_source": "a.b", "time": 0, "detail": {"dimensions": [{}] * 43}}
body = json.dumps([item] * 10_000, separators=(",", ":"))
""",
    "one item with 500,000 unknown keys": """
body = "[{" + ",".join(f'"k{i}":0' for i in range(500_000)) + "}]"
""",
}

_PROGRAM = """
import base64, json, os, time
os.environ.update({{"HUAWEICLOUD_SDK_AK": "AK", "HUAWEICLOUD_SDK_SK": "SK",
    "HUAWEICLOUD_SDK_PROJECT_ID": "p1", "CLOUDEYE_REGION": "ap-southeast-1"}})
import index

def mib(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024

before = mib("VmRSS")
now = time.time_ns() // 1_000_000
b64 = False
{build}
size = len(body.encode())
content_type = "application/x-ndjson" if body.startswith("0\\n") else "application/json"
if b64:
    body = base64.b64encode(body.encode()).decode()
event = {{"httpMethod": "POST", "headers": {{"content-type": content_type}},
         "queryStringParameters": {{"dry_run": "true"}}, "body": body, "isBase64Encoded": b64}}
del body
answer = index.handler(event, None)
print(json.dumps({{"status": answer["statusCode"], "body_bytes": size, "answer_bytes": len(answer["body"]),
                  "before_mib": round(before, 1), "peak_mib": round(mib("VmHWM"), 1)}}))
"""


def measure(shape: str) -> dict[str, Any]:
    """One shape in a fresh interpreter: status, sizes and peak memory (MiB)."""
    program = _PROGRAM.format(build=SHAPES[shape].strip())
    completed = subprocess.run(
        [sys.executable, "-c", program], cwd=FUNCTION_ROOT, capture_output=True, text=True, timeout=300
    )
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr[-2000:])
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def main() -> None:
    print("| Body | Size | Answer | Answer size | Peak RSS |")
    print("|---|---:|---:|---:|---:|")
    for shape in SHAPES:
        row = measure(shape)
        print(
            f"| {shape} | {row['body_bytes'] / 1_048_576:.1f} MiB | {row['status']} | "
            f"{row['answer_bytes']:,} B | {row['peak_mib']:.0f} MiB |"
        )


if __name__ == "__main__":
    main()
