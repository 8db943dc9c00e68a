"""Lecture 31: Concurrency Architecture Patterns - reference solutions.

Exercises (spec: lecture31.txt):

1. Three-tier request handler: asyncio in front, a thread pool for blocking I/O,
   a process pool for CPU work, timed against the sequential handler.
2. Fan-out query with an adaptive timeout learned from a sliding window of latencies.
3. Circuit breaker (closed / open / half_open) against a flaky async service.
4. Mixed-architecture pipeline: naive vs correct tiers for 12, 24 and 48 sensors,
   and a sync circuit breaker around storage.

Run one with ``python l31.py --ex 3`` (``invoke run --lecture 31 --ex 3`` adds the lab's
verdicts, from ``lab/lecture31.py``); ``--all``, ``--quick``, ``--seed``, ``--executor`` and
``--start-method`` as in every lecture. Standard library and ``shared.py`` only. The circuit
breaker is one state machine (``BreakerCore``) in two thin shells: ``AsyncCircuitBreaker``
(exercise 3) and ``CircuitBreaker`` around blocking calls (exercise 4).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import gc
import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from concurrent.futures import BrokenExecutor, Future
from dataclasses import dataclass, replace
from typing import Any, Final, Generic, ParamSpec, TypedDict, TypeVar, final

from shared import (
    DEFAULT_SEED,
    ExecutorKind,
    Exercise,
    InlineExecutor,
    Log,
    RunOptions,
    StartMethod,
    Stopwatch,
    TaskExecutor,
    WorkerLostError,
    executorScope,
    formatTable,
    lectureMain,
    makeRng,
    percentile,
    plural,
    prose,
    requireRange,
    runInExecutor,
    silent,
    speedup,
    warmUp,
)

# fmt: off
__all__ = [
    "EXERCISES", "AsyncCircuitBreaker", "BreakerCore", "BreakerState", "BreakerStatistics",
    "CircuitBreaker", "CircuitOpenError", "FlakyAsyncService", "LatencyTracker",
    "ProbeTimeoutError", "StateChange", "StoreError", "aggregateResults", "asyncMain",
    "correctPipeline", "fanOutWithAdaptiveTimeout", "fetchMetadataBlocking", "fetchSensorReading",
    "handleRequest", "handleRequestSync", "main", "naivePipeline", "normalizeReading",
    "parseCsvChunk", "queryShard", "runWatched", "storeReading",
]
# fmt: on

LECTURE = 31
STAGE_DEADLINE_SECONDS: Final = 60.0
"""No stage of this lecture takes a minute: a hung worker fails the run instead of hanging it."""
P = ParamSpec("P")
R = TypeVar("R")


# ============================================================================
# Helpers of this lecture: the event loop's warnings as data; a lost worker named
# ============================================================================


@dataclass(frozen=True, slots=True)
class Watched(Generic[R]):
    """A coroutine's result plus what the event loop reported on the side."""

    result: R
    loopProblems: tuple[str, ...]


def runWatched(coroutine: Coroutine[Any, Any, R]) -> Watched[R]:
    """``asyncio.run`` that collects what the loop's exception handler would have logged.

    "Task exception was never retrieved" and "Task was destroyed but it is pending"
    are only log lines, so a leak passes unnoticed; here they become data, collected
    before the loop closes, while the handler still listens.
    """
    problems: list[str] = []

    def handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        problems.append(str(context.get("message", context)))

    async def watched() -> R:
        asyncio.get_running_loop().set_exception_handler(handler)
        result = await coroutine
        gc.collect()
        await asyncio.sleep(0)
        return result

    result = asyncio.run(watched())
    return Watched(result, tuple(problems))


@final
class TaskTally:
    """A ``TaskExecutor`` around a pool that counts the tasks it finished: how far a stage got."""

    def __init__(self, inner: TaskExecutor) -> None:
        self._inner = inner
        self.finished = 0

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Submit to the wrapped pool; count the task once it has returned."""
        future = self._inner.submit(fn, *args, **kwargs)
        future.add_done_callback(self._count)
        return future

    def _count(self, future: Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            self.finished += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut the wrapped pool down."""
        self._inner.shutdown(wait, cancel_futures=cancel_futures)


@contextlib.contextmanager
def stageTally(pool: TaskExecutor, stage: str, total: int, done: str) -> Iterator[TaskTally]:
    """Run a stage on ``pool`` through a ``TaskTally``; a worker lost meanwhile (even after its last
    task: a no-op closes the stage) stops the run with a ``WorkerLostError`` naming the stage and how
    far it got ("7 of 12 readings normalised"). The broken pool's manager thread reaps every worker
    before ``executorScope`` polls them: a forkserver worker's status is read once, from a pipe."""
    tally = TaskTally(pool)
    try:
        yield tally
        pool.submit(int).result(timeout=STAGE_DEADLINE_SECONDS)
    except BrokenExecutor as error:
        pool.shutdown(wait=True)
        raise WorkerLostError(f"during stage {stage}; {tally.finished} of {total} {done}") from error


# ============================================================================
# Exercise 1 - Three-tier request handler with real workloads
# ============================================================================
# Map: 1 parseCsvChunk (process pool) | 2 fetchMetadataBlocking (thread pool) | 3 handleRequest
#      4 asyncMain (10 requests, gather) | 5 handleRequestSync, the sequential baseline.
# Per request: makeCsvChunk -> process pool: parseCsvChunk -> thread pool: fetchMetadataBlocking
#      (first record's id) -> RequestResult. The loop only coordinates.

RECORD_PARSE_SECONDS: Final = 0.0001
METADATA_DELAY_RANGE: Final = (0.05, 0.1)


class ParsedRecord(TypedDict):
    """One parsed CSV line: the spec's keys "id", "value" and "timestamp"."""

    id: int
    value: float
    timestamp: str


class Metadata(TypedDict):
    """What the legacy metadata service answers."""

    id: int
    label: str


def parseCsvChunk(chunk: list[str]) -> list[ParsedRecord]:
    """Requirement 1, the CPU tier (process pool): parse "id,value,timestamp" lines, 0.1 ms each.

    The spec simulates the CPU cost with ``time.sleep(0.0001)`` per record. A sleep
    holds no core, so this tier is bounded by the worker count (4), not by the cores;
    real parsing would be bounded by min(workers, cores).
    """
    records: list[ParsedRecord] = []
    for line in chunk:
        idText, valueText, timestamp = line.split(",")
        time.sleep(RECORD_PARSE_SECONDS)
        records.append({"id": int(idText), "value": float(valueText), "timestamp": timestamp})
    return records


def fetchMetadataBlocking(recordId: int, *, seed: int = DEFAULT_SEED, timeScale: float = 1.0) -> Metadata:
    """Requirement 2, the blocking I/O tier (thread pool): a legacy service, 50-100 ms per call.

    ``time.sleep`` releases the GIL, so ten threads wait for ten calls at once:
    this tier is bounded by the thread count, not by the cores.
    """
    time.sleep(metadataDelay(recordId, seed) * timeScale)
    return {"id": recordId, "label": f"item_{recordId}"}


def metadataDelay(recordId: int, seed: int = DEFAULT_SEED) -> float:
    """The spec's ``random.uniform(0.05, 0.1)``, drawn from the seed and the record id."""
    low, high = METADATA_DELAY_RANGE
    return makeRng(seed, LECTURE, 1, "metadata", recordId).uniform(low, high)


class RequestResult(TypedDict):
    """``handleRequest``'s combined answer: requestId, parse count and metadata."""

    requestId: int
    parseCount: int
    metadata: Metadata


def makeCsvChunk(requestId: int, records: int, seed: int) -> list[str]:
    """Requirement 3a: CSV lines like "1,45.3,2024-01-01", ids unique across requests."""
    rng = makeRng(seed, LECTURE, 1, "csv", requestId)
    return [f"{requestId * 1000 + i},{rng.uniform(0.0, 100.0):.1f},2024-01-{i % 28 + 1:02d}" for i in range(records)]


async def handleRequest(
    requestId: int,
    threadPool: TaskExecutor,
    processPool: TaskExecutor,
    *,
    seed: int = DEFAULT_SEED,
    records: int = 20,
    timeScale: float = 1.0,
) -> RequestResult:
    """Requirement 3: each tier's work on its own executor; the loop only coordinates.

    ``runInExecutor`` is ``loop.run_in_executor`` for any executor. Pass an
    ``InlineExecutor`` as ``processPool`` and the parse runs on the loop itself:
    the same code with the CPU tier switched off.
    """
    chunk = makeCsvChunk(requestId, records, seed)
    parsed = await runInExecutor(processPool, parseCsvChunk, chunk)
    metadata = await runInExecutor(threadPool, fetchMetadataBlocking, parsed[0]["id"], seed=seed, timeScale=timeScale)
    return {"requestId": requestId, "parseCount": len(parsed), "metadata": metadata}


