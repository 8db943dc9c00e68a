"""The lab of lecture 29 (Async + multiprocessing hybrid architecture): its claims, studies and benchmarks.

- ``judge1`` .. ``judge4`` (``invoke run`` and ``invoke verify``): the claims one run of each
  exercise decides (structural ones, and 29.4's finding on abandoned work).
- The studies (``invoke verify`` only) decide the timing claims, each on at least
  ``MIN_REPEATS`` interleaved repeats with its spread:
  ``study1``: 29.1's speedup, one row per reading of "approximately min(10/3, 1)x";
  ``study2``: 29.2's queue occupancy, the spec's consumer and (beyond the lecture) the bounded
  one behind a slow store (``ProbeExecutor``), then a ``CrashingQueue`` whose get fails while
  the producer waits on a full queue; ``study3``: 29.3's configurations on paired rounds.
- ``BENCHMARKS`` (``invoke bench``): 29.1 and 29.1-sweep (exercise 1 against sequential / bound,
  with the pickling ceiling), 29.3 (exercise 3 against the ``TierModel`` flow bound).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
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
    speedupBound,
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
from lab.claims import MIN_REPEATS, Claim, ClaimKind, Line, Origin, Repeats, Verdict, judge, judgeRepeats
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

LECTURE: Final = l29.LECTURE


def studyRepeats(options: RunOptions) -> int:
    """Rounds of a study: ``MIN_REPEATS`` (5) quick, 7 at the spec's sizes."""
    return MIN_REPEATS if options.quick else MIN_REPEATS + 2


# ============================================================================
# "Approximately": a band around the figure the lecture names
# ============================================================================

ABOUT: Final = 1.25
"""The lab's reading of the lecture's "approximately x": within a factor 1.25 of x (0.8x to 1.25x)."""


def judgeAbout(
    exercise: int,
    statement: str,
    figure: Repeats,
    target: float,
    *,
    bound: float | None = None,
    measured: str,
    reason: str,
    origin: Origin = Origin.LECTURE,
) -> Claim:
    """Judge "the figure is approximately ``target``" from its repeats: every repeat in the band.

    The band is ``target / ABOUT`` to ``target * ABOUT``, cut at ``bound`` (the most the
    figure can reach on this machine). Decided only when every repeat agrees: inside the
    band (holds), or outside it (does not hold); too close to call when they straddle an
    edge (either one). A repeat past ``bound`` is never held: past it in every repeat, the bound's
    calibration is off (not measurable here); in some, the timing is (too close to call).
    """
    low = target / ABOUT
    high = target * ABOUT if bound is None else min(target * ABOUT, bound)
    line = Line.above(low, unit="x") if figure.median < target else Line.under(high, unit="x")
    claim = judgeRepeats(LECTURE, exercise, statement, figure, line, measured=measured, reason=reason, origin=origin)
    if len(figure.values) < MIN_REPEATS:
        return claim
    if bound is not None and figure.high > bound:
        if figure.low > bound:
            why = (
                f"faster than its bound ({bound:g}x) at every repeat: the bound's calibration is off by "
                f"{1 - bound / figure.low:.0%} or more"
            )
            return replace(claim, verdict=Verdict.NOT_MEASURED, reason=why)
        past = sum(value > bound for value in figure.values)
        why = (
            f"faster than its bound in {past} of {len(figure.values)} repeats ({figure.high:.2f}x > {bound:g}x): "
            "the timing or the bound's calibration is off"
        )
        return replace(claim, verdict=Verdict.TOO_CLOSE, reason=why)
    if claim.verdict is Verdict.HOLDS and not low <= figure.low <= figure.high <= high:
        other = Line.above(low, unit="x") if figure.low < low else Line.under(high, unit="x")
        why = f"the repeats straddle the line ({other}): the gap is inside the noise"
        return replace(claim, verdict=Verdict.TOO_CLOSE, reason=why)
    return claim


# ============================================================================
# Exercise 1: one run decides the structure; the study decides the speedup
# ============================================================================


