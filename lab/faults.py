"""Faults from outside, dealt to a real run: Ctrl-C, SIGTERM, a worker killed, a reader gone.

    start the command in its own session -> wait for its first line (+ a delay)
        -> deal the fault -> wait for the exit -> look for what is left behind
           (processes of the session, temporary folders of multiprocessing and Dask)

``invoke ctrlc`` and ``invoke faults`` run it over the exercises; the tests run it
on a few. Linux only (it reads /proc).
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

from shared import Stopwatch

Fault = Literal["ctrl-c", "sigterm", "sigkill-worker", "closed-pipe"]
FAULTS: Final[tuple[Fault, ...]] = get_args(Fault)


@dataclass(frozen=True, slots=True)
class Process:
    """One live process of a session: its id, its parent's, its command line."""

    pid: int
    parent: int
    command: str
    state: str = "S"  # R running, S sleeping, ... (/proc/PID/stat)


def sessionProcesses(sid: int) -> list[Process]:
    """Live (non-zombie) processes of session ``sid``, read from /proc."""
    found: list[Process] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            found.append(Process(int(entry.name), int(fields[1]), command, fields[0]))
    return found


def poolWorkers(sid: int) -> list[Process]:
    """The session's pool workers: every process but the leader, the resource tracker and a forkserver."""
    helpers = ("resource_tracker", "forkserver import main")
    return sorted(
        (
            p
            for p in sessionProcesses(sid)
            if p.pid != sid and not (p.parent == sid and any(helper in p.command for helper in helpers))
        ),
        key=lambda p: p.pid,
    )


def _victim(process: subprocess.Popen[str], waitSeconds: float) -> int | None:
    """A pool worker to kill: one on a CPU (mid-task) if one shows within 0.3 s, else any."""
    start = time.monotonic()
    while process.poll() is None and time.monotonic() - start < waitSeconds:
        workers = poolWorkers(process.pid)
        running = [w.pid for w in workers if w.state == "R"]
        if running or (workers and time.monotonic() - start > 0.3):
            return (running or [w.pid for w in workers])[-1]
        time.sleep(0.01)
    return None


def tempLeftovers(root: Path) -> list[str]:
    """What a run left in its own temporary folder (multiprocessing's pymp-*, Dask's scratch)."""
    return sorted(str(path.relative_to(root)) for path in root.iterdir())


@dataclass(frozen=True, slots=True)
class FaultRun:
    """How a run took a fault: status, what it printed, seconds from the fault to the exit, what it left."""

    fault: Fault
    status: int | None
    stdout: str
    stderr: str
    seconds: float
    leftover: tuple[str, ...]
    finishedFirst: bool
    note: str = ""

    @property
    def traceback(self) -> bool:
        """Whether a Python traceback reached stderr."""
        return "Traceback (most recent call last)" in self.stderr

    @property
    def stderrLines(self) -> list[str]:
        """stderr, line by line, without blank lines."""
        return [line for line in self.stderr.splitlines() if line.strip()]


def _deal(process: subprocess.Popen[str], fault: Fault, waitSeconds: float) -> str:
    """Deal ``fault`` to a running process; return a note when it could not be dealt."""
    if fault == "ctrl-c":
        os.killpg(process.pid, signal.SIGINT)  # as a terminal sends it: to the whole group
    elif fault == "sigterm":
        os.kill(process.pid, signal.SIGTERM)  # as timeout(1) or a container stop: to the main process
    elif fault == "closed-pipe" and process.stdout is not None:
        process.stdout.close()
    elif fault == "sigkill-worker":
        victim = _victim(process, waitSeconds)
        if victim is None:
            return "no worker process to kill"
        os.kill(victim, signal.SIGKILL)  # as the OOM killer or kill -9
    return ""