async def asyncMain(
    requests: int,
    threadPool: TaskExecutor,
    processPool: TaskExecutor,
    *,
    seed: int = DEFAULT_SEED,
    records: int = 20,
    timeScale: float = 1.0,
) -> list[RequestResult]:
    """Requirement 4, the spec's async ``main()`` (``main`` is the command line here): every
    request at once through ``gather``."""
    async with asyncio.timeout(STAGE_DEADLINE_SECONDS):
        return await asyncio.gather(
            *(
                handleRequest(requestId, threadPool, processPool, seed=seed, records=records, timeScale=timeScale)
                for requestId in range(requests)
            )
        )


def handleRequestSync(
    requestId: int, *, seed: int = DEFAULT_SEED, records: int = 20, timeScale: float = 1.0
) -> RequestResult:
    """Requirement 5: the same request with direct calls, no executor at all."""
    parsed = parseCsvChunk(makeCsvChunk(requestId, records, seed))
    metadata = fetchMetadataBlocking(parsed[0]["id"], seed=seed, timeScale=timeScale)
    return {"requestId": requestId, "parseCount": len(parsed), "metadata": metadata}


@dataclass(frozen=True, slots=True)
class Exercise1Config:
    """The spec's numbers: 10 requests of 20 records, 10 threads, 4 processes."""

    requests: int = 10
    recordsPerRequest: int = 20
    threadWorkers: int = 10
    processWorkers: int = 4
    timeScale: float = 1.0

    def __post_init__(self) -> None:
        requireRange("requests", self.requests, 1, 10_000)
        requireRange("recordsPerRequest", self.recordsPerRequest, 1, 100_000)
        requireRange("threadWorkers", self.threadWorkers, 1, 256)
        requireRange("processWorkers", self.processWorkers, 1, 256)
        requireRange("timeScale", self.timeScale, 0.001, 10.0)

    @classmethod
    def quick(cls) -> Exercise1Config:
        """Same tiers, six requests and half-length metadata calls."""
        return cls(requests=6, timeScale=0.5)


@dataclass(frozen=True, slots=True)
class Exercise1Result:
    """What exercise 1 measured: the results, and each architecture's seconds."""

    config: Exercise1Config
    executor: ExecutorKind
    seed: int
    results: tuple[RequestResult, ...]
    matchesSequential: bool
    sequentialSeconds: float
    threadTierSeconds: float
    threeTierSeconds: float
    metadataSeconds: tuple[float, ...]
    warmUpSeconds: float

    @property
    def speedup(self) -> float:
        """Requirement 5's ratio: synchronous time over three-tier time."""
        return speedup(self.sequentialSeconds, self.threeTierSeconds)


def timeAsync(
    config: Exercise1Config, threadPool: TaskExecutor, processPool: TaskExecutor, seed: int
) -> tuple[list[RequestResult], float]:
    """One pass of ``asyncMain`` in a fresh event loop; results and seconds."""
    records, scale = config.recordsPerRequest, config.timeScale
    coroutine = asyncMain(config.requests, threadPool, processPool, seed=seed, records=records, timeScale=scale)
    with Stopwatch() as watch:
        results = asyncio.run(coroutine)
    return results, watch.elapsed


def runExercise1(
    config: Exercise1Config,
    *,
    seed: int,
    executor: ExecutorKind = "process",
    startMethod: StartMethod | None = None,
) -> Exercise1Result:
    """Requirements 4-5: sequential, the thread tier alone, all three tiers (the gain of each tier).

    The process pool starts (warm) before the thread pool exists (forking a process that
    runs threads is unsafe; 3.12+ warns), both before any timing; the process pool's last
    use comes just before it closes: a worker lost on the way is found by ``stageTally``.
    """
    records, scale = config.recordsPerRequest, config.timeScale
    with executorScope(executor, config.processWorkers, startMethod) as processPool:
        with stageTally(processPool, "start-up", config.requests, "requests parsed"):
            warmUpSeconds = warmUp(processPool, config.processWorkers, preload=(__name__,))
            processPool.submit(parseCsvChunk, makeCsvChunk(0, 1, seed)).result(timeout=STAGE_DEADLINE_SECONDS)
        with executorScope("thread", config.threadWorkers) as threadPool:
            with Stopwatch() as watch:
                sequential = [
                    handleRequestSync(r, seed=seed, records=records, timeScale=scale) for r in range(config.requests)
                ]
            threadOnly, threadTierSeconds = timeAsync(config, threadPool, InlineExecutor(), seed)
            with stageTally(processPool, "parse", config.requests, "requests parsed") as cpuTier:
                concurrent, threeTierSeconds = timeAsync(config, threadPool, cpuTier, seed)
    return Exercise1Result(
        config=config,
        executor=executor,
        seed=seed,
        results=tuple(concurrent),
        matchesSequential=concurrent == sequential and threadOnly == sequential,
        sequentialSeconds=watch.elapsed,
        threadTierSeconds=threadTierSeconds,
        threeTierSeconds=threeTierSeconds,
        metadataSeconds=tuple(metadataDelay(r["metadata"]["id"], seed) * config.timeScale for r in sequential),
        warmUpSeconds=warmUpSeconds,
    )


def formatExercise1(result: Exercise1Result) -> str:
    """Requirements 4-5: the requests, the three timings, the speedup."""
    perRequest = formatTable(
        ("requestId", "parsed", "metadata", "metadata ms"),
        [
            (r["requestId"], r["parseCount"], r["metadata"]["label"], round(seconds * 1e3))
            for r, seconds in zip(result.results, result.metadataSeconds, strict=True)
        ],
    )
    runs = (
        ("sequential, no executors", result.sequentialSeconds),
        ("async + thread pool, parse on the loop", result.threadTierSeconds),
        (f"async + thread pool + {result.executor} pool", result.threeTierSeconds),
    )
    timings = formatTable(
        ("architecture", "elapsed ms", "speedup"),
        [
            (label, round(seconds * 1e3), f"{speedup(result.sequentialSeconds, seconds):.2f}x")
            for label, seconds in runs
        ],
    )
    summary = prose(
        f"Async elapsed: {result.threeTierSeconds * 1e3:.0f} ms; synchronous elapsed: "
        f"{result.sequentialSeconds * 1e3:.0f} ms; speedup (synchronous / async) = {result.speedup:.2f}x. "
        f"The thread tier carries most of it: {result.config.threadWorkers} blocking metadata calls overlap. "
        "The process tier only shortens the queue of parses. Its start-up "
        f"({result.warmUpSeconds * 1e3:.0f} ms) was paid once, before timing."
    )
    return "\n".join(["", perRequest, "", timings, "", summary])


def exercise1(options: RunOptions, log: Log) -> Exercise1Result:
    """Registry entry: run exercise 1 with the spec's numbers (or quick ones) and print it."""
    config = Exercise1Config.quick() if options.quick else Exercise1Config()
    result = runExercise1(config, seed=options.seed, executor=options.executor, startMethod=options.startMethod)
    log(formatExercise1(result))
    return result


# ============================================================================
# Exercise 2 - Fan-out query with adaptive timeout
# ============================================================================
# Map: 1 queryShard (drawShard: its seeded draws) | 2 LatencyTracker.suggestedTimeout
#      3 fanOutWithAdaptiveTimeout | 4 runFanOutQueries (15 x 6 shards) | 5 formatExercise2.
# Per query: tracker.suggestedTimeout() -> 6 queryShard tasks -> asyncio.wait(timeout) ->
#      done: count / pending: cancel and await -> tracker.recordAll(latencies of responders).

SHARD_BASE_LATENCY: Final = 0.1
SHARD_SPIKE_RATE: Final = 5.0
SHARD_FAILURE_PROBABILITY: Final = 0.1


class ShardResult(TypedDict):
    """One shard's answer: its id and the records it matched."""

    shardId: int
    records: list[str]


async def queryShard(shardId: int, query: str, *, seed: int = DEFAULT_SEED, timeScale: float = 1.0) -> ShardResult:
    """Requirement 1: 100 ms plus an exponential spike (mean 200 ms); 10% raise "shard error"."""
    draw = drawShard(shardId, query, seed)
    await asyncio.sleep(draw.latencySeconds * timeScale)
    if draw.fails:
        raise RuntimeError("shard error")
    return {"shardId": shardId, "records": [f"r_{shardId}_{i}" for i in range(draw.recordCount)]}


@dataclass(frozen=True, slots=True)
class ShardDraw:
    """What one shard will do for one query, drawn before it runs."""

    latencySeconds: float
    fails: bool
    recordCount: int


def drawShard(shardId: int, query: str, seed: int = DEFAULT_SEED) -> ShardDraw:
    """Requirement 1's random draws, determined by the seed, the query and the shard."""
    rng = makeRng(seed, LECTURE, 2, query, shardId)
    latency = SHARD_BASE_LATENCY + rng.expovariate(SHARD_SPIKE_RATE)
    fails = rng.random() < SHARD_FAILURE_PROBABILITY
    return ShardDraw(latency, fails, rng.randint(3, 8))


