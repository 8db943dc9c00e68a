"""Lecture 29: Async + Multiprocessing Hybrid Architecture.

Exercises (spec: lecture29.txt):

1. Async handler with ProcessPoolExecutor: batch request processing.
2. Producer-consumer with backpressure: ``asyncio.Queue(maxsize)`` feeding a
   process pool; queue occupancy measured and plotted, the spec's consumer
   beside a bounded-in-flight one that really throttles the producer.
3. Three-tier architecture: the event loop, a thread pool for blocking I/O and
   a process pool for CPU work, against processes only and sequential.
4. Error handling: worker errors, deadlines that cannot stop a running worker,
   isolated failures and retries, with a split that is the same on every seed.

Run one with ``python l29.py --ex 1`` (or ``invoke run --lecture 29 --ex 1``);
``--all`` runs every exercise, ``--quick`` uses small sizes, ``--seed`` fixes
every random draw, ``--executor`` and ``--start-method`` pick the CPU tier.
Standard library and ``shared.py`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import math
import pickle
import statistics
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Final, Literal, TypedDict, TypeVar, final

from shared import (
    DEFAULT_SEED,
    ConfigError,
    ExecutorKind,
    Exercise,
    Log,
    OccupancyQueue,
    RunOptions,
    StartMethod,
    Stopwatch,
    TaskExecutor,
    cpuCount,
    efficiency,
    executorScope,
    flowMakespan,
    formatTable,
    lectureMain,
    makeRng,
    occupancyPlot,
    parallelBound,
    requireRange,
    runInExecutor,
    sideBySide,
    silent,
    speedup,
    timeWeightedMean,
    warmUp,
)

LECTURE = 29
T = TypeVar("T")

# ============================================================================
# Exercise 1 - Async handler with ProcessPoolExecutor: batch request processing
# ============================================================================


class RequestData(TypedDict):
    """One API request: the spec's dictionary with "requestId" and "values"."""

    requestId: int
    values: list[float]


class AnalysisResult(TypedDict):
    """``analyzeRequest``'s answer: every computed field plus the requestId."""

    requestId: int
    mean: float
    variance: float
    sumSqrt: float
    riskScore: float


def analyzeRequest(requestData: RequestData) -> AnalysisResult:
    """CPU work for one request: mean, variance, sum of square roots, risk score.

    The spec's risk score is ``sum / (mean * len(values) + 1)``. Read with ``sum`` as
    the sum of the values it is S / (S + 1), the same for every request; read with
    ``sum`` as the sum of square roots just computed (what this does) it varies a
    little per request. Either way, for uniform values in [0, 1) it sits far above
    the 0.6 threshold: the report says so.
    """
    values = requestData["values"]
    count = len(values)
    mean = sum(values) / count
    variance = sum((v - mean) ** 2 for v in values) / count
    sumSqrt = sum(math.sqrt(v) for v in values)
    return {
        "requestId": requestData["requestId"],
        "mean": mean,
        "variance": variance,
        "sumSqrt": sumSqrt,
        "riskScore": sumSqrt / (mean * count + 1),
    }


async def handleRequest(
    requestId: int, values: list[float], executor: TaskExecutor, *, log: Log = print
) -> AnalysisResult:
    """The async front end: announce, hand the CPU work to the pool, report.

    The event loop never runs ``analyzeRequest`` itself; while a worker computes,
    the loop is free to dispatch the other requests.
    """
    log(f"Request {requestId}: dispatching")
    result = await runInExecutor(executor, analyzeRequest, {"requestId": requestId, "values": values})
    log(f"Request {requestId}: complete, risk={result['riskScore']:.4f}")
    return result


@dataclass(frozen=True, slots=True)
class Exercise1Config:
    """The spec's numbers: 10 requests of 10,000 floats, 3 workers, risk > 0.6 is high."""

    requests: int = 10
    valuesPerRequest: int = 10_000
    workers: int = 3
    highRiskThreshold: float = 0.6

    def __post_init__(self) -> None:
        requireRange("requests", self.requests, 1, 10_000)
        requireRange("valuesPerRequest", self.valuesPerRequest, 1, 10_000_000)
        requireRange("workers", self.workers, 1, 256)

    @classmethod
    def quick(cls) -> Exercise1Config:
        """Same shape, a fifth of the values: well under 2 s."""
        return cls(valuesPerRequest=2_000)


@dataclass(frozen=True, slots=True)
class RiskRow:
    """One line of the summary table."""

    requestId: int
    riskScore: float
    highRisk: bool


@dataclass(frozen=True, slots=True)
class Exercise1Result:
    """Every figure exercise 1 measured; timings in seconds."""

    config: Exercise1Config
    executor: ExecutorKind
    rows: tuple[RiskRow, ...]
    highRiskCount: int
    matchesSequential: bool
    dispatchedBeforeAnyCompleted: bool
    coldSeconds: float
    warmSeconds: float
    sequentialSeconds: float
    picklingSeconds: float
    cores: int

    @property
    def bound(self) -> int:
        """The best possible speedup: min(requests, workers, cores)."""
        return parallelBound(self.config.requests, self.config.workers, self.cores)

    @property
    def coldSpeedup(self) -> float:
        """Sequential time over the first pass, which includes starting the workers."""
        return speedup(self.sequentialSeconds, self.coldSeconds)

    @property
    def warmSpeedup(self) -> float:
        """Sequential time over a second pass on the already-running pool."""
        return speedup(self.sequentialSeconds, self.warmSeconds)

    @property
    def startupSeconds(self) -> float:
        """Pool start-up, estimated as the cold pass minus the warm pass."""
        return max(0.0, self.coldSeconds - self.warmSeconds)


def makeRequests(config: Exercise1Config, seed: int) -> list[RequestData]:
    """Requests 0..N-1, each with its own stream of uniform [0, 1) floats."""
    requests: list[RequestData] = []
    for requestId in range(config.requests):
        rng = makeRng(seed, LECTURE, 1, requestId)
        requests.append(
            {
                "requestId": requestId,
                "values": [rng.random() for _ in range(config.valuesPerRequest)],
            }
        )
    return requests


async def serveRequests(requests: Sequence[RequestData], executor: TaskExecutor, log: Log) -> list[AnalysisResult]:
    """The main coroutine of requirement 3: every request at once through ``gather``."""
    return await asyncio.gather(*(handleRequest(r["requestId"], r["values"], executor, log=log) for r in requests))


def timeConcurrent(
    requests: Sequence[RequestData], executor: TaskExecutor, log: Log
) -> tuple[list[AnalysisResult], float]:
    """Serve the batch on ``executor`` in a fresh event loop; return results and seconds."""
    with Stopwatch() as watch:
        results = asyncio.run(serveRequests(requests, executor, log))
    return results, watch.elapsed


def timeSequential(requests: Sequence[RequestData]) -> tuple[list[AnalysisResult], float]:
    """Requirement 5's baseline: ``analyzeRequest`` in a plain loop, no async, no pool."""
    with Stopwatch() as watch:
        results = [analyzeRequest(r) for r in requests]
    return results, watch.elapsed


def timePickling(requests: Sequence[RequestData], results: Sequence[AnalysisResult]) -> float:
    """Seconds to pickle and unpickle every request and result: the IPC a pool adds."""
    with Stopwatch() as watch:
        for payload in (*requests, *results):
            pickle.loads(pickle.dumps(payload))  # noqa: S301 - our own payload, measuring its cost
    return watch.elapsed


def runExercise1(
    config: Exercise1Config,
    *,
    seed: int,
    executor: ExecutorKind = "process",
    startMethod: StartMethod | None = None,
    log: Log = silent,
) -> Exercise1Result:
    """Requirements 3-5: serve the batch on a cold pool, again warm, then sequentially."""
    requests = makeRequests(config, seed)
    events: list[str] = []

    def record(line: str) -> None:
        events.append(line)
        log(line)

    with executorScope(executor, config.workers, startMethod) as pool:
        concurrent, coldSeconds = timeConcurrent(requests, pool, record)
        _, warmSeconds = timeConcurrent(requests, pool, silent)
    sequential, sequentialSeconds = timeSequential(requests)

    rows = tuple(
        RiskRow(r["requestId"], r["riskScore"], r["riskScore"] > config.highRiskThreshold)
        for r in sorted(concurrent, key=lambda r: r["requestId"])
    )
    firstComplete = next(i for i, line in enumerate(events) if "complete" in line)
    lastDispatch = max(i for i, line in enumerate(events) if "dispatching" in line)
    return Exercise1Result(
        config=config,
        executor=executor,
        rows=rows,
        highRiskCount=sum(row.highRisk for row in rows),
        matchesSequential=sorted(concurrent, key=lambda r: r["requestId"]) == sequential,
        dispatchedBeforeAnyCompleted=lastDispatch < firstComplete,
        coldSeconds=coldSeconds,
        warmSeconds=warmSeconds,
        sequentialSeconds=sequentialSeconds,
        picklingSeconds=timePickling(requests, sequential),
        cores=cpuCount(),
    )


