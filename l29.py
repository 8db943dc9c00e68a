"""Lecture 29: Async + Multiprocessing Hybrid Architecture.

Exercises (spec: lecture29.txt), one section each below:

1. Async handler with ProcessPoolExecutor: ``handleRequest`` hands ``analyzeRequest`` to a
   pool of 3 workers for 10 requests at once, timed against a plain loop.
2. Producer-consumer with backpressure: ``produceRecords`` -> ``asyncio.Queue(maxsize)`` ->
   ``consumeRecords`` -> a pool of 4; the queue size logged before each put; maxsize 2
   against 20. Beyond the spec: ``consumeRecordsBounded``, the consumer that really
   throttles the producer, and ``PipelineQueue``, a queue whose waits have deadlines.
3. Three-tier architecture: ``processDataItem`` fetches on a thread pool and analyses on a
   process pool; against processes only, and against sequential.
4. Error handling: ``safeHandleTask`` under a 500 ms deadline; 4 failures, 4 timeouts and 4
   successes on every seed; the failed tasks retried. Beyond the spec: ``WatchedExecutor``,
   which keeps watching the work a deadline gave up on.

Run one with ``python l29.py --ex 1`` (``--all`` runs every exercise, ``--quick`` uses small
sizes, ``--seed`` fixes every random draw, ``--executor`` and ``--start-method`` pick the CPU
tier). ``invoke run --lecture 29 --ex 1`` prints the same report, then the lab's verdicts on
the lecture's claims. Standard library and ``shared.py`` only: copy both files and run.
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
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import BrokenExecutor, Future, InvalidStateError
from dataclasses import dataclass
from typing import Any, Final, Literal, ParamSpec, TypedDict, TypeVar, final

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
    WorkerLostError,
    cpuCount,
    executorScope,
    formatTable,
    lectureMain,
    makeRng,
    prose,
    requireRange,
    runInExecutor,
    silent,
    speedup,
    timeWeightedMean,
    warmUp,
)

__all__ = [
    "EXERCISES",
    "AnalysisResult",
    "DataItemResult",
    "ItemAnalysis",
    "PipelineError",
    "PipelineQueue",
    "QueueStatistics",
    "RequestData",
    "StreamItem",
    "StreamRecord",
    "TaskFailure",
    "TaskReport",
    "TaskSuccess",
    "WatchedExecutor",
    "WatchedTask",
    "analyzeRequest",
    "consumeRecords",
    "consumeRecordsBounded",
    "during",
    "fetchDataFromLegacySystem",
    "gatherAll",
    "handleRequest",
    "main",
    "processDataItem",
    "produceRecords",
    "riskyComputation",
    "runAnalysis",
    "runPipeline",
    "safeHandleTask",
    "speedupBound",
    "transformRecord",
]

LECTURE = 29
T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")

# ============================================================================
# Exercise 1 - Async handler with ProcessPoolExecutor: batch request processing
# ============================================================================
# req 1  analyzeRequest (RequestData -> AnalysisResult)     req 2  handleRequest
# req 3  serveRequests, runExercise1                         req 4  formatExercise1: risk table
# req 5  timeSequential, speedupBound, the speedup line of formatExercise1
# Beyond the spec: gatherAll and during (a worker killed from outside ends the run in one line)
#
#   makeRequests -> gather(handleRequest x 10) -> run_in_executor -> pool(3) -> analyzeRequest
#
# The loop only dispatches; the workers compute. The speedup is bounded by the cores and
# by the busiest worker (10 equal requests on 3 workers: 4 on one, so 10/4 = 2.5x at most),
# and pickling the values costs CPU on the same cores.


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
    """Requirement 1: mean, variance, sum of square roots, risk score ``sum / (mean * n + 1)``.

    Read with ``sum`` as the sum of the values, the score is S / (S + 1), the same for
    every request; read as the sum of square roots just computed (what this does), it
    varies a little. Either way, for uniform values in [0, 1) it sits far above 0.6.
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
    """Requirement 2: announce, hand the CPU work to the pool, report when it is back.

    ``runInExecutor`` is ``loop.run_in_executor`` for any ``TaskExecutor`` (a pool, inline,
    Dask). While a worker computes, the loop is free to dispatch the other requests.
    """
    log(f"Request {requestId}: dispatching")
    result = await runInExecutor(executor, analyzeRequest, {"requestId": requestId, "values": values})
    log(f"Request {requestId}: complete, risk={result['riskScore']:.4f}")
    return result


def speedupBound(requests: int, workers: int, cores: int) -> float:
    """Requirement 5's bound on the speedup: ``min(cores, requests / ceil(requests / workers))``.

    Equal requests leave the busiest worker ``ceil(requests / workers)`` of them (10 on 3
    workers: 4, so 10/4 = 2.5x, not 3x); and no more than ``cores`` of them run at once.
    """
    requireRange("requests", requests, 1)
    requireRange("workers", workers, 1)
    return min(float(max(1, cores)), requests / math.ceil(requests / workers))


# Beyond the spec -------------------------------------------------------------
# A worker killed from outside (the OOM killer, kill -9) breaks a process pool: every
# future still pending fails with BrokenProcessPool. That is no task's failure: the run
# stops, in one line that names what it was doing and how far it got. ``gatherAll``
# waits for the siblings to settle before it raises: cancelling a pool's future while
# the pool fails the others crashes 3.11's pool thread (InvalidStateError), and the
# interpreter then hangs at exit on the pool's queue.

SETTLE_SECONDS: Final = 5.0
"""How long a broken pool may take to fail its pending futures (it takes milliseconds)."""


async def gatherAll(aws: Sequence[Awaitable[T]], done: str) -> list[T]:
    """``asyncio.gather(*aws)``; a broken pool raises ``WorkerLostError("k of n <done>")`` instead.

    The pool fails every pending future itself, so nothing is cancelled: the siblings
    are awaited (bounded) and the ones that finished are counted ("7 of 10 requests
    analysed"). Any other exception, and a cancellation, propagate as from ``gather``.
    """
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        return await asyncio.gather(*tasks)
    except BrokenExecutor as error:
        await asyncio.wait(tasks, timeout=SETTLE_SECONDS)
        ended = sum(task.done() and not task.cancelled() and task.exception() is None for task in tasks)
        raise WorkerLostError(f"{ended} of {len(tasks)} {done}") from error


@contextlib.contextmanager
def during(phase: str, pool: TaskExecutor) -> Iterator[None]:
    """Name the phase a killed worker interrupted: ``WorkerLostError("during <phase>; <progress>")``.

    The broken ``pool`` is first left to finish its own clean-up (it terminates and joins
    its workers): stopping them at the same time from this thread races it for their exit
    status. ``executorScope`` then adds how the worker died, ``lectureMain`` prints the line.
    """
    try:
        yield
    except (WorkerLostError, BrokenExecutor) as error:
        pool.shutdown(wait=True)
        progress = f"; {error.doing}" if isinstance(error, WorkerLostError) and error.doing else ""
        raise WorkerLostError(f"during {phase}{progress}") from error


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
    """What exercise 1 measured; timings in seconds.

    The cold pass is the spec's run (it starts the workers); the warm pass serves the
    same batch again on the running pool. ``picklingSeconds`` is the IPC a pool adds:
    every request and result pickled and unpickled once, timed in this process.
    """

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
    def bound(self) -> float:
        """The best possible speedup: ``speedupBound`` (2x for 10 requests on 3 workers and 2 cores)."""
        return speedupBound(self.config.requests, self.config.workers, self.cores)

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
        requests.append({"requestId": requestId, "values": [rng.random() for _ in range(config.valuesPerRequest)]})
    return requests


