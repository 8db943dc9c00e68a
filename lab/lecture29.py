"""The lab of lecture 29 (Async + multiprocessing hybrid architecture): its claims, study and benchmarks.

- ``judge1`` .. ``judge4``: the lecture's claims one run of each exercise supports (``invoke run``).
- ``study2`` (``invoke verify``): exercise 2's pipeline behind a ``ProbeExecutor`` (a slow store
  after each transform, the tasks in flight counted), with the spec's consumer and the bounded
  one, then a ``CrashingQueue`` whose get fails while the producer waits on a full queue.
- ``BENCHMARKS`` (``invoke bench``): 29.1 and 29.1-sweep (exercise 1 against sequential / bound,
  with the pickling ceiling), 29.3 (exercise 3 against the ``TierModel`` flow bound).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import pickle
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, ParamSpec, TypeVar, final

import l29
from l29 import (
    AnalysisResult,
    Exercise1Config,
    Exercise3Config,
    RequestData,
    legacyRecord,
    makeRequests,
    processAllItems,
    runAnalysis,
    tierLabels,
    timeConcurrent,
    timeSequential,
)
from lab.bench import (
    EFFICIENCY_TARGET,
    Benchmark,
    BenchOptions,
    BenchReport,
    BenchRow,
    ForeignLoad,
    efficiency,
    flowMakespan,
    foreignLoadNote,
    interleavedRepeats,
)
from lab.claims import Claim, ClaimKind, judge
from lab.registry import ExerciseLab, LectureLab
from lab.report import occupancyPlot, sideBySide
from shared import (
    ExecutorKind,
    InlineExecutor,
    Log,
    RunOptions,
    StartMethod,
    Stopwatch,
    TaskExecutor,
    cpuCount,
    executorScope,
    formatTable,
    parallelBound,
    prose,
    silent,
    speedup,
    warmUp,
)

R = TypeVar("R")
P = ParamSpec("P")

# ============================================================================
# Claims: what one run of each exercise says about the lecture
# ============================================================================


def judge1(result: l29.Exercise1Result) -> tuple[Claim, ...]:
    """Judge the spec's claims for exercise 1 from the measured figures."""
    config = result.config
    target = 0.85 * result.bound
    claims: tuple[Claim, ...] = (
        judge(
            l29.LECTURE,
            1,
            "handleRequest prints 'dispatching' immediately, 'complete' when the result arrives",
            measured="all dispatch lines before the first complete"
            if result.dispatchedBeforeAnyCompleted
            else "a request completed before all were dispatched",
            holds=result.dispatchedBeforeAnyCompleted,
            kind=ClaimKind.STRUCTURAL,
            reason="the event loop was blocked while dispatching",
        ),
        judge(
            l29.LECTURE,
            1,
            "the pool computes the same results as the sequential loop",
            measured=f"{config.requests} results identical" if result.matchesSequential else "results differ",
            holds=result.matchesSequential,
            kind=ClaimKind.STRUCTURAL,
            reason="a worker computed a different answer",
        ),
        judge(
            l29.LECTURE,
            1,
            "async + process pool is about min(10/3, 1)x faster",
            measured=f"{result.warmSpeedup:.2f}x warm, {result.coldSpeedup:.2f}x cold; bound {result.bound}x",
            holds=result.warmSpeedup >= target,
            kind=ClaimKind.TIMING,
            reason=(
                f"min(10/3, 1) = 1 is a typo for min(requests, workers, cores) = {result.bound}; "
                f"below {target:.2f}x: start-up {result.startupSeconds * 1e3:.0f} ms, "
                f"pickling {result.picklingSeconds * 1e3:.1f} ms vs "
                f"{result.sequentialSeconds * 1e3:.0f} ms of work"
            ),
        ),
    )
    return claims


def _throttled(run: l29.QueueRun) -> bool:
    """The queue sat near maxsize: puts found it at least half full on average, and some found it full."""
    return run.meanSizeBeforePut >= run.maxsize / 2 and run.fullPuts > 0


def _occupancyText(run: l29.QueueRun) -> str:
    """One run's occupancy in a few words, for a claim's measured column."""
    return (
        f"{run.consumer} maxsize {run.maxsize}: qsize before put mean {run.meanSizeBeforePut:.1f}, "
        f"max {run.largestSize}; {run.fullPuts}/{len(run.sizesBeforePut)} puts found it full"
    )


def _sizesDiffer(small: l29.QueueRun, large: l29.QueueRun) -> bool:
    """Significantly different: the larger queue held at least twice as many records at its peak."""
    return large.largestSize >= 2 * max(1, small.largestSize)


def judge2(result: l29.Exercise2Result) -> tuple[Claim, ...]:
    """Judge the spec's claims for exercise 2 from its runs: maxsize 5, then 2 and 20 (the spec's consumer)."""
    config = result.config
    runs = result.runs
    small, large = result.run(min(config.comparedMaxsizes)), result.run(max(config.comparedMaxsizes))
    excess = [run for run in runs if run.largestSize > run.maxsize]
    intact = all(run.results == result.expected for run in runs)
    return (
        judge(
            l29.LECTURE,
            2,
            "every record is transformed once; results sorted by recordId",
            measured=f"{len(runs)} runs x {config.totalRecords} records, all identical to transformRecord in order"
            if intact
            else "a run lost, duplicated or changed a record",
            holds=intact,
            kind=ClaimKind.STRUCTURAL,
            reason="the pipeline lost or duplicated records",
        ),
        judge(
            l29.LECTURE,
            2,
            "asyncio.Queue(maxsize) never holds more than maxsize records",
            measured=", ".join(sorted({f"max {run.largestSize}/{run.maxsize}" for run in runs})),
            holds=not excess,
            kind=ClaimKind.STRUCTURAL,
            reason=f"{len(excess)} runs exceeded maxsize",
        ),
        judge(
            l29.LECTURE,
            2,
            "queue size oscillates near maxsize: the producer is throttled by the consumer",
            measured=f"{_occupancyText(small)}; producer blocked {small.producerBlockedSeconds * 1e3:.0f} ms",
            holds=_throttled(small),
            kind=ClaimKind.TIMING,
            reason="consumeRecords takes the next record as soon as it dispatched one, so the queue empties at "
            "once; the backlog waits inside the executor instead",
        ),
        judge(
            l29.LECTURE,
            2,
            f"maxsize={small.maxsize} and maxsize={large.maxsize}: queue sizes differ significantly",
            measured=f"max qsize {small.largestSize} vs {large.largestSize}",
            holds=_sizesDiffer(small, large),
            kind=ClaimKind.TIMING,
            reason="the literal consumer never lets either queue fill",
        ),
    )