@dataclass(frozen=True, slots=True)
class TrackerStatistics:
    """A snapshot of a ``LatencyTracker``."""

    observations: int
    p90Seconds: float | None
    suggestedTimeout: float


@final
class LatencyTracker:
    """Requirement 2: a sliding window of the last 20 latencies and the timeout they suggest.

    The window only holds latencies of shards that answered in time, so it is
    censored at the timeout in force: a p90 of what got through. At twice that p90
    the deadline cuts off only the far tail (the lab measures the long run).
    """

    def __init__(
        self,
        *,
        windowSize: int = 20,
        percentileRank: float = 90.0,
        multiplier: float = 2.0,
        defaultTimeout: float = 0.5,
        minObservations: int = 5,
    ) -> None:
        requireRange("windowSize", windowSize, 1, 1_000_000)
        requireRange("percentileRank", percentileRank, 0.0, 100.0)
        requireRange("multiplier", multiplier, 0.0, 1000.0)
        requireRange("defaultTimeout", defaultTimeout, 0.0, 86_400.0)
        requireRange("minObservations", minObservations, 1, windowSize)
        self._window: deque[float] = deque(maxlen=windowSize)
        self._percentileRank = percentileRank
        self._multiplier = multiplier
        self._defaultTimeout = defaultTimeout
        self._minObservations = minObservations

    def record(self, latencySeconds: float) -> None:
        """Add one observed latency; the oldest falls out of a full window."""
        requireRange("latencySeconds", latencySeconds, 0.0)
        self._window.append(latencySeconds)

    def recordAll(self, latencies: Iterable[float]) -> None:
        """Add the latencies of one fan-out's responding shards."""
        for latency in latencies:
            self.record(latency)

    def suggestedTimeout(self) -> float:
        """p90 of the window times 2.0, or the 0.5 s default below 5 observations."""
        if len(self._window) < self._minObservations:
            return self._defaultTimeout
        return percentile(list(self._window), self._percentileRank) * self._multiplier

    @property
    def observations(self) -> tuple[float, ...]:
        """The window, oldest first."""
        return tuple(self._window)

    def statistics(self) -> TrackerStatistics:
        """Window size, its p90 (None when empty) and the suggested timeout."""
        p90 = percentile(list(self._window), self._percentileRank) if self._window else None
        return TrackerStatistics(len(self._window), p90, self.suggestedTimeout())


class FanOutResult(TypedDict):
    """Requirement 3g's dict, plus the fan-out's elapsed time and stragglers still alive after it."""

    query: str
    shardsResponded: int
    shardsTimedOut: int
    shardsFailed: int
    totalRecords: int
    usedTimeout: float
    elapsedSeconds: float
    stragglersLeft: int


async def fanOutWithAdaptiveTimeout(
    query: str,
    numShards: int,
    tracker: LatencyTracker,
    *,
    seed: int = DEFAULT_SEED,
    timeScale: float = 1.0,
    cancelGraceSeconds: float = 1.0,
) -> FanOutResult:
    """Requirement 3: ask every shard, keep what arrives before the adaptive deadline.

    Stragglers are cancelled and then awaited (with a deadline), so none outlives
    the fan-out; every finished task's exception is retrieved, so the loop never logs
    "Task exception was never retrieved". Results are read in shard order, not in
    the done set's arbitrary order, so the window evicts the same latencies each run.
    """
    requireRange("numShards", numShards, 1, 10_000)
    usedTimeout = tracker.suggestedTimeout()
    loop = asyncio.get_running_loop()
    started = loop.time()
    tasks = [
        asyncio.create_task(_timedShard(shardId, query, seed, timeScale), name=f"shard:{query}:{shardId}")
        for shardId in range(numShards)
    ]
    done, pending = await asyncio.wait(tasks, timeout=usedTimeout)
    latencies: list[float] = []
    failed = records = 0
    for task in (task for task in tasks if task in done):
        try:
            latency, result = task.result()
        except Exception:  # noqa: BLE001 - any shard error counts as a failed shard
            failed += 1
        else:
            latencies.append(latency)
            records += len(result["records"])
    stragglersLeft = await _cancelAndAwait(pending, cancelGraceSeconds)
    tracker.recordAll(latencies)
    return {
        "query": query,
        "shardsResponded": len(latencies),
        "shardsTimedOut": len(pending),
        "shardsFailed": failed,
        "totalRecords": records,
        "usedTimeout": usedTimeout,
        "elapsedSeconds": loop.time() - started,
        "stragglersLeft": stragglersLeft,
    }


async def _timedShard(shardId: int, query: str, seed: int, timeScale: float) -> tuple[float, ShardResult]:
    """Run ``queryShard`` and measure its latency on the loop's clock."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await queryShard(shardId, query, seed=seed, timeScale=timeScale)
    return loop.time() - started, result


async def _cancelAndAwait(pending: set[asyncio.Task[Any]], graceSeconds: float) -> int:
    """Cancel the stragglers and wait (bounded) until they are gone; how many are still alive.

    A shard that finishes between the deadline and its cancellation still counts as
    timed out (it missed the deadline); its exception is retrieved all the same.
    """
    for task in pending:
        task.cancel()
    if not pending:
        return 0
    finished, stillPending = await asyncio.wait(pending, timeout=graceSeconds)
    for task in finished:
        if not task.cancelled():
            task.exception()
    return len(stillPending)


def queryName(index: int) -> str:
    """The name of the index-th query (from 0): q01, q02, ..."""
    return f"q{index + 1:02d}"


@dataclass(frozen=True, slots=True)
class Exercise2Config:
    """The spec's numbers: 15 queries, 6 shards, window 20, p90 x 2.0, default 0.5 s below 5 samples."""

    queries: int = 15
    numShards: int = 6
    windowSize: int = 20
    multiplier: float = 2.0
    defaultTimeout: float = 0.5
    minObservations: int = 5
    timeScale: float = 1.0

    def __post_init__(self) -> None:
        requireRange("queries", self.queries, 1, 100_000)
        requireRange("numShards", self.numShards, 1, 10_000)
        requireRange("windowSize", self.windowSize, 1, 1_000_000)
        requireRange("multiplier", self.multiplier, 0.0, 1000.0)
        requireRange("defaultTimeout", self.defaultTimeout, 0.0, 86_400.0)
        requireRange("minObservations", self.minObservations, 1, self.windowSize)
        requireRange("timeScale", self.timeScale, 0.001, 10.0)

    @classmethod
    def quick(cls) -> Exercise2Config:
        """Same queries and shards, every latency and timeout a fifth as long."""
        return cls(timeScale=0.2)


@dataclass(frozen=True, slots=True)
class Exercise2Result:
    """What exercise 2 measured; times in real seconds (scaled by ``config.timeScale``)."""

    config: Exercise2Config
    queries: tuple[FanOutResult, ...]
    finalTimeout: float
    liveShardTasks: int
    loopProblems: tuple[str, ...]

    @property
    def totalRecords(self) -> int:
        """Records accumulated over every query."""
        return sum(q["totalRecords"] for q in self.queries)


async def runFanOutQueries(config: Exercise2Config, seed: int) -> tuple[list[FanOutResult], int, float]:
    """Requirement 4: consecutive fan-outs sharing one tracker; counts shard tasks left alive."""
    tracker = LatencyTracker(
        windowSize=config.windowSize,
        multiplier=config.multiplier,
        defaultTimeout=config.defaultTimeout * config.timeScale,
        minObservations=config.minObservations,
    )
    results: list[FanOutResult] = []
    live = 0
    for index in range(config.queries):
        result = await fanOutWithAdaptiveTimeout(
            queryName(index), config.numShards, tracker, seed=seed, timeScale=config.timeScale
        )
        live += sum(1 for task in asyncio.all_tasks() if task.get_name().startswith("shard:"))
        results.append(result)
    return results, live, tracker.suggestedTimeout()


def runExercise2(config: Exercise2Config, *, seed: int) -> Exercise2Result:
    """Requirements 4-5: the queries in real time, with the loop's warnings collected."""
    watched = runWatched(runFanOutQueries(config, seed))
    results, live, finalTimeout = watched.result
    return Exercise2Result(config, tuple(results), finalTimeout, live, watched.loopProblems)


TRACE_KEYS: Final = ("query", "shardsResponded", "shardsTimedOut", "shardsFailed", "totalRecords")


