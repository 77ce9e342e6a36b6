"""The ``titn-lite`` command line (also ``python -m titn_lite``).

Bad input ends with a one-line message on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import get_args, get_origin

from titn_lite.classroom.student_copies import UnclosedSolution
from titn_lite.models.students import list_models
from titn_lite.models.teachers import list_teachers
from titn_lite.system.usage import UsageError
from titn_lite.train.profiles import DEFAULT_PROFILE, list_profiles


def _flops(args: argparse.Namespace) -> int:
    from titn_lite.results.flops import format_table, measure_models

    names = args.models.split(",") if args.models else None
    rows = measure_models(names, num_classes=args.num_classes, img_size=args.img_size, in_chans=args.in_chans)
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=2))
        return 0
    print(f"Parameters and forward FLOPs at {args.img_size}x{args.img_size}, {args.in_chans} channel(s), "
          f"{args.num_classes} classes (torch.utils.flop_counter; multiply-add = 2 FLOPs)\n")
    print(format_table(rows))
    print("\nPaper figures: Table 1 (students' params), Table 3 (GFLOPs per 512 images, teacher params).")
    if any(row.name == "vgg16_bn" for row in rows):
        print("The paper's VGG16-BN count, 138.36M, is torchvision's vgg16_bn with its 1000-class ImageNet\n"
              "head kept (138,365,992 parameters); with a 100-class head it has 134.68M.")
    return 0


def _train(args: argparse.Namespace) -> int:
    from titn_lite.train.config import TrainConfig, cli_options
    from titn_lite.train.runs import train

    settings = {f.name: getattr(args, f.name) for f in cli_options()}
    settings["model_overrides"] = dict(_parse_override(item) for item in args.model_overrides)
    settings["out_dir"] = args.out_dir or f"runs/{args.model}-{args.dataset}-{args.profile}"
    result = train(TrainConfig(**settings), resume=args.resume, progress=not args.quiet)
    metrics = result.metrics
    print(f"{args.model} on {args.dataset}: top-1 {100 * metrics.top1:.2f}%, top-5 {100 * metrics.top5:.2f}%, "
          f"macro F1 {metrics.f1:.3f} ({metrics.count} test images); run in {result.out_dir}")
    if result.history:
        last = result.history[-1]
        print(f"last epoch: {last['images_per_second']:.0f} img/s training alone, "
              f"{last['seconds']:.1f} s with its test")
    return 0


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    """``titn-lite train``'s options, one per ``TrainConfig`` field (``config.option`` holds each
    one's flag, default, choices and help), then the two that are not settings of the run."""
    from dataclasses import MISSING
    from typing import get_type_hints

    from titn_lite.train.config import TrainConfig, cli_options

    types = get_type_hints(TrainConfig)
    for option in cli_options():
        meta = option.metadata
        help_text = meta["help"]() if callable(meta["help"]) else meta["help"]
        flag = meta["flag"] or "--" + option.name.replace("_", "-")
        kwargs = {"dest": option.name, "help": help_text,
                  "metavar": meta["metavar"] or flag.lstrip("-").upper().replace("-", "_")}
        if meta["required"]:
            kwargs["required"] = True
        hint = types[option.name]  # e.g. int | None, dict[str, Any]
        kind = next((t for t in (bool, int, float, dict) if t in {hint, get_origin(hint), *get_args(hint)}), str)
        if kind is bool:
            kwargs["action"] = "store_true"
            del kwargs["metavar"]
        elif kind is dict:  # --override KEY=INT, repeatable
            kwargs.update(action="append", default=[])
        else:
            if kind is not str:
                kwargs["type"] = kind
            if option.default is not MISSING and option.default is not None and option.name != "out_dir":
                kwargs["default"] = option.default
        parser.add_argument(flag, **kwargs)
        if option.name == "out_dir":
            parser.add_argument("--resume", action="store_true",
                                help="continue the run in --out from its last checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _comma_list(text: str | None) -> list[str] | None:
    """``--only 01,05`` -> ["01", "05"]; absent -> None (everything)."""
    return [item.strip() for item in text.split(",")] if text else None


def _parse_override(item: str) -> tuple[str, int]:
    key, sep, value = item.partition("=")
    if not sep or not value.lstrip("-").isdigit():
        raise UsageError(f"--override takes KEY=INTEGER (e.g. depth=4), got {item!r}")
    return key, int(value)


def _evaluate(args: argparse.Namespace) -> int:
    from titn_lite.data.datasets import dataset_info
    from titn_lite.results.flops import count_flops, count_parameters
    from titn_lite.results.tables import markdown_table
    from titn_lite.system.devices import resolve_device
    from titn_lite.train.checkpoint import CheckpointFacts, load_checkpoint, model_from_checkpoint
    from titn_lite.train.engine import evaluate
    from titn_lite.train.pipeline import test_batches

    checkpoint = load_checkpoint(args.checkpoint)
    facts = CheckpointFacts.of(checkpoint)
    dataset = args.dataset or facts.dataset
    info = dataset_info(dataset)
    if (info.num_classes, info.in_chans) != (facts.num_classes, facts.in_chans):
        raise UsageError(f"{args.checkpoint} classifies {facts.num_classes} classes of "
                         f"{facts.in_chans}-channel images; {dataset} has {info.num_classes} classes of "
                         f"{info.in_chans}-channel images")
    model = model_from_checkpoint(checkpoint)
    device = resolve_device(args.device)
    # The test images as the engine tested the run: decoded once, normalised a batch at a time.
    metrics = evaluate(model.to(device), test_batches(dataset, data_dir=args.data_dir), info.num_classes,
                       device=device)
    model = model.cpu()
    result = {"checkpoint": str(args.checkpoint), "model": facts.model_name, "dataset": dataset,
              "top1": metrics.top1, "top5": metrics.top5, "precision": metrics.precision,
              "recall": metrics.recall, "f1": metrics.f1, "test_images": metrics.count,
              "params_m": count_parameters(model) / 1e6,
              "gflops_per_512": count_flops(model, in_chans=info.in_chans) * 512 / 1e9}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    measured = [result["model"], dataset, f"{100 * metrics.top1:.2f}", f"{100 * metrics.top5:.2f}",
                f"{metrics.precision:.3f}", f"{metrics.recall:.3f}", f"{metrics.f1:.3f}",
                f"{result['gflops_per_512']:.2f}", f"{result['params_m']:.3f}"]
    print(markdown_table(["model", "dataset", "top-1 %", "top-5 %", "precision", "recall", "F1", "GFLOPs / 512",
                          "params (M)"], [measured], align="llrrrrrrr"))
    return 0


def _report(args: argparse.Namespace) -> int:
    from titn_lite.results.report import format_report, summarize_run
    from titn_lite.system.files import write_atomic

    summaries = [summarize_run(run_dir) for run_dir in args.run_dirs]
    text = format_report(summaries) + "\n"
    if args.out:
        write_atomic(args.out, text.encode())
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0


def _notebooks_run(args: argparse.Namespace) -> int:
    from titn_lite.classroom.course import ARTIFACTS_DIR, Course
    from titn_lite.classroom.series import NOTEBOOK_DIR, check_jobs, default_jobs, list_notebooks, run_series

    jobs = default_jobs(args.device) if args.jobs is None else check_jobs(args.jobs)
    folder = args.source or NOTEBOOK_DIR
    if not list_notebooks(folder):
        raise UsageError(f"no numbered notebooks (NN_name.ipynb) in {folder}; give the folder that "
                         f"`titn-lite notebooks copy` made, e.g. --from my-course/notebooks")
    course = Course(args.profile, device=args.device, artifacts=args.artifacts or ARTIFACTS_DIR)
    started = time.perf_counter()
    results = run_series(course, only=_comma_list(args.only), out_dir=args.out, folder=folder, jobs=jobs)
    wall = time.perf_counter() - started
    for result in results:
        where = f" at cell {result.failed_cell}" if result.failed_cell else ""
        detail = f"  failed{where}: {result.error}" if result.status == "failed" else ""
        print(f"{result.notebook:<22} {result.status:<6} {result.seconds:7.1f} s{detail}")
    failed = [r for r in results if r.status == "failed"]
    at_once = min(jobs, len(results))  # as run_series ran them: a single notebook alone
    side_by_side = f" ({at_once} at once: {wall:.0f} s of wall clock)" if at_once > 1 else ""
    print(f"{len(results) - len(failed)}/{len(results)} notebooks ran in {sum(r.seconds for r in results):.0f} s"
          f"{side_by_side}; executed notebooks and summary.md in {args.out}")
    if failed and _students_copies(folder):
        print(f"{folder} holds students' copies (answers cleared): each stops at its first exercise. To check a "
              f"set-up end to end, run the teacher's notebooks: --from path/to/clone/notebooks", file=sys.stderr)
    return 1 if failed else 0


def _students_copies(folder: Path) -> bool:
    from titn_lite.classroom.series import list_notebooks
    from titn_lite.classroom.student_copies import is_students_copy

    return any(is_students_copy(p.read_text(encoding="utf-8")) for p in list_notebooks(folder))


def _notebooks_prepare(args: argparse.Namespace) -> int:
    from titn_lite.classroom.course import SHARED_ENV, Course
    from titn_lite.classroom.series import NOTEBOOK_DIR, check_jobs, default_jobs, prepare_class

    jobs = default_jobs(args.device) if args.jobs is None else check_jobs(args.jobs)
    course = Course(args.profile, device=args.device, artifacts=args.artifacts)
    results = prepare_class(course, folder=args.source or NOTEBOOK_DIR, out_dir=args.out, jobs=jobs)
    for result in results:
        where = f" at cell {result.failed_cell}" if result.failed_cell else ""
        detail = f"  failed{where}: {result.error}" if result.status == "failed" else ""
        print(f"{result.notebook:<22} {result.status:<6} {result.seconds:7.1f} s{detail}")
    failed = [r for r in results if r.status == "failed"]
    if failed:
        print(f"{len(failed)} of {len(results)} notebooks failed; the runs they train are missing from "
              f"{course.artifacts}: fix and run prepare again (finished runs are kept)", file=sys.stderr)
        return 1
    print(f"the class's runs ({args.profile}) are in {course.artifacts}. For the students' servers set "
          f"{SHARED_ENV}={course.artifacts} (read only to them; their own runs go to their own artifacts/); "
          f"executed notebooks, with the answers, in {args.out}")
    return 0


def _notebooks_copy(args: argparse.Namespace) -> int:
    from titn_lite.classroom.series import copy_series

    report = copy_series(args.dest, force=args.force)
    print(f"copied {len(report.copied)} notebook(s) to {report.folder}"
          + (f"; {len(report.unchanged)} already there and unchanged" if report.unchanged else ""))
    if report.kept:
        print(f"kept {len(report.kept)} notebook(s) you changed: {', '.join(report.kept)} "
              f"(--force replaces them with the packaged versions; your changes are then lost)")
    print(f"open the series with:  jupyter lab {report.folder}   (start with 00_setup.ipynb)")
    return 0


def _notebooks_strip(args: argparse.Namespace) -> int:
    from titn_lite.classroom.series import execute_in_place, list_notebooks, strip_outputs

    if args.execute:
        for path in list_notebooks():
            print(f"executing {path.name} at the smoke profile")
            execute_in_place(path)
    changed = [p.name for p in list_notebooks() if strip_outputs(p)]
    print(f"stripped outputs from {len(changed)} notebook(s): {', '.join(changed) or 'none needed'}")
    return 0


def _lab(args: argparse.Namespace) -> int:
    from titn_lite.classroom.lab import run_lab

    return run_lab(args.folder, args.options)


def _book_build(args: argparse.Namespace) -> int:
    from titn_lite.classroom.book import build_book, write_book_summary
    from titn_lite.classroom.course import ARTIFACTS_DIR, Course
    from titn_lite.classroom.series import NOTEBOOK_DIR

    course = Course(args.profile, device=args.device, artifacts=args.artifacts or ARTIFACTS_DIR)
    result = build_book(course, args.out, executed=args.executed, solutions=args.solutions,
                        source=args.source or NOTEBOOK_DIR)
    write_book_summary(result, args.profile)
    reused = f"reused the executed series in {result.reused_run}" if result.reused_run else "ran the series"
    print(f"book ({args.profile} profile{', with solutions' if args.solutions else ''}): {result.pages} pages in "
          f"{result.site} ({reused}; {result.seconds:.0f} s). Open {result.site / 'index.html'}")
    if result.broken_links:
        print("broken internal links:\n  " + "\n  ".join(result.broken_links), file=sys.stderr)
        return 1
    return 0


# titn_lite.classroom.assignments.DEFAULT_RELEASE, repeated: the CLI imports a command's module only when it runs.
DEFAULT_RELEASE = "titn-release"


def _assignments_build(args: argparse.Namespace) -> int:
    from titn_lite.classroom.assignments import build
    from titn_lite.classroom.series import NOTEBOOK_DIR

    exercises = build(args.out, only=_comma_list(args.only), folder=args.source or NOTEBOOK_DIR,
                      nbgrader=args.nbgrader)
    notebooks = sorted({e.notebook for e in exercises})
    width = max(len(e.notebook) for e in exercises)
    grade_width = max(len(e.grade_id) for e in exercises)
    print(f"{'notebook':<{width}}  {'grade id':<{grade_width}}  points")
    for e in exercises:
        print(f"{e.notebook:<{width}}  {e.grade_id:<{grade_width}}  {e.points:>6g}")
    print(f"{len(exercises)} exercises ({sum(e.points for e in exercises):g} points) in {len(notebooks)} student "
          f"notebooks written to {args.out}")
    if args.nbgrader:
        print(f"the teacher's notebooks (answers between nbgrader's markers) written to {args.nbgrader}: run "
              f"nbgrader generate_assignment {args.nbgrader.name}, then nbgrader release_assignment "
              f"{args.nbgrader.name}, in the course folder")
    return 0


def _assignments_grade(args: argparse.Namespace) -> int:
    import secrets

    from titn_lite.classroom.assignments import grade

    # Drawn now, so no file of the release holds the cases (grade() refuses a seed below 1).
    hidden_seed = secrets.randbits(31) | 1 if args.hidden_seed is None else args.hidden_seed
    grades = grade(args.submissions, args.release, args.out, cell_timeout=args.cell_timeout, profile=args.profile,
                   device=args.device, jobs=args.jobs, feedback_dir=args.feedback, assignment=args.assignment,
                   force=args.force, hidden_seed=hidden_seed, shared_runs=args.runs)
    for g in grades:
        print(f"{g.student:<20} {g.total:g} points" + (f"  ({len(g.errors)} problem(s))" if g.errors else ""))
    feedback = grades[0].feedback_dir if grades else args.feedback
    asked = args.feedback or args.out.parent / "feedback"
    if feedback and Path(feedback) != Path(asked):
        print(f"{asked} holds an earlier run's feedback, so this run's went to {feedback} "
              f"(--force writes over {asked})")
    print(f"grade sheet: {args.out}; feedback (one HTML page per student, and the executed notebooks): {feedback}")
    print(f"hidden cases drawn from seed {hidden_seed} (--hidden-seed {hidden_seed} grades on the same cases again)")
    if args.runs is None:
        print(f"each student's notebooks trained the class's runs again: `titn-lite notebooks prepare --profile "
              f"{args.profile} --artifacts DIR` once, then `--runs DIR`, shares them (docs/teachers.md, section 4)")
    failed = [g for g in grades if g.feedback_error]
    for g in failed:
        print(f"feedback page for {g.student} could not be written ({g.feedback_error}); their grades are in "
              f"{args.out}", file=sys.stderr)
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="titn-lite", description="Vision transformers and knowledge distillation, TITN-style."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    flops = commands.add_parser("flops", help="parameters and FLOPs of the models beside the paper's Tables 1 and 3")
    flops.add_argument("--models", help=f"comma-separated names (default: vgg16_bn and every student); "
                                          f"students: {', '.join(list_models())}; "
                                          f"teachers: {', '.join(list_teachers())}")
    flops.add_argument("--num-classes", type=int, default=100)
    flops.add_argument("--img-size", type=int, default=32)
    flops.add_argument("--in-chans", type=int, default=3)
    flops.add_argument("--json", action="store_true", help="print the rows as JSON")
    flops.set_defaults(run=_flops)

    train = commands.add_parser("train", help="train a student or a teacher (the paper's recipe)")
    _add_train_options(train)
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="Table 3 metrics of a checkpoint on a test set")
    evaluate.add_argument("checkpoint", type=Path)
    evaluate.add_argument("--dataset", help="default: the dataset the checkpoint was trained on")
    evaluate.add_argument("--data-dir")
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    evaluate.set_defaults(run=_evaluate)

    report = commands.add_parser("report", help="measured runs beside the paper's tables, as Markdown")
    report.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    report.add_argument("--out", type=Path, help="write the report here (default: print it)")
    report.set_defaults(run=_report)
    _add_notebooks_commands(commands)
    _add_book_command(commands)
    lab = commands.add_parser("lab", help="open the series in JupyterLab: the kit's kernel chosen, no news pop-up")
    lab.add_argument("folder", nargs="?", type=Path, default=Path("notebooks"),
                     help="the notebooks' folder (default: ./notebooks, as in a clone)")
    lab.add_argument("options", nargs=argparse.REMAINDER, help="options for JupyterLab, e.g. --port 8899")
    lab.set_defaults(run=_lab)
    _add_assignments_commands(commands)
    return parser


