"""Faults from outside: SIGTERM, a worker killed, a closed pipe, a full disk: one line, nothing left."""

from __future__ import annotations

import errno
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from lab.faults import inject, problems, recoveryCheck, tempLeftovers
from shared import ConfigError, StartMethod, TaskExecutor, WorkerLostError, executorScope, guardedMain

ROOT = Path(__file__).resolve().parent.parent


def raising(error: BaseException) -> Callable[[], None]:
    def body() -> None:
        raise error

    return body


@pytest.mark.parametrize(
    ("error", "status", "stderr"),
    [
        (ConfigError("size must be >= 1, got 0"), 2, "prog: error: size must be >= 1, got 0\n"),
        (KeyboardInterrupt(), 130, "prog: interrupted\n"),
        (BrokenPipeError(errno.EPIPE, "Broken pipe"), 141, ""),
        (
            OSError(errno.ENOSPC, "No space left on device"),
            1,
            "prog: cannot write the report: No space left on device\n",
        ),
        (WorkerLostError("during stage normalize", how="SIGKILL"), 1, ""),
    ],
)
def test_each_known_fault_is_one_line_and_its_status(
    error: BaseException, status: int, stderr: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shared._silenceStdout", lambda: None)  # pytest's captured stdout has no descriptor to replace
    assert guardedMain("prog", raising(error)) == status
    err = capsys.readouterr().err
    if isinstance(error, WorkerLostError):
        stderr = "prog: a worker process died (SIGKILL) during stage normalize; no result\n"
    assert err == stderr


def test_an_unknown_error_is_not_swallowed() -> None:
    with pytest.raises(ZeroDivisionError):
        guardedMain("prog", raising(ZeroDivisionError("boom")))


def test_a_broken_pool_inside_an_exception_group_is_a_lost_worker(capsys: pytest.CaptureFixture[str]) -> None:
    group = ExceptionGroup("tasks", [ValueError("other"), BrokenProcessPool("terminated abruptly")])
    assert guardedMain("prog", raising(group)) == 1
    assert capsys.readouterr().err == "prog: a worker process died (how is unknown); no result\n"


def killSelf() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.parametrize("startMethod", ["fork", "spawn"])
def test_the_scope_names_how_a_killed_worker_died(startMethod: StartMethod) -> None:
    with pytest.raises(WorkerLostError) as raised, executorScope("process", 2, startMethod) as pool:
        pool.submit(killSelf).result(timeout=30)
    assert raised.value.how == "SIGKILL"
    assert str(raised.value) == "a worker process died (SIGKILL); no result"
    assert multiprocessing.active_children() == []


# ------------------------------------------------------- real command lines


@pytest.mark.parametrize("startMethod", ["fork", "spawn"])
def test_sigterm_stops_a_real_run_like_ctrl_c(startMethod: str) -> None:
    args = [sys.executable, "l29.py", "--ex", "2", "--start-method", startMethod]
    outcome = inject(args, "sigterm", 0.5, cwd=str(ROOT))
    assert not outcome.finishedFirst
    assert (outcome.status, outcome.stderrLines) == (143, ["l29.py: terminated (SIGTERM)"])
    assert problems(outcome, "l29.py", maxSeconds=2.0) == []


@pytest.mark.parametrize("startMethod", ["fork", "spawn"])
@pytest.mark.parametrize(("script", "exercise", "size"), [("l29.py", "2", []), ("l36.py", "1", ["--quick"])])
def test_a_worker_killed_from_outside_ends_the_run_in_one_line(
    script: str, exercise: str, size: list[str], startMethod: str
) -> None:
    args = [sys.executable, script, "--ex", exercise, *size, "--start-method", startMethod]
    outcome = inject(args, "sigkill-worker", 0.3, cwd=str(ROOT))
    assert (outcome.finishedFirst, outcome.note) == (False, "")
    assert outcome.status == 1
    assert outcome.stderrLines[0].startswith(f"{script}: a worker process died (SIGKILL)")
    assert problems(outcome, script) == []


def shell(command: str) -> subprocess.CompletedProcess[str]:
    script = ["/bin/bash", "-c", f"set -o pipefail; {command}"]
    return subprocess.run(script, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


def test_a_closed_pipe_ends_the_run_quietly() -> None:
    done = shell(f"{sys.executable} l29.py --ex 1 --quick --executor inline | head -1")
    assert (done.returncode, done.stderr, done.stdout) == (141, "", "\n")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_is_one_line_and_status_1() -> None:
    done = shell(f"{sys.executable} l29.py --ex 1 --quick --executor inline > /dev/full")
    assert (done.returncode, done.stderr) == (1, "l29.py: cannot write the report: No space left on device\n")


# One long-running exercise per lecture, interrupted half a second after its first line, and once
# through invoke. (`invoke ctrlc` and `invoke faults` deal every fault to every exercise.)
CTRL_C_CASES = [
    pytest.param(["l29.py", "--ex", "2"], "l29.py", id="l29-ex2"),
    pytest.param(["l31.py", "--ex", "3"], "l31.py", id="l31-ex3"),
    pytest.param(["l36.py", "--ex", "1"], "l36.py", id="l36-ex1"),
    pytest.param(["l37.py", "--ex", "4"], "l37.py", id="l37-ex4"),
    pytest.param(["-m", "invoke", "run", "--lecture", "36", "--ex", "1"], "invoke run", id="invoke-l36-ex1"),
]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
@pytest.mark.parametrize(("argv", "prog"), CTRL_C_CASES)
def test_ctrl_c_ends_in_2_s_with_status_130_one_line_and_nothing_left(argv: list[str], prog: str) -> None:
    outcome = inject([sys.executable, *argv], "ctrl-c", 0.5, cwd=str(ROOT))
    assert not outcome.finishedFirst
    assert problems(outcome, prog, maxSeconds=2.0) == []


def test_leftovers_are_what_the_run_left_in_its_own_temporary_folder(tmp_path: Path) -> None:
    (tmp_path / "pymp-abc123").mkdir()
    (tmp_path / "course-dask-x").mkdir()
    assert tempLeftovers(tmp_path) == ["course-dask-x", "pymp-abc123"]


def test_a_closed_pipe_after_the_last_line_is_a_run_that_ended_first() -> None:
    # Everything fit in the pipe before the reader went away: nothing was lost, status 0.
    outcome = inject([sys.executable, "-c", "print('one line'); import time; time.sleep(0.3)"], "closed-pipe", 0.0)
    assert (outcome.status, outcome.finishedFirst, problems(outcome, "-c")) == (0, True, [])


def dieAfter(seconds: float) -> None:
    time.sleep(seconds)
    os.kill(os.getpid(), signal.SIGKILL)


def breakWithCancelledQueued(pool: TaskExecutor, cancelled: list[Future[int]]) -> None:
    first = pool.submit(dieAfter, 0.3)
    queued = [pool.submit(abs, -n) for n in range(4)]  # two wait in the call queue, two behind them
    cancelled += queued[2:]
    assert [future.cancel() for future in cancelled] == [True, True]
    first.result(timeout=30)


@pytest.mark.parametrize("startMethod", ["fork", "spawn"])
def test_a_pool_that_breaks_with_cancelled_futures_queued_still_ends_cleanly(startMethod: StartMethod) -> None:
    # 3.11's manager thread failed every pending future, cancelled ones too, and died of
    # InvalidStateError (a thread exception: this suite fails on the warning it raises).
    cancelled: list[Future[int]] = []
    with pytest.raises(WorkerLostError) as raised, executorScope("process", 1, startMethod) as pool:
        breakWithCancelledQueued(pool, cancelled)
    assert raised.value.how == "SIGKILL"
    assert [future.cancelled() for future in cancelled] == [True, True]


def test_only_an_exercise_about_recovery_has_a_counts_check() -> None:
    check = recoveryCheck(36, 4)
    assert check is not None
    assert check.__name__ == "reportCountsAddUp"
    assert [recoveryCheck(36, 1), recoveryCheck(29, 4)] == [None, None]
