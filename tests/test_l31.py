"""Lecture 31: tiers, fan-out, circuit breaker and pipeline benchmark, read from result objects."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import multiprocessing
import os
import re
import signal
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

import daskrun
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import l31
from lab import lecture31 as lab31
from lab.claims import Claim, ClaimKind, Verdict, formatClaims
from lab.faults import inject, problems
from shared import (
    START_METHODS,
    ConfigError,
    ExecutorKind,
    InlineExecutor,
    StartMethod,
    WorkerLostError,
    executorScope,
    makeRng,
    runInExecutor,
    warmUp,
)

ROOT = Path(__file__).resolve().parent.parent
P = ParamSpec("P")
R = TypeVar("R")


def structuralHold(claims: tuple[Claim, ...]) -> bool:
    """Every structural claim holds or could not be measured; none fails."""
    return all(c.verdict is not Verdict.FAILS for c in claims if c.kind is ClaimKind.STRUCTURAL)


@contextlib.contextmanager
def noWarnings() -> Iterator[None]:
    """Fail if the block warns at all, the fork-with-threads warning of 3.12+ included.

    ``os.fork`` in a process that has threads warns (DeprecationWarning) on 3.12+,
    but under an "error" filter CPython drops the exception (a fork cannot fail
    half-way), so pytest's filterwarnings = error never sees it. Recorded, it is seen.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []


def forkAfterThreads() -> None:
    """The wrong order: a thread pool's threads are alive when the process pool forks its workers."""
    with executorScope("thread", 1) as threads:
        warmUp(threads, 1)
        with executorScope("process", 1, "fork") as pool:
            warmUp(pool, 1)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="the fork-with-threads warning is new in 3.12")
def test_noWarnings_sees_a_fork_while_threads_run() -> None:
    with pytest.raises(AssertionError, match="multi-threaded"), noWarnings():
        forkAfterThreads()


# ============================================================================
# Shared helpers of the module
# ============================================================================


def test_runWatched_reports_an_unretrieved_task_exception() -> None:
    async def leak() -> int:
        async def boom() -> None:
            raise RuntimeError("never retrieved")

        task = asyncio.create_task(boom())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        del task
        return 7

    watched = l31.runWatched(leak())
    assert watched.result == 7
    assert any("never retrieved" in problem for problem in watched.loopProblems)


# ============================================================================
# Exercise 1
# ============================================================================

SMALL1 = l31.Exercise1Config(requests=3, recordsPerRequest=4, threadWorkers=3, processWorkers=2, timeScale=0.02)


def test_parseCsvChunk_parses_the_three_keys() -> None:
    parsed = l31.parseCsvChunk(["1,45.3,2024-01-01", "2,-0.5,2024-01-02", "30,7,2024-02-29"])
    assert parsed == [
        {"id": 1, "value": 45.3, "timestamp": "2024-01-01"},
        {"id": 2, "value": -0.5, "timestamp": "2024-01-02"},
        {"id": 30, "value": 7.0, "timestamp": "2024-02-29"},
    ]
    # 1 == 1.0 and 7 == 7.0: equality alone would pass an id parsed as float or a value left as int.
    assert [[(key, type(value)) for key, value in record.items()] for record in parsed] == [
        [("id", int), ("value", float), ("timestamp", str)]
    ] * 3
    assert l31.parseCsvChunk([]) == []


