"""Invoke tasks: run the exercises, list them, check, test, format.

    invoke run --lecture 31 --ex 3      one exercise (spec parameters)
    invoke run --all --quick            every exercise, small sizes, then a summary
    invoke list                         lectures and exercises
    invoke check test                   ruff, mypy --strict, then pytest

Tasks are thin: they validate their options, call typed functions, and exit with
status 2 and one line naming the bad value. invoke takes an option's type from its
default, so every option that takes a value is a string here and is parsed below.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Final, cast

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task

from shared import (
    DEFAULT_SEED,
    EXECUTOR_KINDS,
    START_METHODS,
    Exercise,
    RunOptions,
    Stopwatch,
    Verdict,
    formatTable,
    runExercise,
    stopChildren,
)

LECTURES: Final = (29, 31, 36, 37)
TaskBody = Callable[..., None]
PYTHON: Final = sys.executable


# ============================================================================
# Lecture modules
# ============================================================================


def loadLecture(lecture: int) -> ModuleType | None:
    """The module ``lNN`` or None when it does not exist yet."""
    name = f"l{lecture}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name == name:
            return None
        raise


def lectureExercises(module: ModuleType) -> tuple[Exercise, ...]:
    """A lecture module's registry."""
    return cast(tuple[Exercise, ...], module.EXERCISES)


# ============================================================================
# Option parsing: one line and exit status 2 for anything bad
# ============================================================================


def badOption(message: str) -> Exit:
    """The exception a task raises for bad input: one line on stderr, exit status 2."""
    return Exit(f"invoke: error: {message}", code=2)


def parseLecture(text: str) -> int:
    """``--lecture`` as an int among the course's lectures."""
    allowed = ", ".join(map(str, LECTURES))
    try:
        lecture = int(text)
    except ValueError:
        raise badOption(f"--lecture must be one of {allowed}, got {text!r}") from None
    if lecture not in LECTURES:
        raise badOption(f"--lecture must be one of {allowed}, got {lecture}")
    return lecture


def parseExercise(text: str, lecture: int, exercises: Sequence[Exercise]) -> Exercise:
    """``--ex`` as one of the lecture's exercises."""
    allowed = ", ".join(str(e.number) for e in exercises)
    for exercise in exercises:
        if text.strip() == str(exercise.number):
            return exercise
    raise badOption(f"--ex must be one of {allowed} for lecture {lecture}, got {text!r}")


def parseOptions(seed: str, quick: bool, executor: str, startMethod: str) -> RunOptions:
    """``--seed``, ``--quick``, ``--executor``, ``--start-method`` as ``RunOptions``."""
    try:
        seedValue = int(seed) if seed else DEFAULT_SEED
    except ValueError:
        raise badOption(f"--seed must be an integer >= 0, got {seed!r}") from None
    if seedValue < 0:
        raise badOption(f"--seed must be an integer >= 0, got {seedValue}")
    kind = executor or "process"
    if kind not in EXECUTOR_KINDS:
        raise badOption(f"--executor must be one of {', '.join(EXECUTOR_KINDS)}, got {executor!r}")
    if startMethod and startMethod not in START_METHODS:
        raise badOption(f"--start-method must be one of {', '.join(START_METHODS)}, got {startMethod!r}")
    return RunOptions(
        seed=seedValue,
        quick=quick,
        executor=kind,
        startMethod=startMethod or None,
    )


@dataclass(frozen=True, slots=True)
class Selection:
    """What ``invoke run`` will run: (lecture, exercise) pairs and the lectures not written yet."""

    chosen: tuple[tuple[int, Exercise], ...]
    missing: tuple[int, ...]


def select(lecture: str, ex: str, runAll: bool) -> Selection:
    """Resolve ``--lecture``/``--ex``/``--all`` into the exercises to run."""
    lectures = (parseLecture(lecture),) if lecture else LECTURES
    if not runAll and not (lecture and ex):
        raise badOption("give --lecture N --ex M, --lecture N --all, or --all")
    if ex and runAll:
        raise badOption("--ex and --all exclude each other")
    chosen: list[tuple[int, Exercise]] = []
    missing: list[int] = []
    for number in lectures:
        module = loadLecture(number)
        if module is None:
            missing.append(number)
            continue
        exercises = lectureExercises(module)
        if ex:
            chosen.append((number, parseExercise(ex, number, exercises)))
        else:
            chosen.extend((number, exercise) for exercise in exercises)
    if not chosen:
        names = ", ".join(f"l{n}.py" for n in missing)
        raise badOption(f"lecture {lecture or 'modules'} not implemented yet ({names} does not exist)")
    return Selection(tuple(chosen), tuple(missing))


# ============================================================================
# Running exercises
# ============================================================================


@dataclass(frozen=True, slots=True)
class RunRecord:
    """How one exercise went in ``invoke run``."""

    lecture: int
    exercise: int
    status: str
    seconds: float
    claimsHeld: int
    claimsTotal: int


