"""The shipped template.yaml and variants with its commented-out examples switched on.

The heartbeat timer, the metrics section and its alarm variable ship commented out; the tests
uncomment exactly those lines, so the examples a user would uncomment are the ones tested.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "template.yaml").read_text(encoding="utf-8")


def uncomment(text: str, header: str) -> str:
    """Uncomment the block that starts with the line ``header`` (e.g. ``"  # timer:"``).

    The block is ``header`` and the lines below it that are commented one level deeper.
    """
    lines = text.split("\n")
    start = lines.index(header)  # raises when the template no longer carries the example
    indent = header[: header.index("#")]
    out = [*lines[:start], indent + header[len(indent) + 2 :]]
    end = start + 1
    while end < len(lines) and lines[end].startswith(indent + "#   "):
        out.append(indent + lines[end][len(indent) + 2 :])
        end += 1
    return "\n".join(out + lines[end:])


WITH_TIMER = uncomment(SHIPPED, "  # timer:")
WITH_METRICS = uncomment(uncomment(WITH_TIMER, "# metrics:"), "  # alarm_topic_urn:")
