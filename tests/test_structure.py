"""The package's structure: folders in layers and modules in order, as import-linter's
contracts in pyproject.toml say (lazy imports inside functions count too), and short functions."""

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "titn_lite"
MAX_FUNCTION_LINES = 60


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter on the package under ``root`` (its pyproject.toml's contracts), without
    its cache (which it would write into the clone)."""
    command = [str(Path(sys.executable).with_name("lint-imports")), "--no-cache", "--config",
               str(root / "pyproject.toml")]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)})


def contracts() -> dict[str, list[str]]:
    """Each contract's id -> its layers, top first."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    return {c["id"]: c["layers"] for c in config}


def test_every_folder_and_module_keeps_to_its_layer():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    # A copy of the package in which the attention module imports the classroom: the linter must fail.
    shutil.copytree(PACKAGE, tmp_path / "titn_lite", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    attention = tmp_path / "titn_lite" / "models" / "attention.py"
    attention.write_text(attention.read_text() + "\nfrom titn_lite.classroom import course  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0 and "BROKEN" in result.stdout
    assert "titn_lite.models.attention -> titn_lite.classroom.course" in result.stdout


def test_the_contracts_cover_every_module_and_the_readme_maps_them_in_their_order():
    layers = contracts()
    folders = [name.split(".")[1] for name in layers["folders"] if name != "titn_lite.cli"]
    section = (ROOT / "README.md").read_text().split("## Map of the package", 1)[1].split("\n## ", 1)[0]
    for folder in folders:
        modules = sorted(p.stem for p in (PACKAGE / folder).glob("*.py") if p.stem != "__init__")
        assert sorted(layers[folder]) == modules, f"{folder}: the contract lists {layers[folder]}"
        line = re.search(rf"^- `titn_lite/{folder}/`: (.*)$", section, re.M)
        assert line, f"the README's map has no line for titn_lite/{folder}/"
        named = re.findall(r"(?:^|\), |: )`(\w+)` \(", line.group(1)) or re.findall(r"`(\w+)` \(", line.group(1))
        assert named == layers[folder][::-1], (f"the README maps {folder} as {named}, "
                                               f"its contract as {layers[folder][::-1]}")
    assert sorted(p.stem for p in PACKAGE.glob("*.py")) == ["__init__", "__main__", "cli"]


def test_no_function_in_the_package_is_longer_than_a_screen():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}: {node.name} ({lines} lines)")
    assert long == [], f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_ruff_finds_nothing():
    """ruff with the rules in pyproject.toml (pycodestyle, pyflakes, import order, bugbear,
    pyupgrade), over the package, tests, benchmarks and scripts; no cache written into the clone."""
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run([str(ruff), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