def judge1(result: l29.Exercise1Result) -> tuple[Claim, ...]:
    """The claims one run of exercise 1 decides: dispatch before completion, same results.

    Its speedup, one pass each way, cannot decide "approximately min(10/3, 1)x": ``study1`` does.
    """
    config = result.config
    return (
        judge(
            LECTURE,
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
            LECTURE,
            1,
            "the pool computes the same results as the sequential loop",
            measured=f"{config.requests} results identical" if result.matchesSequential else "results differ",
            holds=result.matchesSequential,
            kind=ClaimKind.STRUCTURAL,
            reason="a worker computed a different answer",
        ),
    )


def study1(options: RunOptions, result: l29.Exercise1Result, log: Log) -> tuple[Claim, ...]:
    """``invoke verify``: the warm pool against the sequential loop in paired rounds, both readings judged."""
    timings = measureBatch(
        result.config,
        seed=options.seed,
        repeats=studyRepeats(options),
        executor=result.executor,
        startMethod=options.startMethod,
        cold=False,
    )
    log(f"29.1 speedups per round: {', '.join(f'{value:.2f}x' for value in timings.warmSpeedups.values)}")
    return judgeSpeedup(timings, coldSpeedup=result.coldSpeedup)


def judgeSpeedup(timings: BatchTimings, *, coldSpeedup: float) -> tuple[Claim, ...]:
    """Requirement 5's "approximately min(10/3, 1)x faster", one row per reading, on the warm pool.

    (a) as written, min(10/3, 1) = 1: "about 1x". (b) as meant, "bounded by the 3
    workers": ``speedupBound`` = min(cores, 10/ceil(10/3)), 2x on 2 cores, 2.5x (not 3x)
    on more. The cold figure (the exercise's one pass, start-up included) stands beside.
    """
    config = timings.config
    figure = timings.warmSpeedups
    bound = timings.bound
    waves = math.ceil(config.requests / config.workers)
    costs = (
        f"pickling {(timings.dumpsSeconds + timings.loadsSeconds) * 1e3:.1f} ms and dispatch against "
        f"{timings.sequentialSeconds * 1e3:.1f} ms of work"
    )

    def measured(low: float, high: float) -> str:
        return (
            f"{config.valuesPerRequest:,} values a request: warm {figure.median:.2f}x (median of paired rounds), "
            f"cold {coldSpeedup:.2f}x (one pass with start-up); band {low:.2f}-{high:.2f}x"
        )

    literal = judgeAbout(
        1,
        "async + process pool is approximately min(10/3, 1)x faster, read as written: "
        f"min(10/3, 1) = 1, 'approximately' = within a factor {ABOUT:g}",
        figure,
        1.0,
        measured=measured(1 / ABOUT, ABOUT),
        reason=f"{'faster' if figure.median > 1 else 'slower'} than about 1x: {costs}",
    )
    meant = judgeAbout(
        1,
        "async + process pool is approximately min(10/3, 1)x faster, read as the bound it means: "
        f"min(cores={timings.cores}, {config.requests}/ceil({config.requests}/{config.workers}) = "
        f"{config.requests / waves:g}) = {bound:g}x (the busiest of {config.workers} workers serves {waves})",
        figure,
        bound,
        bound=bound,
        measured=measured(bound / ABOUT, bound),
        reason=f"below {bound / ABOUT:.2f}x (80% of {bound:g}x): {costs}",
    )
    return literal, meant


# ============================================================================
# Exercise 2: one run decides the accounting; the study decides the occupancy
# ============================================================================


def judge2(result: l29.Exercise2Result) -> tuple[Claim, ...]:
    """The claims one run of exercise 2 decides (runs at maxsize 5, then 2 and 20, the spec's consumer).

    How full the queue sits is a count that scheduling makes noisy: ``study2`` judges it in repeats.
    """
    config = result.config
    runs = result.runs
    excess = [run for run in runs if run.largestSize > run.maxsize]
    intact = all(run.results == result.expected for run in runs)
    return (
        judge(
            LECTURE,
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
            LECTURE,
            2,
            "asyncio.Queue(maxsize) never holds more than maxsize records",
            measured=", ".join(sorted({f"max {run.largestSize}/{run.maxsize}" for run in runs})),
            holds=not excess,
            kind=ClaimKind.STRUCTURAL,
            reason=f"{len(excess)} runs exceeded maxsize",
        ),
    )


