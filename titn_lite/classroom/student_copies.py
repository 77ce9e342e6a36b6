"""Student copies of the notebooks: every exercise's answer cleared.

The source notebooks are the teacher's: each exercise's answer sits between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` (nbgrader's markup). What a student gets
(``titn-lite notebooks copy``, the notebooks inside the wheel, ``assignments build``,
the book without ``--solutions``) has each such region replaced by nbgrader's stub,
``# YOUR CODE HERE`` / ``raise NotImplementedError()`` at the region's indentation (in a
Markdown cell, ``YOUR ANSWER HERE``), and the outputs of answer cells removed.

Standard library only: ``setup.py`` loads this file on its own to clear the notebooks
it puts into the wheel, where neither nbgrader nor the kit's dependencies are installed.
"""

from __future__ import annotations

import json

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
TEXT_STUB = ["YOUR ANSWER HERE"]


class UnclosedSolution(ValueError):
    """A ``### BEGIN SOLUTION`` without its ``### END SOLUTION`` (or the reverse): a mistake in
    the teacher's notebook, which the CLI says in one line (like a ``UsageError``, which this
    file cannot import: it is standard library only)."""


def clear_source(source: str, *, markdown: bool = False) -> str:
    """``source`` with every solution region replaced by the stub."""
    out: list[str] = []
    inside = False
    for line in source.split("\n"):
        if BEGIN in line:
            if inside:
                raise UnclosedSolution("a second BEGIN SOLUTION before the END SOLUTION")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + stub for stub in (TEXT_STUB if markdown else CODE_STUB)]
        elif END in line:
            if not inside:
                raise UnclosedSolution("END SOLUTION without a BEGIN SOLUTION")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise UnclosedSolution("BEGIN SOLUTION without an END SOLUTION")
    return "\n".join(out)


def has_solution(text: str) -> bool:
    return BEGIN in text or END in text


def is_students_copy(notebook_text: str) -> bool:
    """Whether an ``.ipynb`` file's text has an exercise cleared to the stub and no answer
    left: what ``student_copy`` makes, which cannot run past its first exercise."""
    if has_solution(notebook_text):
        return False
    cells = json.loads(notebook_text).get("cells", [])
    for cell in cells:
        source = cell.get("source", "")
        lines = [line.strip() for line in ("".join(source) if isinstance(source, list) else source).split("\n")]
        stub = TEXT_STUB if cell.get("cell_type") == "markdown" else CODE_STUB
        if any(lines[i:i + len(stub)] == stub for i in range(len(lines))):
            return True
    return False


def clear_cells(cells: list[dict]) -> list[dict]:
    """Clear the solution regions of notebook cells given as JSON dicts (``source`` a string
    or a list of lines, as nbformat writes it); returns the same list, changed in place."""
    for cell in cells:
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else source
        solution_cell = cell.get("metadata", {}).get("nbgrader", {}).get("solution", False)
        if not has_solution(text) and not solution_cell:
            continue
        cleared = clear_source(text, markdown=cell.get("cell_type") == "markdown")
        cell["source"] = cleared.splitlines(keepends=True) if isinstance(source, list) else cleared
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return cells


def student_copy(raw: bytes, name: str = "notebook") -> bytes:
    """The student version of one ``.ipynb`` file's bytes (unchanged when it has no
    exercise). Raises ``ValueError`` naming the notebook if a marker is unbalanced."""
    if not has_solution(raw.decode("utf-8")):
        return raw
    notebook = json.loads(raw)
    try:
        clear_cells(notebook.get("cells", []))
    except UnclosedSolution as error:
        raise UnclosedSolution(f"{name}: {error}") from None
    text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
    if has_solution(text):
        raise RuntimeError(f"{name}: a solution marker survived clearing")  # a bug of clear_cells
    return text.encode("utf-8")