def _add_notebooks_commands(commands: argparse._SubParsersAction) -> None:
    notebooks = commands.add_parser("notebooks", help="run the notebook series (the kit's main job)")
    notebook_commands = notebooks.add_subparsers(dest="notebooks_command", required=True)
    run = notebook_commands.add_parser("run", help="execute the series in order with papermill")
    run.add_argument("--profile", default=DEFAULT_PROFILE, help=f"one of {', '.join(list_profiles())}")
    run.add_argument("--only", help="comma-separated notebook numbers or names, e.g. 01,05")
    run.add_argument("--out", default="runs/notebooks", help="folder for executed notebooks and the summary")
    run.add_argument("--device", default="auto", help="auto, cpu or cuda")
    run.add_argument("--artifacts", help="folder for the runs the notebooks share (default: ./artifacts)")
    run.add_argument("--jobs", metavar="N", help="notebooks run at once, each kernel with cores / N threads "
                                                 "(default: 2 on a CPU with 2 cores or more, 1 on a GPU; 1: one "
                                                 "after another)")
    run.add_argument("--from", dest="source", type=Path, metavar="DIR",
                     help="run the notebooks in DIR (default: the series installed with the package)")
    run.set_defaults(run=_notebooks_run)
    prepare = notebook_commands.add_parser(
        "prepare", help="train the runs the series shares, once, into a folder the students' copies read")
    prepare.add_argument("--profile", default=DEFAULT_PROFILE, help=f"one of {', '.join(list_profiles())}")
    prepare.add_argument("--artifacts", type=Path, required=True,
                         help="the class's shared runs, e.g. /srv/titn-shared (students read it through "
                              "TITN_LITE_SHARED_ARTIFACTS)")
    prepare.add_argument("--from", dest="source", type=Path, metavar="DIR",
                         help="the teacher's notebooks, with their answers (default: the series installed with the "
                              "package; from a wheel install that is the students' copy, so give a clone's or the "
                              "sdist's notebooks/ folder)")
    prepare.add_argument("--out", type=Path, default=Path("runs/prepare"),
                         help="folder for the executed notebooks, which hold the answers (default: runs/prepare)")
    prepare.add_argument("--device", default="auto", help="auto, cpu or cuda")
    prepare.add_argument("--jobs", metavar="N", help="notebooks run at once (default as for run)")
    prepare.set_defaults(run=_notebooks_prepare)
    copy = notebook_commands.add_parser("copy", help="put the series into a folder of yours, ready for JupyterLab")
    copy.add_argument("dest", nargs="?", type=Path, default=Path("titn-lite-course"),
                      help="the folder (default: ./titn-lite-course); the notebooks go to DEST/notebooks")
    copy.add_argument("--force", action="store_true", help="replace notebooks you have changed")
    copy.set_defaults(run=_notebooks_copy)
    strip = notebook_commands.add_parser("strip", help="clear outputs before committing (keeps nbval checks)")
    strip.add_argument("--execute", action="store_true",
                       help="first run every notebook in place at the smoke profile, to record the outputs "
                            "nbval checks")
    strip.set_defaults(run=_notebooks_strip)


