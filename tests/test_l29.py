"""Lecture 29: results, accounting and determinism, read from result objects."""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import multiprocessing
import re
import signal
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar

import daskrun
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import l29
from lab import lecture29 as lab29
from lab.faults import inject, problems
from shared import (
    ConfigError,
    Exercise,
    InlineExecutor,
    RunOptions,
    StartMethod,
    Stopwatch,
    TaskExecutor,
    WorkerLostError,
    executorScope,
    silent,
    warmUp,
)

R = TypeVar("R")
P = ParamSpec("P")

ROOT = Path(__file__).resolve().parent.parent
START_METHODS = ["fork", "spawn", "forkserver"]
SMALL = l29.Exercise1Config(requests=4, valuesPerRequest=500, workers=2)


def test_analyzeRequest_computes_every_field() -> None:
    result = l29.analyzeRequest({"requestId": 7, "values": [0.25, 1.0]})
    assert result == {
        "requestId": 7,
        "mean": 0.625,
        "variance": 0.140625,
        "sumSqrt": 1.5,
        "riskScore": 1.5 / (0.625 * 2 + 1),
    }


def test_handleRequest_logs_dispatch_then_completion() -> None:
    lines: list[str] = []
    result = l29.runExercise1(SMALL, seed=1, executor="inline", log=lines.append)
    dispatches = [line for line in lines if line.endswith("dispatching")]
    completes = [line for line in lines if "complete, risk=" in line]
    assert len(dispatches) == len(completes) == SMALL.requests
    assert lines.index(dispatches[-1]) < lines.index(completes[0])
    assert result.dispatchedBeforeAnyCompleted


def test_exercise1_same_seed_same_figures() -> None:
    first = l29.runExercise1(SMALL, seed=3, executor="inline")
    second = l29.runExercise1(SMALL, seed=3, executor="inline")
    other = l29.runExercise1(SMALL, seed=4, executor="inline")
    assert first.rows == second.rows
    assert first.rows != other.rows
    assert [row.requestId for row in first.rows] == list(range(SMALL.requests))
    assert first.highRiskCount == sum(row.highRisk for row in first.rows)


@pytest.mark.parametrize("startMethod", START_METHODS)
def test_exercise1_process_pool_matches_inline(startMethod: StartMethod) -> None:
    pooled = l29.runExercise1(SMALL, seed=5, executor="process", startMethod=startMethod)
    inline = l29.runExercise1(SMALL, seed=5, executor="inline")
    assert pooled.rows == inline.rows
    assert pooled.matchesSequential
    assert pooled.coldSeconds > 0
    assert pooled.warmSeconds > 0


