"""Invoke tasks: run the exercises, list them, check, test, format.

    invoke run --lecture 31 --ex 3      one exercise (spec parameters)
    invoke run --all --quick            every exercise, small sizes, then a summary
    invoke list                         lectures and exercises
    invoke check test                   ruff, mypy --strict, then pytest
    invoke verify                       which of the lectures' claims hold here
    invoke bench --quick                every architecture against its ideal bound

Tasks are thin: they validate their options, call typed functions, and exit with
status 2 and one line naming the bad value. invoke takes an option's type from its
default, so every option that takes a value is a string here and is parsed below.
"""

from __future__ import annotations

import importlib
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, cast

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task

from lab.bench import BRIDGE, Benchmark, BenchOptions, BenchReport, formatBench
from lab.claims import Verdict, formatClaims
from lab.faults import FAULTS, Fault, idleKill, inject, problems, recoveryCheck
from lab.registry import LECTURES, claimsFor, labFor
from lab.verify import (
    VerifyRecord,
    agreements,
    formatAgreements,
    formatVerify,
    machineFacts,
    verifyAll,
    writeJson,
)
from shared import (
    DEFAULT_SEED,
    EXECUTOR_KINDS,
    START_METHODS,
    ConfigError,
    ExecutorKind,
    Exercise,
    RunOptions,
    Stopwatch,
    banner,
    daskSchedulerAddress,
    formatTable,
    guardedMain,
    isOutputError,
    prose,
    runExercise,
    silent,
)

TaskBody = Callable[..., None]
PYTHON: Final = sys.executable


# ============================================================================
# Lecture modules
# ============================================================================


def lectureExercises(lecture: int) -> tuple[Exercise, ...]:
    """The registry of lecture module ``lNN``."""
    return cast(tuple[Exercise, ...], importlib.import_module(f"l{lecture}").EXERCISES)


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


def parseOptions(seed: str, quick: bool, executor: str, startMethod: str, address: str = "") -> RunOptions:
    """``--seed``, ``--quick``, ``--executor``, ``--start-method`` (and Dask's ``--address``) as ``RunOptions``."""
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
    if address:
        if kind != "dask":
            raise badOption(f"--address {address} needs --executor dask, got --executor {kind}")
        try:
            daskSchedulerAddress(address)
        except ConfigError as error:
            raise badOption(str(error)) from None
    return RunOptions(
        seed=seedValue,
        quick=quick,
        executor=kind,
        startMethod=startMethod or None,
    )


Chosen = list[tuple[int, Exercise]]


def select(lecture: str, ex: str, runAll: bool) -> Chosen:
    """Resolve ``--lecture``/``--ex``/``--all`` into the (lecture, exercise) pairs to run."""
    lectures = (parseLecture(lecture),) if lecture else LECTURES
    if not runAll and not (lecture and ex):
        raise badOption("give --lecture N --ex M, --lecture N --all, or --all")
    if ex and runAll:
        raise badOption("--ex and --all exclude each other")
    chosen: Chosen = []
    for number in lectures:
        exercises = lectureExercises(number)
        if ex:
            chosen.append((number, parseExercise(ex, number, exercises)))
        else:
            chosen.extend((number, exercise) for exercise in exercises)
    return chosen


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


def guarded(task: str, body: Callable[[], None]) -> None:
    """Run a task's body as a lecture file runs its exercises: Ctrl-C, SIGTERM, a closed
    pipe or a lost worker end in one line and the same exit status (``shared.guardedMain``)."""
    status = guardedMain(f"invoke {task}", body)
    if status:
        raise Exit(code=status)


def runOne(lecture: int, exercise: Exercise, options: RunOptions) -> RunRecord:
    """Run one exercise in this process; an exception is recorded, not raised (Ctrl-C excepted)."""
    with Stopwatch() as watch:
        try:
            result = runExercise(exercise, options)
            claims = claimsFor(lecture, exercise.number, result)
        except Exception as error:
            if isOutputError(error):
                raise
            status = f"error: {type(error).__name__}: {error}"
            print(f"invoke run: {lecture}.{exercise.number}: {error}", file=sys.stderr)
            held = total = 0
        else:
            status = "ok"
            held = sum(claim.verdict is Verdict.HOLDS for claim in claims)
            total = len(claims)
            if claims:
                print("\nWhat this run says about the lecture's claims (invoke verify runs the studies too):")
                print(formatClaims(claims))
    return RunRecord(lecture, exercise.number, status, watch.elapsed, held, total)