def inject(args: Sequence[str], fault: Fault, afterSeconds: float, *, cwd: str | None = None) -> FaultRun:
    """Start ``args`` in its own session, deal ``fault`` ``afterSeconds`` after its first line, watch it end.

    A run that ends before the fault, or was already exiting when it came (killed by
    the signal itself with nothing said: main had returned), is ``finishedFirst``.
    Leftovers are looked for during 3 s after the exit: the session's processes, and
    anything in the temporary folder the run was given (TMPDIR) so that other runs on
    the machine are never counted against it.
    """
    scratch = Path(tempfile.mkdtemp(prefix="course-faults-"))
    try:
        return _watch(args, fault, afterSeconds, cwd, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _watch(args: Sequence[str], fault: Fault, afterSeconds: float, cwd: str | None, scratch: Path) -> FaultRun:
    # Unbuffered: the first line must arrive as it is printed, not at the first flush.
    environment = {**os.environ, "TMPDIR": str(scratch), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(  # noqa: S603 - the caller's own command line, no shell
        list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=cwd,
        env=environment,
    )
    try:
        first = process.stdout.readline() if process.stdout is not None else ""
        time.sleep(afterSeconds)
        if process.poll() is not None:
            stdout, stderr = process.communicate(timeout=30)
            return FaultRun(fault, process.returncode, first + stdout, stderr, 0.0, (), finishedFirst=True)
        note = _deal(process, fault, waitSeconds=5.0)
        with Stopwatch() as watch:
            stdout, stderr = _finish(process, fault)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    # Ended on its own, with nothing said: killed by the signal itself after main had
    # returned (the interpreter restores SIG_DFL as it finalises), or done writing before
    # its reader went away.
    exiting = not stderr.strip() and (
        process.returncode in (-signal.SIGINT, -signal.SIGTERM) or (fault == "closed-pipe" and process.returncode == 0)
    )
    deadline = time.monotonic() + 3.0
    while (left := sessionProcesses(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    leftover = (*(f"{p.pid} {p.command[:60]}" for p in left), *tempLeftovers(scratch))
    return FaultRun(fault, process.returncode, first + stdout, stderr, watch.elapsed, leftover, exiting, note)


def _finish(process: subprocess.Popen[str], fault: Fault) -> tuple[str, str]:
    """Wait (bounded) for the exit; stdout is gone after a closed pipe."""
    if fault == "closed-pipe":
        process.wait(timeout=120)
        if process.stderr is None:
            return "", ""
        with process.stderr:
            return "", process.stderr.read()
    return process.communicate(timeout=120)


# ============================================================================
# What a clean end looks like
# ============================================================================

EXPECTED_STATUS: Final[dict[Fault, int]] = {"ctrl-c": 130, "sigterm": 143, "sigkill-worker": 1, "closed-pipe": 141}
CountsCheck = Callable[[str], bool]

# Exercises about recovery: a killed worker must be survived, and their report's counts add up.
# By name, so that importing the harness does not import every lecture.
RECOVERING: Final = {(36, 4): "lab.lecture36:reportCountsAddUp"}


def recoveryCheck(lecture: int, exercise: int) -> CountsCheck | None:
    """The counts check of an exercise about recovery, or None for any other exercise."""
    where = RECOVERING.get((lecture, exercise))
    if where is None:
        return None
    module, _, name = where.partition(":")
    check: CountsCheck = getattr(importlib.import_module(module), name)
    return check


def expectedLines(fault: Fault, prog: str) -> Callable[[list[str]], bool]:
    """What stderr must say after ``fault``: exactly one line (nothing after a closed pipe)."""
    if fault == "ctrl-c":
        return lambda lines: lines == [f"{prog}: interrupted"]
    if fault == "sigterm":
        return lambda lines: lines == [f"{prog}: terminated (SIGTERM)"]
    if fault == "closed-pipe":
        return lambda lines: lines == []
    pattern = re.compile(rf"{re.escape(prog)}: (\S+: )?a worker process died \(SIGKILL\)")
    return lambda lines: len(lines) == 1 and pattern.match(lines[0]) is not None


def idleKill(run: FaultRun) -> bool:
    """A killed worker that held no task: the run finished its work, said nothing, exited 0."""
    return run.fault == "sigkill-worker" and run.status == 0 and not run.stderrLines


def problems(run: FaultRun, prog: str, recovers: CountsCheck | None = None, maxSeconds: float = 5.0) -> list[str]:
    """What went wrong with ``run``: empty when it ended as it should.

    ``recovers``: for an exercise about recovery, the check that its report's counts
    add up; a killed worker must then be survived (status 0), not reported.
    """
    found = [f"left {item}" for item in run.leftover]
    if run.traceback:
        found.append("a traceback")
    if run.finishedFirst or run.note:
        return found
    if run.fault == "sigkill-worker" and recovers is None and idleKill(run):
        return found
    if run.fault == "sigkill-worker" and recovers is not None:
        if run.status != 0:
            found.append(f"status {run.status}, not 0: the killed worker was not recovered")
        elif not recovers(run.stdout):
            found.append("the report's counts do not add up")
        return found
    if run.status != EXPECTED_STATUS[run.fault]:
        found.append(f"status {run.status}, not {EXPECTED_STATUS[run.fault]}")
    if not expectedLines(run.fault, prog)(run.stderrLines):
        found.append(f"stderr {run.stderrLines[-3:]!r}")
    if run.fault != "closed-pipe" and run.seconds > maxSeconds:
        found.append(f"{run.seconds:.1f} s to exit")
    return found
