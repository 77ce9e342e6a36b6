"""What a student installs or copies holds no solutions: the wheel's notebooks (cleared
when the wheel is built) and `titn-lite notebooks copy`. The clone keeps them (the
teacher's copy)."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from titn_lite.classroom.series import NOTEBOOK_DIR, copy_series, list_notebooks
from titn_lite.classroom.student_copies import clear_source, student_copy

ROOT = Path(__file__).resolve().parents[1]


def solution_lines() -> dict[str, set[str]]:
    """Notebook name -> the code lines of its answers (comments and blank lines aside)."""
    found = {}
    for path in list_notebooks(NOTEBOOK_DIR):
        lines = set()
        for cell in json.loads(path.read_text())["cells"]:
            source = "".join(cell["source"])
            for region in source.split("### BEGIN SOLUTION")[1:]:
                body = region.split("### END SOLUTION")[0]
                lines |= {line.strip() for line in body.splitlines()
                          if line.strip() and not line.strip().startswith("#")}
        if lines:
            found[path.name] = lines
    return found


def assert_no_solutions(name: str, text: str) -> None:
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, name
    cells = json.loads(text)["cells"]
    code = "\n".join("".join(c["source"]) for c in cells)
    leaked = [line for line in solution_lines().get(name, ()) if line in code]
    assert not leaked, f"{name} leaks {leaked}"
    if name in solution_lines():
        assert "raise NotImplementedError()" in code


def test_the_source_series_holds_solutions_for_the_teacher():
    assert len(solution_lines()) >= 7


def test_clearing_keeps_the_signature_and_indentation():
    source = "def f(x):\n    \"\"\"doc\"\"\"\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n"
    assert clear_source(source) == ("def f(x):\n    \"\"\"doc\"\"\"\n    # YOUR CODE HERE\n"
                                    "    raise NotImplementedError()\n")
    with pytest.raises(ValueError, match="BEGIN SOLUTION without an END SOLUTION"):
        student_copy(json.dumps({"cells": [{"cell_type": "code", "source": "### BEGIN SOLUTION\nx = 1"}]}).encode())


def test_notebooks_copy_holds_no_solutions_and_the_teacher_can_ask_for_them(tmp_path):
    report = copy_series(tmp_path / "course")
    assert len(report.copied) == len(list_notebooks())
    for path in list_notebooks(report.folder):
        assert_no_solutions(path.name, path.read_text())
    again = copy_series(tmp_path / "course")  # a second copy sees its own copies as unchanged
    assert again.unchanged == report.copied and not again.kept
    teacher = copy_series(tmp_path / "teacher", solutions=True)
    assert "### BEGIN SOLUTION" in (teacher.folder / "01_attention.ipynb").read_text()


def test_the_wheels_notebooks_hold_no_solutions(built_wheel):
    with zipfile.ZipFile(built_wheel) as zf:
        notebooks = {Path(n).name: zf.read(n).decode() for n in zf.namelist()
                     if n.startswith("titn_lite/series/") and n.endswith(".ipynb")}
    assert sorted(notebooks) == [p.name for p in list_notebooks()]
    for name, text in notebooks.items():
        assert_no_solutions(name, text)
    assert "### BEGIN SOLUTION" in (ROOT / "notebooks" / "01_attention.ipynb").read_text()  # the clone keeps them


def test_the_module_setup_py_loads_alone_needs_only_the_standard_library():
    # setup.py loads this file by path to clear the wheel's notebooks, in an isolated build where
    # neither the kit nor its dependencies are installed: -S leaves site-packages out here too.
    path = Path(__file__).resolve().parent.parent / "titn_lite" / "classroom" / "student_copies.py"
    code = (f"import importlib.util as u; s = u.spec_from_file_location('m', {str(path)!r}); "
            "m = u.module_from_spec(s); s.loader.exec_module(m); print(m.CODE_STUB[0])")
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "# YOUR CODE HERE", result.stderr