async def serveRequests(requests: Sequence[RequestData], executor: TaskExecutor, log: Log) -> list[AnalysisResult]:
    """The main coroutine of requirement 3: every request at once through ``gather`` (``gatherAll``)."""
    handlers = [handleRequest(r["requestId"], r["values"], executor, log=log) for r in requests]
    return await gatherAll(handlers, "requests analysed")


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
        with during("the first pass (the spec's run)", pool):
            concurrent, coldSeconds = timeConcurrent(requests, pool, record)
        with during("the second pass (warm pool)", pool):
            _, warmSeconds = timeConcurrent(requests, pool, silent)
    sequential, sequentialSeconds = timeSequential(requests)
    ordered = sorted(concurrent, key=lambda r: r["requestId"])
    rows = tuple(RiskRow(r["requestId"], r["riskScore"], r["riskScore"] > config.highRiskThreshold) for r in ordered)
    firstComplete = next(i for i, line in enumerate(events) if "complete" in line)
    lastDispatch = max(i for i, line in enumerate(events) if "dispatching" in line)
    return Exercise1Result(
        config=config,
        executor=executor,
        rows=rows,
        highRiskCount=sum(row.highRisk for row in rows),
        matchesSequential=ordered == sequential,
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

    def row(label: str, seconds: float) -> tuple[str, float, str, str]:
        return (label, seconds * 1e3, f"{result.sequentialSeconds / seconds:.2f}x", f"{ideal / seconds:.0%}")

    pool = f"async + {result.executor} pool"
    timings = formatTable(
        ("run", "ms", "speedup", "efficiency"),
        [
            row("sequential loop", result.sequentialSeconds),
            row(f"{pool}, cold", result.coldSeconds),
            row(f"{pool}, warm", result.warmSeconds),
            row(f"ideal: sequential / {result.bound:g}", ideal),
        ],
    )
    lines = [
        "",
        risk,
        f"High-risk requests (risk > {config.highRiskThreshold}): {result.highRiskCount} of {config.requests}",
    ]
    if result.highRiskCount == config.requests:
        lines.append("(The score is ~4/3 for any request of uniform [0, 1) values: the threshold cannot separate.)")
    waves = math.ceil(config.requests / config.workers)
    bound = (
        f"min(cores={result.cores}, {config.requests}/ceil({config.requests}/{config.workers}) = "
        f"{config.requests / waves:g}) = {result.bound:g}x"
    )
    lines += [
        "",
        timings,
        f"Speedup: {result.warmSpeedup:.2f}x on a warm pool, {result.coldSpeedup:.2f}x counting pool start-up.",
        prose(
            f"The lecture's 'min(10/3, 1)x' evaluates to 1x; the bound it evidently means is {bound}: "
            f"the busiest of {config.workers} workers serves {waves} of the {config.requests} requests."
        ),
        prose(
            f"What eats the rest: pool start-up ~{result.startupSeconds * 1e3:.0f} ms (cold - warm pass); pickling "
            f"{config.valuesPerRequest:,} floats per request ~{result.picklingSeconds * 1e3:.1f} ms for all "
            f"{config.requests}, against {result.sequentialSeconds * 1e3:.0f} ms of CPU work in total."
        ),
    ]
    return "\n".join(lines)


def exercise1(options: RunOptions, log: Log) -> Exercise1Result:
    """Registry entry: run exercise 1 with the spec's numbers (or quick ones) and print it."""
    config = Exercise1Config.quick() if options.quick else Exercise1Config()
    result = runExercise1(
        config, seed=options.seed, executor=options.executor, startMethod=options.startMethod, log=log
    )
    log(formatExercise1(result))
    return result


# ============================================================================
# Exercise 2 - Producer-consumer with backpressure
# ============================================================================
# req 1  transformRecord          req 2  produceRecords (makeRecord)     req 3  consumeRecords
# req 4  runPipeline, runExercise2                   req 5  the producer's log line; maxsize 2 vs 20
# Beyond the spec: PipelineQueue (deadlines, statistics), consumeRecordsBounded
#
#   produceRecords -> PipelineQueue(5) -> consumeRecords -> run_in_executor -> pool(4) -> results
#
# Backpressure acts in ``await queue.put``: a full queue suspends the producer. The
# spec's consumer takes the next record as soon as it has dispatched one, so the queue
# only fills when records arrive faster than the loop can take them.


class StreamRecord(TypedDict):
    """One record of the stream: the spec's dictionary with "recordId" and "data"."""

    recordId: int
    data: list[int]


StreamItem = StreamRecord | None
"""What travels through the queue: a record, or None as the poison pill."""


def transformRecord(record: StreamRecord) -> tuple[int, float]:
    """Requirement 1: ``log(sum(sqrt(|x|)) + 1)``, rounded to 6 places.

    About 0.1 ms for 1000 integers: far less than the pickling round trip to a worker,
    so this work alone never makes the consumer the slow side.
    """
    total = sum(math.sqrt(abs(x)) for x in record["data"])
    result = math.log(total + 1)
    return (record["recordId"], round(result, 6))


def makeRecord(
    seed: int, recordId: int, valuesPerRecord: int = 1000, valueLow: int = -500, valueHigh: int = 500
) -> StreamRecord:
    """Record ``recordId``: 1000 integers in [-500, 500] from its own stream, rebuildable by any run."""
    rng = makeRng(seed, LECTURE, 2, "data", recordId)
    return {"recordId": recordId, "data": [rng.randint(valueLow, valueHigh) for _ in range(valuesPerRecord)]}


async def produceRecords(
    queue: asyncio.Queue[StreamItem],
    totalRecords: int,
    *,
    seed: int = DEFAULT_SEED,
    latency: tuple[float, float] = (0.005, 0.02),
    log: Log = print,
) -> None:
    """Requirements 2 and 5: one record at a time, qsize logged before each put, then None.

    ``await queue.put`` is where backpressure acts: on a full queue the producer is
    suspended until the consumer takes a record. The 5-20 ms of simulated I/O latency
    come from the run's seed, not from the global ``random``.
    """
    delays = makeRng(seed, LECTURE, 2, "latency")
    for recordId in range(totalRecords):
        record = makeRecord(seed, recordId)
        log(f"Producer: queue size before put = {queue.qsize()}/{queue.maxsize}")
        await queue.put(record)
        await asyncio.sleep(delays.uniform(*latency))
    log(f"Producer: queue size before put = {queue.qsize()}/{queue.maxsize}")
    await queue.put(None)


RESULT_WAIT_SECONDS: Final = 10.0
"""How long a consumer waits for results before it gives up: 10 s, plus 1 s per record in flight."""


async def consumeRecords(
    queue: asyncio.Queue[StreamItem], executor: TaskExecutor, results: list[tuple[int, float]]
) -> None:
    """Requirement 3, as the spec writes it: take, dispatch, take the next at once; gather at the end.

    This consumer never waits for a worker, so it empties the queue as fast as records
    arrive: the backlog moves into the executor's own unbounded work queue, and the
    producer is not throttled whatever ``maxsize`` is. ``consumeRecordsBounded`` is the fix.
    """
    futures: list[asyncio.Future[tuple[int, float]]] = []
    try:
        while True:
            record = await queue.get()
            if record is None:
                break
            # loop.run_in_executor(executor, transformRecord, record) is exactly this, for any TaskExecutor.
            futures.append(asyncio.wrap_future(executor.submit(transformRecord, record)))
        # Not wait_for(gather(...)): on 3.11 a wait_for that times out leaves the cancelled
        # gather's CancelledError unretrieved ("exception was never retrieved").
        async with asyncio.timeout(RESULT_WAIT_SECONDS + len(futures)):
            results.extend(await asyncio.gather(*futures))
    except BrokenExecutor:
        await _salvage(futures, results)
        raise
    except BaseException:
        await _abandon(futures)
        raise


async def _abandon(futures: Sequence[asyncio.Future[tuple[int, float]]]) -> None:
    """Cancel what has not finished and retrieve every outcome: nothing left pending or unretrieved.

    A record a worker already runs cannot be stopped: cancelling only detaches the loop
    from it, and the pool's shutdown waits for it.
    """
    for future in futures:
        future.cancel()
    await asyncio.gather(*futures, return_exceptions=True)


async def _salvage(futures: Sequence[asyncio.Future[tuple[int, float]]], results: list[tuple[int, float]]) -> None:
    """A broken pool: let it fail its pending futures itself (see ``gatherAll``), keep what finished."""
    if futures:
        await asyncio.wait(futures, timeout=SETTLE_SECONDS)
    results.extend(f.result() for f in futures if f.done() and not f.cancelled() and f.exception() is None)


def _collect(done: set[asyncio.Future[tuple[int, float]]], results: list[tuple[int, float]]) -> None:
    """Add the results of ``done``; then raise the first failure, every outcome retrieved."""
    failures = [error for future in done if (error := future.exception()) is not None]
    results.extend(future.result() for future in done if future.exception() is None)
    if failures:
        raise failures[0]


# Beyond the spec -------------------------------------------------------------
# A consumer that stops taking records while ``maxInFlight`` are in the pool: the backlog
# then stays in the queue, and a slow downstream throttles the producer as the lecture
# describes. And a queue whose put and get give up after a deadline, so that a consumer
# (or producer) that stops without failing ends the run with an error, not a hang.


async def consumeRecordsBounded(
    queue: asyncio.Queue[StreamItem],
    executor: TaskExecutor,
    results: list[tuple[int, float]],
    *,
    maxInFlight: int,
) -> None:
    """``consumeRecords`` with at most ``maxInFlight`` records handed to the executor.

    With every worker busy it stops taking from the queue, so a slow consumer fills the
    queue and ``queue.put`` suspends the producer: the backpressure the bounded queue was
    meant to give. ``maxInFlight`` equal to the worker count keeps every worker busy with
    nothing queued inside the pool.
    """
    requireRange("maxInFlight", maxInFlight, 1, 100_000)
    every: list[asyncio.Future[tuple[int, float]]] = []
    inFlight: set[asyncio.Future[tuple[int, float]]] = set()
    deadline = RESULT_WAIT_SECONDS + 1.0
    try:
        while True:
            while len(inFlight) >= maxInFlight:
                done, inFlight = await asyncio.wait(inFlight, timeout=deadline, return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    raise PipelineError(f"no transform finished within {deadline:g} s")
                _collect(done, results)
            record = await queue.get()
            if record is None:
                break
            future = asyncio.wrap_future(executor.submit(transformRecord, record))
            every.append(future)
            inFlight.add(future)
        if inFlight:
            done, inFlight = await asyncio.wait(inFlight, timeout=deadline * len(inFlight))
            _collect(done, results)
            if inFlight:
                raise PipelineError(f"{len(inFlight)} transforms still running after the deadline")
    except BrokenExecutor:
        await _salvage(list(inFlight), results)
        raise
    except BaseException:
        await _abandon(every)
        raise


class PipelineError(RuntimeError):
    """The pipeline stopped before every record was processed; the message says where and why.

    ``recordsPut`` and ``producerWaiting`` say how far the producer got and whether it
    was suspended on a full queue when the run stopped.
    """

    def __init__(self, message: str, *, recordsPut: int = 0, producerWaiting: bool = False) -> None:
        super().__init__(message)
        self.recordsPut = recordsPut
        self.producerWaiting = producerWaiting


@dataclass(frozen=True, slots=True)
class QueueStatistics:
    """A snapshot of a ``PipelineQueue``: what the producer saw and how long it waited.

    ``puts`` counts items put, the None poison pill aside; ``blockedSeconds`` is the time
    puts that found the queue full spent suspended; ``trace`` is (seconds, qsize) after
    every change.
    """

    puts: int
    sizesBeforePut: tuple[int, ...]
    blockedSeconds: float
    producerWaiting: bool
    trace: tuple[tuple[float, int], ...]


class PipelineQueue(OccupancyQueue[T]):
    """An ``asyncio.Queue`` whose ``put`` and ``get`` give up after ``waitSeconds``, and that counts.

    A consumer that stops draining would leave the producer suspended in ``put`` forever,
    and a producer that stops would leave the consumer in ``get``: here either wait ends
    in ``PipelineError``. ``statistics()`` is a snapshot of the producer's side: the qsize
    before each put (requirement 5's figure), the time suspended on a full queue.
    """

    def __init__(self, maxsize: int = 0, *, waitSeconds: float = 10.0) -> None:
        requireRange("waitSeconds", waitSeconds, 0.001, 3600.0)
        super().__init__(maxsize)
        self._waitSeconds = waitSeconds
        self._puts = 0
        self._sizesBeforePut: list[int] = []
        self._blockedSeconds = 0.0
        self._waitingPuts = 0

    async def put(self, item: T) -> None:
        """Put, waiting at most ``waitSeconds`` for room; ``asyncio.timeout`` adds no task."""
        size = self.qsize()
        self._sizesBeforePut.append(size)
        self._waitingPuts += 1
        try:
            with Stopwatch() as watch:
                async with asyncio.timeout(self._waitSeconds):
                    await super().put(item)
        except TimeoutError:
            message = f"producer waited {self._waitSeconds:g} s for queue space: the consumer stopped draining"
            raise PipelineError(message) from None
        finally:
            self._waitingPuts -= 1
        if size >= self.maxsize > 0:
            self._blockedSeconds += watch.elapsed
        if item is not None:
            self._puts += 1

    async def get(self) -> T:
        """Get, waiting at most ``waitSeconds`` for an item."""
        try:
            async with asyncio.timeout(self._waitSeconds):
                return await super().get()
        except TimeoutError:
            raise PipelineError(f"consumer waited {self._waitSeconds:g} s for a record: the producer stopped") from None

    def statistics(self) -> QueueStatistics:
        """What the producer has seen so far."""
        return QueueStatistics(
            puts=self._puts,
            sizesBeforePut=tuple(self._sizesBeforePut),
            blockedSeconds=self._blockedSeconds,
            producerWaiting=self._waitingPuts > 0,
            trace=self.trace,
        )


# Config, result, runner, report ----------------------------------------------

ConsumerKind = Literal["literal", "bounded"]


@dataclass(frozen=True, slots=True)
class Exercise2Config:
    """The spec's numbers: 20 records 5-20 ms apart, maxsize 5, 4 workers; maxsize 2 and 20 compared.

    ``waitSeconds`` is the deadline of every single put and get: nothing waits forever.
    """

    totalRecords: int = 20
    latencyLow: float = 0.005
    latencyHigh: float = 0.02
    maxsize: int = 5
    workers: int = 4
    comparedMaxsizes: tuple[int, ...] = (2, 20)
    waitSeconds: float = 10.0

    def __post_init__(self) -> None:
        requireRange("totalRecords", self.totalRecords, 1, 100_000)
        requireRange("latencyLow", self.latencyLow, 0.0, 10.0)
        requireRange("latencyHigh", self.latencyHigh, self.latencyLow, 10.0)
        requireRange("maxsize", self.maxsize, 1, 100_000)
        requireRange("workers", self.workers, 1, 256)
        for maxsize in self.comparedMaxsizes:
            requireRange("comparedMaxsizes item", maxsize, 1, 100_000)
        requireRange("waitSeconds", self.waitSeconds, 0.01, 3600.0)

    @classmethod
    def quick(cls) -> Exercise2Config:
        """12 records, 2-8 ms apart: the same shapes in well under 2 s."""
        return cls(totalRecords=12, latencyLow=0.002, latencyHigh=0.008)

    @property
    def latency(self) -> tuple[float, float]:
        """The producer's sleep between records, low and high, in seconds."""
        return (self.latencyLow, self.latencyHigh)

    def queue(self, maxsize: int) -> PipelineQueue[StreamItem]:
        """A queue of ``maxsize`` whose waits end after ``waitSeconds``."""
        return PipelineQueue(maxsize, waitSeconds=self.waitSeconds)


@dataclass(frozen=True, slots=True)
class QueueRun:
    """One run of the pipeline: its results and how full the queue was, over time."""

    consumer: ConsumerKind
    maxsize: int
    results: tuple[tuple[int, float], ...]
    sizesBeforePut: tuple[int, ...]
    trace: tuple[tuple[float, int], ...]
    producerBlockedSeconds: float
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


async def runPipeline(
    queue: PipelineQueue[StreamItem],
    executor: TaskExecutor,
    config: Exercise2Config,
    *,
    seed: int,
    consumer: ConsumerKind = "literal",
    log: Log = silent,
) -> QueueRun:
    """Requirement 4's main coroutine: a producer and a consumer on ``queue``, under ``gather``.

    If either side fails, the other is cancelled at once (a plain ``gather`` would leave the
    producer suspended on a full queue) and ``PipelineError`` names what happened and how far
    the producer got; a broken pool (a worker killed from outside) ends in ``WorkerLostError``
    counting the records transformed. ``consumer="bounded"`` runs ``consumeRecordsBounded``.
    """
    results: list[tuple[int, float]] = []
    consuming = (
        consumeRecords(queue, executor, results)
        if consumer == "literal"
        else consumeRecordsBounded(queue, executor, results, maxInFlight=config.workers)
    )
    watch = Stopwatch().start()
    tasks = (
        asyncio.create_task(produceRecords(queue, config.totalRecords, seed=seed, latency=config.latency, log=log)),
        asyncio.create_task(consuming),
    )
    try:
        await asyncio.gather(*tasks)
    except BrokenExecutor as error:
        await _cancelAll(tasks)
        raise WorkerLostError(f"{len(results)} of {config.totalRecords} records transformed") from error
    except Exception as error:
        seen = queue.statistics()
        await _cancelAll(tasks)
        raise PipelineError(
            f"pipeline stopped after {watch.elapsed * 1e3:.0f} ms: {error}; the producer had put "
            f"{seen.puts} of {config.totalRecords} records"
            + (" and was waiting on a full queue" if seen.producerWaiting else "")
            + "; both sides are stopped",
            recordsPut=seen.puts,
            producerWaiting=seen.producerWaiting,
        ) from error
    except BaseException:
        await _cancelAll(tasks)
        raise
    seen = queue.statistics()
    return QueueRun(
        consumer=consumer,
        maxsize=queue.maxsize,
        results=tuple(sorted(results)),
        sizesBeforePut=seen.sizesBeforePut,
        trace=seen.trace,
        producerBlockedSeconds=seen.blockedSeconds,
        elapsedSeconds=watch.stop(),
    )


async def _cancelAll(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel the producer and the consumer and wait until both have really stopped."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@dataclass(frozen=True, slots=True)
class Exercise2Result:
    """What exercise 2 measured: the spec's run (maxsize 5), then one run per compared maxsize."""

    config: Exercise2Config
    executor: ExecutorKind
    main: QueueRun
    comparison: tuple[QueueRun, ...]
    expected: tuple[tuple[int, float], ...]
    transformSeconds: float

    @property
    def runs(self) -> tuple[QueueRun, ...]:
        """Every run, the spec's first."""
        return (self.main, *self.comparison)

    @property
    def averageResult(self) -> float:
        """Requirement 4's average of the result values."""
        return statistics.fmean(value for _, value in self.main.results)

    @property
    def producerRate(self) -> float:
        """Records per second the producer offers (5-20 ms apart): the spec's run's pace."""
        return self.config.totalRecords / self.main.elapsedSeconds

    def run(self, maxsize: int) -> QueueRun:
        """The comparison run with this maxsize."""
        return next(run for run in self.comparison if run.maxsize == maxsize)


def timeTransform(records: Sequence[StreamRecord]) -> tuple[tuple[tuple[int, float], ...], float]:
    """The expected results, computed here in order, and the mean seconds of one transform."""
    with Stopwatch() as watch:
        expected = tuple(transformRecord(record) for record in records)
    return expected, watch.elapsed / len(records)


async def _exercise2Runs(
    config: Exercise2Config, executor: TaskExecutor, seed: int, log: Log
) -> tuple[QueueRun, list[QueueRun]]:
    """The spec's run (maxsize 5, logged), then one run per compared maxsize."""
    with during(f"the pipeline (maxsize {config.maxsize}, the spec's run)", executor):
        main = await runPipeline(config.queue(config.maxsize), executor, config, seed=seed, log=log)
    comparison: list[QueueRun] = []
    for maxsize in config.comparedMaxsizes:
        with during(f"the pipeline (maxsize {maxsize})", executor):
            comparison.append(await runPipeline(config.queue(maxsize), executor, config, seed=seed))
    return main, comparison


def runExercise2(
    config: Exercise2Config,
    *,
    seed: int,
    executor: ExecutorKind = "process",
    startMethod: StartMethod | None = None,
    log: Log = silent,
) -> Exercise2Result:
    """Requirements 4 and 5 on one pool, warmed first so that start-up does not show as occupancy."""
    expected, transformSeconds = timeTransform([makeRecord(seed, recordId) for recordId in range(config.totalRecords)])
    with executorScope(executor, config.workers, startMethod) as pool:
        with during("the pool's warm-up, before any record", pool):
            warmUp(pool, config.workers, preload=(__name__,))
        main, comparison = asyncio.run(_exercise2Runs(config, pool, seed, log))
    return Exercise2Result(config, executor, main, tuple(comparison), expected, transformSeconds)


def formatExercise2(result: Exercise2Result) -> str:
    """Requirements 4 and 5: sorted results and their average, then the queue sizes of each run."""
    config = result.config
    main = result.main
    resultsTable = formatTable(
        ("recordId", "result"),
        [(recordId, f"{value:.6f}") for recordId, value in main.results],
        title=f"Results of the spec's run (maxsize {main.maxsize}, {config.workers} workers), sorted by recordId:",
    )
    occupancy = formatTable(
        ("run", "qsize before each put", "avg qsize", "max", "full puts", "blocked ms", "run ms"),
        [
            (
                f"maxsize {run.maxsize}" + (" (spec's run)" if run is main else ""),
                "logged above" if run is main else " ".join(map(str, run.sizesBeforePut)),
                round(run.meanSize, 2),
                run.largestSize,
                f"{run.fullPuts}/{len(run.sizesBeforePut)}",
                run.producerBlockedSeconds * 1e3,
                run.elapsedSeconds * 1e3,
            )
            for run in result.runs
        ],
        title="Queue occupancy (avg = over time; blocked = producer suspended in put):",
    )
    small, large = (result.run(size) for size in (min(config.comparedMaxsizes), max(config.comparedMaxsizes)))
    full = sum(run.fullPuts for run in result.comparison)
    return "\n".join(
        [
            "",
            resultsTable,
            f"Average result value: {result.averageResult:.6f} over {len(main.results)} records.",
            "",
            occupancy,
            prose(
                f"maxsize {small.maxsize} vs {large.maxsize}: the queue peaked at {small.largestSize} and "
                f"{large.largestSize} records, and {full} puts found it full: the producer was "
                + ("throttled." if full else "never throttled.")
            ),
            prose(
                f"Why: the producer offers ~{result.producerRate:.0f} records/s and transformRecord takes "
                f"{result.transformSeconds * 1e3:.2f} ms, and consumeRecords takes the next record as soon as "
                "it has dispatched one: any backlog waits inside the executor, not in the queue. "
                "consumeRecordsBounded (beyond the spec) stops taking at "
                f"{config.workers} in flight, so a slow downstream does fill the queue (invoke verify shows it)."
            ),
        ]
    )


def exercise2(options: RunOptions, log: Log) -> Exercise2Result:
    """Registry entry: run exercise 2 with the spec's numbers (or quick ones) and print it."""
    config = Exercise2Config.quick() if options.quick else Exercise2Config()
    result = runExercise2(
        config, seed=options.seed, executor=options.executor, startMethod=options.startMethod, log=log
    )
    log(formatExercise2(result))
    return result


# ============================================================================
# Exercise 3 - Three-tier architecture: async + threads + processes
# ============================================================================
# req 1  fetchDataFromLegacySystem (legacyRecord)     req 2  runAnalysis     req 3  processDataItem
# req 4  processAllItems, runExercise3                req 5  the three configurations, formatExercise3
#
#   gather(processDataItem x 12) -> threads(8): fetch (sleep) -> processes(4): runAnalysis
#
# ``time.sleep`` releases the GIL, so 8 threads wait out 8 fetches at once; the analysis
# holds the GIL, so only processes run several at once. Any ``TaskExecutor`` fits either
# tier: (b) passes the process pool twice, (c) the inline executor twice.


class ItemAnalysis(TypedDict):
    """``runAnalysis``'s answer: mean, standard deviation and a 10-bin histogram over [0, 1]."""

    mean: float
    std: float
    histogram: list[int]


class DataItemResult(ItemAnalysis):
    """``processDataItem``'s answer: the analysis with the dataId."""

    dataId: int


def fetchDataFromLegacySystem(
    dataId: int, *, seed: int = DEFAULT_SEED, latency: tuple[float, float] = (0.05, 0.1), size: int = 5000
) -> list[float]:
    """Requirement 1: a synchronous database call that blocks 50-100 ms, then 5000 floats.

    ``time.sleep`` holds the calling thread and releases the GIL; on the event loop it
    would stall every other coroutine. The data is seeded with the run's seed and dataId.
    """
    seconds, data = legacyRecord(dataId, seed, *latency, size)
    time.sleep(seconds)
    return data


def legacyRecord(dataId: int, seed: int, latencyLow: float, latencyHigh: float, size: int) -> tuple[float, list[float]]:
    """The legacy system's latency and data for ``dataId``, from one seeded stream, without sleeping."""
    rng = makeRng(seed, LECTURE, 3, dataId)
    latency = rng.uniform(latencyLow, latencyHigh)
    return latency, [rng.random() for _ in range(size)]


HISTOGRAM_BINS: Final = 10


def runAnalysis(inputData: list[float]) -> ItemAnalysis:
    """Requirement 2: mean, ``statistics.stdev`` and a 10-bin histogram of the values in [0, 1].

    Pure Python CPU work (a few ms for 5000 floats, most of it in the exact arithmetic of
    ``statistics.stdev``). Values outside [0, 1] are not counted in the histogram.
    """
    histogram = [0] * HISTOGRAM_BINS
    for value in inputData:
        if 0.0 <= value <= 1.0:
            histogram[min(int(value * HISTOGRAM_BINS), HISTOGRAM_BINS - 1)] += 1
    return {"mean": statistics.fmean(inputData), "std": statistics.stdev(inputData), "histogram": histogram}


async def processDataItem(
    dataId: int,
    threadPool: TaskExecutor,
    processPool: TaskExecutor,
    *,
    seed: int = DEFAULT_SEED,
    latency: tuple[float, float] = (0.05, 0.1),
    size: int = 5000,
) -> DataItemResult:
    """Requirement 3: fetch on ``threadPool``, then analyse on ``processPool`` (both ``run_in_executor``)."""
    data = await runInExecutor(threadPool, fetchDataFromLegacySystem, dataId, seed=seed, latency=latency, size=size)
    analysis = await runInExecutor(processPool, runAnalysis, data)
    return {"dataId": dataId, "mean": analysis["mean"], "std": analysis["std"], "histogram": analysis["histogram"]}


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

    @property
    def latency(self) -> tuple[float, float]:
        """A fetch's latency, low and high, in seconds."""
        return (self.latencyLow, self.latencyHigh)


@dataclass(frozen=True, slots=True)
class TierRun:
    """One configuration of the comparison: its time and its results."""

    label: str
    seconds: float
    results: tuple[DataItemResult, ...]


@dataclass(frozen=True, slots=True)
class Exercise3Result:
    """What exercise 3 measured: the drawn fetch latencies and the runs (a), (b), (c)."""

    config: Exercise3Config
    executor: ExecutorKind
    latencies: tuple[float, ...]
    runs: tuple[TierRun, TierRun, TierRun]

    @property
    def ordering(self) -> list[str]:
        """The configurations' keys, "(a)", "(b)", "(c)", fastest first."""
        return [run.label[:3] for run in sorted(self.runs, key=lambda run: run.seconds)]


async def processAllItems(
    dataIds: Sequence[int], threadPool: TaskExecutor, processPool: TaskExecutor, *, seed: int, config: Exercise3Config
) -> list[DataItemResult]:
    """Requirement 4's main coroutine: every item at once under ``asyncio.gather`` (``gatherAll``)."""
    items = [
        processDataItem(dataId, threadPool, processPool, seed=seed, latency=config.latency, size=config.valuesPerItem)
        for dataId in dataIds
    ]
    return await gatherAll(items, "items analysed")


def timeTiers(
    label: str, threadPool: TaskExecutor, processPool: TaskExecutor, *, seed: int, config: Exercise3Config
) -> TierRun:
    """Run every item through one configuration in a fresh event loop, and time it."""
    with Stopwatch() as watch:
        results = asyncio.run(processAllItems(range(config.items), threadPool, processPool, seed=seed, config=config))
    return TierRun(label, watch.elapsed, tuple(results))


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
) -> Exercise3Result:
    """Requirements 4 and 5: the same coroutine on three executor pairings, timed.

    The process pool is made and warmed before the thread pool starts threads (forking a
    multi-threaded process is unsafe), and its start-up stays out of every timing.
    """
    tieredLabel, poolOnlyLabel, sequentialLabel = tierLabels(config, executor)
    with executorScope(executor, config.workers, startMethod) as processPool:
        with during("the pool's warm-up, before any item", processPool):
            warmUp(processPool, config.workers, preload=(__name__,))
        with executorScope("thread", config.threads) as threadPool, during(f"configuration {tieredLabel}", processPool):
            tiered = timeTiers(tieredLabel, threadPool, processPool, seed=seed, config=config)
        with during(f"configuration {poolOnlyLabel}", processPool):
            poolOnly = timeTiers(poolOnlyLabel, processPool, processPool, seed=seed, config=config)
    with executorScope("inline", 1) as inline:
        sequential = timeTiers(sequentialLabel, inline, inline, seed=seed, config=config)
    latencies = tuple(legacyRecord(dataId, seed, *config.latency, 0)[0] for dataId in range(config.items))
    return Exercise3Result(config, executor, latencies, (tiered, poolOnly, sequential))


def formatExercise3(result: Exercise3Result) -> str:
    """Requirements 4 and 5: each item's mean and std, then the comparison table."""
    config = result.config
    tiered, _, sequential = result.runs
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
        ("configuration", "ms", "vs sequential"),
        [(run.label, run.seconds * 1e3, f"{speedup(sequential.seconds, run.seconds):.2f}x") for run in result.runs],
    )
    ordering = result.ordering
    verdict = "held" if ordering == ["(a)", "(b)", "(c)"] else "did not hold"
    waves = math.ceil(config.items / config.workers)
    return "\n".join(
        [
            "",
            items,
            "",
            comparison,
            f"Expected ordering (a) < (b) < (c) {verdict}: measured {' < '.join(ordering)}.",
            prose(
                f"(a) waits out up to {config.threads} fetches at once in threads while the workers analyse; "
                f"(b) spends its {config.workers} workers on sleeping: the fetches queue up in {waves} waves and "
                "each item's data crosses a process boundary twice; (c) overlaps nothing."
            ),
        ]
    )


def exercise3(options: RunOptions, log: Log) -> Exercise3Result:
    """Registry entry: run exercise 3 with the spec's numbers (or quick ones) and print it."""
    config = Exercise3Config.quick() if options.quick else Exercise3Config()
    result = runExercise3(config, seed=options.seed, executor=options.executor, startMethod=options.startMethod)
    log(formatExercise3(result))
    return result


# ============================================================================
# Exercise 4 - Error handling in the hybrid architecture
# ============================================================================
# req 1  riskyComputation          req 2-3  safeHandleTask (TaskSuccess | TaskFailure)
# req 3  planTasks: 4 fail, 4 too slow, 4 succeed      req 4-5  handleWithRecovery, formatExercise4
# Beyond the spec: WatchedExecutor (a deadline gives up the waiting, not the work)
#
#   gather(safeHandleTask x 12) -> wait_for(run_in_executor, 0.5 s) -> pool(4) -> riskyComputation
#   then: wait for the timed-out tasks to leave their workers -> retry the 8 failures
#
# A task fails (ValueError) or misses its deadline (TimeoutError); a worker killed from
# outside is neither: it breaks the pool under every task, and the run stops in one line.


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
    errorType: Literal["ValueError", "TimeoutError"]


TaskReport = TaskSuccess | TaskFailure


def riskyComputation(taskId: int, shouldFail: bool, timeoutMs: float) -> tuple[int, float]:
    """Requirement 1: fail at once, or sleep ``timeoutMs`` then sum 50,000 square roots (~3 ms)."""
    if shouldFail:
        raise ValueError(f"Task {taskId} failed intentionally")
    time.sleep(timeoutMs / 1000)
    result = sum(math.sqrt(i) for i in range(50000))
    return (taskId, round(result, 4))


async def safeHandleTask(
    taskId: int, shouldFail: bool, timeoutMs: float, executor: TaskExecutor, *, deadlineSeconds: float = 0.5
) -> TaskReport:
    """Requirements 2 and 3: one task under a deadline, every failure turned into a dictionary.

    ``wait_for`` cancels only the waiting: a task a worker already runs keeps its worker
    until it returns (see ``WatchedExecutor``). ``asyncio.TimeoutError`` is the built-in
    ``TimeoutError`` since 3.11. The two failures the spec names are caught, nothing else:
    a broken pool (a worker killed from outside) is no failure of this task, it stops the
    whole run (``gatherAll``); a cancellation propagates.
    """
    try:
        _, value = await asyncio.wait_for(
            runInExecutor(executor, riskyComputation, taskId, shouldFail, timeoutMs), timeout=deadlineSeconds
        )
    except ValueError as error:
        return {"taskId": taskId, "status": "failed", "error": str(error), "errorType": "ValueError"}
    except TimeoutError:
        message = f"no result within the {deadlineSeconds * 1e3:.0f} ms deadline"
        return {"taskId": taskId, "status": "failed", "error": message, "errorType": "TimeoutError"}
    return {"taskId": taskId, "status": "ok", "result": value}


# Beyond the spec -------------------------------------------------------------
# After a deadline the worker still runs the task; a retry submitted at once queues
# behind it, its own deadline already ticking. Route the tasks through a
# ``WatchedExecutor`` and ``drain()`` it before retrying.


@dataclass(frozen=True, slots=True)
class WatchedTask:
    """One task a ``WatchedExecutor`` submitted: its positional arguments, its time in the executor."""

    args: tuple[object, ...]
    seconds: float
    finished: bool


@final
class WatchedExecutor:
    """A ``TaskExecutor`` whose futures can be given up on without losing sight of the work.

    ``submit`` returns a stand-in future: cancelling it (as ``wait_for`` does at its deadline)
    leaves the real task running and watched. A process pool could not stop it anyway; a
    Dask future would be released while its worker still runs the task. ``drain`` waits
    until every task submitted so far has left the executor; ``statistics`` says how long
    each one stayed, ``broken`` whether a task ended in a broken pool (a worker killed).
    Done callbacks run in the pool's thread, hence the lock.
    """

    def __init__(self, inner: TaskExecutor) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._submitted: list[tuple[tuple[object, ...], float, Future[Any]]] = []
        self._finishedAt: dict[int, float] = {}
        self._broken = False

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Submit to the inner executor; return a stand-in whose cancellation the task ignores."""
        submittedAt = time.perf_counter()  # before the inner submit: a free worker may start the task at once
        real = self._inner.submit(fn, *args, **kwargs)
        standIn: Future[R] = Future()
        with self._lock:
            index = len(self._submitted)
            self._submitted.append((tuple(args), submittedAt, real))
        real.add_done_callback(functools.partial(self._settle, index, standIn))
        return standIn

    def _settle(self, index: int, standIn: Future[R], real: Future[R]) -> None:
        with self._lock:
            self._finishedAt[index] = time.perf_counter()
            self._broken |= not real.cancelled() and isinstance(real.exception(), BrokenExecutor)
        try:
            if real.cancelled():
                standIn.cancel()
            elif (error := real.exception()) is not None:
                standIn.set_exception(error)
            else:
                standIn.set_result(real.result())
        except InvalidStateError:
            pass  # the stand-in was given up on: nobody is waiting for this outcome

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut the inner executor down."""
        self._inner.shutdown(wait, cancel_futures=cancel_futures)

    async def drain(self, timeoutSeconds: float) -> float:
        """Wait (at most ``timeoutSeconds``) until every task submitted so far has finished; return seconds waited.

        The loop is detached from whatever still runs at the end, so a result arriving
        after the loop closed goes nowhere; outcomes already in are retrieved.
        """
        with self._lock:
            running = [asyncio.wrap_future(real) for _, _, real in self._submitted if not real.done()]
        with Stopwatch() as watch:
            try:
                if running:
                    await asyncio.wait(running, timeout=timeoutSeconds)
            finally:
                for waiting in running:
                    if not waiting.done():
                        waiting.cancel()
                    elif not waiting.cancelled():
                        waiting.exception()
        return watch.elapsed

    @property
    def broken(self) -> bool:
        """Whether a task ended because the inner pool broke (its worker was killed)."""
        return self._broken

    def statistics(self) -> tuple[WatchedTask, ...]:
        """A snapshot: each task's arguments and its seconds from submission to finishing (or to now)."""
        now = time.perf_counter()
        with self._lock:
            return tuple(
                WatchedTask(args, self._finishedAt.get(index, now) - submittedAt, index in self._finishedAt)
                for index, (args, submittedAt, _) in enumerate(self._submitted)
            )


# Config, result, runner, report ----------------------------------------------

TaskRole = Literal["fails", "too slow", "succeeds"]
SUBMISSION_ORDER: Final[tuple[TaskRole, ...]] = ("fails", "succeeds", "too slow")
"""Shortest worker hold first: the tasks that can meet the deadline never queue behind 800 ms ones."""

EXPECTED_OUTCOME: Final[dict[TaskRole, str]] = {"fails": "ValueError", "too slow": "TimeoutError", "succeeds": "ok"}


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

    Validation refuses sizes whose split could depend on timing: a slow task must need at
    least 1.25x the deadline, and the tasks that should succeed (first round, and the
    retries) must fit in half the deadline given the workers, since time queued counts too.
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

    The order is fails, successes, slow ones: with enough workers (the config checks), the
    successes start at once and finish long before the deadline, whatever the seed and the
    machine's load.
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
            taskId, role, shouldFail=role == "fails", timeoutMs=config.slowMs if role == "too slow" else config.okMs
        )
        for role in SUBMISSION_ORDER
        for taskId in sorted(byRole[role])
    )