def formatExercise2(result: Exercise2Result) -> str:
    """Requirements 4-5: one row per query (the timeout it used), then the summary."""
    config = result.config
    trace = formatTable(
        ("query", "responded", "timed out", "failed", "records", "usedTimeout s", "took s"),
        [
            (*(q[key] for key in TRACE_KEYS), f"{q['usedTimeout']:.3f}", f"{q['elapsedSeconds']:.3f}")
            for q in result.queries
        ],
    )
    responded = [q["shardsResponded"] for q in result.queries]
    default = config.defaultTimeout * config.timeScale
    defaults = sum(q["usedTimeout"] == default for q in result.queries)
    lines = ["", trace, ""]
    if config.timeScale != 1.0:
        lines.append(f"(time scale {config.timeScale}: every latency and timeout is {config.timeScale} x the spec's)")
    lines.append(
        prose(
            f"The first {defaults} queries used the {default:g} s default (fewer than {config.minObservations} "
            f"latencies seen); later ones used 2 x the p90 of the last {config.windowSize}. Shards responded per "
            f"query: min {min(responded)}, max {max(responded)}, mean {statistics.fmean(responded):.2f} of "
            f"{config.numShards}. Total records: {result.totalRecords}. Final suggested timeout: "
            f"{result.finalTimeout:.3f} s."
        )
    )
    return "\n".join(lines)


def exercise2(options: RunOptions, log: Log) -> Exercise2Result:
    """Registry entry: run exercise 2 with the spec's numbers (or quick ones) and print it."""
    config = Exercise2Config.quick() if options.quick else Exercise2Config()
    result = runExercise2(config, seed=options.seed)
    log(formatExercise2(result))
    return result


# ============================================================================
# Exercise 3 - Circuit breaker implementation
# ============================================================================
# Map: 1 BreakerCore: the state, counters and rules (acquire: "open"; succeeded / failed: "half_open"
#      and "closed"), shared with exercise 4 | 2 AsyncCircuitBreaker.call | 3 CircuitOpenError,
#      FlakyAsyncService.fetch | 4 runBreakerHarness: a line per call | 5 formatExercise3.
# Per call: wait_for(breaker.call(service.fetch, i), 1.0) -> acquire -> fetch -> succeeded /
#      failed (or released: cancelled by the caller, not counted) -> CallRecord.


class CircuitOpenError(Exception):
    """Requirement 3: the circuit is open (or a half-open probe is in flight): the call was not made."""


class ProbeTimeoutError(TimeoutError):
    """The breaker's own deadline on a half-open probe expired; it counts as a service failure."""


class BreakerState(enum.StrEnum):
    """The spec's three states; each compares equal to its string ("closed", "open", "half_open")."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerCore:
    """Requirement 1: the three states, the spec's counters and rules; the shells run the call.

    A shell takes a ``Permit`` from ``acquire``, runs the call, then reports one of
    ``succeeded``, ``failed`` or ``released`` (cancelled from outside: not counted).
    The lock is never held across the call (that would serialise every caller).
    Beyond the spec: one probe at a time in half_open; an outcome from a call admitted
    before the latest transition is stale (counted, but it does not move the state);
    ``clock``, ``onStateChange`` and a ``statistics()`` snapshot.
    """

    def __init__(
        self,
        failureThreshold: int = 3,
        resetTimeoutSeconds: float = 2.0,
        *,
        halfOpenSuccesses: int = 1,
        clock: Clock = time.monotonic,
        onStateChange: StateListener | None = None,
    ) -> None:
        requireRange("failureThreshold", failureThreshold, 1, 1_000_000)
        requireRange("resetTimeoutSeconds", resetTimeoutSeconds, 0.0, 86_400.0)
        requireRange("halfOpenSuccesses", halfOpenSuccesses, 1, 1_000_000)
        self._threshold = failureThreshold
        self._resetTimeout = resetTimeoutSeconds
        self._halfOpenSuccesses = halfOpenSuccesses
        self._clock = clock
        self._listener = onStateChange
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failureCount = 0
        self._lastFailureTime: float | None = None
        self._successCountInHalfOpen = 0
        self._probeInFlight = False
        self._generation = 0
        self._admitted = self._successes = self._failures = 0
        self._rejected = self._released = self._stale = self._transitions = 0

    @property
    def state(self) -> BreakerState:
        """ "closed", "open" or "half_open" (open turns half_open only when a call arrives)."""
        return self._state

    @property
    def failureCount(self) -> int:
        """Consecutive failures counted while closed; reset by a success or by closing."""
        return self._failureCount

    @property
    def lastFailureTime(self) -> float | None:
        """Clock time of the last counted failure (None before the first)."""
        return self._lastFailureTime

    @property
    def successCountInHalfOpen(self) -> int:
        """Successful probes since the circuit last turned half_open."""
        return self._successCountInHalfOpen

    def acquire(self) -> Permit:
        """The "open" rule: admit one call or raise ``CircuitOpenError``; open turns half_open
        once ``resetTimeoutSeconds`` have passed since ``lastFailureTime``."""
        changes: list[StateChange] = []
        with self._lock:
            if self._state is BreakerState.OPEN:
                now = self._clock()
                waited = now - (now if self._lastFailureTime is None else self._lastFailureTime)
                if waited < self._resetTimeout:
                    self._rejected += 1
                    raise CircuitOpenError(f"circuit open: probe allowed in {self._resetTimeout - waited:.3f} s")
                changes.append(self._moveLocked(BreakerState.HALF_OPEN, now, f"{waited:.3f} s since last failure"))
            if self._state is BreakerState.HALF_OPEN:
                if self._probeInFlight:
                    self._rejected += 1
                    raise CircuitOpenError("circuit half_open: a probe is already in flight")
                self._probeInFlight = True
            self._admitted += 1
            permit = Permit(self._state is BreakerState.HALF_OPEN, self._generation)
        try:
            self._notify(changes)
        except BaseException:
            self.released(permit)
            raise
        return permit

    def succeeded(self, permit: Permit) -> None:
        """The admitted call returned: closed resets ``failureCount``, a probe closes the circuit."""
        changes: list[StateChange] = []
        with self._lock:
            self._successes += 1
            self._probeInFlight = self._probeInFlight and not permit.probe
            if permit.generation != self._generation:
                self._stale += 1
            elif self._state is BreakerState.HALF_OPEN:
                self._successCountInHalfOpen += 1
                if self._successCountInHalfOpen >= self._halfOpenSuccesses:
                    reason = f"{self._successCountInHalfOpen} probe(s) succeeded"
                    changes.append(self._moveLocked(BreakerState.CLOSED, self._clock(), reason))
            else:
                self._failureCount = 0
        self._notify(changes)

    def failed(self, permit: Permit) -> None:
        """The admitted call failed: closed counts to the threshold and opens, a failed probe reopens."""
        changes: list[StateChange] = []
        with self._lock:
            self._failures += 1
            self._probeInFlight = self._probeInFlight and not permit.probe
            if permit.generation != self._generation:
                self._stale += 1
            else:
                now = self._lastFailureTime = self._clock()
                if self._state is BreakerState.HALF_OPEN:
                    changes.append(self._moveLocked(BreakerState.OPEN, now, "the probe failed"))
                else:
                    self._failureCount += 1
                    if self._failureCount >= self._threshold:
                        reason = f"{self._failureCount} consecutive failures"
                        changes.append(self._moveLocked(BreakerState.OPEN, now, reason))
        self._notify(changes)

    def released(self, permit: Permit) -> None:
        """The admitted call was cancelled from outside: nothing counted; a probe permit is freed."""
        with self._lock:
            self._released += 1
            self._probeInFlight = self._probeInFlight and not permit.probe

    def statistics(self) -> BreakerStatistics:
        """A consistent snapshot, taken under the lock."""
        with self._lock:
            state = (self._state, self._failureCount, self._lastFailureTime, self._successCountInHalfOpen)
            counts = (self._admitted, self._successes, self._failures, self._rejected, self._released, self._stale)
            return BreakerStatistics(*state, self._probeInFlight, *counts, self._transitions)

    def _moveLocked(self, target: BreakerState, now: float, reason: str) -> StateChange:
        """Change state (lock held): a new generation; half_open counts probes anew, closed forgets failures."""
        change = StateChange(self._state, target, now, reason)
        self._state = target
        self._generation += 1
        self._transitions += 1
        if target is BreakerState.HALF_OPEN:
            self._successCountInHalfOpen = 0
        elif target is BreakerState.CLOSED:
            self._failureCount = 0
        return change

    def _notify(self, changes: Sequence[StateChange]) -> None:
        """Tell the listener, outside the lock, so that it may read the breaker."""
        if self._listener is not None:
            for change in changes:
                self._listener(change)


@final
class AsyncCircuitBreaker(BreakerCore):
    """Requirements 1-2: ``BreakerCore`` around coroutines; ``probeTimeoutSeconds`` bounds the
    half-open probe (``ProbeTimeoutError``, a failure). A call cancelled from outside (an outer
    ``wait_for``) counts as nothing: the caller's deadline says nothing about the service."""

    def __init__(
        self,
        failureThreshold: int = 3,
        resetTimeoutSeconds: float = 2.0,
        probeTimeoutSeconds: float | None = 0.5,
        *,
        halfOpenSuccesses: int = 1,
        clock: Clock = time.monotonic,
        onStateChange: StateListener | None = None,
    ) -> None:
        if probeTimeoutSeconds is not None:
            requireRange("probeTimeoutSeconds", probeTimeoutSeconds, 0.0, 86_400.0)
        self._probeTimeout = probeTimeoutSeconds
        super().__init__(
            failureThreshold,
            resetTimeoutSeconds,
            halfOpenSuccesses=halfOpenSuccesses,
            clock=clock,
            onStateChange=onStateChange,
        )

    async def call(self, coroutineFn: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs) -> R:
        """Requirement 2: ``await coroutineFn(*args, **kwargs)`` if the circuit admits it; the
        outcome moves the state (``succeeded`` resets or closes, ``failed`` counts or opens)."""
        permit = self.acquire()
        try:
            result = await self._run(permit, coroutineFn(*args, **kwargs))
        except Exception:
            self.failed(permit)
            raise
        except BaseException:
            # Cancellation (the caller's deadline) and interpreter exits: not the service's failure.
            self.released(permit)
            raise
        self.succeeded(permit)
        return result

    async def _run(self, permit: Permit, awaitable: Awaitable[R]) -> R:
        """Await the call; a probe runs under the breaker's own deadline."""
        if not permit.probe or self._probeTimeout is None:
            return await awaitable
        deadline = asyncio.timeout(self._probeTimeout)
        try:
            async with deadline:
                return await awaitable
        except TimeoutError as error:
            if deadline.expired():
                raise ProbeTimeoutError(f"probe exceeded {self._probeTimeout:g} s") from error
            raise


