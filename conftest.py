"""Test-run settings, and the guard that keeps the tests out of the clone's own folders.

pytest runs the notebooks (nbval) at the smoke profile: their parameters cell reads
``TITN_LITE_PROFILE``. Their shared runs go to a temporary folder (``TITN_LITE_ARTIFACTS``,
also read by the parameters cell), never to the clone's ``artifacts/``: a newcomer runs
the README's first command (the smoke series, which fills ``artifacts/`` and ``runs/``)
and then the tests, and neither may see the other's files.

The guard: the clone's ``runs/``, ``artifacts/``, ``site/`` and ``notebooks/`` are listed
(size and modification time of every file) when the session starts and again when it
ends; any file added, removed or changed fails the test run, naming the files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
GUARDED = ("runs", "artifacts", "site", "notebooks")
# Written by Python and Jupyter themselves, not by the kit: never a test's output.
IGNORED_PARTS = {"__pycache__", ".ipynb_checkpoints"}

os.environ.setdefault("TITN_LITE_PROFILE", "smoke")
_ARTIFACTS = Path(tempfile.mkdtemp(prefix="titn-lite-test-artifacts-"))
os.environ["TITN_LITE_ARTIFACTS"] = str(_ARTIFACTS)


def clone_snapshot(root: Path = ROOT) -> dict[str, tuple[int, int]]:
    """Every file under the guarded folders of ``root``: relative path -> (size, mtime in ns)."""
    files = {}
    for name in GUARDED:
        for path in (root / name).rglob("*"):
            if path.is_file() and not IGNORED_PARTS & set(path.parts):
                stat = path.stat()
                files[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return files


def snapshot_changes(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    """What changed between two snapshots, one line a file."""
    return ([f"added    {p}" for p in sorted(after.keys() - before.keys())]
            + [f"removed  {p}" for p in sorted(before.keys() - after.keys())]
            + [f"changed  {p}" for p in sorted(before.keys() & after.keys()) if before[p] != after[p]])


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_BEFORE] = clone_snapshot()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_ARTIFACTS, ignore_errors=True)
    before = session.config.stash.get(_BEFORE, None)
    if before is None:
        return
    changes = snapshot_changes(before, clone_snapshot())
    session.config.stash[_CHANGES] = changes
    if changes and session.exitstatus == pytest.ExitCode.OK:  # an interrupted or failed run keeps its own code
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    changes = config.stash.get(_CHANGES, [])
    if changes:
        terminalreporter.section("the tests changed the clone's own folders", sep="=", red=True, bold=True)
        terminalreporter.write_line(f"Tests must work in their own temporary folders; these files under "
                                    f"{', '.join(GUARDED)} changed during the run (the run fails):")
        for line in changes[:50]:
            terminalreporter.write_line(f"  {line}")
        if len(changes) > 50:
            terminalreporter.write_line(f"  ... and {len(changes) - 50} more")


_BEFORE = pytest.StashKey[dict]()
_CHANGES = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory) -> Path:
    """The kit's wheel, built once per test run from a copy of what it is made of: setuptools
    writes build/ and an egg-info beside the sources it builds, and a test writes nothing
    into the clone."""
    import subprocess
    import sys

    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("titn_lite", "notebooks", "assets"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(source)], check=True, capture_output=True)
    return next(out.glob("titn_lite-*.whl"))