def test_exercise1_bound_is_min_of_requests_workers_cores() -> None:
    result = l29.runExercise1(SMALL, seed=2, executor="inline")
    assert result.bound == max(1, min(SMALL.requests, SMALL.workers, result.cores))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("requests", 0, r"^requests must be >= 1 and <= 10000, got 0$"),
        ("workers", 0, r"^workers must be >= 1 and <= 256, got 0$"),
        ("valuesPerRequest", -5, r"^valuesPerRequest must be >= 1 and <= 10000000, got -5$"),
    ],
)
def test_exercise1_config_rejects_bad_values(field: str, value: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        l29.Exercise1Config(**{field: value})


# ============================================================================
# Exercise 2 - producer-consumer with backpressure
# ============================================================================

STREAM = l29.Exercise2Config(totalRecords=10, latencyLow=0.001, latencyHigh=0.003, waitSeconds=5.0)


def test_transformRecord_is_the_log_of_the_sum_of_roots() -> None:
    assert l29.transformRecord({"recordId": 3, "data": [-4, 9, 0]}) == (3, round(math.log(5 + 1), 6))


def test_produceRecords_logs_each_put_and_ends_with_the_poison_pill() -> None:
    lines: list[str] = []
    queue: l29.PipelineQueue[l29.StreamItem] = l29.PipelineQueue(maxsize=50)

    async def produce() -> list[l29.StreamItem]:
        await l29.produceRecords(queue, 4, seed=1, latency=(0.001, 0.003), log=lines.append)
        return [queue.get_nowait() for _ in range(queue.qsize())]

    items = asyncio.run(produce())
    assert lines == [f"Producer: queue size before put = {n}/50" for n in range(5)]
    assert items[-1] is None
    records = [item for item in items if item is not None]
    assert [record["recordId"] for record in records] == [0, 1, 2, 3]
    assert all(len(record["data"]) == 1000 and min(record["data"]) >= -500 for record in records)
    assert all(max(record["data"]) <= 500 for record in records)
    assert records[2] == l29.makeRecord(1, 2, 1000, -500, 500)
    seen = queue.statistics()
    assert (seen.puts, seen.sizesBeforePut, seen.blockedSeconds, seen.producerWaiting) == (
        4,
        (0, 1, 2, 3, 4),
        0.0,
        False,
    )


def test_exercise2_accounts_for_every_record_and_respects_the_bound() -> None:
    result = l29.runExercise2(STREAM, seed=2, executor="thread")
    assert [run.maxsize for run in result.runs] == [5, 2, 20]
    assert all(run.consumer == "literal" for run in result.runs)
    assert [recordId for recordId, _ in result.expected] == list(range(STREAM.totalRecords))
    for run in result.runs:
        assert run.results == result.expected
        assert run.largestSize <= run.maxsize
        assert len(run.sizesBeforePut) == STREAM.totalRecords + 1
        assert max(run.sizesBeforePut) <= run.maxsize
        assert 0.0 <= run.meanSize <= run.largestSize
        # The spec's consumer takes each record at once: its queue never fills, the producer never waits.
        assert run.fullPuts == 0
        assert run.producerBlockedSeconds == 0.0
    assert result.averageResult == pytest.approx(statistics.fmean(v for _, v in result.expected))
    report = l29.formatExercise2(result)
    assert "Producer: queue size before put" not in report
    assert "maxsize 2 vs 20: the queue peaked at" in report


@pytest.mark.parametrize("startMethod", START_METHODS)
def test_exercise2_process_pool_gives_the_same_results(startMethod: StartMethod) -> None:
    config = replace(STREAM, totalRecords=6, comparedMaxsizes=(2,), workers=2)
    pooled = l29.runExercise2(config, seed=4, executor="process", startMethod=startMethod)
    assert [recordId for recordId, _ in pooled.expected] == list(range(6))
    assert all(run.results == pooled.expected for run in pooled.runs)


def _pipeline(
    consumer: l29.ConsumerKind, maxsize: int, storeSeconds: float, config: l29.Exercise2Config | None = None
) -> l29.QueueRun:
    """One run on a thread pool, a store of ``storeSeconds`` injected after each transform."""
    settings = config or replace(STREAM, totalRecords=8, latencyLow=0.0, latencyHigh=0.002)

    async def run() -> l29.QueueRun:
        with executorScope("thread", settings.workers) as pool:
            slow = lab29.ProbeExecutor(pool, storeSeconds)
            return await l29.runPipeline(settings.queue(maxsize), slow, settings, seed=5, consumer=consumer)

    return asyncio.run(run())


@settings(max_examples=12)
@given(
    consumer=st.sampled_from(["literal", "bounded"]),
    maxsize=st.integers(1, 4),
    storeSeconds=st.sampled_from([0.0, 0.004]),
)
def test_queue_never_holds_more_than_maxsize(consumer: l29.ConsumerKind, maxsize: int, storeSeconds: float) -> None:
    run = _pipeline(consumer, maxsize, storeSeconds)
    assert run.largestSize <= maxsize
    assert len(run.results) == 8
    assert [recordId for recordId, _ in run.results] == list(range(8))


def test_bounded_consumer_throttles_the_producer_behind_a_slow_store() -> None:
    # 2 in flight, 30 ms each: ~67 records/s against a producer ~1,000/s; the spec's consumer never waits.
    config = replace(STREAM, totalRecords=12, workers=2, latencyLow=0.0, latencyHigh=0.002)
    bounded = _pipeline("bounded", 2, 0.03, config)
    literal = _pipeline("literal", 2, 0.03, config)
    assert bounded.fullPuts >= 3
    assert bounded.producerBlockedSeconds > 0.03
    assert literal.fullPuts == 0


@pytest.mark.parametrize("consumer", ["literal", "bounded"])
def test_failed_consumer_stops_the_producer_with_a_clear_error(consumer: l29.ConsumerKind) -> None:
    pending: list[int] = []
    config = replace(STREAM, totalRecords=12, latencyLow=0.0, latencyHigh=0.002)

    async def run() -> None:
        with executorScope("thread", 2) as pool:
            queue = lab29.CrashingQueue(2, crashAfter=3, waitSeconds=config.waitSeconds, patienceSeconds=1.0)
            try:
                await l29.runPipeline(queue, lab29.ProbeExecutor(pool, 0.005), config, seed=6, consumer=consumer)
            finally:
                pending.append(len(asyncio.all_tasks()) - 1)

    with pytest.raises(l29.PipelineError, match=r"consumer crashed after 3 records \(injected\)") as caught:
        asyncio.run(run())
    assert caught.value.producerWaiting
    assert 3 <= caught.value.recordsPut < 12
    assert pending == [0]


def test_put_and_get_give_up_after_their_deadline() -> None:
    async def noConsumer() -> None:
        await l29.produceRecords(l29.PipelineQueue(maxsize=1, waitSeconds=0.05), 3, seed=1, log=silent)

    async def noProducer() -> None:
        await l29.consumeRecords(l29.PipelineQueue(maxsize=1, waitSeconds=0.05), InlineExecutor(), [])

    with pytest.raises(l29.PipelineError, match=r"^producer waited 0.05 s for queue space"):
        asyncio.run(noConsumer())
    with pytest.raises(l29.PipelineError, match=r"^consumer waited 0.05 s for a record"):
        asyncio.run(noProducer())


def test_consumers_collect_every_result_on_a_plain_asyncio_queue() -> None:
    records = [l29.makeRecord(3, recordId) for recordId in range(5)]
    expected = sorted(l29.transformRecord(record) for record in records)

    async def consume(bounded: bool) -> list[tuple[int, float]]:
        queue: asyncio.Queue[l29.StreamItem] = asyncio.Queue()
        for item in [*records, None]:
            queue.put_nowait(item)
        results: list[tuple[int, float]] = []
        with executorScope("thread", 2) as pool:
            if bounded:
                await l29.consumeRecordsBounded(queue, pool, results, maxInFlight=2)
            else:
                await l29.consumeRecords(queue, pool, results)
        return sorted(results)

    assert asyncio.run(consume(bounded=False)) == expected
    assert asyncio.run(consume(bounded=True)) == expected


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("totalRecords", 0, r"^totalRecords must be >= 1 and <= 100000, got 0$"),
        ("maxsize", 0, r"^maxsize must be >= 1 and <= 100000, got 0$"),
        ("latencyHigh", 0.001, r"^latencyHigh must be >= 0.005 and <= 10.0, got 0.001$"),
        ("comparedMaxsizes", (2, 0), r"^comparedMaxsizes item must be >= 1 and <= 100000, got 0$"),
    ],
)
def test_exercise2_config_rejects_bad_values(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        l29.Exercise2Config(**{field: value})  # type: ignore[arg-type]  # deliberately one field at a time


# ============================================================================
# Exercise 3 - async + thread pool + process pool
# ============================================================================

TIERS = l29.Exercise3Config(items=6, threads=4, workers=2, valuesPerItem=300, latencyLow=0.002, latencyHigh=0.004)


def test_runAnalysis_mean_std_and_histogram() -> None:
    result = l29.runAnalysis([0.0, 0.5, 1.0, 0.55])
    assert result["mean"] == pytest.approx(0.5125)
    assert result["std"] == pytest.approx(statistics.stdev([0.0, 0.5, 1.0, 0.55]))
    assert result["histogram"] == [1, 0, 0, 0, 0, 2, 0, 0, 0, 1]


def test_fetchDataFromLegacySystem_is_seeded_by_seed_and_dataId() -> None:
    first = l29.fetchDataFromLegacySystem(3, seed=1, latency=(0.0, 0.0), size=50)
    assert first == l29.fetchDataFromLegacySystem(3, seed=1, latency=(0.0, 0.0), size=50)
    assert first != l29.fetchDataFromLegacySystem(4, seed=1, latency=(0.0, 0.0), size=50)
    assert len(first) == 50
    assert all(0.0 <= value < 1.0 for value in first)


def test_fetchDataFromLegacySystem_blocks_for_its_drawn_latency() -> None:
    latency, _ = l29.legacyRecord(2, 1, 0.01, 0.03, 0)
    assert 0.01 <= latency <= 0.03
    with Stopwatch() as watch:
        l29.fetchDataFromLegacySystem(2, seed=1, latency=(0.01, 0.03), size=10)
    assert watch.elapsed >= latency


def test_processDataItem_returns_the_analysis_with_the_dataId() -> None:
    inline = InlineExecutor()
    result = asyncio.run(l29.processDataItem(2, inline, inline, seed=1, latency=(0.0, 0.0), size=300))
    data = l29.fetchDataFromLegacySystem(2, seed=1, latency=(0.0, 0.0), size=300)
    assert result["dataId"] == 2
    assert sum(result["histogram"]) == 300
    assert set(result) == {"dataId", "mean", "std", "histogram"}
    assert result["std"] == statistics.stdev(data)


def test_exercise3_configurations_agree() -> None:
    result = l29.runExercise3(TIERS, seed=1, executor="thread")
    tiered, poolOnly, sequential = result.runs
    assert tiered.results == poolOnly.results == sequential.results
    assert [item["dataId"] for item in tiered.results] == list(range(TIERS.items))
    assert [run.label[:3] for run in result.runs] == ["(a)", "(b)", "(c)"]
    assert sorted(result.ordering) == ["(a)", "(b)", "(c)"]
    assert result.latencies == tuple(l29.legacyRecord(i, 1, 0.002, 0.004, 0)[0] for i in range(TIERS.items))
    assert "Expected ordering (a) < (b) < (c)" in l29.formatExercise3(result)


@pytest.mark.parametrize("startMethod", START_METHODS)
def test_exercise3_process_pool_matches_threads(startMethod: StartMethod) -> None:
    pooled = l29.runExercise3(TIERS, seed=7, executor="process", startMethod=startMethod)
    threaded = l29.runExercise3(TIERS, seed=7, executor="thread")
    assert pooled.runs[0].results == threaded.runs[0].results
    assert pooled.latencies == threaded.latencies


# ============================================================================
# Exercise 4 - error handling
# ============================================================================

RISKY = l29.Exercise4Config(deadlineSeconds=0.2, slowMs=260.0, okMs=20.0)


def test_riskyComputation_fails_or_computes() -> None:
    with pytest.raises(ValueError, match=r"^Task 5 failed intentionally$"):
        l29.riskyComputation(5, True, 0)
    assert l29.riskyComputation(6, False, 0) == (6, round(sum(math.sqrt(i) for i in range(50000)), 4))


def test_safeHandleTask_reports_the_spec_failures_and_lets_a_broken_pool_through() -> None:
    inline = InlineExecutor()
    failed = asyncio.run(l29.safeHandleTask(1, True, 0, inline))
    ok = asyncio.run(l29.safeHandleTask(2, False, 0, inline))
    with executorScope("thread", 1) as pool:
        late = asyncio.run(l29.safeHandleTask(3, False, 50, l29.WatchedExecutor(pool), deadlineSeconds=0.01))
    assert failed == {
        "taskId": 1,
        "status": "failed",
        "error": "Task 1 failed intentionally",
        "errorType": "ValueError",
    }
    assert ok == {"taskId": 2, "status": "ok", "result": SUM_OF_ROOTS}
    assert late == {
        "taskId": 3,
        "status": "failed",
        "error": "no result within the 10 ms deadline",
        "errorType": "TimeoutError",
    }
    with pytest.raises(BrokenProcessPool):  # no task's failure: the runner stops the run (gatherAll, during)
        asyncio.run(l29.safeHandleTask(4, False, 0, BrokenPool()))


@given(st.integers(0, 2**32))
def test_planTasks_splits_4_4_4_shortest_hold_first(seed: int) -> None:
    plan = l29.planTasks(l29.Exercise4Config(), seed)
    assert sorted(task.taskId for task in plan) == list(range(12))
    roles = [task.role for task in plan]
    assert roles == ["fails"] * 4 + ["succeeds"] * 4 + ["too slow"] * 4
    assert all(task.shouldFail == (task.role == "fails") for task in plan)
    assert {task.timeoutMs for task in plan if task.role == "too slow"} == {800.0}
    assert {task.timeoutMs for task in plan if task.role == "succeeds"} == {100.0}


SUM_OF_ROOTS = round(sum(math.sqrt(i) for i in range(50000)), 4)


def expectedReports(config: l29.Exercise4Config, seed: int) -> tuple[l29.TaskReport, ...]:
    """What every run with this seed must report, whatever the executor or start method."""
    reports: list[l29.TaskReport] = []
    for task in sorted(l29.planTasks(config, seed), key=lambda task: task.taskId):
        if task.role == "succeeds":
            reports.append({"taskId": task.taskId, "status": "ok", "result": SUM_OF_ROOTS})
        elif task.role == "fails":
            error = f"Task {task.taskId} failed intentionally"
            reports.append({"taskId": task.taskId, "status": "failed", "error": error, "errorType": "ValueError"})
        else:
            error = f"no result within the {config.deadlineMs:.0f} ms deadline"
            reports.append({"taskId": task.taskId, "status": "failed", "error": error, "errorType": "TimeoutError"})
    return tuple(reports)


def test_exercise4_split_is_exact_and_retries_all_succeed() -> None:
    first = l29.runExercise4(RISKY, seed=11, executor="thread")
    assert (first.successes, first.valueErrors, first.timeouts) == (4, 4, 4)
    assert first.matchingRoles == 12
    assert first.retriesSucceeded == len(first.run.retries) == 8
    assert first.run.reports == expectedReports(RISKY, 11)
    assert all(report["status"] == "ok" and report["result"] == SUM_OF_ROOTS for report in first.run.retries)
    assert len(first.run.abandoned) == 4
    assert all(timing.finished and timing.busyAfterDeadlineSeconds > 0 for timing in first.run.abandoned)
    assert "Sum check: 4 + 4 + 4 = 12 of 12: ok" in l29.formatExercise4(first)


@pytest.mark.parametrize("startMethod", START_METHODS)
def test_exercise4_process_pool_split(startMethod: StartMethod) -> None:
    config = replace(RISKY, failing=2, slow=2, succeeding=2, workers=2)
    result = l29.runExercise4(config, seed=12, executor="process", startMethod=startMethod)
    assert (result.successes, result.valueErrors, result.timeouts) == (2, 2, 2)
    assert result.matchingRoles == 6
    assert result.retriesSucceeded == 4
    assert result.run.reports == expectedReports(config, 12)


def test_abandoned_work_is_released_before_the_loop_closes(caplog: pytest.LogCaptureFixture) -> None:
    """A task given up on while still running finishes in its worker afterwards, and nothing is logged."""
    watched: list[l29.WatchedExecutor] = []

    async def giveUp(pool: TaskExecutor) -> l29.TaskReport:
        executor = l29.WatchedExecutor(pool)
        watched.append(executor)
        report = await l29.safeHandleTask(1, False, 150, executor, deadlineSeconds=0.02)
        await executor.drain(0.01)  # gives up waiting too: the task is still in its worker
        return report

    with executorScope("thread", 1) as pool:
        report = asyncio.run(giveUp(pool))
    assert l29.errorTypeOf(report) == "TimeoutError"
    tasks = watched[0].statistics()
    assert [task.args for task in tasks] == [(1, False, 150)]
    assert tasks[0].finished
    assert tasks[0].seconds >= 0.15
    assert not [record for record in caplog.records if record.name in {"concurrent.futures", "asyncio"}]


def test_watched_executor_keeps_the_work_a_deadline_cancelled_and_drains_it() -> None:
    async def scenario(pool: TaskExecutor) -> tuple[bool, float, float, tuple[l29.WatchedTask, ...]]:
        watched = l29.WatchedExecutor(pool)
        standIn = watched.submit(time.sleep, 0.1)
        cancelled = standIn.cancel()  # what wait_for does at its deadline
        drained = await watched.drain(5.0)
        return cancelled, drained, (await asyncio.wrap_future(watched.submit(pow, 2, 10))), watched.statistics()

    with executorScope("thread", 1) as pool:
        cancelled, drained, value, tasks = asyncio.run(scenario(pool))
    assert cancelled
    assert 0.05 < drained < 5.0
    assert value == 1024
    assert [(task.args, task.finished) for task in tasks] == [((0.1,), True), ((2, 10), True)]
    assert tasks[0].seconds >= 0.1


def test_abandonedTimings_reads_the_timed_out_tasks_only() -> None:
    watched = (
        l29.WatchedTask((3, False, 800.0), 0.9, True),
        l29.WatchedTask((1, True, 100.0), 0.01, True),
        l29.WatchedTask((2, False, 800.0), 0.7, False),
    )
    reports: tuple[l29.TaskReport, ...] = (
        {"taskId": 1, "status": "failed", "error": "x", "errorType": "ValueError"},
        {"taskId": 2, "status": "failed", "error": "late", "errorType": "TimeoutError"},
        {"taskId": 3, "status": "failed", "error": "late", "errorType": "TimeoutError"},
    )
    timings = l29.abandonedTimings(watched, reports, 0.5)
    assert [(t.taskId, round(t.busyAfterDeadlineSeconds, 6), t.finished) for t in timings] == [
        (2, 0.2, False),
        (3, 0.4, True),
    ]


def test_retries_a_worker_at_a_time_each_get_their_whole_deadline() -> None:
    """4 tasks of 40 ms on 1 worker, 150 ms each: queued all at once the 4th ends at 160 ms."""
    config = l29.Exercise4Config(failing=0, slow=0, succeeding=1, deadlineSeconds=0.15, slowMs=200.0, okMs=10.0)
    tasks = [(taskId, False, 40.0) for taskId in range(4)]

    async def retryRound(atOnce: int) -> tuple[l29.TaskReport, ...]:
        with executorScope("thread", 1) as pool:
            reports, watched, _ = await l29.runRound(tasks, pool, config, atOnce=atOnce)
            await watched.drain(1.0)
        return reports

    assert [l29.errorTypeOf(report) for report in asyncio.run(retryRound(1))] == ["ok"] * 4
    assert "TimeoutError" in [l29.errorTypeOf(report) for report in asyncio.run(retryRound(0))]


def test_exercise4_refuses_the_inline_executor() -> None:
    with pytest.raises(ConfigError, match=r"^exercise 4 needs executor process or thread, got 'inline'"):
        l29.runExercise4(RISKY, seed=1, executor="inline")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"slowMs": 600.0}, r"^slowMs must be >= 625.0 and <= 600000.0, got 600.0$"),
        ({"okMs": 200.0}, r"^okMs must be >= 0.0 and <= 125.0, got 200.0$"),
        ({"workers": 2}, r"^okMs must be >= 0.0 and <= 62.5, got 100.0$"),
    ],
)
def test_exercise4_config_refuses_a_split_that_timing_could_change(changes: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        l29.Exercise4Config(**changes)  # type: ignore[arg-type]  # deliberately one field at a time


def test_registry_lists_all_four_exercises() -> None:
    assert [exercise.number for exercise in l29.EXERCISES] == [1, 2, 3, 4]
    assert l29.main(["--list"]) == 0


# ============================================================================
# A worker killed from outside: one line naming the phase and the progress
# ============================================================================


class BrokenPool:
    """A pool whose worker died before anything was submitted: ``submit`` raises, as a broken pool's does."""

    def __init__(self) -> None:
        self.shutdowns: list[bool] = []

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:  # noqa: ARG002
        raise BrokenProcessPool("A child process terminated abruptly, the process pool is not usable anymore")

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:  # noqa: ARG002
        self.shutdowns.append(wait)


# A task that dies as the OOM killer or ``kill -9`` would kill its worker. Built from the
# standard library: a spawned worker unpickles it without importing this test module (slow).
KILL_OWN_WORKER: Final = functools.partial(signal.raise_signal, signal.SIGKILL)


class KillOnSubmit:
    """A process pool behind which the ``n``-th task submitted kills its worker instead of running."""

    def __init__(self, inner: TaskExecutor, n: int) -> None:
        self._inner = inner
        self._n = n
        self._submitted = 0

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        self._submitted += 1
        if self._submitted == self._n:
            return self._inner.submit(KILL_OWN_WORKER)  # type: ignore[arg-type]  # never returns: its worker dies
        return self._inner.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._inner.shutdown(wait, cancel_futures=cancel_futures)


def test_gatherAll_waits_for_every_sibling_and_counts_what_finished() -> None:
    async def scenario() -> tuple[WorkerLostError, list[asyncio.Future[int]]]:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[int]] = [loop.create_future() for _ in range(4)]
        futures[0].set_result(0)
        loop.call_later(0.01, futures[1].set_exception, BrokenProcessPool("a worker died"))
        loop.call_later(0.05, futures[2].set_result, 2)  # after the pool broke: still awaited, not cancelled
        loop.call_later(0.06, futures[3].set_exception, BrokenProcessPool("a worker died"))
        with pytest.raises(WorkerLostError) as raised:
            await l29.gatherAll(futures, "requests analysed")
        return raised.value, futures

    error, futures = asyncio.run(scenario())
    assert error.doing == "2 of 4 requests analysed"
    assert [future.cancelled() for future in futures] == [False] * 4
    assert futures[2].result() == 2


