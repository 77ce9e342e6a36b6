"""The book: the smoke series executed and built into a static site that works offline.

One smoke build (the series runs once, ~1.5 min) serves every test here; the teacher's
edition reuses its executed notebooks. The browser test serves the site from 127.0.0.1
and opens every page in headless Chromium (Debian's, as in test_browser.py).
"""

import html
import json
import re
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from titn_lite.classroom.book import (
    GENERATED,
    SITE_PROJECT,
    broken_internal_links,
    build_book,
    executed_series_matches,
    images_without_alt_text,
)
from titn_lite.classroom.course import Course
from titn_lite.classroom.series import NOTEBOOK_DIR, list_notebooks

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SERIES = [p.stem for p in list_notebooks()]


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    root = tmp_path_factory.mktemp("book")
    # build_book also looks for an earlier `notebooks run` in ./runs/notebooks: from the clone,
    # that would be whatever the README's first command left there, so build from the temp folder.
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        result = build_book(Course("smoke", artifacts=root / "artifacts", progress=False), root / "site",
                            work_dir=root / "work")
    assert result.reused_run is None, f"the fixture's book reused {result.reused_run} instead of running the series"
    return result, root


def test_the_book_has_a_page_per_notebook_a_landing_page_and_the_results(book):
    result, _ = book
    pages = {p.stem for p in result.site.glob("*.html")}
    assert set(SERIES) | {"index", "results"} <= pages
    assert result.pages == len(SERIES) + 2
    landing = (result.site / "index.html").read_text()
    assert all(f'href="{stem}.html"' in landing for stem in SERIES), "the map of notebooks links every chapter"
    results = (result.site / "results.html").read_text()
    assert "Measured results beside the paper" in results and "titn − tnt +6.24" in results  # Table 3's gap beside ours
    assert "The paper, setting by setting" in results and "§3.5.2" in results  # the fidelity ledger
    for name in ("vit", "deit", "tnt", "titn", "small_cnn"):
        assert re.search(rf"<td[^>]*>(<p>)?{name}\b", results), name  # a cell may carry its alignment's class


def test_the_map_shows_each_chapters_you_will_line(book):
    result, _ = book
    landing = (result.site / "index.html").read_text()
    table = landing.split('<table class="table">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, flags=re.S)[1:]  # the header row aside
    assert len(rows) == len(SERIES) + 1, f"{len(rows)} rows in the map"  # + the results page
    for stem, row in zip(SERIES, rows[:len(SERIES)], strict=True):
        aims = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)[1]
        text = html.unescape(re.sub(r"<[^>]+>", "", aims)).replace("’", "'")  # Sphinx curls the quotes
        source = nbformat.read(NOTEBOOK_DIR / f"{stem}.ipynb", as_version=4)
        first_cell = next(c.source for c in source.cells if c.cell_type == "markdown")
        first_words = first_cell.split("**You will:**")[1].split()[:3]
        assert text.split()[:3] == first_words, f"{stem}: the map says {text[:80]!r}"
        assert "##" not in text and "Why" not in text and "$" not in text and len(text) < 400, f"{stem}: {text[:200]!r}"


# The report's header row as Markdown source, however its columns are padded.
MODEL_TABLE_HEADER = re.compile(r"\|\s*model\s*\|\s*dataset\s*\|")


def test_report_tables_are_tables_in_the_notebook_and_the_book(book):
    result, root = book
    executed = nbformat.read(root / "work" / "executed" / "08_comparison.ipynb", as_version=4)
    report = next(c for c in executed.cells if c.cell_type == "code" and c.source.startswith("summaries = "))
    (output,) = report.outputs
    assert MODEL_TABLE_HEADER.match(output["data"]["text/markdown"])  # JupyterLab typesets it
    assert output["data"]["text/plain"] == output["data"]["text/markdown"]  # the source, not a quoted repr
    page = (result.site / "08_comparison.html").read_text()
    assert re.search(r'cell_output.*?<table[^>]*>\s*<thead>\s*<tr[^>]*>\s*<th[^>]*>(<p>)?model', page, flags=re.S)
    assert not MODEL_TABLE_HEADER.search(page)  # no Markdown source left in a monospace block


def test_every_page_names_the_run_it_shows_and_links_its_neighbours(book):
    result, _ = book
    for stem in SERIES[1:-1]:
        text = (result.site / f"{stem}.html").read_text()
        assert "Executed at the <strong>smoke</strong> profile on" in text, stem
        assert 'class="left-prev"' in text and 'class="right-next"' in text, f"{stem}: no previous/next links"


def test_no_broken_internal_link(book):
    result, _ = book
    assert result.broken_links == [] and broken_internal_links(result.site) == []