# ============================================================================
# Exercise 3: one run decides the results; the study decides the ordering
# ============================================================================


def judge3(result: l29.Exercise3Result) -> tuple[Claim, ...]:
    """The claim one run of exercise 3 decides: the three configurations agree.

    Which configuration is fastest is decided by ``study3``, on paired rounds.
    """
    tiered, poolOnly, sequential = result.runs
    identical = tiered.results == poolOnly.results == sequential.results
    return (
        judge(
            LECTURE,
            3,
            "the three configurations compute the same results",
            measured=f"{result.config.items} items identical in all three" if identical else "results differ",
            holds=identical,
            kind=ClaimKind.STRUCTURAL,
            reason="an executor pairing changed the data or the analysis",
        ),
    )


def study3(options: RunOptions, result: l29.Exercise3Result, _log: Log) -> tuple[Claim, ...]:
    """``invoke verify``: the three configurations in interleaved rounds, judged on paired ratios."""
    samples = timeConfigurations(
        TIER_KINDS,
        result.config,
        seed=options.seed,
        repeats=studyRepeats(options),
        executor=result.executor,
        startMethod=options.startMethod,
    )
    return judgeTiers(samples)


def judgeTiers(samples: dict[TierKind, list[float]]) -> tuple[Claim, ...]:
    """(a) fastest (the lecture's claim) and (a) < (b) < (c) (the report's), round by round.

    Round i's ratios compare the configurations timed back to back in that round, so a
    burst of load from other processes shifts all three alike.
    """
    tiered, poolOnly, sequential = (samples[kind] for kind in TIER_KINDS)
    rival = [min(b, c) for b, c in zip(poolOnly, sequential, strict=True)]
    fastest = Repeats.ratios(rival, tiered)
    bOverA = Repeats.ratios(poolOnly, tiered)
    cOverB = Repeats.ratios(sequential, poolOnly)
    ordered = Repeats.of([min(ab, bc) for ab, bc in zip(bOverA.values, cOverB.values, strict=True)])
    medians = ", ".join(
        f"{key} {statistics.median(samples[kind]) * 1e3:.0f} ms"
        for key, kind in zip(("(a)", "(b)", "(c)"), TIER_KINDS, strict=True)
    )
    beaten = "(b)" if statistics.median(poolOnly) < statistics.median(sequential) else "(c)"
    unordered = [name for name, ratio in (("(a) < (b)", bOverA), ("(b) < (c)", cOverB)) if ratio.median < 1]
    return (
        judgeRepeats(
            LECTURE,
            3,
            "async + thread pool + process pool should be fastest",
            fastest,
            Line.above(1.0, unit="x"),
            measured=f"{medians} (medians); the faster of (b), (c) over (a): {fastest.median:.2f}x",
            reason=f"{beaten} was faster than (a) in every round",
        ),
        judgeRepeats(
            LECTURE,
            3,
            "(a) < (b) < (c), the ordering the report expects (the lecture ranks only (a) first)",
            ordered,
            Line.above(1.0, unit="x"),
            measured=f"(b)/(a) {bOverA.median:.2f}x, (c)/(b) {cOverB.median:.2f}x; the smaller of the two per round",
            reason="(a) < (b) or (b) < (c) failed in every round; by the medians: "
            + (" and ".join(unordered) or "neither"),
            origin=Origin.FINDING,
        ),
    )


# ============================================================================
# Exercise 4: one run decides it (the split is exact by construction)
# ============================================================================


