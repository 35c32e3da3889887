"""The commands in the README and docs/ exist and take the options the pages show.

The demo, send-events and the by-hand functions-framework command are run for real by
test_demo.py and test_send_events_e2e.py; this test keeps the page from drifting away from them.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import demo, send_events

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "README.md"
PAGES = [DOC, *sorted((ROOT / "docs").glob("*.md"))]


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def commands(block: str) -> list[str]:
    """Command lines of a shell block: continuations joined, comments and heredoc bodies dropped."""
    lines, heredoc_end = [], None
    for line in block.replace("\\\n", " ").splitlines():
        if heredoc_end is not None:
            heredoc_end = None if line.strip() == heredoc_end else heredoc_end
            continue
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        marker = re.search(r"<<'(\w+)'", line)
        heredoc_end = marker.group(1) if marker else None
        lines.append(line)
    return lines


def heredoc(block: str) -> str:
    return re.search(r"<<'EOF'[^\n]*\n(.*?)\nEOF", block, re.S).group(1)


TEXT = DOC.read_text()
EVERY_PAGE = "\n".join(page.read_text() for page in PAGES)
ALL = [line for block in shell_blocks(EVERY_PAGE) for line in commands(block)]
README_LINES = [line for block in shell_blocks(TEXT) for line in commands(block)]


def send_events_argv(line: str) -> list[str]:
    """The arguments of a send-events command line, without the shell's redirections and pipes."""
    arguments = line.split("scripts/send-events", 1)[1]
    return shlex.split(re.split(r"\s[<>|]\s", arguments)[0])


def test_the_page_has_the_two_commands_first() -> None:
    assert README_LINES[:2] == ["make demo", "make test"]


def test_send_events_help_shows_the_readmes_examples() -> None:
    readme = {line for line in README_LINES if "scripts/send-events" in line}
    in_help = {line.strip() for line in send_events.EXAMPLES.splitlines() if "scripts/send-events" in line}
    assert readme and readme == in_help


@pytest.mark.parametrize("target", sorted({line.split()[1] for line in ALL if line.startswith("make ")}))
def test_make_targets_exist(target: str) -> None:
    done = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("line", [line for line in ALL if "scripts/send-events" in line])
def test_send_events_lines_parse(line: str) -> None:
    argv = send_events_argv(line)
    args = vars(send_events.build_parser().parse_args(argv))
    # Every option the page shows reaches the parsed arguments with the value it shows.
    for position, token in enumerate(argv):
        if not token.startswith("--"):
            continue
        value = args[token[2:].replace("-", "_")]
        following = argv[position + 1] if position + 1 < len(argv) else None
        if following is None or following.startswith("--"):
            assert value is True, (token, value)
        else:
            assert str(value) == following, (token, value)


def test_demo_options_in_the_text_exist() -> None:
    paragraph = TEXT.split("`scripts/demo --verbose`")[1].split("\n## ")[0]
    options = set(re.findall(r"--[a-z-]+", "--verbose " + paragraph))
    assert options == {"--verbose", "--keep-running"}
    for option in options:
        demo.parse_args([option] if option in ("--verbose", "--keep-running") else [option, "1"])


def test_sample_event_generator_makes_valid_ndjson() -> None:
    # GIVEN the page's generator WHEN run as written THEN its output is 1,000 events Cloud Eye accepts
    block = next(b for b in shell_blocks(EVERY_PAGE) if "<<'EOF'" in b)
    out = subprocess.run(
        [sys.executable, "-"], input=heredoc(block), capture_output=True, text=True, check=True
    )
    events = send_events.parse_events(out.stdout, "events.ndjson")
    assert len(events) == 1000

    from forwarder import validate_events

    outcome = validate_events(events)
    assert outcome.errors == {} and len(outcome.valid) == 1000
    assert len({json.dumps(e, sort_keys=True) for e in events}) == 1000  # none merged by Cloud Eye


def test_hand_run_function_command_matches_the_entry_point() -> None:
    line = next(line for line in ALL if "functions-framework --source function/main.py" in line)
    args = shlex.split(line)
    source, target = args[args.index("--source") + 1], args[args.index("--target") + 1]
    assert (ROOT / source).is_file()
    assert f"def {target}(" in (ROOT / source).read_text()