@dataclass(frozen=True, slots=True)
class AbandonedTiming:
    """A task that missed its deadline: how long its worker kept running it afterwards."""

    taskId: int
    busyAfterDeadlineSeconds: float
    finished: bool


@dataclass(frozen=True, slots=True)
class RecoveryRun:
    """What ``handleWithRecovery`` measured: both rounds' reports, the abandoned work, the phases."""

    reports: tuple[TaskReport, ...]
    retries: tuple[TaskReport, ...]
    abandoned: tuple[AbandonedTiming, ...]
    firstRoundSeconds: float
    drainSeconds: float
    retrySeconds: float


def abandonedTimings(
    watched: Sequence[WatchedTask], reports: Sequence[TaskReport], deadlineSeconds: float
) -> tuple[AbandonedTiming, ...]:
    """For each timed-out task: how long its worker ran on after the deadline (riskyComputation's taskId is args[0])."""
    byTask = {task.args[0]: task for task in watched if task.args and isinstance(task.args[0], int)}
    timedOut = sorted(report["taskId"] for report in reports if errorTypeOf(report) == "TimeoutError")
    return tuple(
        AbandonedTiming(taskId, byTask[taskId].seconds - deadlineSeconds, byTask[taskId].finished)
        for taskId in timedOut
        if taskId in byTask
    )