def test_parseCsvChunk_sleeps_a_tenth_of_a_millisecond_per_record(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    assert [r["id"] for r in l31.parseCsvChunk([f"{i},1.5,2024-01-01" for i in range(7)])] == list(range(7))
    assert slept == [0.0001] * 7


def test_makeCsvChunk_writes_the_spec_lines_with_ids_unique_across_requests() -> None:
    chunks = [l31.makeCsvChunk(requestId, 20, seed=3) for requestId in range(3)]
    line = re.compile(r"(\d+),(\d+\.\d),2024-01-(\d\d)")
    for requestId, chunk in enumerate(chunks):
        found = [line.fullmatch(text) for text in chunk]
        assert all(found), chunk
        ids = [int(match.group(1)) for match in found if match]
        assert ids == list(range(requestId * 1000, requestId * 1000 + 20))
        assert all(0.0 <= float(match.group(2)) <= 100.0 for match in found if match)
    assert chunks[0] == l31.makeCsvChunk(0, 20, seed=3)
    assert chunks[0] != l31.makeCsvChunk(0, 20, seed=4)


def metadataUniform(recordId: int, seed: int) -> float:
    """The spec's ``random.uniform(0.05, 0.1)``, drawn as ``metadataDelay``'s docstring says."""
    return makeRng(seed, 31, 1, "metadata", recordId).uniform(0.05, 0.1)


def test_fetchMetadataBlocking_labels_and_sleeps_its_seeded_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    assert l31.fetchMetadataBlocking(7, seed=1) == {"id": 7, "label": "item_7"}
    assert l31.fetchMetadataBlocking(8, seed=1, timeScale=0.5) == {"id": 8, "label": "item_8"}
    assert slept == [metadataUniform(7, 1), metadataUniform(8, 1) * 0.5]
    delays = [l31.metadataDelay(recordId, seed=1) for recordId in range(200)]
    assert delays == [metadataUniform(recordId, 1) for recordId in range(200)]
    assert all(0.05 <= d <= 0.1 for d in delays)
    assert delays != [l31.metadataDelay(recordId, seed=2) for recordId in range(200)]


class RecordingExecutor(InlineExecutor):
    """An inline executor that notes the name and first argument of every call submitted to it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, object]] = []

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        self.calls.append((getattr(fn, "__name__", repr(fn)), args[0] if args else None))
        return super().submit(fn, *args, **kwargs)


def test_handleRequest_parses_on_the_process_pool_and_fetches_on_the_thread_pool() -> None:
    threads, processes = RecordingExecutor(), RecordingExecutor()
    result = asyncio.run(l31.handleRequest(2, threads, processes, seed=3, timeScale=0.01))
    chunk = l31.makeCsvChunk(2, 20, seed=3)
    assert processes.calls == [("parseCsvChunk", chunk)]
    assert threads.calls == [("fetchMetadataBlocking", 2000)]
    assert result == {"requestId": 2, "parseCount": 20, "metadata": {"id": 2000, "label": "item_2000"}}


def test_handleRequest_matches_the_sync_handler() -> None:
    async def both() -> list[l31.RequestResult]:
        return [
            await l31.handleRequest(r, InlineExecutor(), InlineExecutor(), seed=3, records=5, timeScale=0.01)
            for r in range(3)
        ]

    expected = [
        {"requestId": r, "parseCount": 5, "metadata": {"id": r * 1000, "label": f"item_{r * 1000}"}} for r in range(3)
    ]
    assert asyncio.run(both()) == expected
    assert [l31.handleRequestSync(r, seed=3, records=5, timeScale=0.01) for r in range(3)] == expected


@pytest.fixture(scope="module")
def inline1() -> l31.Exercise1Result:
    """Exercise 1 with no pool at all: the seeded results every executor must reproduce."""
    return l31.runExercise1(SMALL1, seed=4, executor="inline")


@pytest.mark.parametrize("startMethod", START_METHODS)
def test_exercise1_process_pool_matches_sequential(startMethod: StartMethod, inline1: l31.Exercise1Result) -> None:
    with noWarnings():
        result = l31.runExercise1(SMALL1, seed=4, executor="process", startMethod=startMethod)
    inline = inline1
    assert result.matchesSequential
    assert result.results == inline.results
    assert [r["requestId"] for r in result.results] == [0, 1, 2]
    assert lab31.parseWidth(result.executor, SMALL1.processWorkers) == 2
    assert lab31.parseWidth(inline.executor, SMALL1.processWorkers) == 1
    claims = lab31.judge1(result)
    assert structuralHold(claims)
    assert {c.kind for c in claims} == {ClaimKind.STRUCTURAL}


def test_exercise1_config_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match=r"^processWorkers must be >= 1 and <= 256, got 0$"):
        l31.Exercise1Config(processWorkers=0)


# ============================================================================
# Exercise 2
# ============================================================================


def shardDraw(shardId: int, query: str, seed: int) -> tuple[float, bool, int]:
    """Requirement 1's draws, made as ``drawShard``'s docstring says: latency 0.1 s + Exp(rate 5),
    a failure with probability 0.1, then randint(3, 8) records."""
    rng = makeRng(seed, 31, 2, query, shardId)
    latency = 0.1 + rng.expovariate(5.0)
    fails = rng.random() < 0.1
    return latency, fails, rng.randint(3, 8)


def test_drawShard_makes_requirement_1s_draws() -> None:
    keys = [(shardId, f"q{query:02d}") for query in range(50) for shardId in range(40)]
    draws = [l31.drawShard(shardId, query, 3) for shardId, query in keys]
    assert [(d.latencySeconds, d.fails, d.recordCount) for d in draws] == [shardDraw(*key, 3) for key in keys]
    # 100 ms plus a spike of mean 0.2 s: of 2,000 spikes the smallest is about 0.2 / 2,000 s.
    assert min(d.latencySeconds for d in draws) == pytest.approx(0.1, abs=0.001)
    assert statistics.fmean(d.latencySeconds for d in draws) == pytest.approx(0.3, rel=0.05)
    assert sum(d.fails for d in draws) / len(draws) == pytest.approx(0.1, abs=0.02)
    assert {d.recordCount for d in draws} == set(range(3, 9))


def test_queryShard_sleeps_its_draw_then_answers_or_fails() -> None:
    async def ask(shardId: int) -> tuple[float, l31.ShardResult | RuntimeError]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            answer: l31.ShardResult | RuntimeError = await l31.queryShard(shardId, "q03", seed=1, timeScale=0.001)
        except RuntimeError as error:
            answer = error
        return loop.time() - started, answer

    async def askAll() -> list[tuple[float, l31.ShardResult | RuntimeError]]:
        return await asyncio.gather(*(ask(shardId) for shardId in range(30)))

    outcomes = asyncio.run(askAll())
    for shardId, (seconds, answer) in enumerate(outcomes):
        latency, fails, records = shardDraw(shardId, "q03", 1)
        assert seconds >= latency * 0.001 - 1e-6
        if fails:
            assert isinstance(answer, RuntimeError)
            assert str(answer) == "shard error"
        else:
            assert answer == {"shardId": shardId, "records": [f"r_{shardId}_{i}" for i in range(records)]}
    assert sum(isinstance(answer, RuntimeError) for _, answer in outcomes) == sum(
        shardDraw(shardId, "q03", 1)[1] for shardId in range(30)
    )
    assert any(isinstance(answer, RuntimeError) for _, answer in outcomes)


def test_tracker_suggests_twice_the_p90_of_a_hand_worked_window() -> None:
    tracker = l31.LatencyTracker()
    assert tracker.statistics() == l31.TrackerStatistics(0, None, 0.5)
    tracker.recordAll([0.5, 0.1, 0.4, 0.2, 0.3])
    # Sorted 0.1 .. 0.5; rank 0.9 x (5 - 1) = 3.6 -> 0.4 + 0.6 x (0.5 - 0.4) = 0.46; x 2.0 = 0.92.
    stats = tracker.statistics()
    assert stats.observations == 5
    assert stats.p90Seconds == pytest.approx(0.46)
    assert stats.suggestedTimeout == tracker.suggestedTimeout() == pytest.approx(0.92)


def test_tracker_switches_from_the_default_at_exactly_five_observations() -> None:
    tracker = l31.LatencyTracker()
    seen = [tracker.suggestedTimeout()]
    for latency in (0.01, 0.02, 0.03, 0.04, 0.05):
        tracker.record(latency)
        seen.append(tracker.suggestedTimeout())
    # Five: rank 3.6 -> 0.04 + 0.6 x 0.01 = 0.046; x 2.0 = 0.092.
    assert seen == [0.5, 0.5, 0.5, 0.5, 0.5, pytest.approx(0.092)]


def test_tracker_keeps_the_last_twenty() -> None:
    tracker = l31.LatencyTracker()
    tracker.recordAll([9.0] * 5 + [i / 100 for i in range(1, 21)])
    # The five 9 s latencies fell out: 0.01 .. 0.20 remain; rank 0.9 x 19 = 17.1 -> 0.18 + 0.1 x 0.01 = 0.181.
    assert tracker.observations == tuple(i / 100 for i in range(1, 21))
    assert tracker.suggestedTimeout() == pytest.approx(0.362)
    tracker.record(0.5)
    # 0.01 fell out: sorted 0.02 .. 0.20, 0.5; rank 17.1 -> 0.19 + 0.1 x 0.01 = 0.191.
    assert tracker.observations[0] == 0.02
    assert tracker.statistics().observations == 20
    assert tracker.suggestedTimeout() == pytest.approx(0.382)


@given(st.lists(st.floats(0.0, 10.0), min_size=1, max_size=60))
def test_tracker_timeout_is_twice_the_inclusive_p90_of_the_last_twenty(latencies: list[float]) -> None:
    tracker = l31.LatencyTracker()
    tracker.recordAll(latencies)
    window = latencies[-20:]
    expected = 0.5 if len(window) < 5 else 2.0 * statistics.quantiles(window, n=10, method="inclusive")[8]
    assert tracker.observations == tuple(window)
    assert tracker.suggestedTimeout() == pytest.approx(expected, rel=1e-9, abs=1e-12)


@dataclass
class FakeShards:
    """Stand-ins for ``queryShard``: shard i sleeps ``latencies[i]`` x the time scale, then fails if it is in
    ``failing`` or answers with i + 1 records. Each notes its task, and whether it finished on its own or was
    cancelled (it saw ``CancelledError``)."""

    latencies: list[float]
    failing: frozenset[int] = frozenset()
    finished: set[int] = field(default_factory=set)
    cancelled: set[int] = field(default_factory=set)
    tasks: dict[int, asyncio.Task[Any]] = field(default_factory=dict)

    async def __call__(
        self,
        shardId: int,
        query: str,  # noqa: ARG002 - queryShard's signature
        *,
        seed: int = 0,  # noqa: ARG002 - queryShard's signature
        timeScale: float = 1.0,
    ) -> l31.ShardResult:
        task = asyncio.current_task()
        assert task is not None
        self.tasks[shardId] = task
        try:
            await asyncio.sleep(self.latencies[shardId] * timeScale)
        except asyncio.CancelledError:
            self.cancelled.add(shardId)
            raise
        self.finished.add(shardId)
        if shardId in self.failing:
            raise RuntimeError("shard error")
        return {"shardId": shardId, "records": [f"r_{shardId}_{i}" for i in range(shardId + 1)]}


@dataclass(frozen=True)
class FanOutRun:
    """A fan-out over fake shards, and what was true the moment it returned."""

    result: l31.FanOutResult
    taskStates: dict[int, tuple[bool, bool]]  # shard -> (done, cancelled)
    aliveShardTasks: int
    observations: tuple[float, ...]
    loopProblems: tuple[str, ...]


def fanOutOver(shards: FakeShards, timeout: float, timeScale: float = 1.0, *, watched: bool = True) -> FanOutRun:
    """One fan-out over ``shards`` (``l31.queryShard`` must be patched to them) with a tracker that
    suggests ``timeout``; the task states are read before anything else runs on the loop. ``watched``:
    collect the loop's warnings (a garbage collection, some 50 ms here)."""
    tracker = l31.LatencyTracker(defaultTimeout=timeout)

    async def fanOut() -> tuple[l31.FanOutResult, dict[int, tuple[bool, bool]], int]:
        result = await l31.fanOutWithAdaptiveTimeout("q01", len(shards.latencies), tracker, timeScale=timeScale)
        states = {shardId: (task.done(), task.cancelled()) for shardId, task in shards.tasks.items()}
        alive = sum(1 for task in asyncio.all_tasks() if task.get_name().startswith("shard:"))
        return result, states, alive

    if not watched:
        result, states, alive = asyncio.run(fanOut())
        return FanOutRun(result, states, alive, tracker.observations, ())
    run = l31.runWatched(fanOut())
    result, states, alive = run.result
    return FanOutRun(result, states, alive, tracker.observations, run.loopProblems)


def test_fanOut_returns_at_its_deadline_with_every_straggler_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    # Shards 0-2 answer at once (2 fails); 3-5 would take 0.3-0.5 s, well inside the 1 s the fan-out
    # grants its cancelled stragglers to end: one that forgot to cancel them would see them finish on their own.
    latencies = [0.0, 0.001, 0.0, 0.3, 0.4, 0.5]
    shards = FakeShards(latencies, failing=frozenset({2}))
    monkeypatch.setattr(l31, "queryShard", shards)
    run = fanOutOver(shards, timeout=0.02)
    result = run.result
    counts = (result["shardsResponded"], result["shardsTimedOut"], result["shardsFailed"])
    assert counts == (2, 3, 1)
    assert sum(counts) == 6
    assert result["totalRecords"] == 1 + 2
    assert result["usedTimeout"] == 0.02
    # It waited out its deadline and returned before the first straggler could have finished.
    assert 0.02 - 1e-6 <= result["elapsedSeconds"] < min(latencies[3:])
    assert (shards.finished, shards.cancelled) == ({0, 1, 2}, {3, 4, 5})
    assert run.taskStates == {shardId: (True, shardId >= 3) for shardId in range(6)}
    assert (result["stragglersLeft"], run.aliveShardTasks, run.loopProblems) == (0, 0, ())
    assert len(run.observations) == 2
    assert run.observations[1] >= 0.001 - 1e-6


ShardSpec = tuple[float, bool]
# A shard's latency as a multiple of the timeout: at once, well inside it, or well past it.
SHARD_SPECS = st.tuples(st.one_of(st.just(0.0), st.floats(0.01, 0.3), st.floats(1.5, 40.0)), st.booleans())


@given(st.floats(0.001, 0.005), st.lists(SHARD_SPECS, min_size=1, max_size=8))
def test_fanOut_under_random_latencies_and_timeouts_accounts_for_every_shard(
    timeout: float, specs: list[ShardSpec]
) -> None:
    # The latencies are multiples of the timeout: the time scale is the timeout itself.
    shards = FakeShards([factor for factor, _ in specs], frozenset(i for i, (_, fails) in enumerate(specs) if fails))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(l31, "queryShard", shards)
        run = fanOutOver(shards, timeout, timeScale=timeout, watched=False)
    result = run.result
    everyShard = set(range(len(specs)))
    stragglers = {i for i, (factor, _) in enumerate(specs) if factor >= 1.5}
    atOnce = {i for i, (factor, _) in enumerate(specs) if factor == 0.0}
    # Each shard finished on its own or was cancelled, never both; those past the deadline were
    # cancelled, those that answer at once finished; one inside it finished unless the loop stalled.
    assert shards.finished | shards.cancelled == everyShard
    assert shards.finished & shards.cancelled == set()
    assert stragglers <= shards.cancelled
    assert atOnce <= shards.finished
    answered = shards.finished - shards.failing
    assert result["shardsResponded"] == len(answered)
    assert result["shardsFailed"] == len(shards.finished & shards.failing)
    assert result["shardsTimedOut"] == len(shards.cancelled)
    assert result["shardsResponded"] + result["shardsTimedOut"] + result["shardsFailed"] == len(specs)
    assert result["totalRecords"] == sum(shardId + 1 for shardId in answered)
    assert len(run.observations) == len(answered)
    # No task left running: every shard task had ended when the fan-out returned.
    assert run.taskStates == {shardId: (True, shardId in shards.cancelled) for shardId in everyShard}
    assert (result["stragglersLeft"], run.aliveShardTasks) == (0, 0)
    assert result["usedTimeout"] == timeout
    if stragglers:
        assert result["elapsedSeconds"] >= timeout - 1e-6


def test_fanOut_with_a_generous_timeout_matches_the_draws() -> None:
    async def fanOut() -> l31.FanOutResult:
        tracker = l31.LatencyTracker(defaultTimeout=5.0)
        return await l31.fanOutWithAdaptiveTimeout("q07", 6, tracker, seed=9, timeScale=0.01)

    watched = l31.runWatched(fanOut())
    draws = [shardDraw(shardId, "q07", 9) for shardId in range(6)]
    result = watched.result
    assert result["shardsTimedOut"] == 0
    assert result["shardsFailed"] == sum(fails for _, fails, _ in draws)
    assert result["shardsResponded"] == 6 - result["shardsFailed"]
    assert result["totalRecords"] == sum(records for _, fails, records in draws if not fails)
    assert watched.loopProblems == ()


@pytest.fixture(scope="module")
def run2() -> l31.Exercise2Result:
    return l31.runExercise2(l31.Exercise2Config(queries=6, timeScale=0.02), seed=5)


def test_exercise2_classifies_each_shard_by_its_draw(run2: l31.Exercise2Result) -> None:
    result = run2
    observed = 0
    for index, query in enumerate(result.queries):
        assert query["query"] == f"q0{index + 1}"
        counts = (query["shardsResponded"], query["shardsTimedOut"], query["shardsFailed"])
        assert sum(counts) == 6
        # The spec's default (0.5 s, at this time scale) exactly while fewer than 5 latencies were seen.
        assert (query["usedTimeout"] == 0.5 * 0.02) is (observed < 5)
        observed = min(20, observed + query["shardsResponded"])
        # A shard drawn past the deadline never answers; one inside it answers unless the loop stalled.
        draws = [shardDraw(shardId, query["query"], 5) for shardId in range(6)]
        inTime = [(fails, records) for latency, fails, records in draws if latency * 0.02 <= query["usedTimeout"]]
        assert query["shardsTimedOut"] >= 6 - len(inTime)
        assert query["shardsFailed"] <= sum(fails for fails, _ in inTime)
        answering = [records for fails, records in inTime if not fails]
        assert query["shardsResponded"] <= len(answering)
        if query["shardsTimedOut"] == 6 - len(inTime):
            assert (query["shardsResponded"], query["totalRecords"]) == (len(answering), sum(answering))
    assert result.queries[0]["usedTimeout"] == 0.5 * 0.02
    assert result.liveShardTasks == 0
    assert result.loopProblems == ()
    lines = l31.formatExercise2(result).splitlines()
    assert [line.split()[0] for line in lines if line.startswith("q0")] == [f"q0{i}" for i in range(1, 7)]
    assert structuralHold(lab31.judge2(result))


# ============================================================================
# Exercise 3: the breaker against a model
# ============================================================================

Behaviour = Literal["ok", "error", "serviceTimeout", "hang", "cancel"]
PROBE_TIMEOUT = 0.0005


class BreakerModel:
    """The spec's transitions in a dozen lines, for comparison."""

    def __init__(self, threshold: int, reset: float, needed: int) -> None:
        self.threshold, self.reset, self.needed = threshold, reset, needed
        self.state = "closed"
        self.failureCount = 0
        self.lastFailureTime: float | None = None
        self.successCountInHalfOpen = 0
        self.transitions: list[tuple[str, str]] = []

    def move(self, target: str) -> None:
        self.transitions.append((self.state, target))
        self.state = target
        if target == "half_open":
            self.successCountInHalfOpen = 0
        if target == "closed":
            self.failureCount = 0

    def admit(self, now: float) -> bool:
        if self.state == "open":
            assert self.lastFailureTime is not None
            if now - self.lastFailureTime < self.reset:
                return False
            self.move("half_open")
        return True

    def succeed(self) -> None:
        if self.state == "half_open":
            self.successCountInHalfOpen += 1
            if self.successCountInHalfOpen >= self.needed:
                self.move("closed")
        else:
            self.failureCount = 0

    def fail(self, now: float) -> None:
        self.lastFailureTime = now
        if self.state == "half_open":
            self.move("open")
        else:
            self.failureCount += 1
            if self.failureCount >= self.threshold:
                self.move("open")


async def drive(breaker: l31.AsyncCircuitBreaker, behaviour: Behaviour, probe: bool) -> str:
    """One call of ``behaviour`` through the breaker; the name of how it ended."""
    entered = asyncio.Event()

    async def service() -> str:
        entered.set()
        if behaviour == "error":
            raise RuntimeError("service degraded")
        if behaviour == "serviceTimeout":
            raise TimeoutError("service hung")
        if behaviour in {"hang", "cancel"}:
            await asyncio.Event().wait()
        return "ok"

    task = asyncio.create_task(breaker.call(service))
    for _ in range(100):
        if entered.is_set() or task.done():
            break
        await asyncio.sleep(0)
    if behaviour == "hang" and probe:
        await asyncio.wait({task}, timeout=5.0)
    if not task.done():
        task.cancel()
    await asyncio.wait({task}, timeout=5.0)
    if task.cancelled():
        return "cancelled"
    error = task.exception()
    return "ok" if error is None else type(error).__name__


class AsyncBreakerMachine(RuleBasedStateMachine):
    """Any sequence of successes, failures, timeouts, cancellations and clock advances."""

    threshold = 3
    reset = 2.0
    needed = 1

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.changes: list[l31.StateChange] = []
        self.loop = asyncio.new_event_loop()
        self.breaker = l31.AsyncCircuitBreaker(
            self.threshold,
            self.reset,
            PROBE_TIMEOUT,
            halfOpenSuccesses=self.needed,
            clock=lambda: self.now,
            onStateChange=self.changes.append,
        )
        self.model = BreakerModel(self.threshold, self.reset, self.needed)

    def teardown(self) -> None:
        self.loop.close()

    def expect(self, behaviour: Behaviour) -> tuple[str, bool]:
        if not self.model.admit(self.now):
            return "CircuitOpenError", False
        probe = self.model.state == "half_open"
        if behaviour == "ok":
            self.model.succeed()
            return "ok", probe
        if behaviour == "error":
            self.model.fail(self.now)
            return "RuntimeError", probe
        if behaviour == "serviceTimeout":
            self.model.fail(self.now)
            return "TimeoutError", probe
        if behaviour == "hang" and probe:
            self.model.fail(self.now)
            return "ProbeTimeoutError", probe
        return "cancelled", probe

    @rule(behaviour=st.sampled_from(["ok", "error", "serviceTimeout", "hang", "cancel"]))
    def call(self, behaviour: Behaviour) -> None:
        expected, probe = self.expect(behaviour)
        assert self.loop.run_until_complete(drive(self.breaker, behaviour, probe)) == expected

    @rule(seconds=st.one_of(st.floats(0.0, 3.0), st.just(2.0)))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @invariant()
    def agreesWithModel(self) -> None:
        stats = self.breaker.statistics()
        assert self.breaker.state == self.model.state
        assert self.breaker.failureCount == self.model.failureCount
        assert self.breaker.lastFailureTime == self.model.lastFailureTime
        assert self.breaker.successCountInHalfOpen == self.model.successCountInHalfOpen
        assert [(str(c.previous), str(c.current)) for c in self.changes] == self.model.transitions
        assert not stats.probeInFlight
        assert stats.admitted == stats.successes + stats.failures + stats.released
        assert stats.stale == 0


class TwoProbeBreakerMachine(AsyncBreakerMachine):
    """Threshold 1 and two successful probes to close: the same model, other parameters."""

    threshold = 1
    reset = 0.5
    needed = 2


AsyncBreakerMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=25)
TwoProbeBreakerMachine.TestCase.settings = settings(max_examples=20, stateful_step_count=25)
TestAsyncBreaker = AsyncBreakerMachine.TestCase
TestTwoProbeBreaker = TwoProbeBreakerMachine.TestCase