def judge3(result: l29.Exercise3Result) -> tuple[Claim, ...]:
    """Judge the spec's claims for exercise 3 from the three timings."""
    tiered, poolOnly, sequential = result.runs
    identical = tiered.results == poolOnly.results == sequential.results
    ordered = [run.label[:3] for run in sorted(result.runs, key=lambda run: run.seconds)]
    times = ", ".join(f"{run.label[:3]} {run.seconds * 1e3:.0f} ms" for run in result.runs)
    claims: tuple[Claim, ...] = (
        judge(
            l29.LECTURE,
            3,
            "the three configurations compute the same results",
            measured=f"{result.config.items} items identical in all three" if identical else "results differ",
            holds=identical,
            kind=ClaimKind.STRUCTURAL,
            reason="an executor pairing changed the data or the analysis",
        ),
        judge(
            l29.LECTURE,
            3,
            "async + thread pool + process pool is fastest",
            measured=times,
            holds=ordered[0] == "(a)",
            kind=ClaimKind.TIMING,
            reason=f"{ordered[0]} was faster on this run",
        ),
        judge(
            l29.LECTURE,
            3,
            "expected ordering (a) < (b) < (c)",
            measured=" < ".join(ordered),
            holds=ordered == ["(a)", "(b)", "(c)"],
            kind=ClaimKind.TIMING,
            reason="the I/O spread or the CPU tier did not separate the configurations on this run",
        ),
    )
    return claims


def judge4(result: l29.Exercise4Result) -> tuple[Claim, ...]:
    """Judge the spec's claims for exercise 4 (and the issue's) from the reports and timings."""
    config = result.config
    run = result.run
    counted = result.successes + result.valueErrors + result.timeouts
    busy = [timing.busyAfterDeadlineSeconds for timing in run.abandoned]
    claims: tuple[Claim, ...] = (
        judge(
            l29.LECTURE,
            4,
            f"successes + ValueError failures + timeout failures = {config.tasks}",
            measured=f"{result.successes} + {result.valueErrors} + {result.timeouts} = {counted}",
            holds=counted == len(run.reports) == config.tasks,
            kind=ClaimKind.STRUCTURAL,
            reason="a task was lost or reported twice",
        ),
        judge(
            l29.LECTURE,
            4,
            f"the split is exactly {config.succeeding}/{config.failing}/{config.slow}: each task ends as its role says",
            measured=f"{result.matchingRoles}/{config.tasks} tasks match (fails -> ValueError, "
            "too slow -> timeout, succeeds -> ok)",
            holds=result.matchingRoles == config.tasks,
            kind=ClaimKind.STRUCTURAL,
            reason="a task's outcome depended on timing",
        ),
        judge(
            l29.LECTURE,
            4,
            "failures are isolated per task: no exception escapes gather",
            measured=f"gather returned {len(run.reports)} reports and {len(run.retries)} retry reports",
            holds=len(run.reports) == config.tasks,
            kind=ClaimKind.STRUCTURAL,
            reason="gather returned fewer reports than tasks",
        ),
        judge(
            l29.LECTURE,
            4,
            f"every retry with shouldFail=False, timeoutMs={config.okMs:g} succeeds",
            measured=f"{result.retriesSucceeded}/{len(run.retries)} retries ok",
            holds=result.retriesSucceeded == len(run.retries) == config.failing + config.slow,
            kind=ClaimKind.STRUCTURAL,
            reason="a retry failed or timed out",
        ),
        judge(
            l29.LECTURE,
            4,
            "wait_for cannot stop a task a worker already runs: timed-out tasks keep their workers",
            measured=f"{len(busy)} timed-out tasks ran on for "
            + (f"{min(busy) * 1e3:.0f}-{max(busy) * 1e3:.0f} ms" if busy else "0 ms")
            + f" after the deadline; retries waited {run.drainSeconds * 1e3:.0f} ms",
            holds=bool(busy) and min(busy) > 0 and all(timing.finished for timing in run.abandoned),
            kind=ClaimKind.TIMING,
            reason="no timed-out task was seen still running after its deadline",
        ),
    )
    return claims


# ============================================================================
# Study 2 (invoke verify): a slow store downstream, the bounded consumer, a consumer crash
# ============================================================================
# The exercise runs the spec's consumer on the spec's transform, which never lets the
# queue fill. Here the same pipeline runs behind a ProbeExecutor (a slow store after each
# transform, the tasks in flight counted) with both consumers, then with a CrashingQueue
# whose get fails while the producer is suspended on a full queue.

STORE_MS: Final = 100.0
"""The slow downstream: 4 workers / 100 ms = 40 records/s, half the producer's ~80/s."""

QUICK_STORE_MS: Final = 40.0


def storeAfter(storeSeconds: float, fn: Callable[[l29.StreamRecord], R], record: l29.StreamRecord) -> R:
    """``fn(record)``, then hold the worker ``storeSeconds``: a slow downstream write (runs in a worker)."""
    result = fn(record)
    time.sleep(storeSeconds)
    return result


@final
class ProbeExecutor:
    """The exercise's pool behind a probe: a slow store after each task, the tasks in flight counted.

    The consumers call ``submit(transformRecord, record)``; a store of ``storeSeconds``
    follows the transform in the worker. Done callbacks run in the pool's thread, hence the lock.
    """

    def __init__(self, inner: TaskExecutor, storeSeconds: float = 0.0) -> None:
        self._inner = inner
        self._storeSeconds = storeSeconds
        self._lock = threading.Lock()
        self._current = 0
        self._peak = 0

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Submit ``fn`` (then the store) to the inner executor, counting it in flight until it is done."""
        with self._lock:
            self._current += 1
            self._peak = max(self._peak, self._current)
        task: Callable[[], R] = functools.partial(fn, *args, **kwargs)
        if self._storeSeconds > 0:
            task = functools.partial(storeAfter, self._storeSeconds, fn, *args)  # type: ignore[arg-type]  # fn takes one record
        future = self._inner.submit(task)
        future.add_done_callback(self._leave)
        return future

    def _leave(self, _future: Future[Any]) -> None:
        with self._lock:
            self._current -= 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut the inner executor down."""
        self._inner.shutdown(wait, cancel_futures=cancel_futures)

    @property
    def peak(self) -> int:
        """The most tasks ever in flight at once."""
        return self._peak


