"""Lecture 36: Process Pool for CPU-Bound Pipeline Stages - the reference solutions (spec: lecture36.txt).

1. Full async + process pool pipeline: sensors -> Queue(50) -> batches of 15 -> pool -> sink.
2. Adaptive batch sizing: a throughput monitor picks the batch size every 5 batches.
3. Worker pool with priority queuing: CRITICAL records before NORMAL ones, latency per class.
4. Process pool error handling and recovery: error records, poison pills, crashes, dead letters.

Run one with ``python l36.py --ex 1`` (``--all``, ``--quick``, ``--seed``, ``--executor``,
``--start-method``); ``invoke run --lecture 36 --ex 1`` adds the lab's verdicts. The file needs
the standard library and ``shared.py`` only: copy the two together.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import textwrap
import time
from collections import Counter, deque
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, BrokenExecutor, Future, wait
from dataclasses import dataclass, replace
from random import Random
from types import TracebackType
from typing import Final, Literal, TypedDict, final, get_args

from shared import (
    REPORT_WIDTH,
    ConfigError,
    ExecutorKind,
    Exercise,
    FailureRecord,
    Log,
    RunOptions,
    SensorReading,
    StartMethod,
    Stopwatch,
    TaskExecutor,
    WorkerLostError,
    bar,
    executorScope,
    formatTable,
    lectureMain,
    makeRng,
    plural,
    requireRange,
    runInExecutor,
    silent,
    waitFor,
    warmUp,
)

__all__ = [
    "AdaptiveBatchProcessor",
    "AsyncIngestionLayer",
    "AsyncSensorSource",
    "BatchAssembler",
    "DeadLetterLog",
    "Exploration",
    "FaultTolerantBatchProcessor",
    "PriorityBatchQueue",
    "PriorityPoolProcessor",
    "ProcessPoolComputeLayer",
    "ResultsSink",
    "SupervisedPool",
    "ThroughputMonitor",
    "classify",
    "computeBatch",
    "computeHeavyBatch",
    "computeLightBatch",
    "computePriorityBatch",
    "faultTolerantCompute",
]

LECTURE = 36


# ============================================================================
# Exercise 1 - Full Async + Process Pool Pipeline
# ============================================================================
# Requirement -> names
#   1  AsyncIngestionLayer.run(durationSec): AsyncSensorSource x N, asyncio.gather, wait_for,
#      Queue(maxsize=50); a source that raises stops alone (SourceFailure)
#   2  BatchAssembler.assemble(queue, batchSize, maxWaitSec)
#   3  ProcessPoolComputeLayer.submit_batch(pool, batch) -> computeBatch (module level)
#   4  ResultsSink.receive_batch(results): a summary every 100 records
#   5  runPipeline, runExercise1: 5 sensors at 0.05 s, batches of 15, 4 workers, 5 s, final report
# Data flow
#   AsyncSensorSource x5 -> Queue(50) -> BatchAssembler(15) -> submit_batch -> pool(4) -> ResultsSink

SCALE_LOW, SCALE_HIGH = 0.0, 100.0
ANOMALY_THRESHOLD, ROLLING_WINDOW = 0.8, 5


class AsyncSensorSource:
    """An async sensor: one reading every ``intervalSec`` (0: no sleep); the n-th is the same for a seed."""

    def __init__(self, sensorId: int, *, intervalSec: float, seed: int) -> None:
        requireRange("intervalSec", intervalSec, 0.0, 60.0)
        self.sensorId, self.name, self._intervalSec = sensorId, f"sensor-{sensorId}", intervalSec
        self._rng, self._seq = makeRng(seed, LECTURE, 1, sensorId), 0
        self._base = self._rng.uniform(40.0, 60.0)

    async def read(self) -> SensorReading:
        """The next reading, after the sensor's interval."""
        if self._intervalSec > 0:
            await asyncio.sleep(self._intervalSec)
        value = min(SCALE_HIGH, max(SCALE_LOW, self._rng.gauss(self._base, 15.0)))
        reading = SensorReading(self.sensorId, self._seq, value, time.perf_counter())
        self._seq += 1
        return reading


@final
class AsyncIngestionLayer:
    """Requirement 1: every source ingested concurrently into one bounded queue."""

    # The queue's maxsize is the backpressure: a source whose put finds it full waits there, so at
    # most maxsize readings are buffered however fast the sources are. Each source runs in a
    # coroutine that catches its own failure, so one faulty sensor never stops the others.

    def __init__(self, sources: Sequence[AsyncSensorSource], *, maxsize: int = 50, log: Log = silent) -> None:
        requireRange("maxsize", maxsize, 1, 1_000_000)
        self.sources, self._log = list(sources), log
        self.queue: asyncio.Queue[SensorReading | None] = asyncio.Queue(maxsize=maxsize)
        self._ingested = {source.name: 0 for source in self.sources}
        self._lastAt = dict.fromkeys(self._ingested, 0.0)
        self._failures: list[SourceFailure] = []
        self._maxDepth = self._blockedPuts = 0
        self._startedAt = time.perf_counter()

    async def _ingest(self, source: AsyncSensorSource) -> None:
        """Read one source into the queue until cancelled; on a failure, record it and stop."""
        try:
            while True:
                reading = await source.read()
                self._blockedPuts += self.queue.full()
                await self.queue.put(reading)
                self._ingested[source.name] += 1
                self._lastAt[source.name] = time.perf_counter() - self._startedAt
                self._maxDepth = max(self._maxDepth, self.queue.qsize())
        except Exception as error:  # noqa: BLE001 - isolation: whatever a source raises stays with that source
            at = time.perf_counter() - self._startedAt
            self._failures.append(
                SourceFailure(source.name, type(error).__name__, str(error), self._ingested[source.name], at)
            )
            self._log(f"[ingest] {source.name} failed at {at:.2f} s ({type(error).__name__}); the others carry on")

    async def run(self, durationSec: float, *, closeTimeoutSec: float = 30.0) -> None:
        """Ingest every source through ``gather`` until ``durationSec`` elapses, then end the stream."""
        # wait_for cancels the gathered sources at the deadline; one waiting on a full queue is
        # cancelled in put, so its reading is neither counted nor lost. The end-of-stream marker
        # goes behind every reading, so the assembler flushes what is left.
        requireRange("durationSec", durationSec, 0.0, 86_400.0)
        self._startedAt = time.perf_counter()
        gathered = asyncio.gather(*(self._ingest(source) for source in self.sources))
        # When Ctrl-C tears the loop down, asyncio.run cancels the source tasks directly and the
        # gather records a CancelledError nobody awaits; reading it here keeps the exit quiet.
        gathered.add_done_callback(lambda future: future.cancelled() or future.exception())
        with contextlib.suppress(TimeoutError):
            await waitFor(gathered, timeout=durationSec)
        await waitFor(self.queue.put(END_OF_STREAM), timeout=closeTimeoutSec)

    def statistics(self) -> IngestionStatistics:
        """A frozen snapshot of the counters."""
        failed = {failure.source for failure in self._failures}
        sources = tuple(
            SourceStatistics(name, count, self._lastAt[name], name in failed) for name, count in self._ingested.items()
        )
        return IngestionStatistics(sources, tuple(self._failures), self._maxDepth, self._blockedPuts)


END_OF_STREAM: Final = None  # on the ingestion queue: the assembler flushes and stops at it


@dataclass(frozen=True, slots=True)
class SourceFailure:
    """A source that raised: which one, what, after how many readings and when."""

    source: str
    errorType: str
    message: str
    readings: int
    atSec: float


@dataclass(frozen=True, slots=True)
class SourceStatistics:
    """One source's share of the ingestion: readings queued, when the last one was."""

    source: str
    ingested: int
    lastAtSec: float
    failed: bool


@dataclass(frozen=True, slots=True)
class IngestionStatistics:
    """A snapshot of the ingestion layer: per-source counts, failures, queue pressure."""

    sources: tuple[SourceStatistics, ...]
    failures: tuple[SourceFailure, ...]
    maxDepth: int
    blockedPuts: int


@final
class BatchAssembler:
    """Requirement 2: readings into batches of exactly ``batchSize``, or fewer after a quiet spell.

    ``queue.get`` runs under ``wait_for(maxWaitSec)`` (``waitFor``: 3.12's, so Ctrl-C is not lost
    on 3.11): a partial batch is flushed when no reading comes for that long, and at the end.
    """

    def __init__(self) -> None:
        self.fullBatches = self.timeoutFlushes = self.finalFlushes = 0

    async def assemble(
        self, queue: asyncio.Queue[SensorReading | None], batchSize: int, maxWaitSec: float
    ) -> AsyncGenerator[list[SensorReading], None]:
        """Yield batches until the end-of-stream marker; every reading is in exactly one batch."""
        requireRange("batchSize", batchSize, 1, 1_000_000)
        requireRange("maxWaitSec", maxWaitSec, 0.0, 3600.0)
        batch: list[SensorReading] = []
        while True:
            try:
                item = await waitFor(queue.get(), timeout=maxWaitSec)
            except TimeoutError:
                if batch:
                    self.timeoutFlushes += 1
                    yield batch
                    batch = []
                continue
            if item is END_OF_STREAM:
                if batch:
                    self.finalFlushes += 1
                    yield batch
                return
            batch.append(item)
            if len(batch) == batchSize:
                self.fullBatches += 1
                yield batch
                batch = []


@dataclass(frozen=True, slots=True)
class ComputedReading:
    """``computeBatch``'s answer for one reading."""

    sensorId: int
    seq: int
    value: float
    normalized: float
    rollingMean: float
    anomaly: bool


