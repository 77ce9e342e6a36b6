"""What the chapters say the paper says: every quotation attributed to it occurs in its text,
and every chapter opens on the chapter, not on set-up code.

The convention the notebooks follow: words put in the paper's mouth are quoted and followed by
where they stand, ``"The batch size is 1024" (§4.1)`` or ``"..." (Table 6)``; an ellipsis
(``…`` or ``...``) or an editorial ``[insertion]`` inside the quotation splits it into pieces,
each of which must occur. The paper's text is ``tests/data/paper.txt``, so the quotations are
checked in any clone.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from titn_lite.classroom.series import list_notebooks
from titn_lite.results import paper

ROOT = Path(__file__).resolve().parents[1]
# The TITN paper's text (Rahman et al., "A Transformer-in-Transformer Network Utilizing Knowledge
# Distillation for Image Recognition"), kept as test data so quotations are checked in any clone.
PAPER_TEXT = ROOT / "tests" / "data" / "paper.txt"
NOTEBOOKS = list_notebooks()

# A quotation followed by a pointer into the paper: "..." (§3.5.2), "..." (Table 3), "..." (Algorithm 2, line 6).
QUOTED = re.compile(r'["“]([^"”\n]{3,}?)["”][.,;:]?\s*\((?:the paper,\s*)?(§|Table|Tables|Algorithm|Alg\.|eq\.|'
                    r'Figure|Section|Abstract)')


def normalise(text: str) -> str:
    """Case, quote marks, dashes and white space as a PDF's text and a notebook may differ in them."""
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    text = text.replace("–", "-").replace("—", "-").replace("ﬁ", "fi").replace("ﬂ", "fl")
    return " ".join(text.lower().split())


def quotations(text: str) -> list[str]:
    return [m.group(1) for m in QUOTED.finditer(text)]


def pieces(quotation: str) -> list[str]:
    """A quotation's pieces: split at ellipses and [editorial insertions], each at least two words."""
    parts = re.split(r"…|\.\.\.|\[[^\]]*\]", quotation)
    return [p.strip(" ,;:") for p in parts if len(p.split()) >= 2]


def test_the_quotation_pattern_finds_what_it_is_for():
    text = ('It says "The batch size is 1024" (§4.1) and "The teacher model with the highest performance, '
            'VGG16_bn" (§4.2). A "label" in passing is not a quotation of the paper.')
    assert quotations(text) == ["The batch size is 1024", "The teacher model with the highest performance, VGG16_bn"]
    assert pieces("the larger patches … are added together [with] the patch residuals") == [
        "the larger patches", "are added together", "the patch residuals"]


@pytest.fixture(scope="module")
def paper_text() -> str:
    return normalise(PAPER_TEXT.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_quotation_of_the_paper_occurs_in_its_text(path, paper_text):
    prose = "\n\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    missing = [q for q in quotations(prose) for piece in pieces(q) if normalise(piece) not in paper_text]
    assert not missing, f"{path.name} quotes the paper with words it does not contain: {missing}"


def test_the_ledger_quotes_the_paper_right(paper_text):
    said = " ".join(f"{entry.paper} ({entry.where})" for entry in paper.LEDGER)
    missing = [q for q in re.findall(r'"([^"]{3,}?)"', said) for piece in pieces(q)
               if normalise(piece) not in paper_text]
    assert not missing, f"the ledger quotes words the paper does not contain: {missing}"


def _visible_lines(cell) -> int:
    if cell.metadata.get("jupyter", {}).get("source_hidden"):
        return 1  # JupyterLab shows a collapsed cell as one bar
    return len(cell.source.splitlines())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_first_screen_is_the_chapter(path):
    """Before the chapter's second Markdown cell, at most 10 visible lines of code: the
    parameters, a collapsed set-up cell, and what the chapter's opening needs."""
    cells = nbformat.read(path, as_version=4).cells
    markdown = [i for i, c in enumerate(cells) if c.cell_type == "markdown"]
    before = cells[:markdown[1]] if len(markdown) > 1 else cells
    visible = sum(_visible_lines(c) for c in before if c.cell_type == "code")
    assert visible <= 10, f"{path.name}: {visible} visible lines of code before its second Markdown cell"
