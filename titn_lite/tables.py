"""Markdown tables that read as text in a terminal and show as tables in Jupyter.

The kit's report functions (``format_table``, ``format_report``, ``format_seed_table``,
``format_differences``) return a ``MarkdownTable``: a string, so ``print`` and the CLI show
its Markdown source as before, that IPython also displays as rendered Markdown when a
notebook cell ends with it (or passes it to ``display``).
"""

from __future__ import annotations


class MarkdownTable(str):
    """Markdown text: ``print(table)`` gives the source; a cell ending with ``table`` shows it
    typeset (IPython asks for ``_repr_markdown_``), with the source as its plain-text form."""

    def _repr_markdown_(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # text/plain: the source, not a quoted repr
        printer.text(str(self))
