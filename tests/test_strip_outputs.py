"""`titn-lite notebooks strip`: outputs cleared before a commit, except what nbval compares."""

import shutil

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from titn_lite.classroom.series import CHECKED_MARK, list_notebooks, strip_outputs


def _executed_notebook():
    """A notebook as a run leaves it: counts, timings, papermill's and the widgets' metadata,
    and outputs of every kind, in a plain cell and in two checked ones."""
    plain = new_code_cell("print('hello')", execution_count=7, outputs=[new_output("stream", text="hello\n")])
    plain.metadata.update(execution={"iopub.status.idle": "2024-01-01"}, papermill={"duration": 1.0})
    checked = new_code_cell(f"{CHECKED_MARK}\nprint(1); 2", execution_count=9, outputs=[
        new_output("stream", text="1\n"),
        new_output("execute_result", data={"text/plain": "2"}, execution_count=9),
        new_output("display_data", data={"text/plain": "<Figure>", "image/png": "iVBORw0KGgo="}),
        new_output("execute_result", data={"text/plain": "x", "text/html": "<b>x</b>"}, execution_count=9),
    ])
    table = new_code_cell(f"{CHECKED_MARK}\ntable", execution_count=12, outputs=[
        new_output("execute_result", data={"text/plain": "| a |", "text/markdown": "| a |"}, execution_count=12)])
    notebook = new_notebook(cells=[new_markdown_cell("# Title"), plain, checked, table])
    notebook.metadata.update(papermill={"parameters": {}}, widgets={"state": {}})
    return notebook


def test_strip_clears_a_run_but_keeps_the_text_nbval_compares_numbered_in_order(tmp_path):
    path = tmp_path / "01_example.ipynb"
    nbformat.write(_executed_notebook(), path)
    assert strip_outputs(path) is True
    stripped = nbformat.read(path, as_version=4)
    assert "papermill" not in stripped.metadata and "widgets" not in stripped.metadata
    _, plain, checked, table = stripped.cells
    assert plain.outputs == [] and plain.execution_count is None
    assert "execution" not in plain.metadata and "papermill" not in plain.metadata
    assert checked.execution_count == 1 and table.execution_count == 2
    assert [(o.output_type, o.get("execution_count")) for o in checked.outputs] == [("stream", None),
                                                                                      ("execute_result", 1)]
    assert [o.data["text/markdown"] for o in table.outputs] == ["| a |"] and table.outputs[0].execution_count == 2
    assert strip_outputs(path) is False  # a stripped notebook stays as it is


@pytest.mark.parametrize("path", list_notebooks(), ids=lambda p: p.stem)
def test_the_committed_notebooks_are_already_stripped_byte_for_byte(path, tmp_path):
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    assert strip_outputs(copy) is False, f"{path.name}: `titn-lite notebooks strip` would change it"
    assert copy.read_bytes() == path.read_bytes()