def computeBatch(batch: Sequence[SensorReading]) -> list[ComputedReading]:
    """Requirement 3's CPU stage: normalize, 5-point rolling mean over the batch, flag > 0.8."""
    # On the sensor scale [0, 100], not the batch's min and max: which readings share a batch is
    # timing, and a record's anomaly flag should not be.
    normalized = [min(1.0, max(0.0, (r.value - SCALE_LOW) / (SCALE_HIGH - SCALE_LOW))) for r in batch]
    results: list[ComputedReading] = []
    for index, (reading, value) in enumerate(zip(batch, normalized, strict=True)):
        window = normalized[max(0, index - ROLLING_WINDOW + 1) : index + 1]
        mean = sum(window) / len(window)
        results.append(
            ComputedReading(reading.sensorId, reading.seq, reading.value, value, mean, value > ANOMALY_THRESHOLD)
        )
    return results


@final
class ProcessPoolComputeLayer:
    """Requirement 3: the bridge from the event loop to the process pool."""

    async def submit_batch(self, pool: TaskExecutor, batch: list[SensorReading]) -> list[ComputedReading]:
        """``loop.run_in_executor(pool, computeBatch, batch)``, through ``runInExecutor``."""
        return await runInExecutor(pool, computeBatch, batch)


@final
class ResultsSink:
    """Requirement 4: keeps the results, prints a summary every ``summaryEvery`` records.

    Beyond the spec: with ``retain`` it keeps only the last ``retain`` results (and the totals);
    the spec's list grows with the run, whatever the queue's bound.
    """

    def __init__(self, *, summaryEvery: int = 100, retain: int | None = None, log: Log = silent) -> None:
        requireRange("summaryEvery", summaryEvery, 1)
        self._results: list[ComputedReading] | deque[ComputedReading] = [] if retain is None else deque(maxlen=retain)
        self._summaryEvery, self._log, self._normalizedSum = summaryEvery, log, 0.0
        self.received = self.anomalies = self.summaries = 0  # running totals, whatever is retained

    def receive_batch(self, results: Sequence[ComputedReading]) -> None:
        """Append a batch's results; print a summary each time the total passes a multiple of 100."""
        before = self.received
        self._results.extend(results)
        self.received += len(results)
        self.anomalies += sum(result.anomaly for result in results)
        self._normalizedSum += sum(result.normalized for result in results)
        if self.received // self._summaryEvery > before // self._summaryEvery:
            self.summaries += 1
            mean = f"mean normalized value {self.meanNormalized:.3f}"
            self._log(f"[sink] {self.received} received, {self.anomalies} anomalies, {mean}")

    @property
    def meanNormalized(self) -> float:
        """Mean normalized value of every record received (0 before the first)."""
        return self._normalizedSum / self.received if self.received else 0.0

    @property
    def results(self) -> tuple[ComputedReading, ...]:
        """The results kept (all of them, or the last ``retain``)."""
        return tuple(self._results)


@dataclass(frozen=True, slots=True)
class Exercise1Config:
    """The spec's numbers: 5 sensors at 0.05 s, queue of 50, batches of 15, 4 workers, 5 s."""

    sensors: int = 5
    intervalSec: float = 0.05
    queueMaxsize: int = 50
    batchSize: int = 15
    maxWaitSec: float = 0.1
    workers: int = 4  # two batches per worker in flight
    durationSec: float = 5.0
    summaryEvery: int = 100
    batchTimeoutSec: float = 30.0

    def __post_init__(self) -> None:
        requireRange("sensors", self.sensors, 1, 1_000)
        requireRange("workers", self.workers, 1, 256)

    @classmethod
    def quick(cls) -> Exercise1Config:
        """Same pipeline, a 1 s run."""
        return cls(durationSec=1.0)


@dataclass(frozen=True, slots=True)
class PipelineReport:
    """One run of the wired pipeline: every count from source to sink, and the time it took."""

    elapsedSec: float
    ingestion: IngestionStatistics
    fullBatches: int
    timeoutFlushes: int
    finalFlushes: int
    processed: int
    received: int
    anomalies: int
    meanNormalized: float
    summaries: int
    keysMatch: bool | None  # None when the sink did not keep every result
    batchSizes: tuple[tuple[int, int], ...]  # (size, how many batches had it)

    @property
    def ingested(self) -> int:
        """Readings the sources put on the queue."""
        return sum(source.ingested for source in self.ingestion.sources)

    @property
    def nothingLost(self) -> bool:
        """ingested == processed == received (and, where kept, the very same records)."""
        return self.ingested == self.processed == self.received and self.keysMatch is not False

    @property
    def throughput(self) -> float:
        """Records through the whole pipeline per second of the run."""
        return self.received / self.elapsedSec if self.elapsedSec > 0 else 0.0


async def runPipeline(
    sources: Sequence[AsyncSensorSource],
    pool: TaskExecutor,
    sink: ResultsSink,
    config: Exercise1Config,
    *,
    log: Log = silent,
) -> PipelineReport:
    """Requirement 5: ingestion -> batch assembler -> process pool -> results sink, for ``durationSec``."""
    # At most two batches per worker in the pool (a semaphore): this process holds the queue, one batch
    # being assembled and those in flight. The TaskGroup waits for all of them, or cancels all on a failure.
    ingestion = AsyncIngestionLayer(sources, maxsize=config.queueMaxsize, log=log)
    assembler = BatchAssembler()
    compute = ProcessPoolComputeLayer()
    slots = asyncio.Semaphore(2 * config.workers)
    sizes: Counter[int] = Counter()
    processed = 0

    async def process(batch: list[SensorReading]) -> None:
        nonlocal processed
        try:
            async with asyncio.timeout(config.batchTimeoutSec):
                results = await compute.submit_batch(pool, batch)
        finally:
            slots.release()
        processed += len(results)
        sink.receive_batch(results)

    watch = Stopwatch().start()
    async with asyncio.TaskGroup() as group:
        group.create_task(ingestion.run(config.durationSec))
        batches = assembler.assemble(ingestion.queue, config.batchSize, config.maxWaitSec)
        async with contextlib.aclosing(batches):
            async for batch in batches:
                async with asyncio.timeout(config.batchTimeoutSec):
                    await slots.acquire()
                sizes[len(batch)] += 1
                group.create_task(process(batch))
    elapsed = watch.stop()
    statistics = ingestion.statistics()
    keysMatch = None
    if len(sink.results) == sink.received:  # the sink kept every result: are they the very records read?
        read = {
            (s.sensorId, seq) for s, row in zip(sources, statistics.sources, strict=True) for seq in range(row.ingested)
        }
        keysMatch = {(result.sensorId, result.seq) for result in sink.results} == read
    return PipelineReport(
        elapsedSec=elapsed,
        ingestion=statistics,
        fullBatches=assembler.fullBatches,
        timeoutFlushes=assembler.timeoutFlushes,
        finalFlushes=assembler.finalFlushes,
        processed=processed,
        received=sink.received,
        anomalies=sink.anomalies,
        meanNormalized=sink.meanNormalized,
        summaries=sink.summaries,
        keysMatch=keysMatch,
        batchSizes=tuple(sorted(sizes.items())),
    )


@dataclass(frozen=True, slots=True)
class Exercise1Result:
    """What exercise 1 measured: the wired pipeline's run at the spec's parameters."""

    config: Exercise1Config
    executor: ExecutorKind
    main: PipelineReport


def makeSources(config: Exercise1Config, seed: int, *, intervalSec: float) -> list[AsyncSensorSource]:
    """The spec's sensors, one reading every ``intervalSec``."""
    return [AsyncSensorSource(sensorId, intervalSec=intervalSec, seed=seed) for sensorId in range(config.sensors)]


def runExercise1(config: Exercise1Config, options: RunOptions, *, log: Log = silent) -> Exercise1Result:
    """Requirement 5: the four components wired together, run for ``durationSec``."""
    seed, executor, startMethod = options.seed, options.executor, options.startMethod
    with executorScope(executor, config.workers, startMethod) as pool:
        warmUp(pool, config.workers, preload=(__name__,))
        sources = makeSources(config, seed, intervalSec=config.intervalSec)
        sink = ResultsSink(summaryEvery=config.summaryEvery, log=log)
        main = asyncio.run(runPipeline(sources, pool, sink, config, log=log))
    return Exercise1Result(config, executor, main)


def formatExercise1(result: Exercise1Result) -> str:
    """The final report: per-source ingestion, then the records through each stage."""
    config, main = result.config, result.main
    failures = {failure.source: f"FAILED: {failure.message}" for failure in main.ingestion.failures}
    sources = formatTable(
        ("source", "ingested", "last reading at s", "status"),
        [
            (row.source, row.ingested, f"{row.lastAtSec:.2f}", failures.get(row.source, "ok"))
            for row in main.ingestion.sources
        ],
    )
    flushes = f"{main.fullBatches} x {config.batchSize} + {main.timeoutFlushes} quiet-spell + {main.finalFlushes} final"
    flow = formatTable(
        ("stage", "records", "detail"),
        [
            ("ingested (queue)", main.ingested, f"max depth {main.ingestion.maxDepth} of {config.queueMaxsize}"),
            ("batched", main.processed, f"{flushes} flush"),
            (f"computed ({result.executor} pool)", main.processed, f"{config.workers} workers, 2 batches each"),
            ("received (sink)", main.received, f"{main.anomalies} anomalies (> {ANOMALY_THRESHOLD})"),
        ],
    )
    same = {None: "", True: ", the same (sensor, seq) pairs", False: ", pairs differ"}[main.keysMatch]
    summaries = plural(main.summaries, "sink summary", "sink summaries")
    run = f"{config.sensors} sensors every {config.intervalSec:g} s for {config.durationSec:g} s"
    lost = f"ingested {main.ingested} == processed {main.processed} == received {main.received}{same}"
    return "\n".join(
        [
            "",
            f"Final report: {run} ({main.elapsedSec:.2f} s with the drain), {main.throughput:,.0f} records/s",
            sources,
            "",
            flow,
            f"Mean normalized value {main.meanNormalized:.3f}; {summaries} (one per {config.summaryEvery} records).",
            f"Nothing lost: {'yes' if main.nothingLost else 'NO'} ({lost}).",
        ]
    )


