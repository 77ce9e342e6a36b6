"""The class around the notebooks: the runs a series shares (``course``), the exercises'
checks and the sandbox the grader runs answers in (``checks``, ``sandbox``), student copies
(``student_copies``), the series runner (``series``), assignments, JupyterLab and the book.
Import the module you need: this package imports none of them."""
