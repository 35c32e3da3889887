"""Every link in the README and in docs/*.md leads to a file, or a heading, that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~)")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`[^`]*`")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines(page.read_text(encoding="utf-8")):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")  # repeated headings get -1, -2 ...
    return found


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """Each relative link of ``page`` whose file or heading does not exist, with the reason."""
    problems = []
    for line in prose_lines(page.read_text(encoding="utf-8")):
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
                continue
            path_part, _, anchor = target.partition("#")
            destination = (page.parent / path_part).resolve() if path_part else page
            if not destination.exists():
                problems.append(f"{target}: no file {destination.relative_to(root)}")
            elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
                problems.append(f"{target}: no heading #{anchor} in {destination.relative_to(root)}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_pages_link_to_each_other() -> None:
    # The README is the way in: every page under docs/ is reachable from it.
    readme = "\n".join(prose_lines((ROOT / "README.md").read_text(encoding="utf-8")))
    targets = {target.partition("#")[0] for target in LINK.findall(readme)}
    assert {f"docs/{page.name}" for page in PAGES[1:]} <= targets


def test_the_checker_finds_missing_files_and_headings(tmp_path: Path) -> None:
    # GIVEN a page with good and bad links, some inside code where they are not links
    other = "# Other page\n\n## Pub/Sub push: `main.ingest`\n\n## Again\n## Again\n"
    (tmp_path / "other.md").write_text(other)
    page = tmp_path / "page.md"
    page.write_text(
        "# Top\n\n"
        "[ok](other.md) [ok](other.md#pubsub-push-mainingest) [ok](other.md#again-1) [ok](#top)\n"
        "[external](https://example.com/x#y) `[in code](missing.md)`\n"
        "[bad file](missing.md) [bad heading](other.md#nowhere) [bad here](#bottom)\n"
        "```\n[in a block](missing-too.md)\n```\n"
    )
    problems = broken_links(page, root=tmp_path)

    # THEN exactly the three bad ones are reported
    assert problems == [
        "missing.md: no file missing.md",
        "other.md#nowhere: no heading #nowhere in other.md",
        "#bottom: no heading #bottom in page.md",
    ]


def test_the_readme_is_a_users_page_not_a_manual() -> None:
    # Reference material belongs under docs/; the README stays short enough to read through.
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move reference material to docs/"
