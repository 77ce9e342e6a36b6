"""How long `titn-lite assignments grade` takes for a class: every graded notebook, the runs
the series trains prepared once for the class, several students at once.

Builds the release of every notebook with a graded exercise, prepares the class's runs at the
grading profile (`titn-lite notebooks prepare`, what a teacher does once), writes a class of
test students in the kit's layout (in turn: every answer right; a common mistake; the blank
release, as a student who wrote nothing hands it in; an answer cell that replaces a check),
grades it with `--runs` and `--jobs`, and prints the seconds for the preparation and the
grading, per student and per graded notebook, and each kind of student's score:

    python benchmarks/grading_speed.py [--students 30] [--jobs 2]
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
KINDS = ("right", "mistake", "blank", "replaced check")


def solutions(release: Path) -> dict[str, str]:
    """Each graded answer cell's reference source, by nbgrader grade id (from the teacher's notebooks)."""
    answers = {}
    for path in sorted(release.glob("*.ipynb")):
        notebook = nbformat.read(ROOT / "notebooks" / path.name, as_version=4)
        answers.update({cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in notebook.cells
                        if cell.metadata.get("nbgrader", {}).get("solution")})
    return answers


def write_class(release: Path, out: Path, students: int) -> dict[str, str]:
    """The class's folders; returns each student's kind."""
    right = solutions(release)
    answers = {
        "right": right,
        "mistake": {**right, "attention": right["attention"].replace(" / math.sqrt(q.shape[-1])", "")},
        "blank": {},
        "replaced check": {**right, "attention": 'import titn_lite.classroom.checks as _c\n'
                                                 '_c.check_attention = lambda f: None'},
    }
    kinds = {}
    for index in range(students):
        kind = KINDS[index % len(KINDS)]
        folder = out / f"student{index:02d}"
        folder.mkdir(parents=True)
        for path in sorted(release.glob("*.ipynb")):
            notebook = nbformat.read(path, as_version=4)
            for cell in notebook.cells:
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                if grade_id in answers[kind]:
                    cell.source = answers[kind][grade_id]
            nbformat.write(notebook, folder / path.name)
        kinds[folder.name] = kind
    return kinds


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30, help="test students in the class (default 30)")
    parser.add_argument("--jobs", type=int, default=2, help="students graded at once (default 2)")
    parser.add_argument("--profile", default="smoke", help="the grading profile (default smoke)")
    args = parser.parse_args()
    if args.students < 1 or args.jobs < 1:
        parser.error("--students and --jobs take whole numbers of 1 or more")
    titn = [sys.executable, "-m", "titn_lite"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run([*titn, "assignments", "build", "--out", str(work / "release")], check=True,
                       stdout=subprocess.DEVNULL)
        notebooks = len(list((work / "release").glob("*.ipynb")))
        prepare = timed([*titn, "notebooks", "prepare", "--profile", args.profile, "--artifacts", str(work / "runs"),
                         "--out", str(work / "prepared"), "--from", str(ROOT / "notebooks")])
        kinds = write_class(work / "release", work / "class", args.students)
        grading = timed([*titn, "assignments", "grade", str(work / "class"), "--release", str(work / "release"),
                         "--out", str(work / "grades.csv"), "--jobs", str(args.jobs), "--profile", args.profile,
                         "--runs", str(work / "runs")])
        rows = list(csv.DictReader((work / "grades.csv").open()))
    graded = args.students * notebooks
    print(f"prepare the class's runs ({args.profile}): {prepare:.1f} s, once")
    print(f"grade --jobs {args.jobs} --runs: {grading:.1f} s for {args.students} students x {notebooks} notebooks "
          f"({grading / args.students:.1f} s per student, {grading / graded:.2f} s per graded notebook)")
    print(f"prepare + grade: {prepare + grading:.1f} s ({(prepare + grading) / 60:.1f} min)")
    for kind in KINDS:
        scores = sorted({f"{row['total']}/{row['max']}" for row in rows if kinds[row["student"]] == kind})
        print(f"  {kind:<15} {', '.join(scores)}")


if __name__ == "__main__":
    main()