def formatExercise1(result: Exercise1Result) -> str:
    """Requirements 4 and 5: the risk table, the high-risk count, the timing comparison."""
    config = result.config
    risk = formatTable(
        ("requestId", "risk score", "class"),
        [(row.requestId, f"{row.riskScore:.4f}", "high risk" if row.highRisk else "normal") for row in result.rows],
    )
    ideal = result.sequentialSeconds / result.bound
    timings = formatTable(
        ("run", "ms", "speedup", "efficiency"),
        [
            ("sequential loop", result.sequentialSeconds * 1e3, 1.0, ""),
            (
                f"async + {result.executor} pool, cold",
                result.coldSeconds * 1e3,
                result.coldSpeedup,
                f"{efficiency(ideal, result.coldSeconds):.0%}",
            ),
            (
                f"async + {result.executor} pool, warm",
                result.warmSeconds * 1e3,
                result.warmSpeedup,
                f"{efficiency(ideal, result.warmSeconds):.0%}",
            ),
            (f"ideal: sequential / {result.bound}", ideal * 1e3, float(result.bound), "100%"),
        ],
    )
    bound = f"min(requests={config.requests}, workers={config.workers}, cores={result.cores}) = {result.bound}x"
    overheads = (
        f"pool start-up ~{result.startupSeconds * 1e3:.0f} ms (cold - warm pass), "
        f"pickling {config.valuesPerRequest:,} floats per request ~{result.picklingSeconds * 1e3:.1f} ms "
        f"for all {config.requests}, against {result.sequentialSeconds * 1e3:.0f} ms of CPU work in total"
    )
    lines = [
        "",
        risk,
        f"High-risk requests (risk > {config.highRiskThreshold}): {result.highRiskCount} of {config.requests}",
    ]
    if result.highRiskCount == config.requests:
        lines.append("(The score is ~4/3 for any request of uniform [0, 1) values: the threshold cannot separate.)")
    lines += [
        "",
        timings,
        "",
        f"Speedup: {result.warmSpeedup:.2f}x on a warm pool, {result.coldSpeedup:.2f}x counting pool start-up.",
        f"The lecture's 'min(10/3, 1)x' evaluates to 1x and is a typo; the real bound is {bound}.",
        f"What eats the rest: {overheads}.",
    ]
    return "\n".join(lines)


def exercise1(options: RunOptions, log: Log) -> Exercise1Result:
    """Registry entry: run exercise 1 with the spec's numbers (or quick ones) and print it."""
    config = Exercise1Config.quick() if options.quick else Exercise1Config()
    result = runExercise1(
        config,
        seed=options.seed,
        executor=options.executor,
        startMethod=options.startMethod,
        log=log,
    )
    log(formatExercise1(result))
    return result


# ============================================================================
# Exercise 2 - Producer-consumer with backpressure
# ============================================================================

ConsumerKind = Literal["literal", "bounded"]


class StreamRecord(TypedDict):
    """One record of the stream: the spec's dictionary with "recordId" and "data"."""

    recordId: int
    data: list[int]


StreamItem = StreamRecord | None
"""What travels through the queue: a record, or None as the poison pill."""


class PipelineError(RuntimeError):
    """The pipeline stopped before every record was processed; the message says where and why.

    ``recordsPut`` and ``producerWaiting`` say how far the producer got and whether
    it was suspended on a full queue when the run stopped.
    """

    def __init__(self, message: str, *, recordsPut: int = 0, producerWaiting: bool = False) -> None:
        super().__init__(message)
        self.recordsPut = recordsPut
        self.producerWaiting = producerWaiting


class InjectedConsumerError(RuntimeError):
    """An injected consumer failure, to show that the producer is not left blocked."""


def transformRecord(record: StreamRecord) -> tuple[int, float]:
    """CPU work for one record: ``log(sum(sqrt(|x|)) + 1)``, rounded to 6 places.

    About 0.1 ms for 1000 integers: far less than the pickling round trip to a
    worker, so this work alone never makes the consumer the slow side.
    """
    total = sum(math.sqrt(abs(x)) for x in record["data"])
    result = math.log(total + 1)
    return (record["recordId"], round(result, 6))


def transformThenStore(record: StreamRecord, storeSeconds: float) -> tuple[int, float]:
    """``transformRecord``, then hold the worker ``storeSeconds``: a slow downstream write.

    The comparison runs use it to make the consumer slower than the producer,
    the only situation in which backpressure can show at all.
    """
    result = transformRecord(record)
    time.sleep(storeSeconds)
    return result


@dataclass(frozen=True, slots=True)
class Exercise2Config:
    """The spec's numbers: 20 records of 1000 ints in [-500, 500], 5-20 ms apart, maxsize 5, 4 workers.

    ``comparedMaxsizes`` are requirement 5's queue sizes. ``storeMs`` is the slow
    downstream of the comparison's second workload (4 workers / 100 ms = 40
    records/s, half the producer's ~80/s). ``waitSeconds`` is the deadline of
    every single put, get and result wait: nothing waits forever.
    """

    totalRecords: int = 20
    valuesPerRecord: int = 1000
    valueLow: int = -500
    valueHigh: int = 500
    latencyLow: float = 0.005
    latencyHigh: float = 0.02
    maxsize: int = 5
    workers: int = 4
    comparedMaxsizes: tuple[int, ...] = (2, 20)
    storeMs: float = 100.0
    waitSeconds: float = 10.0

    def __post_init__(self) -> None:
        requireRange("totalRecords", self.totalRecords, 1, 100_000)
        requireRange("valuesPerRecord", self.valuesPerRecord, 1, 1_000_000)
        requireRange("valueHigh", self.valueHigh, self.valueLow)
        requireRange("latencyLow", self.latencyLow, 0.0, 10.0)
        requireRange("latencyHigh", self.latencyHigh, self.latencyLow, 10.0)
        requireRange("maxsize", self.maxsize, 1, 100_000)
        requireRange("workers", self.workers, 1, 256)
        for maxsize in self.comparedMaxsizes:
            requireRange("comparedMaxsizes item", maxsize, 1, 100_000)
        requireRange("storeMs", self.storeMs, 0.0, 10_000.0)
        requireRange("waitSeconds", self.waitSeconds, 0.01, 3600.0)

    @classmethod
    def quick(cls) -> Exercise2Config:
        """12 records, latencies and the slow store scaled down: the same shapes in about 2 s."""
        return cls(totalRecords=12, latencyLow=0.002, latencyHigh=0.008, storeMs=40.0)

    @property
    def storeSeconds(self) -> float:
        """The comparison's slow downstream write, in seconds."""
        return self.storeMs / 1000


def makeRecord(seed: int, recordId: int, valuesPerRecord: int, valueLow: int, valueHigh: int) -> StreamRecord:
    """Record ``recordId``'s data, from its own stream: any run can rebuild any record."""
    rng = makeRng(seed, LECTURE, 2, "data", recordId)
    return {"recordId": recordId, "data": [rng.randint(valueLow, valueHigh) for _ in range(valuesPerRecord)]}


@dataclass(slots=True)
class ProducerTally:
    """What the producer saw, filled in as it runs (so a failed run still has it)."""

    puts: int = 0
    blockedSeconds: float = 0.0
    sizesBeforePut: list[int] = field(default_factory=list)
    waiting: bool = False


@final
class InFlightGauge:
    """Counts records handed to the executor and not finished yet; keeps the peak."""

    __slots__ = ("_current", "_peak")

    def __init__(self) -> None:
        self._current = 0
        self._peak = 0

    def enter(self) -> None:
        """One more record in flight."""
        self._current += 1
        self._peak = max(self._peak, self._current)

    def leave(self) -> None:
        """One record finished (or was abandoned)."""
        self._current -= 1

    @property
    def peak(self) -> int:
        """The most records ever in flight at once."""
        return self._peak