@dataclass(frozen=True, slots=True)
class StateChange:
    """One transition, as ``onStateChange`` receives it; ``at`` is on the breaker's clock."""

    previous: BreakerState
    current: BreakerState
    at: float
    reason: str


@dataclass(frozen=True, slots=True)
class Permit:
    """Admission to one call: whether it is the half-open probe, and the state generation it saw."""

    probe: bool
    generation: int


@dataclass(frozen=True, slots=True)
class BreakerStatistics:
    """A snapshot of a breaker: its state and counters of everything it has decided."""

    state: BreakerState
    failureCount: int
    lastFailureTime: float | None
    successCountInHalfOpen: int
    probeInFlight: bool
    admitted: int
    successes: int
    failures: int
    rejected: int
    released: int
    stale: int
    transitions: int


Clock = Callable[[], float]
StateListener = Callable[[StateChange], None]


class ServiceBehaviour(enum.StrEnum):
    """What ``FlakyAsyncService.fetch`` does for one request."""

    OK = "ok"
    ERROR = "error"
    HANG = "hang"


@final
class FlakyAsyncService:
    """Requirement 3: answers 60% of requests, raises "service degraded" for 30%, hangs 3 s for 10%;
    each request's behaviour drawn from the seed and its id, whichever requests got through before."""

    def __init__(
        self,
        *,
        seed: int = DEFAULT_SEED,
        successRate: float = 0.6,
        errorRate: float = 0.3,
        hangSeconds: float = 3.0,
    ) -> None:
        requireRange("successRate", successRate, 0.0, 1.0)
        requireRange("errorRate", errorRate, 0.0, 1.0 - successRate)
        requireRange("hangSeconds", hangSeconds, 0.0, 86_400.0)
        self._seed = seed
        self._successRate = successRate
        self._errorRate = errorRate
        self._hangSeconds = hangSeconds
        self._received: list[int] = []

    def behaviour(self, requestId: int) -> ServiceBehaviour:
        """What the service does for ``requestId``."""
        draw = makeRng(self._seed, LECTURE, 3, requestId).random()
        if draw < self._successRate:
            return ServiceBehaviour.OK
        if draw < self._successRate + self._errorRate:
            return ServiceBehaviour.ERROR
        return ServiceBehaviour.HANG

    @property
    def received(self) -> tuple[int, ...]:
        """Request ids that reached the service, in order."""
        return tuple(self._received)

    async def fetch(self, requestId: int) -> dict[str, int | str]:
        """Answer, fail, or hang and then raise ``asyncio.TimeoutError``."""
        self._received.append(requestId)
        behaviour = self.behaviour(requestId)
        await asyncio.sleep(0)
        if behaviour is ServiceBehaviour.ERROR:
            raise RuntimeError("service degraded")
        if behaviour is ServiceBehaviour.HANG:
            await asyncio.sleep(self._hangSeconds)
            raise TimeoutError(f"service hung for {self._hangSeconds:g} s")
        return {"requestId": requestId, "payload": f"data_{requestId}"}


class CallOutcome(enum.StrEnum):
    """Requirement 4's four outcomes of a call through the breaker."""

    SUCCESS = "success"
    SERVICE_ERROR = "service error"
    CIRCUIT_OPEN = "circuit open"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call of the harness: what the service would do, what happened, how long it took."""

    requestId: int
    behaviour: ServiceBehaviour
    outcome: CallOutcome
    detail: str
    seconds: float
    stateAfter: BreakerState
    failureCount: int
    reachedService: bool
    countedAsFailure: bool
    releasedUncounted: bool
    timeoutSource: str = ""


@dataclass(frozen=True, slots=True)
class Exercise3Config:
    """The spec's numbers: 30 calls, threshold 3, reset 2.0 s, probe 0.5 s, outer 1.0 s, hang 3 s.

    Ours: 0.3 s between calls (back to back, 30 calls end before the 2 s reset: no half_open).
    """

    calls: int = 30
    failureThreshold: int = 3
    resetTimeoutSeconds: float = 2.0
    probeTimeoutSeconds: float = 0.5
    outerTimeoutSeconds: float = 1.0
    hangSeconds: float = 3.0
    callIntervalSeconds: float = 0.3
    successRate: float = 0.6
    errorRate: float = 0.3
    timeScale: float = 1.0

    def __post_init__(self) -> None:
        requireRange("calls", self.calls, 1, 100_000)
        requireRange("failureThreshold", self.failureThreshold, 1, 1_000_000)
        for name in ("resetTimeoutSeconds", "probeTimeoutSeconds", "outerTimeoutSeconds", "hangSeconds"):
            requireRange(name, getattr(self, name), 0.0, 3600.0)
        requireRange("callIntervalSeconds", self.callIntervalSeconds, 0.0, 3600.0)
        requireRange("successRate", self.successRate, 0.0, 1.0)
        requireRange("errorRate", self.errorRate, 0.0, 1.0 - self.successRate)
        requireRange("timeScale", self.timeScale, 0.001, 10.0)

    @classmethod
    def quick(cls) -> Exercise3Config:
        """The same 30 calls with every duration a tenth as long."""
        return cls(timeScale=0.1)

    def scaled(self, seconds: float) -> float:
        """A spec duration at this run's time scale."""
        return seconds * self.timeScale


@dataclass(frozen=True, slots=True)
class Exercise3Result:
    """What exercise 3 measured; seconds are real (scaled by ``config.timeScale``)."""

    config: Exercise3Config
    calls: tuple[CallRecord, ...]
    changes: tuple[StateChange, ...]
    startedAt: float
    statistics: BreakerStatistics
    serviceCalls: int
    loopProblems: tuple[str, ...] = ()

    def count(self, outcome: CallOutcome) -> int:
        """Calls that ended with ``outcome``."""
        return sum(record.outcome is outcome for record in self.calls)

    def durations(self, outcome: CallOutcome) -> list[float]:
        """Seconds of every call that ended with ``outcome``."""
        return [record.seconds for record in self.calls if record.outcome is outcome]


def formatCallLine(record: CallRecord) -> str:
    """Requirement 4's per-call line: outcome, duration, state after the call, why."""
    return (
        f"call {record.requestId:2d}: {record.outcome:<13} {record.seconds * 1e3:7.1f} ms  "
        f"-> {record.stateAfter:<9} failures={record.failureCount}  {record.detail}"
    )


async def callOnce(
    breaker: AsyncCircuitBreaker, service: FlakyAsyncService, requestId: int, outer: float
) -> tuple[CallOutcome, str, str]:
    """One call under the outer ``wait_for``: its outcome, a short detail, and which timeout fired."""
    try:
        await asyncio.wait_for(breaker.call(service.fetch, requestId), timeout=outer)
    except CircuitOpenError as error:
        return CallOutcome.CIRCUIT_OPEN, str(error), ""
    except ProbeTimeoutError as error:
        return CallOutcome.TIMEOUT, f"{error}: counted", "probe"
    except TimeoutError as error:
        # wait_for's own TimeoutError carries no message; the service's says it hung.
        if str(error):
            return CallOutcome.TIMEOUT, f"{error}: counted", "service"
        return CallOutcome.TIMEOUT, f"outer {outer:g} s timeout: not counted", "outer"
    except RuntimeError as error:
        return CallOutcome.SERVICE_ERROR, str(error), ""
    return CallOutcome.SUCCESS, "ok", ""


