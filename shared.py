"""What the lecture modules share: records, executors, randomness, measurement, reports, CLI.

Standard library only: copy this file next to one lecture file (``l36.py``, say)
and both run as they are, on CPython 3.11 or newer, under every start method.

    lecture runner --submit--> TaskExecutor (process | thread | inline | dask)
          |                        ^ executorScope: no worker outlives the scope
          +-- await runInExecutor --+  (the one bridge from an executor to asyncio)
    lectureMain -> guardedMain: Ctrl-C, SIGTERM, a lost worker, a closed pipe -> one line

- records: ``SensorReading``, ``FailureRecord``; validation: ``requireRange``, ``ConfigError``;
- executors: ``TaskExecutor``, ``InlineExecutor``, ``DaskExecutor``, ``makeExecutor``,
  ``executorScope``, ``warmUp``, ``runInExecutor``, ``waitFor``, ``WorkerLostError``;
- randomness: ``makeRng`` (reproducible from a seed and keys, in any process);
- measurement: ``Stopwatch``, ``percentile``, ``speedup``, ``parallelBound``, ``cpuCount``,
  ``linearFit``, ``coefficientOfVariation``; queues: ``OccupancyQueue``, ``timeWeightedMean``;
- reports: ``formatTable``, ``prose``, ``bar``, ``banner``, ``plural``;
- the CLI: ``Exercise``, ``RunOptions``, ``lectureMain``, ``guardedMain``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import importlib
import itertools
import math
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import BrokenExecutor, Future, InvalidStateError, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from random import Random
from types import ModuleType
from typing import Any, Final, Literal, NoReturn, ParamSpec, Protocol, TypeGuard, TypeVar, cast, get_args

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

DEFAULT_SEED: Final = 42


class ConfigError(ValueError):
    """A parameter outside its allowed range; the message names the value and the range."""


# ============================================================================
# Records and validation
# ============================================================================


@dataclass(frozen=True, slots=True)
class SensorReading:
    """One reading from one sensor: the record that flows through most pipelines."""

    sensorId: int
    seq: int
    value: float
    createdAt: float


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """Why one unit of work failed, and after how many attempts."""

    itemId: int
    errorType: str
    message: str
    attempts: int
    failedAt: float


def requireRange(name: str, value: float, low: float, high: float = math.inf) -> None:
    """Raise ``ConfigError`` unless ``low <= value <= high``; the message names both."""
    if not low <= value <= high:
        upper = "" if math.isinf(high) else f" and <= {high}"
        raise ConfigError(f"{name} must be >= {low}{upper}, got {value}")


# ============================================================================
# Executors
# ============================================================================

ExecutorKind = Literal["process", "thread", "inline", "dask"]
StartMethod = Literal["fork", "spawn", "forkserver"]
EXECUTOR_KINDS: Final[tuple[ExecutorKind, ...]] = get_args(ExecutorKind)
START_METHODS: Final[tuple[StartMethod, ...]] = get_args(StartMethod)


class TaskExecutor(Protocol):
    """What the lectures need of an executor: submit work, shut down.

    Satisfied by ``ThreadPoolExecutor``, ``ProcessPoolExecutor``, ``InlineExecutor``
    and a Dask client's executor, so one pipeline runs unchanged on any of them.
    """

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Schedule ``fn(*args, **kwargs)`` and return a future for its result."""
        ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Release the workers; ``cancel_futures`` drops work not yet started."""
        ...


class InlineExecutor:
    """Runs each call at once, in the caller: a pool's code path with no concurrency at all.

    It blocks the event loop while it runs, which is what a sequential baseline means.
    """

    def __init__(self) -> None:
        self._closed = False

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Run ``fn`` now; its result or exception is in the returned future."""
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        future: Future[R] = Future()
        future.set_running_or_notify_cancel()
        try:
            result = fn(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - delivered through the future, as a pool does
            future.set_exception(error)
        else:
            future.set_result(result)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:  # noqa: ARG002 - the Executor signature
        """Refuse further work; there is nothing running to wait for."""
        self._closed = True


class _Closable(Protocol):
    def close(self) -> object: ...


class _DaskClient(_Closable, Protocol):
    def get_executor(self, **kwargs: object) -> Any: ...  # noqa: ANN401 - a Dask ClientExecutor, typed at its use


class DaskExecutor:
    """A Dask cluster behind the ``TaskExecutor`` Protocol: more than one machine, same code.

    ``Client.get_executor(pure=False)`` already returns ``concurrent.futures`` futures,
    and runs each call even with equal arguments; shutdown closes what this started.
    """

    def __init__(self, client: _DaskClient, cluster: _Closable | None, scratch: str | None = None) -> None:
        self._client = client
        self._cluster = cluster
        self._scratch = scratch
        self._executor = client.get_executor(pure=False)

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Run ``fn(*args, **kwargs)`` on a Dask worker."""
        future: Future[R] = self._executor.submit(fn, *args, **kwargs)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work, then close the client and any cluster this executor started."""
        self._executor.shutdown(wait=wait and not cancel_futures)
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)


