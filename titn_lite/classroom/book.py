"""The executed series as a static book: ``titn-lite book build``.

The series runs (or a matching earlier ``notebooks run`` is reused), then Sphinx with
MyST-NB and the book theme turns the executed notebooks into HTML: a landing page, one
page per notebook with its figures and printed checks, the equations typeset, and a page
of measured results beside the paper's. Everything the pages load ships with the build:
MathJax comes from the ``jupyter-server-mathjax`` package, the theme's fonts and scripts
from the theme, so the site works with no network.

The Sphinx project is the folder ``book_site/`` beside this module, shipped in the package:
``conf.py``, the landing and results pages, the style sheet and the favicon. A build copies it
and adds the book's notebooks and, in ``_generated/``, only what varies from one build to the
next: the title (``build.json``, which conf.py reads) and the Markdown pieces the two pages
include (the run's stamp, the map of chapters, the measured results, the run's timings).

What the book changes in its copies of the notebooks (never in the series itself):

- each page opens with the profile, date and machine of the run it shows;
- a live explorer (a widget) becomes the picture of its default state, with a note that
  the live version needs JupyterLab; progress bars (widgets too) are dropped;
- the student view clears the exercises' solution regions to nbgrader's stubs, as the
  student notebooks do; ``solutions=True`` keeps them (the teacher's book);
- every picture gets alt text saying what it shows: the description its ``titn_lite.results.viz``
  function recorded (a figure's plain-text output in the notebook, or an explorer's
  ``alt``), else one read from the cell; never empty, never a file name.

The pages are meant to pass axe-core with no serious or critical violation
(``tests/test_book.py`` checks every page of the smoke book in Chromium).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import html.parser
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from titn_lite.classroom.course import Course
from titn_lite.classroom.series import NOTEBOOK_DIR, SeriesSummary, list_notebooks, run_series
from titn_lite.classroom.student_copies import is_students_copy
from titn_lite.results.paper import format_ledger
from titn_lite.results.tables import markdown_table
from titn_lite.system.files import write_atomic
from titn_lite.system.packaged import packaged_folder
from titn_lite.system.usage import UsageError

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
INJECTED = "injected-parameters"  # papermill's tag on the cell it adds
INSTALL_CHECK = "# Set-up: the series needs the titn_lite package"
# The book's Sphinx project (conf.py, pages, style sheet, favicon), shipped inside the package.
SITE_PROJECT = packaged_folder("titn_lite.classroom") / "book_site"
GENERATED = "_generated"  # in the build's copy of it: what differs from one build to the next


@dataclass
class BookResult:
    site: Path  # open site/index.html
    pages: int
    seconds: float
    reused_run: Path | None  # the executed series it reused, if any
    broken_links: list[str]


def build_book(course: Course | None = None, out_dir: str | Path = "site", *, executed: str | Path | None = None,
               solutions: bool = False, work_dir: str | Path | None = None,
               source: str | Path = NOTEBOOK_DIR) -> BookResult:
    """Execute the series in ``source`` (default: the installed series) for ``course``
    (default: the classroom profile, ./artifacts), or reuse ``executed``, a ``notebooks run``
    output folder, when it ran this profile on these very notebooks, and build the site into
    ``out_dir``. ``source`` must be the teacher's notebooks (with their answers): the book
    shows the students' version of each page itself."""
    started = time.perf_counter()
    course = course or Course()
    _check_book_extra()
    out_dir, source = Path(out_dir), Path(source)
    _check_teachers_series(source)
    work = Path(work_dir) if work_dir else Path("runs") / f"book-{course.profile.name}"
    series_dir, reused = _executed_series(course, source, executed, work)
    site_source = _write_site_source(series_dir, work / "source", course.profile.name, solutions)
    staging = work / "html"
    _run_sphinx(site_source.folder, staging, work / "sphinx.log")
    apply_alt_texts(staging, site_source.alts)
    # Replace the site only once the new one is whole.
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staging), str(out_dir))
    sphinx_own_pages = [name for name in ("genindex.html", "search.html") if (out_dir / name).exists()]
    pages = len(list(out_dir.glob("*.html"))) - len(sphinx_own_pages)
    return BookResult(out_dir, pages, time.perf_counter() - started, reused, broken_internal_links(out_dir))


