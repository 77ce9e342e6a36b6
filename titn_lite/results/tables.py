"""Markdown tables that read as text in a terminal and show as tables in Jupyter.

Every table the kit writes (reports, the results page, the paper ledger, grades, the series
summary) is made by ``markdown_table``, which leaves the layout to ``tabulate``'s pipe format.
It returns a ``MarkdownTable``: a string, so ``print`` and the CLI show its Markdown source,
that IPython also displays as rendered Markdown when a notebook cell ends with it (or passes
it to ``display``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tabulate import tabulate


class MarkdownTable(str):
    """Markdown text: ``print(table)`` gives the source; a cell ending with ``table`` shows it
    typeset (IPython asks for ``_repr_markdown_``), with the source as its plain-text form."""

    def _repr_markdown_(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # text/plain: the source, not a quoted repr
        printer.text(str(self))


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]], *, align: str = "") -> MarkdownTable:
    """A Markdown (pipe) table of ``rows`` under ``header``; cells are written as given
    (format numbers before). ``align``: one letter per column, ``l`` or ``r`` (default: left),
    e.g. ``"lrr"`` for a label and two numbers."""
    align = align or "l" * len(header)
    if len(align) != len(header) or set(align) - {"l", "r"}:
        raise ValueError(f"align needs one of l/r per column ({len(header)}), got {align!r}")
    sides = ["left" if a == "l" else "right" for a in align]
    return MarkdownTable(tabulate([[str(c) for c in row] for row in rows], headers=list(header), tablefmt="pipe",
                                  colalign=sides, disable_numparse=True))