def daskSchedulerAddress(address: str | None = None) -> str | None:
    """Set (when given) and return the Dask scheduler address that ``--executor dask`` uses.

    Dask's configuration holds it (``DASK_SCHEDULER_ADDRESS`` works too); None means a
    local cluster. A given address is probed first: a wrong one is one line, status 2.
    """
    if address is not None:
        _probeScheduler(address)
    dask = _importDask("dask")
    if address is not None:
        dask.config.set({"scheduler-address": address})
    found = dask.config.get("scheduler-address", None)
    return str(found) if found else None


def _probeScheduler(address: str, timeoutSeconds: float = 2.0) -> None:
    """Raise ``ConfigError`` unless a ``tcp://`` or ``tls://host:port`` address accepts a connection.

    Only the TCP connection is tried (TLS runs over it; its certificates are Dask's
    to check). Other schemes (``inproc://``, ``ucx://``) pass unprobed.
    """
    scheme, separator, rest = address.partition("://")
    if not separator or scheme not in ("tcp", "tls"):
        return
    host, colon, port = rest.rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--address must look like {scheme}://host:port (port 1-65535), got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeoutSeconds):
            pass
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise ConfigError(f"cannot reach the Dask scheduler at {address!r}: {reason}") from None


# The exercises fail tasks on purpose (ValueError, a simulated crash) and report each
# failure themselves; Dask's workers would also log every one ("Compute Failed"), and
# the tornado loop under the client a cancelled future, over the report. Dask reads its
# logging levels from the environment when it is imported, in this process and in the
# worker processes it starts; a user's own DASK_LOGGING wins.
_DASK_LOGGING: Final = repr(
    {"distributed.worker": "critical", "tornado": "critical", "tornado.application": "critical"}
)


def _importDask(name: str) -> ModuleType:
    """Import Dask lazily: it is an optional extra, never a requirement of the lecture files."""
    os.environ.setdefault("DASK_LOGGING", _DASK_LOGGING)
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ConfigError(
            "--executor dask needs the optional package 'distributed' (pip install distributed)"
        ) from None


def _makeDaskExecutor(workers: int) -> DaskExecutor:
    """Connect to the configured scheduler, or start a local cluster of ``workers`` processes."""
    distributed = _importDask("distributed")
    address = daskSchedulerAddress()
    if address is None:
        # ":0": any free port for the scheduler's HTTP server, so clusters never fight over 8787.
        # The workers' scratch space goes in a folder of its own, removed at shutdown.
        scratch = tempfile.mkdtemp(prefix="course-dask-")
        _importDask("dask").config.set({"temporary-directory": scratch})
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            host="127.0.0.1",
            local_directory=scratch,
        )
        return DaskExecutor(distributed.Client(cluster), cluster, scratch)
    try:
        client = distributed.Client(address, timeout=3)
    # A wrong endpoint fails in many ways: refused or timed out (OSError), or a server that
    # is not a Dask scheduler, whose reply Dask reads as a frame length (MemoryError, ValueError).
    except Exception as error:  # noqa: BLE001 - any failure to connect is the address's, reported in one line
        detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise ConfigError(f"no Dask scheduler answered at {address!r} ({detail})") from None
    return DaskExecutor(client, None)


_STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)


