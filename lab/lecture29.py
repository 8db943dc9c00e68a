"""The lab of lecture 29 (Async + multiprocessing hybrid architecture): its claims, studies and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

import l29
from l29 import (
    AnalysisResult,
    Exercise1Config,
    Exercise3Config,
    RequestData,
    TierModel,
    legacyRecord,
    makeRequests,
    measureCpuTimes,
    processAllItems,
    tierLabels,
    tierModel,
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
    foreignLoadNote,
    interleavedRepeats,
)
from lab.registry import ExerciseLab, LectureLab, carriedClaims
from shared import (
    ExecutorKind,
    InlineExecutor,
    Log,
    StartMethod,
    Stopwatch,
    TaskExecutor,
    cpuCount,
    efficiency,
    executorScope,
    formatTable,
    parallelBound,
    silent,
    speedup,
    warmUp,
)

# ============================================================================
# Benchmarks (invoke bench): each architecture's median against its model's bound
# ============================================================================

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
        (
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
        title="By size (x = speedup over the sequential loop; warm/cold = efficiency; "
        "IPC ceiling = the most efficiency the pickled payload allows):",
    )
    best = max(timings, key=lambda t: speedup(t.sequentialSeconds, t.warmSeconds))
    small, large = timings[0], timings[-1]
    ceilings = [t.ipcCeiling for t in timings]
    notes = [
        "",
        table,
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
        (*sweepNotes(timings), *foreignLoadNote(load, options.startMethod, cpuCount())),
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
        (*tierNotes(timings), *sweptNotes, *foreignLoadNote(load, options.startMethod, cpuCount())),
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
        ExerciseLab(1, l29.Exercise1Result, carriedClaims),
        ExerciseLab(2, l29.Exercise2Result, carriedClaims),
        ExerciseLab(3, l29.Exercise3Result, carriedClaims),
        ExerciseLab(4, l29.Exercise4Result, carriedClaims),
    ),
    BENCHMARKS,
)