def judge4(result: l29.Exercise4Result) -> tuple[Claim, ...]:
    """Judge the spec's claims for exercise 4, and the project's finding on abandoned work."""
    config = result.config
    run = result.run
    counted = result.successes + result.valueErrors + result.timeouts
    busy = [timing.busyAfterDeadlineSeconds for timing in run.abandoned]
    stillRunning = sum(seconds > 0 for seconds in busy)
    return (
        judge(
            LECTURE,
            4,
            f"successes + ValueError failures + timeout failures = {config.tasks}",
            measured=f"{result.successes} + {result.valueErrors} + {result.timeouts} = {counted}",
            holds=counted == len(run.reports) == config.tasks,
            kind=ClaimKind.STRUCTURAL,
            reason="a task was lost or reported twice",
        ),
        judge(
            LECTURE,
            4,
            f"the split is exactly {config.succeeding}/{config.failing}/{config.slow}: each task ends as its role says",
            measured=f"{result.matchingRoles}/{config.tasks} tasks match (fails -> ValueError, "
            "too slow -> timeout, succeeds -> ok)",
            holds=result.matchingRoles == config.tasks,
            kind=ClaimKind.STRUCTURAL,
            reason="a task's outcome depended on timing",
        ),
        judge(
            LECTURE,
            4,
            "failures are isolated per task: no exception escapes gather",
            measured=f"gather returned {len(run.reports)} reports and {len(run.retries)} retry reports",
            holds=len(run.reports) == config.tasks,
            kind=ClaimKind.STRUCTURAL,
            reason="gather returned fewer reports than tasks",
        ),
        judge(
            LECTURE,
            4,
            f"every retry with shouldFail=False, timeoutMs={config.okMs:g} succeeds",
            measured=f"{result.retriesSucceeded}/{len(run.retries)} retries ok",
            holds=result.retriesSucceeded == len(run.retries) == config.failing + config.slow,
            kind=ClaimKind.STRUCTURAL,
            reason="a retry failed or timed out",
        ),
        judge(
            LECTURE,
            4,
            "wait_for cannot stop a task a worker already runs: timed-out tasks keep their workers",
            measured=f"{stillRunning} of {len(busy)} timed-out tasks still running at their deadline"
            + (f", done {min(busy) * 1e3:.0f}-{max(busy) * 1e3:.0f} ms later" if busy else "")
            + f"; retries waited {run.drainSeconds * 1e3:.0f} ms",
            holds=None if not busy else stillRunning == len(busy) and all(t.finished for t in run.abandoned),
            kind=ClaimKind.STRUCTURAL,
            reason="no task timed out on this run"
            if not busy
            else "a timed-out task had already left its worker at its deadline, or never left it",
            origin=Origin.FINDING,
        ),
    )


# ============================================================================
# Study 2 (invoke verify): a slow store downstream, the bounded consumer, a consumer crash
# ============================================================================
# How full the queue sits is a count that scheduling makes noisy, so it is measured in
# rounds. Each round runs, on one warm pool, the lecture's setup (the spec's consumer and
# transform at maxsize 5, 2 and 20) and, beyond the lecture, the bounded consumer behind a
# ProbeExecutor (a slow store after each transform, the tasks in flight counted) at 2 and
# 20; the first round also runs the spec's consumer behind the store, for the plots.
# Then a CrashingQueue whose get fails while the producer is suspended on a full queue.

STORE_MS: Final = 100.0
"""The slow downstream: 4 workers / 100 ms = 40 records/s, half the producer's ~80/s."""

QUICK_STORE_MS: Final = 80.0
"""Quick: 4 workers / 80 ms = 50 records/s, a quarter of the producer's ~200/s (2-8 ms apart)."""

NEAR: Final = 0.5
""""Oscillates near maxsize": once the pipeline is primed (the second half of the puts), the
producer's logged sizes average at least half of maxsize. The first puts cannot find the queue
full whatever the consumer does: it takes records while workers are free."""

SIGNIFICANT: Final = 2.0
""""Differ significantly": the larger queue peaks at least twice as high as the smaller."""


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

    @property
    def setting(self) -> Setting:
        """Which consumer, which maxsize, which store."""
        return (self.run.consumer, self.run.maxsize, self.storeMs)


Setting = tuple[l29.ConsumerKind, int, float]
"""A study run's consumer, maxsize and store (ms)."""


