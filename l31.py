"""Lecture 31: Concurrency Architecture Patterns.

Exercises (spec: lecture31.txt):

1. Three-tier request handler: asyncio in front, a thread pool for blocking I/O,
   a process pool for CPU work, each measured against the sequential handler.
2. Fan-out query with an adaptive timeout learned from a sliding window of latencies;
   stragglers are cancelled and awaited, and the timeout's long-run drift is measured.
3. Circuit breaker (closed / open / half_open) against a flaky async service.
4. Mixed-architecture pipeline benchmark: naive vs correct tiers for 12, 24 and 48
   sensors beside the ideal time of each, and a sync breaker around storage.

Run one with ``python l31.py --ex 3`` (or ``invoke run --lecture 31 --ex 3``);
``--all`` runs every exercise, ``--quick`` uses small sizes and scaled-down timings,
``--seed`` fixes every random draw, ``--executor`` and ``--start-method`` pick the
CPU tier. Exercise 3 at the spec's parameters takes the time its timeouts take
(about 12 s). Standard library and ``shared.py`` only.

The circuit breaker is one state machine (``BreakerCore``) in two thin shells:
``AsyncCircuitBreaker`` around coroutines (exercise 3) and ``CircuitBreaker`` around
blocking calls (exercise 4). Copy the exercise 3 section to reuse it.

``BENCHMARKS`` (``invoke bench --lecture 31``) times exercise 1's three architectures
and exercise 4's two, each as a median against its latency model's ideal, and sweeps
exercise 4 over 12, 24, 48 and 96 sensors.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import gc
import itertools
import math
import statistics
import textwrap
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Generic, ParamSpec, TypedDict, TypeVar, final

from lab.bench import EFFICIENCY_TARGET, Benchmark, BenchOptions, BenchReport, BenchRow, interleavedMedians, timeRepeats
from lab.claims import Claim, ClaimKind, judge
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
    bar,
    barChart,
    cpuCount,
    efficiency,
    executorScope,
    flowMakespan,
    formatTable,
    lectureMain,
    makeRng,
    parallelBound,
    percentile,
    requireRange,
    runInExecutor,
    sideBySide,
    silent,
    speedup,
    warmUp,
)

LECTURE = 31
STAGE_DEADLINE_SECONDS: Final = 60.0
"""No stage of this lecture takes a minute: a hung worker fails the run instead of hanging it."""
P = ParamSpec("P")
R = TypeVar("R")


# ============================================================================
# Helpers: loop problems as data, report paragraphs
# ============================================================================


@dataclass(frozen=True, slots=True)
class Watched(Generic[R]):
    """A coroutine's result plus what the event loop reported on the side."""

    result: R
    loopProblems: tuple[str, ...]


def runWatched(coroutine: Coroutine[Any, Any, R]) -> Watched[R]:
    """``asyncio.run`` that collects what the loop's exception handler would have logged.

    "Task exception was never retrieved" and "Task was destroyed but it is pending"
    are only log lines, so a leak passes unnoticed; here they become data. The
    collection runs before the loop closes, while the handler still listens.
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


def prose(text: str, width: int = 110) -> str:
    """A paragraph of a report, wrapped to ``width`` columns."""
    return textwrap.fill(text, width=width)


# ============================================================================
# Exercise 1 - Three-tier request handler with real workloads
# ============================================================================

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


class RequestResult(TypedDict):
    """``handleRequest``'s combined answer: requestId, parse count and metadata."""

    requestId: int
    parseCount: int
    metadata: Metadata


def parseCsvChunk(chunk: list[str]) -> list[ParsedRecord]:
    """The CPU tier (process pool): parse "id,value,timestamp" lines, 0.1 ms of work each.

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


def metadataDelay(recordId: int, seed: int = DEFAULT_SEED) -> float:
    """The spec's ``random.uniform(0.05, 0.1)``, drawn from the seed and the record id."""
    low, high = METADATA_DELAY_RANGE
    return makeRng(seed, LECTURE, 1, "metadata", recordId).uniform(low, high)


def fetchMetadataBlocking(recordId: int, *, seed: int = DEFAULT_SEED, timeScale: float = 1.0) -> Metadata:
    """The blocking I/O tier (thread pool): a legacy synchronous service, 50-100 ms per call.

    ``time.sleep`` releases the GIL, so ten threads wait for ten calls at once:
    this tier is bounded by the thread count, not by the cores.
    """
    time.sleep(metadataDelay(recordId, seed) * timeScale)
    return {"id": recordId, "label": f"item_{recordId}"}


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


def handleRequestSync(
    requestId: int, *, seed: int = DEFAULT_SEED, records: int = 20, timeScale: float = 1.0
) -> RequestResult:
    """Requirement 5: the same request with direct calls, no executor at all."""
    parsed = parseCsvChunk(makeCsvChunk(requestId, records, seed))
    metadata = fetchMetadataBlocking(parsed[0]["id"], seed=seed, timeScale=timeScale)
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
    """Requirement 4, the spec's async ``main()``: every request at once through ``gather``.

    (``main`` is the command line here, hence the name.)
    """
    async with asyncio.timeout(STAGE_DEADLINE_SECONDS):
        return await asyncio.gather(
            *(
                handleRequest(requestId, threadPool, processPool, seed=seed, records=records, timeScale=timeScale)
                for requestId in range(requests)
            )
        )


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
class TierRun:
    """One architecture of exercise 1: measured seconds beside the latency model's ideal."""

    label: str
    seconds: float
    idealSeconds: float


@dataclass(frozen=True, slots=True)
class Exercise1Result:
    """Every figure exercise 1 measured; timings in seconds."""

    config: Exercise1Config
    executor: ExecutorKind
    results: tuple[RequestResult, ...]
    matchesSequential: bool
    sequential: TierRun
    threadTierOnly: TierRun
    threeTier: TierRun
    metadataSeconds: tuple[float, ...]
    parseSecondsPerChunk: float
    warmUpSeconds: float
    parseWidth: int
    claims: tuple[Claim, ...]

    @property
    def speedup(self) -> float:
        """Requirement 5's ratio: synchronous time over three-tier time."""
        return speedup(self.sequential.seconds, self.threeTier.seconds)

    @property
    def threadTierSpeedup(self) -> float:
        """Sequential time over the thread tier alone (parse on the loop)."""
        return speedup(self.sequential.seconds, self.threadTierOnly.seconds)

    @property
    def bound(self) -> float:
        """The best the three tiers can do: sequential ideal over three-tier ideal."""
        return speedup(self.sequential.idealSeconds, self.threeTier.idealSeconds)


def idealThreeTier(parseSeconds: float, delays: Sequence[float], parseWidth: int, threads: int) -> float:
    """The latency model: parses queue for ``parseWidth`` workers, then each metadata call for a thread.

    With ``parseWidth`` 1 it is the thread tier alone: the loop parses one chunk at a time.
    """
    return flowMakespan([([parseSeconds] * len(delays), parseWidth), (delays, threads)])


def calibrateParse(config: Exercise1Config, seed: int, repeats: int = 5) -> float:
    """Median seconds ``parseCsvChunk`` takes for one chunk here (sleep granularity included)."""
    chunk = makeCsvChunk(0, config.recordsPerRequest, seed)
    return statistics.median(timeRepeats(lambda: parseCsvChunk(chunk), repeats))


def timeAsync(
    config: Exercise1Config, threadPool: TaskExecutor, processPool: TaskExecutor, seed: int
) -> tuple[list[RequestResult], float]:
    """One pass of ``asyncMain`` in a fresh event loop; results and seconds."""
    coroutine = asyncMain(
        config.requests,
        threadPool,
        processPool,
        seed=seed,
        records=config.recordsPerRequest,
        timeScale=config.timeScale,
    )
    with Stopwatch() as watch:
        results = asyncio.run(coroutine)
    return results, watch.elapsed


def runExercise1(
    config: Exercise1Config,
    *,
    seed: int,
    executor: ExecutorKind = "process",
    startMethod: StartMethod | None = None,
    log: Log = silent,
) -> Exercise1Result:
    """Requirements 4-5: three tiers, the thread tier alone, then the sequential handler.

    The process pool starts (and is warmed) before the thread pool exists: forking
    a process that already runs threads is unsafe, and 3.12+ warns about it.
    """
    with executorScope(executor, config.processWorkers, startMethod) as processPool:
        warmUpSeconds = warmUp(processPool, config.processWorkers, preload=(__name__,))
        processPool.submit(parseCsvChunk, makeCsvChunk(0, 1, seed)).result(timeout=STAGE_DEADLINE_SECONDS)
        with executorScope("thread", config.threadWorkers) as threadPool:
            concurrent, threeTierSeconds = timeAsync(config, threadPool, processPool, seed)
            log(f"three tiers: {config.requests} requests in {threeTierSeconds * 1e3:.0f} ms")
            threadOnly, threadOnlySeconds = timeAsync(config, threadPool, InlineExecutor(), seed)
            log(f"thread tier only (parse on the loop): {threadOnlySeconds * 1e3:.0f} ms")
    with Stopwatch() as watch:
        sequential = [
            handleRequestSync(
                requestId,
                seed=seed,
                records=config.recordsPerRequest,
                timeScale=config.timeScale,
            )
            for requestId in range(config.requests)
        ]
    log(f"sequential: {watch.elapsed * 1e3:.0f} ms")

    parseSeconds = calibrateParse(config, seed)
    delays = [metadataDelay(r["metadata"]["id"], seed) * config.timeScale for r in sequential]
    parseWidth = 1 if executor == "inline" else config.processWorkers
    partial = Exercise1Result(
        config=config,
        executor=executor,
        results=tuple(concurrent),
        matchesSequential=concurrent == sequential and threadOnly == sequential,
        sequential=TierRun("sequential, no executors", watch.elapsed, sum(delays) + parseSeconds * len(delays)),
        threadTierOnly=TierRun(
            "async + thread pool, parse on the loop",
            threadOnlySeconds,
            idealThreeTier(parseSeconds, delays, 1, config.threadWorkers),
        ),
        threeTier=TierRun(
            f"async + thread pool + {executor} pool",
            threeTierSeconds,
            idealThreeTier(parseSeconds, delays, parseWidth, config.threadWorkers),
        ),
        metadataSeconds=tuple(delays),
        parseSecondsPerChunk=parseSeconds,
        warmUpSeconds=warmUpSeconds,
        parseWidth=parseWidth,
        claims=(),
    )
    return _withClaims1(partial)


def _withClaims1(result: Exercise1Result) -> Exercise1Result:
    """Judge exercise 1's claims from the measured figures."""
    config = result.config
    allParsed = all(r["parseCount"] == config.recordsPerRequest for r in result.results)
    gainOverThreads = result.threadTierOnly.seconds - result.threeTier.seconds
    claims = (
        judge(
            LECTURE,
            1,
            "the three-tier handler returns what the synchronous handler returns",
            measured=f"{config.requests} results identical in all three architectures"
            if result.matchesSequential
            else "results differ",
            holds=result.matchesSequential,
            kind=ClaimKind.STRUCTURAL,
            reason="a tier computed a different answer",
        ),
        judge(
            LECTURE,
            1,
            f"every request parses its {config.recordsPerRequest} CSV records in the process pool",
            measured=f"parse counts {sorted({r['parseCount'] for r in result.results})}",
            holds=allParsed,
            kind=ClaimKind.STRUCTURAL,
            reason="a chunk lost records",
        ),
        judge(
            LECTURE,
            1,
            "asyncio + thread pool + process pool beats the sequential handler",
            measured=f"{result.speedup:.2f}x; the latency model allows {result.bound:.2f}x",
            holds=result.speedup > 1.0,
            kind=ClaimKind.TIMING,
            reason="pool overheads exceeded the overlap gained",
        ),
        judge(
            LECTURE,
            1,
            "each tier adds its own gain: the process tier beats parsing on the loop",
            measured=f"{result.threadTierOnly.seconds * 1e3:.0f} ms -> {result.threeTier.seconds * 1e3:.0f} ms "
            f"({gainOverThreads * 1e3:+.0f} ms saved)",
            holds=None if result.executor == "inline" else gainOverThreads > 0,
            kind=ClaimKind.TIMING,
            reason="--executor inline: there is no CPU tier to compare"
            if result.executor == "inline"
            else f"parsing is ~{result.parseSecondsPerChunk * 1e3:.1f} ms per chunk; IPC costs about as much",
        ),
    )
    return replace(result, claims=claims)