# A breaker op: a call that succeeds or fails, a clock advance, or "reset": an advance of exactly resetTimeoutSeconds.
# Advances in quarter seconds: sums are exact in binary, so the clock often lands on the reset time itself.
BREAKER_OPS = st.one_of(
    st.sampled_from(["ok", "error", "reset"]), st.integers(0, 12).map(lambda quarters: quarters / 4)
)


@given(st.integers(1, 4), st.sampled_from([0.5, 1.0, 2.0]), st.lists(BREAKER_OPS, max_size=40))
def test_sync_and_async_breakers_follow_the_spec_model(threshold: int, reset: float, ops: list[str | float]) -> None:
    now = [0.0]
    syncChanges: list[l31.StateChange] = []
    asyncChanges: list[l31.StateChange] = []
    sync = l31.CircuitBreaker(threshold, reset, clock=lambda: now[0], onStateChange=syncChanges.append)
    async_ = l31.AsyncCircuitBreaker(threshold, reset, clock=lambda: now[0], onStateChange=asyncChanges.append)
    model = BreakerModel(threshold, reset, 1)

    def work(op: str) -> str:
        if op == "error":
            raise RuntimeError(op)
        return op

    async def awork(op: str) -> str:
        return work(op)

    def expect(op: str) -> str:
        if not model.admit(now[0]):
            return "CircuitOpenError"
        if op == "ok":
            model.succeed()
            return "ok"
        model.fail(now[0])
        return "RuntimeError"

    async def run() -> None:
        for op in ops:
            if isinstance(op, float) or op == "reset":
                now[0] += reset if isinstance(op, str) else op
                continue
            outcomes: list[str] = []
            try:
                outcomes.append(sync.call(work, op))
            except (RuntimeError, l31.CircuitOpenError) as error:
                outcomes.append(type(error).__name__)
            try:
                outcomes.append(await async_.call(awork, op))
            except (RuntimeError, l31.CircuitOpenError) as error:
                outcomes.append(type(error).__name__)
            assert outcomes == [expect(op)] * 2
            for breaker in (sync, async_):
                facts = (breaker.state, breaker.failureCount, breaker.lastFailureTime, breaker.successCountInHalfOpen)
                assert facts == (model.state, model.failureCount, model.lastFailureTime, model.successCountInHalfOpen)

    asyncio.run(run())
    assert [(str(c.previous), str(c.current)) for c in syncChanges] == model.transitions
    assert syncChanges == asyncChanges
    assert sync.statistics() == async_.statistics()


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def failing() -> None:
    raise RuntimeError("down")