def exercise1(options: RunOptions, log: Log) -> Exercise1Result:
    """Registry entry: run exercise 1 with the spec's numbers (or quick ones) and print it."""
    config = Exercise1Config.quick() if options.quick else Exercise1Config()
    result = runExercise1(config, options, log=log)
    log(formatExercise1(result))
    return result


# ============================================================================
# Exercise 2 - Adaptive Batch Sizing
# ============================================================================
# Requirement -> names
#   1  ThroughputMonitor.record_batch(batchSize, durationMs), recommended_batch_size(): last 10
#   2  AdaptiveBatchProcessor(computeFn, executor, monitor=...): starts at 10, takes the
#      recommendation after every 5 batches, clamped to [5, 200]
#   3  computeLightBatch (one operation per record), computeHeavyBatch (100 sines per record)
#   4  runExercise2: 5,000 records light, then 5,000 heavy, batch size history kept
#   5  formatExercise2: size over time (ASCII bars), final sizes, records/s per scenario
#   Beyond the spec: Exploration (the processor tries sizes the monitor has not seen)
# Data flow
#   records -> AdaptiveBatchProcessor.nextSize() -> pool.submit(computeFn, batch)
#           -> round trip ms -> ThroughputMonitor -> every 5 batches: new size

HEAVY_TRIG_OPS: Final = 100
BATCH_START, BATCH_MIN, BATCH_MAX, EVALUATE_EVERY = 10, 5, 200, 5  # the spec's numbers


@final
class ThroughputMonitor:
    """Requirement 1: the last 10 ``(batchSize, durationMs)``, and the size among them with the
    lowest ``durationMs / batchSize`` (the spec's rule: it can only choose a size that was tried)."""

    def __init__(self, *, historySize: int = 10) -> None:
        requireRange("historySize", historySize, 1, 100_000)
        self._history: deque[tuple[int, float]] = deque(maxlen=historySize)

    def record_batch(self, batchSize: int, durationMs: float) -> None:
        """Remember one batch: its size and its round trip in ms (pickling and IPC included)."""
        requireRange("batchSize", batchSize, 1)
        requireRange("durationMs", durationMs, 0.0)
        self._history.append((batchSize, durationMs))

    def recommended_batch_size(self) -> int:
        """The remembered size with the lowest ms per record (the earliest on a tie)."""
        if not self._history:
            raise LookupError("no batch recorded yet: nothing to recommend")
        return min(self._history, key=lambda entry: entry[1] / entry[0])[0]

    @property
    def history(self) -> tuple[tuple[int, float], ...]:
        """The remembered ``(batchSize, durationMs)``, oldest first."""
        return tuple(self._history)


@final
class AdaptiveBatchProcessor:
    """Requirement 2: start at 10, ask the monitor after every 5 batches, stay within 5..200.

    By default every batch has the current size, as the spec says, so the monitor sees only that
    size and the size stays at 10. With ``explore`` (beyond the spec) each window of 5 batches
    tries other sizes, so the recommendation can move.
    """

    def __init__(
        self,
        computeFn: ComputeFn,
        executor: TaskExecutor,
        *,
        monitor: ThroughputMonitor | None = None,
        initialBatchSize: int = BATCH_START,
        minBatchSize: int = BATCH_MIN,
        maxBatchSize: int = BATCH_MAX,
        evaluateEvery: int = EVALUATE_EVERY,
        explore: Exploration | None = None,
    ) -> None:
        requireRange("minBatchSize", minBatchSize, 1)
        requireRange("maxBatchSize", maxBatchSize, minBatchSize)
        requireRange("initialBatchSize", initialBatchSize, minBatchSize, maxBatchSize)
        requireRange("evaluateEvery", evaluateEvery, 1)
        self.computeFn, self.executor, self.explore = computeFn, executor, explore
        self.monitor = monitor if monitor is not None else ThroughputMonitor()
        self.minBatchSize, self.maxBatchSize, self.evaluateEvery = minBatchSize, maxBatchSize, evaluateEvery
        self._batchSize, self._position, self._completed = initialBatchSize, 0, 0
        self._changes: list[SizeChange] = []

    @property
    def batchSize(self) -> int:
        """The current batch size."""
        return self._batchSize

    @property
    def changes(self) -> tuple[SizeChange, ...]:
        """Every evaluation so far."""
        return tuple(self._changes)

    def clamp(self, size: float) -> int:
        """``size`` rounded and held within [minBatchSize, maxBatchSize]."""
        return max(self.minBatchSize, min(self.maxBatchSize, round(size)))

    def nextSize(self) -> int:
        """The size of the next batch: the current size, or an exploring probe around it."""
        position, self._position = self._position, self._position + 1
        factor = 1.0 if self.explore is None else self.explore.factor(position, len(self._changes))
        return self.clamp(self._batchSize * factor)

    def completed(self, batchSize: int, durationMs: float, recordsDone: int, atMs: float) -> None:
        """Record the batch; every ``evaluateEvery`` batches take the monitor's recommendation."""
        self.monitor.record_batch(batchSize, durationMs)
        self._completed += 1
        if self._completed % self.evaluateEvery == 0:
            recommended = self.monitor.recommended_batch_size()
            self._batchSize, self._position = self.clamp(recommended), 0
            self._changes.append(SizeChange(self._completed, atMs, recordsDone, recommended, self._batchSize))

    def process(
        self, records: Sequence[SensorReading], *, inFlight: int = 2, timeoutSec: float = 60.0, label: str = ""
    ) -> BatchRun:
        """Every record through the pool, sized by this processor; see ``processInBatches``."""
        run = processInBatches(
            self.computeFn, self.executor, records, self, inFlight=inFlight, timeoutSec=timeoutSec, label=label
        )
        final = self.monitor.recommended_batch_size() if self.monitor.history else None
        return replace(run, changes=self.changes, finalSize=self._batchSize, finalRecommended=final)


def computeLightBatch(batch: Sequence[SensorReading]) -> list[float]:
    """Requirement 3: one arithmetic operation per record; a batch costs little more than its round trip."""
    return [reading.value * 2.0 for reading in batch]


def computeHeavyBatch(batch: Sequence[SensorReading]) -> list[float]:
    """Requirement 3: 100 trigonometric operations per record, several microseconds of CPU each."""
    results: list[float] = []
    for reading in batch:
        acc = reading.value
        for _ in range(HEAVY_TRIG_OPS):
            acc = math.sin(acc) + 1.0
        results.append(acc)
    return results


ComputeFn = Callable[[Sequence[SensorReading]], list[float]]


# Beyond the spec: exploration ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exploration:
    """Beyond the spec: how the processor tries sizes the monitor has not seen.

    Each window of 5 batches climbs the ``ladder`` from the current size (reaching 200 in one window
    when bigger is better), and one window in ``downProbeEvery`` tries half the size once, so the
    size can come down when it is not. The price in steady state: a half-size batch every 10.
    """

    ladder: tuple[float, ...] = (1.0, 3.0, 9.0, 27.0)
    downProbe: float = 0.5
    downProbeEvery: int = 2

    def __post_init__(self) -> None:
        if not self.ladder or any(factor <= 0 for factor in self.ladder):
            raise ConfigError(f"ladder must be positive factors, got {self.ladder}")
        requireRange("downProbe", self.downProbe, 0.0, 1.0)
        requireRange("downProbeEvery", self.downProbeEvery, 1)

    def factor(self, position: int, evaluations: int) -> float:
        """The factor of the current size for batch ``position`` of a window, after ``evaluations``."""
        if position < len(self.ladder):
            return self.ladder[position]
        if position == len(self.ladder) and evaluations % self.downProbeEvery == 0:
            return self.downProbe
        return 1.0


# The harness both policies run through ------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One batch of a run: planned and actual size (the last may be short), and its round trip."""

    index: int
    planned: int
    size: int
    durationMs: float


@dataclass(frozen=True, slots=True)
class SizeChange:
    """One evaluation of the adaptive processor: what the monitor said and the size it took."""

    afterBatches: int
    atMs: float
    recordsDone: int
    recommended: int
    newSize: int


@dataclass(frozen=True, slots=True)
class BatchRun:
    """One pass over the records with one policy: time, batches, and the size history."""

    label: str
    records: int
    seconds: float
    batches: tuple[BatchRecord, ...]
    changes: tuple[SizeChange, ...]
    finalSize: int
    finalRecommended: int | None
    outputsMatch: bool

    @property
    def throughput(self) -> float:
        """Records per second over the whole pass."""
        return self.records / self.seconds if self.seconds > 0 else 0.0