def formatExercise1(result: Exercise1Result) -> str:
    """Requirements 4-5: per-request results, the timing table with ideals, the speedup and its bound."""
    config = result.config
    perRequest = formatTable(
        ("requestId", "parsed", "metadata", "metadata ms"),
        [
            (r["requestId"], r["parseCount"], r["metadata"]["label"], f"{seconds * 1e3:.0f}")
            for r, seconds in zip(result.results, result.metadataSeconds, strict=True)
        ],
    )
    runs = (result.sequential, result.threadTierOnly, result.threeTier)
    timings = formatTable(
        ("architecture", "measured ms", "ideal ms", "of ideal", "speedup"),
        [
            (
                run.label,
                run.seconds * 1e3,
                run.idealSeconds * 1e3,
                f"{efficiency(run.idealSeconds, run.seconds):.0%}",
                f"{speedup(result.sequential.seconds, run.seconds):.2f}x",
            )
            for run in runs
        ],
    )
    return "\n".join(
        [
            "",
            perRequest,
            "",
            timings,
            "",
            prose(
                f"Async elapsed: {result.threeTier.seconds * 1e3:.0f} ms; synchronous elapsed: "
                f"{result.sequential.seconds * 1e3:.0f} ms; speedup (synchronous / async) = {result.speedup:.2f}x."
            ),
            prose(
                f"Bound from the latency model: {result.bound:.2f}x. Parsing one chunk takes "
                f"{result.parseSecondsPerChunk * 1e3:.1f} ms ({config.recordsPerRequest} x time.sleep(0.0001) "
                "plus timer slack), the metadata calls 50-100 ms: the thread tier carries the gain, "
                f"{config.threadWorkers} blocking calls overlap. The process tier ({result.parseWidth} wide: a "
                "sleep needs no core) trims the parse queue; its pool start-up "
                f"({result.warmUpSeconds * 1e3:.0f} ms) is paid once, before timing."
            ),
        ]
    )


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
# Exercise 2 - Fan-out query with adaptive timeout
# ============================================================================

SHARD_BASE_LATENCY: Final = 0.1
SHARD_SPIKE_RATE: Final = 5.0
SHARD_FAILURE_PROBABILITY: Final = 0.1
SHARD_P90: Final = SHARD_BASE_LATENCY + math.log(10) / SHARD_SPIKE_RATE
"""The true 90th percentile of 0.1 s + Exp(mean 0.2 s): 0.561 s."""


class ShardResult(TypedDict):
    """One shard's answer: its id and the records it matched."""

    shardId: int
    records: list[str]


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


async def queryShard(shardId: int, query: str, *, seed: int = DEFAULT_SEED, timeScale: float = 1.0) -> ShardResult:
    """Requirement 1: 100 ms plus an exponential spike (mean 200 ms); 10% raise "shard error"."""
    draw = drawShard(shardId, query, seed)
    await asyncio.sleep(draw.latencySeconds * timeScale)
    if draw.fails:
        raise RuntimeError("shard error")
    return {"shardId": shardId, "records": [f"r_{shardId}_{i}" for i in range(draw.recordCount)]}


@dataclass(frozen=True, slots=True)
class TrackerStatistics:
    """A snapshot of a ``LatencyTracker``."""

    observations: int
    p90Seconds: float | None
    suggestedTimeout: float


@final
class LatencyTracker:
    """Requirement 2: a sliding window of the last 20 latencies and the timeout they suggest.

    The window only ever holds latencies of shards that answered in time, so it is
    censored at the timeout that was in force: a p90 of what got through. Whether
    that ratchets the timeout down depends on the multiplier; exercise 2 measures it.
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


async def _timedShard(shardId: int, query: str, seed: int, timeScale: float) -> tuple[float, ShardResult]:
    """Run ``queryShard`` and measure its latency on the loop's clock."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await queryShard(shardId, query, seed=seed, timeScale=timeScale)
    return loop.time() - started, result


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
    "Task exception was never retrieved". A shard that finishes between the deadline
    and its cancellation still counts as timed out: it missed the deadline. Results
    are read in shard order, not in the done set's arbitrary order, so the window
    evicts the same latencies on every run.
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
    for task in tasks:
        if task not in done:
            continue
        try:
            latency, result = task.result()
        except Exception:  # noqa: BLE001 - any shard error counts as a failed shard
            failed += 1
        else:
            latencies.append(latency)
            records += len(result["records"])
    for task in pending:
        task.cancel()
    stragglersLeft = 0
    if pending:
        finished, stillPending = await asyncio.wait(pending, timeout=cancelGraceSeconds)
        stragglersLeft = len(stillPending)
        for task in finished:
            if not task.cancelled():
                task.exception()
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


def queryName(index: int) -> str:
    """The name of the index-th query (from 0): q01, q02, ..."""
    return f"q{index + 1:02d}"


