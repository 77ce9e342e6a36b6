"""The package's structure: modules in layers, as the README's map lists them, and short
functions. Read from the source (``ast``), so lazy imports inside functions count too."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "titn_lite"
MAX_FUNCTION_LINES = 60


def map_order() -> list[str]:
    section = (ROOT / "README.md").read_text().split("## Map of the package", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^- `titn_lite/(\w+)\.py`", section, re.M)


def imported_modules(module: str) -> dict[str, int]:
    """The package's modules ``module`` imports, anywhere in the file (type-only and lazy
    imports included), each with the line of its first import."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "titn_lite":
            names = [node.module.split(".")[1]] if "." in node.module else [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1] for a in node.names if a.name.startswith("titn_lite.")]
        for name in names:
            if (PACKAGE / f"{name}.py").is_file():
                found.setdefault(name, node.lineno)
    return found


def test_the_map_lists_every_module_once():
    order = map_order()
    modules = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert sorted(order) == modules and len(set(order)) == len(order)


def test_no_module_imports_one_listed_after_it():
    # The package reads top to bottom: each module stands on the ones above it in the map, so
    # there is no import cycle either.
    order = map_order()
    forward = [f"{module} imports {other} (line {line})" for module in order
               for other, line in imported_modules(module).items() if order.index(other) > order.index(module)]
    assert forward == [], "imports of modules listed after the importer:\n" + "\n".join(forward)


def test_the_engine_imports_nothing_from_the_run_layer():
    assert "runs" not in imported_modules("training")
    assert {"runs", "training", "course"}.isdisjoint(imported_modules("pipeline"))


def test_no_function_in_the_package_is_longer_than_a_screen():
    long = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.name}: {node.name} ({lines} lines)")
    assert long == [], f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)