def processInBatches(
    computeFn: ComputeFn,
    executor: TaskExecutor,
    records: Sequence[SensorReading],
    policy: AdaptiveBatchProcessor,
    *,
    inFlight: int = 2,
    timeoutSec: float = 60.0,
    label: str = "",
    clock: Callable[[], float] = time.perf_counter,
) -> BatchRun:
    """Every record through the pool in batches ``policy`` sizes (min = max: a fixed size), ``inFlight`` at a time.

    One per worker: a batch never waits behind another, so its round trip (``submit`` to completion, stamped
    by a done-callback) is its own pickling, IPC and compute. The policy hears of batches as they finish.
    """
    requireRange("inFlight", inFlight, 1, 10_000)
    outputs: dict[int, list[float]] = {}
    endedAt: dict[Future[list[float]], float] = {}
    pending: dict[Future[list[float]], tuple[int, int, int, int, float]] = {}  # index, planned, offset, size, t0
    done: list[BatchRecord] = []
    cursor = recordsDone = 0
    start = clock()
    while cursor < len(records) or pending:
        while cursor < len(records) and len(pending) < inFlight:
            planned = policy.nextSize()
            batch, startedAt = records[cursor : cursor + planned], clock()
            future = executor.submit(computeFn, batch)
            future.add_done_callback(lambda finished: endedAt.setdefault(finished, clock()))
            pending[future] = (len(done) + len(pending), planned, cursor, len(batch), startedAt)
            cursor += len(batch)
        finished, _ = wait(pending, timeout=timeoutSec, return_when=FIRST_COMPLETED)
        if not finished:
            raise TimeoutError(f"no batch came back within {timeoutSec:g} s")
        for future in sorted(finished, key=lambda f: pending[f][0]):
            index, planned, offset, size, startedAt = pending.pop(future)
            outputs[offset] = future.result()
            ended = endedAt.get(future)  # wait() can return before the done-callback has run
            durationMs = ((clock() if ended is None else ended) - startedAt) * 1e3
            recordsDone += size
            done.append(BatchRecord(index, planned, size, durationMs))
            policy.completed(size, durationMs, recordsDone, (clock() - start) * 1e3)
    combined = [value for offset in sorted(outputs) for value in outputs[offset]]
    return BatchRun(
        label=label,
        records=len(records),
        seconds=clock() - start,
        batches=tuple(sorted(done, key=lambda b: b.index)),
        changes=(),  # this and the final sizes are the policy owner's (AdaptiveBatchProcessor.process)
        finalSize=0,
        finalRecommended=None,
        outputsMatch=combined == computeFn(records),
    )


def makeReadings(count: int, seed: int, *keys: object) -> list[SensorReading]:
    """``count`` readings from 5 sensors, values uniform on the sensor scale, from the seed."""
    rng = makeRng(seed, LECTURE, *keys)
    return [SensorReading(seq % 5, seq, rng.uniform(SCALE_LOW, SCALE_HIGH), 0.0) for seq in range(count)]


@dataclass(frozen=True, slots=True)
class Exercise2Config:
    """The spec's numbers: 5,000 records (the processor's own defaults: start at 10, every 5, 5..200)."""

    records: int = 5_000
    workers: int = 2  # also the batches in flight: one per worker
    timeoutSec: float = 60.0

    def __post_init__(self) -> None:
        requireRange("records", self.records, 1, 10_000_000)
        requireRange("workers", self.workers, 1, 256)

    @classmethod
    def quick(cls) -> Exercise2Config:
        """The same runs on 2,000 records."""
        return cls(records=2_000)


@dataclass(frozen=True, slots=True)
class WorkloadRuns:
    """One compute function through the spec's processor and the exploring one."""

    name: str
    literal: BatchRun
    exploring: BatchRun


@dataclass(frozen=True, slots=True)
class Exercise2Result:
    """What exercise 2 measured, per compute function."""

    config: Exercise2Config
    executor: ExecutorKind
    light: WorkloadRuns
    heavy: WorkloadRuns

    @property
    def workloads(self) -> tuple[WorkloadRuns, WorkloadRuns]:
        """Light then heavy."""
        return (self.light, self.heavy)


COMPUTE_FUNCTIONS: Final[tuple[tuple[str, ComputeFn], ...]] = tuple(
    (f.__name__, f) for f in (computeLightBatch, computeHeavyBatch)
)


def runExercise2(config: Exercise2Config, options: RunOptions, *, log: Log = silent) -> Exercise2Result:
    """Requirement 4: the records through each compute function, the spec's processor then the exploring one."""
    seed, executor, startMethod = options.seed, options.executor, options.startMethod
    records = makeReadings(config.records, seed, 2)
    workloads: list[WorkloadRuns] = []
    with executorScope(executor, config.workers, startMethod) as pool:
        warmUp(pool, config.workers, preload=(__name__,))
        for name, computeFn in COMPUTE_FUNCTIONS:
            # Untimed: the workers' first calls of computeFn (unpickling it, warming caches).
            AdaptiveBatchProcessor(computeFn, pool).process(records[: 20 * BATCH_START])
            log(f"[{name}] {config.records:,} records: the spec's processor, then the exploring one ...")
            runs = [
                AdaptiveBatchProcessor(computeFn, pool, explore=explore).process(
                    records, inFlight=config.workers, timeoutSec=config.timeoutSec, label=label
                )
                for label, explore in (("spec (literal)", None), ("exploring", Exploration()))
            ]
            workloads.append(WorkloadRuns(name, *runs))
    light, heavy = workloads
    return Exercise2Result(config, executor, light, heavy)


def sizeHistory(run: BatchRun) -> list[str]:
    """Requirement 5's plot for one run: a bar each time the size changed, and how long it was kept."""
    changes = [SizeChange(0, 0.0, 0, BATCH_START, BATCH_START), *run.changes]
    starts = [i for i, change in enumerate(changes) if i == 0 or change.newSize != changes[i - 1].newSize]
    lines = [f"  {run.label}: batch size over time (bar = size, max {BATCH_MAX})"]
    for at, end in zip(starts, [*starts[1:], len(changes)], strict=True):
        first, kept = changes[at], end - at - 1
        keptBy = f"kept by {plural(kept, 'evaluation', 'evaluations')}" if kept else ""
        lines.append(
            f"  {first.atMs:7.1f} ms  after {first.afterBatches:3d} batches  {first.recordsDone:5d} records  "
            f"{bar(first.newSize, BATCH_MAX, 20).ljust(20)} {first.newSize:3d}  {keptBy}".rstrip()
        )
    return lines


def formatExercise2(result: Exercise2Result) -> str:
    """Requirement 5: the size history per compute function, final sizes and records/s per scenario."""
    config = result.config
    lines = [""]
    for workload in result.workloads:
        lines += [
            f"{workload.name}:",
            *(line for run in (workload.literal, workload.exploring) for line in sizeHistory(run)),
            "",
        ]
    rows = [
        (w.name, run.label, run.finalSize, run.finalRecommended or "-")  # noqa: RUF005 - 7 cells, 2 lines
        + (len(run.batches), f"{run.seconds * 1e3:.1f}", f"{run.throughput:,.0f}")
        for w in result.workloads
        for run in (w.literal, w.exploring)
    ]
    headers = ("compute function", "processor", "final size", "recommended", "batches", "ms", "records/s")
    title = f"{config.records:,} records each, {config.workers} {result.executor} workers:"
    light, heavy = (workload.exploring.finalSize for workload in result.workloads)
    stays = f"its history only ever holds size {BATCH_START}, so the argmin is {BATCH_START}"
    lines += [
        formatTable(headers, rows, title=title),
        f"The spec's processor stays at {BATCH_START}: {stays}.",
        f"The exploring one (1x, 3x, 9x, 27x the size per window, 0.5x in one of two): light -> {light},",
        f"heavy -> {heavy}; the lecture expects light to converge larger than heavy.",
    ]
    return "\n".join(lines)


def exercise2(options: RunOptions, log: Log) -> Exercise2Result:
    """Registry entry: run exercise 2 with the spec's numbers (or quick ones) and print it."""
    config = Exercise2Config.quick() if options.quick else Exercise2Config()
    result = runExercise2(config, options, log=log)
    log(formatExercise2(result))
    return result


# ============================================================================
# Exercise 3 - Worker Pool with Priority Queuing
# ============================================================================
# Requirement -> names
#   1  PriorityBatchQueue: criticalQueue, normalQueue (maxsize=100), put, get_batch(batchSize)
#   2  classify(record): CRITICAL above 85.0 or below 15.0, else NORMAL
#   3  PriorityPoolProcessor: criticalProcessed, normalProcessed, criticalLatencyMs (createdAt -> result)
#   4  computePriorityBatch(records): the normalized value; an urgencyScore for CRITICAL records
#   5  runPriorityPipeline, runExercise3: 80% NORMAL / 20% CRITICAL for 3 s, the report
# Data flow
#   source -> classify -> PriorityBatchQueue (CRITICAL | NORMAL) -> get_batch(10)
#          -> PriorityPoolProcessor -> pool(2): computePriorityBatch -> counts, latency

SAFE_LOW, SAFE_HIGH, URGENT_SCORE = 15.0, 85.0, 50.0
Priority = Literal["CRITICAL", "NORMAL"]


