"""The guard in conftest.py that fails a test run which touched the clone's own folders."""

import conftest


def test_the_guard_names_files_added_changed_and_removed(tmp_path):
    for name in ("runs", "artifacts", "site", "notebooks"):
        (tmp_path / name).mkdir()
    (tmp_path / "runs" / "kept.json").write_text("{}")
    (tmp_path / "site" / "index.html").write_text("<p>old</p>")
    (tmp_path / "artifacts" / "gone.pt").write_text("x")
    (tmp_path / "notebooks" / "__pycache__").mkdir()
    before = conftest.clone_snapshot(tmp_path)
    assert conftest.snapshot_changes(before, conftest.clone_snapshot(tmp_path)) == []

    (tmp_path / "site" / "index.html").write_text("<p>new, longer</p>")
    (tmp_path / "artifacts" / "gone.pt").unlink()
    (tmp_path / "runs" / "notebooks").mkdir()
    (tmp_path / "runs" / "notebooks" / "summary.json").write_text("{}")
    (tmp_path / "notebooks" / "__pycache__" / "x.pyc").write_text("")  # Python's own cache: not a change
    (tmp_path / "elsewhere.txt").write_text("")  # outside the guarded folders
    assert conftest.snapshot_changes(before, conftest.clone_snapshot(tmp_path)) == [
        "added    runs/notebooks/summary.json", "removed  artifacts/gone.pt", "changed  site/index.html"]


def test_the_notebooks_share_runs_in_a_temporary_folder_during_the_tests():
    import os
    from pathlib import Path

    artifacts = Path(os.environ["TITN_LITE_ARTIFACTS"])  # nbval's kernels inherit it
    assert artifacts.is_dir() and not artifacts.is_relative_to(conftest.ROOT)


def test_a_test_run_that_writes_into_the_clone_fails_and_names_the_file(tmp_path):
    """The guard, end to end: a project with this conftest.py and one test that writes into
    runs/ exits 1 although its test passes, and says which file appeared."""
    import shutil
    import subprocess
    import sys

    shutil.copy(conftest.ROOT / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_leaky.py").write_text(
        "from pathlib import Path\n\n\ndef test_writes_a_run():\n"
        "    Path(__file__).parent.joinpath('runs').mkdir()\n"
        "    Path(__file__).parent.joinpath('runs', 'leak.json').write_text('{}')\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout[-2000:]
    assert "1 passed" in result.stdout and "added    runs/leak.json" in result.stdout
    (tmp_path / "runs" / "leak.json").unlink()
    (tmp_path / "runs").rmdir()
    (tmp_path / "test_leaky.py").write_text("def test_clean():\n    pass\n")
    clean = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stdout[-2000:]