def _check_book_extra() -> None:
    try:
        import jupyter_server_mathjax  # noqa: F401
        import myst_nb  # noqa: F401
        import sphinx_book_theme  # noqa: F401
    except ImportError as error:
        raise UsageError(f"the book needs its extra ({error.name} is missing): pip install 'titn-lite[book]', "
                         f'or in a clone pip install -c constraints.txt -e ".[jupyter,dev,classroom,book]"') from None


def _check_teachers_series(source: Path) -> None:
    if not list_notebooks(source):
        raise UsageError(f"no numbered notebooks (NN_name.ipynb) in {source}; give the teacher's series, "
                         f"e.g. --from a clone's notebooks/ folder")
    cleared = students_notebooks(source)
    if cleared:
        raise UsageError(f"the notebooks in {source} are the students' copies (answers cleared in "
                         f"{', '.join(cleared)}), so the series stops at the first exercise; build the book from "
                         f"the teacher's notebooks, e.g. --from a clone's notebooks/ folder")


def _executed_series(course: Course, source: Path, executed: str | Path | None,
                     work: Path) -> tuple[Path, Path | None]:
    """The folder of the executed series the book shows, and the earlier run it reused (None:
    the series ran now, into ``work/executed``)."""
    profile = course.profile.name
    candidates = [Path(executed)] if executed else [Path("runs") / "notebooks", work / "executed"]
    reused = next((c for c in candidates if executed_series_matches(c, profile, source)), None)
    if executed and reused is None:
        raise UsageError(f"{executed} does not hold a complete run at profile {profile!r} of the series in {source} "
                         f"(see its summary.json); leave out --executed to run the series")
    if reused is not None:
        return reused, reused
    results = run_series(course, out_dir=work / "executed", folder=source)
    failed = [r.notebook for r in results if r.status != "ok"]
    if failed:
        raise UsageError(f"the series failed at profile {profile!r} ({', '.join(failed)}); see "
                         f"{work / 'executed' / 'summary.md'}")
    return work / "executed", None


@dataclass
class _SiteSource:
    folder: Path
    alts: dict[str, str]  # image digest -> alt text


def _write_site_source(series_dir: Path, source: Path, profile: str, solutions: bool) -> _SiteSource:
    """Sphinx's source folder: the book's Sphinx project as the package ships it (``book_site/``:
    conf.py, the landing and results pages, the style sheet, the favicon), the book's version of
    each executed notebook, and in ``_generated/`` what this build's pages say of its run."""
    import nbformat

    summary = SeriesSummary.read(series_dir)
    if source.exists():
        shutil.rmtree(source)
    # An installed package may hold conf.py's compiled copy beside it; Sphinx needs only the source.
    shutil.copytree(SITE_PROJECT, source, ignore=shutil.ignore_patterns("__pycache__"))
    stamp = run_stamp(profile, summary)
    titles, alts = {}, {}
    for path in list_notebooks(series_dir):
        notebook = book_notebook(path, stamp, solutions=solutions)
        titles[path.stem] = _title(notebook)
        alts.update(image_alts(notebook))
        nbformat.write(notebook, source / path.name)
    title = "titn-lite" + (" (teacher's edition, with solutions)" if solutions else "")
    generated = {
        "build.json": json.dumps({"title": title}, indent=2),
        "stamp.md": f"```{{note}}\n{stamp}\n```",
        "chapters.md": chapter_map(titles),
        "measured.md": _measured_results(series_dir),
        "ledger.md": format_ledger(),
        "run.md": run_timings(summary),
    }
    (source / GENERATED).mkdir()
    for name, content in generated.items():
        (source / GENERATED / name).write_text(content + "\n", encoding="utf-8")
    return _SiteSource(source, alts)