def _add_book_command(commands: argparse._SubParsersAction) -> None:
    book = commands.add_parser("book", help="the executed series as a static HTML book")
    book_commands = book.add_subparsers(dest="book_command", required=True)
    build_book = book_commands.add_parser("build", help="execute the series (or reuse a run) and build the site")
    build_book.add_argument("--profile", default=DEFAULT_PROFILE, help=f"one of {', '.join(list_profiles())}")
    build_book.add_argument("--out", type=Path, default=Path("site"), help="the site's folder (default: site/)")
    build_book.add_argument("--executed", type=Path, metavar="DIR",
                            help="a `notebooks run --out DIR` of this profile to reuse (default: runs/notebooks "
                                 "when it matches, else the series runs)")
    build_book.add_argument("--solutions", action="store_true", help="the teacher's book: keep the exercises' answers")
    build_book.add_argument("--from", dest="source", type=Path, metavar="DIR",
                            help="the teacher's notebooks, with their answers (default: the series installed with "
                                 "the package; from a wheel install that is the students' copy, so give a clone's "
                                 "notebooks/ folder)")
    build_book.add_argument("--artifacts", help="folder of the runs the notebooks share (default: ./artifacts)")
    build_book.add_argument("--device", default="auto", help="auto, cpu or cuda")
    build_book.set_defaults(run=_book_build)