class PriorityBatchQueue:
    """Requirement 1: two bounded queues; a batch drains CRITICAL before NORMAL (FIFO within a class).

    Priority is strict: a steady stream of CRITICAL work can hold NORMAL records back indefinitely.
    """

    def __init__(self, *, maxsize: int = 100) -> None:
        requireRange("maxsize", maxsize, 1, 1_000_000)
        self.criticalQueue: asyncio.Queue[SensorReading] = asyncio.Queue(maxsize=maxsize)
        self.normalQueue: asyncio.Queue[SensorReading] = asyncio.Queue(maxsize=maxsize)
        self._arrived = asyncio.Event()

    async def put(self, record: SensorReading, priority: Priority) -> None:
        """Route ``record`` to its class's queue; waits while that queue is full."""
        await (self.criticalQueue if priority == "CRITICAL" else self.normalQueue).put(record)
        self._arrived.set()

    def empty(self) -> bool:
        """Neither class has a record waiting."""
        return self.criticalQueue.empty() and self.normalQueue.empty()

    async def get_batch(self, batchSize: int, *, timeoutSec: float = 1.0) -> list[SensorReading]:
        """Up to ``batchSize`` records, CRITICAL first; ``[]`` if none came within ``timeoutSec``."""
        requireRange("batchSize", batchSize, 1)
        if self.empty():
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeoutSec):
                    await self._arrived.wait()
        # No await from here on, so nothing slips in between the two drains.
        batch: list[SensorReading] = []
        for queue in (self.criticalQueue, self.normalQueue):
            while len(batch) < batchSize and not queue.empty():
                batch.append(queue.get_nowait())
        return batch


def classify(record: SensorReading) -> Priority:
    """Requirement 2: CRITICAL above 85.0 (overheat) or below 15.0 (sensor failure), else NORMAL."""
    return "CRITICAL" if record.value > SAFE_HIGH or record.value < SAFE_LOW else "NORMAL"


@final
class PriorityPoolProcessor:
    """Requirement 3: batches from the priority queue to the pool, counted and timed per class.

    A batch is taken only when one of ``maxInFlight`` slots is free, so records wait in
    the priority queue, where order is decided, not in the pool's FIFO queue, where it is not.
    """

    def __init__(
        self,
        queue: PriorityBatchQueue,
        executor: TaskExecutor,
        *,
        batchSize: int = 10,
        maxInFlight: int = 2,
        pollSec: float = 0.05,
        batchTimeoutSec: float = 30.0,
    ) -> None:
        requireRange("maxInFlight", maxInFlight, 1, 10_000)
        self._queue, self._executor, self._batchSize, self._maxInFlight = queue, executor, batchSize, maxInFlight
        self._pollSec, self._batchTimeoutSec = pollSec, batchTimeoutSec
        self.criticalProcessed = self.normalProcessed = 0
        self.criticalLatencyMs: list[float] = []
        self.normalLatencyMs: list[float] = []
        self.results: list[PriorityResult] = []

    async def _process(self, batch: list[SensorReading], slots: asyncio.Semaphore) -> None:
        try:
            async with asyncio.timeout(self._batchTimeoutSec):
                results = await runInExecutor(self._executor, computePriorityBatch, batch)
        finally:
            slots.release()
        now = time.perf_counter()  # the results are back in this process
        for record, result in zip(batch, results, strict=True):
            if result.priority == "CRITICAL":
                self.criticalProcessed += 1
                self.criticalLatencyMs.append((now - record.createdAt) * 1e3)
            else:
                self.normalProcessed += 1
                self.normalLatencyMs.append((now - record.createdAt) * 1e3)
        self.results.extend(results)

    async def run(self, sourceDone: asyncio.Event) -> None:
        """Dispatch batches until the source is done and both queues are empty; wait for the pool."""
        slots = asyncio.Semaphore(self._maxInFlight)
        async with asyncio.TaskGroup() as group:
            while True:
                async with asyncio.timeout(self._batchTimeoutSec):
                    await slots.acquire()
                batch = await self._queue.get_batch(self._batchSize, timeoutSec=self._pollSec)
                if batch:
                    group.create_task(self._process(batch, slots))
                    continue
                slots.release()
                if sourceDone.is_set() and self._queue.empty():
                    break


def urgencyScore(value: float) -> float:
    """How far outside [15, 85] a value lies, in percent of the way to the scale's end (0 or 100)."""
    # The spec says "as a percentage" without saying of what: against the room left on the scale,
    # a score above 50% means past halfway to the worst reading.
    if value > SAFE_HIGH:
        return (value - SAFE_HIGH) / (SCALE_HIGH - SAFE_HIGH) * 100.0
    if value < SAFE_LOW:
        return (SAFE_LOW - value) / (SAFE_LOW - SCALE_LOW) * 100.0
    return 0.0


@dataclass(frozen=True, slots=True)
class PriorityResult:
    """``computePriorityBatch``'s answer for one record; ``urgencyScore`` only for CRITICAL ones."""

    sensorId: int
    seq: int
    value: float
    priority: Priority
    normalized: float
    urgencyScore: float | None


def computePriorityBatch(records: Sequence[SensorReading]) -> list[PriorityResult]:
    """Requirement 4: normalize every value; for CRITICAL records also compute the urgencyScore."""
    results: list[PriorityResult] = []
    for record in records:
        priority = classify(record)
        normalized = min(1.0, max(0.0, (record.value - SCALE_LOW) / (SCALE_HIGH - SCALE_LOW)))
        urgency = urgencyScore(record.value) if priority == "CRITICAL" else None
        results.append(PriorityResult(record.sensorId, record.seq, record.value, priority, normalized, urgency))
    return results


def priorityValue(rng: Random, criticalFraction: float) -> float:
    """A value on [0, 100]: CRITICAL (outside [15, 85]) with probability ``criticalFraction``."""
    if rng.random() < criticalFraction:
        if rng.random() < 0.5:
            return SAFE_LOW * rng.random()  # [0, 15): a failing sensor
        return SAFE_HIGH + (SCALE_HIGH - SAFE_HIGH) * (1.0 - rng.random())  # (85, 100]: overheating
    return rng.uniform(SAFE_LOW, SAFE_HIGH)


@dataclass(frozen=True, slots=True)
class Exercise3Config:
    """The spec's numbers: 80% NORMAL / 20% CRITICAL for 3 s, two queues of maxsize 100."""

    durationSec: float = 3.0
    criticalFraction: float = 0.2
    intervalSec: float = 0.01
    queueMaxsize: int = 100
    batchSize: int = 10
    workers: int = 2  # also the batches in flight: one per worker
    pollSec: float = 0.05
    batchTimeoutSec: float = 30.0

    def __post_init__(self) -> None:
        requireRange("criticalFraction", self.criticalFraction, 0.0, 1.0)
        requireRange("workers", self.workers, 1, 256)

    @classmethod
    def quick(cls) -> Exercise3Config:
        """The same mix for 0.8 s."""
        return cls(durationSec=0.8)


@dataclass(frozen=True, slots=True)
class PriorityRun:
    """One run of the priority pipeline: counts and latency per class, every result by seq."""

    elapsedSec: float
    produced: int
    producedCritical: int
    criticalProcessed: int
    normalProcessed: int
    criticalLatencyMs: tuple[float, ...]  # creation to result, per record, in the order results came back
    normalLatencyMs: tuple[float, ...]
    results: tuple[PriorityResult, ...]

    @property
    def processed(self) -> int:
        """Records whose results came back."""
        return self.criticalProcessed + self.normalProcessed

    @property
    def urgent(self) -> tuple[PriorityResult, ...]:
        """Every record with an urgencyScore above 50%, by seq."""
        return tuple(r for r in self.results if r.urgencyScore is not None and r.urgencyScore > URGENT_SCORE)


async def runPriorityPipeline(
    config: Exercise3Config, pool: TaskExecutor, *, seed: int, queue: PriorityBatchQueue | None = None
) -> PriorityRun:
    """Requirement 5: a source of mixed records -> PriorityBatchQueue -> PriorityPoolProcessor."""
    queue = queue if queue is not None else PriorityBatchQueue(maxsize=config.queueMaxsize)
    processor = PriorityPoolProcessor(
        queue,
        pool,
        batchSize=config.batchSize,
        maxInFlight=config.workers,
        pollSec=config.pollSec,
        batchTimeoutSec=config.batchTimeoutSec,
    )
    sourceDone = asyncio.Event()
    produced: Counter[Priority] = Counter()

    async def source() -> None:
        rng, deadline = makeRng(seed, LECTURE, 3, config.criticalFraction), time.perf_counter() + config.durationSec
        try:
            for seq in itertools.count():
                if time.perf_counter() >= deadline:
                    break
                if config.intervalSec > 0:
                    await asyncio.sleep(config.intervalSec)
                record = SensorReading(seq % 5, seq, priorityValue(rng, config.criticalFraction), time.perf_counter())
                async with asyncio.timeout(config.batchTimeoutSec):
                    await queue.put(record, classify(record))
                produced[classify(record)] += 1
        finally:
            sourceDone.set()

    watch = Stopwatch().start()
    async with asyncio.TaskGroup() as group:
        group.create_task(source())
        group.create_task(processor.run(sourceDone))
    return PriorityRun(
        elapsedSec=watch.stop(),
        produced=produced.total(),
        producedCritical=produced["CRITICAL"],
        criticalProcessed=processor.criticalProcessed,
        normalProcessed=processor.normalProcessed,
        criticalLatencyMs=tuple(processor.criticalLatencyMs),
        normalLatencyMs=tuple(processor.normalLatencyMs),
        results=tuple(sorted(processor.results, key=lambda r: r.seq)),
    )


@dataclass(frozen=True, slots=True)
class Exercise3Result:
    """What exercise 3 measured: the spec's run."""

    config: Exercise3Config
    executor: ExecutorKind
    main: PriorityRun


