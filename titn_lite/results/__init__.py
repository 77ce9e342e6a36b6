"""What runs show: Markdown tables (``tables``), seeds and tests (``stats``), the paper's
figures and ledger (``paper``), FLOPs (``flops``), reports and the results page
(``report``), pictures (``viz``) and widgets (``widgets``). Import the module you need:
this package imports none of them, so reading a table does not load matplotlib or scipy."""