async def runRound(
    tasks: Sequence[tuple[int, bool, float]],
    executor: TaskExecutor,
    config: Exercise4Config,
    *,
    atOnce: int = 0,
    ended: str = "tasks ended",
) -> tuple[tuple[TaskReport, ...], WatchedExecutor, float]:
    """One round under ``gather`` (safe: ``safeHandleTask`` reports every task failure) through a ``WatchedExecutor``.

    ``atOnce`` > 0 lets only that many tasks wait at a time, so that a task's deadline starts
    when a worker is free for it, not while it queues behind its siblings. Returns the reports
    by taskId, the watched executor (to drain), and the round's seconds. A broken pool
    ends the round in ``WorkerLostError`` ("7 of 12 tasks ended", from ``gatherAll``).
    """
    watched = WatchedExecutor(executor)
    gate = asyncio.Semaphore(atOnce or max(1, len(tasks)))

    async def handle(taskId: int, shouldFail: bool, timeoutMs: float) -> TaskReport:
        async with gate:
            return await safeHandleTask(taskId, shouldFail, timeoutMs, watched, deadlineSeconds=config.deadlineSeconds)

    with Stopwatch() as watch:
        reports = await gatherAll([handle(*task) for task in tasks], ended)
    return tuple(sorted(reports, key=lambda report: report["taskId"])), watched, watch.elapsed