def runExercise3(config: Exercise3Config, options: RunOptions, *, log: Log = silent) -> Exercise3Result:
    """Requirement 5: a source of 80% NORMAL and 20% CRITICAL records for 3 s, through the pool."""
    seed, executor, startMethod = options.seed, options.executor, options.startMethod
    with executorScope(executor, config.workers, startMethod) as pool:
        warmUp(pool, config.workers, preload=(__name__,))
        log(f"[priority] {config.criticalFraction:.0%} CRITICAL, one record every {config.intervalSec:g} s ...")
        main = asyncio.run(runPriorityPipeline(config, pool, seed=seed))
    return Exercise3Result(config, executor, main)


def formatUrgent(records: Sequence[PriorityResult], *, across: int = 4) -> str:
    """Every record with urgencyScore > 50%, ``across`` to a line: seq, value, score."""
    cells = [(r.seq, f"{r.value:.2f}", f"{r.urgencyScore or 0.0:.1f}") for r in records]
    rows = [
        tuple(cell for entry in cells[start : start + across] for cell in entry)
        + ("",) * (3 * (across - len(cells[start : start + across])))
        for start in range(0, len(cells), across)
    ]
    return formatTable(("seq", "value", "urgency %") * across, rows)


def formatExercise3(result: Exercise3Result) -> str:
    """Requirement 5's report: totals per class, mean CRITICAL latency, every urgent record."""
    config, main = result.config, result.main
    run = f"{config.workers} {result.executor} workers, batches of {config.batchSize}"
    critical, normal = (sum(ms) / len(ms) if ms else 0.0 for ms in (main.criticalLatencyMs, main.normalLatencyMs))
    lines = [
        "",
        f"{main.produced:,} records in {config.durationSec:g} s ({main.producedCritical:,} CRITICAL), {run}",
        f"Total processed: {main.processed:,}  CRITICAL: {main.criticalProcessed:,}  NORMAL: {main.normalProcessed:,}",
        f"Mean CRITICAL latency: {critical:.2f} ms (NORMAL: {normal:.2f} ms)",
        "",
        f"Records with urgencyScore > {URGENT_SCORE:g}%: {len(main.urgent)}",
        *([formatUrgent(main.urgent)] if main.urgent else []),
    ]
    return "\n".join(lines)


def exercise3(options: RunOptions, log: Log) -> Exercise3Result:
    """Registry entry: run exercise 3 with the spec's numbers (or quick ones) and print it."""
    config = Exercise3Config.quick() if options.quick else Exercise3Config()
    result = runExercise3(config, options, log=log)
    log(formatExercise3(result))
    return result


# ============================================================================
# Exercise 4 - Process Pool Error Handling and Recovery
# ============================================================================
# Requirement -> names
#   1  FaultTolerantBatchProcessor; its computeFn faultTolerantCompute never raises for a record:
#      ValueError / ArithmeticError -> {"error", "originalRecord", "status": "FAILED"}
#   2  makeFaultRecords: 5% NaN/inf; faultTolerantCompute marks them POISON_PILL (math.isfinite)
#   3  crashDecision: RuntimeError("worker crash") at 2%; the processor logs it, re-runs the batch
#      on a 1-worker recovery pool, and dead-letters its records if that fails too
#   4  DeadLetterLog (record, exception type, message, attempts, timestamp), replay(computeFn)
#   5  runExercise4: 2,000 records, then deadLetterLog.replay(computeFn), the full report
#   Beyond the spec: SupervisedPool (after this section) replaces a pool whose worker died
# Data flow
#   records -> batches of 20 -> pool(2), 4 in flight: faultTolerantCompute -> results
#     crashed, or lost with a dead worker -> recovery pool(1) -> results | DeadLetterLog -> replay

Stage = Literal["main", "recovery", "replay"]
Status = Literal["OK", "FAILED", "POISON_PILL"]
STATUSES: Final[tuple[Status, ...]] = ("OK", "FAILED", "POISON_PILL")
RECOVER: Final = "re-run on the recovery pool"
BATCH_TIMEOUT_SEC: Final = 60.0  # no batch takes longer: a deadline, so that nothing waits forever
RecoveryOutcome = Literal["recovered", "crashed again", "killed the recovery worker", "broken from outside"]


@final
class FaultTolerantBatchProcessor:
    """Requirements 1 and 3: every record ends in exactly one outcome, a result or a dead letter.

    A future raising ``RuntimeError`` sends its batch to the recovery pool: a crash, or a dead worker's
    (``BrokenProcessPool``, a ``RuntimeError``)."""

    def __init__(
        self,
        *,
        seed: int,
        crashRate: float,
        computeFn: ComputeJobFn | None = None,
        batchSize: int = 20,
        executor: ExecutorKind = "process",
        workers: int = 2,
        startMethod: StartMethod | None = None,
        log: Log = silent,
    ) -> None:
        requireRange("crashRate", crashRate, 0.0, 1.0)
        requireRange("batchSize", batchSize, 1, 1_000_000)
        self.seed, self.crashRate, self.batchSize, self.timeoutSec = seed, crashRate, batchSize, BATCH_TIMEOUT_SEC
        self.computeFn = computeFn if computeFn is not None else faultTolerantCompute
        self.pool, self.deadLetterLog, self._log = (executor, workers, startMethod), DeadLetterLog(), log

    def process(self, records: Sequence[FaultRecord]) -> ProcessingReport:
        """Process every record; return the outcome of each and how the pools fared."""
        self._results: dict[int, ResultEntry] = {}
        self._attempts: Counter[int] = Counter()
        self._toRecover: dict[str, list[ComputeJob]] = {"crashed": [], "killed": [], "outside": []}
        self._deaths: list[str] = []  # each dead worker: how, where, what it cost
        self._crashes = 0
        outcomes: Counter[RecoveryOutcome] = Counter()
        before, (kind, workers, startMethod), size = len(self.deadLetterLog.entries), self.pool, self.batchSize
        jobs = [
            ComputeJob(batchId, "main", tuple(records[at : at + size]), self.seed, self.crashRate)
            for batchId, at in enumerate(range(0, len(records), size))
        ]
        with Stopwatch() as watch:  # the pools live one after the other: none forks beside another's threads
            with SupervisedPool(kind, workers, startMethod, log=self._log) as main:
                self._mainStage(main, jobs, inFlight=2 * workers)  # two per worker: each busy, little lost to a death
            pools = [main]
            toRecover = sorted(itertools.chain(*self._toRecover.values()), key=lambda job: job.batchId)
            if toRecover:
                with SupervisedPool(kind, 1, startMethod, log=self._log) as recovery:
                    for job in toRecover:
                        outcomes[self._alone(recovery, replace(job, stage="recovery"))] += 1
                pools.append(recovery)
        batchIds = {why: tuple(sorted(job.batchId for job in jobs)) for why, jobs in self._toRecover.items()}
        return ProcessingReport(
            total=len(records),
            results=tuple(self._results[key] for key in sorted(self._results)),
            deadLetters=self.deadLetterLog.entries[before:],
            crashes=self._crashes,
            crashedBatches=batchIds["crashed"],
            killerBatches=batchIds["killed"],
            lostBatches=batchIds["outside"],
            recovery=tuple(outcomes[outcome] for outcome in get_args(RecoveryOutcome)),
            poolReplacements=sum(pool.replacements for pool in pools),
            deaths=(*(f"{how} while a pool started" for p in pools for how in p.startBreaks), *self._deaths),
            seconds=watch.elapsed,
        )

    def _mainStage(self, pool: SupervisedPool, jobs: Sequence[ComputeJob], *, inFlight: int) -> None:
        """Every job on the main pool, ``inFlight`` at a time: all that a dead worker can cost."""
        waiting = deque(jobs)
        running: dict[Future[list[ResultEntry]], ComputeJob] = {}
        while waiting or running:
            broken: BaseException | None = None
            try:
                while waiting and len(running) < inFlight:
                    running[pool.executor.submit(self.computeFn, waiting[0])] = waiting[0]
                    waiting.popleft()
            except BrokenExecutor as error:  # the pool broke while we were submitting
                broken = error
            lost, death = self._settle(running, FIRST_COMPLETED if broken is None else ALL_COMPLETED)
            if (death := death or broken) is None:
                continue
            # A broken process pool fails every future it held: take in the rest before replacing it.
            lost = sorted(lost + self._settle(running, ALL_COMPLETED)[0], key=lambda job: job.batchId)
            how = pool.replace(death)
            if how in KILLED_FROM_OUTSIDE:  # the batches it cost are innocent: the crash path
                self._died(f"{how} (from outside) in the main run", lost, RECOVER, self._toRecover["outside"])
                continue
            # The worker ended itself: one of these batches killed it. Alone, each shows which,
            # with the same crash decisions as before (they derive from the batch, not the run).
            self._died(f"{how or 'a simulated death'} in the main run", lost, "re-run alone")
            for job in lost:
                self._alone(pool, job)

    def _settle(
        self, running: dict[Future[list[ResultEntry]], ComputeJob], until: str
    ) -> tuple[list[ComputeJob], BaseException | None]:
        """Take in finished futures (results, crashes); return the jobs lost to a dead worker and the death."""
        done, notDone = wait(running, timeout=self.timeoutSec, return_when=until)
        if notDone and (not done or until == ALL_COMPLETED):
            raise TimeoutError(f"{len(notDone)} batches still running after {self.timeoutSec:g} s")
        lost: list[ComputeJob] = []
        death: BaseException | None = None
        for future in done:
            job, error = running.pop(future), future.exception(timeout=0)
            if isinstance(error, BrokenExecutor):
                lost.append(job)  # not an attempt of its own: another batch may have killed the worker
                death = error
                continue
            self._countAttempt(job)
            if isinstance(error, RuntimeError):
                self._crash(job, error)
            elif error is not None:
                raise error
            else:
                self._accept(job, future.result(timeout=0))
        return lost, death

    def _alone(self, pool: SupervisedPool, job: ComputeJob) -> RecoveryOutcome:
        """``job`` by itself: re-run after a death (main run), or its second chance (recovery pool, whose outcome it
        returns; a main-run batch's return is not counted)."""
        self._countAttempt(job)
        try:
            results = pool.executor.submit(self.computeFn, job).result(timeout=self.timeoutSec)
        except RuntimeError as caught:  # a crash, or a dead worker (BrokenExecutor is a RuntimeError)
            error = caught
        else:
            if job.stage == "recovery":
                self._log(f"[recovery] batch {job.batchId} recovered ({plural(len(job.records), 'record', 'records')})")
            self._accept(job, results)
            return "recovered"
        # Handled outside the except clause: a Ctrl-C meanwhile must not carry the death as its context.
        if not isinstance(error, BrokenExecutor):
            self._crash(job, error)  # main run: to the recovery pool; recovery pool: to the dead letters
            return "crashed again"
        how = pool.replace(error)
        outside = how in KILLED_FROM_OUTSIDE
        died = f"{how}{' (from outside)' if outside else ''}"
        if job.stage == "main":  # the batch that killed its worker (or was killed from outside): a second chance
            self._died(
                f"{died} in the main run, alone", [job], RECOVER, self._toRecover["outside" if outside else "killed"]
            )
            return "killed the recovery worker"
        self._died(f"{died} on the recovery pool", [job], "dead-lettered")
        self._deadLetter(job, error, note=f"worker {how or 'died'}" + (" (killed from outside)" if outside else ""))
        return "broken from outside" if outside else "killed the recovery worker"

    def _crash(self, job: ComputeJob, error: BaseException) -> None:
        """Requirement 3: a crash in the main run goes to the recovery pool; a second one, to the dead letters."""
        self._crashes += 1
        if job.stage == "main":
            self._toRecover["crashed"].append(job)
            self._log(f"[main] batch {job.batchId} crashed ({error}): re-submitted to the recovery pool")
        else:
            self._log(f"[recovery] batch {job.batchId} crashed again ({error}): {len(job.records)} dead letters")
            self._deadLetter(job, error)

    def _died(self, what: str, jobs: Sequence[ComputeJob], then: str, recover: list[ComputeJob] | None = None) -> None:
        """Log and keep a dead worker; the batches it cost go to ``recover`` (for the recovery pool), if given."""
        if recover is not None:
            recover.extend(jobs)
        self._deaths.append(f"{what}: {batchNames([job.batchId for job in jobs])} {then}")
        self._log(textwrap.fill(f"[pool] a worker died: {self._deaths[-1]}", REPORT_WIDTH, subsequent_indent="  "))

    def _deadLetter(self, job: ComputeJob, error: BaseException, note: str = "") -> None:
        for record in job.records:
            self.deadLetterLog.add(job, record, error, attempts=self._attempts[record.recordId], note=note)

    def _accept(self, job: ComputeJob, results: Sequence[ResultEntry]) -> None:
        if len(results) != len(job.records):
            raise RuntimeError(f"batch {job.batchId}: {len(results)} results for {len(job.records)} records")
        self._results.update((entryRecordId(entry), entry) for entry in results)

    def _countAttempt(self, job: ComputeJob) -> None:
        self._attempts.update(record.recordId for record in job.records)