async def tripBreaker(breaker: l31.AsyncCircuitBreaker) -> None:
    """Fail once through a threshold-1 breaker: it opens."""
    with pytest.raises(RuntimeError, match=r"^down$"):
        await breaker.call(failing)
    assert breaker.state == "open"


def test_half_open_admits_one_probe_and_rejects_concurrent_callers() -> None:
    clock = FakeClock()
    breaker = l31.AsyncCircuitBreaker(1, 2.0, 5.0, clock=clock)

    async def scenario() -> None:
        await tripBreaker(breaker)
        clock.now = 2.0
        release = asyncio.Event()

        async def slow() -> str:
            await release.wait()
            return "answer"

        probe = asyncio.create_task(breaker.call(slow))
        await asyncio.sleep(0)
        assert breaker.state == "half_open"
        others = await asyncio.gather(*(breaker.call(slow) for _ in range(5)), return_exceptions=True)
        assert all(isinstance(o, l31.CircuitOpenError) for o in others)
        assert breaker.statistics().probeInFlight
        release.set()
        assert await asyncio.wait_for(probe, timeout=5.0) == "answer"

    asyncio.run(scenario())
    stats = breaker.statistics()
    assert breaker.state == "closed"
    assert stats.rejected == 5
    assert not stats.probeInFlight
    assert breaker.successCountInHalfOpen == 1