async def runBreakerHarness(config: Exercise3Config, seed: int, log: Log) -> Exercise3Result:
    """Requirement 4: sequential calls through the breaker, a line per call as it ends."""
    changes: list[StateChange] = []
    breaker = AsyncCircuitBreaker(
        config.failureThreshold,
        config.scaled(config.resetTimeoutSeconds),
        config.scaled(config.probeTimeoutSeconds),
        onStateChange=changes.append,
    )
    service = FlakyAsyncService(
        seed=seed,
        successRate=config.successRate,
        errorRate=config.errorRate,
        hangSeconds=config.scaled(config.hangSeconds),
    )
    startedAt = time.monotonic()
    records: list[CallRecord] = []
    for requestId in range(config.calls):
        before, served = breaker.statistics(), len(service.received)
        with Stopwatch() as watch:
            outcome, detail, source = await callOnce(
                breaker, service, requestId, config.scaled(config.outerTimeoutSeconds)
            )
        after = breaker.statistics()
        reached = len(service.received) > served
        record = CallRecord(
            requestId=requestId,
            behaviour=service.behaviour(requestId),
            outcome=outcome,
            detail=f"probe: {detail}" if reached and before.state is not BreakerState.CLOSED else detail,
            seconds=watch.elapsed,
            stateAfter=after.state,
            failureCount=after.failureCount,
            reachedService=reached,
            countedAsFailure=after.failures > before.failures,
            releasedUncounted=after.released > before.released,
            timeoutSource=source,
        )
        log(formatCallLine(record))
        records.append(record)
        if requestId < config.calls - 1:
            await asyncio.sleep(config.scaled(config.callIntervalSeconds))
    return Exercise3Result(
        config, tuple(records), tuple(changes), startedAt, breaker.statistics(), len(service.received)
    )


def runExercise3(config: Exercise3Config, *, seed: int, log: Log = silent) -> Exercise3Result:
    """Requirements 4-5: the harness in a fresh event loop, with the loop's warnings collected."""
    watched = runWatched(runBreakerHarness(config, seed, log))
    return replace(watched.result, loopProblems=watched.loopProblems)


def formatExercise3(result: Exercise3Result) -> str:
    """Requirement 5: the breakdown of outcomes, the final state, the fast-fails."""
    config = result.config
    rows = [(str(o), result.count(o), max(result.durations(o), default=0.0) * 1e3) for o in CallOutcome]
    breakdown = formatTable(("outcome", "calls", "slowest ms"), [*rows, ("all", len(result.calls), "")])
    stats = result.statistics
    lines = ["", breakdown, ""]
    if config.timeScale != 1.0:
        lines.append(f"(time scale {config.timeScale}: every duration is {config.timeScale} x the spec's)")
    lines += [
        prose(
            f"Final state: {stats.state} (failureCount {stats.failureCount}, successCountInHalfOpen "
            f"{stats.successCountInHalfOpen}); the circuit opened "
            f"{sum(c.current is BreakerState.OPEN for c in result.changes)} time(s). The breaker counted "
            f"{stats.successes} successes, {stats.failures} failures, {stats.rejected} rejections and "
            f"{plural(stats.released, 'call', 'calls')} cancelled by the caller (not counted)."
        ),
    ]
    fastFails = result.durations(CallOutcome.CIRCUIT_OPEN)
    hangs = [r.seconds for r in result.calls if r.behaviour is ServiceBehaviour.HANG and r.reachedService]
    if fastFails:
        lines.append(
            prose(
                f"Once open, {len(fastFails)} calls failed fast in {max(fastFails) * 1e3:.2f} ms at most; a hang "
                f"that reached the service cost {max(hangs, default=0.0) * 1e3:.0f} ms (the outer "
                f"{config.scaled(config.outerTimeoutSeconds):g} s or the {config.scaled(config.probeTimeoutSeconds):g}"
                f" s probe limit), never the service's {config.scaled(config.hangSeconds):g} s."
            )
        )
    return "\n".join(lines)


def exercise3(options: RunOptions, log: Log) -> Exercise3Result:
    """Registry entry: run exercise 3 with the spec's numbers (or quick ones) and print it."""
    config = Exercise3Config.quick() if options.quick else Exercise3Config()
    result = runExercise3(config, seed=options.seed, log=log)
    log(formatExercise3(result))
    return result


# ============================================================================
# Exercise 4 - Mixed-architecture pipeline benchmark
# ============================================================================
# Map: 1 fetchSensorReading (asyncio), normalizeReading (process pool), storeReading (thread
#      pool), aggregateResults (inline) | 2 naivePipeline | 3 correctPipeline | 4 runExercise4,
#      formatExercise4 (why the speedup grows: the comment after correctPipeline)
#      5 CircuitBreaker (exercise 3's BreakerCore, sync), guardedStores, runBreakerBatches.
# Correct: gather(fetch x n) -> process pool: normalize x n -> thread pool: store x n -> aggregate.
# Requirement 5, per batch: fetch -> normalize -> breaker.acquire() x 12 in sensor order ->
#      thread pool: storeReading (fails with p = 0.15) -> succeeded / failed in sensor order.

FETCH_DELAY_RANGE: Final = (0.08, 0.12)
NORMALIZE_ITERATIONS: Final = 5000
STORE_SECONDS: Final = 0.02
STORE_FAILURE_PROBABILITY: Final = 0.15


class RawReading(TypedDict):
    """Stage a's output."""

    sensorId: int
    rawValue: float


async def fetchSensorReading(sensorId: int, *, seed: int = DEFAULT_SEED, timeScale: float = 1.0) -> RawReading:
    """Stage a, async I/O: the loop waits for every sensor at once, 80-120 ms each."""
    delay, rawValue = sensorDraw(sensorId, seed)
    await asyncio.sleep(delay * timeScale)
    return {"sensorId": sensorId, "rawValue": rawValue}


def sensorDraw(sensorId: int, seed: int = DEFAULT_SEED) -> tuple[float, float]:
    """A sensor's fetch delay, uniform(0.08, 0.12) s, and raw value, gauss(50, 15)."""
    rng = makeRng(seed, LECTURE, 4, sensorId)
    low, high = FETCH_DELAY_RANGE
    return rng.uniform(low, high), rng.gauss(50.0, 15.0)


class NormalizedReading(TypedDict):
    """Stage b's output: the reading plus its z-score ("normalized") and the busy loop's result."""

    sensorId: int
    rawValue: float
    normalized: float
    signal: float


def normalizeReading(reading: RawReading, iterations: int = NORMALIZE_ITERATIONS) -> NormalizedReading:
    """Stage b, CPU (process pool): the z-score, after 5000 rounds of ``math.sin`` and ``math.cos``.

    About 1 ms of pure-Python arithmetic that holds the GIL: only processes run it
    in parallel, on min(workers, cores) of them.
    """
    z = (reading["rawValue"] - 50.0) / 15.0
    signal = 0.0
    for i in range(iterations):
        angle = z * i / iterations
        signal += math.sin(angle) * math.cos(angle)
    return {
        "sensorId": reading["sensorId"],
        "rawValue": reading["rawValue"],
        "normalized": z,
        "signal": signal / iterations,
    }


class StoreReceipt(TypedDict):
    """Stage c's output."""

    stored: bool
    sensorId: int


class StoreError(RuntimeError):
    """``storeReading`` failed (requirement 5's 15%)."""


def storeReading(
    reading: NormalizedReading,
    *,
    failureProbability: float = 0.0,
    seed: int = DEFAULT_SEED,
    seconds: float = STORE_SECONDS,
) -> StoreReceipt:
    """Stage c, blocking I/O (thread pool): 20 ms; fails with ``failureProbability`` (requirement 5).

    The failure is drawn here, from the seed and the sensor id: the same stores
    fail whichever thread, process or run performs them.
    """
    time.sleep(seconds)
    if failureProbability > 0 and makeRng(seed, LECTURE, 4, "store", reading["sensorId"]).random() < failureProbability:
        raise StoreError(f"store failed for sensor {reading['sensorId']}")
    return {"stored": True, "sensorId": reading["sensorId"]}


class Aggregate(TypedDict):
    """Stage d's output: count, mean and (population) standard deviation of "normalized"."""

    count: int
    mean: float
    std: float


def aggregateResults(results: Sequence[NormalizedReading]) -> Aggregate:
    """Stage d, inline: microseconds of work, cheaper than any hand-off to a pool."""
    values = [r["normalized"] for r in results]
    if not values:
        return {"count": 0, "mean": 0.0, "std": 0.0}
    return {"count": len(values), "mean": statistics.fmean(values), "std": statistics.pstdev(values)}


async def naiveSensor(sensorId: int, seed: int, timeScale: float = 1.0) -> NormalizedReading:
    """All four stages in one coroutine: the CPU and blocking stages freeze the loop."""
    reading = await fetchSensorReading(sensorId, seed=seed, timeScale=timeScale)
    normalized = normalizeReading(reading)
    storeReading(normalized, seconds=STORE_SECONDS * timeScale)
    return normalized