class InjectedConsumerError(RuntimeError):
    """An injected consumer failure, to show that the producer is not left blocked."""


class CrashingQueue(l29.PipelineQueue[l29.StreamItem]):
    """A queue whose ``get`` fails after ``crashAfter`` records, at the worst moment.

    The consumer's next get waits (at most ``patienceSeconds``) until the queue is full and
    the producer is suspended in ``put``, then raises ``InjectedConsumerError``.
    """

    def __init__(self, maxsize: int, *, crashAfter: int, waitSeconds: float, patienceSeconds: float) -> None:
        super().__init__(maxsize, waitSeconds=waitSeconds)
        self._crashAfter = crashAfter
        self._patienceSeconds = patienceSeconds
        self._gets = 0

    async def get(self) -> l29.StreamItem:
        """The queue's get, until ``crashAfter`` records have been taken."""
        if self._gets >= self._crashAfter:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._patienceSeconds):
                    while not (self.full() and self.statistics().producerWaiting):  # noqa: ASYNC110 - no event to await
                        await asyncio.sleep(0.001)
            raise InjectedConsumerError(f"consumer crashed after {self._gets} records (injected)")
        item = await super().get()
        self._gets += 1
        return item


@dataclass(frozen=True, slots=True)
class FailureDemo:
    """A consumer that crashed while the producer waited on a full queue, and how the run ended."""

    error: str
    secondsToFail: float
    recordsPut: int
    producerWaitingAtFailure: bool
    pendingTasks: int


async def demonstrateConsumerFailure(
    config: l29.Exercise2Config, executor: TaskExecutor, *, seed: int, storeSeconds: float
) -> FailureDemo:
    """Crash the bounded consumer while the producer is suspended on a full maxsize-2 queue.

    The run must end at once with ``PipelineError``, not after the producer's put deadline,
    and leave no task behind.
    """
    queue = CrashingQueue(
        2,
        crashAfter=max(0, min(config.workers, config.totalRecords - 3)),
        waitSeconds=config.waitSeconds,
        patienceSeconds=config.totalRecords * (config.latencyHigh + 0.005) + 0.1,
    )
    probe = ProbeExecutor(executor, max(storeSeconds, 0.01))
    failure: l29.PipelineError | None = None
    with Stopwatch() as watch:
        try:
            await l29.runPipeline(queue, probe, config, seed=seed, consumer="bounded")
        except l29.PipelineError as error:
            failure = error
    pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    return FailureDemo(
        error="" if failure is None else str(failure),
        secondsToFail=watch.elapsed,
        recordsPut=0 if failure is None else failure.recordsPut,
        producerWaitingAtFailure=failure is not None and failure.producerWaiting,
        pendingTasks=len(pending),
    )


@dataclass(frozen=True, slots=True)
class ProbedRun:
    """One run of the study: the pipeline's own figures, the store behind it, the peak in flight."""

    run: l29.QueueRun
    storeMs: float
    maxInFlight: int

    @property
    def workload(self) -> str:
        """The spec's transform alone, or transform plus the slow store."""
        return "spec transform" if self.storeMs == 0 else f"+ {self.storeMs:g} ms store"


@dataclass(frozen=True, slots=True)
class Study2:
    """Everything the study measured, with the exercise's config and expected results."""

    config: l29.Exercise2Config
    expected: tuple[tuple[int, float], ...]
    storeMs: float
    runs: tuple[ProbedRun, ...]
    failure: FailureDemo

    def run(self, consumer: l29.ConsumerKind, maxsize: int, storeMs: float) -> ProbedRun:
        """The run with these settings."""
        return next(
            probed
            for probed in self.runs
            if probed.run.consumer == consumer and probed.run.maxsize == maxsize and probed.storeMs == storeMs
        )


async def probedRuns(
    config: l29.Exercise2Config, executor: TaskExecutor, *, seed: int, storeSeconds: float
) -> tuple[list[ProbedRun], FailureDemo]:
    """Each consumer x workload x compared maxsize (but the exercise's own runs), then the crash."""
    consumers: tuple[l29.ConsumerKind, ...] = ("literal", "bounded")
    runs: list[ProbedRun] = []
    for store, maxsize, consumer in itertools.product((0.0, storeSeconds), config.comparedMaxsizes, consumers):
        if store == 0 and consumer == "literal":
            continue
        probe = ProbeExecutor(executor, store)
        run = await l29.runPipeline(config.queue(maxsize), probe, config, seed=seed, consumer=consumer)
        runs.append(ProbedRun(run, store * 1e3, probe.peak))
    failure = await demonstrateConsumerFailure(config, executor, seed=seed, storeSeconds=storeSeconds)
    return runs, failure


def runStudy2(
    config: l29.Exercise2Config,
    expected: tuple[tuple[int, float], ...],
    *,
    seed: int,
    storeMs: float,
    executor: ExecutorKind = "process",
    startMethod: StartMethod | None = None,
) -> Study2:
    """The study's runs on one warmed pool of the exercise's size."""
    with executorScope(executor, config.workers, startMethod) as pool:
        warmUp(pool, config.workers, preload=(l29.__name__, __name__))
        runs, failure = asyncio.run(probedRuns(config, pool, seed=seed, storeSeconds=storeMs / 1000))
    return Study2(config, expected, storeMs, tuple(runs), failure)


def study2(options: RunOptions, result: l29.Exercise2Result, log: Log) -> tuple[Claim, ...]:
    """``invoke verify``: the slow-store runs, the bounded consumer and the crash, judged."""
    study = runStudy2(
        result.config,
        result.expected,
        seed=options.seed,
        storeMs=QUICK_STORE_MS if options.quick else STORE_MS,
        executor=result.executor,
        startMethod=options.startMethod,
    )
    log(formatStudy2(study))
    return judgeStudy2(study)


