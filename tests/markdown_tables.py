"""Reading the kit's Markdown tables back in tests: their cells and alignment, not their padding,
which is ``tabulate``'s to choose (``titn_lite.results.tables.markdown_table``)."""

from __future__ import annotations

import re

_CELL_BORDER = re.compile(r"(?<!\\)\|")  # a "|" that ends a cell; "\|" is a pipe inside one


def table_rows(text: str) -> list[list[str]]:
    """Each table line of ``text`` (one starting with "|") as its cells, stripped: the header,
    the alignment row and the body, in order. Lines around the table are left out."""
    return [[cell.strip() for cell in _CELL_BORDER.split(line.strip())[1:-1]]
            for line in text.splitlines() if line.startswith("|")]


def header(text: str) -> list[str]:
    """The first table's column names."""
    return table_rows(text)[0]


def alignment(text: str) -> str:
    """The first table's alignment row as one letter a column: ``r`` where the separator ends
    with ":" (right-aligned), ``l`` otherwise."""
    return "".join("r" if cell.endswith(":") else "l" for cell in table_rows(text)[1])


def row_starting(text: str, first_cell: str) -> list[str]:
    """The cells of the row whose first cell is ``first_cell`` (the only one: a test names a row once)."""
    (row,) = [row for row in table_rows(text) if row[0] == first_cell]
    return row