async def produceRecords(
    queue: asyncio.Queue[StreamItem],
    totalRecords: int,
    *,
    seed: int = DEFAULT_SEED,
    config: Exercise2Config | None = None,
    tally: ProducerTally | None = None,
    log: Log = silent,
) -> int:
    """Requirement 2: generate records one at a time, put each, sleep 5-20 ms, then the poison pill.

    ``await queue.put`` is where backpressure acts: on a full queue the producer
    is suspended until the consumer takes a record. Each put has a deadline, so a
    consumer that stops draining ends the run with ``PipelineError`` instead of a
    hang. The latency draws come from their own seeded stream, not ``random``.
    """
    settings = config or Exercise2Config()
    counts = tally if tally is not None else ProducerTally()
    latency = makeRng(seed, LECTURE, 2, "latency")
    for recordId in range(totalRecords):
        record = makeRecord(seed, recordId, settings.valuesPerRecord, settings.valueLow, settings.valueHigh)
        await _putWithDeadline(queue, record, settings.waitSeconds, counts, log)
        counts.puts += 1
        await asyncio.sleep(latency.uniform(settings.latencyLow, settings.latencyHigh))
    await _putWithDeadline(queue, None, settings.waitSeconds, counts, log)
    return totalRecords


async def _putWithDeadline(
    queue: asyncio.Queue[StreamItem], item: StreamItem, waitSeconds: float, tally: ProducerTally, log: Log
) -> None:
    """Requirement 5's log line, then a put that gives up after ``waitSeconds``.

    Only a put that finds the queue full suspends the producer; its wait is the
    blocked time. ``asyncio.timeout`` rather than ``wait_for``: no extra task per put.
    """
    size = queue.qsize()
    tally.sizesBeforePut.append(size)
    log(f"Producer: queue size before put = {size}/{queue.maxsize}")
    tally.waiting = True
    try:
        with Stopwatch() as watch:
            async with asyncio.timeout(waitSeconds):
                await queue.put(item)
    except TimeoutError:
        raise PipelineError(
            f"producer waited {waitSeconds:g} s for queue space: the consumer stopped draining"
        ) from None
    finally:
        tally.waiting = False
    if size >= queue.maxsize > 0:
        tally.blockedSeconds += watch.elapsed


async def _getWithDeadline(queue: asyncio.Queue[StreamItem], waitSeconds: float) -> StreamItem:
    """The consumer's get, which gives up after ``waitSeconds`` (a producer that died)."""
    try:
        async with asyncio.timeout(waitSeconds):
            return await queue.get()
    except TimeoutError:
        raise PipelineError(f"consumer waited {waitSeconds:g} s for a record: the producer stopped") from None


async def _transformInPool(
    executor: TaskExecutor, record: StreamRecord, storeSeconds: float, gauge: InFlightGauge
) -> tuple[int, float]:
    """``run_in_executor`` for one record (the plain transform, or transform-then-store)."""
    gauge.enter()
    try:
        if storeSeconds > 0:
            return await runInExecutor(executor, transformThenStore, record, storeSeconds)
        return await runInExecutor(executor, transformRecord, record)
    finally:
        gauge.leave()


async def _abandon(tasks: Sequence[asyncio.Task[tuple[int, float]]]) -> None:
    """Cancel what has not finished and retrieve every outcome: nothing left pending or unretrieved.

    A record a worker already runs cannot be stopped; cancelling only detaches
    the loop from it, and the pool's shutdown waits for it.
    """
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _crashIfDue(
    queue: asyncio.Queue[StreamItem], crashAfter: int | None, dispatched: int, settings: Exercise2Config
) -> None:
    """Fail on purpose after ``crashAfter`` records (tests and the failure demonstration).

    The worst moment is chosen: the consumer stops taking records until the
    queue is full and the producer has had time to reach ``queue.put`` and be
    suspended there, then raises.
    """
    if crashAfter is None or dispatched < crashAfter:
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(settings.totalRecords * (settings.latencyHigh + 0.005) + 0.1):
            while not queue.full():  # noqa: ASYNC110 - a plain asyncio.Queue has no "became full" event to await
                await asyncio.sleep(0.001)
    await asyncio.sleep(2 * settings.latencyHigh + 0.005)
    raise InjectedConsumerError(f"consumer crashed after {dispatched} records (injected)")


async def consumeRecords(
    queue: asyncio.Queue[StreamItem],
    executor: TaskExecutor,
    results: list[tuple[int, float]],
    *,
    config: Exercise2Config | None = None,
    storeSeconds: float = 0.0,
    gauge: InFlightGauge | None = None,
    crashAfter: int | None = None,
) -> int:
    """Requirement 3, as the spec writes it: take, dispatch, take the next at once; gather at the end.

    This consumer never waits for a worker, so it empties the queue as fast as
    records arrive: the backlog moves into the executor's own unbounded work
    queue and the producer is never throttled, whatever ``maxsize`` is. Returns
    the number of records dispatched.
    """
    settings = config or Exercise2Config()
    inFlight = gauge or InFlightGauge()
    futures: list[asyncio.Task[tuple[int, float]]] = []
    try:
        while True:
            record = await _getWithDeadline(queue, settings.waitSeconds)
            if record is None:
                break
            await _crashIfDue(queue, crashAfter, len(futures), settings)
            futures.append(asyncio.create_task(_transformInPool(executor, record, storeSeconds, inFlight)))
        deadline = settings.waitSeconds + len(futures) * (storeSeconds + 1.0)
        # Not wait_for(gather(...)): on 3.11, a wait_for that is cancelled or times out leaves
        # the cancelled gather's CancelledError unretrieved ("exception was never retrieved").
        async with asyncio.timeout(deadline):
            results.extend(await asyncio.gather(*futures))
    except BaseException:
        await _abandon(futures)
        raise
    return len(futures)