async def handleWithRecovery(
    plan: Sequence[PlannedTask], executor: TaskExecutor, config: Exercise4Config, log: Log = silent
) -> RecoveryRun:
    """Requirements 3-5: every task under ``gather``, wait for abandoned workers, retry the failed ones.

    The first round goes out at once, in ``SUBMISSION_ORDER``; the retries (all short, on idle
    workers) go ``workers`` at a time, so none of them can miss its deadline in the pool's queue.
    A worker killed from outside stops the run in ``WorkerLostError`` naming the phase.
    """
    # By then every task has left its worker: first come first served, a round ends within its work per
    # worker plus its longest task (slow tasks beyond the workers run in waves, long after their deadlines).
    work = (config.slow * config.slowMs + config.succeeding * config.okMs) / 1000
    drainLimit = config.deadlineSeconds + work / config.workers + config.slowMs / 1000
    with during("the first round", executor):
        reports, first, firstSeconds = await runRound(
            [(task.taskId, task.shouldFail, task.timeoutMs) for task in plan], executor, config
        )
    with during("the wait for the timed-out tasks to leave their workers", executor):
        drainSeconds = await first.drain(drainLimit)
        if first.broken:
            raise WorkerLostError(f"{len(reports)} of {len(plan)} tasks ended, no retry started")
    failed = [report["taskId"] for report in reports if report["status"] == "failed"]
    log(f"Retrying {len(failed)} failed tasks with shouldFail=False, timeoutMs={config.okMs:g}")
    with during("the retries", executor):
        retries, retried, retrySeconds = await runRound(
            [(taskId, False, config.okMs) for taskId in failed],
            executor,
            config,
            atOnce=config.workers,
            ended="retries ended",
        )
        await retried.drain(drainLimit)
    return RecoveryRun(
        reports=reports,
        retries=retries,
        abandoned=abandonedTimings(first.statistics(), reports, config.deadlineSeconds),
        firstRoundSeconds=firstSeconds,
        drainSeconds=drainSeconds,
        retrySeconds=retrySeconds,
    )