def test_a_cancelled_probe_frees_the_permit_and_counts_nothing() -> None:
    clock = FakeClock()
    breaker = l31.AsyncCircuitBreaker(1, 2.0, 5.0, clock=clock)

    async def scenario() -> None:
        await tripBreaker(breaker)
        clock.now = 3.0
        probe = asyncio.create_task(breaker.call(asyncio.sleep, 60.0))
        await asyncio.sleep(0)
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        assert breaker.state == "half_open"
        assert await breaker.call(asyncio.sleep, 0.0, "second probe") == "second probe"

    asyncio.run(scenario())
    stats = breaker.statistics()
    assert breaker.state == "closed"
    assert stats.released == 1
    assert stats.failures == 1


def test_outer_wait_for_is_not_a_failure_but_the_probe_timeout_is() -> None:
    clock = FakeClock()
    breaker = l31.AsyncCircuitBreaker(2, 2.0, 0.001, clock=clock)

    async def scenario() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(breaker.call(asyncio.sleep, 60.0), timeout=0.001)
        assert breaker.failureCount == 0
        assert breaker.statistics().released == 1
        for _ in range(2):
            with pytest.raises(RuntimeError):
                await breaker.call(failing)
        assert breaker.state == "open"
        clock.now = 2.5
        with pytest.raises(l31.ProbeTimeoutError, match=r"^probe exceeded 0.001 s$"):
            await asyncio.wait_for(breaker.call(asyncio.sleep, 60.0), timeout=5.0)

    asyncio.run(scenario())
    assert breaker.state == "open"
    assert breaker.lastFailureTime == 2.5
    assert issubclass(l31.ProbeTimeoutError, TimeoutError)


def test_open_circuit_fails_fast_until_the_reset_time() -> None:
    clock = FakeClock()
    changes: list[l31.StateChange] = []
    breaker = l31.AsyncCircuitBreaker(clock=clock, onStateChange=changes.append)

    async def scenario() -> None:
        for _ in range(3):
            with pytest.raises(RuntimeError):
                await breaker.call(failing)
        clock.now = 1.999
        with pytest.raises(l31.CircuitOpenError, match=r"^circuit open: probe allowed in 0.001 s$"):
            await breaker.call(asyncio.sleep, 0.0)
        clock.now = 2.0
        await breaker.call(asyncio.sleep, 0.0)

    asyncio.run(scenario())
    assert [(c.previous, c.current) for c in changes] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert [c.at for c in changes] == [0.0, 2.0, 2.0]
    assert changes[0].reason == "3 consecutive failures"


def test_an_outcome_from_before_a_transition_is_stale() -> None:
    clock = FakeClock()
    breaker = l31.AsyncCircuitBreaker(1, 2.0, None, clock=clock)

    async def scenario() -> None:
        release = asyncio.Event()

        async def slowFailure() -> None:
            await release.wait()
            raise RuntimeError("late")

        slow = asyncio.create_task(breaker.call(slowFailure))
        await asyncio.sleep(0)
        await tripBreaker(breaker)
        clock.now = 2.0
        await breaker.call(asyncio.sleep, 0.0)
        assert breaker.state == "closed"
        release.set()
        with pytest.raises(RuntimeError, match=r"^late$"):
            await slow

    asyncio.run(scenario())
    assert breaker.state == "closed"
    assert breaker.failureCount == 0
    assert breaker.statistics().stale == 1


def test_a_listener_error_does_not_leak_the_probe_permit() -> None:
    clock = FakeClock()
    raising = [True]

    def listener(change: l31.StateChange) -> None:
        if change.current == "half_open" and raising[0]:
            raise ValueError("listener broke")

    breaker = l31.AsyncCircuitBreaker(1, 2.0, None, clock=clock, onStateChange=listener)

    async def scenario() -> None:
        await tripBreaker(breaker)
        clock.now = 2.0
        with pytest.raises(ValueError, match=r"^listener broke$"):
            await breaker.call(asyncio.sleep, 0.0)
        raising[0] = False
        await breaker.call(asyncio.sleep, 0.0)

    asyncio.run(scenario())
    assert breaker.state == "closed"


def test_breaker_states_are_the_spec_strings() -> None:
    assert [str(s) for s in l31.BreakerState] == ["closed", "open", "half_open"]
    breaker = l31.AsyncCircuitBreaker()
    assert breaker.state == "closed"
    assert breaker.lastFailureTime is None
    with pytest.raises(ConfigError, match=r"^failureThreshold must be >= 1 and <= 1000000, got 0$"):
        l31.AsyncCircuitBreaker(failureThreshold=0)