def runSelection(chosen: Chosen, options: RunOptions) -> list[RunRecord]:
    """Run each chosen exercise with a progress line; Ctrl-C stops workers and exits 130."""
    records: list[RunRecord] = []
    count = len(chosen)

    def body() -> None:
        for index, (lecture, exercise) in enumerate(chosen, start=1):
            if count > 1:
                print(
                    f"\n[{index}/{count}] lecture {lecture}, exercise {exercise.number}: {exercise.title}", flush=True
                )
            record = runOne(lecture, exercise, options)
            records.append(record)
            if count > 1:
                print(f"[{index}/{count}] {record.status} in {record.seconds:.1f} s", flush=True)

    guarded("run", body)
    return records


def formatRunSummary(records: Sequence[RunRecord]) -> str:
    """The table ``run --all`` ends with: one row per exercise."""
    rows = [
        (f"{r.lecture}.{r.exercise}", r.status, f"{r.seconds:.1f}", f"{r.claimsHeld}/{r.claimsTotal}") for r in records
    ]
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
    address: str = "",
) -> None:
    """Run one exercise (--lecture N --ex M) or many (--all), printing each report."""
    chosen = select(lecture, ex, all)
    options = parseOptions(seed, quick, executor, start_method, address)
    records = runSelection(chosen, options)
    if len(records) > 1:
        print(formatRunSummary(records))
    if any(r.status != "ok" for r in records):
        raise Exit(code=1)


def listExercises(c: Context) -> None:  # noqa: ARG001 - invoke passes the context to every task
    """List the lectures and their exercises."""
    rows: list[tuple[str, str]] = []
    for lecture in LECTURES:
        rows.extend((f"{lecture}.{e.number}", e.title) for e in lectureExercises(lecture))
    print(formatTable(("ex", "title"), rows))


# ============================================================================
# verify: every claim of every lecture, judged on this machine
# ============================================================================


def parseCount(flag: str, text: str, default: int, high: int) -> int:
    """A whole-number option from 1 to ``high`` (``default`` when not given)."""
    try:
        value = int(text) if text else default
    except ValueError:
        raise badOption(f"{flag} must be an integer from 1 to {high}, got {text!r}") from None
    if not 1 <= value <= high:
        raise badOption(f"{flag} must be an integer from 1 to {high}, got {value}")
    return value