def _add_assignments_commands(commands: argparse._SubParsersAction) -> None:
    assignments = commands.add_parser("assignments", help="student versions of the notebooks, and grading")
    assignment_commands = assignments.add_subparsers(dest="assignments_command", required=True)
    build = assignment_commands.add_parser("build", help="write the student versions (answers replaced by stubs)")
    build.add_argument("--out", type=Path, default=Path(DEFAULT_RELEASE),
                       help=f"default: ./{DEFAULT_RELEASE} (not release/, which nbgrader uses in a course folder)")
    build.add_argument("--only", help="comma-separated notebook numbers, e.g. 01,05 (default: all with exercises)")
    build.add_argument("--from", dest="source", type=Path, metavar="DIR",
                       help="the teacher's notebooks (default: the series installed with the package; from a "
                            "wheel install that is the students' copy, so give a clone's notebooks/ folder)")
    build.add_argument("--nbgrader", type=Path, metavar="SOURCE_DIR",
                       help="also write the teacher's notebooks, answers between nbgrader's markers, into "
                            "nbgrader's source folder (e.g. source/titn-lite in the course folder), for "
                            "nbgrader generate_assignment to clear")
    build.set_defaults(run=_assignments_build)
    grade = assignment_commands.add_parser("grade", help="run and score a folder of submissions, write feedback")
    grade.add_argument("submissions", type=Path,
                       help="a folder with one folder per student holding the notebooks, or nbgrader's "
                            "submitted/ folder (STUDENT/ASSIGNMENT/*.ipynb) or the course folder above it")
    grade.add_argument("--release", type=Path, default=Path(DEFAULT_RELEASE),
                       help=f"the folder `assignments build` wrote (default: ./{DEFAULT_RELEASE})")
    grade.add_argument("--out", type=Path, default=Path("grades.csv"))
    grade.add_argument("--cell-timeout", type=float, default=120, help="seconds a cell may run")
    grade.add_argument("--profile", default="smoke",
                       help="profile every notebook runs at while grading, whatever its parameters cell says")
    grade.add_argument("--device", default="cpu",
                       help="device every notebook runs on while grading, whatever its parameters cell says "
                            "(default: cpu; auto or cuda to use a GPU)")
    grade.add_argument("--jobs", type=int, default=1, help="students graded at once (default 1)")
    grade.add_argument("--feedback", type=Path, help="folder for the feedback pages (default: feedback/ beside --out; "
                                                     "when it holds an earlier run's, feedback-2/, ...)")
    grade.add_argument("--force", action="store_true", help="write over the feedback folder of an earlier run")
    grade.add_argument("--runs", type=Path, default=None, metavar="DIR",
                       help="runs prepared for the class at the grading profile (titn-lite notebooks prepare "
                            "--profile smoke --artifacts DIR): every student's notebooks read them instead of "
                            "training them again")
    grade.add_argument("--hidden-seed", type=int, default=None,
                       help="the seed of the hidden cases (default: drawn when you grade; the run prints it)")
    grade.add_argument("--assignment", help="in nbgrader's layout, the assignment folder to grade when a student "
                                            "has several")
    grade.set_defaults(run=_assignments_grade)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from titn_lite.train.engine import TrainingDiverged, TrainingStopped

    try:
        return args.run(args)
    except (UsageError, UnclosedSolution) as error:  # bad input: what it was and what would be valid (a bug keeps
        # its traceback); an unclosed solution marker is the teacher's notebook's mistake
        print(f"titn-lite {args.command}: error: {error}", file=sys.stderr)
        return 2
    except TrainingDiverged as error:
        print(f"titn-lite {args.command}: {error}", file=sys.stderr)
        return 1
    except TrainingStopped as error:  # SIGTERM: the epoch it saved and how to go on
        print(f"titn-lite {args.command}: {error}", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"titn-lite {args.command}: interrupted; a training run continues with --resume", file=sys.stderr)
        return 130

if __name__ == "__main__":
    sys.exit(main())