def serviceBehaviour(seed: int, requestId: int) -> str:
    """Requirement 3's split from the seeded draw ``FlakyAsyncService.behaviour`` makes: [0, 0.6) ok,
    [0.6, 0.9) error, [0.9, 1) hang."""
    draw = makeRng(seed, 31, 3, requestId).random()
    return "ok" if draw < 0.6 else "error" if draw < 0.9 else "hang"


def test_flaky_service_draws_sixty_thirty_ten_from_the_seed() -> None:
    service = l31.FlakyAsyncService(seed=11)
    behaviours = [str(service.behaviour(i)) for i in range(3000)]
    assert behaviours == [serviceBehaviour(11, i) for i in range(3000)]
    assert behaviours[:200] != [serviceBehaviour(12, i) for i in range(200)]
    share = {b: behaviours.count(b) / len(behaviours) for b in ("ok", "error", "hang")}
    assert share == {
        "ok": pytest.approx(0.6, abs=0.03),
        "error": pytest.approx(0.3, abs=0.03),
        "hang": pytest.approx(0.1, abs=0.03),
    }


def test_flaky_service_answers_fails_or_hangs_then_raises() -> None:
    service = l31.FlakyAsyncService(seed=11, hangSeconds=0.01)
    kinds = [serviceBehaviour(11, i) for i in range(100)]
    ids = [kinds.index(kind) for kind in ("ok", "error", "hang")]

    async def fetch(requestId: int) -> tuple[float, object]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            answer: object = await service.fetch(requestId)
        except (RuntimeError, TimeoutError) as error:
            answer = error
        return loop.time() - started, answer

    async def fetchEach() -> list[tuple[float, object]]:
        return [await fetch(requestId) for requestId in ids]

    (_, ok), (_, error), (hung, timeout) = asyncio.run(fetchEach())
    assert ok == {"requestId": ids[0], "payload": f"data_{ids[0]}"}
    assert isinstance(error, RuntimeError)
    assert str(error) == "service degraded"
    assert isinstance(timeout, asyncio.TimeoutError)
    assert hung >= 0.01 - 1e-6
    assert service.received == tuple(ids)


@pytest.fixture(scope="module")
def run3() -> tuple[l31.Exercise3Result, list[str]]:
    lines: list[str] = []
    return l31.runExercise3(l31.Exercise3Config(timeScale=0.01), seed=4, log=lines.append), lines


def test_exercise3_harness_follows_the_spec_rules_call_by_call(run3: tuple[l31.Exercise3Result, list[str]]) -> None:
    result, lines = run3
    reset = result.config.scaled(result.config.resetTimeoutSeconds)
    assert sum(line.startswith("call") for line in lines) == 30
    # The spec's rules replayed on the seeded behaviours. When an open circuit let a call through (a probe,
    # the reset time having passed) is read from the run: the clock is the wall clock. A closed circuit's hang
    # ends at the outer 10 ms (uncounted); a probe's at the breaker's 5 ms probe timeout (counted), or at the
    # outer one if the loop woke late.
    state, failures = "closed", 0
    transitions: list[tuple[str, str]] = []

    def move(target: str) -> None:
        nonlocal state
        transitions.append((state, target))
        state = target

    for record in result.calls:
        behaviour = serviceBehaviour(4, record.requestId)
        assert record.behaviour == behaviour
        source = ""
        if state == "open" and record.outcome is l31.CallOutcome.CIRCUIT_OPEN:
            outcome = "circuit open"
        else:
            if state == "open":
                move("half_open")
            probe = state == "half_open"
            if behaviour == "ok":
                outcome, failures = "success", 0
                if probe:
                    move("closed")
            elif behaviour == "error" or record.timeoutSource == "probe":
                outcome, failures = ("service error", failures) if behaviour == "error" else ("timeout", failures)
                source = "" if behaviour == "error" else "probe"
                failures += not probe
                if probe or failures >= 3:
                    move("open")
            else:
                outcome, source = "timeout", "outer"
        facts = (str(record.outcome), record.timeoutSource, str(record.stateAfter), record.failureCount)
        assert facts == (outcome, source, state, failures), record
        assert record.reachedService is (outcome != "circuit open")
    # Calls 0-2 fail ("service degraded" three times): the circuit opens at the third.
    assert [str(r.stateAfter) for r in result.calls[:3]] == ["closed", "closed", "open"]
    assert [(str(c.previous), str(c.current)) for c in result.changes] == transitions
    for opened, probed in itertools.pairwise(result.changes):
        if probed.current == "half_open":
            assert probed.at - opened.at >= reset
    rejected = sum(r.outcome is l31.CallOutcome.CIRCUIT_OPEN for r in result.calls)
    assert result.serviceCalls == 30 - rejected
    assert result.statistics.rejected == rejected
    assert result.loopProblems == ()
    assert structuralHold(lab31.judge3(result))


def test_exercise3_config_rejects_rates_above_one() -> None:
    with pytest.raises(ConfigError, match=r"^errorRate must be >= 0.0 and <= 0.30000000000000004, got 0.5$"):
        l31.Exercise3Config(successRate=0.7, errorRate=0.5)


# ============================================================================
# Exercise 4
# ============================================================================

# Half the stores fail: at seed 2 the breaker opens in batch 2, fails stores fast, probes in batch 6
# and closes; at seed 6 it first opens in batch 7, the first of the extra batches.
SEED4 = 2
SMALL4 = l31.Exercise4Config(
    sizes=(1, 3),
    processWorkers=2,
    storeWorkers=3,
    batches=6,
    batchSize=6,
    storeFailureProbability=0.5,
    maxExtraBatches=4,
    timeScale=0.1,
)


@pytest.fixture(scope="module")
def inline4() -> l31.Exercise4Result:
    """Exercise 4 with normalisation inline: the seeded figures every executor must reproduce."""
    return l31.runExercise4(SMALL4, seed=SEED4, executor="inline")


def reading(sensorId: int, normalized: float) -> l31.NormalizedReading:
    return {"sensorId": sensorId, "rawValue": 50.0 + 15.0 * normalized, "normalized": normalized, "signal": 0.0}


def test_stages_compute_the_spec_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    normalized = l31.normalizeReading({"sensorId": 3, "rawValue": 65.0}, iterations=2)
    # z = (65 - 50) / 15 = 1; angles 0 and 1/2: (sin 0 cos 0 + sin 0.5 cos 0.5) / 2 = sin(1) / 4.
    assert normalized == {"sensorId": 3, "rawValue": 65.0, "normalized": 1.0, "signal": pytest.approx(math.sin(1) / 4)}
    assert l31.normalizeReading({"sensorId": 4, "rawValue": 20.0}, iterations=1)["normalized"] == -2.0
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    assert l31.storeReading(normalized) == {"stored": True, "sensorId": 3}
    with pytest.raises(l31.StoreError, match=r"^store failed for sensor 3$"):
        l31.storeReading(normalized, failureProbability=1.0)
    assert slept == [0.02, 0.02]