@dataclass(frozen=True, slots=True)
class Exercise4Result:
    """What exercise 4 measured; timings in seconds."""

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
        with during("the pool's warm-up, before any task", pool):
            warmUpSeconds = warmUp(pool, config.workers, preload=(__name__,))
        run = asyncio.run(handleWithRecovery(plan, pool, config, log))
    return Exercise4Result(config=config, executor=executor, plan=plan, run=run, warmUpSeconds=warmUpSeconds)


def formatExercise4(result: Exercise4Result) -> str:
    """Requirements 4 and 5: the summary that sums to 12, the successes, the failures and retries, the times."""
    config = result.config
    run = result.run
    role = {task.taskId: task.role for task in result.plan}
    retry = {report["taskId"]: report for report in run.retries}
    counted = result.successes + result.valueErrors + result.timeouts
    summary = formatTable(
        ("outcome", "tasks"),
        [
            ("success", result.successes),
            ("ValueError failure", result.valueErrors),
            ("timeout failure", result.timeouts),
            ("total", len(run.reports)),
        ],
        title=f"Summary of the first round ({config.tasks} tasks, {config.deadlineMs:.0f} ms deadline each):",
    )
    check = "ok" if counted == config.tasks else "MISMATCH"
    successes = formatTable(
        ("taskId", "result"),
        [(report["taskId"], f"{report['result']}") for report in run.reports if report["status"] == "ok"],
        title="Successful results:",
    )
    failures = formatTable(
        ("taskId", "role", "first round", "retry"),
        [
            (report["taskId"], role[report["taskId"]], describeReport(report), describeReport(retry[report["taskId"]]))
            for report in run.reports
            if report["status"] == "failed" and report["taskId"] in retry
        ],
        title=f"Failures, retried with shouldFail=False, timeoutMs={config.okMs:g}:",
    )
    return "\n".join(
        [
            "",
            summary,
            (
                f"Sum check: {result.successes} + {result.valueErrors} + {result.timeouts} = {counted} "
                f"of {config.tasks}: {check}"
            ),
            "",
            successes,
            "",
            failures,
            f"Retries: {result.retriesSucceeded} of {len(run.retries)} succeeded.",
            "",
            formatTimeline(result),
            "",
            prose(splitText(config)),
        ]
    )