def judgeStudy2(study: Study2) -> tuple[Claim, ...]:
    """The claims about the bounded consumer and the crash, and the study's own accounting."""
    config = study.config
    small, large = min(config.comparedMaxsizes), max(config.comparedMaxsizes)
    boundedSmall = study.run("bounded", small, study.storeMs).run
    boundedLarge = study.run("bounded", large, study.storeMs).run
    boundedPeak = max(probed.maxInFlight for probed in study.runs if probed.run.consumer == "bounded")
    broken = [p for p in study.runs if p.run.results != study.expected or p.run.largestSize > p.run.maxsize]
    failure = study.failure
    return (
        judge(
            l29.LECTURE,
            2,
            f"(bounded-in-flight consumer, {study.storeMs:g} ms store) the queue sits near maxsize, "
            "throttling the producer",
            measured=f"{_occupancyText(boundedSmall)}; producer blocked "
            f"{boundedSmall.producerBlockedSeconds * 1e3:.0f} ms",
            holds=_throttled(boundedSmall),
            kind=ClaimKind.TIMING,
            reason="the consumer kept up with the producer on this run",
        ),
        judge(
            l29.LECTURE,
            2,
            f"(bounded-in-flight consumer) maxsize={small} and maxsize={large} differ significantly",
            measured=f"max qsize {boundedSmall.largestSize} vs {boundedLarge.largestSize}",
            holds=_sizesDiffer(boundedSmall, boundedLarge),
            kind=ClaimKind.TIMING,
            reason="the consumer kept up with the producer on this run",
        ),
        judge(
            l29.LECTURE,
            2,
            f"(bounded-in-flight consumer) at most workers={config.workers} records in flight",
            measured=f"peak {boundedPeak} in flight",
            holds=boundedPeak <= config.workers,
            kind=ClaimKind.STRUCTURAL,
            reason="the consumer dispatched more records than it allows",
        ),
        judge(
            l29.LECTURE,
            2,
            "a failed consumer ends the run with a clear error; the producer never blocks forever",
            measured=f"PipelineError after {failure.secondsToFail * 1e3:.0f} ms, producer "
            f"{'was' if failure.producerWaitingAtFailure else 'was not'} on a full queue, "
            f"{failure.pendingTasks} tasks pending",
            holds=bool(failure.error) and failure.pendingTasks == 0 and failure.secondsToFail < config.waitSeconds,
            kind=ClaimKind.STRUCTURAL,
            reason="the run hung until a deadline, raised nothing, or left tasks pending",
        ),
        judge(
            l29.LECTURE,
            2,
            "(study runs: slow store, bounded consumer) every record transformed once, within maxsize",
            measured=f"{len(study.runs) - len(broken)} of {len(study.runs)} runs x {config.totalRecords} records "
            "intact and within maxsize",
            holds=not broken,
            kind=ClaimKind.STRUCTURAL,
            reason="a study run lost, duplicated or changed a record, or overfilled its queue",
        ),
    )


def formatStudy2(study: Study2) -> str:
    """The study's occupancy table, the slow-store runs side by side, and the crash."""
    config = study.config
    table = formatTable(
        ("consumer", "workload", "maxsize", "qsize at put min/mean/max", "max", "full puts", "blocked ms", "in flight"),
        [
            (
                p.run.consumer,
                p.workload,
                p.run.maxsize,
                f"{min(p.run.sizesBeforePut)} / {p.run.meanSizeBeforePut:.1f} / {max(p.run.sizesBeforePut)}",
                p.run.largestSize,
                f"{p.run.fullPuts}/{len(p.run.sizesBeforePut)}",
                p.run.producerBlockedSeconds * 1e3,
                p.maxInFlight,
            )
            for p in study.runs
        ],
        title=f"Study of exercise 2 (bounded = at most {config.workers} in flight):",
    )
    plots: list[str] = []
    for maxsize in config.comparedMaxsizes:
        pair = [study.run(consumer, maxsize, study.storeMs) for consumer in ("literal", "bounded")]
        duration = max(p.run.elapsedSeconds for p in pair)
        title = "{} consumer, maxsize {}, {}"
        panels = [
            occupancyPlot(p.run.trace, maxsize, duration, title=title.format(p.run.consumer, maxsize, p.workload))
            for p in pair
        ]
        plots += ["", sideBySide(panels)]
    failure = study.failure
    return "\n".join(
        [
            "",
            table,
            *plots,
            "  # = qsize averaged over the time slice, . = reached only for a moment",
            prose(f"Consumer crash (bounded, maxsize 2): {failure.error or 'no error raised'}"),
            f"  -> ended in {failure.secondsToFail * 1e3:.0f} ms, {failure.pendingTasks} tasks left pending.",
        ]
    )


# ============================================================================
# Benchmarks (invoke bench): each architecture's median against its model's bound
# ============================================================================


def wrapped(*notes: str) -> tuple[str, ...]:
    """A benchmark's notes, each paragraph wrapped to 100 columns (a table among them kept as it is)."""
    return tuple(note if "\n" in note else prose(note) for note in notes)


SWEEP_SIZES: Final = (1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000)
"""Values per request in the sweep of exercise 1: about x3 a step from 1,000 to 1,000,000."""

QUICK_SWEEP_SIZES: Final = (1_000, 10_000, 100_000, 300_000)
"""The quick sweep: x10 steps, and it stops short of 1,000,000 (several seconds a repeat there)."""

LATENCY_SCALES: Final = (2.0, 4.0)
"""Exercise 3: fetch latencies tried, as multiples of the config's, for an architecture below target."""


def serialisationSeconds(payloads: Sequence[object]) -> tuple[float, float]:
    """Seconds to pickle every payload (the parent's side of the IPC) and to unpickle it (the worker's)."""
    with Stopwatch() as dumping:
        blobs = [pickle.dumps(payload) for payload in payloads]
    with Stopwatch() as loading:
        for blob in blobs:
            pickle.loads(blob)  # noqa: S301 - our own payload, measuring its cost
    return dumping.elapsed, loading.elapsed


def serveOnColdPool(
    requests: Sequence[RequestData], workers: int, executor: ExecutorKind, startMethod: StartMethod | None
) -> list[AnalysisResult]:
    """Start a pool, serve the batch, shut the pool down: what a one-shot script pays every time."""
    with executorScope(executor, workers, startMethod) as pool:
        results, _ = timeConcurrent(requests, pool, silent)
    return results