def checkOutput(flag: str, path: str) -> None:
    """Refuse an output path that cannot be written, before any work starts."""
    if not path:
        return
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise badOption(f"{flag} {path}: is a folder, not a file")
    if not folder.is_dir():
        raise badOption(f"{flag} {path}: the folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise badOption(f"{flag} {path}: not writable")


def verify(
    c: Context,  # noqa: ARG001 - invoke passes the context to every task
    lecture: str = "",
    full: bool = False,
    seed: str = "",
    out: str = "",
    json_: str = "",
    repeat: str = "",
) -> None:
    """Run every exercise and judge each claim of the lectures; exit 1 on a structural failure."""
    chosen = select(lecture, "", runAll=True)
    options = parseOptions(seed, not full, "", "")
    runs = parseCount("--repeat", repeat, 1, 20)
    checkOutput("--out", out)
    checkOutput("--json", json_)
    allRuns: list[list[VerifyRecord]] = []

    def body() -> None:
        for index in range(runs):
            if runs > 1:
                print(f"== verify run {index + 1} of {runs} ==", flush=True)
            allRuns.append(verifyAll(chosen, options))

    guarded("verify", body)
    records = allRuns[-1]
    print(formatVerify(records))
    found = agreements(allRuns)
    if runs > 1:
        print(banner(f"Agreement over {runs} runs"))
        print(formatAgreements(found, runs))
    if out:
        facts = ", ".join(f"{key} {value}" for key, value in machineFacts(options.seed).items())
        header = f"# invoke verify\n\n{facts}; {'quick' if options.quick else 'full'} configs\n"
        Path(out).write_text(header + formatVerify(records, markdown=True) + "\n", encoding="utf-8")
    if json_:
        payload = {"machine": machineFacts(options.seed), "quick": options.quick, "exercises": records}
        writeJson(json_, payload | ({"agreement": found} if runs > 1 else {}))
    if any(r.error or r.structuralFailures for run in allRuns for r in run):
        raise Exit("invoke verify: a structural claim failed or an exercise raised", code=1)


# ============================================================================
# bench: medians of repeats against each architecture's ideal bound
# ============================================================================


def lectureBenchmarks(lecture: str) -> list[Benchmark]:
    """Every lecture's benchmarks (or one lecture's), then the bridge overhead."""
    lectures = (parseLecture(lecture),) if lecture else LECTURES
    return [*(benchmark for number in lectures for benchmark in labFor(number).benchmarks), BRIDGE]


def bench(
    c: Context,  # noqa: ARG001 - invoke passes the context to every task
    lecture: str = "",
    quick: bool = False,
    repeats: str = "",
    seed: str = "",
    start_method: str = "",
    json_: str = "",
) -> None:
    """Benchmark every architecture against its ideal bound (median of repeats), with sweeps."""
    runOptions = parseOptions(seed, quick, "", start_method)
    count = parseCount("--repeats", repeats, 3 if quick else 5, 100)
    checkOutput("--json", json_)
    options = BenchOptions(seed=runOptions.seed, quick=quick, repeats=count, startMethod=runOptions.startMethod)
    reports: list[BenchReport] = []
    benchmarks = lectureBenchmarks(lecture)

    def body() -> None:
        for index, benchmark in enumerate(benchmarks, start=1):
            print(f"[{index}/{len(benchmarks)}] {benchmark.key} {benchmark.title} ...", flush=True)
            with Stopwatch() as watch:
                report = benchmark.run(options, print)
            reports.append(report)
            print(formatBench(report))
            print(f"[{index}/{len(benchmarks)}] done in {watch.elapsed:.1f} s\n", flush=True)

    guarded("bench", body)
    below = [f"{r.key} {row.label} ({row.efficiency:.0%})" for r in reports for row in r.belowTarget]
    print(prose(f"Below the 85% efficiency target: {', '.join(below) if below else 'none'}"))
    beyond = [f"{r.key} {line.split(':')[0]}" for r in reports for line in r.beyondIdeal]
    print(
        prose(f"Faster than their own bound (a calibration to check, not a target met): {', '.join(beyond) or 'none'}")
    )
    if json_:
        payload = {"machine": machineFacts(options.seed), "options": options, "reports": reports}
        writeJson(json_, payload)


# ============================================================================
# Portability: Ctrl-C on every exercise; every start method and executor
# ============================================================================


def parseSeconds(flag: str, text: str) -> float:
    """A delay in seconds from 0 to 60."""
    try:
        value = float(text)
    except ValueError:
        raise badOption(f"{flag} must be seconds from 0 to 60, got {text!r}") from None
    if not 0.0 <= value <= 60.0:
        raise badOption(f"{flag} must be seconds from 0 to 60, got {value:g}")
    return value


def ctrlc(
    c: Context,  # noqa: ARG001 - invoke passes the context to every task
    lecture: str = "",
    after: str = "1.0",
    start_method: str = "",
) -> None:
    """Press Ctrl-C in every exercise (spec parameters) and time how it stops; exit 1 on any failure."""
    afterSeconds = parseSeconds("--after", after)
    options = parseOptions("", False, "", start_method)
    extra = ["--start-method", options.startMethod] if options.startMethod else []
    rows: list[tuple[str, str, str, str]] = []
    failed = False
    for lectureNo, exercise in select(lecture, "", runAll=True):
        script = f"l{lectureNo}.py"
        outcome = inject([PYTHON, script, "--ex", str(exercise.number), *extra], "ctrl-c", afterSeconds)
        wrong = problems(outcome, script, maxSeconds=2.0)
        failed |= bool(wrong)
        stopped = "ended before Ctrl-C" if outcome.finishedFirst else f"{outcome.seconds:.2f} s"
        rows.append((f"{lectureNo}.{exercise.number}", str(outcome.status), stopped, "; ".join(wrong) or "ok"))
        print(f"{lectureNo}.{exercise.number}: status {outcome.status}, {stopped}", flush=True)
    print(formatTable(("ex", "status", "SIGINT to exit", "problems"), rows, title="\nCtrl-C"))
    if failed:
        raise Exit("invoke ctrlc: a run did not stop cleanly (status 130, one line, < 2 s, nothing left)", code=1)


def faults(
    c: Context,  # noqa: ARG001 - invoke passes the context to every task
    lecture: str = "",
    fault: str = "",
    start_method: str = "",
    after: str = "0.2",
    full: bool = False,
) -> None:
    """Deal every fault from outside to every exercise under every start method; exit 1 on any failure."""
    if fault and fault not in FAULTS:
        raise badOption(f"--fault must be one of {', '.join(FAULTS)}, got {fault!r}")
    if start_method and start_method not in START_METHODS:
        raise badOption(f"--start-method must be one of {', '.join(START_METHODS)}, got {start_method!r}")
    afterSeconds = parseSeconds("--after", after)
    chosen = select(lecture, "", runAll=True)
    methods = [start_method] if start_method else list(START_METHODS)
    kinds = [fault] if fault else list(FAULTS)
    rows: list[tuple[str, ...]] = []
    for method in methods:
        for lectureNo, exercise in chosen:
            for kind in kinds:
                row = faultRow(lectureNo, exercise.number, method, kind, afterSeconds, quick=not full)
                rows.append(row)
                print("  ".join(row), flush=True)
    headers = ("ex", "start", "fault", "status", "to exit", "traceback", "left", "verdict")
    print(formatTable(headers, rows, title=f"\nFaults from outside, Python {platform.python_version()}"))
    failures = sum(not row[-1].startswith(("ok", "n/a")) for row in rows)
    if failures:
        raise Exit(f"invoke faults: {failures} case(s) did not end cleanly", code=1)


def faultRow(lecture: int, number: int, method: str, fault: Fault, after: float, *, quick: bool) -> tuple[str, ...]:
    """One case of ``invoke faults``: run, deal the fault, judge how it ended."""
    script = f"l{lecture}.py"
    args = [PYTHON, script, "--ex", str(number), "--start-method", method, *(["--quick"] if quick else [])]
    run = inject(args, fault, after)
    recovers = recoveryCheck(lecture, number)
    wrong = problems(run, script, recovers)
    if run.finishedFirst or run.note:
        verdict = f"n/a: {run.note or 'ended before the fault'}" + (f"; {'; '.join(wrong)}" if wrong else "")
    elif idleKill(run) and recovers is None:
        verdict = "; ".join(wrong) or "ok: the killed worker held no task"
    else:
        verdict = "; ".join(wrong) or "ok"
    seconds = "" if run.finishedFirst or run.note else f"{run.seconds:.2f} s"
    return (
        f"{lecture}.{number}",
        method,
        fault,
        str(run.status),
        seconds,
        "yes" if run.traceback else "no",
        str(len(run.leftover)),
        verdict,
    )


def matrix(
    c: Context,  # noqa: ARG001 - invoke passes the context to every task
    lecture: str = "",
    dask: bool = False,
) -> None:
    """Every exercise (quick) under every start method and executor: pass = no error, structural claims hold."""
    chosen = select(lecture, "", runAll=True)
    kinds: list[ExecutorKind] = ["process", "thread", "inline"]
    if dask:
        kinds.append("dask")
    rows: list[tuple[str, str, str, str]] = []
    failures = 0
    for startMethod in START_METHODS:
        for kind in kinds:
            if kind != "process" and startMethod != START_METHODS[0]:
                continue  # only process pools have a start method
            options = RunOptions(quick=True, executor=kind, startMethod=startMethod)
            with Stopwatch() as watch:
                records = verifyAll(chosen, options, silent)
            bad = [f"{r.lecture}.{r.exercise}" for r in records if r.error or r.structuralFailures]
            failures += len(bad)
            label = startMethod if kind == "process" else "-"
            rows.append((kind, label, "pass" if not bad else "FAIL " + " ".join(bad), f"{watch.elapsed:.1f}"))
            print(f"{kind} {label}: {rows[-1][2]} ({watch.elapsed:.1f} s)", flush=True)
    print(
        formatTable(
            ("executor", "start method", "result", "seconds"), rows, title=f"\nPython {platform.python_version()}"
        )
    )
    if failures:
        raise Exit(f"invoke matrix: {failures} exercise run(s) failed", code=1)


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


def findInterpreter(version: str) -> str | None:
    """A CPython X.Y executable on this machine: pyenv's versions first, then PATH; None if absent."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(root.glob(f"versions/{version}.*/bin/python{version}"), reverse=True)
    onPath = shutil.which(f"python{version}")
    for candidate in [*map(str, candidates), *([onPath] if onPath else [])]:
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    return None


def runTests(c: Context, args: str = "", python: str = "") -> None:
    """Run the pytest suite; --python X.Y runs it under another installed CPython (via uv)."""
    if not python:
        runTools(c, [f"{PYTHON} -m pytest {args}".strip()])
        return
    if not re.fullmatch(r"3\.\d{1,2}", python) or int(python.split(".")[1]) < 11:
        raise badOption(f"--python must be a CPython version 3.11 or newer like 3.12, got {python!r}")
    interpreter = findInterpreter(python)
    if interpreter is None:
        raise badOption(f"--python {python}: no CPython {python} found (looked in pyenv's versions and on PATH)")
    if shutil.which("uv") is None:
        raise badOption("--python needs uv on PATH (python3 -m pip install uv)")
    # A separate environment per interpreter, so the default .venv is never rebuilt.
    venv = str(Path(f".venv-{python}").resolve())
    command = f"uv run --python {interpreter} python -m pytest {args}".strip()
    print(f"running the suite under {interpreter}", flush=True)
    if not c.run(command, warn=True, pty=False, env={"UV_PROJECT_ENVIRONMENT": venv, "VIRTUAL_ENV": venv}).ok:
        raise Exit(f"failed: the suite under Python {python}", code=1)


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
        "address": "with --executor dask: an existing scheduler, e.g. tcp://10.0.0.5:8786 (default: a local cluster)",
    },
)
list_task: Task[TaskBody] = Task(listExercises, name="list")
check_task: Task[TaskBody] = Task(check, name="check")
test_task: Task[TaskBody] = Task(
    runTests,
    name="test",
    help={
        "args": "extra arguments for pytest, e.g. '-k l31 -x'",
        "python": "run under another installed CPython, e.g. 3.12 or 3.13 (uses uv and .venv-X.Y)",
    },
)
fmt_task: Task[TaskBody] = Task(fmt, name="fmt")
verify_task: Task[TaskBody] = Task(
    verify,
    name="verify",
    help={
        "lecture": "only this lecture (default: all four)",
        "full": "the spec's parameters instead of the quick configs (slow)",
        "seed": f"random seed, an integer >= 0 (default {DEFAULT_SEED})",
        "out": "also write the table as Markdown to this file",
        "json": "also write the raw figures, interpreter, platform, CPU count and seed as JSON",
        "repeat": "run the whole set N times (1 to 20) and say, per claim, how many runs agreed",
    },
)
ctrlc_task: Task[TaskBody] = Task(
    ctrlc,
    name="ctrlc",
    help={
        "lecture": "only this lecture (default: all four)",
        "after": "seconds after the first line of output to press Ctrl-C (default 1.0)",
        "start-method": f"process start method: {', '.join(START_METHODS)}",
    },
)
faults_task: Task[TaskBody] = Task(
    faults,
    name="faults",
    help={
        "lecture": "only this lecture (default: all four)",
        "fault": f"only this fault: {', '.join(FAULTS)}",
        "start-method": f"only this start method: {', '.join(START_METHODS)}",
        "after": "seconds after the first line of output to deal the fault (default 0.2)",
        "full": "the spec's parameters instead of --quick",
    },
)
matrix_task: Task[TaskBody] = Task(
    matrix,
    name="matrix",
    help={"lecture": "only this lecture (default: all four)", "dask": "also run every exercise on a Dask cluster"},
)
bench_task: Task[TaskBody] = Task(
    bench,
    name="bench",
    help={
        "lecture": "only this lecture's benchmarks (the bridge overhead always runs)",
        "quick": "smaller sizes and 3 repeats: about a minute on 2 cores",
        "repeats": "repeats per measurement, 1 to 100 (default 5; 3 with --quick)",
        "seed": f"random seed, an integer >= 0 (default {DEFAULT_SEED})",
        "start-method": f"process start method: {', '.join(START_METHODS)}",
        "json": "also write the figures as JSON",
    },
)