def _workerSignals() -> None:
    """Worker initializer: Ctrl-C is the parent's to handle, SIGTERM ends the worker at once.

    Otherwise every worker prints a KeyboardInterrupt traceback, and a forked worker
    inherits the parent's SIGTERM handler and ignores ``terminate()``. Born with both
    signals blocked (``_SigintSafePool``), it drops a pending SIGINT and dies of a SIGTERM.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, set(_STOP_SIGNALS))


@contextlib.contextmanager
def _stopSignalsDeferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back in this thread for the duration; one that came is raised right after."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, set(_STOP_SIGNALS))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _RecordingContext:
    """A multiprocessing context that records each process it makes: a pool's workers are
    known from birth, even one killed before ``active_children()`` could see it."""

    def __init__(self, base: multiprocessing.context.BaseContext, made: list[Any]) -> None:
        self._base: Any = base  # a concrete context: typeshed's BaseContext has no Process
        self._made = made

    def __getattr__(self, name: str) -> object:
        return getattr(self._base, name)

    def Process(self, *args: object, **kwargs: object) -> multiprocessing.process.BaseProcess:
        process: multiprocessing.process.BaseProcess = self._base.Process(*args, **kwargs)
        self._made.append(process)
        return process


class _SigintSafePool(ProcessPoolExecutor):
    """A ``ProcessPoolExecutor`` whose workers are never born able to die of Ctrl-C,
    and that knows how its workers ended.

    Workers start inside ``submit``; a SIGINT in that window could kill one before its
    initializer runs (a broken pool). Blocking SIGINT and SIGTERM across ``submit``
    closes it: children inherit the mask, the parent raises the signal right after.
    """

    def __init__(self, workers: int, context: multiprocessing.context.BaseContext) -> None:
        self._workers: list[multiprocessing.process.BaseProcess] = []
        recording = cast(multiprocessing.context.BaseContext, _RecordingContext(context, self._workers))
        super().__init__(workers, mp_context=recording, initializer=_workerSignals)

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """``ProcessPoolExecutor.submit`` with stop signals held back while workers may be starting."""
        with _stopSignalsDeferred():
            future = super().submit(fn, *args, **kwargs)
        if sys.version_info < (3, 12):
            _tolerateCancelled(future)
        return future

    def deaths(self, timeoutSeconds: float = 1.0) -> list[str]:
        """How each worker that ended abnormally ended (``"SIGKILL"``, ``"exit code 70"``).

        Call it once the workers are stopped; it waits (bounded) while the pool's
        manager thread may still be reaping one (its exit code reads None meanwhile).
        """
        deadline = time.monotonic() + timeoutSeconds
        while any(worker.exitcode is None for worker in self._workers) and time.monotonic() < deadline:
            time.sleep(0.01)
        return [_howEnded(worker.exitcode) for worker in self._workers if worker.exitcode not in (None, 0)]


def _tolerateCancelled(future: Future[R]) -> None:
    """3.12's guard on 3.11: a breaking pool fails its pending futures, cancelled ones too.

    3.11's manager thread then dies of InvalidStateError (asyncio had cancelled a
    sibling's future) and the interpreter hangs at exit; 3.12 ignores the error.
    """
    setException = future.set_exception

    def setUnlessCancelled(exception: BaseException | None) -> None:
        with contextlib.suppress(InvalidStateError):
            setException(exception)

    future.set_exception = setUnlessCancelled  # type: ignore[method-assign] # backports CPython 3.12's fix


def _howEnded(exitcode: int | None) -> str:
    """A process's end in words: the signal's name, or its exit code."""
    if exitcode is not None and exitcode < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-exitcode).name
    return f"exit code {exitcode}"


def makeExecutor(kind: ExecutorKind, workers: int, startMethod: StartMethod | None = None) -> TaskExecutor:
    """An executor by kind name; ``startMethod`` None is the platform's. Prefer ``executorScope``."""
    requireRange("workers", workers, 1, 256)
    if kind == "process":
        if startMethod is not None and startMethod not in START_METHODS:
            raise ConfigError(f"start method must be one of {', '.join(START_METHODS)}, got {startMethod!r}")
        context = multiprocessing.get_context(startMethod)
        return _SigintSafePool(workers, context)
    if kind == "thread":
        return ThreadPoolExecutor(workers)
    if kind == "inline":
        return InlineExecutor()
    if kind == "dask":
        return _makeDaskExecutor(workers)
    raise ConfigError(f"executor must be one of {', '.join(EXECUTOR_KINDS)}, got {kind!r}")


