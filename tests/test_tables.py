import pytest
from markdown_tables import alignment, header, row_starting, table_rows

from titn_lite.results.tables import MarkdownTable, markdown_table


def test_markdown_table_writes_the_cells_as_given_under_their_alignment():
    table = markdown_table(["model", "top-1 %"], [["vit", "81.50"], ["titn_large_patch", "7.00"]], align="lr")
    assert isinstance(table, MarkdownTable)
    separator = table.splitlines()[1]
    assert separator.endswith(":|") and not separator.startswith("|-")  # left: ":---", right: "---:"
    assert alignment(table) == "lr" and header(table) == ["model", "top-1 %"]
    assert row_starting(table, "vit") == ["vit", "81.50"]  # as given: "81.50" is not reparsed into 81.5
    assert len(table_rows(table)) == 4 and len({len(line) for line in table.splitlines()}) == 1  # padded


def test_markdown_table_aligns_left_by_default():
    assert alignment(markdown_table(["a", "b"], [["1", "2"]])) == "ll"


@pytest.mark.parametrize("align", ["l", "lrl", "lc", "LR"])
def test_markdown_table_refuses_an_align_that_is_not_one_l_or_r_per_column(align):
    with pytest.raises(ValueError, match="align needs one of l/r per column"):
        markdown_table(["a", "b"], [["1", "2"]], align=align)