@dataclass(frozen=True, slots=True)
class TimeoutTrajectory:
    """The adaptive timeout over many queries, from the latency model without sleeping."""

    multiplier: float
    timeouts: tuple[float, ...]
    responded: tuple[int, ...]

    @property
    def referenceSeconds(self) -> float:
        """Where an uncensored tracker settles: multiplier x the true p90 (0.561 s)."""
        return self.multiplier * SHARD_P90

    @property
    def settledSeconds(self) -> float:
        """Mean timeout over the second half of the run."""
        half = self.timeouts[len(self.timeouts) // 2 :]
        return statistics.fmean(half)

    @property
    def settledResponded(self) -> float:
        """Mean shards responding per query over the second half of the run."""
        return statistics.fmean(self.responded[len(self.responded) // 2 :])

    @property
    def ratchetsDown(self) -> bool:
        """True when the run settles well below the uncensored reference (under 75% of it)."""
        return self.settledSeconds < 0.75 * self.referenceSeconds


def simulateAdaptiveTimeouts(
    queries: int,
    numShards: int,
    *,
    seed: int,
    multiplier: float = 2.0,
    windowSize: int = 20,
    defaultTimeout: float = 0.5,
    minObservations: int = 5,
) -> TimeoutTrajectory:
    """The same tracker fed by the same draws, without sleeping: a shard answers in time
    exactly when its drawn latency is within the timeout and it does not fail.

    This is how the long run is measured in milliseconds instead of minutes; its
    first queries are checked against the real run's.
    """
    tracker = LatencyTracker(
        windowSize=windowSize,
        multiplier=multiplier,
        defaultTimeout=defaultTimeout,
        minObservations=minObservations,
    )
    timeouts: list[float] = []
    responded: list[int] = []
    for index in range(queries):
        timeout = tracker.suggestedTimeout()
        draws = (drawShard(shardId, queryName(index), seed) for shardId in range(numShards))
        answered = [d.latencySeconds for d in draws if d.latencySeconds <= timeout and not d.fails]
        tracker.recordAll(answered)
        timeouts.append(timeout)
        responded.append(len(answered))
    return TimeoutTrajectory(multiplier, tuple(timeouts), tuple(responded))


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
    longRunQueries: int = 1000
    compareMultiplier: float = 1.0
    overshootMarginSeconds: float = 0.05

    def __post_init__(self) -> None:
        requireRange("queries", self.queries, 1, 100_000)
        requireRange("numShards", self.numShards, 1, 10_000)
        requireRange("windowSize", self.windowSize, 1, 1_000_000)
        requireRange("multiplier", self.multiplier, 0.0, 1000.0)
        requireRange("defaultTimeout", self.defaultTimeout, 0.0, 86_400.0)
        requireRange("minObservations", self.minObservations, 1, self.windowSize)
        requireRange("timeScale", self.timeScale, 0.001, 10.0)
        requireRange("longRunQueries", self.longRunQueries, 2, 10_000_000)
        requireRange("compareMultiplier", self.compareMultiplier, 0.0, 1000.0)
        requireRange("overshootMarginSeconds", self.overshootMarginSeconds, 0.0, 60.0)

    @classmethod
    def quick(cls) -> Exercise2Config:
        """Same queries and shards, every latency and timeout a fifth as long."""
        return cls(timeScale=0.2, longRunQueries=300)


@dataclass(frozen=True, slots=True)
class Exercise2Result:
    """Every figure exercise 2 measured; times in real seconds (scaled by ``config.timeScale``)."""

    config: Exercise2Config
    queries: tuple[FanOutResult, ...]
    finalTimeout: float
    liveShardTasks: int
    loopProblems: tuple[str, ...]
    longRun: TimeoutTrajectory
    comparison: TimeoutTrajectory
    modelDeviationSeconds: float
    claims: tuple[Claim, ...]

    @property
    def responded(self) -> tuple[int, ...]:
        """Shards responding per query."""
        return tuple(q["shardsResponded"] for q in self.queries)

    @property
    def totalRecords(self) -> int:
        """Records accumulated over every query."""
        return sum(q["totalRecords"] for q in self.queries)

    @property
    def maxOvershootSeconds(self) -> float:
        """The most any fan-out ran past the timeout it used (0 when all finished before)."""
        return max(0.0, *(q["elapsedSeconds"] - q["usedTimeout"] for q in self.queries))


def formatFanOutLine(result: FanOutResult) -> str:
    """Requirement 4's per-query line."""
    return (
        f"{result['query']}: {result['shardsResponded']} responded, {result['shardsTimedOut']} timed out, "
        f"{result['shardsFailed']} failed, {result['totalRecords']:2d} records; "
        f"timeout {result['usedTimeout']:.3f} s, took {result['elapsedSeconds']:.3f} s"
    )


async def runFanOutQueries(config: Exercise2Config, seed: int, log: Log) -> tuple[list[FanOutResult], int, float]:
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
        log(formatFanOutLine(result))
        results.append(result)
    return results, live, tracker.suggestedTimeout()


def runExercise2(config: Exercise2Config, *, seed: int, log: Log = silent) -> Exercise2Result:
    """Requirements 4-5 in real time, then the long run of the same tracker from the latency model."""
    if config.timeScale != 1.0:
        log(f"(time scale {config.timeScale}: every latency and timeout is {config.timeScale} x the spec's)")
    watched = runWatched(runFanOutQueries(config, seed, log))
    results, live, finalTimeout = watched.result

    def simulate(multiplier: float, queries: int) -> TimeoutTrajectory:
        return simulateAdaptiveTimeouts(
            queries,
            config.numShards,
            seed=seed,
            multiplier=multiplier,
            windowSize=config.windowSize,
            defaultTimeout=config.defaultTimeout,
            minObservations=config.minObservations,
        )

    longRun = simulate(config.multiplier, max(config.longRunQueries, config.queries))
    realTimeouts = [q["usedTimeout"] / config.timeScale for q in results]
    deviation = max(abs(real - model) for real, model in zip(realTimeouts, longRun.timeouts, strict=False))
    partial = Exercise2Result(
        config=config,
        queries=tuple(results),
        finalTimeout=finalTimeout,
        liveShardTasks=live,
        loopProblems=watched.loopProblems,
        longRun=longRun,
        comparison=simulate(config.compareMultiplier, config.longRunQueries),
        modelDeviationSeconds=deviation,
        claims=(),
    )
    return _withClaims2(partial)


def usedDefaultCorrectly(config: Exercise2Config, queries: Sequence[FanOutResult]) -> bool:
    """True when exactly the queries that ran with fewer than 5 observations used the default."""
    default = config.defaultTimeout * config.timeScale
    observed = 0
    for query in queries:
        if (observed < config.minObservations) != (query["usedTimeout"] == default):
            return False
        observed = min(config.windowSize, observed + query["shardsResponded"])
    return True


def _withClaims2(result: Exercise2Result) -> Exercise2Result:
    """Judge exercise 2's claims from the measured figures."""
    config = result.config
    scale = config.timeScale
    accounted = all(
        q["shardsResponded"] + q["shardsTimedOut"] + q["shardsFailed"] == config.numShards for q in result.queries
    )
    stragglers = sum(q["stragglersLeft"] for q in result.queries)
    cancelled = sum(q["shardsTimedOut"] for q in result.queries)
    clean = stragglers == 0 and result.liveShardTasks == 0 and not result.loopProblems
    margin = config.overshootMarginSeconds * scale
    adaptive = [q["usedTimeout"] / scale for q in result.queries if q["usedTimeout"] != config.defaultTimeout * scale]
    realTrend = statistics.linear_regression(range(len(adaptive)), adaptive).slope if len(adaptive) >= 2 else 0.0
    longRun, comparison = result.longRun, result.comparison
    claims = (
        judge(
            LECTURE,
            2,
            "every shard ends responded, timed out or failed",
            measured=f"{len(result.queries)} fan-outs, each adds up to {config.numShards}"
            if accounted
            else "a fan-out lost a shard",
            holds=accounted,
            kind=ClaimKind.STRUCTURAL,
            reason="a shard was counted twice or not at all",
        ),
        judge(
            LECTURE,
            2,
            "pending tasks are cancelled cleanly (and awaited: nothing leaks)",
            measured=f"{cancelled} stragglers cancelled; {stragglers} left, {result.liveShardTasks} shard tasks alive, "
            f"{len(result.loopProblems)} loop warnings",
            holds=clean,
            kind=ClaimKind.STRUCTURAL,
            reason="; ".join(result.loopProblems) or "a straggler survived its fan-out",
        ),
        judge(
            LECTURE,
            2,
            "a fan-out returns by its timeout (plus a small margin)",
            measured=f"worst overshoot {result.maxOvershootSeconds * 1e3:.1f} ms (margin {margin * 1e3:.0f} ms)",
            holds=result.maxOvershootSeconds <= margin,
            kind=ClaimKind.TIMING,
            reason="the loop was late waking up (a loaded machine)",
        ),
        judge(
            LECTURE,
            2,
            f"queries use the default {config.defaultTimeout} s until {config.minObservations} latencies are observed",
            measured=f"{sum(q['usedTimeout'] == config.defaultTimeout * scale for q in result.queries)} queries "
            "used the default, each while the window was short",
            holds=usedDefaultCorrectly(config, result.queries),
            kind=ClaimKind.STRUCTURAL,
            reason="the tracker suggested the default with enough observations, or vice versa",
        ),
        judge(
            LECTURE,
            2,
            "later queries adapt the timeout to the observed distribution",
            measured=f"adaptive timeouts {min(adaptive):.3f}-{max(adaptive):.3f} s over {len(adaptive)} queries"
            if adaptive
            else "no query had enough observations",
            holds=bool(adaptive) and len({round(t, 6) for t in adaptive}) > 1,
            kind=ClaimKind.TIMING,
            reason="too few shards answered to leave the default",
        ),
        judge(
            LECTURE,
            2,
            f"censoring (only in-time shards are seen) does not ratchet the x{config.multiplier} timeout down",
            measured=f"15-query trend {realTrend * 1e3:+.1f} ms/query; {len(longRun.timeouts)} queries settle at "
            f"{longRun.settledSeconds:.3f} s vs uncensored {longRun.referenceSeconds:.3f} s; "
            f"x{comparison.multiplier}: {comparison.settledSeconds:.3f} s vs {comparison.referenceSeconds:.3f} s",
            holds=not longRun.ratchetsDown,
            kind=ClaimKind.TIMING,
            reason=f"the window settles at {longRun.settledSeconds / longRun.referenceSeconds:.0%} of the "
            "uncensored timeout: too little headroom over the censored p90",
        ),
    )
    return replace(result, claims=claims)


def sampledTrajectory(trajectory: TimeoutTrajectory, points: int = 20) -> list[tuple[str, float]]:
    """About ``points`` evenly spaced (query, timeout) pairs for a chart."""
    step = max(1, len(trajectory.timeouts) // points)
    return [(queryName(i), trajectory.timeouts[i]) for i in range(0, len(trajectory.timeouts), step)]


def formatExercise2(result: Exercise2Result) -> str:
    """Requirements 4-5: the timeout trace (table and chart), the summary, the long-run drift."""
    config = result.config
    trace = formatTable(
        ("query", "timeout s", "responded", "timed out", "failed", "records", "took s"),
        [
            (
                q["query"],
                f"{q['usedTimeout']:.3f}",
                q["shardsResponded"],
                q["shardsTimedOut"],
                q["shardsFailed"],
                q["totalRecords"],
                f"{q['elapsedSeconds']:.3f}",
            )
            for q in result.queries
        ],
        title="Timeout trace",
    )
    chart = barChart(
        [(q["query"], q["usedTimeout"]) for q in result.queries],
        unit=" s",
        title="Suggested timeout per query",
    )
    responded = result.responded
    summary = prose(
        f"Shards responded per query: min {min(responded)}, max {max(responded)}, "
        f"mean {statistics.fmean(responded):.2f} of {config.numShards}. Total records: {result.totalRecords}. "
        f"Final suggested timeout: {result.finalTimeout:.3f} s."
    )
    trajectories = (result.longRun, result.comparison)
    drift = formatTable(
        (
            "multiplier",
            f"after {config.queries}",
            f"after {len(result.longRun.timeouts)}",
            "settled",
            "min",
            "uncensored",
            "responded",
        ),
        [
            (
                f"x{t.multiplier}" + (" (spec)" if t is result.longRun else ""),
                f"{t.timeouts[min(config.queries, len(t.timeouts) - 1)]:.3f}",
                f"{t.timeouts[-1]:.3f}",
                f"{t.settledSeconds:.3f}",
                f"{min(t.timeouts):.3f}",
                f"{t.referenceSeconds:.3f}",
                f"{t.settledResponded:.2f}",
            )
            for t in trajectories
        ],
        title="Long run from the latency model (no sleeping; seconds at the spec's scale; "
        "'settled' = mean over the second half)",
    )
    verdict = "does not ratchet down" if not result.longRun.ratchetsDown else "ratchets down"
    other = "ratchets down" if result.comparison.ratchetsDown else "does not ratchet down"
    lines = [
        "",
        trace,
        "",
        chart,
        "",
        summary,
        "",
        drift,
        "",
        sideBySide(
            [
                barChart(
                    sampledTrajectory(t),
                    width=24,
                    unit=" s",
                    title=f"x{t.multiplier}: timeout over {len(t.timeouts)} queries",
                ).splitlines()
                for t in trajectories
            ]
        ),
        "",
        prose(
            f"The model replays the real run's first {config.queries} timeouts to within "
            f"{result.modelDeviationSeconds * 1e3:.1f} ms (scaled back to the spec's seconds)."
        ),
        prose(
            f"The window only sees shards that beat the timeout, so its p90 is censored. At x{config.multiplier} it "
            f"{verdict}: the timeout climbs from the 0.5 s default and settles at "
            f"{result.longRun.settledSeconds:.3f} s, near the uncensored "
            f"{result.longRun.referenceSeconds:.3f} s, since "
            f"a deadline at twice the p90 cuts off only the far tail. At x{result.comparison.multiplier} it {other}: "
            f"each cut-off hides the slow shards that would have raised it, settling at "
            f"{result.comparison.settledSeconds:.3f} s with {result.comparison.settledResponded:.1f} of "
            f"{config.numShards} shards answering."
        ),
    ]
    return "\n".join(lines)


def exercise2(options: RunOptions, log: Log) -> Exercise2Result:
    """Registry entry: run exercise 2 with the spec's numbers (or quick ones) and print it."""
    config = Exercise2Config.quick() if options.quick else Exercise2Config()
    result = runExercise2(config, seed=options.seed, log=log)
    log(formatExercise2(result))
    return result


# ============================================================================
# Exercise 3 - Circuit breaker implementation
# ============================================================================


class CircuitOpenError(Exception):
    """Raised instead of calling the service: the circuit is open, or a half-open probe is in flight."""


class ProbeTimeoutError(TimeoutError):
    """The breaker's own deadline on a half-open probe expired; it counts as a service failure."""


class BreakerState(enum.StrEnum):
    """The spec's three states; each compares equal to its string ("closed", "open", "half_open")."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class StateChange:
    """One transition, as the ``onStateChange`` callback receives it; ``at`` is on the breaker's clock."""

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


@final
class BreakerCore:
    """The one state machine behind both breakers: admission, outcomes, transitions.

    It never runs the guarded call, so it never holds its lock across one (a lock
    held across the call would serialise every caller). A caller takes a ``Permit``
    from ``acquire``, runs the call itself, then reports exactly one of
    ``succeeded``, ``failed`` or ``released`` (the call was cancelled from outside:
    not the service's fault, not counted). Thread-safe, so the sync shell can guard
    calls made from a thread pool.

    An outcome from a call admitted before the latest transition is stale: counted
    in the statistics, but it does not move the state (a slow call admitted while
    closed must not reopen a circuit that a probe has closed since).
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
        """The current state (an open circuit turns half_open only when a call arrives)."""
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

    def statistics(self) -> BreakerStatistics:
        """A consistent snapshot, taken under the lock."""
        with self._lock:
            return BreakerStatistics(
                state=self._state,
                failureCount=self._failureCount,
                lastFailureTime=self._lastFailureTime,
                successCountInHalfOpen=self._successCountInHalfOpen,
                probeInFlight=self._probeInFlight,
                admitted=self._admitted,
                successes=self._successes,
                failures=self._failures,
                rejected=self._rejected,
                released=self._released,
                stale=self._stale,
                transitions=self._transitions,
            )

    def acquire(self) -> Permit:
        """Admit one call or raise ``CircuitOpenError``; open turns half_open once the reset time has passed.

        In half_open exactly one call (the probe) is admitted at a time; concurrent
        callers fail fast until the probe reports back.
        """
        changes: list[StateChange] = []
        with self._lock:
            if self._state is BreakerState.OPEN:
                now = self._clock()
                since = now if self._lastFailureTime is None else self._lastFailureTime
                waited = now - since
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
        """The admitted call returned: closed resets the count, a probe closes the circuit."""
        changes: list[StateChange] = []
        with self._lock:
            self._successes += 1
            if permit.probe:
                self._probeInFlight = False
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
        """The admitted call failed: closed counts towards the threshold, a failed probe reopens."""
        changes: list[StateChange] = []
        with self._lock:
            self._failures += 1
            if permit.probe:
                self._probeInFlight = False
            if permit.generation != self._generation:
                self._stale += 1
            else:
                now = self._clock()
                self._lastFailureTime = now
                if self._state is BreakerState.HALF_OPEN:
                    changes.append(self._moveLocked(BreakerState.OPEN, now, "the probe failed"))
                else:
                    self._failureCount += 1
                    if self._failureCount >= self._threshold:
                        reason = f"{self._failureCount} consecutive failures"
                        changes.append(self._moveLocked(BreakerState.OPEN, now, reason))
        self._notify(changes)

    def released(self, permit: Permit) -> None:
        """The admitted call was cancelled from outside: no outcome to count; a probe permit is freed."""
        with self._lock:
            self._released += 1
            if permit.probe:
                self._probeInFlight = False

    def _moveLocked(self, target: BreakerState, now: float, reason: str) -> StateChange:
        """Change state (lock held): a new generation; half_open starts counting probes, closed forgets failures."""
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


class _BreakerShell:
    """What both shells expose: the spec's attributes, read from the one ``BreakerCore``."""

    _core: BreakerCore

    @property
    def state(self) -> BreakerState:
        """ "closed", "open" or "half_open"."""
        return self._core.state

    @property
    def failureCount(self) -> int:
        """Consecutive failures counted while closed."""
        return self._core.failureCount

    @property
    def lastFailureTime(self) -> float | None:
        """Clock time of the last counted failure (None before the first)."""
        return self._core.lastFailureTime

    @property
    def successCountInHalfOpen(self) -> int:
        """Successful probes since the circuit last turned half_open."""
        return self._core.successCountInHalfOpen

    def statistics(self) -> BreakerStatistics:
        """A snapshot of the state and the counters."""
        return self._core.statistics()


@final
class AsyncCircuitBreaker(_BreakerShell):
    """Requirements 1-2: the three-state breaker around coroutines, on ``BreakerCore``.

    Beyond the letter of the spec:

    - one probe at a time in half_open; concurrent callers get ``CircuitOpenError``
      and the permit is released however the probe ends;
    - ``probeTimeoutSeconds`` bounds the probe: on expiry ``ProbeTimeoutError`` (a
      ``TimeoutError``) is raised and counted as a failure;
    - a call cancelled from outside (an outer ``asyncio.wait_for``) re-raises
      ``CancelledError`` and counts as nothing: the caller's deadline says nothing
      about the service. A hang in closed state is therefore left to the caller's
      deadline; only the breaker's own timeout counts;
    - time comes from ``clock`` (``time.monotonic`` by default), so tests advance
      a fake clock instead of sleeping through ``resetTimeoutSeconds``;
    - ``onStateChange`` receives every ``StateChange``.
    """

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
        self._core = BreakerCore(
            failureThreshold,
            resetTimeoutSeconds,
            halfOpenSuccesses=halfOpenSuccesses,
            clock=clock,
            onStateChange=onStateChange,
        )

    async def call(self, coroutineFn: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs) -> R:
        """Requirement 2: ``await coroutineFn(*args, **kwargs)`` if the circuit admits it."""
        permit = self._core.acquire()
        try:
            result = await self._run(permit, coroutineFn(*args, **kwargs))
        except Exception:
            self._core.failed(permit)
            raise
        except BaseException:
            # Cancellation (the caller's deadline) and interpreter exits: not the service's failure.
            self._core.released(permit)
            raise
        self._core.succeeded(permit)
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


@final
class CircuitBreaker(_BreakerShell):
    """The sync shell (exercise 4): ``BreakerCore`` around a blocking call, safe to share across threads.

    Same transitions as ``AsyncCircuitBreaker``, because it is the same state
    machine. No probe timeout: a blocking call cannot be interrupted from outside,
    so bound it where it blocks (a socket timeout, a driver's deadline).
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
        self._core = BreakerCore(
            failureThreshold,
            resetTimeoutSeconds,
            halfOpenSuccesses=halfOpenSuccesses,
            clock=clock,
            onStateChange=onStateChange,
        )

    def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` if the circuit admits it; its exception counts as a failure."""
        permit = self._core.acquire()
        try:
            result = fn(*args, **kwargs)
        except Exception:
            self._core.failed(permit)
            raise
        except BaseException:
            self._core.released(permit)
            raise
        self._core.succeeded(permit)
        return result


class ServiceBehaviour(enum.StrEnum):
    """What ``FlakyAsyncService.fetch`` does for one request."""

    OK = "ok"
    ERROR = "error"
    HANG = "hang"


class ServiceReply(TypedDict):
    """A normal answer of the flaky service."""

    requestId: int
    payload: str


@final
class FlakyAsyncService:
    """Requirement 3: answers 60% of requests, raises "service degraded" for 30%, hangs 3 s for 10%.

    Each request's behaviour is drawn from the seed and the request id, so it does
    not depend on which earlier requests the breaker let through.
    """

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

    async def fetch(self, requestId: int) -> ServiceReply:
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
    stateBefore: BreakerState
    stateAfter: BreakerState
    failureCount: int
    reachedService: bool
    countedAsFailure: bool
    releasedUncounted: bool
    timeoutSource: str = ""


@dataclass(frozen=True, slots=True)
class Exercise3Config:
    """The spec's numbers: 30 calls, threshold 3, reset 2.0 s, probe 0.5 s, outer 1.0 s, hang 3 s.

    ``callIntervalSeconds`` is ours: the spec makes the 30 calls back to back, and
    then the 2 s reset never elapses (every call after the opening fails fast in
    microseconds) and half_open is never reached. 0.3 s between calls lets the
    breaker probe about 2.1 s after it opens, clear of the 2.0 s boundary.
    ``timeScale`` multiplies every duration (``--quick``: 0.1).
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
        requireRange("resetTimeoutSeconds", self.resetTimeoutSeconds, 0.0, 3600.0)
        requireRange("probeTimeoutSeconds", self.probeTimeoutSeconds, 0.0, 3600.0)
        requireRange("outerTimeoutSeconds", self.outerTimeoutSeconds, 0.0, 3600.0)
        requireRange("hangSeconds", self.hangSeconds, 0.0, 3600.0)
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
    """Every figure exercise 3 measured; seconds are real (scaled by ``config.timeScale``)."""

    config: Exercise3Config
    calls: tuple[CallRecord, ...]
    changes: tuple[StateChange, ...]
    startedAt: float
    statistics: BreakerStatistics
    serviceCalls: int
    claims: tuple[Claim, ...]

    def count(self, outcome: CallOutcome) -> int:
        """Calls that ended with ``outcome``."""
        return sum(record.outcome is outcome for record in self.calls)

    def durations(self, outcome: CallOutcome) -> list[float]:
        """Seconds of every call that ended with ``outcome``."""
        return [record.seconds for record in self.calls if record.outcome is outcome]

    @property
    def finalState(self) -> BreakerState:
        """The breaker's state after the last call."""
        return self.statistics.state


def formatCallLine(record: CallRecord) -> str:
    """Requirement 4's per-call line: outcome, duration, state after the call."""
    return (
        f"call {record.requestId:2d}: {record.outcome:<13} {record.seconds * 1e3:7.1f} ms  "
        f"state {record.stateAfter:<9} failures={record.failureCount}  ({record.detail})"
    )


async def runBreakerHarness(
    config: Exercise3Config, seed: int, log: Log
) -> tuple[list[CallRecord], list[StateChange], float, BreakerStatistics, int]:
    """Requirement 4: sequential calls through the breaker, each under an outer ``wait_for``."""
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
    outer = config.scaled(config.outerTimeoutSeconds)
    startedAt = time.monotonic()
    records: list[CallRecord] = []
    for requestId in range(config.calls):
        before = breaker.statistics()
        served = len(service.received)
        watch = Stopwatch().start()
        source = ""
        try:
            await asyncio.wait_for(breaker.call(service.fetch, requestId), timeout=outer)
        except CircuitOpenError as error:
            outcome, detail = CallOutcome.CIRCUIT_OPEN, str(error)
        except ProbeTimeoutError as error:
            outcome, detail, source = CallOutcome.TIMEOUT, f"{error}: counted", "probe"
        except TimeoutError as error:
            # wait_for's own TimeoutError carries no message; the service's says it hung.
            source = "service" if str(error) else "outer"
            outcome = CallOutcome.TIMEOUT
            detail = f"{error}: counted" if str(error) else f"outer wait_for {outer:g} s: cancelled, not counted"
        except RuntimeError as error:
            outcome, detail = CallOutcome.SERVICE_ERROR, str(error)
        else:
            outcome, detail = CallOutcome.SUCCESS, "ok"
        seconds = watch.stop()
        after = breaker.statistics()
        if before.state is not BreakerState.CLOSED and len(service.received) > served:
            detail = f"probe: {detail}"
        record = CallRecord(
            requestId=requestId,
            behaviour=service.behaviour(requestId),
            outcome=outcome,
            detail=detail,
            seconds=seconds,
            stateBefore=before.state,
            stateAfter=after.state,
            failureCount=after.failureCount,
            reachedService=len(service.received) > served,
            countedAsFailure=after.failures > before.failures,
            releasedUncounted=after.released > before.released,
            timeoutSource=source,
        )
        log(formatCallLine(record))
        records.append(record)
        if requestId < config.calls - 1:
            await asyncio.sleep(config.scaled(config.callIntervalSeconds))
    return records, changes, startedAt, breaker.statistics(), len(service.received)


def runExercise3(config: Exercise3Config, *, seed: int, log: Log = silent) -> Exercise3Result:
    """Requirements 4-5: the harness, then the breakdown and the fast-fail evidence."""
    if config.timeScale != 1.0:
        log(f"(time scale {config.timeScale}: every duration is {config.timeScale} x the spec's)")
    watched = runWatched(runBreakerHarness(config, seed, log))
    records, changes, startedAt, stats, serviceCalls = watched.result
    partial = Exercise3Result(
        config=config,
        calls=tuple(records),
        changes=tuple(changes),
        startedAt=startedAt,
        statistics=stats,
        serviceCalls=serviceCalls,
        claims=(),
    )
    return _withClaims3(partial)


ALLOWED_TRANSITIONS: Final = frozenset(
    {
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
        (BreakerState.HALF_OPEN, BreakerState.OPEN),
    }
)


def transitionsFollowSpec(changes: Sequence[StateChange], resetSeconds: float) -> bool:
    """True when the changes chain from closed along the spec's four edges, probing only after the reset time."""
    state = BreakerState.CLOSED
    openedAt = 0.0
    for change in changes:
        if change.previous is not state or (change.previous, change.current) not in ALLOWED_TRANSITIONS:
            return False
        if change.current is BreakerState.OPEN:
            openedAt = change.at
        if change.current is BreakerState.HALF_OPEN and change.at - openedAt < resetSeconds:
            return False
        state = change.current
    return True


def _withClaims3(result: Exercise3Result) -> Exercise3Result:
    """Judge exercise 3's claims from the measured figures."""
    config = result.config
    counts = {outcome: result.count(outcome) for outcome in CallOutcome}
    total = sum(counts.values())
    fastFails = result.durations(CallOutcome.CIRCUIT_OPEN)
    slowest = max(record.seconds for record in result.calls)
    outer = config.scaled(config.outerTimeoutSeconds)
    fastLimit = 0.01 * outer
    isolated = all(record.reachedService is (record.outcome is not CallOutcome.CIRCUIT_OPEN) for record in result.calls)
    timeouts = [record for record in result.calls if record.outcome is CallOutcome.TIMEOUT]
    timeoutsCountedRight = all(
        (record.releasedUncounted and not record.countedAsFailure)
        if record.timeoutSource == "outer"
        else (record.countedAsFailure and not record.releasedUncounted)
        for record in timeouts
    )
    probeTimeouts = sum(record.timeoutSource == "probe" for record in timeouts)
    outerTimeouts = sum(record.timeoutSource == "outer" for record in timeouts)
    opened = sum(change.current is BreakerState.OPEN for change in result.changes)
    claims = (
        judge(
            LECTURE,
            3,
            f"successes + service errors + fast-fails + timeouts = {config.calls} calls",
            measured=" + ".join(f"{counts[o]} {o}" for o in CallOutcome) + f" = {total}",
            holds=total == config.calls,
            kind=ClaimKind.STRUCTURAL,
            reason="a call ended in no outcome or in two",
        ),
        judge(
            LECTURE,
            3,
            "an open circuit rejects calls without calling the service",
            measured=f"{result.serviceCalls} service calls = {config.calls} - {counts[CallOutcome.CIRCUIT_OPEN]} "
            "rejected",
            holds=isolated and result.serviceCalls == config.calls - counts[CallOutcome.CIRCUIT_OPEN],
            kind=ClaimKind.STRUCTURAL,
            reason="a rejected call reached the service, or an admitted one did not",
        ),
        judge(
            LECTURE,
            3,
            "the state follows closed -> open (3 failures) -> half_open (after 2.0 s) -> closed / open",
            measured=f"{len(result.changes)} transitions, opened {opened}x, final state {result.finalState}",
            holds=transitionsFollowSpec(result.changes, config.scaled(config.resetTimeoutSeconds)),
            kind=ClaimKind.STRUCTURAL,
            reason="a transition outside the spec's four, or a probe before the reset time",
        ),
        judge(
            LECTURE,
            3,
            "after the circuit opens, calls fail fast (no 3-second hangs)",
            measured=f"{len(fastFails)} fast-fails, slowest {max(fastFails) * 1e3:.2f} ms; slowest call of all "
            f"{slowest * 1e3:.1f} ms (outer timeout {outer * 1e3:.0f} ms)"
            if fastFails
            else "the circuit never opened",
            holds=(max(fastFails) <= fastLimit and slowest <= outer * 1.2) if fastFails else None,
            kind=ClaimKind.TIMING,
            reason=f"a fast-fail took over {fastLimit * 1e3:.0f} ms or a call outlived the outer timeout"
            if fastFails
            else "too few consecutive errors in this seed's 30 draws",
        ),
        judge(
            LECTURE,
            3,
            "an outer wait_for timeout is not a service failure; the breaker's probe timeout is",
            measured=f"timeouts: {probeTimeouts} probe (counted), {outerTimeouts} outer (released), "
            f"{len(timeouts) - probeTimeouts - outerTimeouts} service (counted)",
            holds=timeoutsCountedRight if timeouts else None,
            kind=ClaimKind.STRUCTURAL,
            reason="a timeout was counted the wrong way" if timeouts else "no call hung in this run",
        ),
    )
    return replace(result, claims=claims)


def formatExercise3(result: Exercise3Result) -> str:
    """Requirement 5: the breakdown, the transitions, per-call durations, the final state."""
    config = result.config
    breakdown = formatTable(
        ("outcome", "calls", "mean ms", "max ms"),
        [
            (
                str(outcome),
                result.count(outcome),
                statistics.fmean(result.durations(outcome)) * 1e3 if result.count(outcome) else "",
                max(result.durations(outcome)) * 1e3 if result.count(outcome) else "",
            )
            for outcome in CallOutcome
        ],
        title="Breakdown",
    )
    transitions = formatTable(
        ("at s", "from", "to", "why"),
        [
            (change.at - result.startedAt, str(change.previous), str(change.current), change.reason)
            for change in result.changes
        ],
        title="State changes (onStateChange)",
    )
    slowest = max(r.seconds for r in result.calls)
    chart = "\n".join(
        [
            "Duration of each call (state when it started, outcome)",
            *(
                f"{r.requestId:2d} {r.stateBefore:<9} {r.outcome:<13} | {bar(r.seconds, slowest, 40):<40} "
                f"{r.seconds * 1e3:8.1f} ms"
                for r in result.calls
            ),
        ]
    )
    fastFails = result.durations(CallOutcome.CIRCUIT_OPEN)
    hangs = [r.seconds for r in result.calls if r.behaviour is ServiceBehaviour.HANG and r.reachedService]
    stats = result.statistics
    lines = [
        "",
        breakdown,
        "",
        transitions if result.changes else "No state changes: the circuit never opened.",
        "",
        chart,
        "",
        prose(
            f"Final state: {result.finalState} (failureCount {stats.failureCount}, "
            f"successCountInHalfOpen {stats.successCountInHalfOpen}); breaker counted {stats.successes} successes, "
            f"{stats.failures} failures, {stats.rejected} rejections and {stats.released} calls cancelled by the "
            "caller (not counted)."
        ),
    ]
    if fastFails:
        lines.append(
            prose(
                f"Once open, {len(fastFails)} calls failed fast in {max(fastFails) * 1e3:.2f} ms at most; a hang that "
                f"reached the service cost {max(hangs, default=0.0) * 1e3:.0f} ms (the outer "
                f"{config.scaled(config.outerTimeoutSeconds):g} s, or the "
                f"{config.scaled(config.probeTimeoutSeconds):g} s probe limit), never the service's "
                f"{config.scaled(config.hangSeconds):g} s."
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

FETCH_DELAY_RANGE: Final = (0.08, 0.12)
PARALLEL_KINDS: Final = frozenset({"process", "dask"})
"""Executors whose workers are processes: pure-Python CPU work runs on min(workers, cores) of them."""
NORMALIZE_ITERATIONS: Final = 5000
STORE_SECONDS: Final = 0.02


class RawReading(TypedDict):
    """Stage a's output."""

    sensorId: int
    rawValue: float


class NormalizedReading(TypedDict):
    """Stage b's output: the reading plus its z-score ("normalized") and the busy loop's result."""

    sensorId: int
    rawValue: float
    normalized: float
    signal: float


class StoreReceipt(TypedDict):
    """Stage c's output."""

    stored: bool
    sensorId: int


class Aggregate(TypedDict):
    """Stage d's output: count, mean and (population) standard deviation of "normalized"."""

    count: int
    mean: float
    std: float


class StoreError(RuntimeError):
    """``storeReading`` failed (requirement 5's 15%)."""


def sensorDraw(sensorId: int, seed: int = DEFAULT_SEED) -> tuple[float, float]:
    """A sensor's fetch delay, uniform(0.08, 0.12) s, and raw value, gauss(50, 15)."""
    rng = makeRng(seed, LECTURE, 4, sensorId)
    low, high = FETCH_DELAY_RANGE
    return rng.uniform(low, high), rng.gauss(50.0, 15.0)


async def fetchSensorReading(sensorId: int, *, seed: int = DEFAULT_SEED, timeScale: float = 1.0) -> RawReading:
    """Stage a, async I/O: the loop waits for every sensor at once, 80-120 ms each."""
    delay, rawValue = sensorDraw(sensorId, seed)
    await asyncio.sleep(delay * timeScale)
    return {"sensorId": sensorId, "rawValue": rawValue}


def normalizeReading(reading: RawReading, iterations: int = NORMALIZE_ITERATIONS) -> NormalizedReading:
    """Stage b, CPU (process pool): the z-score, after 5000 rounds of ``math.sin`` and ``math.cos``.

    The rounds are the spec's stand-in for real signal processing, about 1 ms of
    pure-Python arithmetic that holds the GIL: only processes run them in parallel.
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


def storeReading(reading: NormalizedReading, *, fail: bool = False, seconds: float = STORE_SECONDS) -> StoreReceipt:
    """Stage c, blocking I/O (thread pool): 20 ms; raises ``StoreError`` when ``fail``.

    Requirement 5's 15% failure is drawn by the caller from the seed and the sensor
    id (``storeFails``) and passed in, so a run is reproducible whichever thread
    performs the store.
    """
    time.sleep(seconds)
    if fail:
        raise StoreError(f"store failed for sensor {reading['sensorId']}")
    return {"stored": True, "sensorId": reading["sensorId"]}


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
    stageSeconds: list[float] | None = None,
) -> Aggregate:
    """Requirement 3: each stage on its tier, one ``gather`` per stage, aggregate inline.

    ``stageSeconds``, when given, receives how long the fetch, normalize and store
    stages took: the benchmark compares each with its share of the latency model.
    """
    marks = [time.perf_counter()]
    async with asyncio.timeout(STAGE_DEADLINE_SECONDS):
        readings = await asyncio.gather(
            *(fetchSensorReading(sensorId, seed=seed, timeScale=timeScale) for sensorId in sensorIds)
        )
        marks.append(time.perf_counter())
        normalized = await asyncio.gather(*(runInExecutor(processPool, normalizeReading, r) for r in readings))
        marks.append(time.perf_counter())
        await asyncio.gather(
            *(runInExecutor(threadPool, storeReading, r, seconds=STORE_SECONDS * timeScale) for r in normalized)
        )
        marks.append(time.perf_counter())
    if stageSeconds is not None:
        stageSeconds.extend(later - earlier for earlier, later in itertools.pairwise(marks))
    return aggregateResults(normalized)


# Why the speedup grows with the number of sensors: the naive pipeline is one
# server (the event loop) doing normalize + store for every sensor in series, so its
# time is about 0.08 s + n x 21 ms and grows linearly. The correct pipeline pays the
# slowest fetch once (0.12 s at most, whatever n), spreads normalisation over
# min(workers, cores) processes and storage over the thread pool, so n enters only
# as ceil(n / workers) x 1 ms + ceil(n / threads) x 20 ms. Each tier has more work
# to overlap as n grows while its fixed costs (the fetch wait, pool hand-offs) stay
# put: the ratio of the two rises, by ever smaller steps, towards the ratio of the
# per-sensor costs, (1 + 20) / (1 / cores + 20 / threads) ms: about 10x with 2 cores
# and 12 store threads, which the threads bound, not the cores (benchmark 31.4s).


def fetchDelays(sensors: int, seed: int, timeScale: float = 1.0) -> list[float]:
    """The fetch delay each of sensors 0..n-1 sleeps for: the latency model's first stage."""
    return [sensorDraw(sensorId, seed)[0] * timeScale for sensorId in range(sensors)]


def naiveIdeal(delays: Sequence[float], normalizeSeconds: float, storeSeconds: float) -> float:
    """The naive pipeline in the latency model: all fetches at once, then one server (the loop) in arrival order."""
    work = [normalizeSeconds + storeSeconds] * len(delays)
    return flowMakespan([(delays, len(delays)), (work, 1)])


def correctIdeal(
    delays: Sequence[float], normalizeSeconds: float, storeSeconds: float, cpuWidth: int, threads: int
) -> float:
    """The correct pipeline's time in the latency model: three stages separated by barriers."""
    count = len(delays)
    normalizeStage = flowMakespan([([normalizeSeconds] * count, cpuWidth)])
    storeStage = flowMakespan([([storeSeconds] * count, threads)])
    return max(delays) + normalizeStage + storeStage


def storeFails(sensorId: int, probability: float, seed: int) -> bool:
    """Requirement 5's failure draw for one store, from the seed and the sensor id."""
    return makeRng(seed, LECTURE, 4, "store", sensorId).random() < probability


def runProbability(trials: int, runLength: int, probability: float) -> float:
    """Probability of at least ``runLength`` consecutive hits in ``trials`` Bernoulli(probability) draws."""
    streaks = [1.0] + [0.0] * (runLength - 1)
    hit = 0.0
    for _ in range(trials):
        following = [0.0] * runLength
        for length, mass in enumerate(streaks):
            following[0] += mass * (1.0 - probability)
            if length + 1 == runLength:
                hit += mass * probability
            else:
                following[length + 1] += mass * probability
        streaks = following
    return hit


def longestRun(flags: Sequence[bool]) -> int:
    """The longest stretch of consecutive True values."""
    best = current = 0
    for flag in flags:
        current = current + 1 if flag else 0
        best = max(best, current)
    return best


def guardedStore(
    breaker: CircuitBreaker,
    reading: NormalizedReading,
    fail: bool,
    finished: list[bool] | None = None,
    seconds: float = STORE_SECONDS,
) -> StoreReceipt:
    """Requirement 5: ``storeReading`` through the sync breaker, run on a pool thread.

    ``finished`` collects, in the order calls return, whether each admitted store
    failed: "consecutive" failures are consecutive in that order, not in the order
    the stores were submitted. (``list.append`` is atomic, so threads may share it.)
    """
    try:
        receipt = breaker.call(storeReading, reading, fail=fail, seconds=seconds)
    except StoreError:
        if finished is not None:
            finished.append(True)
        raise
    if finished is not None:
        finished.append(False)
    return receipt


@dataclass(frozen=True, slots=True)
class ScaleRow:
    """One scale of requirement 4: measured and ideal seconds of both architectures."""

    sensors: int
    naiveSeconds: float
    correctSeconds: float
    naiveIdealSeconds: float
    correctIdealSeconds: float
    aggregatesMatch: bool
    aggregate: Aggregate

    @property
    def speedup(self) -> float:
        """Naive time over correct time."""
        return speedup(self.naiveSeconds, self.correctSeconds)

    @property
    def idealSpeedup(self) -> float:
        """The same ratio in the latency model."""
        return speedup(self.naiveIdealSeconds, self.correctIdealSeconds)


@dataclass(frozen=True, slots=True)
class BatchRow:
    """One batch of requirement 5: where each store ended."""

    batch: int
    successes: int
    failures: int
    fastFails: int
    plannedFailures: int
    longestFailureRun: int
    stateAfter: BreakerState

    @property
    def total(self) -> int:
        """Stores accounted for."""
        return self.successes + self.failures + self.fastFails


@dataclass(frozen=True, slots=True)
class Exercise4Config:
    """The spec's numbers: 12/24/48 sensors; 5 batches of 12 with 15% store failures, breaker at 3.

    Pool sizes are ours: 4 processes for normalisation (as exercise 1), 12 threads
    for storage (one per sensor of a batch).
    """

    sizes: tuple[int, ...] = (12, 24, 48)
    processWorkers: int = 4
    storeWorkers: int = 12
    batches: int = 5
    batchSize: int = 12
    storeFailureProbability: float = 0.15
    breakerThreshold: int = 3
    breakerResetSeconds: float = 2.0
    timeScale: float = 1.0
    """Scales the fetch and store sleeps (tests use it); the CPU stage is never scaled."""

    def __post_init__(self) -> None:
        if not self.sizes:
            requireRange("len(sizes)", len(self.sizes), 1, 100)
        for size in self.sizes:
            requireRange("sizes[i]", size, 1, 100_000)
        requireRange("processWorkers", self.processWorkers, 1, 256)
        requireRange("storeWorkers", self.storeWorkers, 1, 256)
        requireRange("batches", self.batches, 1, 10_000)
        requireRange("batchSize", self.batchSize, 1, 100_000)
        requireRange("storeFailureProbability", self.storeFailureProbability, 0.0, 1.0)
        requireRange("breakerThreshold", self.breakerThreshold, 1, 1_000_000)
        requireRange("breakerResetSeconds", self.breakerResetSeconds, 0.0, 3600.0)
        requireRange("timeScale", self.timeScale, 0.001, 10.0)

    @classmethod
    def quick(cls) -> Exercise4Config:
        """Smaller scales (4, 8, 16 sensors); the breaker part unchanged."""
        return cls(sizes=(4, 8, 16))


@dataclass(frozen=True, slots=True)
class Exercise4Result:
    """Every figure exercise 4 measured; timings in seconds."""

    config: Exercise4Config
    executor: ExecutorKind
    rows: tuple[ScaleRow, ...]
    normalizeSeconds: float
    cpuWidth: int
    cores: int
    batches: tuple[BatchRow, ...]
    breakerStatistics: BreakerStatistics
    changes: tuple[StateChange, ...]
    openProbability: float
    claims: tuple[Claim, ...]

    @property
    def fastFails(self) -> int:
        """Store calls rejected by the open breaker, all batches."""
        return sum(row.fastFails for row in self.batches)


@contextlib.contextmanager
def pipelinePools(
    config: Exercise4Config, executor: ExecutorKind, startMethod: StartMethod | None
) -> Iterator[tuple[TaskExecutor, TaskExecutor]]:
    """The CPU pool and the store threads, both started and warm before any timing.

    The process pool comes first and its workers are forked before the thread pool
    exists: forking a process that runs threads is unsafe, and 3.12+ warns about it.
    Warming both makes start-up a one-off cost, not the architecture's.
    """
    with executorScope(executor, config.processWorkers, startMethod) as processPool:
        warmUp(processPool, config.processWorkers, preload=(__name__,))
        for future in [
            processPool.submit(normalizeReading, {"sensorId": -1, "rawValue": 50.0}, 1)
            for _ in range(config.processWorkers)
        ]:
            future.result(timeout=STAGE_DEADLINE_SECONDS)
        with executorScope("thread", config.storeWorkers) as threadPool:
            warmUp(threadPool, config.storeWorkers)
            yield processPool, threadPool


def calibrateNormalize(seed: int, repeats: int = 21) -> float:
    """Median seconds of one ``normalizeReading`` here: the CPU cost in the latency model."""
    reading: RawReading = {"sensorId": 0, "rawValue": sensorDraw(0, seed)[1]}
    return statistics.median(timeRepeats(lambda: normalizeReading(reading), repeats))


def timed(coroutine: Coroutine[Any, Any, R]) -> tuple[R, float]:
    """Run a coroutine in a fresh event loop; its result and wall-clock seconds."""
    with Stopwatch() as watch:
        result = asyncio.run(coroutine)
    return result, watch.elapsed


async def breakerBatches(
    config: Exercise4Config,
    processPool: TaskExecutor,
    threadPool: TaskExecutor,
    breaker: CircuitBreaker,
    seed: int,
    log: Log,
) -> list[BatchRow]:
    """Requirement 5: batches through the correct pipeline, every store guarded by one breaker."""
    rows: list[BatchRow] = []
    for batch in range(1, config.batches + 1):
        sensorIds = [batch * 1000 + i for i in range(config.batchSize)]
        plan = [storeFails(sensorId, config.storeFailureProbability, seed) for sensorId in sensorIds]
        finished: list[bool] = []
        async with asyncio.timeout(STAGE_DEADLINE_SECONDS):
            readings = await asyncio.gather(
                *(fetchSensorReading(sensorId, seed=seed, timeScale=config.timeScale) for sensorId in sensorIds)
            )
            normalized = await asyncio.gather(*(runInExecutor(processPool, normalizeReading, r) for r in readings))
            outcomes = await asyncio.gather(
                *(
                    runInExecutor(
                        threadPool, guardedStore, breaker, r, fail, finished, STORE_SECONDS * config.timeScale
                    )
                    for r, fail in zip(normalized, plan, strict=True)
                ),
                return_exceptions=True,
            )
        unexpected = [
            o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, StoreError | CircuitOpenError)
        ]
        if unexpected:
            raise unexpected[0]
        row = BatchRow(
            batch=batch,
            successes=sum(not isinstance(o, BaseException) for o in outcomes),
            failures=sum(isinstance(o, StoreError) for o in outcomes),
            fastFails=sum(isinstance(o, CircuitOpenError) for o in outcomes),
            plannedFailures=sum(plan),
            longestFailureRun=longestRun(finished),
            stateAfter=breaker.state,
        )
        log(
            f"batch {batch}: {row.successes} stored, {row.failures} failed, {row.fastFails} fast-failed; "
            f"breaker {row.stateAfter}"
        )
        rows.append(row)
    return rows


def runExercise4(
    config: Exercise4Config,
    *,
    seed: int,
    executor: ExecutorKind = "process",
    startMethod: StartMethod | None = None,
    log: Log = silent,
) -> Exercise4Result:
    """Requirements 2-5: naive then correct at each scale, then the breaker batches.

    The process pool is started and warmed before the thread pool exists (forking
    a multi-threaded process is unsafe), and before any timing: start-up is a
    one-off cost, not the architecture's.
    """
    naive: list[tuple[Aggregate, float]] = []
    for size in config.sizes:
        aggregate, seconds = timed(naivePipeline(range(size), seed=seed, timeScale=config.timeScale))
        naive.append((aggregate, seconds))
        log(f"naive,   {size:3d} sensors: {seconds * 1e3:6.0f} ms")
    changes: list[StateChange] = []
    breaker = CircuitBreaker(config.breakerThreshold, config.breakerResetSeconds, onStateChange=changes.append)
    correct: list[tuple[Aggregate, float]] = []
    with pipelinePools(config, executor, startMethod) as (processPool, threadPool):
        for size in config.sizes:
            aggregate, seconds = timed(
                correctPipeline(range(size), processPool, threadPool, seed=seed, timeScale=config.timeScale)
            )
            correct.append((aggregate, seconds))
            log(f"correct, {size:3d} sensors: {seconds * 1e3:6.0f} ms")
        batches = asyncio.run(breakerBatches(config, processPool, threadPool, breaker, seed, log))

    normalizeSeconds = calibrateNormalize(seed)
    cores = cpuCount()
    rows: list[ScaleRow] = []
    for size, (naiveAggregate, naiveSeconds), (correctAggregate, correctSeconds) in zip(
        config.sizes, naive, correct, strict=True
    ):
        delays = fetchDelays(size, seed, config.timeScale)
        storeSeconds = STORE_SECONDS * config.timeScale
        cpuWidth = parallelBound(size, config.processWorkers, cores) if executor in PARALLEL_KINDS else 1
        rows.append(
            ScaleRow(
                sensors=size,
                naiveSeconds=naiveSeconds,
                correctSeconds=correctSeconds,
                naiveIdealSeconds=naiveIdeal(delays, normalizeSeconds, storeSeconds),
                correctIdealSeconds=correctIdeal(delays, normalizeSeconds, storeSeconds, cpuWidth, config.storeWorkers),
                aggregatesMatch=naiveAggregate == correctAggregate,
                aggregate=correctAggregate,
            )
        )
    partial = Exercise4Result(
        config=config,
        executor=executor,
        rows=tuple(rows),
        normalizeSeconds=normalizeSeconds,
        cpuWidth=parallelBound(config.processWorkers, config.processWorkers, cores)
        if executor in PARALLEL_KINDS
        else 1,
        cores=cores,
        batches=tuple(batches),
        breakerStatistics=breaker.statistics(),
        changes=tuple(changes),
        openProbability=runProbability(
            config.batches * config.batchSize, config.breakerThreshold, config.storeFailureProbability
        ),
        claims=(),
    )
    return _withClaims4(partial)


def _withClaims4(result: Exercise4Result) -> Exercise4Result:
    """Judge exercise 4's claims from the measured figures."""
    config = result.config
    speedups = [row.speedup for row in result.rows]
    stats = result.breakerStatistics
    stores = config.batches * config.batchSize
    accounted = all(row.total == config.batchSize for row in result.batches)
    isolated = stats.admitted == stats.successes + stats.failures and stats.rejected == result.fastFails
    openings = [change for change in result.changes if change.current is BreakerState.OPEN]
    firstOpenBatch = next((row.batch for row in result.batches if row.stateAfter is not BreakerState.CLOSED), None)
    fastAfterOpen = result.fastFails > 0
    if not openings:
        opensHolds: bool | None = None
        opensMeasured = f"never opened: no {config.breakerThreshold} consecutive failures in {stores} stores"
        opensReason = (
            f"P(a run of {config.breakerThreshold} failures in {stores} stores at "
            f"p={config.storeFailureProbability}) = {result.openProbability:.0%}"
        )
    elif firstOpenBatch == config.batches and not fastAfterOpen:
        opensHolds = None
        opensMeasured = "opened during the last batch"
        opensReason = "no store call came after the opening"
    else:
        opensHolds = fastAfterOpen and all(
            f"{config.breakerThreshold} consecutive" in change.reason
            for change in openings
            if change.previous is BreakerState.CLOSED
        )
        opensMeasured = (
            f"opened {len(openings)} time(s) (first in batch {firstOpenBatch}); {result.fastFails} stores failed fast"
        )
        opensReason = "the breaker opened without the threshold or never rejected"
    claims = (
        judge(
            LECTURE,
            4,
            "naive and correct architectures compute the same aggregate",
            measured=f"identical at {', '.join(str(row.sensors) for row in result.rows)} sensors"
            if all(row.aggregatesMatch for row in result.rows)
            else "aggregates differ",
            holds=all(row.aggregatesMatch for row in result.rows),
            kind=ClaimKind.STRUCTURAL,
            reason="a tier changed the readings",
        ),
        judge(
            LECTURE,
            4,
            "the correct architecture beats the naive one at every scale",
            measured=", ".join(f"{row.sensors}: {row.speedup:.2f}x" for row in result.rows),
            holds=all(s > 1.0 for s in speedups),
            kind=ClaimKind.TIMING,
            reason="pool hand-offs cost more than the overlap gained",
        ),
        judge(
            LECTURE,
            4,
            "the speedup increases with more sensors",
            measured=" -> ".join(f"{s:.2f}x" for s in speedups),
            holds=all(later > earlier for earlier, later in itertools.pairwise(speedups)),
            kind=ClaimKind.TIMING,
            reason="timing noise at one scale exceeded the growth",
        ),
        judge(
            LECTURE,
            4,
            "every guarded store ends stored, failed or fast-failed; fast-fails never reach storage",
            measured=f"{sum(r.total for r in result.batches)} of {stores} accounted; breaker admitted "
            f"{stats.admitted} = {stats.successes} ok + {stats.failures} failed, rejected {stats.rejected}",
            holds=accounted and isolated,
            kind=ClaimKind.STRUCTURAL,
            reason="a store was lost or a rejected call ran",
        ),
        judge(
            LECTURE,
            4,
            f"after {config.breakerThreshold} consecutive failures the breaker opens and stores fail fast",
            measured=opensMeasured,
            holds=opensHolds,
            kind=ClaimKind.STRUCTURAL,
            reason=opensReason,
        ),
    )
    return replace(result, claims=claims)


def formatExercise4(result: Exercise4Result) -> str:
    """Requirements 4-5: the comparison with ideal times and speedups, then the breaker per batch."""
    config = result.config
    scale = config.timeScale
    table = formatTable(
        ("sensors", "naive ms", "ideal", "correct ms", "ideal", "of ideal", "speedup", "ideal speedup"),
        [
            (
                row.sensors,
                row.naiveSeconds * 1e3,
                row.naiveIdealSeconds * 1e3,
                row.correctSeconds * 1e3,
                row.correctIdealSeconds * 1e3,
                f"{efficiency(row.correctIdealSeconds, row.correctSeconds):.0%}",
                f"{row.speedup:.2f}x",
                f"{row.idealSpeedup:.2f}x",
            )
            for row in result.rows
        ],
        title="Naive vs correct architecture (ideal = the latency model: fetch "
        f"{FETCH_DELAY_RANGE[0] * scale * 1e3:g}-{FETCH_DELAY_RANGE[1] * scale * 1e3:g} ms as drawn, "
        f"normalize {result.normalizeSeconds * 1e3:.2f} ms on {result.cpuWidth} worker(s), store "
        f"{STORE_SECONDS * scale * 1e3:g} ms on "
        f"{config.storeWorkers} threads)",
    )
    batches = formatTable(
        ("batch", "stored", "failed", "fast-failed", "planned to fail", "longest run as finished", "state after"),
        [
            (
                row.batch,
                row.successes,
                row.failures,
                row.fastFails,
                row.plannedFailures,
                row.longestFailureRun,
                str(row.stateAfter),
            )
            for row in result.batches
        ],
        title=f"Sync circuit breaker around storeReading (p(fail) = {config.storeFailureProbability}, "
        f"opens after {config.breakerThreshold} consecutive failures, reset {config.breakerResetSeconds:g} s)",
    )
    growth = " -> ".join(f"{row.speedup:.2f}x" for row in result.rows)
    opened = [c for c in result.changes if c.current is BreakerState.OPEN]
    breakerNote = prose(
        f"The breaker opened {len(opened)} time(s) and rejected {result.fastFails} stores without touching storage."
        if opened
        else f"The breaker never opened: no {config.breakerThreshold} failures in a row. Scattered failures are what a "
        f"threshold is meant to ignore; the chance of such a run in {config.batches * config.batchSize} stores at "
        f"p = {config.storeFailureProbability} is {result.openProbability:.0%}."
    )
    return "\n".join(
        [
            "",
            table,
            "",
            prose(
                f"Speedup grows with scale ({growth}): the naive loop does normalize + store for one sensor at a time "
                "(about n x 21 ms), the correct pipeline waits for the slowest fetch once and spreads the other stages "
                "over the pools, so n only enters as ceil(n / workers)."
            ),
            "",
            batches,
            "",
            breakerNote,
            prose(
                f"Within a batch all {config.batchSize} stores are in flight at once, so 'consecutive' means in "
                "the order they finish (the 'longest run as finished' column), and an opening takes effect from the "
                "next call the breaker admits; outcomes of calls admitted before it are counted but do not move the "
                "state."
            ),
        ]
    )


def exercise4(options: RunOptions, log: Log) -> Exercise4Result:
    """Registry entry: run exercise 4 with the spec's numbers (or quick ones) and print it."""
    config = Exercise4Config.quick() if options.quick else Exercise4Config()
    result = runExercise4(
        config,
        seed=options.seed,
        executor=options.executor,
        startMethod=options.startMethod,
        log=log,
    )
    log(formatExercise4(result))
    return result


# ============================================================================
# Benchmarks (invoke bench): every architecture's median beside its ideal bound
# ============================================================================


def belowTargetNote(row: BenchRow, cause: str) -> str:
    """One line for a row under the efficiency target: how far, in ms, and what takes it."""
    gap = (row.medianSeconds - row.idealSeconds) * 1e3
    return prose(f"{row.label}: {row.efficiency:.0%} of ideal, {gap:.1f} ms above it; {cause}")


def threeTierRuns(
    config: Exercise1Config, threadPool: TaskExecutor, processPool: TaskExecutor, seed: int
) -> dict[str, Callable[[], object]]:
    """Exercise 1's three architectures as calls to time: the exercise's own handlers, nothing else."""
    requestIds = range(config.requests)

    def sequential() -> object:
        return [
            handleRequestSync(r, seed=seed, records=config.recordsPerRequest, timeScale=config.timeScale)
            for r in requestIds
        ]

    def concurrent(cpuTier: TaskExecutor) -> Callable[[], object]:
        return lambda: asyncio.run(
            asyncMain(
                config.requests,
                threadPool,
                cpuTier,
                seed=seed,
                records=config.recordsPerRequest,
                timeScale=config.timeScale,
            )
        )

    return {
        "sequential (baseline)": sequential,
        f"async + {config.threadWorkers} threads, parse on the loop": concurrent(InlineExecutor()),
        f"async + {config.threadWorkers} threads + {config.processWorkers} processes": concurrent(processPool),
    }


def threeTierIdeals(config: Exercise1Config, seed: int, parseSeconds: float) -> tuple[list[float], list[float]]:
    """The metadata delays of a run and the ideal of each architecture (sequential, threads, three tiers)."""
    firstIds = [parseCsvChunk(makeCsvChunk(r, 1, seed))[0]["id"] for r in range(config.requests)]
    delays = [metadataDelay(recordId, seed) * config.timeScale for recordId in firstIds]
    ideals = [
        sum(delays) + parseSeconds * len(delays),
        idealThreeTier(parseSeconds, delays, 1, config.threadWorkers),
        idealThreeTier(parseSeconds, delays, config.processWorkers, config.threadWorkers),
    ]
    return delays, ideals


def extensionNote(rows: Sequence[BenchRow], firstBelow: Sequence[BenchRow], tried: Sequence[int]) -> str:
    """Which under-target architectures reached the target with more requests, and which did not."""
    parts: list[str] = []
    for row in firstBelow:
        later = [r for r in rows if r.label.startswith(row.label + ", ")]
        reached = next((r for r in later if r.efficiency >= EFFICIENCY_TARGET), None)
        if reached is not None:
            parts.append(f"{reached.label} reaches the target ({reached.efficiency:.0%})")
        elif later:
            first, last = ((r.medianSeconds - r.idealSeconds) * 1e3 for r in (row, later[-1]))
            parts.append(
                f"{row.label} does not reach it up to {tried[-1]} requests ({later[-1].efficiency:.0%}): the gap "
                f"goes from {first:.1f} to {last:.1f} ms, "
                + ("growing with the requests" if last > first else "so a larger batch would amortise it further")
            )
        else:
            parts.append(f"{row.label}: no larger size was tried")
    return prose("; ".join(parts) + ".")


def benchThreeTier(
    config: Exercise1Config, options: BenchOptions, log: Log = silent, extensions: Sequence[int] = ()
) -> BenchReport:
    """Exercise 1: sequential, async + threads, and all three tiers, each against the latency model.

    The ideal is ``idealThreeTier`` with the parse calibrated here. The parse tier's
    width is the worker count, not min(workers, cores): the spec's "CPU" work is
    ``time.sleep``, which holds no core, so four workers really do overlap on two
    cores and the narrower bound would flatter the result. Pools are started and
    warmed before timing; their start-up is reported, not charged. A concurrent
    architecture under the efficiency target is measured again with more requests
    (``extensions``) until it reaches it.
    """
    seed = options.seed
    parseSeconds = calibrateParse(config, seed, repeats=9)
    chunk = makeCsvChunk(0, config.recordsPerRequest, seed)
    log(
        f"31.1: {config.requests} requests x {options.repeats} repeats, {config.threadWorkers} threads, "
        f"{config.processWorkers} processes"
    )
    with executorScope("process", config.processWorkers, options.startMethod) as processPool:
        startUp = warmUp(processPool, config.processWorkers, preload=(__name__,))
        roundTrip = statistics.median(
            timeRepeats(lambda: processPool.submit(parseCsvChunk, chunk).result(timeout=STAGE_DEADLINE_SECONDS), 9)
        )
        with executorScope("thread", config.threadWorkers) as threadPool:
            warmUp(threadPool, config.threadWorkers)

            def measure(sized: Exercise1Config, suffix: str = "") -> list[BenchRow]:
                runs = threeTierRuns(sized, threadPool, processPool, seed)
                medians = list(interleavedMedians(runs, options.repeats).values())
                _, ideals = threeTierIdeals(sized, seed, parseSeconds)
                return [
                    BenchRow(label + suffix, median, medians[0], ideal, options.repeats)
                    for label, median, ideal in zip(runs, medians, ideals, strict=True)
                ]

            rows = measure(config)
            firstBelow = [row for row in rows[1:] if row.efficiency < EFFICIENCY_TARGET]
            below = {row.label for row in firstBelow}
            tried = [config.requests]
            for requests in extensions:
                if not below:
                    break
                log(f"31.1: below target at {tried[-1]} requests; measuring {requests}")
                larger = measure(replace(config, requests=requests), f", {requests} requests")
                tried.append(requests)
                for base, row in zip(rows[:3], larger, strict=True):
                    if base.label in below:
                        rows.append(row)
                        if row.efficiency >= EFFICIENCY_TARGET:
                            below.discard(base.label)
    delays, _ = threeTierIdeals(config, seed, parseSeconds)
    baseline = rows[0].medianSeconds
    handOff = roundTrip - parseSeconds
    causes = {
        rows[0].label: "each time.sleep overshoots the delay it asked for (timer slack).",
        rows[1].label: f"the loop parses each chunk ({parseSeconds * 1e3:.1f} ms) between thread hand-offs and "
        "wake-ups; the model counts neither the hand-offs nor the loop's start and close.",
        rows[2].label: f"each chunk crosses to a worker and back ({roundTrip * 1e3:.2f} ms round trip for "
        f"{parseSeconds * 1e3:.2f} ms of parsing: {handOff * 1e3:.2f} ms of pickling and IPC per chunk), "
        "plus thread hand-offs and the loop's start and close.",
    }
    notes = [
        prose(
            f"Ideal = the latency model: {len(delays)} metadata calls as drawn ({min(delays) * 1e3:.0f}-"
            f"{max(delays) * 1e3:.0f} ms, {sum(delays) * 1e3:.0f} ms in all) on {config.threadWorkers} threads; "
            f"parsing {parseSeconds * 1e3:.2f} ms per chunk (calibrated here: {config.recordsPerRequest} x "
            f"time.sleep(0.0001) plus timer slack) on the loop or on {config.processWorkers} processes. A sleep "
            f"holds no core, so the parse tier is {config.processWorkers} wide on {cpuCount()} cores."
        ),
        prose(
            f"Pool start-up {startUp * 1e3:.0f} ms, paid once before timing; a parse round trip through the warm "
            f"pool {roundTrip * 1e3:.2f} ms against {parseSeconds * 1e3:.2f} ms in process. The thread tier carries "
            f"the gain ({rows[1].speedup:.2f}x): {config.threadWorkers} blocking calls overlap. The process tier "
            f"adds {rows[2].speedup / rows[1].speedup:.2f}x on top: it only shortens the parse queue, "
            f"{len(delays) * parseSeconds * 1e3:.0f} ms of the sequential {baseline * 1e3:.0f} ms."
        ),
        *(belowTargetNote(row, causes[row.label]) for row in rows[:3] if row.efficiency < EFFICIENCY_TARGET),
    ]
    if firstBelow:
        notes.append(extensionNote(rows, firstBelow, tried))
    return BenchReport(
        "31.1", "three-tier request handler vs sequential (ideal: the latency model)", tuple(rows), tuple(notes)
    )


def benchExercise1(options: BenchOptions, log: Log) -> BenchReport:
    """Registry entry: exercise 1 at the spec's sizes (quick: its quick config); under the target, more requests."""
    if options.quick:
        return benchThreeTier(Exercise1Config.quick(), options, log, extensions=(12,))
    return benchThreeTier(Exercise1Config(), options, log, extensions=(20, 40))


STAGES: Final = ("fetch", "normalize", "store")


@dataclass(frozen=True, slots=True)
class PipelinePoint:
    """Exercise 4 at one size: both architectures' medians and ideals, the correct one stage by stage."""

    sensors: int
    naiveSeconds: float
    correctSeconds: float
    naiveIdealSeconds: float
    correctIdealSeconds: float
    stageSeconds: tuple[float, ...]
    stageIdealSeconds: tuple[float, ...]
    repeats: int

    @property
    def gapMs(self) -> float:
        """Milliseconds the correct pipeline spends above its ideal."""
        return (self.correctSeconds - self.correctIdealSeconds) * 1e3

    @property
    def outsideSeconds(self) -> float:
        """Time outside the three stages: the event loop's start and close, the aggregate."""
        return self.correctSeconds - sum(self.stageSeconds)

    def naiveRow(self) -> BenchRow:
        """The naive architecture against its own (one-server) ideal; it is the baseline."""
        return BenchRow(
            f"naive, {self.sensors} sensors", self.naiveSeconds, self.naiveSeconds, self.naiveIdealSeconds, self.repeats
        )

    def correctRow(self, label: str = "") -> BenchRow:
        """The correct architecture against its ideal, with the naive median as baseline."""
        return BenchRow(
            label or f"correct, {self.sensors} sensors",
            self.correctSeconds,
            self.naiveSeconds,
            self.correctIdealSeconds,
            self.repeats,
        )

    def gapCause(self) -> str:
        """Where the correct pipeline's time above its ideal goes, stage by stage, in ms."""
        fetch, normalize, store = (
            (measured - ideal) * 1e3 for measured, ideal in zip(self.stageSeconds, self.stageIdealSeconds, strict=True)
        )
        return (
            f"normalize {normalize:+.1f} ms over its ideal ({normalize / self.sensors * 1e3:.0f} us per reading: "
            f"pickling and IPC through the pool's queues, its manager thread and the workers sharing the cores), "
            f"store {store:+.1f} ms (thread hand-offs, sleep overshoot), fetch {fetch:+.1f} ms over the slowest draw "
            f"(timer and loop wake-up), {self.outsideSeconds * 1e3:.1f} ms outside the stages (the loop's start and "
            "close)."
        )


def measurePipeline(
    config: Exercise4Config,
    size: int,
    processPool: TaskExecutor,
    threadPool: TaskExecutor,
    options: BenchOptions,
    normalizeSeconds: float,
) -> PipelinePoint:
    """Median naive and correct time at one size (repeats interleaved) beside the latency model's ideals.

    The CPU share of the ideal runs on min(workers, cores) processes; the stores on
    ``storeWorkers`` threads (a sleep needs no core).
    """
    seed, scale = options.seed, config.timeScale
    storeSeconds = STORE_SECONDS * scale
    stageRuns: list[list[float]] = []

    def correct() -> object:
        stages: list[float] = []
        stageRuns.append(stages)
        return asyncio.run(
            correctPipeline(range(size), processPool, threadPool, seed=seed, timeScale=scale, stageSeconds=stages)
        )

    def naive() -> object:
        return asyncio.run(naivePipeline(range(size), seed=seed, timeScale=scale))

    medians = interleavedMedians({"naive": naive, "correct": correct}, options.repeats)
    delays = fetchDelays(size, seed, scale)
    cpuWidth = parallelBound(size, config.processWorkers)
    return PipelinePoint(
        sensors=size,
        naiveSeconds=medians["naive"],
        correctSeconds=medians["correct"],
        naiveIdealSeconds=naiveIdeal(delays, normalizeSeconds, storeSeconds),
        correctIdealSeconds=correctIdeal(delays, normalizeSeconds, storeSeconds, cpuWidth, config.storeWorkers),
        stageSeconds=tuple(statistics.median(stage) for stage in zip(*stageRuns, strict=True)),
        stageIdealSeconds=(
            max(delays),
            flowMakespan([([normalizeSeconds] * size, cpuWidth)]),
            flowMakespan([([storeSeconds] * size, config.storeWorkers)]),
        ),
        repeats=options.repeats,
    )


def modelNote(config: Exercise4Config, normalizeSeconds: float) -> str:
    """What the ideal of exercise 4 assumes, in one paragraph."""
    scale = config.timeScale
    low, high = (bound * scale * 1e3 for bound in FETCH_DELAY_RANGE)
    return prose(
        f"Ideal = the latency model: fetches {low:g}-{high:g} ms as drawn, all at once; normalize "
        f"{normalizeSeconds * 1e3:.2f} ms per reading (calibrated here) on min({config.processWorkers} workers, "
        f"{cpuCount()} cores) = {parallelBound(config.processWorkers, config.processWorkers)} processes; store "
        f"{STORE_SECONDS * scale * 1e3:g} ms on {config.storeWorkers} threads. The naive ideal runs normalize + "
        "store on one server, the loop, as each fetch lands."
    )


def targetNote(tried: Sequence[PipelinePoint]) -> str:
    """Where the correct pipeline reaches the efficiency target, or why it does not within the sizes tried."""
    first, last = tried[0], tried[-1]
    gaps = (
        f"the gap above the ideal goes from {first.gapMs:.1f} ms at {first.sensors} "
        f"to {last.gapMs:.1f} ms at {last.sensors} sensors"
    )
    if len(tried) == 1:
        return prose(f"Below the {EFFICIENCY_TARGET:.0%} target at {first.sensors} sensors; no larger size was tried.")
    if last.correctRow().efficiency >= EFFICIENCY_TARGET:
        return prose(
            f"The {EFFICIENCY_TARGET:.0%} target is reached at {last.sensors} sensors "
            f"({last.correctRow().efficiency:.0%}): {gaps} while the ideal grows, so the overhead is amortised."
        )
    growing = last.gapMs > first.gapMs
    return prose(
        f"The {EFFICIENCY_TARGET:.0%} target is not reached up to {last.sensors} sensors: {gaps}"
        + (
            ", growing with the batch: it is paid per reading, so more sensors do not amortise it."
            if growing
            else "; it does not grow with the batch, so a larger one would amortise it."
        )
    )


def benchPipeline(
    config: Exercise4Config, size: int, extensions: Sequence[int], options: BenchOptions, log: Log = silent
) -> BenchReport:
    """Exercise 4, requirements 2-3: naive vs correct at ``size`` sensors, each against its ideal.

    When the correct pipeline is under the efficiency target, larger sizes
    (``extensions``) are measured until one reaches it: the overheads that take
    the rest are partly per run, so they are amortised as the batch grows.
    """
    normalizeSeconds = calibrateNormalize(options.seed)
    log(f"31.4: naive vs correct, {size} sensors x {options.repeats} repeats")
    with pipelinePools(config, "process", options.startMethod) as (processPool, threadPool):
        point = measurePipeline(config, size, processPool, threadPool, options, normalizeSeconds)
        rows = [point.naiveRow(), point.correctRow()]
        notes = [modelNote(config, normalizeSeconds)]
        if point.correctRow().efficiency < EFFICIENCY_TARGET:
            notes.append(belowTargetNote(point.correctRow(), point.gapCause()))
            tried = [point]
            for larger in extensions:
                log(f"31.4: below target at {tried[-1].sensors} sensors; measuring {larger}")
                tried.append(measurePipeline(config, larger, processPool, threadPool, options, normalizeSeconds))
                rows.append(tried[-1].correctRow(f"correct, {larger} sensors"))
                if rows[-1].efficiency >= EFFICIENCY_TARGET:
                    break
                notes.append(belowTargetNote(rows[-1], tried[-1].gapCause()))
            notes.append(targetNote(tried))
    return BenchReport(
        "31.4", f"naive vs correct pipeline, {size} sensors (ideal: the latency model)", tuple(rows), tuple(notes)
    )


def benchExercise4(options: BenchOptions, log: Log) -> BenchReport:
    """Registry entry: requirements 2-3's 12 sensors; under the target, 24 (and 48 unless quick)."""
    return benchPipeline(Exercise4Config(), 12, (24,) if options.quick else (24, 48), options, log)


@dataclass(frozen=True, slots=True)
class MarginalCosts:
    """What one more sensor costs each architecture, from the two largest sizes of a sweep."""

    naiveSeconds: float
    correctSeconds: float
    normalizeSeconds: float
    storeSeconds: float

    @property
    def speedup(self) -> float:
        """The ratio the speedup tends to as the batch grows (the fixed costs no longer count)."""
        return speedup(self.naiveSeconds, self.correctSeconds)


def marginalCosts(points: Sequence[PipelinePoint]) -> MarginalCosts | None:
    """Per-sensor costs between the last two sizes of a sweep (None with fewer than two sizes)."""
    if len(points) < 2:
        return None
    first, last = points[-2], points[-1]
    added = last.sensors - first.sensors
    return MarginalCosts(
        (last.naiveSeconds - first.naiveSeconds) / added,
        (last.correctSeconds - first.correctSeconds) / added,
        (last.stageSeconds[1] - first.stageSeconds[1]) / added,
        (last.stageSeconds[2] - first.stageSeconds[2]) / added,
    )


def growthReading(speedups: Sequence[float]) -> str:
    """Whether the speedup grows at every step, and whether its steps shrink."""
    path = " -> ".join(f"{s:.2f}x" for s in speedups)
    if len(speedups) < 2:
        return f"Speedup {path}: one size says nothing about growth."
    steps = [later / earlier for earlier, later in itertools.pairwise(speedups)]
    stepText = ", ".join(f"x{step:.2f}" for step in steps)
    if not all(step > 1.0 for step in steps):
        return f"Does the speedup keep growing? {path}: not at every step ({stepText})."
    shape = (
        "but by ever smaller steps"
        if len(steps) >= 2 and steps[-1] < steps[0]
        else "and its steps have not started to shrink within these sizes"
    )
    return f"Does the speedup keep growing? {path}: yes, {shape} ({stepText})."


def sweepNotes(config: Exercise4Config, points: Sequence[PipelinePoint], normalizeSeconds: float) -> list[str]:
    """Read the sweep: does the speedup keep growing, and what bounds it on this machine."""
    cores = cpuCount()
    cpuWidth = parallelBound(config.processWorkers, config.processWorkers, cores)
    storeSeconds = STORE_SECONDS * config.timeScale
    modelStore = storeSeconds / config.storeWorkers
    modelNormalize = normalizeSeconds / cpuWidth
    limit = (normalizeSeconds + storeSeconds) / (modelNormalize + modelStore)
    speedups = [speedup(p.naiveSeconds, p.correctSeconds) for p in points]
    chart = barChart(
        [
            (f"{p.sensors} sensors {kind}", value)
            for p, measured in zip(points, speedups, strict=True)
            for kind, value in (("measured", measured), ("ideal", speedup(p.naiveIdealSeconds, p.correctIdealSeconds)))
        ],
        unit="x",
        title="Speedup (naive / correct) per size, measured beside the latency model's:",
    )
    reading = growthReading(speedups) + (
        f" Both pipelines pay the slowest fetch (up to {FETCH_DELAY_RANGE[1] * config.timeScale * 1e3:g} ms) once; "
        "as the batch grows that fixed cost shrinks in the ratio, which tends to the ratio of the per-sensor costs."
    )
    margin = marginalCosts(points)
    if margin is not None and min(margin.naiveSeconds, margin.correctSeconds) <= 0:
        reading += " The last two sizes differ too little to read a per-sensor cost from them (timing noise)."
        margin = None
    if margin is not None:
        ipc = margin.normalizeSeconds - modelNormalize
        reading += (
            f" Between the last two sizes one more sensor costs the naive pipeline {margin.naiveSeconds * 1e3:.2f} ms "
            f"and the correct one {margin.correctSeconds * 1e3:.2f} ms, so the speedup is heading for about "
            f"{margin.speedup:.1f}x. Of that {margin.correctSeconds * 1e3:.2f} ms the store stage takes "
            f"{margin.storeSeconds * 1e3:.2f} ms (model: {storeSeconds * 1e3:g} ms / {config.storeWorkers} threads = "
            f"{modelStore * 1e3:.2f} ms) and the normalize stage {margin.normalizeSeconds * 1e3:.2f} ms (model: "
            f"{normalizeSeconds * 1e3:.2f} ms / {cpuWidth} processes = {modelNormalize * 1e3:.2f} ms; "
            f"{ipc * 1e3:+.2f} ms of pickling and IPC per reading through the pool's queues)."
        )
    notes = [modelNote(config, normalizeSeconds), "", chart, "", prose(reading)]
    storeBound = modelStore >= modelNormalize
    notes.append(
        prose(
            f"What bounds it on {cores} cores: in the model, (normalize + store) / (normalize / {cpuWidth} + store / "
            f"{config.storeWorkers}) = {limit:.1f}x. "
            + (
                f"The store threads set it ({modelStore * 1e3:.2f} of {(modelStore + modelNormalize) * 1e3:.2f} ms "
                "per sensor): more threads would raise it, since a sleeping store needs no core; more processes "
                f"would not, since the CPU stage already runs on min({config.processWorkers} workers, {cores} cores) "
                f"= {cpuWidth}."
                if storeBound
                else f"The CPU stage sets it ({modelNormalize * 1e3:.2f} of {(modelStore + modelNormalize) * 1e3:.2f} "
                f"ms per sensor) and it runs on min({config.processWorkers} workers, {cores} cores) = {cpuWidth}: "
                "only more cores raise it."
            )
            + (
                f" Measured, the pool's per-reading IPC and the hand-offs bring it down to the {margin.speedup:.1f}x "
                "above."
                if margin is not None and margin.speedup < limit
                else ""
            )
        )
    )
    below = [(p, p.correctRow()) for p in points if p.correctRow().efficiency < EFFICIENCY_TARGET]
    notes.extend(belowTargetNote(row, p.gapCause()) for p, row in below)
    return notes


def benchSweep(config: Exercise4Config, sizes: Sequence[int], options: BenchOptions, log: Log = silent) -> BenchReport:
    """Exercise 4 over growing batches: speedup and efficiency per size, and why the speedup levels off."""
    normalizeSeconds = calibrateNormalize(options.seed)
    log(f"31.4s: sweep over {', '.join(map(str, sizes))} sensors x {options.repeats} repeats")
    with pipelinePools(config, "process", options.startMethod) as (processPool, threadPool):
        points = [measurePipeline(config, size, processPool, threadPool, options, normalizeSeconds) for size in sizes]
    return BenchReport(
        "31.4s",
        f"correct vs naive pipeline over {', '.join(map(str, sizes))} sensors",
        tuple(point.correctRow(f"{point.sensors} sensors") for point in points),
        tuple(sweepNotes(config, points, normalizeSeconds)),
    )


def benchExercise4Sweep(options: BenchOptions, log: Log) -> BenchReport:
    """Registry entry: 12, 24, 48, 96 sensors (quick: 3, 6, 12, 24)."""
    return benchSweep(Exercise4Config(), (3, 6, 12, 24) if options.quick else (12, 24, 48, 96), options, log)


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
BENCHMARKS = (
    Benchmark("31.1", "three-tier handler: sequential, async + threads, all three tiers", benchExercise1),
    Benchmark("31.4", "mixed-architecture pipeline: naive vs correct", benchExercise4),
    Benchmark("31.4s", "mixed-architecture pipeline: sweep over 12, 24, 48, 96 sensors", benchExercise4Sweep),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run lecture 31's exercises from the command line; return the exit status."""
    return lectureMain(argv, lecture=LECTURE, title=TITLE, exercises=EXERCISES)


if __name__ == "__main__":
    raise SystemExit(main())