def runOne(lecture: int, exercise: Exercise, options: RunOptions) -> RunRecord:
    """Run one exercise in this process; an exception is recorded, not raised (Ctrl-C excepted)."""
    with Stopwatch() as watch:
        try:
            outcome = runExercise(exercise, options)
        except Exception as error:  # noqa: BLE001 - one failing exercise must not stop `run --all`
            status = f"error: {type(error).__name__}: {error}"
            held = total = 0
        else:
            status = "ok"
            held = sum(claim.verdict is Verdict.HOLDS for claim in outcome.claims)
            total = len(outcome.claims)
    return RunRecord(lecture, exercise.number, status, watch.elapsed, held, total)


def runSelection(selection: Selection, options: RunOptions) -> list[RunRecord]:
    """Run each chosen exercise with a progress line; Ctrl-C stops workers and exits 130."""
    records: list[RunRecord] = []
    count = len(selection.chosen)
    try:
        for index, (lecture, exercise) in enumerate(selection.chosen, start=1):
            if count > 1:
                print(
                    f"\n[{index}/{count}] lecture {lecture}, exercise {exercise.number}: {exercise.title}", flush=True
                )
            record = runOne(lecture, exercise, options)
            records.append(record)
            if count > 1:
                print(f"[{index}/{count}] {record.status} in {record.seconds:.1f} s", flush=True)
    except KeyboardInterrupt:
        stopChildren()
        raise Exit("invoke run: interrupted", code=130) from None
    return records


def formatRunSummary(records: Sequence[RunRecord], missing: Sequence[int]) -> str:
    """The table ``run --all`` ends with: one row per exercise, then the lectures not written yet."""
    rows = [
        (f"{r.lecture}.{r.exercise}", r.status, f"{r.seconds:.1f}", f"{r.claimsHeld}/{r.claimsTotal}") for r in records
    ]
    rows.extend((f"{n}.-", "not implemented yet", "", "") for n in missing)
    return formatTable(("ex", "status", "seconds", "claims held"), rows, title="\nSummary")


def run(
    c: Context,  # noqa: ARG001 - invoke passes the context to every task
    lecture: str = "",
    ex: str = "",
    all: bool = False,
    quick: bool = False,
    seed: str = "",
    executor: str = "",
    start_method: str = "",
) -> None:
    """Run one exercise (--lecture N --ex M) or many (--all), printing each report."""
    selection = select(lecture, ex, all)
    options = parseOptions(seed, quick, executor, start_method)
    records = runSelection(selection, options)
    if len(records) > 1 or selection.missing:
        print(formatRunSummary(records, selection.missing))
    if any(r.status != "ok" for r in records):
        raise Exit(code=1)


def listExercises(c: Context) -> None:  # noqa: ARG001 - invoke passes the context to every task
    """List the lectures and their exercises."""
    rows: list[tuple[str, str]] = []
    for lecture in LECTURES:
        module = loadLecture(lecture)
        if module is None:
            rows.append((f"{lecture}", "(not implemented yet)"))
            continue
        rows.extend((f"{lecture}.{e.number}", e.title) for e in lectureExercises(module))
    print(formatTable(("ex", "title"), rows))


# ============================================================================
# Quality gates
# ============================================================================


def runTools(c: Context, commands: Sequence[str]) -> None:
    """Run each command to the end, then fail (exit 1) if any of them failed."""
    failed = [command for command in commands if not c.run(command, warn=True, pty=False).ok]
    if failed:
        raise Exit("failed: " + "; ".join(failed), code=1)


def check(c: Context) -> None:
    """ruff check, ruff format --check, mypy --strict on every file."""
    runTools(
        c,
        [
            f"{PYTHON} -m ruff check .",
            f"{PYTHON} -m ruff format --check .",
            f"{PYTHON} -m mypy --strict",
        ],
    )


def runTests(c: Context, args: str = "") -> None:
    """Run the pytest suite (pass extra pytest arguments with --args)."""
    runTools(c, [f"{PYTHON} -m pytest {args}".strip()])


def fmt(c: Context) -> None:
    """Format with ruff and apply ruff's safe fixes."""
    runTools(c, [f"{PYTHON} -m ruff format .", f"{PYTHON} -m ruff check --fix ."])


# invoke's @task is untyped; constructing Task objects keeps this module mypy --strict clean.
run_task: Task[TaskBody] = Task(
    run,
    name="run",
    help={
        "lecture": f"lecture number: {', '.join(map(str, LECTURES))}",
        "ex": "exercise number within the lecture",
        "all": "run every exercise (of --lecture, or of every lecture)",
        "quick": "small sizes: about 2 s per exercise",
        "seed": f"random seed, an integer >= 0 (default {DEFAULT_SEED})",
        "executor": f"CPU-tier executor: {', '.join(EXECUTOR_KINDS)} (default process)",
        "start-method": f"process start method: {', '.join(START_METHODS)} (default: the platform's)",
    },
)
list_task: Task[TaskBody] = Task(listExercises, name="list")
check_task: Task[TaskBody] = Task(check, name="check")
test_task: Task[TaskBody] = Task(runTests, name="test", help={"args": "extra arguments for pytest, e.g. '-k l31 -x'"})
fmt_task: Task[TaskBody] = Task(fmt, name="fmt")