def _run_sphinx(source: Path, staging: Path, log: Path) -> None:
    if staging.exists():
        shutil.rmtree(staging)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", "1", str(source), str(staging)]
    with log.open("w") as stream:
        status = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT).returncode
    if status != 0:
        raise RuntimeError(f"Sphinx failed (exit {status}); its log: {log}\n{log.read_text()[-2000:]}")


def students_notebooks(source: Path) -> list[str]:
    """The notebooks in ``source`` whose exercises hold nbgrader's stub instead of an answer
    (a student's copy: ``notebooks copy`` or the wheel's series)."""
    return [path.stem for path in list_notebooks(source) if is_students_copy(path.read_text(encoding="utf-8"))]


def executed_series_matches(folder: Path, profile: str, source: Path = NOTEBOOK_DIR) -> bool:
    """Whether ``folder`` holds a complete, successful run at ``profile`` of the series in
    ``source``, its notebooks with the same cells as ``source``'s now."""
    import nbformat

    try:
        summary = SeriesSummary.read(folder)
    except (KeyError, TypeError, ValueError):
        # A summary.json missing a field (an older kit's, or edited) cannot stamp the pages: run afresh.
        return False
    if summary is None:
        return False
    sources = list_notebooks(source)
    ran = {n.notebook: n.status for n in summary.notebooks}
    if summary.profile != profile or sorted(ran) != [p.stem for p in sources] or set(ran.values()) != {"ok"}:
        return False
    for path in sources:
        executed = folder / path.name
        if not executed.is_file():
            return False
        cells = [(c.cell_type, c.source) for c in nbformat.read(executed, as_version=4).cells
                 if INJECTED not in c.metadata.get("tags", [])]
        if cells != [(c.cell_type, c.source) for c in nbformat.read(path, as_version=4).cells]:
            return False
    return True


def run_stamp(profile: str, summary: SeriesSummary) -> str:
    """One line naming the run a page shows: profile, date, machine, time (as the run's
    summary.json recorded them, which may be another machine than the one building)."""
    finished = datetime.datetime.fromtimestamp(summary.finished)
    return (f"Executed at the **{profile}** profile on {finished:%Y-%m-%d}, on a {summary.machine}: the series took "
            f"{summary.total_seconds / 60:.1f} min. The figures and numbers on this page come from that run"
            + (" (seconds-long plumbing runs)" if profile == "smoke" else "") + ", not from the paper.")