def batchNames(ids: Sequence[int]) -> str:
    """``batch 13``, ``batches 13, 14``, ``no batch``."""
    return f"batch{'es' if len(ids) > 1 else ''} {', '.join(map(str, ids))}" if ids else "no batch"


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """One input record."""

    recordId: int
    value: float


@dataclass(frozen=True, slots=True)
class ComputeJob:
    """What crosses to a worker: the records and everything the worker's decisions derive from."""

    batchId: int
    stage: Stage
    records: tuple[FaultRecord, ...]
    seed: int
    crashRate: float


class SuccessRecord(TypedDict):
    """A record processed: its value and result."""

    recordId: int
    value: float
    result: float
    status: Literal["OK"]


class ErrorRecord(TypedDict):
    """The spec's error record: ``{"error", "originalRecord", "status"}``."""

    error: str
    originalRecord: FaultRecord
    status: Literal["FAILED", "POISON_PILL"]


ResultEntry = SuccessRecord | ErrorRecord
ComputeJobFn = Callable[[ComputeJob], list[ResultEntry]]


def entryRecordId(entry: ResultEntry) -> int:
    """The id of the record an entry is about."""
    return entry["recordId"] if entry["status"] == "OK" else entry["originalRecord"].recordId


def faultTolerantCompute(job: ComputeJob) -> list[ResultEntry]:
    """Requirements 1-3: the computeFn the pool runs; it never raises for a bad record, only the crash."""
    if crashDecision(job.seed, job.batchId, job.stage, job.crashRate):
        raise RuntimeError("worker crash")
    results: list[ResultEntry] = []
    for record in job.records:
        if not math.isfinite(record.value):
            error = f"non-finite value {record.value}"
            results.append({"error": error, "originalRecord": record, "status": "POISON_PILL"})
            continue
        try:
            result = math.log(record.value) * 10.0 + math.sqrt(record.value)  # ValueError for a value <= 0
        except (ValueError, ArithmeticError) as error:
            results.append({"error": str(error), "originalRecord": record, "status": "FAILED"})
        else:
            results.append({"recordId": record.recordId, "value": record.value, "result": result, "status": "OK"})
    return results


def makeFaultRecords(count: int, *, seed: int, poisonRate: float, glitchRate: float) -> tuple[FaultRecord, ...]:
    """Requirement 2's generator: each record's fate is drawn from the seed and its id alone."""
    records: list[FaultRecord] = []
    for recordId in range(count):
        rng = makeRng(seed, LECTURE, 4, "record", recordId)
        draw = rng.random()
        if draw < poisonRate:
            value = rng.choice((math.nan, math.inf, -math.inf))
        elif draw < poisonRate + glitchRate:
            value = -rng.uniform(0.0, 10.0)  # a glitch: its log() raises ValueError
        else:
            value = rng.uniform(1.0, SCALE_HIGH)
        records.append(FaultRecord(recordId, value))
    return tuple(records)


def crashDecision(seed: int, batchId: int, stage: Stage, crashRate: float) -> bool:
    """Requirement 3: whether a batch's run at ``stage`` crashes, drawn from seed, batch id and stage."""
    # Never the global random: forked workers inherit one state, and which worker gets which batch is
    # timing. Keyed by stage, not attempt: a batch re-run because its pool was replaced draws the same.
    return makeRng(seed, LECTURE, 4, "crash", batchId, stage).random() < crashRate


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Requirement 4: a record given up on, why (exception type, message, attempts, timestamp), its replay job."""

    record: FaultRecord
    job: ComputeJob
    failure: FailureRecord


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """What one replay did: how many it retried, what came back (``recovered``), what is still dead."""

    attempted: int
    recovered: tuple[ResultEntry, ...]
    stillDead: tuple[DeadLetter, ...]

    @property
    def successes(self) -> int:
        """Dead letters that produced an outcome this time (OK, FAILED or POISON_PILL)."""
        return len(self.recovered)


@final
class DeadLetterLog:
    """Requirement 4: the records no stage could process, and one more try for each.

    Attempts count the runs that ended (a result, a crash, a death), not one cut short by another batch's.
    """

    def __init__(self) -> None:
        self._entries: list[DeadLetter] = []

    @property
    def entries(self) -> tuple[DeadLetter, ...]:
        """Every dead letter, in the order they were logged."""
        return tuple(self._entries)

    def add(self, job: ComputeJob, record: FaultRecord, error: BaseException, *, attempts: int, note: str = "") -> None:
        """Log ``record`` as failed by ``error`` (``note`` says more) after ``attempts`` attempts."""
        message = f"{note}: {error}" if note else str(error)
        failure = FailureRecord(record.recordId, type(error).__name__, message, attempts, time.time())
        self._entries.append(DeadLetter(record, replace(job, records=(record,)), failure))

    def replay(self, computeFn: ComputeJobFn) -> ReplayReport:
        """Retry every dead letter once more, here, as a one-record job; keep those that fail again."""
        recovered: list[ResultEntry] = []
        stillDead: list[DeadLetter] = []
        for letter in self._entries:
            job = replace(letter.job, stage="replay")
            try:
                recovered.extend(computeFn(job))
            except Exception as error:  # noqa: BLE001 - a replay outlives whatever a record does
                attempts = letter.failure.attempts + 1
                failure = FailureRecord(letter.record.recordId, type(error).__name__, str(error), attempts, time.time())
                stillDead.append(replace(letter, job=job, failure=failure))
        attempted, self._entries = len(self._entries), stillDead
        return ReplayReport(attempted, tuple(recovered), tuple(stillDead))


@dataclass(frozen=True, slots=True)
class ProcessingReport:
    """One pass of the fault-tolerant processor: an outcome for every record, and how it got there."""

    total: int
    results: tuple[ResultEntry, ...]
    deadLetters: tuple[DeadLetter, ...]
    crashes: int  # RuntimeError("worker crash"), in the main run and again on the recovery pool
    crashedBatches: tuple[int, ...]  # sent to the recovery pool: crashed in the main run,
    killerBatches: tuple[int, ...]  # killed their worker on their own,
    lostBatches: tuple[int, ...]  # or were in flight when a worker was killed from outside
    recovery: tuple[int, ...]  # how many ended each RecoveryOutcome, in its order
    poolReplacements: int
    deaths: tuple[str, ...]  # each dead worker: how, where, what it cost
    seconds: float

    def count(self, status: Status) -> int:
        """Result entries with ``status``."""
        return sum(entry["status"] == status for entry in self.results)

    def ended(self, outcome: RecoveryOutcome) -> int:
        """Batches of the recovery pool that ended in ``outcome``."""
        return self.recovery[get_args(RecoveryOutcome).index(outcome)]


@dataclass(frozen=True, slots=True)
class Exercise4Config:
    """The spec's numbers: 2,000 records, 5% poison pills, 2% crash probability."""

    records: int = 2_000
    poisonRate: float = 0.05
    crashRate: float = 0.02
    glitchRate: float = 0.01  # beyond the spec: values whose log() raises (FAILED records)
    batchSize: int = 20
    workers: int = 2

    def __post_init__(self) -> None:
        requireRange("crashRate", self.crashRate, 0.0, 1.0)
        requireRange("glitchRate", self.glitchRate, 0.0, 1.0 - self.poisonRate)

    @classmethod
    def quick(cls) -> Exercise4Config:
        """The spec's run as it is: it takes well under a second."""
        return cls()