def test_gatherAll_is_gather_for_any_other_outcome() -> None:
    async def values() -> list[int]:
        return await l29.gatherAll([asyncio.sleep(0.01, result=n) for n in range(3)], "done")

    async def divide(n: int) -> float:
        await asyncio.sleep(0.01)
        return 1 / n

    async def failing() -> list[float]:
        return await l29.gatherAll([divide(1), divide(0)], "done")

    assert asyncio.run(values()) == [0, 1, 2]
    with pytest.raises(ZeroDivisionError):
        asyncio.run(failing())


def test_during_names_the_phase_keeps_the_progress_and_lets_the_pool_clean_up_first() -> None:
    pool = BrokenPool()
    with pytest.raises(WorkerLostError) as lost, l29.during("the first round", pool):
        raise WorkerLostError("7 of 12 tasks ended")
    expected = "a worker process died (how is unknown) during the first round; 7 of 12 tasks ended; no result"
    assert str(lost.value) == expected
    with pytest.raises(WorkerLostError) as bare, l29.during("the pool's warm-up", pool):
        raise BrokenProcessPool("gone")
    assert bare.value.doing == "during the pool's warm-up"
    assert pool.shutdowns == [True, True]
    with pytest.raises(ValueError, match=r"^other$"), l29.during("the retries", pool):
        raise ValueError("other")
    assert pool.shutdowns == [True, True]


