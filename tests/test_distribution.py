"""The kit installed as a wheel: its data and notebooks travel inside the package, it is
found from any working directory, and it never reads above its own folder."""

import ast
import json
import os
import site
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import nbformat
import pytest

from titn_lite.classroom.series import copy_series, list_notebooks
from titn_lite.cli import main

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "titn_lite"


@pytest.fixture(scope="module")
def wheel(built_wheel) -> Path:
    return built_wheel


def test_the_wheel_carries_the_data_and_the_notebooks_and_stays_small(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    notebooks = sorted(n for n in names if n.startswith("titn_lite/series/") and n.endswith(".ipynb"))
    assert [Path(n).name for n in notebooks] == [p.name for p in list_notebooks()]
    data = {n for n in names if n.startswith("titn_lite/assets/fashion-mnist-mini/")}
    assert {Path(n).name for n in data} == {p.name for p in (ROOT / "assets" / "fashion-mnist-mini").iterdir()}
    assert "titn_lite/classroom/checks.py" in names  # the assignments copy it next to the student notebooks
    assert wheel.stat().st_size < 6_000_000, f"{wheel.stat().st_size} bytes"


def test_the_installed_wheel_finds_its_data_and_notebooks_from_any_folder(wheel, tmp_path):
    """Install the wheel (not editable) into a fresh environment that borrows this one's
    dependencies, then use it from a folder with nothing of the clone in it."""
    env = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    target = next((env / "lib").glob("python3*/site-packages"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    # Dependencies come from this environment, appended after the new one's own site-packages.
    (target / "zz_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = textwrap.dedent("""
        import json, titn_lite
        from pathlib import Path
        from titn_lite.data.datasets import load_dataset
        from titn_lite.classroom.series import NOTEBOOK_DIR, list_notebooks
        test_set = load_dataset("fashion-mnist-mini", train=False)
        print(json.dumps({"package": titn_lite.__file__, "notebooks": [str(p) for p in list_notebooks()],
                          "test_images": len(test_set)}))
    """)
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environ["TITN_LITE_DATA"] = str(tmp_path / "cache")
    result = subprocess.run([str(env / "bin" / "python"), "-c", probe], cwd=elsewhere, capture_output=True,
                            text=True, env=environ, check=True)
    found = json.loads(result.stdout)
    package = Path(found["package"]).parent
    assert package.is_relative_to(target), package
    assert len(found["notebooks"]) == len(list_notebooks())
    assert all(Path(p).is_relative_to(package) for p in found["notebooks"])
    assert found["test_images"] == 2000


def test_nothing_in_the_package_reads_a_path_above_its_own_folder():
    """No `parents[...]`, `.parent.parent`, `..` or `os.pardir` in the package's code: what
    it reads at run time comes through importlib.resources or from the user."""
    offences = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            where = f"{path.name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Attribute) and node.attr == "parents":
                offences.append(f"{where} .parents")
            if isinstance(node, ast.Attribute) and node.attr == "parent" and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == "parent":
                offences.append(f"{where} .parent.parent")
            if isinstance(node, ast.Attribute) and node.attr == "pardir":
                offences.append(f"{where} os.pardir")
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and ".." in node.value.split("/"):
                offences.append(f"{where} {node.value!r}")
    assert not offences, offences


def test_copy_puts_the_series_in_a_folder_and_keeps_a_students_edits(tmp_path, capsys):
    assert main(["notebooks", "copy", str(tmp_path / "course")]) == 0
    folder = tmp_path / "course" / "notebooks"
    assert [p.name for p in list_notebooks(folder)] == [p.name for p in list_notebooks()]
    assert "copied 13 notebook(s)" in capsys.readouterr().out

    edited = folder / "01_attention.ipynb"
    notebook = nbformat.read(edited, as_version=4)
    notebook.cells.append(nbformat.v4.new_markdown_cell("my notes"))
    nbformat.write(notebook, edited)
    (folder / "05_cutmix.ipynb").unlink()
    assert main(["notebooks", "copy", str(tmp_path / "course")]) == 0
    out = capsys.readouterr().out
    assert "copied 1 notebook(s)" in out and "11 already there and unchanged" in out
    assert "kept 1 notebook(s) you changed: 01_attention.ipynb" in out and "--force" in out
    assert "my notes" in edited.read_text()

    report = copy_series(tmp_path / "course", force=True)
    assert report.copied == ["01_attention.ipynb"] and "my notes" not in edited.read_text()


def test_copy_refuses_a_file_in_the_way(tmp_path, capsys):
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "notebooks").write_text("not a folder")
    assert main(["notebooks", "copy", str(tmp_path / "course")]) == 2
    assert "is a file; choose another destination folder" in capsys.readouterr().err


def test_run_from_a_folder_without_notebooks_says_what_to_give(tmp_path, capsys):
    assert main(["notebooks", "run", "--from", str(tmp_path), "--profile", "smoke", "--out", str(tmp_path / "out"),
                 "--artifacts", str(tmp_path / "artifacts")]) == 2
    assert "no numbered notebooks (NN_name.ipynb) in" in capsys.readouterr().err


def _setup_cell(name: str = "00_setup.ipynb") -> str:
    notebook = nbformat.read(list_notebooks()[0].with_name(name), as_version=4)
    return next(c.source for c in notebook.cells if c.source.startswith("# Set-up: the series needs"))


@pytest.mark.parametrize("path", list_notebooks(), ids=lambda p: p.stem)
def test_every_notebook_checks_for_the_package_right_after_its_parameters(path):
    cells = nbformat.read(path, as_version=4).cells
    first_code = next(i for i, c in enumerate(cells) if c.cell_type == "code")
    assert "parameters" in cells[first_code].metadata.get("tags", [])
    assert cells[first_code + 1].source == _setup_cell()


def _run_setup_cell_without_the_package(install, tmp_path) -> dict:
    """Run the set-up cell in a real IPython shell, in a fresh Python where titn_lite
    cannot be imported; pip is replaced by a recorder (nothing is downloaded)."""
    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["titn_lite"] = None  # import titn_lite -> ModuleNotFoundError, as in a bare kernel
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        calls = []
        shell.run_line_magic = lambda name, line: calls.append(f"%{{name}} {{line}}")
        shell.user_ns["install"] = {install!r}
        result = shell.run_cell({_setup_cell()!r})
        error = result.error_in_exec
        print("\\n@@" + json.dumps({{"error": type(error).__name__ if error else None, "calls": calls}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "IPYTHONDIR": str(tmp_path / "ipython")})
    shown, _, report = result.stdout.rpartition("\n@@")
    return {**json.loads(report), "shown": shown + result.stderr}


def test_a_hosted_kernel_without_the_package_gets_one_line_saying_what_to_run(tmp_path):
    outcome = _run_setup_cell_without_the_package(False, tmp_path)
    assert outcome["error"] == "TitnLiteMissing" and outcome["calls"] == []
    lines = [line for line in outcome["shown"].splitlines() if line.strip()]
    assert lines == ["titn_lite is not installed in this kernel: run  %pip install titn-lite  in a cell "
                     "(or set install = True in the first cell), then run the notebook again"], lines


@pytest.mark.parametrize("install, command", [(True, "%pip install --quiet titn-lite"),
                                              ("/course/titn_lite-0.1.0-py3-none-any.whl",
                                               "%pip install --quiet /course/titn_lite-0.1.0-py3-none-any.whl")])
def test_the_install_parameter_installs_the_package(tmp_path, install, command):
    outcome = _run_setup_cell_without_the_package(install, tmp_path)
    assert outcome["calls"] == [command]
    # The recorder installed nothing, so the import after it still fails: proof the cell imports it again.
    assert outcome["error"] == "ModuleNotFoundError"
