"""How long `titn-lite assignments grade` takes for a class, one notebook at a time and two at once.

Builds the release of notebooks 01 and 02 (three exercises, five points), writes a class of test
students in the kit's layout (right answers, a common mistake, and a student who replaces the check
from the answer cell), grades it with ``--jobs 1`` and ``--jobs 2``, and prints the seconds, the
seconds per graded notebook, and whether both gradings agree:

    python benchmarks/grading_speed.py [--students 10]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("01_attention.ipynb", "02_vit.ipynb")


def solutions() -> dict[str, str]:
    """Each graded answer cell's reference source, by nbgrader grade id."""
    answers = {}
    for name in NOTEBOOKS:
        notebook = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        answers.update({cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in notebook.cells
                        if cell.metadata.get("nbgrader", {}).get("solution")})
    return answers


def write_class(release: Path, out: Path, students: int) -> None:
    """Right, wrong (attention without the 1/sqrt(d_k) scale) and cheating students, in turn."""
    right = solutions()
    wrong = {**right, "attention": right["attention"].replace(" / math.sqrt(q.shape[-1])", "")}
    cheat = {**right, "attention": 'import titn_lite.checks as _c; _c.check_attention = lambda f: print("ok")'}
    kinds = [right, wrong, cheat]
    for index in range(students):
        answers, folder = kinds[index % len(kinds)], out / f"student{index:02d}"
        folder.mkdir(parents=True)
        for path in sorted(release.glob("*.ipynb")):
            notebook = nbformat.read(path, as_version=4)
            for cell in notebook.cells:
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                if grade_id in answers:
                    cell.source = answers[grade_id]
            nbformat.write(notebook, folder / path.name)


def grade(course: Path, release: Path, out: Path, jobs: int) -> float:
    command = [sys.executable, "-m", "titn_lite", "assignments", "grade", str(course), "--release", str(release),
               "--out", str(out), "--jobs", str(jobs)]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=10, help="test students in the class (default 10)")
    args = parser.parse_args()
    if args.students < 1:
        parser.error(f"--students must be at least 1, got {args.students}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run([sys.executable, "-m", "titn_lite", "assignments", "build", "--out", str(work / "release"),
                        "--only", "01,02"], check=True, stdout=subprocess.DEVNULL)
        write_class(work / "release", work / "class", args.students)
        seconds = {jobs: grade(work / "class", work / "release", work / f"grades{jobs}.csv", jobs) for jobs in (1, 2)}
        tables = [list(csv.DictReader((work / f"grades{jobs}.csv").open())) for jobs in (1, 2)]
    graded = args.students * len(NOTEBOOKS)
    for jobs, taken in seconds.items():
        print(f"--jobs {jobs}: {taken:.1f} s for {args.students} students x {len(NOTEBOOKS)} notebooks "
              f"({taken / graded:.1f} s per graded notebook)")
    same = [{k: v for k, v in row.items() if k != "submitted"} for row in tables[0]] == [
        {k: v for k, v in row.items() if k != "submitted"} for row in tables[1]]
    print(f"two at once / one at a time: {seconds[2] / seconds[1]:.2f}; the same grades: {'yes' if same else 'NO'}")
    print("totals:", ", ".join(f"{row['student']} {row['total']}/{row['max']}" for row in tables[0]))


if __name__ == "__main__":
    main()