@contextlib.contextmanager
def executorScope(kind: ExecutorKind, workers: int, startMethod: StartMethod | None = None) -> Iterator[TaskExecutor]:
    """An executor that is shut down on the way out, leaving no worker process behind.

    On a normal exit it waits for the work in flight. On an error, a cancellation
    or Ctrl-C it drops queued work (``cancel_futures=True``) and terminates the
    worker processes this scope started, since a running task cannot be cancelled.
    A process pool is made only once earlier pools' threads have left (``settleThreads``).
    """
    if kind == "process":
        settleThreads()
    children = set(multiprocessing.active_children())
    threads = set(threading.enumerate())
    executor = makeExecutor(kind, workers, startMethod)
    try:
        yield executor
    except BaseException as error:
        _stopAfter(error, executor, children, threads)
        raise
    executor.shutdown(wait=True)


def _stopAfter(error: BaseException, executor: TaskExecutor, children: set[Any], threads: set[Any]) -> None:
    """Stop what a scope started; a pool broken by a killed worker becomes ``WorkerLostError``.

    Shut down first, cancelling queued futures while the pool is whole (killing its
    workers first let 3.11's manager thread fail futures asyncio had cancelled); a broken
    pool's manager thread is reaping its workers, so wait for it (a second reader of a
    forkserver worker's status reads "exit code 255"). Then stop the workers, which no
    running task survives, and join the pool's threads, bounded: a thread's call cannot stop.
    """
    lost = _lostWorker(error) if isinstance(error, Exception) else None  # Ctrl-C stays Ctrl-C
    broken = executor if isinstance(executor, _SigintSafePool) and lost is not None else None
    executor.shutdown(wait=broken is not None, cancel_futures=True)
    stopChildren(exclude=children)
    deadline = time.monotonic() + 2.0
    for thread in set(threading.enumerate()) - threads:
        if thread.is_alive():  # not one still starting: it cannot be joined yet
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
    deaths = broken.deaths() if broken is not None else []
    if deaths:
        doing = lost.doing if isinstance(lost, WorkerLostError) else ""
        raise WorkerLostError(doing, how=_killer(deaths)) from error


class WorkerLostError(RuntimeError):
    """A worker process died from outside the run (killed, out of memory): the run stops.

    ``doing`` says what the run was doing and how far it got ("during stage normalize;
    7 of 12 readings normalised"): a runner that catches a broken pool raises it so;
    ``executorScope`` adds ``how`` the worker ended.
    """

    def __init__(self, doing: str = "", *, how: str = "") -> None:
        self.doing = doing
        self.how = how
        super().__init__(f"a worker process died ({how or 'how is unknown'}){' ' + doing if doing else ''}; no result")


def _lostWorker(error: BaseException) -> BrokenExecutor | WorkerLostError | None:
    """The broken pool behind ``error``: itself, a cause, or a member of an exception group."""
    return next((e for e in _causes(error) if isinstance(e, BrokenExecutor | WorkerLostError)), None)


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error``, the members of an exception group, and their causes and contexts, each once."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += list(current.exceptions) if isinstance(current, BaseExceptionGroup) else []
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]


def _killer(deaths: Sequence[str]) -> str:
    """How the first worker ended: a signal, else its own exit code, before the SIGTERM a broken
    pool sends the others, before 255 (a forkserver worker's status, read twice)."""
    return min(deaths, key=lambda how: (how == "exit code 255", how == "SIGTERM", how.startswith("exit")))


def _osThreadCount() -> int | None:
    """Threads the OS counts in this process (field 20 of /proc/self/stat); None where unknown."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:  # noqa: PTH123 - shared.py does not import pathlib
            return int(stat.read().rsplit(")", 1)[1].split()[17])
    except (OSError, ValueError, IndexError):
        return None


def settleThreads(timeoutSeconds: float = 0.5) -> None:
    """Wait (bounded) until threads already joined have also left the OS's thread count.

    A joined thread's OS thread exits a moment later; a fork in that moment (a pool
    made right after another shut down) makes 3.12+ warn about forking with threads.
    """
    deadline = time.monotonic() + timeoutSeconds
    while (count := _osThreadCount()) is not None and count > threading.active_count():
        if time.monotonic() >= deadline:
            return
        time.sleep(0.001)


def stopChildren(exclude: set[multiprocessing.process.BaseProcess] | None = None) -> int:
    """Terminate, then kill, this process's children not in ``exclude``; return how many."""
    spared = exclude or set()
    children = [child for child in multiprocessing.active_children() if child not in spared]
    for child in children:
        child.terminate()
    for child in children:
        child.join(timeout=1.0)
        if child.is_alive():
            child.kill()
            child.join(timeout=1.0)
    return len(children)