async def consumeRecordsBounded(
    queue: asyncio.Queue[StreamItem],
    executor: TaskExecutor,
    results: list[tuple[int, float]],
    *,
    maxInFlight: int,
    config: Exercise2Config | None = None,
    storeSeconds: float = 0.0,
    gauge: InFlightGauge | None = None,
    crashAfter: int | None = None,
) -> int:
    """The variant a real pipeline needs: at most ``maxInFlight`` records handed to the executor.

    With the workers all busy it stops taking from the queue, so a slow
    consumer fills the queue and ``queue.put`` suspends the producer: the
    backpressure the bounded queue was meant to give. ``maxInFlight`` equal to
    the worker count keeps every worker busy with nothing queued inside the pool.
    """
    requireRange("maxInFlight", maxInFlight, 1, 100_000)
    settings = config or Exercise2Config()
    inFlightGauge = gauge or InFlightGauge()
    every: list[asyncio.Task[tuple[int, float]]] = []
    inFlight: set[asyncio.Task[tuple[int, float]]] = set()
    resultDeadline = settings.waitSeconds + storeSeconds + 1.0
    try:
        while True:
            while len(inFlight) >= maxInFlight:
                done, inFlight = await asyncio.wait(
                    inFlight, timeout=resultDeadline, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    raise PipelineError(f"no transform finished within {resultDeadline:g} s")
                results.extend(task.result() for task in done)
            record = await _getWithDeadline(queue, settings.waitSeconds)
            if record is None:
                break
            await _crashIfDue(queue, crashAfter, len(every), settings)
            task = asyncio.create_task(_transformInPool(executor, record, storeSeconds, inFlightGauge))
            every.append(task)
            inFlight.add(task)
        if inFlight:
            done, pending = await asyncio.wait(inFlight, timeout=resultDeadline * len(inFlight))
            if pending:
                raise PipelineError(f"{len(pending)} transforms still running after the deadline")
            results.extend(task.result() for task in done)
    except BaseException:
        await _abandon(every)
        raise
    return len(every)


@dataclass(frozen=True, slots=True)
class QueueRun:
    """One run of the pipeline: its results and how full the queue was, over time."""

    consumer: ConsumerKind
    maxsize: int
    storeMs: float
    results: tuple[tuple[int, float], ...]
    sizesBeforePut: tuple[int, ...]
    trace: tuple[tuple[float, int], ...]
    producerBlockedSeconds: float
    maxInFlight: int
    elapsedSeconds: float

    @property
    def largestSize(self) -> int:
        """The largest qsize ever observed (after any put or get)."""
        return max(size for _, size in self.trace)

    @property
    def meanSize(self) -> float:
        """qsize averaged over time, from the first put to the end of the run."""
        return timeWeightedMean(self.trace, self.elapsedSeconds)

    @property
    def meanSizeBeforePut(self) -> float:
        """The mean of requirement 5's logged values."""
        return statistics.fmean(self.sizesBeforePut)

    @property
    def fullPuts(self) -> int:
        """Puts that found the queue full: each one suspended the producer."""
        return sum(size >= self.maxsize for size in self.sizesBeforePut)

    @property
    def workload(self) -> str:
        """The spec's transform alone, or transform plus the slow store."""
        return "spec transform" if self.storeMs == 0 else f"+ {self.storeMs:g} ms store"


@dataclass(frozen=True, slots=True)
class FailureDemo:
    """A consumer that crashes while the producer waits on a full queue, and how the run ended."""

    error: str
    secondsToFail: float
    recordsPut: int
    producerWaitingAtFailure: bool
    pendingTasks: int


async def runPipeline(
    config: Exercise2Config,
    executor: TaskExecutor,
    *,
    seed: int,
    maxsize: int,
    consumer: ConsumerKind = "literal",
    storeSeconds: float = 0.0,
    crashAfter: int | None = None,
    log: Log = silent,
) -> QueueRun:
    """Requirement 4's main coroutine: queue, results list, producer and consumer under ``gather``.

    If either side fails, the other is cancelled at once (a plain ``gather``
    would leave the producer suspended on a full queue) and ``PipelineError``
    names what happened and how far the producer got.
    """
    queue: OccupancyQueue[StreamItem] = OccupancyQueue(maxsize)
    results: list[tuple[int, float]] = []
    tally = ProducerTally()
    gauge = InFlightGauge()
    if consumer == "literal":
        consuming = consumeRecords(
            queue, executor, results, config=config, storeSeconds=storeSeconds, gauge=gauge, crashAfter=crashAfter
        )
    else:
        consuming = consumeRecordsBounded(
            queue,
            executor,
            results,
            maxInFlight=config.workers,
            config=config,
            storeSeconds=storeSeconds,
            gauge=gauge,
            crashAfter=crashAfter,
        )
    watch = Stopwatch().start()
    tasks = (
        asyncio.create_task(produceRecords(queue, config.totalRecords, seed=seed, config=config, tally=tally, log=log)),
        asyncio.create_task(consuming),
    )
    try:
        await asyncio.gather(*tasks)
    except Exception as error:
        waiting = tally.waiting
        await _cancelAll(tasks)
        raise PipelineError(
            f"pipeline stopped after {watch.elapsed * 1e3:.0f} ms: {error}; the producer had put "
            f"{tally.puts} of {config.totalRecords} records"
            + (" and was waiting on a full queue" if waiting else "")
            + "; both sides are stopped",
            recordsPut=tally.puts,
            producerWaiting=waiting,
        ) from error
    except BaseException:
        await _cancelAll(tasks)
        raise
    return QueueRun(
        consumer=consumer,
        maxsize=maxsize,
        storeMs=storeSeconds * 1000,
        results=tuple(sorted(results)),
        sizesBeforePut=tuple(tally.sizesBeforePut),
        trace=queue.trace,
        producerBlockedSeconds=tally.blockedSeconds,
        maxInFlight=gauge.peak,
        elapsedSeconds=watch.stop(),
    )


async def _cancelAll(tasks: Sequence[asyncio.Task[int]]) -> None:
    """Cancel the producer and the consumer and wait until both have really stopped."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def demonstrateConsumerFailure(config: Exercise2Config, executor: TaskExecutor, *, seed: int) -> FailureDemo:
    """Crash the bounded consumer while the producer is suspended on a full maxsize-2 queue.

    The consumer fails after ``workers`` records, once the queue is full (see
    ``_crashIfDue``); the run must end at once with ``PipelineError``, not after
    the producer's put deadline, and leave no task behind.
    """
    crashAfter = max(0, min(config.workers, config.totalRecords - 3))
    with Stopwatch() as watch:
        try:
            await runPipeline(
                config,
                executor,
                seed=seed,
                maxsize=2,
                consumer="bounded",
                storeSeconds=max(config.storeSeconds, 0.01),
                crashAfter=crashAfter,
            )
        except PipelineError as error:
            failure: PipelineError | None = error
        else:
            failure = None
    pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    return FailureDemo(
        error="" if failure is None else str(failure),
        secondsToFail=watch.elapsed,
        recordsPut=0 if failure is None else failure.recordsPut,
        producerWaitingAtFailure=failure is not None and failure.producerWaiting,
        pendingTasks=len(pending),
    )


@dataclass(frozen=True, slots=True)
class Exercise2Result:
    """Every figure exercise 2 measured: the spec's run, the occupancy comparison, the failure demo."""

    config: Exercise2Config
    executor: ExecutorKind
    main: QueueRun
    comparison: tuple[QueueRun, ...]
    expected: tuple[tuple[int, float], ...]
    failure: FailureDemo
    transformSeconds: float

    @property
    def averageResult(self) -> float:
        """Requirement 4's average of the result values."""
        return statistics.fmean(value for _, value in self.main.results)

    @property
    def producerRate(self) -> float:
        """Records per second the producer can offer (5-20 ms apart): the main run's pace."""
        return self.config.totalRecords / self.main.elapsedSeconds

    def run(self, consumer: ConsumerKind, maxsize: int, storeMs: float) -> QueueRun:
        """The comparison run with these settings."""
        return next(
            r for r in self.comparison if r.consumer == consumer and r.maxsize == maxsize and r.storeMs == storeMs
        )


def timeTransform(records: Sequence[StreamRecord]) -> tuple[tuple[tuple[int, float], ...], float]:
    """The expected results, computed here in order, and the mean seconds of one transform."""
    with Stopwatch() as watch:
        expected = tuple(transformRecord(record) for record in records)
    return expected, watch.elapsed / len(records)


async def _exercise2Runs(
    config: Exercise2Config, executor: TaskExecutor, seed: int, log: Log
) -> tuple[QueueRun, list[QueueRun], FailureDemo]:
    """The spec's run (maxsize 5, logged), then each consumer x workload x maxsize, then a crash."""
    main = await runPipeline(config, executor, seed=seed, maxsize=config.maxsize, log=log)
    consumers: tuple[ConsumerKind, ...] = ("literal", "bounded")
    settings = itertools.product(dict.fromkeys((0.0, config.storeSeconds)), config.comparedMaxsizes, consumers)
    comparison = [
        await runPipeline(config, executor, seed=seed, maxsize=maxsize, consumer=consumer, storeSeconds=storeSeconds)
        for storeSeconds, maxsize, consumer in settings
    ]
    failure = await demonstrateConsumerFailure(config, executor, seed=seed)
    return main, comparison, failure


def runExercise2(
    config: Exercise2Config,
    *,
    seed: int,
    executor: ExecutorKind = "process",
    startMethod: StartMethod | None = None,
    log: Log = silent,
) -> Exercise2Result:
    """Requirements 4 and 5 on one warm pool: the spec's run, the occupancy comparison, a crash.

    The pool is warmed first so that worker start-up does not show up as queue
    occupancy in the first run.
    """
    records = [
        makeRecord(seed, recordId, config.valuesPerRecord, config.valueLow, config.valueHigh)
        for recordId in range(config.totalRecords)
    ]
    expected, transformSeconds = timeTransform(records)
    with executorScope(executor, config.workers, startMethod) as pool:
        warmUp(pool, config.workers, preload=(__name__,))
        main, comparison, failure = asyncio.run(_exercise2Runs(config, pool, seed, log))
    return Exercise2Result(
        config=config,
        executor=executor,
        main=main,
        comparison=tuple(comparison),
        expected=expected,
        failure=failure,
        transformSeconds=transformSeconds,
    )


def formatExercise2(result: Exercise2Result) -> str:
    """Requirements 4 and 5: sorted results and average, the occupancy table and plots, the crash."""
    config = result.config
    main = result.main
    resultsTable = formatTable(
        ("recordId", "result"),
        [(recordId, f"{value:.6f}") for recordId, value in main.results],
        title=f"Results of the spec's run (maxsize {main.maxsize}, {config.workers} workers), sorted by recordId:",
    )
    rows = [
        (
            run.consumer,
            run.workload,
            run.maxsize,
            f"{min(run.sizesBeforePut)} / {run.meanSizeBeforePut:.1f} / {max(run.sizesBeforePut)}",
            round(run.meanSize, 2),
            run.largestSize,
            f"{run.fullPuts}/{len(run.sizesBeforePut)}",
            run.producerBlockedSeconds * 1e3,
            run.maxInFlight,
            run.elapsedSeconds * 1e3,
        )
        for run in (main, *result.comparison)
    ]
    occupancy = formatTable(
        (
            "consumer",
            "workload",
            "maxsize",
            "qsize at put min/mean/max",
            "avg qsize",
            "max",
            "full puts",
            "blocked ms",
            "in flight",
            "run ms",
        ),
        rows,
        title=f"Queue occupancy (first row = the spec's run; avg = over time; blocked = producer suspended in put; "
        f"bounded = at most {config.workers} in flight):",
    )
    sequences = [
        f"  {run.consumer:<8} {run.workload:<15} maxsize {run.maxsize:>3}: {' '.join(map(str, run.sizesBeforePut))}"
        for run in result.comparison
    ]
    plots: list[str] = []
    for maxsize in config.comparedMaxsizes:
        pair = [result.run(consumer, maxsize, config.storeMs) for consumer in ("literal", "bounded")]
        duration = max(run.elapsedSeconds for run in pair)
        panels = [
            occupancyPlot(
                run.trace,
                run.maxsize,
                duration,
                title=f"{run.consumer} consumer, maxsize {run.maxsize}, {run.workload}",
            )
            for run in pair
        ]
        plots += ["", sideBySide(panels)]
    literalSlow = result.run("literal", min(config.comparedMaxsizes), config.storeMs)
    boundedSlow = result.run("bounded", min(config.comparedMaxsizes), config.storeMs)
    capacity = config.workers / config.storeSeconds if config.storeSeconds > 0 else math.inf
    failure = result.failure
    notes = [
        f"Average result value: {result.averageResult:.6f} over {len(main.results)} records.",
        "",
        occupancy,
        "",
        "qsize before each put (requirement 5's log line, one run per line):",
        *sequences,
        *plots,
        "  # = qsize averaged over the time slice, . = reached only for a moment",
        "",
        (
            f"The producer offers ~{result.producerRate:.0f} records/s; the spec's transform takes "
            f"{result.transformSeconds * 1e3:.2f} ms per record, so with it alone the consumer is never the slow side "
            "and neither consumer lets the queue fill."
        ),
        (
            f"With a {config.storeMs:g} ms store the pool drains {capacity:.0f} records/s. "
            "The literal consumer still empties the queue at once: the backlog sits inside the executor "
            f"({literalSlow.maxInFlight} records in flight), "
            f"the producer blocked {literalSlow.producerBlockedSeconds * 1e3:.0f} ms."
        ),
        (
            f"The bounded consumer stops taking at {config.workers} in flight, so the backlog stays in the queue: "
            f"{boundedSlow.fullPuts} of {len(boundedSlow.sizesBeforePut)} puts found it full and the producer "
            f"was suspended {boundedSlow.producerBlockedSeconds * 1e3:.0f} ms. That is backpressure."
        ),
        "",
        f"Consumer crash (bounded, maxsize 2): {failure.error or 'no error raised'}",
        (
            f"  -> ended in {failure.secondsToFail * 1e3:.0f} ms "
            f"(put/get deadline {config.waitSeconds:g} s not needed), "
            f"{failure.pendingTasks} tasks left pending."
        ),
    ]
    return "\n".join(["", resultsTable, *notes])


def exercise2(options: RunOptions, log: Log) -> Exercise2Result:
    """Registry entry: run exercise 2 with the spec's numbers (or quick ones) and print it."""
    config = Exercise2Config.quick() if options.quick else Exercise2Config()
    result = runExercise2(
        config,
        seed=options.seed,
        executor=options.executor,
        startMethod=options.startMethod,
        log=log,
    )
    log(formatExercise2(result))
    return result


# ============================================================================
# Exercise 3 - Three-tier architecture: async + threads + processes
# ============================================================================


class ItemAnalysis(TypedDict):
    """``runAnalysis``'s answer: mean, standard deviation and a 10-bin histogram over [0, 1]."""

    mean: float
    std: float
    histogram: list[int]


class DataItemResult(TypedDict):
    """``processDataItem``'s answer: the analysis with the dataId."""

    dataId: int
    mean: float
    std: float
    histogram: list[int]


HISTOGRAM_BINS: Final = 10


def legacyRecord(dataId: int, seed: int, latencyLow: float, latencyHigh: float, size: int) -> tuple[float, list[float]]:
    """The legacy system's latency and data for ``dataId``: one seeded stream, no sleeping.

    The latency model of the comparison reads the same latencies the fetches sleep.
    """
    rng = makeRng(seed, LECTURE, 3, dataId)
    latency = rng.uniform(latencyLow, latencyHigh)
    return latency, [rng.random() for _ in range(size)]


def fetchDataFromLegacySystem(
    dataId: int,
    *,
    seed: int = DEFAULT_SEED,
    latencyLow: float = 0.05,
    latencyHigh: float = 0.1,
    size: int = 5000,
) -> list[float]:
    """Requirement 1: a synchronous database call that blocks 50-100 ms, then 5000 floats.

    ``time.sleep`` holds the calling thread and releases the GIL, so eight
    threads wait out eight calls at once; on the event loop it would stall
    every other coroutine. The data is seeded with the run's seed and dataId.
    """
    latency, data = legacyRecord(dataId, seed, latencyLow, latencyHigh, size)
    time.sleep(latency)
    return data


def runAnalysis(inputData: list[float]) -> ItemAnalysis:
    """Requirement 2: mean, ``statistics.stdev`` and a 10-bin histogram of the values in [0, 1].

    Pure Python CPU work (a few ms for 5000 floats, most of it in the exact
    arithmetic of ``statistics.stdev``): it holds the GIL, so only processes run
    several at once. Values outside [0, 1] are not counted in the histogram.
    """
    histogram = [0] * HISTOGRAM_BINS
    for value in inputData:
        if 0.0 <= value <= 1.0:
            histogram[min(int(value * HISTOGRAM_BINS), HISTOGRAM_BINS - 1)] += 1
    return {"mean": statistics.fmean(inputData), "std": statistics.stdev(inputData), "histogram": histogram}


@dataclass(frozen=True, slots=True)
class Exercise3Config:
    """The spec's numbers: 12 items, 8 I/O threads, 4 CPU workers, 5000 floats fetched in 50-100 ms."""

    items: int = 12
    threads: int = 8
    workers: int = 4
    valuesPerItem: int = 5000
    latencyLow: float = 0.05
    latencyHigh: float = 0.1

    def __post_init__(self) -> None:
        requireRange("items", self.items, 1, 10_000)
        requireRange("threads", self.threads, 1, 256)
        requireRange("workers", self.workers, 1, 256)
        requireRange("valuesPerItem", self.valuesPerItem, 2, 10_000_000)
        requireRange("latencyLow", self.latencyLow, 0.0, 10.0)
        requireRange("latencyHigh", self.latencyHigh, self.latencyLow, 10.0)

    @classmethod
    def quick(cls) -> Exercise3Config:
        """Fetches of 15-30 ms instead of 50-100 ms: the same ordering in under 2 s."""
        return cls(latencyLow=0.015, latencyHigh=0.03)


async def processDataItem(
    dataId: int,
    threadPool: TaskExecutor,
    processPool: TaskExecutor,
    *,
    seed: int = DEFAULT_SEED,
    config: Exercise3Config | None = None,
) -> DataItemResult:
    """Requirement 3: fetch on ``threadPool``, analyse on ``processPool`` (both ``run_in_executor``).

    Any ``TaskExecutor`` fits either tier, which is how the comparison's three
    configurations are this same coroutine: threads + processes, processes for
    both, or the inline executor for both (fully sequential).
    """
    settings = config or Exercise3Config()
    data = await runInExecutor(
        threadPool,
        fetchDataFromLegacySystem,
        dataId,
        seed=seed,
        latencyLow=settings.latencyLow,
        latencyHigh=settings.latencyHigh,
        size=settings.valuesPerItem,
    )
    analysis = await runInExecutor(processPool, runAnalysis, data)
    return {"dataId": dataId, "mean": analysis["mean"], "std": analysis["std"], "histogram": analysis["histogram"]}


async def processAllItems(
    dataIds: Sequence[int], threadPool: TaskExecutor, processPool: TaskExecutor, *, seed: int, config: Exercise3Config
) -> list[DataItemResult]:
    """Requirement 4's main coroutine: every item at once under ``asyncio.gather``."""
    return await asyncio.gather(
        *(processDataItem(dataId, threadPool, processPool, seed=seed, config=config) for dataId in dataIds)
    )


@dataclass(frozen=True, slots=True)
class TierRun:
    """One configuration of the comparison: its time, its latency-model bound, its results."""

    label: str
    seconds: float
    idealSeconds: float
    ioServers: int
    results: tuple[DataItemResult, ...]


def timeTiers(
    label: str,
    threadPool: TaskExecutor,
    processPool: TaskExecutor,
    *,
    seed: int,
    config: Exercise3Config,
    idealSeconds: float,
    ioServers: int,
    log: Log = silent,
) -> TierRun:
    """Run all items through one configuration in a fresh event loop, time it, log one line."""
    with Stopwatch() as watch:
        results = asyncio.run(processAllItems(range(config.items), threadPool, processPool, seed=seed, config=config))
    log(f"{label}: {config.items} items in {watch.elapsed * 1e3:.0f} ms")
    return TierRun(label, watch.elapsed, idealSeconds, ioServers, tuple(results))


@dataclass(frozen=True, slots=True)
class Exercise3Result:
    """Every figure exercise 3 measured; the runs in the order (a), (b), (c)."""

    config: Exercise3Config
    executor: ExecutorKind
    latencies: tuple[float, ...]
    cpuTimes: tuple[float, ...]
    cores: int
    runs: tuple[TierRun, TierRun, TierRun]

    @property
    def cpuParallelism(self) -> int:
        """How many analyses can truly run at once: min(workers, cores), 1 off a pool of processes."""
        if self.executor in {"process", "dask"}:
            return parallelBound(self.config.items, self.config.workers, self.cores)
        return 1

    @property
    def sequential(self) -> TierRun:
        """Configuration (c)."""
        return self.runs[2]

    @property
    def cpuSeconds(self) -> float:
        """All analyses, one after another."""
        return sum(self.cpuTimes)


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


def tierLabels(config: Exercise3Config, executor: ExecutorKind) -> tuple[str, str, str]:
    """The three configurations' names, as the comparison table prints them."""
    cpuTier = "inline executor" if executor == "inline" else f"{config.workers} {executor} workers"
    return (f"(a) async + {config.threads} threads + {cpuTier}", f"(b) async + {cpuTier} only", "(c) sequential")


def runExercise3(
    config: Exercise3Config,
    *,
    seed: int,
    executor: ExecutorKind = "process",
    startMethod: StartMethod | None = None,
    log: Log = silent,
) -> Exercise3Result:
    """Requirements 4 and 5: the same coroutine on three executor pairings, timed.

    The process pool is made and warmed before the thread pool starts threads
    (forking a multi-threaded process is unsafe), and its start-up stays out of
    every timing. Each configuration is set against its bound in ``TierModel``.
    """
    model = tierModel(config, seed, executor)
    idealTiered, idealPoolOnly, idealSequential = model.ideals
    labelTiered, labelPoolOnly, labelSequential = tierLabels(config, executor)
    with executorScope(executor, config.workers, startMethod) as processPool:
        warmUp(processPool, config.workers, preload=(__name__,))
        with executorScope("thread", config.threads) as threadPool:
            tiered = timeTiers(
                labelTiered,
                threadPool,
                processPool,
                seed=seed,
                config=config,
                idealSeconds=idealTiered,
                ioServers=config.threads,
                log=log,
            )
        poolOnly = timeTiers(
            labelPoolOnly,
            processPool,
            processPool,
            seed=seed,
            config=config,
            idealSeconds=idealPoolOnly,
            ioServers=model.poolServers,
            log=log,
        )
    with executorScope("inline", 1) as inline:
        sequential = timeTiers(
            labelSequential,
            inline,
            inline,
            seed=seed,
            config=config,
            idealSeconds=idealSequential,
            ioServers=1,
            log=log,
        )
    return Exercise3Result(
        config=config,
        executor=executor,
        latencies=model.latencies,
        cpuTimes=model.cpuTimes,
        cores=cpuCount(),
        runs=(tiered, poolOnly, sequential),
    )


def formatExercise3(result: Exercise3Result) -> str:
    """Requirements 4 and 5: each item's mean and std, then the comparison table with the model's ideal."""
    config = result.config
    tiered, poolOnly, sequential = result.runs
    items = formatTable(
        ("dataId", "fetch ms", "mean", "std", "histogram (10 bins over 0-1)"),
        [
            (
                item["dataId"],
                f"{latency * 1e3:.0f}",
                f"{item['mean']:.4f}",
                f"{item['std']:.4f}",
                " ".join(f"{count:>3}" for count in item["histogram"]),
            )
            for item, latency in zip(tiered.results, result.latencies, strict=True)
        ],
        title=f"Results of (a), {config.items} items:",
    )
    comparison = formatTable(
        ("configuration", "ms", "ideal ms", "efficiency", "vs sequential"),
        [
            (
                run.label,
                run.seconds * 1e3,
                run.idealSeconds * 1e3,
                f"{efficiency(run.idealSeconds, run.seconds):.0%}",
                f"{speedup(sequential.seconds, run.seconds):.2f}x",
            )
            for run in result.runs
        ],
    )
    ordering = [run.label[:3] for run in sorted(result.runs, key=lambda run: run.seconds)]
    verdict = "held" if ordering == ["(a)", "(b)", "(c)"] else "did not hold"
    cpuShare = result.cpuSeconds / result.cpuParallelism
    cpuText = f"{result.cpuSeconds * 1e3:.0f} ms of analysis CPU / {result.cpuParallelism}"
    fetchSpan = flowMakespan([(result.latencies, tiered.ioServers)])
    waves = math.ceil(config.items / config.workers)
    return "\n".join(
        [
            "",
            items,
            "",
            comparison,
            "",
            f"Expected ordering (a) < (b) < (c) {verdict}: measured {' < '.join(ordering)}.",
            (
                "Ideal = the latency model as a flow, no overheads: each fetch (its drawn latency; "
                f"{sum(result.latencies) * 1e3:.0f} ms in all) on the next free"
            ),
            (
                f"I/O server ({tiered.ioServers} threads for (a), {poolOnly.ioServers} workers for (b)), then its "
                f"analysis on the next free of {result.cpuParallelism} CPU servers "
                f"(min(workers, cores={result.cores}))."
            ),
            (
                f"For (a), fetches alone take {fetchSpan * 1e3:.0f} ms and {cpuText} = {cpuShare * 1e3:.0f} ms; "
                f"done in two steps that is {(fetchSpan + cpuShare) * 1e3:.0f} ms,"
            ),
            (
                "but early items are analysed while later ones are still fetched: "
                f"bound {tiered.idealSeconds * 1e3:.0f} ms."
            ),
            (
                f"(b) spends its {config.workers} workers on sleeping: the fetches queue up in {waves} waves and "
                "each item's data crosses a process boundary twice."
            ),
            "(c) overlaps nothing: every fetch and every analysis in turn.",
        ]
    )


def exercise3(options: RunOptions, log: Log) -> Exercise3Result:
    """Registry entry: run exercise 3 with the spec's numbers (or quick ones) and print it."""
    config = Exercise3Config.quick() if options.quick else Exercise3Config()
    result = runExercise3(
        config,
        seed=options.seed,
        executor=options.executor,
        startMethod=options.startMethod,
        log=log,
    )
    log(formatExercise3(result))
    return result


# ============================================================================
# Exercise 4 - Error handling in the hybrid architecture
# ============================================================================

TaskRole = Literal["fails", "too slow", "succeeds"]
SUBMISSION_ORDER: Final[tuple[TaskRole, ...]] = ("fails", "succeeds", "too slow")
"""Shortest worker hold first: the tasks that can meet the deadline never queue behind 800 ms ones."""

EXPECTED_OUTCOME: Final[dict[TaskRole, str]] = {"fails": "ValueError", "too slow": "TimeoutError", "succeeds": "ok"}


class TaskSuccess(TypedDict):
    """``safeHandleTask``'s success dictionary."""

    taskId: int
    status: Literal["ok"]
    result: float


class TaskFailure(TypedDict):
    """The spec's failure dictionary, plus ``errorType`` so the summary can tell failures apart."""

    taskId: int
    status: Literal["failed"]
    error: str
    errorType: str


TaskReport = TaskSuccess | TaskFailure


def riskyComputation(taskId: int, shouldFail: bool, timeoutMs: float) -> tuple[int, float]:
    """Requirement 1: fail at once, or sleep ``timeoutMs`` then sum 50,000 square roots (~3 ms)."""
    if shouldFail:
        raise ValueError(f"Task {taskId} failed intentionally")
    time.sleep(timeoutMs / 1000)
    result = sum(math.sqrt(i) for i in range(50000))
    return (taskId, round(result, 4))


@dataclass(frozen=True, slots=True)
class AbandonedTiming:
    """A task that missed its deadline: how long its worker kept running it afterwards."""

    taskId: int
    busyAfterDeadlineSeconds: float
    finished: bool


@final
class AbandonedWork:
    """Tasks whose deadline passed while a worker may still run them, watched until they let go.

    ``asyncio.wait_for`` cancels only the awaiting side: a task already running
    in a worker keeps that worker until it returns, and a retry submitted now
    would queue behind it, with its own deadline already ticking. The done
    callback runs in the pool's thread, hence the lock. ``release`` detaches the
    event loop from whatever is still running (call it before the loop ends).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._timedOutAt: dict[int, float] = {}
        self._finishedAt: dict[int, float] = {}
        self._waiting: list[asyncio.Future[tuple[int, float]]] = []
        self._drainers: list[asyncio.Future[tuple[int, float]]] = []

    def track(self, taskId: int, future: Future[tuple[int, float]], waiting: asyncio.Future[tuple[int, float]]) -> None:
        """Start watching a task whose deadline just passed: its pool future and the loop's view of it."""
        with self._lock:
            self._timedOutAt[taskId] = time.perf_counter()
        future.add_done_callback(functools.partial(self._finished, taskId))
        self._waiting.append(waiting)
        # Made after the callback above, so when it completes the finish time is recorded.
        self._drainers.append(asyncio.wrap_future(future))

    def _finished(self, taskId: int, _future: Future[tuple[int, float]]) -> None:
        with self._lock:
            self._finishedAt[taskId] = time.perf_counter()

    async def drain(self, timeoutSeconds: float) -> float:
        """Wait (at most ``timeoutSeconds``) until every watched task has left its worker; return seconds waited."""
        with Stopwatch() as watch:
            if self._drainers:
                try:
                    await asyncio.wait(self._drainers, timeout=timeoutSeconds)
                finally:
                    self.release()
        return watch.elapsed

    def release(self) -> None:
        """Stop waiting for the tasks still running: their results, if any come, go nowhere.

        Without this a result arriving after the event loop closed would be
        delivered to a closed loop (an error printed from the pool's thread).
        Outcomes already in are retrieved, so no failure goes unreported.
        """
        for waiting in (*self._waiting, *self._drainers):
            if not waiting.done():
                waiting.cancel()
            elif not waiting.cancelled():
                waiting.exception()

    def statistics(self) -> tuple[AbandonedTiming, ...]:
        """A snapshot: per task, seconds from its deadline to its worker letting go (so far)."""
        now = time.perf_counter()
        with self._lock:
            return tuple(
                AbandonedTiming(
                    taskId,
                    self._finishedAt.get(taskId, now) - timedOutAt,
                    taskId in self._finishedAt,
                )
                for taskId, timedOutAt in sorted(self._timedOutAt.items())
            )


async def safeHandleTask(
    taskId: int,
    shouldFail: bool,
    timeoutMs: float,
    executor: TaskExecutor,
    *,
    deadlineSeconds: float = 0.5,
    abandoned: AbandonedWork | None = None,
    log: Log = silent,
) -> TaskReport:
    """Requirements 2 and 3: one task under a deadline, every failure turned into a dictionary.

    ``wrap_future(executor.submit(...))`` is exactly what ``loop.run_in_executor``
    (and ``runInExecutor``) does, unrolled to keep the concurrent future: after a
    timeout it is handed to ``abandoned``, which measures how long the worker
    stays busy. The deadline waits on a ``shield`` so that giving up does not
    cancel the submission: a process pool could not stop a running task anyway,
    but a Dask future would be released at once while its worker still runs the
    task, and the retries would then queue behind work nobody watches.
    ``asyncio.TimeoutError`` is the built-in ``TimeoutError`` since 3.11. Nothing
    escapes: any other exception (a broken or shut-down pool included) is a
    failure of this task alone; a cancellation detaches the loop, then re-raises.
    """
    report: TaskReport
    waiting: asyncio.Future[tuple[int, float]] | None = None
    try:
        submitted = executor.submit(riskyComputation, taskId, shouldFail, timeoutMs)
        waiting = asyncio.wrap_future(submitted)
        _, value = await asyncio.wait_for(asyncio.shield(waiting), timeout=deadlineSeconds)
    except asyncio.CancelledError:
        if waiting is not None:
            waiting.cancel()
        raise
    except ValueError as error:
        report = {"taskId": taskId, "status": "failed", "error": str(error), "errorType": "ValueError"}
    except TimeoutError:
        if abandoned is not None and waiting is not None:
            abandoned.track(taskId, submitted, waiting)
        elif waiting is not None:
            waiting.cancel()
        message = f"no result within the {deadlineSeconds * 1e3:.0f} ms deadline"
        report = {"taskId": taskId, "status": "failed", "error": message, "errorType": "TimeoutError"}
    except Exception as error:  # noqa: BLE001 - isolation: another failure of this task is reported, not raised
        report = {"taskId": taskId, "status": "failed", "error": str(error), "errorType": type(error).__name__}
    else:
        report = {"taskId": taskId, "status": "ok", "result": value}
    log(f"Task {taskId}: {describeReport(report)}")
    return report


def errorTypeOf(report: TaskReport) -> str:
    """``ok`` for a success, else the failure's error type (``ValueError``, ``TimeoutError`` ...)."""
    if report["status"] == "failed":
        return report["errorType"]
    return "ok"


def describeReport(report: TaskReport) -> str:
    """One task's outcome in a few words."""
    if report["status"] == "failed":
        return f"failed ({report['errorType']}): {report['error']}"
    return f"ok, result={report['result']}"


@dataclass(frozen=True, slots=True)
class Exercise4Config:
    """The spec's numbers: 4 failing, 4 of 800 ms, 4 of 100 ms, a 500 ms deadline; 4 workers.

    Validation refuses sizes whose split could depend on timing: a slow task
    must need at least 1.25x the deadline, and the tasks that should succeed
    (first round, and the retries) must fit in half the deadline given the
    number of workers, because time spent queued in the pool counts too.
    """

    failing: int = 4
    slow: int = 4
    succeeding: int = 4
    deadlineSeconds: float = 0.5
    slowMs: float = 800.0
    okMs: float = 100.0
    workers: int = 4

    def __post_init__(self) -> None:
        requireRange("failing", self.failing, 0, 1000)
        requireRange("slow", self.slow, 0, 1000)
        requireRange("succeeding", self.succeeding, 0, 1000)
        requireRange("tasks", self.tasks, 1, 1000)
        requireRange("workers", self.workers, 1, 256)
        requireRange("deadlineSeconds", self.deadlineSeconds, 0.01, 60.0)
        requireRange("slowMs", self.slowMs, 1.25 * self.deadlineMs, 600_000.0)
        waves = max(
            math.ceil((self.failing + self.succeeding) / self.workers),
            math.ceil((self.failing + self.slow) / self.workers),
        )
        requireRange("okMs", self.okMs, 0.0, self.deadlineMs / 2 / max(1, waves))

    @classmethod
    def quick(cls) -> Exercise4Config:
        """Everything at half time: a 250 ms deadline, 400 ms slow tasks, 50 ms good ones."""
        return cls(deadlineSeconds=0.25, slowMs=400.0, okMs=50.0)

    @property
    def tasks(self) -> int:
        """All tasks of the first round."""
        return self.failing + self.slow + self.succeeding

    @property
    def deadlineMs(self) -> float:
        """The per-task deadline in milliseconds."""
        return self.deadlineSeconds * 1000


@dataclass(frozen=True, slots=True)
class PlannedTask:
    """One task of the first round: its role decides its arguments."""

    taskId: int
    role: TaskRole
    shouldFail: bool
    timeoutMs: float


def planTasks(config: Exercise4Config, seed: int) -> tuple[PlannedTask, ...]:
    """Which taskIds fail, are too slow or succeed (the seed decides), in submission order.

    The order is fails, successes, slow ones: with at least as many workers as
    needed (the config checks), the successes start at once and finish long
    before the deadline, whatever the seed and the machine's load.
    """
    ids = list(range(config.tasks))
    makeRng(seed, LECTURE, 4).shuffle(ids)
    byRole: dict[TaskRole, list[int]] = {
        "fails": ids[: config.failing],
        "too slow": ids[config.failing : config.failing + config.slow],
        "succeeds": ids[config.failing + config.slow :],
    }
    return tuple(
        PlannedTask(
            taskId,
            role,
            shouldFail=role == "fails",
            timeoutMs=config.slowMs if role == "too slow" else config.okMs,
        )
        for role in SUBMISSION_ORDER
        for taskId in sorted(byRole[role])
    )


@dataclass(frozen=True, slots=True)
class RecoveryRun:
    """What ``handleWithRecovery`` measured, before any judging."""

    reports: tuple[TaskReport, ...]
    retries: tuple[TaskReport, ...]
    abandoned: tuple[AbandonedTiming, ...]
    firstRoundSeconds: float
    drainSeconds: float
    retrySeconds: float


async def handleWithRecovery(
    plan: Sequence[PlannedTask], executor: TaskExecutor, config: Exercise4Config, log: Log = silent
) -> RecoveryRun:
    """Requirements 3-5: every task under ``gather``, wait for abandoned workers, retry the failed ones.

    ``gather`` with the default ``return_exceptions=False`` is safe here only
    because ``safeHandleTask`` never raises. The retries go out once the timed-out
    tasks have left their workers: submitted earlier, they would queue behind
    them and could miss their own deadline.
    """
    abandoned = AbandonedWork()
    retryAbandoned = AbandonedWork()
    try:
        with Stopwatch() as firstRound:
            reports = await asyncio.gather(
                *(
                    safeHandleTask(
                        task.taskId,
                        task.shouldFail,
                        task.timeoutMs,
                        executor,
                        deadlineSeconds=config.deadlineSeconds,
                        abandoned=abandoned,
                        log=log,
                    )
                    for task in plan
                )
            )
        drainSeconds = await abandoned.drain(config.slowMs / 1000 + config.deadlineSeconds)
        busy = abandoned.statistics()
        failed = [report["taskId"] for report in reports if report["status"] == "failed"]
        if failed:
            log(f"Retrying {len(failed)} failed tasks with shouldFail=False, timeoutMs={config.okMs:g}")
        with Stopwatch() as retryRound:
            retries = await asyncio.gather(
                *(
                    safeHandleTask(
                        taskId,
                        False,
                        config.okMs,
                        executor,
                        deadlineSeconds=config.deadlineSeconds,
                        abandoned=retryAbandoned,
                        log=log,
                    )
                    for taskId in failed
                )
            )
        await retryAbandoned.drain(config.slowMs / 1000 + config.deadlineSeconds)
    finally:
        abandoned.release()
        retryAbandoned.release()
    return RecoveryRun(
        reports=tuple(sorted(reports, key=lambda report: report["taskId"])),
        retries=tuple(sorted(retries, key=lambda report: report["taskId"])),
        abandoned=busy,
        firstRoundSeconds=firstRound.elapsed,
        drainSeconds=drainSeconds,
        retrySeconds=retryRound.elapsed,
    )


@dataclass(frozen=True, slots=True)
class Exercise4Result:
    """Every figure exercise 4 measured; timings in seconds."""

    config: Exercise4Config
    executor: ExecutorKind
    plan: tuple[PlannedTask, ...]
    run: RecoveryRun
    warmUpSeconds: float

    def count(self, outcome: str) -> int:
        """First-round reports with this outcome: ``ok``, ``ValueError``, ``TimeoutError`` ..."""
        return sum(errorTypeOf(report) == outcome for report in self.run.reports)

    @property
    def successes(self) -> int:
        """First-round successes."""
        return self.count("ok")

    @property
    def valueErrors(self) -> int:
        """First-round ValueError failures."""
        return self.count("ValueError")

    @property
    def timeouts(self) -> int:
        """First-round deadline misses."""
        return self.count("TimeoutError")

    @property
    def otherFailures(self) -> int:
        """First-round failures of any other kind (none expected)."""
        return len(self.run.reports) - self.successes - self.valueErrors - self.timeouts

    @property
    def retriesSucceeded(self) -> int:
        """Retries that came back ok."""
        return sum(report["status"] == "ok" for report in self.run.retries)

    @property
    def matchingRoles(self) -> int:
        """Tasks whose outcome is the one their role implies."""
        outcome = {report["taskId"]: errorTypeOf(report) for report in self.run.reports}
        return sum(outcome.get(task.taskId) == EXPECTED_OUTCOME[task.role] for task in self.plan)

    @property
    def totalSeconds(self) -> float:
        """Requirement 5: the original run plus the retries (and the wait between them)."""
        return self.run.firstRoundSeconds + self.run.drainSeconds + self.run.retrySeconds


def runExercise4(
    config: Exercise4Config,
    *,
    seed: int,
    executor: ExecutorKind = "process",
    startMethod: StartMethod | None = None,
    log: Log = silent,
) -> Exercise4Result:
    """Requirements 3-5 on a warmed pool: worker start-up must not eat into the first deadlines."""
    if executor == "inline":
        raise ConfigError(
            "exercise 4 needs executor process or thread, got 'inline': an inline call blocks the event loop, "
            "so no deadline can fire"
        )
    plan = planTasks(config, seed)
    with executorScope(executor, config.workers, startMethod) as pool:
        warmUpSeconds = warmUp(pool, config.workers, preload=(__name__,))
        run = asyncio.run(handleWithRecovery(plan, pool, config, log))
    return Exercise4Result(config=config, executor=executor, plan=plan, run=run, warmUpSeconds=warmUpSeconds)


def formatExercise4(result: Exercise4Result) -> str:
    """Requirements 4 and 5: the summary that sums to 12, the successes, the retries, the timeline."""
    config = result.config
    run = result.run
    role = {task.taskId: task.role for task in result.plan}
    retry = {report["taskId"]: report for report in run.retries}
    summary = formatTable(
        ("outcome", "tasks"),
        [
            ("success", result.successes),
            ("ValueError failure", result.valueErrors),
            ("timeout failure", result.timeouts),
            *([("other failure", result.otherFailures)] if result.otherFailures else []),
            ("total", len(run.reports)),
        ],
        title=f"Summary of the first round ({config.tasks} tasks, {config.deadlineMs:.0f} ms deadline each):",
    )
    check = "ok" if result.successes + result.valueErrors + result.timeouts == config.tasks else "MISMATCH"
    tasks = formatTable(
        ("taskId", "role", "first round", "retry"),
        [
            (
                report["taskId"],
                role[report["taskId"]],
                describeReport(report),
                describeReport(retry[report["taskId"]]) if report["taskId"] in retry else "",
            )
            for report in run.reports
        ],
    )
    successes = [f"  {report['taskId']}: {report['result']}" for report in run.reports if report["status"] == "ok"]
    busy = formatTable(
        ("taskId", "worker busy after deadline ms"),
        [(timing.taskId, timing.busyAfterDeadlineSeconds * 1e3) for timing in run.abandoned],
    )
    totalBusy = sum(timing.busyAfterDeadlineSeconds for timing in run.abandoned)
    timeline = formatTable(
        ("phase", "ms"),
        [
            ("pool warm-up (not counted)", result.warmUpSeconds * 1e3),
            ("first round", run.firstRoundSeconds * 1e3),
            ("waiting for timed-out tasks to leave workers", run.drainSeconds * 1e3),
            (f"retries ({len(run.retries)})", run.retrySeconds * 1e3),
            ("total: original run plus retries", result.totalSeconds * 1e3),
        ],
    )
    order = ", ".join(SUBMISSION_ORDER)
    return "\n".join(
        [
            "",
            summary,
            (
                f"Sum check: {result.successes} + {result.valueErrors} + {result.timeouts} = "
                f"{result.successes + result.valueErrors + result.timeouts} of {config.tasks}: {check}"
            ),
            "",
            "Successful results:",
            *successes,
            "",
            tasks,
            "",
            f"Retries: {result.retriesSucceeded} of {len(run.retries)} succeeded.",
            "",
            busy,
            (
                f"The timed-out tasks kept {config.workers} workers busy {totalBusy * 1e3:.0f} worker-ms after their "
                "deadlines: wait_for cancelled only the waiting, not the work."
            ),
            "",
            timeline,
            "",
            (
                f"Why the split is {config.succeeding}/{config.failing}/{config.slow} on every seed: "
                f"tasks go out in the order {order} (the seed only picks which ids play which role),\n"
                f"so the {config.succeeding} good tasks start at once on {config.workers} workers and finish in "
                f"~{config.okMs:g} ms of a {config.deadlineMs:.0f} ms clock that also counts time queued;\n"
                f"a slow task needs {config.slowMs:g} ms and can never make it; "
                "the retries wait until the slow tasks have left their workers."
            ),
            (
                "(In the spec's listing order - fail, slow, succeed - the slow tasks would take all "
                f"{config.workers} workers first and the good ones would time out while queued.)"
                if config.slow >= config.workers
                else ""
            ),
        ]
    )


def exercise4(options: RunOptions, log: Log) -> Exercise4Result:
    """Registry entry: run exercise 4 with the spec's numbers (or quick ones) and print it.

    An inline executor cannot show a deadline (it blocks the loop), so this
    exercise then uses a thread pool, which has the same can't-stop-a-running-task
    semantics, and says so.
    """
    config = Exercise4Config.quick() if options.quick else Exercise4Config()
    executor: ExecutorKind = options.executor
    if executor == "inline":
        log("(exercise 4 uses a thread pool: an inline executor blocks the event loop, so no deadline could fire)")
        executor = "thread"
    result = runExercise4(config, seed=options.seed, executor=executor, startMethod=options.startMethod, log=log)
    log(formatExercise4(result))
    return result


# ============================================================================
# Registry and entry point
# ============================================================================

TITLE = "Async + Multiprocessing Hybrid Architecture"
EXERCISES = (
    Exercise(1, "Async handler with ProcessPoolExecutor: batch requests", exercise1),
    Exercise(2, "Producer-consumer with backpressure", exercise2),
    Exercise(3, "Three-tier architecture: async + threads + processes", exercise3),
    Exercise(4, "Error handling in the hybrid architecture", exercise4),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run lecture 29's exercises from the command line; return the exit status."""
    return lectureMain(argv, lecture=LECTURE, title=TITLE, exercises=EXERCISES)


if __name__ == "__main__":
    raise SystemExit(main())
