"""The README stays a front door, and the measurements it points to say where they came from."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MEASUREMENTS = DOCS / "measurements.md"
README_MAX_LINES = 200


def _entries(text: str) -> dict[str, str]:
    """Each `## ` section of a Markdown text, by its heading."""
    parts = re.split(r"^## +(.+)$", text, flags=re.M)
    return {heading.strip(): body for heading, body in zip(parts[1::2], parts[2::2])}


def _field(body: str, name: str) -> str | None:
    found = re.search(rf"^- {name}: *(.+)$", body, flags=re.M)
    return found.group(1) if found else None


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    heading = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


def test_readme_is_at_most_200_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): "
        "measurements belong in docs/measurements.md")


def test_each_measurement_names_its_command_date_and_machine():
    entries = _entries(MEASUREMENTS.read_text())
    assert len(entries) >= 10, "docs/measurements.md should hold one `## ` entry per table or figure"
    problems = []
    for heading, body in entries.items():
        command, date, machine = _field(body, "Command"), _field(body, "Date"), _field(body, "Machine")
        if not command or not re.search(r"`[^`]+`", command):
            problems.append(f"{heading!r}: no '- Command:' line naming a `command`")
        if not date or not re.search(r"\b20\d\d-\d\d-\d\d\b", date):
            problems.append(f"{heading!r}: no '- Date:' line with a YYYY-MM-DD date")
        if not machine:
            problems.append(f"{heading!r}: no '- Machine:' line")
    assert not problems, "\n".join(problems)


def test_the_structural_check_can_fail():
    broken = "## A table\n\n- Command: none\n- Machine: a CPU\n\n| a |\n|---|\n| 1 |\n"
    (body,) = _entries(broken).values()
    assert not re.search(r"`[^`]+`", _field(body, "Command")) and _field(body, "Date") is None


def test_readme_maps_every_module_and_lists_every_notebook():
    readme = README.read_text()
    section = readme.split("## Map of the package", 1)[1].split("\n## ", 1)[0]
    folders = sorted(p.parent for p in (ROOT / "titn_lite").glob("*/__init__.py") if p.parent.name != "series")
    unmapped = [f"{folder.name}/{m.stem}" for folder in folders for m in folder.glob("*.py")
                if m.stem != "__init__"
                and not re.search(rf"^- `titn_lite/{folder.name}/`:.*`{m.stem}` \(", section, re.M)]
    assert not unmapped, f"the README's map of the package lacks {unmapped}"
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    missing = [n for n in notebooks if f"| `{n}` |" not in readme]
    assert not missing, f"the README's notebook table lacks {missing}"


def test_times_of_the_series_point_to_one_table():
    """The README and the hosted guide state no series time of their own: they link the timing table."""
    for path in (README, DOCS / "hosted.md"):
        assert "teachers.md#timing" in path.read_text(), f"{path.name} does not point to the timing table"


def test_relative_links_in_the_docs_resolve():
    problems = []
    for path in (README, *sorted(DOCS.glob("*.md"))):
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto:
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                problems.append(f"{path.name}: {target} (no such file)")
            elif anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ +(.+)$", linked.read_text(), flags=re.M)
                if anchor not in {_slug(h) for h in headings}:
                    problems.append(f"{path.name}: {target} (no such heading)")
    assert not problems, "\n".join(problems)