@dataclass(frozen=True, slots=True)
class Study2:
    """Everything the study measured: its rounds of runs, the crash, the exercise's config and results."""

    config: l29.Exercise2Config
    expected: tuple[tuple[int, float], ...]
    storeMs: float
    rounds: tuple[tuple[ProbedRun, ...], ...]
    failure: FailureDemo

    @property
    def runs(self) -> tuple[ProbedRun, ...]:
        """Every run of every round."""
        return tuple(probed for round_ in self.rounds for probed in round_)

    def run(self, consumer: l29.ConsumerKind, maxsize: int, storeMs: float) -> ProbedRun:
        """The first round's run with these settings (the table and the plots)."""
        return self.repeats(consumer, maxsize, storeMs)[0]

    def repeats(self, consumer: l29.ConsumerKind, maxsize: int, storeMs: float) -> list[ProbedRun]:
        """The run with these settings in every round that has it."""
        return [probed for probed in self.runs if probed.setting == (consumer, maxsize, storeMs)]


def studySettings(config: l29.Exercise2Config, storeMs: float) -> tuple[list[Setting], list[Setting]]:
    """(every round's settings, the first round's extras): the lecture's, the bounded consumer's, the plots'."""
    sizes = config.comparedMaxsizes
    lecture: list[Setting] = [("literal", size, 0.0) for size in dict.fromkeys((config.maxsize, *sizes))]
    bounded: list[Setting] = [("bounded", size, storeMs) for size in sizes]
    return [*lecture, *bounded], [("literal", size, storeMs) for size in sizes]


async def probedRounds(
    config: l29.Exercise2Config, executor: TaskExecutor, *, seed: int, storeMs: float, rounds: int
) -> tuple[list[tuple[ProbedRun, ...]], FailureDemo]:
    """``rounds`` rounds of every setting, in an order that rotates from one round to the next; then the crash."""
    every, extras = studySettings(config, storeMs)
    found: list[tuple[ProbedRun, ...]] = []
    for index in range(rounds):
        settings = every + (extras if index == 0 else [])
        shift = index % len(settings)
        runs: list[ProbedRun] = []
        for consumer, maxsize, store in settings[shift:] + settings[:shift]:
            probe = ProbeExecutor(executor, store / 1000)
            run = await l29.runPipeline(config.queue(maxsize), probe, config, seed=seed, consumer=consumer)
            runs.append(ProbedRun(run, store, probe.peak))
        found.append(tuple(runs))
    failure = await demonstrateConsumerFailure(config, executor, seed=seed, storeSeconds=storeMs / 1000)
    return found, failure


def runStudy2(
    config: l29.Exercise2Config,
    expected: tuple[tuple[int, float], ...],
    *,
    seed: int,
    storeMs: float,
    rounds: int = MIN_REPEATS,
    executor: ExecutorKind = "process",
    startMethod: StartMethod | None = None,
) -> Study2:
    """The study's rounds on one warmed pool of the exercise's size."""
    with executorScope(executor, config.workers, startMethod) as pool:
        warmUp(pool, config.workers, preload=(l29.__name__, __name__))
        found, failure = asyncio.run(probedRounds(config, pool, seed=seed, storeMs=storeMs, rounds=rounds))
    return Study2(config, expected, storeMs, tuple(found), failure)


def study2(options: RunOptions, result: l29.Exercise2Result, log: Log) -> tuple[Claim, ...]:
    """``invoke verify``: the occupancy in rounds (both consumers), the crash, judged."""
    study = runStudy2(
        result.config,
        result.expected,
        seed=options.seed,
        storeMs=QUICK_STORE_MS if options.quick else STORE_MS,
        rounds=studyRepeats(options),
        executor=result.executor,
        startMethod=options.startMethod,
    )
    log(formatStudy2(study))
    return judgeStudy2(study)