@dataclass(frozen=True, slots=True)
class BatchTimings:
    """Exercise 1's batch at one request size: medians of the three ways to serve it, and its IPC cost.

    ``dumpsSeconds`` (every request pickled in the parent) and ``loadsSeconds``
    (unpickled in a worker) are measured here, in one process: CPU work that
    runs on the same cores as the analysis and that the ideal leaves out.
    """

    config: Exercise1Config
    cores: int
    repeats: int
    sequentialSeconds: float
    warmSeconds: float
    coldSeconds: float
    dumpsSeconds: float
    loadsSeconds: float

    @property
    def bound(self) -> int:
        """min(requests, workers, cores): the most requests that can really run at once."""
        return parallelBound(self.config.requests, self.config.workers, self.cores)

    @property
    def idealSeconds(self) -> float:
        """The sequential CPU time over the bound."""
        return self.sequentialSeconds / self.bound

    @property
    def ipcFloorSeconds(self) -> float:
        """The best a pool can do once (un)pickling is counted: (analysis + dumps + loads) / bound."""
        return (self.sequentialSeconds + self.dumpsSeconds + self.loadsSeconds) / self.bound

    @property
    def ipcCeiling(self) -> float:
        """The most efficiency a pool can reach with this payload: ideal over the IPC floor."""
        return efficiency(self.idealSeconds, self.ipcFloorSeconds)

    @property
    def startupSeconds(self) -> float:
        """What the cold pool costs on top of the warm one: starting and stopping the workers."""
        return max(0.0, self.coldSeconds - self.warmSeconds)

    @property
    def dispatchSeconds(self) -> float:
        """The warm pool's time beyond the IPC floor: event loop, manager thread, pipes, wake-ups."""
        return max(0.0, self.warmSeconds - self.ipcFloorSeconds)

    @property
    def values(self) -> int:
        """Values in the whole batch."""
        return self.config.requests * self.config.valuesPerRequest

    @property
    def analysisNsPerValue(self) -> float:
        """Nanoseconds of analysis per value."""
        return self.sequentialSeconds / self.values * 1e9

    @property
    def ipcNsPerValue(self) -> float:
        """Nanoseconds of pickling plus unpickling per value."""
        return (self.dumpsSeconds + self.loadsSeconds) / self.values * 1e9

    def rows(self, suffix: str = "") -> tuple[BenchRow, BenchRow]:
        """The warm-pool and cold-pool rows against the sequential baseline and the ideal."""
        workers = f"{self.config.workers} workers"
        return (
            BenchRow(
                f"warm pool, {workers}{suffix}",
                self.warmSeconds,
                self.sequentialSeconds,
                self.idealSeconds,
                self.repeats,
            ),
            BenchRow(
                f"cold pool, {workers}{suffix}",
                self.coldSeconds,
                self.sequentialSeconds,
                self.idealSeconds,
                self.repeats,
            ),
        )


def measureBatch(
    config: Exercise1Config,
    *,
    seed: int,
    repeats: int,
    executor: ExecutorKind = "process",
    startMethod: StartMethod | None = None,
) -> BatchTimings:
    """Exercise 1's three ways, each the median of ``repeats``: sequential, cold pool, warm pool.

    The sequential loop is timed in turn with each pool (so a burst of load on a
    shared machine hits both, not one), its median taken over all its runs. The
    cold pool is started, used and shut down inside each timing; the warm pool is
    started and warmed once, outside. Every pool is gone before the next one
    forks, so no fork happens while a pool's threads run.
    """
    requests = makeRequests(config, seed)
    dumps, loads = serialisationSeconds(requests)
    sequentialCold, cold = interleavedRepeats(
        [
            lambda: timeSequential(requests),
            lambda: serveOnColdPool(requests, config.workers, executor, startMethod),
        ],
        repeats,
    )
    with executorScope(executor, config.workers, startMethod) as pool:
        warmUp(pool, config.workers, preload=(l29.__name__,))
        sequentialWarm, warm = interleavedRepeats(
            [lambda: timeSequential(requests), lambda: timeConcurrent(requests, pool, silent)], repeats
        )
    return BatchTimings(
        config=config,
        cores=cpuCount(),
        repeats=repeats,
        sequentialSeconds=statistics.median(sequentialCold + sequentialWarm),
        warmSeconds=statistics.median(warm),
        coldSeconds=statistics.median(cold),
        dumpsSeconds=dumps,
        loadsSeconds=loads,
    )


def batchNotes(timings: BatchTimings) -> tuple[str, ...]:
    """What takes the pool's missing efficiency at one size, in measured milliseconds."""
    config = timings.config
    bound = f"min(requests={config.requests}, workers={config.workers}, cores={timings.cores})"
    notes = [
        (
            f"ideal = sequential {timings.sequentialSeconds * 1e3:.1f} ms / {timings.bound} = "
            f"{timings.idealSeconds * 1e3:.1f} ms, where {timings.bound} = {bound}."
        )
    ]
    warm, cold = timings.rows()
    if warm.efficiency < EFFICIENCY_TARGET:
        notes.append(
            f"warm pool at {warm.efficiency:.0%}: pickling the requests takes {timings.dumpsSeconds * 1e3:.1f} ms "
            f"in the parent and unpickling them {timings.loadsSeconds * 1e3:.1f} ms in the workers, CPU on the same "
            f"{timings.cores} cores as the analysis, so no pool can beat {timings.ipcFloorSeconds * 1e3:.1f} ms "
            f"({timings.ipcCeiling:.0%} of ideal) with this payload; the other "
            f"{timings.dispatchSeconds * 1e3:.1f} ms ({timings.dispatchSeconds / config.requests * 1e3:.2f} ms a "
            "request) is dispatch: event loop, the pool's manager thread, pipes, worker wake-ups"
            + (
                f", and {config.workers} workers taking turns on {timings.cores} cores."
                if config.workers > timings.cores
                else "."
            )
        )
    if cold.efficiency < EFFICIENCY_TARGET:
        notes.append(
            f"cold pool at {cold.efficiency:.0%}: starting and stopping {config.workers} workers adds "
            f"{timings.startupSeconds * 1e3:.1f} ms to every batch."
        )
    return tuple(notes)


def benchExercise1(
    config: Exercise1Config, options: BenchOptions, log: Log = silent, *, executor: ExecutorKind = "process"
) -> BenchReport:
    """Exercise 1 at one size: sequential loop, warm pool and cold pool against sequential / bound."""
    log(f"  {config.requests} requests x {config.valuesPerRequest:,} values, {options.repeats} repeats")
    with ForeignLoad() as load:
        timings = measureBatch(
            config, seed=options.seed, repeats=options.repeats, executor=executor, startMethod=options.startMethod
        )
    sequential = timings.sequentialSeconds
    return BenchReport(
        "29.1",
        f"async + {executor} pool vs sequential, {config.requests} requests x {config.valuesPerRequest:,} values",
        (BenchRow("sequential loop", sequential, sequential, sequential, options.repeats), *timings.rows()),
        wrapped(
            *batchNotes(timings),
            "Where the pool starts to pay, and whether 85% is reached at any size: 29.1-sweep.",
            *foreignLoadNote(load, options.startMethod, timings.cores),
        ),
    )