async def naivePipeline(sensorIds: Sequence[int], *, seed: int = DEFAULT_SEED, timeScale: float = 1.0) -> Aggregate:
    """Requirement 2: ``gather`` over naive coroutines.

    The fetches overlap, but from the first wake-up on the loop runs normalize and
    store for one sensor at a time: n x (1 ms + 20 ms) in series.
    """
    results = await asyncio.gather(*(naiveSensor(sensorId, seed, timeScale) for sensorId in sensorIds))
    return aggregateResults(results)


async def correctPipeline(
    sensorIds: Sequence[int],
    processPool: TaskExecutor,
    threadPool: TaskExecutor,
    *,
    seed: int = DEFAULT_SEED,
    timeScale: float = 1.0,
) -> Aggregate:
    """Requirement 3: each stage on its tier, one ``gather`` per stage, aggregate inline."""
    async with asyncio.timeout(STAGE_DEADLINE_SECONDS):
        readings = await asyncio.gather(
            *(fetchSensorReading(sensorId, seed=seed, timeScale=timeScale) for sensorId in sensorIds)
        )
        normalized = await asyncio.gather(*(runInExecutor(processPool, normalizeReading, r) for r in readings))
        await asyncio.gather(
            *(runInExecutor(threadPool, storeReading, r, seconds=STORE_SECONDS * timeScale) for r in normalized)
        )
    return aggregateResults(normalized)


# Requirement 4, why the speedup grows with the number of sensors: the naive pipeline is
# one server (the event loop) doing normalize + store for every sensor in series, so its
# time is about 0.08 s + n x 21 ms and grows linearly. The correct pipeline pays the
# slowest fetch once (0.12 s at most, whatever n), spreads normalisation over
# min(workers, cores) processes and storage over the thread pool, so n enters only as
# ceil(n / workers) x 1 ms + ceil(n / threads) x 20 ms. Each tier has more work to
# overlap as n grows while its fixed costs (the fetch wait, pool hand-offs) stay put:
# the ratio rises, by ever smaller steps, towards the ratio of the per-sensor costs,
# (1 + 20) / (1 / cores + 20 / threads) ms: about 10x with 2 cores and 12 store threads,
# which the threads bound, not the cores (the lab's benchmark 31.4s measures it).