def _site_project_files() -> list[str]:
    return sorted(str(p.relative_to(SITE_PROJECT)) for p in SITE_PROJECT.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)


def test_the_build_copies_the_shipped_sphinx_project_and_generates_only_what_its_run_varies(book):
    result, root = book
    source = root / "work" / "source"
    shipped = _site_project_files()
    assert {"conf.py", "index.md", "results.md", "favicon.svg", "_static/book.css"} <= set(shipped), shipped
    assert all((source / name).read_bytes() == (SITE_PROJECT / name).read_bytes() for name in shipped)
    generated = sorted(p.name for p in (source / GENERATED).iterdir())
    assert generated == ["build.json", "chapters.md", "ledger.md", "measured.md", "run.md", "stamp.md"]
    notebooks = sorted(p.name for p in source.glob("*.ipynb"))
    assert notebooks == [f"{stem}.ipynb" for stem in SERIES]
    landing = (result.site / "index.html").read_text()
    assert 'rel="icon" href="_static/favicon.svg"' in landing and (result.site / "_static" / "favicon.svg").is_file()
    assert "overflow-x: auto" in (result.site / "_static" / "book.css").read_text()
    assert "<title>" in landing and "with solutions" not in landing  # build.json's title: the student's edition


def test_the_wheel_carries_the_books_sphinx_project(built_wheel):
    with zipfile.ZipFile(built_wheel) as wheel:
        names = set(wheel.namelist())
    missing = [name for name in _site_project_files() if f"titn_lite/classroom/book_site/{name}" not in names]
    assert not missing, f"the wheel lacks these files of the book's Sphinx project: {missing}"


def test_explorers_become_pictures_of_their_default_state(book):
    result, _ = book
    for stem in ("02_vit", "05_cutmix", "09_attention_maps"):
        text = (result.site / f"{stem}.html").read_text()
        assert "A live explorer: open this notebook in JupyterLab" in text, stem
        assert "widget-view" not in text and "@jupyter-widgets" not in text, f"{stem}: widget scripts on a static page"