def test_a_broken_pool_is_no_task_failure_in_exercise_4() -> None:
    config = replace(RISKY, failing=1, slow=1, succeeding=1, workers=1)
    plan = l29.planTasks(config, 3)
    with pytest.raises(WorkerLostError) as lost:
        asyncio.run(l29.handleWithRecovery(plan, BrokenPool(), config))
    assert lost.value.doing == "during the first round; 0 of 3 tasks ended"


@pytest.mark.parametrize("startMethod", ["fork", "spawn"])
def test_a_worker_killed_in_exercise_4_stops_the_run_naming_the_round_and_the_tasks_ended(
    startMethod: StartMethod,
) -> None:
    config = replace(RISKY, failing=2, slow=2, succeeding=2, workers=2)
    plan = l29.planTasks(config, 12)

    def recover() -> None:
        with executorScope("process", 2, startMethod) as pool:
            warmUp(pool, 2, preload=("l29",))  # as runExercise4 does: no deadline pays a worker's start-up
            asyncio.run(l29.handleWithRecovery(plan, KillOnSubmit(pool, 3), config))

    with pytest.raises(WorkerLostError) as lost:
        recover()
    assert re.fullmatch(r"during the first round; [0-5] of 6 tasks ended", lost.value.doing), lost.value.doing
    assert lost.value.how == "SIGKILL"
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("startMethod", ["fork", "spawn"])
def test_a_worker_killed_in_exercises_1_to_3_stops_the_run_counting_the_work_done(startMethod: StartMethod) -> None:
    config = replace(STREAM, totalRecords=8, workers=2)
    requests = l29.makeRequests(SMALL, 1)
    with pytest.raises(WorkerLostError) as served, executorScope("process", 2, startMethod) as pool:
        l29.timeConcurrent(requests, KillOnSubmit(pool, 2), silent)
    assert re.fullmatch(r"[0-3] of 4 requests analysed", served.value.doing), served.value.doing
    for consumer in ("literal", "bounded"):
        with pytest.raises(WorkerLostError) as piped, executorScope("process", 2, startMethod) as pool:
            asyncio.run(l29.runPipeline(config.queue(2), KillOnSubmit(pool, 3), config, seed=1, consumer=consumer))
        assert re.fullmatch(r"[0-7] of 8 records transformed", piped.value.doing), piped.value.doing
        assert piped.value.how == "SIGKILL"
    with pytest.raises(WorkerLostError) as tiered, executorScope("process", 2, startMethod) as pool:
        asyncio.run(l29.processAllItems(range(4), InlineExecutor(), KillOnSubmit(pool, 2), seed=1, config=TIERS))
    assert re.fullmatch(r"[0-3] of 4 items analysed", tiered.value.doing), tiered.value.doing
    assert multiprocessing.active_children() == []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