def test_fetchSensorReading_sleeps_and_reads_its_seeded_draw() -> None:
    def draw(sensorId: int) -> tuple[float, float]:
        rng = makeRng(5, 31, 4, sensorId)
        return rng.uniform(0.08, 0.12), rng.gauss(50.0, 15.0)

    async def fetch(sensorId: int) -> tuple[float, l31.RawReading]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        raw = await l31.fetchSensorReading(sensorId, seed=5, timeScale=0.01)
        return loop.time() - started, raw

    async def fetchAll() -> list[tuple[float, l31.RawReading]]:
        return await asyncio.gather(*(fetch(sensorId) for sensorId in range(4)))

    for sensorId, (seconds, raw) in enumerate(asyncio.run(fetchAll())):
        delay, value = draw(sensorId)
        assert raw == {"sensorId": sensorId, "rawValue": value}
        assert seconds >= delay * 0.01 - 1e-6


def test_aggregateResults_gives_the_population_mean_and_std() -> None:
    # Mean 5; squared deviations 9 1 1 1 0 0 4 16 = 32; 32 / 8 = 4: std 2 (the sample std would be 2.14).
    values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
    assert l31.aggregateResults([reading(i, v) for i, v in enumerate(values)]) == {"count": 8, "mean": 5.0, "std": 2.0}
    assert l31.aggregateResults([reading(0, 3.5)]) == {"count": 1, "mean": 3.5, "std": 0.0}
    assert l31.aggregateResults([]) == {"count": 0, "mean": 0.0, "std": 0.0}


@settings(max_examples=30)
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=30))
def test_aggregateResults_matches_statistics(values: list[float]) -> None:
    aggregate = l31.aggregateResults([reading(i, v) for i, v in enumerate(values)])
    assert aggregate["count"] == len(values)
    assert aggregate["mean"] == pytest.approx(statistics.mean(values), abs=1e-9)
    assert aggregate["std"] == pytest.approx(statistics.pstdev(values), abs=1e-6)


def storeFails(sensorId: int, seed: int, probability: float = 0.15) -> bool:
    """What ``storeReading`` should do for a sensor, drawn as its docstring says."""
    return makeRng(seed, 31, 4, "store", sensorId).random() < probability


def test_storeReading_fails_15_percent_from_its_own_seeded_draw() -> None:
    def fails(sensorId: int, seed: int) -> bool:
        reading: l31.NormalizedReading = {"sensorId": sensorId, "rawValue": 50.0, "normalized": 0.0, "signal": 0.0}
        try:
            l31.storeReading(reading, failureProbability=0.15, seed=seed, seconds=0.0)
        except l31.StoreError:
            return True
        return False

    drawn = [fails(sensorId, 7) for sensorId in range(1000)]
    assert drawn == [storeFails(sensorId, 7) for sensorId in range(1000)]
    assert sum(drawn) / 1000 == pytest.approx(0.15, abs=0.03)
    assert drawn[:200] != [fails(sensorId, 8) for sensorId in range(200)]


def expectedBatches(config: l31.Exercise4Config, seed: int) -> list[tuple[int, int, int, int, str]]:
    """The spec's breaker rules replayed by hand: per batch (stored, failed, fast-failed, state after).

    A batch's stores are admitted in sensor order at the batch's time on the schedule, then their
    outcomes arrive in sensor order; an outcome after the state changed within the batch moves nothing.
    Batches go on past the spec's until one has failed a store fast (or the extra batches run out).
    """
    state, failures, lastFailure = "closed", 0, 0.0
    rows: list[tuple[int, int, int, int, str]] = []
    for batch in range(1, config.batches + config.maxExtraBatches + 1):
        if batch > config.batches and any(row[3] for row in rows):
            break
        now = batch * config.batchIntervalSeconds
        if state == "open" and now - lastFailure >= config.breakerResetSeconds:
            state = "half_open"
        sensors = [batch * 1000 + i for i in range(config.batchSize)]
        admitted = {"closed": sensors, "half_open": sensors[:1], "open": []}[state]
        admittedIn = state
        stored = failed = 0
        for sensorId in admitted:
            fails = storeFails(sensorId, seed, config.storeFailureProbability)
            stored, failed = stored + (not fails), failed + fails
            if state != admittedIn:
                continue
            if fails:
                lastFailure = now
                failures += admittedIn == "closed"
                if admittedIn == "half_open" or failures >= config.breakerThreshold:
                    state = "open"
            else:
                failures = 0
                state = "closed"
        rows.append((batch, stored, failed, len(sensors) - len(admitted), state))
    return rows


def batchFacts(result: l31.Exercise4Result) -> list[tuple[int, int, int, int, str]]:
    return [(r.batch, r.successes, r.failures, r.fastFails, str(r.stateAfter)) for r in result.batches]


def test_exercise4_breaker_follows_the_spec_rules_in_sensor_order(inline4: l31.Exercise4Result) -> None:
    expected = expectedBatches(SMALL4, SEED4)
    assert batchFacts(inline4) == expected
    assert [row[4] for row in expected] == ["closed", "open", "open", "open", "open", "closed"]
    assert [row[3] for row in expected] == [0, 0, 6, 6, 6, 5]
    assert inline4.extraBatches == len(expected) - SMALL4.batches
    assert [r.clockSeconds for r in inline4.batches] == [r[0] * 0.5 for r in expected]
    stats = inline4.breakerStatistics
    assert stats.admitted == stats.successes + stats.failures
    assert stats.rejected == inline4.fastFails
    assert structuralHold(lab31.judge4(inline4))
    # Seed 6: the breaker first opens in batch 7, the first of the extra batches, and fails stores fast in 8.
    late, _ = breakerBatches(SMALL4, 6)
    assert [(r.batch, r.successes, r.failures, r.fastFails, str(r.stateAfter)) for r in late] == expectedBatches(
        SMALL4, 6
    )
    assert [(r.batch, str(r.stateAfter), r.fastFails) for r in late[6:]] == [(7, "open", 0), (8, "open", 6)]


BATCH_CONFIGS = st.builds(
    l31.Exercise4Config,
    sizes=st.just((1,)),
    batches=st.integers(1, 6),
    batchSize=st.integers(1, 8),
    storeFailureProbability=st.sampled_from([0.15, 0.3, 0.5, 0.7, 0.9]),
    breakerThreshold=st.integers(1, 4),
    breakerResetSeconds=st.sampled_from([0.5, 1.0, 2.0]),
    batchIntervalSeconds=st.sampled_from([0.25, 0.5, 1.0]),
    maxExtraBatches=st.integers(0, 3),
    timeScale=st.just(0.001),
)


def breakerBatches(
    config: l31.Exercise4Config, seed: int, changes: list[l31.StateChange] | None = None
) -> tuple[list[l31.BatchRow], l31.BreakerStatistics]:
    """Requirement 5's batches alone, inline, through a fresh breaker on the batch schedule."""
    clock = l31.BatchClock(config.batchIntervalSeconds)
    listener = None if changes is None else changes.append
    breaker = l31.CircuitBreaker(
        config.breakerThreshold, config.breakerResetSeconds, clock=clock, onStateChange=listener
    )
    normalize = l31.normalizeReading
    with pytest.MonkeyPatch.context() as patch:
        # The CPU stage's 5,000 rounds change nothing the breaker sees: one round will do.
        patch.setattr(l31, "normalizeReading", lambda reading: normalize(reading, 1))
        rows = l31.runBreakerBatches(config, (InlineExecutor(), InlineExecutor()), breaker, clock, seed)
    return rows, breaker.statistics()