def book_notebook(path: Path, stamp: str, *, solutions: bool):
    """The book's copy of one executed notebook (see the module docstring)."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    if not solutions:
        from titn_lite.classroom.assignments import clear_solutions

        notebook = clear_solutions(notebook, path.name)
    notebook.metadata.pop("widgets", None)  # saved widget state would make the page fetch the widget scripts
    # The runner's injected settings (local paths) and the hosted-kernel install check say
    # nothing to a reader; the parameters cell stays, with the defaults a student starts from.
    notebook.cells = [c for c in notebook.cells if INJECTED not in c.metadata.get("tags", [])
                      and not c.source.startswith(INSTALL_CHECK)]
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [static for output in cell.outputs for static in _static_outputs(output)]
            for output in cell.outputs:
                if "image/png" in output.get("data", {}):
                    output.setdefault("metadata", {}).setdefault("image/png", {})["alt"] = _alt_text(output, cell)
            if not solutions and _is_graded_check(cell):
                # The run behind the book was solved; a student's page shows the stub, so the
                # check's verdict on the solution would read as a stub that passes.
                cell.outputs = [nbformat.from_dict(GRADED_CHECK_NOTE)]
    first_heading = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "markdown")
    notebook.cells.insert(first_heading + 1, nbformat.v4.new_markdown_cell(f"```{{note}}\n{stamp}\n```"))
    return notebook


GRADED_CHECK_NOTE = {"output_type": "display_data", "metadata": {}, "data": {"text/markdown": (
    "*When you run this cell in JupyterLab, it checks your answer to the exercise above: it "
    "prints a tick, or names the mistake it found and what to fix.*")}}


def _is_graded_check(cell) -> bool:
    """A locked, graded cell of nbgrader's markup: the check of an exercise's answer."""
    grading = cell.metadata.get("nbgrader", {})
    return bool(grading.get("grade")) and not grading.get("solution")


def _static_outputs(output: dict) -> list[dict]:
    data = output.get("data", {})
    if WIDGET_VIEW not in data:
        return [output]
    if "image/png" not in data:  # a progress bar or a live curve: nothing to show without a kernel
        return []
    note = {"output_type": "display_data", "metadata": {}, "data": {"text/markdown": (
        "*A live explorer: open this notebook in JupyterLab to move its controls. "
        "Below, a picture of its default state.*")}}
    alt = output.get("metadata", {}).get("image/png", {}).get("alt")
    picture = {"output_type": "display_data", "metadata": {"image/png": {"alt": alt}} if alt else {},
               "data": {"image/png": data["image/png"]}}
    from nbformat import from_dict

    return [from_dict(note), from_dict(picture)]


GENERIC_FIGURE_TEXT = re.compile(r"^<(Figure|matplotlib|IPython)[^>]*>$|^$")


def _alt_text(output: dict, cell) -> str:
    """What a picture shows, in words: the alt an explorer gave it, the description a figure
    printed as its plain text (``titn_lite.results.viz.describe``), or, for a picture with neither,
    the code that drew it."""
    alt = output.get("metadata", {}).get("image/png", {}).get("alt")
    text = output.get("data", {}).get("text/plain", "")
    text = " ".join((text if isinstance(text, str) else "".join(text)).split())
    if alt:
        return " ".join(str(alt).split())
    if not GENERIC_FIGURE_TEXT.match(text):
        return text
    titles = re.findall(r"""(?:title|suptitle)\s*[=(]\s*f?["']([^"'{}]+)["']""", cell.source)
    if titles:  # a figure drawn by hand, titled in its cell
        return "Figure: " + "; ".join(" ".join(t.split()) for t in titles)[:300]
    code = [line.strip() for line in cell.source.splitlines() if line.strip() and not line.strip().startswith("#")]
    drawn = code[-1].rstrip(";") if code else "this cell"
    return f"Figure drawn by {drawn}"[:300]


def image_alts(notebook) -> dict[str, str]:
    """The alt text of every picture in the book's copy of a notebook, by the SHA-256 of the
    PNG's bytes: MyST-NB names each image file by that hash."""
    alts = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if "image/png" in output.get("data", {}):
                digest = hashlib.sha256(base64.b64decode(output["data"]["image/png"])).hexdigest()
                alts[digest] = output["metadata"]["image/png"]["alt"]
    return alts


_IMG = re.compile(r"<img\b[^>]*>", flags=re.S)
_ATTRIBUTE = re.compile(r'\s(alt|src)="([^"]*)"')


def apply_alt_texts(site: Path, alts: dict[str, str]) -> None:
    """Give each picture of the built pages its alt text (MyST-NB carries only one per cell,
    and Sphinx writes the file name where there is none)."""
    def replace(match: re.Match) -> str:
        tag = match.group(0)
        attributes = dict(_ATTRIBUTE.findall(tag))
        alt = alts.get(Path(unquote(attributes.get("src", ""))).stem)
        if alt is None:
            return tag
        quoted = html.escape(alt, quote=True)
        if "alt" in attributes:
            return re.sub(r'\salt="[^"]*"', lambda _: f' alt="{quoted}"', tag, count=1)
        return tag.replace("<img", f'<img alt="{quoted}"', 1)

    for page in site.rglob("*.html"):
        text = page.read_text()
        changed = _IMG.sub(replace, text)
        if changed != text:
            page.write_text(changed)


def images_without_alt_text(site: Path) -> list[str]:
    """Every ``<img>`` of the site's pages whose alt text is missing, empty or a file name,
    as ``page: src (alt)``."""
    found = []
    for page in sorted(site.rglob("*.html")):
        if page.relative_to(site).parts[0] == "_static":
            continue
        for tag in _IMG.findall(page.read_text()):
            attributes = dict(_ATTRIBUTE.findall(tag))
            alt = html.unescape(attributes.get("alt", "")).strip()
            src = attributes.get("src", "")
            if not alt or re.fullmatch(r"[\w./-]+\.(png|jpe?g|gif|svg|webp)", alt) or alt == src:
                found.append(f"{page.relative_to(site)}: {src} (alt {alt!r})")
    return found


def _title(notebook) -> tuple[str, str]:
    """The notebook's heading and its "You will:" paragraph (what the chapter teaches), as one
    line for the landing page's map. The first Markdown cell opens with both; the rest of
    that cell (the "Why ..." section) is the chapter's, not the map's."""
    first = next(c.source for c in notebook.cells if c.cell_type == "markdown")
    heading, _, body = first.partition("\n")
    paragraphs = [" ".join(p.split()) for p in body.split("\n\n") if p.strip()]
    aims = next((p.split("You will:**", 1)[1] for p in paragraphs if "**You will:**" in p), None)
    if aims is None:
        raise UsageError(f"{heading!r}: the first Markdown cell has no '**You will:**' paragraph for the book's map")
    return heading.lstrip("# ").strip(), aims.strip().rstrip(".").replace("|", "/")


def chapter_map(titles: dict[str, tuple[str, str]]) -> str:
    """The landing page's map: one row per chapter (its title, linking its page, and what the
    reader does there), then the results page."""
    rows = [[f"[{title}]({stem}.ipynb)", aims] for stem, (title, aims) in titles.items()]
    rows.append(["[Measured results beside the paper](results.md)",
                 "the run's teacher, students and ablations over seeds, beside the paper's Table 3"])
    return markdown_table(["chapter", "what you do there"], rows, align="ll")


def _measured_results(series_dir: Path) -> str:
    """The series run's own ``results.md`` (what notebooks 06, 08, 10 and 11 measured, over
    seeds, beside the paper) without its title: the results page has its own."""
    return (series_dir / "results.md").read_text().split("\n", 1)[1].strip()


def run_timings(summary: SeriesSummary) -> str:
    """The results page's table of the run: each notebook's status and seconds, and the total."""
    rows = [[f"[{n.notebook}]({n.notebook}.ipynb)", n.status, f"{n.seconds:.1f}"] for n in summary.notebooks]
    rows.append(["**total**", "", f"{summary.total_seconds:.1f}"])
    return markdown_table(["notebook", "status", "seconds"], rows, align="llr")


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"])
        for attribute in ("href", "src"):
            if values.get(attribute) and tag in ("a", "link", "script", "img"):
                self.links.append(values[attribute])


def broken_internal_links(site: Path) -> list[str]:
    """Every link from a page of ``site`` to a file of the site (or an anchor in one) that
    is not there, as ``page -> link``."""
    parsed: dict[Path, _Links] = {}

    def parse(page: Path) -> _Links:
        if page not in parsed:
            parser = _Links()
            parser.feed(page.read_text(errors="replace"))
            parsed[page] = parser
        return parsed[page]

    broken = []
    for page in sorted(site.rglob("*.html")):
        if page.relative_to(site).parts[0] == "_static":  # the theme's template fragments, not pages
            continue
        for link in parse(page).links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:", "data:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page.resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file() or not target.is_relative_to(site.resolve()):
                broken.append(f"{page.relative_to(site)} -> {link}")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in parse(target).ids:
                broken.append(f"{page.relative_to(site)} -> {link} (no such anchor)")
    return broken


def write_book_summary(result: BookResult, profile: str) -> None:
    write_atomic(result.site / "book.json", json.dumps(
        {"profile": profile, "pages": result.pages, "seconds": round(result.seconds, 1),
         "reused_run": str(result.reused_run) if result.reused_run else None}, indent=2).encode())