@dataclass(frozen=True, slots=True)
class Exercise4Result:
    """What exercise 4 measured: the spec's run and its replay."""

    config: Exercise4Config
    executor: ExecutorKind
    records: tuple[FaultRecord, ...]
    report: ProcessingReport
    replay: ReplayReport

    def finalCount(self, status: Status) -> int:
        """Results with ``status`` after the replay."""
        return self.report.count(status) + sum(entry["status"] == status for entry in self.replay.recovered)


def runExercise4(config: Exercise4Config, options: RunOptions, *, log: Log = silent) -> Exercise4Result:
    """Requirement 5: process the records, then ``deadLetterLog.replay(computeFn)``."""
    seed, executor, startMethod = options.seed, options.executor, options.startMethod
    records = makeFaultRecords(config.records, seed=seed, poisonRate=config.poisonRate, glitchRate=config.glitchRate)
    processor = FaultTolerantBatchProcessor(
        seed=seed,
        crashRate=config.crashRate,
        batchSize=config.batchSize,
        executor=executor,
        workers=config.workers,
        startMethod=startMethod,
        log=log,
    )
    report = processor.process(records)
    replay = processor.deadLetterLog.replay(faultTolerantCompute)
    log(f"[replay] {replay.attempted} dead letters retried once: {replay.successes} came back")
    return Exercise4Result(config, executor, records, report, replay)


def formatExercise4(result: Exercise4Result) -> str:
    """Requirement 5's full report, then the sums behind it: every record, crash and crashed batch."""
    config, report, replay = result.config, result.report, result.replay
    table = formatTable(
        ("", "main run", "after the replay"),
        [
            ("total records", report.total, report.total),
            ("successful (OK)", report.count("OK"), result.finalCount("OK")),
            ("failed (error records)", report.count("FAILED"), result.finalCount("FAILED")),
            ("poison pills", report.count("POISON_PILL"), result.finalCount("POISON_PILL")),
            ("worker crashes (RuntimeError)", report.crashes, ""),
            ("dead-letter entries", len(report.deadLetters), len(replay.stillDead)),
            ("dead-letter replay successes", "", replay.successes),
        ],
    )
    run = f"{config.records:,} records, batches of {config.batchSize}, {config.workers} {result.executor} workers"
    faults = f"{config.poisonRate:.0%} poison pills, {config.crashRate:.0%} crashes, {config.glitchRate:.0%} glitches"
    counts, after = (" + ".join(f"{n(s):,} {s}" for s in STATUSES) for n in (report.count, result.finalCount))
    crashed, again = len(report.crashedBatches), report.ended("crashed again")
    sent = crashed + len(report.killerBatches) + len(report.lostBatches)
    outcomes = " + ".join(f"{n} {end}" for end, n in zip(get_args(RecoveryOutcome), report.recovery, strict=True))
    deaths = f" ({'; '.join(report.deaths)})" if report.deaths else ""
    killed, ways = len(report.killerBatches), f"{len(report.lostBatches)} lost to a kill from outside"
    lines = [
        f"{run}; {faults}",
        "",
        table,
        "",
        f"Records: {report.total:,} = {counts} + {len(report.deadLetters):,} dead letters;",
        f"  after the replay {report.total:,} = {after} + {len(replay.stillDead):,} still dead.",
        f"Worker crashes: {report.crashes} = {crashed} in the main run + {again} again on the recovery pool.",
        f"Crashed batches: {sent} = {crashed} worker crashes + {killed} killed their worker + {ways};",
        f"  {sent} = {outcomes}.",
        textwrap.fill(f"Dead workers: {len(report.deaths)}{deaths}.", REPORT_WIDTH, subsequent_indent="  "),
    ]
    return "\n" + "\n".join(lines)


def exercise4(options: RunOptions, log: Log) -> Exercise4Result:
    """Registry entry: run exercise 4 with the spec's numbers (or quick ones) and print it."""
    config = Exercise4Config.quick() if options.quick else Exercise4Config()
    result = runExercise4(config, options, log=log)
    log(formatExercise4(result))
    return result


# ============================================================================
# Beyond the spec - a supervised pool (exercise 4's; a candidate for shared.py)
# ============================================================================
# A dead worker breaks a ProcessPoolExecutor for good: every future it held, and every later submit,
# fails with BrokenProcessPool. SupervisedPool replaces it and says how the worker ended: SIGKILL or
# SIGTERM from outside (the OOM killer, kill -9, a stop); an exit code or a fault signal by itself.

KILLED_FROM_OUTSIDE: Final = frozenset({"SIGKILL", "SIGTERM"})
ExcInfo = tuple[type[BaseException] | None, BaseException | None, TracebackType | None]


@final
class SupervisedPool:
    """A pool replaced when one of its workers dies (the fresh one starts when next needed); one whose worker
    dies while it starts is started again."""

    def __init__(
        self, kind: ExecutorKind, workers: int, startMethod: StartMethod | None = None, *, log: Log = silent
    ) -> None:
        self._kind, self._workers, self._startMethod, self._log = kind, workers, startMethod, log
        self._scope: contextlib.AbstractContextManager[TaskExecutor] | None = None
        self._executor: TaskExecutor | None = None
        self._open, self.replacements = False, 0
        self.startBreaks: list[str] = []  # how each worker that died while its pool started ended

    def __enter__(self) -> SupervisedPool:
        self._start()
        self._open = True
        return self

    def __exit__(self, *exc: *ExcInfo) -> None:
        self._open = False
        self._close(*exc)

    def _close(self, *exc: *ExcInfo) -> None:
        scope, self._scope, self._executor = self._scope, None, None
        if scope is not None:
            scope.__exit__(*exc)

    @property
    def executor(self) -> TaskExecutor:
        """The current pool; after ``replace``, a fresh one, started now."""
        if not self._open:
            raise RuntimeError("the pool is not open")
        return self._executor if self._executor is not None else self._start()

    def _start(self, tries: int = 3) -> TaskExecutor:
        for _ in range(tries):
            self._scope = executorScope(self._kind, self._workers, self._startMethod)
            self._executor = self._scope.__enter__()
            try:
                if self._kind == "process":
                    warmUp(self._executor, self._workers, preload=(__name__,))
            except BrokenExecutor as caught:  # a worker (or a forkserver) killed: no work was lost yet
                broken = caught
            except BaseException as error:
                self._close(type(error), error, error.__traceback__)
                raise
            else:
                return self._executor
            # Outside the except clause: a Ctrl-C meanwhile must not carry the dead worker as its context.
            self.startBreaks.append(self._closeBroken(broken))
            self._log(f"[pool] a worker died while its pool started ({self.startBreaks[-1]}): starting again")
        raise WorkerLostError(f"while a pool started, {tries} times", how=self.startBreaks[-1])

    def _closeBroken(self, error: BaseException) -> str:
        """Close a broken pool; how its worker ended, as ``executorScope`` found it ("SIGKILL", "exit code 70")."""
        try:
            self._close(type(error), error, error.__traceback__)
        except WorkerLostError as lost:
            return lost.how
        return "how is unknown"

    def replace(self, error: BaseException) -> str:
        """Close the pool ``error`` broke (the next ``executor`` starts a fresh one); say how its worker ended."""
        self.replacements += 1
        # Only a process pool breaks; elsewhere the death was simulated, and Dask restarts a dead worker itself.
        return self._closeBroken(error) if self._kind == "process" else ""


# ============================================================================
# Registry and entry point
# ============================================================================

TITLE = "Process Pool for CPU-Bound Pipeline Stages"
EXERCISES = (
    Exercise(1, "Full async + process pool pipeline", exercise1),
    Exercise(2, "Adaptive batch sizing", exercise2),
    Exercise(3, "Worker pool with priority queuing", exercise3),
    Exercise(4, "Process pool error handling and recovery", exercise4),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run lecture 36's exercises from the command line; return the exit status."""
    return lectureMain(argv, lecture=LECTURE, title=TITLE, exercises=EXERCISES)


if __name__ == "__main__":
    raise SystemExit(main())