async def runInExecutor(executor: TaskExecutor, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Await ``fn(*args)`` run on ``executor``: ``loop.run_in_executor`` for any TaskExecutor.

    ``run_in_executor`` is exactly ``wrap_future(executor.submit(...))``; cancelling the
    awaiting task cancels the submission if it has not started.
    """
    return await asyncio.wrap_future(executor.submit(fn, *args, **kwargs))


if sys.version_info >= (3, 12):
    waitFor = asyncio.wait_for
else:

    async def waitFor(awaitable: Awaitable[T], timeout: float | None) -> T:  # noqa: ASYNC109 - wait_for's signature
        """``asyncio.wait_for`` as 3.12 has it: ``async with asyncio.timeout(timeout): await``.

        3.11's ``wait_for`` swallows a cancellation that lands as the awaited result
        arrives (it returns the result instead; gh-86296, fixed in 3.12 by rebuilding
        it on ``asyncio.timeout``). A stream of queue items could then
        swallow Ctrl-C in ``await waitFor(queue.get(), ...)``. Same deadline, same ``TimeoutError``.
        """
        async with asyncio.timeout(timeout):
            return await awaitable


def _workerIdentity(holdSeconds: float, preload: tuple[str, ...]) -> tuple[int, int]:
    """A warm-up task: import ``preload``, hold the worker a moment, say which process and thread ran it."""
    for name in preload:
        importlib.import_module(name)
    time.sleep(holdSeconds)
    return os.getpid(), threading.get_ident()


def warmUp(executor: TaskExecutor, workers: int, *, preload: Sequence[str] = (), maxHoldSeconds: float = 1.28) -> float:
    """Start every worker of a pool and wait until each has run a task; return the seconds it took.

    Each task holds its worker (20 ms, doubled each round) so that ``workers`` tasks
    land on distinct workers: a spawned worker still booting would otherwise leave
    one worker running all of them, and the first timed deadline would pay the boot.
    It stops when every worker answered, the caller did (inline), or the hold reached
    ``maxHoldSeconds`` (a smaller pool). ``preload``: modules each worker imports now,
    not inside the first timed task (pass the caller's ``__name__``).
    """
    caller = (os.getpid(), threading.get_ident())
    modules = tuple(preload)
    hold = 0.02
    with Stopwatch() as watch:
        while True:
            futures = [executor.submit(_workerIdentity, hold, modules) for _ in range(workers)]
            seen = {future.result(timeout=60.0) for future in futures}
            if len(seen) >= workers or caller in seen or hold >= maxHoldSeconds:
                break
            hold *= 2
    return watch.elapsed


# ============================================================================
# Randomness and measurement
# ============================================================================


def makeRng(seed: int, *keys: object) -> Random:
    """A ``Random`` determined by ``seed`` and ``keys`` alone, the same in every process.

    A string seed goes through SHA-512, whatever PYTHONHASHSEED: a worker derives its
    decisions from the run's seed and a record or batch id, never from global ``random``.
    """
    return Random(repr((seed, *keys)))


class Stopwatch:
    """Wall-clock seconds from ``time.perf_counter``; a context manager or start/stop."""

    __slots__ = ("_start", "_stop")

    def __init__(self) -> None:
        self._start: float | None = None
        self._stop: float | None = None

    def start(self) -> Stopwatch:
        """Start (or restart) timing."""
        self._start = time.perf_counter()
        self._stop = None
        return self

    def stop(self) -> float:
        """Stop timing and return the elapsed seconds."""
        self._stop = time.perf_counter()
        return self.elapsed

    @property
    def elapsed(self) -> float:
        """Seconds from start to stop, or to now while running."""
        if self._start is None:
            raise RuntimeError("stopwatch was never started")
        end = self._stop if self._stop is not None else time.perf_counter()
        return end - self._start

    def __enter__(self) -> Stopwatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct``-th percentile (0..100), linear between ranks: NumPy's default, and
    ``statistics.quantiles(method="inclusive")``; always between min and max."""
    if not values:
        raise ConfigError("percentile of an empty sequence")
    requireRange("pct", pct, 0.0, 100.0)
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def speedup(baselineSeconds: float, candidateSeconds: float) -> float:
    """How many times faster the candidate is than the baseline (inf for a zero time)."""
    return baselineSeconds / candidateSeconds if candidateSeconds > 0 else math.inf


def cpuCount() -> int:
    """CPU cores this process may run on (affinity-aware where the OS tells)."""
    if sys.version_info >= (3, 13):
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def parallelBound(tasks: int, workers: int, cores: int | None = None) -> int:
    """The best speedup parallel CPU work can reach: min(tasks, workers, cores)."""
    return max(1, min(tasks, workers, cpuCount() if cores is None else cores))


@dataclass(frozen=True, slots=True)
class LinearFit:
    """A least-squares line through points: slope, intercept and R² (nan when undefined)."""

    slope: float
    intercept: float
    rSquared: float


def linearFit(xs: Sequence[float], ys: Sequence[float]) -> LinearFit:
    """Fit ``y = slope * x + intercept``; R² is nan when ``ys`` is constant (no variance to explain)."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ConfigError(f"linearFit needs two equal-length sequences of >= 2 points, got {len(xs)} and {len(ys)}")
    slope, intercept = statistics.linear_regression(xs, ys)
    try:
        rSquared = statistics.correlation(xs, ys) ** 2
    except statistics.StatisticsError:
        rSquared = math.nan
    return LinearFit(slope, intercept, rSquared)


def coefficientOfVariation(values: Sequence[float]) -> float:
    """Sample standard deviation over mean: 0.1 means the spread is 10% of the mean."""
    if len(values) < 2:
        return 0.0
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean if mean else math.inf


# ============================================================================
# Queues: occupancy over time, and reports
# ============================================================================


class OccupancyQueue(asyncio.Queue[T]):
    """An ``asyncio.Queue`` that records its size, with a timestamp, after every put and get.

    ``put`` and ``get`` finish through ``put_nowait`` and ``get_nowait``, so recording
    there sees every change: the trace is exact, its time-weighted mean the true occupancy.
    """

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self._origin = time.perf_counter()
        self._trace: list[tuple[float, int]] = [(0.0, 0)]

    def put_nowait(self, item: T) -> None:
        """Put as ``asyncio.Queue`` does, then record the new size."""
        super().put_nowait(item)
        self._record()

    def get_nowait(self) -> T:
        """Get as ``asyncio.Queue`` does, then record the new size."""
        item = super().get_nowait()
        self._record()
        return item

    def _record(self) -> None:
        self._trace.append((time.perf_counter() - self._origin, self.qsize()))

    @property
    def trace(self) -> tuple[tuple[float, int], ...]:
        """(seconds since the queue was made, qsize) after every change, starting at (0, 0)."""
        return tuple(self._trace)


def timeWeightedMean(trace: Sequence[tuple[float, int]], end: float) -> float:
    """The mean of a step function given as (time, value) change points, over [first time, end]."""
    if not trace or end <= trace[0][0]:
        return 0.0
    area = sum(value * (min(nextAt, end) - at) for (at, value), (nextAt, _) in itertools.pairwise([*trace, (end, 0)]))
    return area / (end - trace[0][0])


Cell = str | int | float


def _cellText(cell: Cell) -> str:
    if isinstance(cell, float):
        return f"{cell:,.4g}" if abs(cell) < 1e-3 or abs(cell) >= 1e6 else f"{cell:,.3f}"
    return str(cell)


REPORT_WIDTH: Final = 100


def formatTable(
    headers: Sequence[str], rows: Sequence[Sequence[Cell]], *, title: str = "", width: int = REPORT_WIDTH
) -> str:
    """A plain-text table: numbers right-aligned, text left-aligned, one rule under the header.

    Floats print with three decimals; format them first where another precision matters.
    A table wider than ``width`` wraps its widest text columns, a cell over several lines.
    """
    count = len(headers)
    for row in rows:
        if len(row) != count:
            raise ConfigError(f"every row must have {count} cells, got {len(row)}: {row!r}")
    texts = [[_cellText(cell) for cell in row] for row in rows]
    numeric = [all(isinstance(row[i], int | float) for row in rows) and bool(rows) for i in range(count)]
    natural = [max([len(headers[i])] + [len(row[i]) for row in texts]) for i in range(count)]
    widths = _fitColumns(natural, [len(h) for h in headers], numeric, width - 2 * (count - 1))

    def lines(cells: Sequence[str]) -> list[str]:
        wrapped = [textwrap.wrap(cell, max(1, widths[i])) or [""] for i, cell in enumerate(cells)]
        height = max(len(parts) for parts in wrapped)
        out = []
        for index in range(height):
            parts = [part[index] if index < len(part) else "" for part in wrapped]
            padded = [cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i]) for i, cell in enumerate(parts)]
            out.append("  ".join(padded).rstrip())
        return out

    out = [title] if title else []
    out.extend(lines(headers))
    out.append("  ".join("-" * w for w in widths))
    for row in texts:
        out.extend(lines(row))
    return "\n".join(out)


def _fitColumns(natural: Sequence[int], floors: Sequence[int], numeric: Sequence[bool], room: int) -> list[int]:
    """Column widths within ``room``: numbers keep theirs, text columns share the rest fairly.

    Water-filling: the narrowest text columns keep their natural width while it is
    under an equal share of what is left; the wider ones split the remainder. No
    column goes under its header (or 6 characters), so a very narrow ``room`` overflows.
    """
    widths = list(natural)
    if sum(widths) <= room:
        return widths
    text = sorted((i for i in range(len(widths)) if not numeric[i]), key=lambda i: natural[i])
    left = room - sum(widths[i] for i in range(len(widths)) if numeric[i])
    for position, index in enumerate(text):
        share = left // (len(text) - position)
        widths[index] = min(natural[index], max(share, floors[index], 6))
        left -= widths[index]
    return widths


def prose(text: str, width: int = REPORT_WIDTH) -> str:
    """A paragraph of a report, wrapped to ``width`` columns."""
    return textwrap.fill(text, width=width)


def bar(value: float, maxValue: float, width: int = 40, char: str = "#") -> str:
    """An ASCII bar of ``round(width * value / maxValue)`` characters, clamped to [0, width]."""
    if maxValue <= 0 or not math.isfinite(value):
        return ""
    cells = round(width * value / maxValue)
    return char * max(0, min(width, cells))


def banner(title: str) -> str:
    """A section heading for printed reports."""
    return f"\n=== {title} " + "=" * max(3, 74 - len(title))


def formatMarkdownTable(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    """The same table as GitHub Markdown (pipes in cells escaped)."""

    def line(cells: Sequence[Cell]) -> str:
        return "| " + " | ".join(_cellText(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(headers), "| " + " | ".join("---" for _ in headers) + " |", *map(line, rows)])


def plural(count: int, one: str, many: str) -> str:
    """``count`` and the noun in the right number."""
    return f"{count:,} {one if count == 1 else many}"


# ============================================================================
# CLI: one registry per lecture, one main() shape for all of them
# ============================================================================

Log = Callable[[str], None]


def silent(_line: str) -> None:
    """A ``Log`` that drops every line: for tests and ``invoke verify``."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What the command line decides for every exercise of a lecture."""

    seed: int = DEFAULT_SEED
    quick: bool = False
    executor: ExecutorKind = "process"
    startMethod: StartMethod | None = None


@dataclass(frozen=True, slots=True)
class Exercise:
    """One registry entry: ``execute`` runs the exercise, prints its report through ``log``,
    and returns its result record (facts about the run; the lab judges them)."""

    number: int
    title: str
    execute: Callable[[RunOptions, Log], object] = field(repr=False)


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"seed must be an integer >= 0, got {value}")
    return value


def buildParser(lecture: int, exercises: Sequence[Exercise], description: str) -> argparse.ArgumentParser:
    """The lecture CLI: ``--ex N | --all | --list``, ``--seed``, ``--quick``, executor options."""
    numbers = [exercise.number for exercise in exercises]
    parser = _OneLineParser(prog=f"l{lecture}.py", description=description)
    which = parser.add_mutually_exclusive_group(required=True)
    listed = ", ".join(map(str, numbers))
    which.add_argument("--ex", type=int, choices=numbers, metavar="N", help=f"run exercise N ({listed})")
    which.add_argument("--all", action="store_true", help="run every exercise in order")
    which.add_argument("--list", action="store_true", help="list the exercises")
    parser.add_argument("--seed", type=_seed, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--quick", action="store_true", help="smaller sizes: about 2 s per exercise")
    parser.add_argument("--executor", choices=EXECUTOR_KINDS, default="process", help="the CPU tier (default process)")
    parser.add_argument("--address", metavar="URL", help="with --executor dask: a scheduler, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--start-method", choices=START_METHODS, help="how process workers start (default: the OS's)")
    return parser


def runExercise(exercise: Exercise, options: RunOptions, log: Log = print) -> object:
    """Run one exercise under its heading; return its result record."""
    log(banner(f"Exercise {exercise.number}: {exercise.title}"))
    return exercise.execute(options, log)


def lectureMain(argv: Sequence[str] | None, *, lecture: int, title: str, exercises: Sequence[Exercise]) -> int:
    """Parse the command line and run the chosen exercises; return the exit status (``guardedMain``'s)."""
    parser = buildParser(lecture, exercises, f"Lecture {lecture}: {title}")
    try:
        args = parser.parse_args(argv)
        if args.address is not None and args.executor != "dask":
            parser.error(f"--address {args.address} needs --executor dask, got --executor {args.executor}")
    except SystemExit as exit_:  # argparse exits for --help (0) and for bad input (2)
        return exit_.code if isinstance(exit_.code, int) else 2
    if args.list:
        listing = formatTable(("ex", "title"), [(e.number, e.title) for e in exercises])
        print(f"Lecture {lecture}: {title}\n{listing}")
        return 0
    options = RunOptions(seed=args.seed, quick=args.quick, executor=args.executor, startMethod=args.start_method)
    chosen = exercises if args.all else [e for e in exercises if e.number == args.ex]

    def body() -> None:
        if args.address is not None:
            daskSchedulerAddress(args.address)
        for exercise in chosen:
            runExercise(exercise, options)

    return guardedMain(parser.prog, body)


def guardedMain(prog: str, body: Callable[[], None]) -> int:
    """Run ``body`` so that every fault ends in one line on stderr and an exit status.

    0 done; 2 bad input (``ConfigError``); 1 a worker killed from outside
    (``WorkerLostError``) or a report that cannot be written (a full disk); 130 Ctrl-C,
    143 SIGTERM, 129 SIGHUP (the workers are stopped first, as for Ctrl-C); 141 a
    reader that went away (``| head``), quietly, as a command-line tool does.
    """
    with stopSignalsAsCtrlC() as caught:
        try:
            body()
            sys.stdout.flush()
        except KeyboardInterrupt:
            stopChildren()
            if caught:
                return _fail(prog, f"terminated ({signal.Signals(caught[0]).name})", 128 + caught[0])
            return _fail(prog, "interrupted", 128 + signal.SIGINT)
        except Exception as error:  # noqa: BLE001 - _fault raises again what it does not know
            return _fail(prog, *_fault(error))
    return 0


def _fault(error: Exception) -> tuple[str, int]:
    """The line and the status for a fault ``guardedMain`` knows (inside an exception group
    or behind a cause, too); any other is raised again."""
    if isinstance(error, ConfigError):
        return f"error: {error}", 2
    output = next((e for e in _causes(error) if isOutputError(e)), None)
    if output is not None:
        _silenceStdout()
        if isinstance(output, BrokenPipeError):
            return "", 128 + 13  # SIGPIPE's status: the reader went away, nothing to say
        return f"cannot write the report: {output.strerror or output}", 1
    lost = _lostWorker(error)
    if lost is None:
        raise error
    return str(lost if isinstance(lost, WorkerLostError) else WorkerLostError()), 1


def _fail(prog: str, message: str, status: int) -> int:
    if message:
        print(f"{prog}: {message}", file=sys.stderr)
    return status


@contextlib.contextmanager
def stopSignalsAsCtrlC() -> Iterator[list[int]]:
    """SIGTERM and SIGHUP stop the run the way Ctrl-C does; the list names the signal that came.

    A closed terminal, ``timeout`` or a container stop would otherwise kill this process
    and orphan every worker; the handler raises SIGINT instead, so every cleanup runs.
    """
    caught: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        caught.append(signum)
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            raise KeyboardInterrupt
        signal.raise_signal(signal.SIGINT)

    stops = [signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])]
    mainThread = threading.current_thread() is threading.main_thread()  # only it may set handlers
    previous = {signum: signal.signal(signum, handler) for signum in stops} if mainThread else {}
    try:
        yield caught
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


# A device or file that cannot take the report: full, over quota, too large, failing.
_WRITE_ERRORS: Final = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def isOutputError(error: BaseException) -> TypeGuard[OSError]:
    """Whether ``error`` says the report cannot be written: a reader gone, a full disk."""
    return isinstance(error, BrokenPipeError) or (isinstance(error, OSError) and error.errno in _WRITE_ERRORS)


def _silenceStdout() -> None:
    """Point stdout at the null device, so the interpreter's last flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