def firstSizeFrom(timings: Sequence[BatchTimings], holds: Callable[[BatchTimings], bool]) -> int | None:
    """The smallest size from which ``holds`` is true at every larger size tried, or None."""
    found: int | None = None
    for timing in reversed(timings):
        if not holds(timing):
            break
        found = timing.config.valuesPerRequest
    return found


def whereText(timings: Sequence[BatchTimings], holds: Callable[[BatchTimings], bool]) -> str:
    """Where ``holds`` is true in a sweep: from some size on, at some sizes only, or at none tried."""
    sizes = [t.config.valuesPerRequest for t in timings]
    hits = [t.config.valuesPerRequest for t in timings if holds(t)]
    start = firstSizeFrom(timings, holds)
    if start is not None:
        return f"from {start:,} values per request on (up to {sizes[-1]:,} tried)"
    if hits:
        listed = ", ".join(f"{size:,}" for size in hits)
        return f"at {listed} values per request only, not at the largest tried ({sizes[-1]:,})"
    return f"at no size tried ({sizes[0]:,}-{sizes[-1]:,} values per request)"


def _warmPays(t: BatchTimings) -> bool:
    return t.warmSeconds < t.sequentialSeconds


def _coldPays(t: BatchTimings) -> bool:
    return t.coldSeconds < t.sequentialSeconds


def _warmOnTarget(t: BatchTimings) -> bool:
    return efficiency(t.idealSeconds, t.warmSeconds) >= EFFICIENCY_TARGET


def sweepNotes(timings: Sequence[BatchTimings]) -> tuple[str, ...]:
    """Read the sweep: where each pool starts to pay, where (if anywhere) it reaches 85%, and why not."""
    table = formatTable(
        ("values/request", "sequential ms", "warm x", "cold x", "(un)pickling ms", "IPC ceiling", "warm", "cold"),
        [
            (
                f"{t.config.valuesPerRequest:,}",
                t.sequentialSeconds * 1e3,
                f"{speedup(t.sequentialSeconds, t.warmSeconds):.2f}",
                f"{speedup(t.sequentialSeconds, t.coldSeconds):.2f}",
                (t.dumpsSeconds + t.loadsSeconds) * 1e3,
                f"{t.ipcCeiling:.0%}",
                f"{efficiency(t.idealSeconds, t.warmSeconds):.0%}",
                f"{efficiency(t.idealSeconds, t.coldSeconds):.0%}",
            )
            for t in timings
        ],
        title="By size (x = speedup over the sequential loop; warm/cold = efficiency):",
    )
    best = max(timings, key=lambda t: speedup(t.sequentialSeconds, t.warmSeconds))
    small, large = timings[0], timings[-1]
    ceilings = [t.ipcCeiling for t in timings]
    notes = [
        "",
        table,
        "(IPC ceiling = the most efficiency the pickled payload allows.)",
        f"The warm pool beats the sequential loop {whereText(timings, _warmPays)}.",
        f"The cold pool (start-up and shut-down in every batch) beats it {whereText(timings, _coldPays)}.",
        (
            f"Best: {speedup(best.sequentialSeconds, best.warmSeconds):.2f}x warm at "
            f"{best.config.valuesPerRequest:,} values per request, against a bound of {best.bound}x."
        ),
        f"85% of ideal (warm pool) is reached {whereText(timings, _warmOnTarget)}.",
        (
            f"Small requests lose to fixed costs: {small.dispatchSeconds * 1e3:.1f} ms of dispatch per batch at "
            f"{small.config.valuesPerRequest:,} values against {small.sequentialSeconds * 1e3:.1f} ms of work, "
            f"and the cold pool's {small.startupSeconds * 1e3:.1f} ms of start-up."
        ),
    ]
    if firstSizeFrom(timings, _warmOnTarget) is None:
        notes.append(
            "Large requests do not escape the IPC cost, which grows with the payload as the work does: "
            f"{large.ipcNsPerValue:.0f} ns to pickle and unpickle a float against {large.analysisNsPerValue:.0f} ns "
            f"to analyse it at {large.config.valuesPerRequest:,} values; the ceiling stays at "
            f"{min(ceilings):.0%}-{max(ceilings):.0%} over all sizes, below 85%: only more work per byte shipped "
            "could lift it."
        )
    return tuple(notes)


def sweepExercise1(
    sizes: Sequence[int],
    config: Exercise1Config,
    options: BenchOptions,
    log: Log = silent,
    *,
    executor: ExecutorKind = "process",
) -> BenchReport:
    """Exercise 1 over the values-list length: warm pool, cold pool and sequential loop at each size."""
    timings: list[BatchTimings] = []
    with ForeignLoad() as load:
        for size in sizes:
            log(f"  {size:,} values per request x {config.requests} requests, {options.repeats} repeats")
            timings.append(
                measureBatch(
                    replace(config, valuesPerRequest=size),
                    seed=options.seed,
                    repeats=options.repeats,
                    executor=executor,
                    startMethod=options.startMethod,
                )
            )
    rows = tuple(row for t in timings for row in t.rows(f", {t.config.valuesPerRequest:,}"))
    return BenchReport(
        "29.1-sweep",
        f"where the {executor} pool starts to pay: {config.requests} requests, {config.workers} workers, "
        "values per request swept",
        rows,
        wrapped(*sweepNotes(timings), *foreignLoadNote(load, options.startMethod, cpuCount())),
    )


def measureCpuTimes(config: Exercise3Config, seed: int) -> tuple[float, ...]:
    """Seconds of ``runAnalysis`` for each item, measured here (no fetch wait, no pickling)."""
    times: list[float] = []
    for dataId in range(config.items):
        _, data = legacyRecord(dataId, seed, config.latencyLow, config.latencyHigh, config.valuesPerItem)
        with Stopwatch() as watch:
            runAnalysis(data)
        times.append(watch.elapsed)
    return tuple(times)