def primedSizes(run: l29.QueueRun) -> tuple[int, ...]:
    """Requirement 5's logged sizes in the second half of the run, once the pipeline is primed."""
    return run.sizesBeforePut[len(run.sizesBeforePut) // 2 :]


def occupancy(run: l29.QueueRun) -> float:
    """The primed sizes, averaged, as a fraction of maxsize."""
    return statistics.fmean(primedSizes(run)) / run.maxsize


def peakRatio(small: l29.QueueRun, large: l29.QueueRun) -> float:
    """How many times higher the larger queue peaked than the smaller one (an empty peak counts as 1)."""
    return large.largestSize / max(1, small.largestSize)


def occupancyClaims(
    study: Study2, consumer: l29.ConsumerKind, storeMs: float, nearAt: int, *, reason: str, origin: Origin
) -> tuple[Claim, Claim]:
    """Requirement 5's two observations for one consumer and store, from every round."""
    config = study.config
    small, large = min(config.comparedMaxsizes), max(config.comparedMaxsizes)
    near = study.repeats(consumer, nearAt, storeMs)
    pairs = list(zip(study.repeats(consumer, small, storeMs), study.repeats(consumer, large, storeMs), strict=True))
    who = "" if origin is Origin.LECTURE else f"(bounded consumer, {storeMs:g} ms store) "
    full = sum(size >= nearAt for p in near for size in primedSizes(p.run))
    puts = sum(len(primedSizes(p.run)) for p in near)
    means = Repeats.of([statistics.fmean(primedSizes(p.run)) for p in near])
    peaks = ", ".join(f"{s.run.largestSize}/{b.run.largestSize}" for s, b in pairs)
    return (
        judgeRepeats(
            LECTURE,
            2,
            f"{who}queue size oscillates near maxsize ({nearAt}): the producer is throttled by the consumer "
            f"(near: in the second half of the run the logged sizes average >= {NEAR:.0%} of maxsize)",
            Repeats.of([occupancy(p.run) for p in near]),
            Line.above(NEAR),
            measured=f"qsize before put, second half: mean {means.median:.1f} of {nearAt} (median of rounds); "
            f"{full} of {puts} puts found it full",
            reason=reason,
            origin=origin,
        ),
        judgeRepeats(
            LECTURE,
            2,
            f"{who}maxsize={small} and maxsize={large}: queue sizes differ significantly (the larger peaks "
            f">= {SIGNIFICANT:g}x as high)",
            Repeats.of([peakRatio(s.run, b.run) for s, b in pairs]),
            Line.above(SIGNIFICANT, unit="x"),
            measured=f"peak qsize {small} vs {large}, round by round: {peaks}",
            reason=reason,
            origin=origin,
        ),
    )


def judgeStudy2(study: Study2) -> tuple[Claim, ...]:
    """The lecture's occupancy claims (the spec's consumer), then the findings beyond it."""
    config = study.config
    small = min(config.comparedMaxsizes)
    bounded = [probed for probed in study.runs if probed.run.consumer == "bounded"]
    boundedPeak = max((probed.maxInFlight for probed in bounded), default=0)
    broken = [p for p in study.runs if p.run.results != study.expected or p.run.largestSize > p.run.maxsize]
    failure = study.failure
    literal = occupancyClaims(
        study,
        "literal",
        0.0,
        config.maxsize,
        reason="consumeRecords takes the next record as soon as it dispatched one, so the queue empties at "
        "once; the backlog waits inside the executor instead",
        origin=Origin.LECTURE,
    )
    throttled = occupancyClaims(
        study,
        "bounded",
        study.storeMs,
        small,
        reason="the consumer kept up with the producer",
        origin=Origin.FINDING,
    )
    return (
        *literal,
        *throttled,
        judge(
            LECTURE,
            2,
            f"(bounded-in-flight consumer) at most workers={config.workers} records in flight",
            measured=f"peak {boundedPeak} in flight over {len(bounded)} runs",
            holds=boundedPeak <= config.workers if bounded else None,
            kind=ClaimKind.STRUCTURAL,
            reason="the consumer dispatched more records than it allows" if bounded else "no bounded run",
            origin=Origin.FINDING,
        ),
        judge(
            LECTURE,
            2,
            "a failed consumer ends the run with a clear error; the producer never blocks forever",
            measured=f"PipelineError after {failure.secondsToFail * 1e3:.0f} ms, producer "
            f"{'was' if failure.producerWaitingAtFailure else 'was not'} on a full queue, "
            f"{failure.pendingTasks} tasks pending",
            holds=bool(failure.error) and failure.pendingTasks == 0 and failure.secondsToFail < config.waitSeconds,
            kind=ClaimKind.STRUCTURAL,
            reason="the run hung until a deadline, raised nothing, or left tasks pending",
            origin=Origin.FINDING,
        ),
        judge(
            LECTURE,
            2,
            "(study runs: slow store, both consumers) every record transformed once, within maxsize",
            measured=f"{len(study.runs) - len(broken)} of {len(study.runs)} runs x {config.totalRecords} records "
            "intact and within maxsize",
            holds=not broken,
            kind=ClaimKind.STRUCTURAL,
            reason="a study run lost, duplicated or changed a record, or overfilled its queue",
            origin=Origin.FINDING,
        ),
    )


def formatStudy2(study: Study2) -> str:
    """The first round's occupancy table, its slow-store runs side by side, and the crash."""
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
            for p in sorted(study.rounds[0], key=lambda p: (p.storeMs, p.run.consumer, p.run.maxsize))
        ],
        title=f"Study of exercise 2, round 1 of {len(study.rounds)} (bounded: at most {config.workers} in flight):",
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
    """Exercise 1's batch at one request size: each repeat of each way to serve it, and its IPC cost.

    ``sequentialWarm[i]`` and ``warm[i]`` were timed back to back in round i (so were
    ``sequentialCold[i]`` and ``cold[i]``): their ratio is that round's speedup.
    ``dumpsSeconds`` (every request pickled in the parent) and ``loadsSeconds``
    (unpickled in a worker) are measured here, in one process: CPU work that
    runs on the same cores as the analysis and that the ideal leaves out.
    """

    config: Exercise1Config
    cores: int
    sequentialWarm: tuple[float, ...]
    warm: tuple[float, ...]
    sequentialCold: tuple[float, ...]
    cold: tuple[float, ...]
    dumpsSeconds: float
    loadsSeconds: float

    @property
    def repeats(self) -> int:
        """Rounds of the warm pool."""
        return len(self.warm)

    @property
    def sequentialSeconds(self) -> float:
        """The sequential loop's median over every round."""
        return statistics.median(self.sequentialWarm + self.sequentialCold)

    @property
    def warmSeconds(self) -> float:
        """The warm pool's median."""
        return statistics.median(self.warm)

    @property
    def coldSeconds(self) -> float:
        """The cold pool's median (nan when the cold pool was not timed)."""
        return statistics.median(self.cold) if self.cold else math.nan

    @property
    def warmSpeedups(self) -> Repeats:
        """The warm pool's speedup over the sequential loop, round by round."""
        return Repeats.ratios(self.sequentialWarm, self.warm)

    @property
    def bound(self) -> float:
        """``speedupBound``: min(cores, requests / ceil(requests / workers)), the most any pool can reach."""
        return speedupBound(self.config.requests, self.config.workers, self.cores)

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

    def rows(self, suffix: str = "") -> tuple[BenchRow, ...]:
        """The warm-pool and cold-pool rows (their repeats kept) against the sequential baseline and the ideal."""
        workers = f"{self.config.workers} workers"
        return tuple(
            BenchRow.of(f"{kind} pool, {workers}{suffix}", samples, self.sequentialSeconds, self.idealSeconds)
            for kind, samples in (("warm", self.warm), ("cold", self.cold))
            if samples
        )