def formatTimeline(result: Exercise4Result) -> str:
    """Requirement 5's total, phase by phase, and how long the timed-out tasks held their workers."""
    run = result.run
    busy = [timing.busyAfterDeadlineSeconds * 1e3 for timing in run.abandoned]
    held = f"{min(busy):.0f}-{max(busy):.0f} ms" if busy else "0 ms"
    table = formatTable(
        ("phase", "ms"),
        [
            ("pool warm-up (not counted)", result.warmUpSeconds * 1e3),
            ("first round", run.firstRoundSeconds * 1e3),
            ("waiting for timed-out tasks to leave workers", run.drainSeconds * 1e3),
            (f"retries ({len(run.retries)})", run.retrySeconds * 1e3),
            ("total: original run plus retries", result.totalSeconds * 1e3),
        ],
    )
    note = prose(
        f"The {len(busy)} timed-out tasks kept their workers {held} after their deadlines: "
        "wait_for cancelled only the waiting, not the work."
    )
    return f"{table}\n{note}"


def splitText(config: Exercise4Config) -> str:
    """Why the split is exact on every seed, in one paragraph."""
    text = (
        f"Why the split is {config.succeeding}/{config.failing}/{config.slow} on every seed: tasks go out in "
        f"the order {', '.join(SUBMISSION_ORDER)} (the seed only picks which ids play which role), so the "
        f"{config.succeeding} good tasks start at once on {config.workers} workers and finish in "
        f"~{config.okMs:g} ms of a {config.deadlineMs:.0f} ms clock that also counts time queued; a slow task "
        f"needs {config.slowMs:g} ms and can never make it; the retries wait until the slow tasks have left "
        "their workers."
    )
    if config.slow >= config.workers:
        text += (
            f" (In the spec's listing order - fail, slow, succeed - the slow tasks would take all {config.workers} "
            "workers first and the good ones would time out while queued.)"
        )
    return text


def exercise4(options: RunOptions, log: Log) -> Exercise4Result:
    """Registry entry: run exercise 4 with the spec's numbers (or quick ones) and print it.

    An inline executor cannot show a deadline (it blocks the loop), so this exercise then
    uses a thread pool, which cannot stop a running task either, and says so.
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