@settings(max_examples=25)
@given(BATCH_CONFIGS, st.integers(0, 10_000))
def test_breaker_batches_follow_the_spec_rules_over_the_seeded_failures(config: l31.Exercise4Config, seed: int) -> None:
    changes: list[l31.StateChange] = []
    rows, stats = breakerBatches(config, seed, changes)
    expected = expectedBatches(config, seed)
    assert [(r.batch, r.successes, r.failures, r.fastFails, str(r.stateAfter)) for r in rows] == expected
    assert [r.clockSeconds for r in rows] == [r.batch * config.batchIntervalSeconds for r in rows]
    assert all(r.total == config.batchSize for r in rows)
    assert (stats.admitted, stats.rejected) == (
        sum(r.successes + r.failures for r in rows),
        sum(r.fastFails for r in rows),
    )
    assert stats.admitted == stats.successes + stats.failures
    opened = [c for c in changes if c.current is l31.BreakerState.OPEN and c.previous is l31.BreakerState.CLOSED]
    assert all(c.reason == f"{config.breakerThreshold} consecutive failures" for c in opened)


def test_exercise4_extra_batches_run_until_a_store_fails_fast() -> None:
    config = replace(SMALL4, sizes=(1,), batches=1, storeFailureProbability=0.0, maxExtraBatches=2)
    never = l31.runExercise4(config, seed=SEED4, executor="inline")
    assert [r.batch for r in never.batches] == [1, 2, 3]
    assert never.fastFails == 0
    assert "the breaker never failed a store fast" in " ".join(l31.formatExercise4(never).split())


EXECUTORS4: list[tuple[ExecutorKind, StartMethod | None]] = [
    *(("process", method) for method in START_METHODS),
    ("thread", None),
]


@pytest.mark.parametrize(("executor", "startMethod"), EXECUTORS4)
def test_exercise4_same_seed_same_breaker_under_every_executor(
    executor: ExecutorKind, startMethod: StartMethod | None, inline4: l31.Exercise4Result
) -> None:
    with noWarnings():
        result = l31.runExercise4(SMALL4, seed=SEED4, executor=executor, startMethod=startMethod)
    assert all(row.aggregatesMatch for row in result.rows)
    assert [row.aggregate for row in result.rows] == [row.aggregate for row in inline4.rows]
    assert [row.aggregate["count"] for row in result.rows] == [1, 3]
    assert result.batches == inline4.batches
    assert result.changes == inline4.changes
    assert result.breakerStatistics == inline4.breakerStatistics
    assert sum(row.total for row in result.batches) == SMALL4.batchSize * len(inline4.batches)
    assert structuralHold(lab31.judge4(result))


# ============================================================================
# A worker killed from outside: one line naming the stage and how far it got (issue 14)
# ============================================================================


def killSelf() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def twoThenKilled(pool: l31.TaskTally) -> None:
    await runInExecutor(pool, abs, -1)
    await runInExecutor(pool, abs, -2)
    await runInExecutor(pool, killSelf)


@pytest.mark.parametrize("startMethod", ["fork", "spawn"])
def test_stageTally_names_the_stage_and_the_work_done(startMethod: StartMethod) -> None:
    with (
        pytest.raises(WorkerLostError) as raised,
        executorScope("process", 2, startMethod) as pool,
        l31.stageTally(pool, "normalize", 3, "readings normalised") as tally,
    ):
        asyncio.run(twoThenKilled(tally))
    assert str(raised.value) == (
        "a worker process died (SIGKILL) during stage normalize; 2 of 3 readings normalised; no result"
    )
    assert multiprocessing.active_children() == []


# What exercise 4 may have been doing when the worker died: starting its pool, or normalising.
KILLED4 = re.compile(
    r"l31\.py: a worker process died \(SIGKILL\) during stage "
    r"(start-up|normalize \((\d+) sensors\)|normalize \(batch \d+\)); (\d+) of (\d+) readings normalised; no result"
)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
@pytest.mark.parametrize("startMethod", ["fork", "spawn"])
def test_a_worker_killed_mid_run_ends_exercise4_in_one_line(
    startMethod: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A temporary folder of the run's own: on a shared machine, others' runs leave theirs in /tmp.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    args = [sys.executable, "l31.py", "--ex", "4", "--quick", "--start-method", startMethod]
    outcome = inject(args, "sigkill-worker", 0.6, cwd=str(ROOT))
    assert (outcome.finishedFirst, outcome.note) == (False, "")
    assert (outcome.status, outcome.traceback, len(outcome.stderrLines)) == (1, False, 1)
    found = KILLED4.fullmatch(outcome.stderrLines[0])
    assert found is not None, outcome.stderrLines
    stage, sensors, done, total = found.groups()
    assert int(done) <= int(total)
    assert int(total) == (88 if stage == "start-up" else int(sensors or 12))
    assert problems(outcome, "l31.py") == []


# ============================================================================
# Dask: the CPU tier on a LocalCluster gives the process pool's seeded results
# ============================================================================


@pytest.mark.dask
def test_exercise1_on_a_dask_cluster_matches_the_process_pool(daskResults: dict[str, Any]) -> None:
    onDask = daskResults["l31"]
    onPool = l31.runExercise1(daskrun.L31_CONFIG, seed=daskrun.L31_SEED, executor="process")
    assert onDask["matches"]
    assert onDask["results"] == [dict(r) for r in onPool.results]


# ============================================================================
# Reports: what portability's bare runs do not see (their lines' width it checks)
# ============================================================================


def test_every_claims_table_fits_100_columns(
    inline1: l31.Exercise1Result,
    run2: l31.Exercise2Result,
    run3: tuple[l31.Exercise3Result, list[str]],
    inline4: l31.Exercise4Result,
) -> None:
    for number, result in enumerate((inline1, run2, run3[0], inline4), start=1):
        claims = lab31.LAB.exercise(number).claims(result)
        assert [line for line in formatClaims(claims).splitlines() if len(line) > 100] == [], f"exercise {number}"


def test_the_breaker_table_adds_up_and_says_when_it_opened(inline4: l31.Exercise4Result) -> None:
    expected = expectedBatches(SMALL4, SEED4)
    stored = sum(row[1] for row in expected)
    failed = sum(row[2] for row in expected)
    fastFailed = sum(row[3] for row in expected)
    text = l31.formatExercise4(inline4)
    (totals,) = [line.split() for line in text.splitlines() if line.startswith("all ")]
    assert totals == ["all", str(stored), str(failed), str(fastFailed), str(6 * len(expected)), "stores"]
    assert sum("fast-failed" in line for line in text.splitlines()) == 1
    # Opened in batch 2 (state after: open), failed stores fast from batch 3 on: 6 + 6 + 6 + 5.
    assert (fastFailed, len(expected)) == (23, 6)
    assert (
        "The breaker opened in batch 2 and failed 23 stores fast from batch 3 on (none reached storage); 0 "
        "batch(es) beyond the spec's 6 were needed." in " ".join(text.split())
    )


def test_main_lists_and_rejects_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert l31.main(["--list"]) == 0
    assert "Circuit breaker implementation" in capsys.readouterr().out
    assert l31.main(["--ex", "9"]) == 2