@pytest.mark.parametrize("startMethod", ["fork", "spawn"])
def test_a_worker_killed_from_outside_in_exercise_4_is_one_line_and_status_1(startMethod: str) -> None:
    """The issue's case: no MISMATCH table of BrokenProcessPool "failures", one line naming the phase."""
    args = [sys.executable, "l29.py", "--ex", "4", "--start-method", startMethod]
    outcome = inject(args, "sigkill-worker", 0.1 if startMethod == "fork" else 0.8, cwd=str(ROOT))
    assert (outcome.finishedFirst, outcome.note) == (False, "")
    assert outcome.status == 1
    assert "MISMATCH" not in outcome.stdout
    [line] = outcome.stderrLines
    phases = r"the pool's warm-up, before any task|the first round; \d+ of 12 tasks ended|the wait .*|the retries; .*"
    assert re.fullmatch(rf"l29\.py: a worker process died \(SIGKILL\) during ({phases}); no result", line), line
    assert problems(outcome, "l29.py") == []


# ============================================================================
# The whole file: the spec's signatures, reports within 100 columns
# ============================================================================

SPEC_SIGNATURES = {
    "analyzeRequest": ["requestData"],
    "handleRequest": ["requestId", "values", "executor"],
    "transformRecord": ["record"],
    "produceRecords": ["queue", "totalRecords"],
    "consumeRecords": ["queue", "executor", "results"],
    "fetchDataFromLegacySystem": ["dataId"],
    "runAnalysis": ["inputData"],
    "processDataItem": ["dataId", "threadPool", "processPool"],
    "riskyComputation": ["taskId", "shouldFail", "timeoutMs"],
    "safeHandleTask": ["taskId", "shouldFail", "timeoutMs", "executor"],
}
RUNNER_EXTRAS = {"seed", "latency", "size", "log", "deadlineSeconds"}