@dataclass(frozen=True, slots=True)
class TierModel:
    """Exercise 3's latency model: the drawn fetch latencies, the measured analysis times, the servers.

    Each ideal is the model run as a flow, no overheads: every fetch (its drawn
    latency) on the next free I/O server, in order, then its analysis (its
    measured CPU time) on the next free of ``cpuServers`` = min(workers, cores)
    (1 off a process pool: threads share the GIL). (b) is credited with its
    workers as both, which flatters it; (c) overlaps nothing.
    """

    latencies: tuple[float, ...]
    cpuTimes: tuple[float, ...]
    threads: int
    poolServers: int
    cpuServers: int

    def ideal(self, ioServers: int, cpuServers: int) -> float:
        """The flow's makespan with these server counts."""
        return flowMakespan([(self.latencies, ioServers), (self.cpuTimes, cpuServers)])

    @property
    def ideals(self) -> tuple[float, float, float]:
        """The bound of (a) threads + pool, (b) pool only, (c) sequential."""
        return (
            self.ideal(self.threads, self.cpuServers),
            self.ideal(self.poolServers, self.cpuServers),
            sum(self.latencies) + sum(self.cpuTimes),
        )


def tierModel(
    config: Exercise3Config, seed: int, executor: ExecutorKind, cpuTimes: tuple[float, ...] | None = None
) -> TierModel:
    """The model for this run: latencies from the seed, CPU times measured here unless given."""
    latencies = tuple(
        legacyRecord(dataId, seed, config.latencyLow, config.latencyHigh, 0)[0] for dataId in range(config.items)
    )
    cpuParallel = parallelBound(config.items, config.workers, cpuCount()) if executor in {"process", "dask"} else 1
    return TierModel(
        latencies=latencies,
        cpuTimes=measureCpuTimes(config, seed) if cpuTimes is None else cpuTimes,
        threads=config.threads,
        poolServers=1 if executor == "inline" else config.workers,
        cpuServers=cpuParallel,
    )


TierKind = Literal["tiered", "poolOnly", "sequential"]
TIER_KINDS: Final[tuple[TierKind, TierKind, TierKind]] = ("tiered", "poolOnly", "sequential")


def timeConfigurations(
    kinds: Sequence[TierKind],
    config: Exercise3Config,
    *,
    seed: int,
    repeats: int,
    executor: ExecutorKind = "process",
    startMethod: StartMethod | None = None,
) -> dict[TierKind, float]:
    """Median seconds of some of exercise 3's configurations, run in turn, on pools made outside the timing.

    One round runs each configuration once, so a burst of load on a shared
    machine hits them all alike. The process pool is made and warmed before the
    thread pool starts any thread, and is only made if a configuration needs it.
    """
    needsPool = any(kind != "sequential" for kind in kinds)
    with contextlib.ExitStack() as stack:
        processPool: TaskExecutor = InlineExecutor()
        threadPool: TaskExecutor = InlineExecutor()
        if needsPool:
            processPool = stack.enter_context(executorScope(executor, config.workers, startMethod))
            warmUp(processPool, config.workers, preload=(l29.__name__,))
        if "tiered" in kinds:
            threadPool = stack.enter_context(executorScope("thread", config.threads))
        inline = InlineExecutor()
        pairs: dict[TierKind, tuple[TaskExecutor, TaskExecutor]] = {
            "tiered": (threadPool, processPool),
            "poolOnly": (processPool, processPool),
            "sequential": (inline, inline),
        }

        def serve(kind: TierKind) -> Callable[[], object]:
            ioTier, cpuTier = pairs[kind]
            return lambda: asyncio.run(processAllItems(range(config.items), ioTier, cpuTier, seed=seed, config=config))

        durations = interleavedRepeats([serve(kind) for kind in kinds], repeats)
    return {kind: statistics.median(times) for kind, times in zip(kinds, durations, strict=True)}


def medianCpuTimes(config: Exercise3Config, seed: int, repeats: int) -> tuple[float, ...]:
    """Each item's ``runAnalysis`` seconds, the median of ``repeats`` measurements."""
    runs = [measureCpuTimes(config, seed) for _ in range(repeats)]
    return tuple(statistics.median(times) for times in zip(*runs, strict=True))


@dataclass(frozen=True, slots=True)
class TierTimings:
    """Exercise 3's three configurations: medians, their bounds, and the costs the model leaves out.

    ``generationSeconds`` is building every item's data inside the fetch (CPU
    under the GIL in the threads of (a), in the workers for (b)); ``dumpsSeconds``
    and ``loadsSeconds`` are pickling and unpickling every item's data once.
    """

    config: Exercise3Config
    model: TierModel
    labels: tuple[str, str, str]
    medians: tuple[float, float, float]
    repeats: int
    generationSeconds: float
    dumpsSeconds: float
    loadsSeconds: float

    def rows(self) -> tuple[BenchRow, BenchRow, BenchRow]:
        """(a), (b), (c) against (c)'s median and each one's flow bound."""
        baseline = self.medians[2]
        a, b, c = (
            BenchRow(label, median, baseline, ideal, self.repeats)
            for label, median, ideal in zip(self.labels, self.medians, self.model.ideals, strict=True)
        )
        return a, b, c


def measureTiers(
    config: Exercise3Config,
    *,
    seed: int,
    repeats: int,
    executor: ExecutorKind = "process",
    startMethod: StartMethod | None = None,
) -> TierTimings:
    """Exercise 3's three configurations, each the median of ``repeats``, and the model they are held to."""
    model = tierModel(config, seed, executor, cpuTimes=medianCpuTimes(config, seed, repeats))
    medians = timeConfigurations(
        TIER_KINDS, config, seed=seed, repeats=repeats, executor=executor, startMethod=startMethod
    )
    with Stopwatch() as generation:
        data = [
            legacyRecord(dataId, seed, config.latencyLow, config.latencyHigh, config.valuesPerItem)[1]
            for dataId in range(config.items)
        ]
    dumps, loads = serialisationSeconds(data)
    return TierTimings(
        config=config,
        model=model,
        labels=tierLabels(config, executor),
        medians=(medians["tiered"], medians["poolOnly"], medians["sequential"]),
        repeats=repeats,
        generationSeconds=generation.elapsed,
        dumpsSeconds=dumps,
        loadsSeconds=loads,
    )