def test_progress_shows_in_the_notebook_and_not_in_the_book(book):
    result, root = book
    executed = nbformat.read(root / "work" / "executed" / "08_comparison.ipynb", as_version=4)
    bars = [o["data"].get("text/plain", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs
            if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    progress = r"epoch \d+/\d+|runs: .*\d+/\d+ \["  # a run's epochs, or (runs side by side) the runs done so far
    assert any(re.search(progress, bar) for bar in bars), "no training progress in notebook 08"
    for page in result.site.glob("*.html"):
        text = page.read_text()
        assert "it/s]" not in text and not re.search(r"epoch \d+/\d+:", text), f"{page.name}: a progress bar"


def test_the_student_book_hides_the_solutions_and_the_teachers_shows_them(book, tmp_path):
    result, root = book
    solution_comment = "each row: how much one query takes from each key"  # a comment inside 01's solution
    source = nbformat.read(list_notebooks()[1], as_version=4)  # 01_attention
    assert any(solution_comment in c.source for c in source.cells), "the test's solution line is out of date"
    student = (result.site / "01_attention.html").read_text()
    assert solution_comment not in student and "BEGIN SOLUTION" not in student
    assert "NotImplementedError" in student  # nbgrader's stub, as in the student notebooks
    # The series ran solved; under the student's stub, the check says what it will do, not
    # "correct" (the solved run's verdict).
    assert "✓" not in student and ": correct" not in student
    assert student.count("it checks your answer to the exercise above") == 2  # 01's two graded checks

    teacher = build_book(Course("smoke", artifacts=root / "artifacts", progress=False), tmp_path / "teacher",
                         executed=root / "work" / "executed", work_dir=tmp_path / "work", solutions=True)
    assert teacher.reused_run == root / "work" / "executed"
    text = (teacher.site / "01_attention.html").read_text()
    assert solution_comment in text and "with solutions" in text
    assert "✓ scaled dot-product attention: correct" in text  # the teacher's edition shows the check's verdict


def test_a_run_of_other_notebooks_or_another_profile_is_not_reused(book, tmp_path):
    _, root = book
    executed = root / "work" / "executed"
    assert executed_series_matches(executed, "smoke")
    assert not executed_series_matches(executed, "classroom")
    copy = tmp_path / "executed"
    shutil.copytree(executed, copy)
    notebook = nbformat.read(copy / "03_inner_outer.ipynb", as_version=4)
    notebook.cells[0].source += "\nchanged"
    nbformat.write(notebook, copy / "03_inner_outer.ipynb")
    assert not executed_series_matches(copy, "smoke")
    unrecorded = tmp_path / "unrecorded"
    shutil.copytree(executed, unrecorded)
    summary = json.loads((unrecorded / "summary.json").read_text())
    del summary["machine"]  # a summary that does not say where it ran cannot stamp the pages
    (unrecorded / "summary.json").write_text(json.dumps(summary))
    assert not executed_series_matches(unrecorded, "smoke")
    with pytest.raises(ValueError, match=r"executed does not hold a complete run at profile .smoke. of the series in "):
        build_book(Course("smoke", artifacts=tmp_path / "artifacts", progress=False), tmp_path / "site",
                   executed=copy, work_dir=tmp_path / "work")


def test_the_book_is_built_from_the_teachers_notebooks_wherever_they_are(book, tmp_path):
    # A wheel install's series is the students' copy; a teacher points --from at a clone's
    # notebooks/, and a run of those very notebooks is reused.
    _, root = book
    teachers = tmp_path / "clone" / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, teachers)
    executed = root / "work" / "executed"
    assert executed_series_matches(executed, "smoke", teachers)
    notebook = nbformat.read(teachers / "05_cutmix.ipynb", as_version=4)
    notebook.cells[-1].source += "\nA teacher's note."
    nbformat.write(notebook, teachers / "05_cutmix.ipynb")
    assert not executed_series_matches(executed, "smoke", teachers)


def test_a_students_copy_is_refused_with_what_to_do(tmp_path):
    from titn_lite.classroom.series import copy_series

    students = copy_series(tmp_path / "course").folder
    with pytest.raises(ValueError, match=r"students' copies \(answers cleared in 01_attention.*--from a clone's"):
        build_book(Course("smoke", artifacts=tmp_path / "artifacts", progress=False), tmp_path / "site",
                   work_dir=tmp_path / "work", source=students)
    assert not (tmp_path / "work").exists() and not (tmp_path / "site").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _axe_script() -> str:
    """axe-core's script, as the axe-playwright-python package ships it (the dev extra)."""
    import axe_playwright_python

    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()


def _is_file_name(alt: str, src: str | None) -> bool:
    alt = alt.strip()
    return alt == (src or "") or Path(alt).name == Path(src or "").name or bool(
        re.fullmatch(r"[\w./-]+\.(png|jpe?g|gif|svg|webp)", alt))


def test_every_picture_in_the_book_has_alt_text_saying_what_it_shows(book):
    result, _ = book
    assert not images_without_alt_text(result.site), images_without_alt_text(result.site)
    pictures = [(page.stem, alt) for page in result.site.glob("*.html")
                for alt in re.findall(r'<img\b[^>]*\balt="([^"]*)"', page.read_text())]
    assert len(pictures) > 20, f"only {len(pictures)} pictures in the book"
    # 08's curves, described from what the figure draws: its panels, its axis and its runs.
    curves = [alt for stem, alt in pictures if stem == "08_comparison" and alt.startswith("Learning curves")]
    assert any(alt.startswith("Learning curves: loss and top-1 accuracy per epoch for vit, deit, tnt, titn")
               for alt in curves), curves


def test_a_pictures_alt_text_comes_from_its_description_else_from_its_cell():
    from titn_lite.classroom.book import _alt_text

    cell = nbformat.v4.new_code_cell('fig, ax = plt.subplots()\nax.set(xlabel="key", title="causal mask: no weight")')
    described = {"data": {"image/png": "", "text/plain": "Learning curves: loss per epoch for vit"}, "metadata": {}}
    assert _alt_text(described, cell) == "Learning curves: loss per epoch for vit"
    explorer = {"data": {"image/png": "", "text/plain": "VBox()"}, "metadata": {"image/png": {"alt": "16 patches"}}}
    assert _alt_text(explorer, cell) == "16 patches"
    plain = {"data": {"image/png": "", "text/plain": "<Figure size 640x480 with 1 Axes>"}, "metadata": {}}
    assert _alt_text(plain, cell) == "Figure: causal mask: no weight"
    assert _alt_text(plain, nbformat.v4.new_code_cell("draw(x);")) == "Figure drawn by draw(x)"


def _draws_a_picture(stem: str, executed: Path) -> bool:
    notebook = nbformat.read(executed / f"{stem}.ipynb", as_version=4)
    return any("image/png" in o.get("data", {}) for c in notebook.cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.skipif(CHROMIUM is None,
                    reason="no chromium on this machine (apt-get install chromium); .ci/run installs it")
def test_every_page_loads_offline_in_a_real_browser_with_its_pictures_and_equations(book):
    from playwright.sync_api import sync_playwright

    result, root = book
    port = _free_port()
    origin = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", str(result.site)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    failures, outside, typeset, pictures, accessibility, alts = [], [], {}, {}, {}, {}
    axe_script = _axe_script()
    shots = root / "screenshots"
    shots.mkdir(exist_ok=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=["--no-sandbox", "--disable-gpu", "--disable-quic",
                                                       "--disable-background-networking", "--disable-component-update"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda r: outside.append(r.url)
                    if r.url.startswith(("http:", "https:", "ws:", "wss:")) and not r.url.startswith(origin) else None)
            page.on("response", lambda r: failures.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.on("requestfailed", lambda r: failures.append(f"failed {r.url}")
                    if r.url.startswith(origin) else None)
            for stem in ["index", *SERIES, "results"]:
                page.goto(f"{origin}/{stem}.html", wait_until="networkidle")
                if page.locator("div.math").count():
                    page.wait_for_selector(".MathJax_Display, .MathJax", timeout=20_000)
                typeset[stem] = page.locator(".MathJax_Display, .MathJax").count()
                pictures[stem] = page.locator(".cell_output img").count()
                # What a screen reader gets for each picture, as the browser sees it.
                alts[stem] = page.evaluate("() => [...document.images].map(img => [img.getAttribute('src'),"
                                           " img.getAttribute('alt')])")
                page.evaluate(axe_script)
                # preload: false, or axe fetches the theme's @import-ed stylesheets from the wrong folder (404s).
                accessibility[stem] = page.evaluate("() => axe.run(document, {resultTypes: ['violations'],"
                                                    " preload: false})"
                                                    ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact,"
                                                    " help: v.help, nodes: v.nodes.map(n => n.target.join(' '))})))")
                if stem in ("index", "01_attention", "08_comparison"):
                    page.screenshot(path=str(shots / f"{stem}.png"), full_page=True)
                if stem == "index":
                    map_layout = page.evaluate("""() => {
                        const table = document.querySelector("article table");
                        const rows = [...table.querySelectorAll("tbody tr")];
                        return {right: table.getBoundingClientRect().right,
                                article: document.querySelector("article").getBoundingClientRect().right,
                                page: document.documentElement.clientWidth,
                                scrolls: table.scrollWidth > table.clientWidth + 1,
                                rows: rows.length};
                    }""")
                if stem == "01_attention":
                    # What a student sees under each graded check cell: its output's text.
                    under_checks = page.evaluate("""() => [...document.querySelectorAll("div.cell")]
                        .filter(cell => cell.querySelector(".cell_input")?.innerText.includes("# Check your answer"))
                        .map(cell => cell.querySelector(".cell_output")?.innerText ?? "")""")
            browser.close()
    finally:
        server.terminate()
    # axe-core on every page: no serious or critical violation; the rest are listed.
    for stem, violations in accessibility.items():
        for v in violations:
            print(f"axe {stem}: {v['impact']} {v['id']} ({v['help']}) on {len(v['nodes'])} element(s): "
                  f"{', '.join(v['nodes'][:3])}")
    serious = {stem: [f"{v['impact']} {v['id']}: {v['help']} ({', '.join(v['nodes'][:5])})" for v in violations
                      if v["impact"] in ("serious", "critical")] for stem, violations in accessibility.items()}
    assert set(accessibility) == {"index", *SERIES, "results"}
    assert not any(serious.values()), {stem: found for stem, found in serious.items() if found}
    # Every picture has alt text that says something: not empty, not a file name.
    unnamed = [f"{stem}: {src} ({alt!r})" for stem, images in alts.items() for src, alt in images
               if not (alt or "").strip() or _is_file_name(alt, src)]
    assert not unnamed, unnamed
    assert not images_without_alt_text(result.site), images_without_alt_text(result.site)
    assert not failures, failures
    assert not outside, f"requests that left localhost: {outside}"
    assert sum(typeset.values()) > 0 and typeset["01_attention"] > 0, typeset
    executed = root / "work" / "executed"
    missing = [stem for stem in SERIES if _draws_a_picture(stem, executed) and pictures[stem] == 0]
    assert not missing, f"pages whose notebook draws a picture but show none: {missing}"
    # The landing page's map: one row per chapter (and the results), inside the page at 1280 px.
    assert map_layout["rows"] == len(SERIES) + 1, map_layout
    assert map_layout["right"] <= map_layout["article"] + 1 and not map_layout["scrolls"], map_layout
    # 01 in the student edition: no verdict of the solved run under a stub.
    assert len(under_checks) == 2, under_checks
    assert all("correct" not in text and "✓" not in text for text in under_checks), under_checks
    assert all("checks your answer" in text for text in under_checks), under_checks
    print(json.dumps({"equations": typeset, "pictures": pictures, "map": map_layout, "screenshots": str(shots)}))