def measureBatch(
    config: Exercise1Config,
    *,
    seed: int,
    repeats: int,
    executor: ExecutorKind = "process",
    startMethod: StartMethod | None = None,
    cold: bool = True,
) -> BatchTimings:
    """Exercise 1's ways to serve the batch, ``repeats`` rounds each: sequential, cold pool, warm pool.

    The sequential loop is timed in turn with each pool (so a burst of load on a
    shared machine hits both, not one). The cold pool (``cold``) is started, used
    and shut down inside each timing; the warm pool is started and warmed once,
    outside. Every pool is gone before the next one forks, so no fork happens while
    a pool's threads run.
    """
    requests = makeRequests(config, seed)
    dumps, loads = serialisationSeconds(requests)
    sequentialCold: list[float] = []
    coldTimes: list[float] = []
    if cold:
        sequentialCold, coldTimes = interleavedRepeats(
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
        sequentialWarm=tuple(sequentialWarm),
        warm=tuple(warm),
        sequentialCold=tuple(sequentialCold),
        cold=tuple(coldTimes),
        dumpsSeconds=dumps,
        loadsSeconds=loads,
    )


def batchNotes(timings: BatchTimings) -> tuple[str, ...]:
    """What takes the pool's missing efficiency at one size, in measured milliseconds."""
    config = timings.config
    bound = f"min(cores={timings.cores}, {config.requests}/ceil({config.requests}/{config.workers}))"
    notes = [
        (
            f"ideal = sequential {timings.sequentialSeconds * 1e3:.1f} ms / {timings.bound:g} = "
            f"{timings.idealSeconds * 1e3:.1f} ms, where {timings.bound:g} = {bound}: no more requests run "
            "at once than there are cores, and the busiest worker serves ceil(requests / workers) of them."
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
    everySequential = timings.sequentialWarm + timings.sequentialCold
    return BenchReport(
        "29.1",
        f"async + {executor} pool vs sequential, {config.requests} requests x {config.valuesPerRequest:,} values",
        (BenchRow.of("sequential loop", everySequential, sequential, sequential), *timings.rows()),
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
            f"{best.config.valuesPerRequest:,} values per request, against a bound of {best.bound:g}x."
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
) -> dict[TierKind, list[float]]:
    """Seconds of each repeat of some of exercise 3's configurations, run in turn, on pools made outside the timing.

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
    return dict(zip(kinds, durations, strict=True))


def medianCpuTimes(config: Exercise3Config, seed: int, repeats: int) -> tuple[float, ...]:
    """Each item's ``runAnalysis`` seconds, the median of ``repeats`` measurements."""
    runs = [measureCpuTimes(config, seed) for _ in range(repeats)]
    return tuple(statistics.median(times) for times in zip(*runs, strict=True))


@dataclass(frozen=True, slots=True)
class TierTimings:
    """Exercise 3's three configurations: each one's repeats, their bounds, and the costs the model leaves out.

    ``generationSeconds`` is building every item's data inside the fetch (CPU
    under the GIL in the threads of (a), in the workers for (b)); ``dumpsSeconds``
    and ``loadsSeconds`` are pickling and unpickling every item's data once.
    """

    config: Exercise3Config
    model: TierModel
    labels: tuple[str, str, str]
    samples: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]
    generationSeconds: float
    dumpsSeconds: float
    loadsSeconds: float

    @property
    def medians(self) -> tuple[float, float, float]:
        """(a), (b), (c): the median of each one's repeats."""
        a, b, c = (statistics.median(times) for times in self.samples)
        return a, b, c

    def rows(self) -> tuple[BenchRow, BenchRow, BenchRow]:
        """(a), (b), (c) (their repeats kept) against (c)'s median and each one's flow bound."""
        baseline = self.medians[2]
        a, b, c = (
            BenchRow.of(label, times, baseline, ideal)
            for label, times, ideal in zip(self.labels, self.samples, self.model.ideals, strict=True)
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
    """Exercise 3's three configurations, ``repeats`` rounds each, and the model they are held to."""
    model = tierModel(config, seed, executor, cpuTimes=medianCpuTimes(config, seed, repeats))
    samples = timeConfigurations(
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
        samples=(tuple(samples["tiered"]), tuple(samples["poolOnly"]), tuple(samples["sequential"])),
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
            times = timeConfigurations(
                (kind,),
                config,
                seed=options.seed,
                repeats=options.repeats,
                executor=executor,
                startMethod=options.startMethod,
            )[kind]
            ideal = model.ideals[TIER_KINDS.index(kind)]
            swept = BenchRow.of(f"{row.label[:3]} {span}", times, model.ideals[2], ideal)
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
        ExerciseLab(1, l29.Exercise1Result, judge1, study1),
        ExerciseLab(2, l29.Exercise2Result, judge2, study2),
        ExerciseLab(3, l29.Exercise3Result, judge3, study3),
        ExerciseLab(4, l29.Exercise4Result, judge4),
    ),
    BENCHMARKS,
)