def tierNotes(timings: TierTimings) -> tuple[str, ...]:
    """What the model leaves out, in measured milliseconds, for each configuration below target."""
    config = timings.config
    model = timings.model
    tiered, poolOnly, sequential = timings.rows()
    ipc = (timings.dumpsSeconds + timings.loadsSeconds) * 1e3
    generation = timings.generationSeconds * 1e3
    notes = [
        (
            f"ideal = the exercise's flow model: fetches ({sum(model.latencies) * 1e3:.0f} ms drawn in all) on the "
            f"I/O servers, then analyses ({sum(model.cpuTimes) * 1e3:.0f} ms measured) on min(workers, cores) = "
            f"{model.cpuServers}; (c) overlaps nothing."
        ),
    ]
    for row, crossings, where in (
        (tiered, 1, f"the {config.threads} threads, under the GIL"),
        (poolOnly, 2, "the workers"),
    ):
        if row.efficiency >= EFFICIENCY_TARGET:
            continue
        gap = (row.medianSeconds - row.idealSeconds) * 1e3
        rest = max(0.0, gap - generation - crossings * ipc)
        notes.append(
            f"{row.label[:3]} at {row.efficiency:.0%}, {gap:.1f} ms over its bound: building the data inside the "
            f"fetch takes {generation:.1f} ms of CPU in {where}; each item's data crosses a process boundary "
            f"{crossings}x, {crossings * ipc:.1f} ms of (un)pickling; the other {rest:.1f} ms is scheduling "
            f"(thread hand-offs, event-loop wake-ups, the pool's manager thread) on {timings.model.cpuServers} "
            "cores shared by all of them."
        )
    if sequential.efficiency < EFFICIENCY_TARGET:
        notes.append(f"(c) at {sequential.efficiency:.0%}: the machine was busy with other work during the run.")
    return tuple(notes)


def latencySweep(
    timings: TierTimings, options: BenchOptions, log: Log, *, executor: ExecutorKind = "process"
) -> tuple[tuple[BenchRow, ...], tuple[str, ...]]:
    """For each configuration below target: its rows at longer fetches, until it reaches the target.

    Longer fetches make the same fixed overheads a smaller share. The rows'
    baseline is (c)'s model time (every fetch and analysis in turn), which (c)
    itself meets within a few per cent, instead of timing (c) again.
    """
    rows: list[BenchRow] = []
    notes: list[str] = []
    below = [
        (kind, row)
        for kind, row in zip(TIER_KINDS[:2], timings.rows()[:2], strict=True)
        if row.efficiency < EFFICIENCY_TARGET
    ]
    for kind, row in below:
        reached: str | None = None
        for scale in LATENCY_SCALES:
            config = replace(
                timings.config,
                latencyLow=timings.config.latencyLow * scale,
                latencyHigh=timings.config.latencyHigh * scale,
            )
            model = tierModel(config, options.seed, executor, cpuTimes=timings.model.cpuTimes)
            span = f"fetches {config.latencyLow * 1e3:.0f}-{config.latencyHigh * 1e3:.0f} ms"
            log(f"  {row.label[:3]} with {span}, {options.repeats} repeats")
            median = timeConfigurations(
                (kind,),
                config,
                seed=options.seed,
                repeats=options.repeats,
                executor=executor,
                startMethod=options.startMethod,
            )[kind]
            ideal = model.ideals[TIER_KINDS.index(kind)]
            swept = BenchRow(f"{row.label[:3]} {span}", median, model.ideals[2], ideal, options.repeats)
            rows.append(swept)
            if swept.efficiency >= EFFICIENCY_TARGET:
                reached = span
                break
        low, high = timings.config.latencyLow * LATENCY_SCALES[-1], timings.config.latencyHigh * LATENCY_SCALES[-1]
        notes.append(
            f"{row.label[:3]} reaches 85% with {reached}."
            if reached
            else f"{row.label[:3]} stays below 85% up to fetches of {low * 1e3:.0f}-{high * 1e3:.0f} ms."
        )
    if rows:
        notes.append("(The latency rows' baseline is (c)'s model time: every fetch and analysis in turn.)")
    return tuple(rows), tuple(notes)


def benchExercise3(
    config: Exercise3Config, options: BenchOptions, log: Log = silent, *, executor: ExecutorKind = "process"
) -> BenchReport:
    """Exercise 3's three configurations against the flow model's ideal, with longer fetches where below target."""
    log(f"  {config.items} items, 3 configurations, {options.repeats} repeats")
    with ForeignLoad() as load:
        timings = measureTiers(
            config, seed=options.seed, repeats=options.repeats, executor=executor, startMethod=options.startMethod
        )
        sweptRows, sweptNotes = latencySweep(timings, options, log, executor=executor)
    return BenchReport(
        "29.3",
        f"three tiers vs {executor} pool only vs sequential, {config.items} items, fetches "
        f"{config.latencyLow * 1e3:.0f}-{config.latencyHigh * 1e3:.0f} ms",
        (*timings.rows(), *sweptRows),
        wrapped(*tierNotes(timings), *sweptNotes, *foreignLoadNote(load, options.startMethod, cpuCount())),
    )


def bench1(options: BenchOptions, log: Log) -> BenchReport:
    """Registry entry: exercise 1 at the spec's sizes (quick: a fifth of the values)."""
    return benchExercise1(Exercise1Config.quick() if options.quick else Exercise1Config(), options, log)


def benchSweep1(options: BenchOptions, log: Log) -> BenchReport:
    """Registry entry: exercise 1's batch over the values-list length."""
    return sweepExercise1(QUICK_SWEEP_SIZES if options.quick else SWEEP_SIZES, Exercise1Config(), options, log)


def bench3(options: BenchOptions, log: Log) -> BenchReport:
    """Registry entry: exercise 3 at the spec's sizes (quick: fetches a third as long)."""
    return benchExercise3(Exercise3Config.quick() if options.quick else Exercise3Config(), options, log)


BENCHMARKS = (
    Benchmark("29.1", "exercise 1: async + process pool vs sequential", bench1),
    Benchmark("29.1-sweep", "exercise 1 over the values-list length: where the pool starts to pay", benchSweep1),
    Benchmark("29.3", "exercise 3: three tiers vs processes only vs sequential", bench3),
)

LAB = LectureLab(
    29,
    (
        ExerciseLab(1, l29.Exercise1Result, judge1),
        ExerciseLab(2, l29.Exercise2Result, judge2, study2),
        ExerciseLab(3, l29.Exercise3Result, judge3),
        ExerciseLab(4, l29.Exercise4Result, judge4),
    ),
    BENCHMARKS,
)