@pytest.mark.parametrize(("name", "parameters"), SPEC_SIGNATURES.items())
def test_spec_functions_keep_the_spec_signature(name: str, parameters: list[str]) -> None:
    """The spec's parameters in order; extras only keyword-only, defaulted, and for the runner (no test hooks)."""
    signature = inspect.signature(getattr(l29, name))
    positional = [p.name for p in signature.parameters.values() if p.kind is not p.KEYWORD_ONLY]
    extras = [p for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY]
    assert positional == parameters
    assert all(p.default is not p.empty for p in extras)
    assert {p.name for p in extras} <= RUNNER_EXTRAS


@pytest.mark.parametrize("exercise", l29.EXERCISES, ids=lambda exercise: f"ex{exercise.number}")
def test_every_report_line_fits_100_columns(exercise: Exercise) -> None:
    lines: list[str] = []
    exercise.execute(RunOptions(quick=True, executor="thread"), lines.append)
    printed = "\n".join(lines).splitlines()
    assert printed
    assert max(len(line) for line in printed) <= 100, max(printed, key=len)


# ============================================================================
# Dask: the CPU tier on a LocalCluster gives the process pool's seeded results
# ============================================================================


@pytest.mark.dask
def test_exercise1_on_dask_gives_the_process_pools_results(daskResults: dict[str, Any]) -> None:
    # One Dask worker against two processes: the results depend on the seed alone.
    onDask = daskResults["l29"]
    pooled = l29.runExercise1(SMALL, seed=daskrun.L29_SEED, executor="process", startMethod="fork")
    assert replace(daskrun.L29_CONFIG, workers=SMALL.workers) == SMALL
    assert onDask["rows"] == [[row.requestId, row.riskScore, row.highRisk] for row in pooled.rows]
    assert onDask["matches"] is True