@final
class CircuitBreaker(BreakerCore):
    """Requirement 5's simplified sync breaker: exercise 3's ``BreakerCore`` around a blocking call.

    No probe timeout: a blocking call cannot be interrupted from outside, so bound
    it where it blocks (a socket timeout, a driver's deadline).
    """

    def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` if the circuit admits it; its exception counts as a failure."""
        permit = self.acquire()
        try:
            result = fn(*args, **kwargs)
        except Exception:
            self.failed(permit)
            raise
        except BaseException:
            self.released(permit)
            raise
        self.succeeded(permit)
        return result


StoreOutcome = StoreReceipt | StoreError | CircuitOpenError


async def guardedStores(
    breaker: CircuitBreaker,
    readings: Sequence[NormalizedReading],
    threadPool: TaskExecutor,
    *,
    seed: int = DEFAULT_SEED,
    failureProbability: float = STORE_FAILURE_PROBABILITY,
    seconds: float = STORE_SECONDS,
) -> list[StoreOutcome]:
    """Requirement 5: a batch's stores through the breaker, all at once on the thread pool.

    ``breaker.call(storeReading, r)`` in each pool thread would feed the breaker in
    the order threads finish, which changes from run to run (and between fork and
    spawn). Here the breaker admits the stores in sensor order before any starts and
    hears their outcomes in sensor order once all have run: its state follows from
    the seed alone. A store admitted before the circuit opened counts as stale.
    """
    permits: list[Permit | CircuitOpenError] = []
    for _ in readings:
        try:
            permits.append(breaker.acquire())
        except CircuitOpenError as error:
            permits.append(error)
    stores = (
        runInExecutor(threadPool, storeReading, r, failureProbability=failureProbability, seed=seed, seconds=seconds)
        for r, permit in zip(readings, permits, strict=True)
        if isinstance(permit, Permit)
    )
    finished = iter(await asyncio.gather(*stores, return_exceptions=True))
    outcomes: list[StoreOutcome] = []
    for permit in permits:
        if isinstance(permit, CircuitOpenError):
            outcomes.append(permit)
            continue
        outcome = next(finished)
        if isinstance(outcome, StoreError):
            breaker.failed(permit)
        elif isinstance(outcome, BaseException):
            breaker.released(permit)
            raise outcome
        else:
            breaker.succeeded(permit)
        outcomes.append(outcome)
    return outcomes


@final
class BatchClock:
    """The breaker's clock in requirement 5: batch k happens at k x ``intervalSeconds``.

    The batches run back to back (about 0.15 s each); on this schedule rather than
    the wall clock, which batch probes after the 2 s reset follows from the seed.
    """

    def __init__(self, intervalSeconds: float) -> None:
        requireRange("intervalSeconds", intervalSeconds, 0.0, 3600.0)
        self._interval = intervalSeconds
        self._now = 0.0

    def startBatch(self, batch: int) -> None:
        """Move the clock to ``batch``'s slot."""
        self._now = batch * self._interval

    def __call__(self) -> float:
        return self._now


@dataclass(frozen=True, slots=True)
class Exercise4Config:
    """The spec's numbers: 12/24/48 sensors; 5 batches of 12, 15% store failures, breaker at 3.

    Ours: 4 processes for normalisation (as exercise 1), 12 store threads (one per
    sensor of a batch), the batch schedule the breaker reads (``BatchClock``), and
    up to 20 batches beyond the spec's 5 until the breaker has failed a store fast.
    """

    sizes: tuple[int, ...] = (12, 24, 48)
    processWorkers: int = 4
    storeWorkers: int = 12
    batches: int = 5
    batchSize: int = 12
    storeFailureProbability: float = STORE_FAILURE_PROBABILITY
    breakerThreshold: int = 3
    breakerResetSeconds: float = 2.0
    batchIntervalSeconds: float = 0.5
    maxExtraBatches: int = 20
    timeScale: float = 1.0
    """Scales the fetch and store sleeps (tests use it); the CPU stage is never scaled."""

    def __post_init__(self) -> None:
        requireRange("len(sizes)", len(self.sizes), 1, 100)
        for size in self.sizes:
            requireRange("sizes[i]", size, 1, 100_000)
        requireRange("processWorkers", self.processWorkers, 1, 256)
        requireRange("storeWorkers", self.storeWorkers, 1, 256)
        requireRange("batches", self.batches, 1, 10_000)
        requireRange("batchSize", self.batchSize, 1, 1000)
        requireRange("storeFailureProbability", self.storeFailureProbability, 0.0, 1.0)
        requireRange("breakerThreshold", self.breakerThreshold, 1, 1_000_000)
        requireRange("breakerResetSeconds", self.breakerResetSeconds, 0.0, 3600.0)
        requireRange("batchIntervalSeconds", self.batchIntervalSeconds, 0.0, 3600.0)
        requireRange("maxExtraBatches", self.maxExtraBatches, 0, 10_000)
        requireRange("timeScale", self.timeScale, 0.001, 10.0)

    @classmethod
    def quick(cls) -> Exercise4Config:
        """Smaller scales (4, 8, 16 sensors); the breaker part unchanged."""
        return cls(sizes=(4, 8, 16))


@dataclass(frozen=True, slots=True)
class ScaleRow:
    """One scale of requirement 4: both architectures' seconds and aggregates."""

    sensors: int
    naiveSeconds: float
    correctSeconds: float
    aggregatesMatch: bool
    aggregate: Aggregate

    @property
    def speedup(self) -> float:
        """Naive time over correct time."""
        return speedup(self.naiveSeconds, self.correctSeconds)


@dataclass(frozen=True, slots=True)
class BatchRow:
    """One batch of requirement 5: where each store ended, and the breaker's state after it."""

    batch: int
    clockSeconds: float
    successes: int
    failures: int
    fastFails: int
    stateAfter: BreakerState

    @property
    def total(self) -> int:
        """Stores accounted for."""
        return self.successes + self.failures + self.fastFails


@dataclass(frozen=True, slots=True)
class Exercise4Result:
    """What exercise 4 measured: timings in seconds, and the breaker's batches."""

    config: Exercise4Config
    executor: ExecutorKind
    seed: int
    rows: tuple[ScaleRow, ...]
    batches: tuple[BatchRow, ...]
    breakerStatistics: BreakerStatistics
    changes: tuple[StateChange, ...]

    @property
    def fastFails(self) -> int:
        """Store calls rejected by the open breaker, all batches."""
        return sum(row.fastFails for row in self.batches)

    @property
    def extraBatches(self) -> int:
        """Batches run beyond the spec's until the breaker had failed a store fast."""
        return len(self.batches) - self.config.batches


@contextlib.contextmanager
def pipelinePools(
    config: Exercise4Config, executor: ExecutorKind, startMethod: StartMethod | None
) -> Iterator[tuple[TaskExecutor, TaskExecutor]]:
    """The CPU pool and the store threads, both started and warm before any timing.

    The process pool's workers start before the thread pool exists: forking a
    process that runs threads is unsafe, and 3.12+ warns about it.
    """
    readings = sum(config.sizes) + config.batches * config.batchSize
    with executorScope(executor, config.processWorkers, startMethod) as processPool:
        with stageTally(processPool, "start-up", readings, "readings normalised"):
            warmUp(processPool, config.processWorkers, preload=(__name__,))
            for future in [
                processPool.submit(normalizeReading, {"sensorId": -1, "rawValue": 50.0}, 1)
                for _ in range(config.processWorkers)
            ]:
                future.result(timeout=STAGE_DEADLINE_SECONDS)
        with executorScope("thread", config.storeWorkers) as threadPool:
            warmUp(threadPool, config.storeWorkers)
            yield processPool, threadPool


def timed(coroutine: Coroutine[Any, Any, R]) -> tuple[R, float]:
    """Run a coroutine in a fresh event loop; its result and wall-clock seconds."""
    with Stopwatch() as watch:
        result = asyncio.run(coroutine)
    return result, watch.elapsed


async def storeBatch(
    batch: int, config: Exercise4Config, pools: tuple[TaskExecutor, TaskExecutor], breaker: CircuitBreaker, seed: int
) -> list[StoreOutcome]:
    """One batch of requirement 5: the correct pipeline, its stores through the breaker."""
    processPool, threadPool = pools
    sensorIds = [batch * 1000 + i for i in range(config.batchSize)]
    async with asyncio.timeout(STAGE_DEADLINE_SECONDS):
        readings = await asyncio.gather(
            *(fetchSensorReading(sensorId, seed=seed, timeScale=config.timeScale) for sensorId in sensorIds)
        )
        normalized = await asyncio.gather(*(runInExecutor(processPool, normalizeReading, r) for r in readings))
        return await guardedStores(
            breaker,
            normalized,
            threadPool,
            seed=seed,
            failureProbability=config.storeFailureProbability,
            seconds=STORE_SECONDS * config.timeScale,
        )


def runBreakerBatches(
    config: Exercise4Config,
    pools: tuple[TaskExecutor, TaskExecutor],
    breaker: CircuitBreaker,
    clock: BatchClock,
    seed: int,
) -> list[BatchRow]:
    """Requirement 5: the spec's batches, then more (at most ``maxExtraBatches``) until the
    breaker has opened and failed a store fast, so that a run shows what the spec asks to see.
    Each batch runs in an event loop of its own, its CPU stage tallied (``stageTally``)."""
    processPool, threadPool = pools
    rows: list[BatchRow] = []
    for batch in range(1, config.batches + config.maxExtraBatches + 1):
        if batch > config.batches and any(row.fastFails for row in rows):
            break
        clock.startBatch(batch)
        with stageTally(processPool, f"normalize (batch {batch})", config.batchSize, "readings normalised") as cpu:
            outcomes = asyncio.run(storeBatch(batch, config, (cpu, threadPool), breaker, seed))
        rows.append(
            BatchRow(
                batch=batch,
                clockSeconds=clock(),
                successes=sum(not isinstance(o, Exception) for o in outcomes),
                failures=sum(isinstance(o, StoreError) for o in outcomes),
                fastFails=sum(isinstance(o, CircuitOpenError) for o in outcomes),
                stateAfter=breaker.state,
            )
        )
    return rows


def runExercise4(
    config: Exercise4Config,
    *,
    seed: int,
    executor: ExecutorKind = "process",
    startMethod: StartMethod | None = None,
) -> Exercise4Result:
    """Requirements 2-5: naive then correct at each scale, then the breaker's batches.

    The pools start, warm, before any timing (naive included): start-up is a one-off
    cost, not the architecture's. A lost worker ends the run in one line (``stageTally``).
    """
    scale = config.timeScale
    changes: list[StateChange] = []
    clock = BatchClock(config.batchIntervalSeconds)
    breaker = CircuitBreaker(
        config.breakerThreshold, config.breakerResetSeconds, clock=clock, onStateChange=changes.append
    )
    with pipelinePools(config, executor, startMethod) as (processPool, threadPool):
        naive = [timed(naivePipeline(range(size), seed=seed, timeScale=scale)) for size in config.sizes]
        rows: list[ScaleRow] = []
        for size, (naiveAggregate, naiveSeconds) in zip(config.sizes, naive, strict=True):
            with stageTally(processPool, f"normalize ({size} sensors)", size, "readings normalised") as cpu:
                aggregate, seconds = timed(correctPipeline(range(size), cpu, threadPool, seed=seed, timeScale=scale))
            rows.append(ScaleRow(size, naiveSeconds, seconds, naiveAggregate == aggregate, aggregate))
        batches = runBreakerBatches(config, (processPool, threadPool), breaker, clock, seed)
    return Exercise4Result(config, executor, seed, tuple(rows), tuple(batches), breaker.statistics(), tuple(changes))


def breakerSummary(result: Exercise4Result) -> str:
    """One sentence: when the breaker opened and failed stores fast, and how many extra batches it took."""
    config = result.config
    fast = [row.batch for row in result.batches if row.fastFails]
    if not fast:
        return (
            f"No {config.breakerThreshold} consecutive failures in {len(result.batches) * config.batchSize} stores "
            f"({config.batches} batches and {result.extraBatches} more): the breaker never failed a store fast."
        )
    opened = next(row.batch for row in result.batches if row.stateAfter is not BreakerState.CLOSED)
    return (
        f"The breaker opened in batch {opened} and failed {result.fastFails} stores fast from batch {fast[0]} on "
        f"(none reached storage); {result.extraBatches} batch(es) beyond the spec's {config.batches} were needed."
    )


def formatExercise4(result: Exercise4Result) -> str:
    """Requirements 4-5: naive vs correct with the speedup, then the breaker per batch, with totals."""
    config = result.config
    table = formatTable(
        ("sensors", "naive ms", "correct ms", "speedup"),
        [
            (r.sensors, round(r.naiveSeconds * 1e3), round(r.correctSeconds * 1e3), f"{r.speedup:.2f}x")
            for r in result.rows
        ],
        title=f"Naive vs correct (normalize on {config.processWorkers} {result.executor} workers, "
        f"store on {config.storeWorkers} threads)",
    )
    rows = [(r.batch, r.clockSeconds, r.successes, r.failures, r.fastFails, str(r.stateAfter)) for r in result.batches]
    totals = [
        sum(column) for column in zip(*((r.successes, r.failures, r.fastFails) for r in result.batches), strict=True)
    ]
    batches = formatTable(
        ("batch", "clock s", "stored", "failed", "fast-failed", "state after"),
        [*rows, ("all", "", *totals, f"{sum(totals)} stores")],
        title=f"Breaker around storeReading: p(fail) = {config.storeFailureProbability}, opens after "
        f"{config.breakerThreshold} consecutive failures, probes {config.breakerResetSeconds:g} s later",
    )
    growth = " -> ".join(f"{row.speedup:.2f}x" for row in result.rows)
    speedupNote = (
        f"Speedup {growth}: the naive loop runs normalize + store for one sensor at a time (about n x 21 ms); "
        "the correct pipeline waits for the slowest fetch once and spreads the rest over the pools."
    )
    breakerNote = (
        f"{breakerSummary(result)} 'Consecutive' is in sensor order: the breaker admits a batch's stores in that "
        "order and hears their outcomes in that order once all have run at once on the thread pool, so its state "
        f"follows from the seed alone. Its clock is the batch schedule (batch k at k x "
        f"{config.batchIntervalSeconds:g} s), not the wall clock."
    )
    return "\n".join(["", table, prose(speedupNote), "", batches, prose(breakerNote)])


def exercise4(options: RunOptions, log: Log) -> Exercise4Result:
    """Registry entry: run exercise 4 with the spec's numbers (or quick ones) and print it."""
    config = Exercise4Config.quick() if options.quick else Exercise4Config()
    result = runExercise4(config, seed=options.seed, executor=options.executor, startMethod=options.startMethod)
    log(formatExercise4(result))
    return result


# ============================================================================
# Registry and entry point
# ============================================================================

TITLE = "Concurrency Architecture Patterns"
EXERCISES = (
    Exercise(1, "Three-tier request handler with real workloads", exercise1),
    Exercise(2, "Fan-out query with adaptive timeout", exercise2),
    Exercise(3, "Circuit breaker implementation", exercise3),
    Exercise(4, "Mixed-architecture pipeline benchmark", exercise4),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run lecture 31's exercises from the command line; return the exit status."""
    return lectureMain(argv, lecture=LECTURE, title=TITLE, exercises=EXERCISES)


if __name__ == "__main__":
    raise SystemExit(main())
