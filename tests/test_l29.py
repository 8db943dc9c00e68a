"""Lecture 29: results, accounting and determinism, read from result objects."""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
import math
import multiprocessing
import re
import selectors
import signal
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar, cast

import daskrun
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import l29
from lab import lecture29 as lab29
from lab.faults import inject, problems
from shared import (
    ConfigError,
    InlineExecutor,
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
# fork and spawn here (DESIGN.md); forkserver runs in test_shared, invoke matrix and invoke faults.
START_METHODS = ["fork", "spawn"]
SMALL = l29.Exercise1Config(requests=4, valuesPerRequest=500, workers=2)


class Recording:
    """An executor that notes each call in ``events`` ("<label>: <function>"), then runs it on ``inner``."""

    def __init__(self, inner: TaskExecutor, events: list[str], label: str = "submit") -> None:
        self._inner = inner
        self._events = events
        self._label = label
        self.calls: list[tuple[object, ...]] = []

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        self._events.append(f"{self._label}: {getattr(fn, '__name__', fn)}")
        self.calls.append(tuple(args))
        return self._inner.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._inner.shutdown(wait, cancel_futures=cancel_futures)


# ============================================================================
# Exercise 1 - async handler with a process pool
# ============================================================================


def specRisk(values: list[float]) -> float:
    """Requirement 1's risk score as the spec writes it: sum / (mean * len(values) + 1), the sum of square roots."""
    return sum(math.sqrt(v) for v in values) / (statistics.fmean(values) * len(values) + 1)


def test_analyzeRequest_computes_every_field() -> None:
    result = l29.analyzeRequest({"requestId": 7, "values": [0.25, 1.0]})
    assert result == {
        "requestId": 7,
        "mean": 0.625,
        "variance": 0.140625,
        "sumSqrt": 1.5,
        "riskScore": 1.5 / (0.625 * 2 + 1),
    }


def test_analyzeRequest_on_a_hand_worked_three_value_request() -> None:
    # [1, 4, 16]: mean 21/3 = 7; variance (36 + 9 + 81) / 3 = 42 (population: n, not n - 1);
    # square roots 1 + 2 + 4 = 7; risk 7 / (7 * 3 + 1) = 7/22.
    assert l29.analyzeRequest({"requestId": 3, "values": [1.0, 4.0, 16.0]}) == {
        "requestId": 3,
        "mean": 7.0,
        "variance": 42.0,
        "sumSqrt": 7.0,
        "riskScore": 7 / 22,
    }


def test_handleRequest_prints_dispatching_before_the_pool_runs_and_complete_after() -> None:
    events: list[str] = []
    result = asyncio.run(l29.handleRequest(3, [1.0, 4.0, 16.0], Recording(InlineExecutor(), events), log=events.append))
    assert events == ["Request 3: dispatching", "submit: analyzeRequest", "Request 3: complete, risk=0.3182"]
    assert result["riskScore"] == 7 / 22


def test_handleRequest_under_gather_dispatches_every_request_before_any_completes() -> None:
    lines: list[str] = []
    result = l29.runExercise1(SMALL, seed=1, executor="inline", log=lines.append)
    risks = [specRisk(request["values"]) for request in l29.makeRequests(SMALL, 1)]
    assert lines[: SMALL.requests] == [f"Request {n}: dispatching" for n in range(SMALL.requests)]
    assert sorted(lines[SMALL.requests :]) == [f"Request {n}: complete, risk={r:.4f}" for n, r in enumerate(risks)]
    assert result.dispatchedBeforeAnyCompleted


# Two values a request put the spec's risk score on both sides of 0.6 (one value never passes 0.5).
SPLIT = l29.Exercise1Config(requests=10, valuesPerRequest=2, workers=3)


def test_requests_are_high_risk_above_0_6_only() -> None:
    requests = l29.makeRequests(SPLIT, 1)
    risks = [specRisk(request["values"]) for request in requests]
    result = l29.runExercise1(SPLIT, seed=1, executor="inline")
    assert SPLIT.highRiskThreshold == 0.6
    assert [row.requestId for row in result.rows] == list(range(10))
    assert [row.riskScore for row in result.rows] == pytest.approx(risks, rel=1e-12)
    assert [row.highRisk for row in result.rows] == [risk > 0.6 for risk in risks]
    assert result.highRiskCount == sum(risk > 0.6 for risk in risks) == 8  # requests 4 and 9 score 0.54 and 0.53
    report = l29.formatExercise1(result).splitlines()
    assert "High-risk requests (risk > 0.6): 8 of 10" in report
    table = [line.split() for line in report[3:13]]
    assert table == [
        [str(n), f"{risk:.4f}", *(["high", "risk"] if risk > 0.6 else ["normal"])] for n, risk in enumerate(risks)
    ]


def test_a_score_equal_to_the_threshold_is_normal() -> None:
    first = l29.runExercise1(SPLIT, seed=1, executor="inline")
    tie = first.rows[0].riskScore  # 0.64: request 0 sits exactly on this threshold
    tied = l29.runExercise1(replace(SPLIT, highRiskThreshold=tie), seed=1, executor="inline")
    assert [row.highRisk for row in tied.rows] == [row.riskScore > tie for row in first.rows]
    assert tied.rows[0].highRisk is False
    assert tied.highRiskCount == sum(row.riskScore > tie for row in first.rows) == 7


def test_exercise1_same_seed_same_figures() -> None:
    first = l29.runExercise1(SMALL, seed=3, executor="inline")
    second = l29.runExercise1(SMALL, seed=3, executor="inline")
    other = l29.runExercise1(SMALL, seed=4, executor="inline")
    assert first.rows == second.rows
    assert first.rows != other.rows
    requests = l29.makeRequests(SMALL, 3)
    assert [len(request["values"]) for request in requests] == [500] * 4
    assert all(0.0 <= value < 1.0 for request in requests for value in request["values"])
    assert len({tuple(request["values"]) for request in requests}) == 4


@pytest.mark.parametrize("startMethod", START_METHODS)
def test_exercise1_process_pool_matches_inline(startMethod: StartMethod) -> None:
    pooled = l29.runExercise1(SMALL, seed=5, executor="process", startMethod=startMethod)
    inline = l29.runExercise1(SMALL, seed=5, executor="inline")
    assert pooled.rows == inline.rows
    assert pooled.matchesSequential
    assert pooled.dispatchedBeforeAnyCompleted
    # The figures the report prints are the measured times' ratios, as the spec defines a speedup.
    assert pooled.warmSpeedup == pooled.sequentialSeconds / pooled.warmSeconds
    assert pooled.coldSpeedup == pooled.sequentialSeconds / pooled.coldSeconds
    assert pooled.startupSeconds == max(0.0, pooled.coldSeconds - pooled.warmSeconds)
    speedups = f"Speedup: {pooled.warmSpeedup:.2f}x on a warm pool, {pooled.coldSpeedup:.2f}x counting pool start-up."
    assert speedups in l29.formatExercise1(pooled).splitlines()


@pytest.mark.parametrize(
    ("requests", "workers", "cores", "bound"),
    [
        (10, 3, 2, 2.0),  # the spec's batch on 2 cores: the cores bind
        (10, 3, 4, 2.5),  # 4 cores: the busiest of 3 workers serves ceil(10/3) = 4 requests, 10/4
        (10, 3, 1, 1.0),
        (9, 3, 8, 3.0),  # 3 equal waves: every worker busy throughout
        (3, 2, 8, 1.5),  # 3 requests on 2 workers: 3/2
        (4, 8, 8, 4.0),  # fewer requests than workers: one wave of 4
        (5, 5, 0, 1.0),  # an unknown core count counts as one
    ],
)
def test_speedupBound_is_the_busiest_worker_or_the_cores(requests: int, workers: int, cores: int, bound: float) -> None:
    assert l29.speedupBound(requests, workers, cores) == bound


def test_exercise1_bound_reads_the_config_and_the_cores() -> None:
    result = l29.runExercise1(SMALL, seed=2, executor="inline")
    assert result.bound == min(result.cores, 2.0)  # 4 requests on 2 workers: 2 waves of 2


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


def specTransform(record: l29.StreamRecord) -> tuple[int, float]:
    """Requirement 1 as the spec writes it: (recordId, log(sum(sqrt(abs(x))) + 1) rounded to 6 places)."""
    total = sum(math.sqrt(abs(x)) for x in record["data"])
    return (record["recordId"], round(math.log(total + 1), 6))


def produced(seed: int, totalRecords: int, maxsize: int = 0) -> tuple[list[l29.StreamRecord], bool, list[str]]:
    """The spec's producer alone on a queue nobody takes from: its records, whether None ended them, its log."""
    lines: list[str] = []
    queue: l29.PipelineQueue[l29.StreamItem] = l29.PipelineQueue(maxsize)

    async def produce() -> list[l29.StreamItem]:
        await l29.produceRecords(queue, totalRecords, seed=seed, latency=(0.0, 0.0), log=lines.append)
        return [queue.get_nowait() for _ in range(queue.qsize())]

    items = asyncio.run(produce())
    records = [item for item in items if item is not None]
    return records, items[-1] is None and len(records) == len(items) - 1, lines


def test_transformRecord_on_hand_made_data() -> None:
    # |0|, |1|, |-4|, |9| have the roots 0, 1, 2, 3: log(6 + 1) = 1.9459101..., 6 places.
    assert l29.transformRecord({"recordId": 4, "data": [0, 1, -4, 9]}) == (4, 1.94591)
    assert l29.transformRecord({"recordId": 3, "data": [-4, 9, 0]}) == (3, 1.791759)  # log(5 + 1)
    assert l29.transformRecord({"recordId": 8, "data": [0] * 1000}) == (8, 0.0)  # log(0 + 1)
    wide: l29.StreamRecord = {"recordId": 1, "data": [-500, 500] * 500}
    assert l29.transformRecord(wide) == specTransform(wide) == (1, round(math.log(1000 * math.sqrt(500) + 1), 6))


def test_produceRecords_logs_each_put_and_ends_with_the_poison_pill() -> None:
    lines: list[str] = []
    queue: l29.PipelineQueue[l29.StreamItem] = l29.PipelineQueue(maxsize=50)
    asyncio.run(l29.produceRecords(queue, 4, seed=1, latency=(0.001, 0.003), log=lines.append))
    assert lines == [f"Producer: queue size before put = {n}/50" for n in range(5)]
    items = [queue.get_nowait() for _ in range(queue.qsize())]
    assert [None if item is None else item["recordId"] for item in items] == [0, 1, 2, 3, None]
    seen = queue.statistics()
    assert (seen.puts, seen.sizesBeforePut, seen.blockedSeconds, seen.producerWaiting) == (
        4,
        (0, 1, 2, 3, 4),
        0.0,
        False,
    )


def test_produceRecords_makes_distinct_records_of_1000_integers_from_minus_500_to_500() -> None:
    records, pill, _ = produced(2, 20)
    assert pill
    assert [record["recordId"] for record in records] == list(range(20))
    assert all(len(record["data"]) == 1000 for record in records)
    assert all(type(x) is int for record in records for x in record["data"])
    # The bug: every record built with the same data. 20 records here, 20 different lists,
    assert len({tuple(record["data"]) for record in records}) == 20
    # each of them random: 1000 draws from 1001 integers repeat some (about 632 distinct), never all the same,
    assert all(550 <= len(set(record["data"])) <= 720 for record in records)
    # and in 20,000 draws every integer from -500 to 500 turns up, none outside: both ends are included.
    assert set().union(*(record["data"] for record in records)) == set(range(-500, 501))
    # The same seed gives the same stream, another seed another one.
    assert produced(2, 3)[0] == records[:3]
    assert produced(3, 1)[0][0]["data"] != records[0]["data"]


def test_exercise2_results_are_the_spec_transform_of_every_record_in_recordId_order() -> None:
    result = l29.runExercise2(STREAM, seed=2, executor="thread")
    records, _, _ = produced(2, STREAM.totalRecords)
    expected = tuple(specTransform(record) for record in records)
    assert len({value for _, value in expected}) == STREAM.totalRecords  # different data, different results
    assert result.expected == expected
    assert [run.maxsize for run in result.runs] == [5, 2, 20]
    assert all(run.consumer == "literal" for run in result.runs)
    for run in result.runs:
        assert run.results == expected
        assert max(size for _, size in run.trace) == run.largestSize <= run.maxsize
        assert len(run.sizesBeforePut) == STREAM.totalRecords + 1  # every record, then None
        assert max(run.sizesBeforePut) <= run.maxsize
        assert 0.0 <= run.meanSize <= run.largestSize
        # The spec's consumer takes each record at once: its queue never fills, the producer never waits.
        assert run.fullPuts == 0
        assert run.producerBlockedSeconds == 0.0
    average = sum(value for _, value in expected) / len(expected)
    assert result.averageResult == pytest.approx(average, abs=1e-12)
    report = l29.formatExercise2(result).splitlines()
    assert [line.split() for line in report[4 : 4 + STREAM.totalRecords]] == [
        [str(recordId), f"{value:.6f}"] for recordId, value in expected
    ]
    assert f"Average result value: {average:.6f} over 10 records." in report
    assert "Producer: queue size before put" not in "\n".join(report)
    peaks = [max(size for _, size in run.trace) for run in result.comparison]
    expectedLine = (
        f"maxsize 2 vs 20: the queue peaked at {peaks[0]} and {peaks[1]} records, and 0 puts found it full: "
        "the producer was never throttled."
    )
    assert expectedLine in " ".join(report)


@pytest.mark.parametrize("startMethod", START_METHODS)
def test_exercise2_process_pool_gives_the_same_results(startMethod: StartMethod) -> None:
    config = replace(STREAM, totalRecords=6, comparedMaxsizes=(2,), workers=2)
    pooled = l29.runExercise2(config, seed=4, executor="process", startMethod=startMethod)
    expected = tuple(specTransform(record) for record in produced(4, 6)[0])
    assert pooled.expected == expected
    assert all(run.results == expected for run in pooled.runs)


def loggedSizes(lines: list[str], maxsize: int) -> list[int]:
    """The sizes in requirement 5's lines, each line checked whole."""
    sizes: list[int] = []
    for line in lines:
        match = re.fullmatch(rf"Producer: queue size before put = (\d+)/{maxsize}", line)
        assert match, line
        sizes.append(int(match[1]))
    return sizes


@settings(max_examples=25, deadline=None)
@given(
    maxsize=st.integers(1, 4),
    totalRecords=st.integers(1, 6),
    bounded=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_a_late_consumer_finds_the_queue_at_maxsize_never_above_and_misses_no_record(
    maxsize: int, totalRecords: int, bounded: bool, seed: int
) -> None:
    """Nobody takes a record until the producer is suspended on a full queue (or done): the queue then holds
    exactly min(maxsize, records + the pill); the consumer, started then, transforms every record once."""
    events: list[str] = []
    executor = Recording(InlineExecutor(), events)
    queue: l29.PipelineQueue[l29.StreamItem] = l29.PipelineQueue(maxsize, waitSeconds=5.0)
    results: list[tuple[int, float]] = []
    lines: list[str] = []

    async def run() -> int:
        producing = l29.produceRecords(queue, totalRecords, seed=seed, latency=(0.0, 0.0), log=lines.append)
        producer = asyncio.create_task(producing)
        while not (producer.done() or queue.statistics().producerWaiting):  # noqa: ASYNC110 - no event to await
            await asyncio.sleep(0)
        held = queue.qsize()
        if bounded:
            await asyncio.gather(producer, l29.consumeRecordsBounded(queue, executor, results, maxInFlight=2))
        else:
            await asyncio.gather(producer, l29.consumeRecords(queue, executor, results))
        return held

    held = asyncio.run(run())
    seen = queue.statistics()
    assert queue.maxsize == maxsize
    assert held == min(maxsize, totalRecords + 1)
    assert max(size for _, size in seen.trace) == held
    logged = loggedSizes(lines, maxsize)
    assert logged == list(seen.sizesBeforePut)
    assert logged[: held + 1] == list(range(min(held + 1, totalRecords + 1)))
    assert len(logged) == totalRecords + 1
    assert max(logged) <= maxsize
    assert events == ["submit: transformRecord"] * totalRecords
    records = [cast(l29.StreamRecord, args[0]) for args in executor.calls]
    assert [record["recordId"] for record in records] == list(range(totalRecords))
    assert len({tuple(record["data"]) for record in records}) == totalRecords
    expected = [specTransform(record) for record in records]
    assert (sorted(results) if bounded else results) == expected  # the spec's consumer: gather keeps the order


def _pipeline(
    consumer: l29.ConsumerKind, maxsize: int, storeSeconds: float, config: l29.Exercise2Config
) -> tuple[l29.QueueRun, int]:
    """One run on a thread pool, a store of ``storeSeconds`` after each transform; the run and the peak in flight."""

    async def run() -> tuple[l29.QueueRun, int]:
        with executorScope("thread", config.workers) as pool:
            slow = lab29.ProbeExecutor(pool, storeSeconds)
            found = await l29.runPipeline(config.queue(maxsize), slow, config, seed=5, consumer=consumer)
            return found, slow.peak

    return asyncio.run(run())


def test_bounded_consumer_throttles_the_producer_behind_a_slow_store() -> None:
    # 2 in flight, 30 ms each: ~67 records/s against a producer ~1,000/s; the spec's consumer never waits.
    config = replace(STREAM, totalRecords=12, workers=2, latencyLow=0.0, latencyHigh=0.002)
    expected = tuple(specTransform(record) for record in produced(5, 12)[0])
    bounded, boundedPeak = _pipeline("bounded", 2, 0.03, config)
    literal, literalPeak = _pipeline("literal", 2, 0.03, config)
    assert bounded.results == literal.results == expected
    assert boundedPeak == 2  # maxInFlight = the workers: never a record more handed to the pool
    assert literalPeak > 2  # the spec's consumer hands the pool its whole backlog
    assert bounded.fullPuts >= 3
    assert bounded.largestSize == 2  # full, never above
    assert bounded.producerBlockedSeconds > 0.03  # at least one store's wait for a free worker
    assert literal.fullPuts == 0
    assert literal.largestSize <= 2


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

    with Stopwatch() as watch, pytest.raises(l29.PipelineError) as caught:
        asyncio.run(run())
    # Stopped, not left to its own put deadline (waitSeconds): the producer was cancelled at the crash.
    assert watch.elapsed < config.waitSeconds
    # 3 records taken, 2 waiting in the full queue, the 6th put suspended: the error says so.
    assert re.fullmatch(
        r"pipeline stopped after \d+ ms: consumer crashed after 3 records \(injected\); the producer had put "
        r"5 of 12 records and was waiting on a full queue; both sides are stopped",
        str(caught.value),
    ), str(caught.value)
    assert (caught.value.recordsPut, caught.value.producerWaiting) == (5, True)
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
    # Hand-made records, queued out of recordId order; results by hand: log(sum of roots + 1).
    records: list[l29.StreamRecord] = [
        {"recordId": 3, "data": [9, -16]},  # 3 + 4 = 7: log 8
        {"recordId": 0, "data": [0, 1, -4, 9]},  # 6: log 7
        {"recordId": 4, "data": [-25]},  # 5: log 6
        {"recordId": 1, "data": [1, 1, 1]},  # 3: log 4
        {"recordId": 2, "data": [0]},  # 0: log 1
    ]
    inQueueOrder = [(3, 2.079442), (0, 1.94591), (4, 1.791759), (1, 1.386294), (2, 0.0)]

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
        return results

    assert asyncio.run(consume(bounded=False)) == inQueueOrder  # gather keeps the dispatch order
    assert sorted(asyncio.run(consume(bounded=True))) == sorted(inQueueOrder)


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


def specHistogram(data: list[float]) -> list[int]:
    """Requirement 2's histogram written out: bin k holds [k/10, (k+1)/10), the last one [0.9, 1.0]."""
    bins = [0] * 10
    for x in data:
        if 0.0 <= x <= 1.0:
            bins[next(k for k in range(10) if x < (k + 1) / 10 or k == 9)] += 1
    return bins


def specAnalysis(data: list[float]) -> dict[str, object]:
    """Requirement 2 written out: mean, sample standard deviation (n - 1, as statistics.stdev), histogram."""
    mean = sum(data) / len(data)
    std = math.sqrt(sum((x - mean) ** 2 for x in data) / (len(data) - 1))
    return {
        "mean": pytest.approx(mean, rel=1e-12),
        "std": pytest.approx(std, rel=1e-9),
        "histogram": specHistogram(data),
    }


def test_runAnalysis_on_hand_worked_data() -> None:
    # mean 0.5; sample variance (0.25 + 0 + 0.25) / 2 = 0.25, so std 0.5 (the population's would be 0.408).
    assert l29.runAnalysis([0.0, 0.5, 1.0]) == {"mean": 0.5, "std": 0.5, "histogram": [1, 0, 0, 0, 0, 1, 0, 0, 0, 1]}


def test_runAnalysis_bins_tenths_with_0_in_the_first_bin_and_1_in_the_last() -> None:
    data = [0.0, 0.05, 0.1, 0.15, 0.25, 0.3, 0.45, 0.55, 0.65, 0.7, 0.75, 0.85, 0.9, 0.95, 0.999, 1.0]
    result = l29.runAnalysis(data)
    assert result["histogram"] == [2, 2, 1, 1, 1, 1, 1, 2, 1, 4] == specHistogram(data)
    assert result == specAnalysis(data)
    assert l29.runAnalysis([-0.1, 0.5, 1.1])["histogram"] == [0, 0, 0, 0, 0, 1, 0, 0, 0, 0]  # outside [0, 1]: no bin


def test_fetchDataFromLegacySystem_is_seeded_by_seed_and_dataId() -> None:
    first = l29.fetchDataFromLegacySystem(3, seed=1, latency=(0.0, 0.0), size=50)
    assert first == l29.fetchDataFromLegacySystem(3, seed=1, latency=(0.0, 0.0), size=50)
    assert first != l29.fetchDataFromLegacySystem(4, seed=1, latency=(0.0, 0.0), size=50)
    assert first != l29.fetchDataFromLegacySystem(3, seed=2, latency=(0.0, 0.0), size=50)
    assert len(set(first)) == 50
    assert all(0.0 <= value < 1.0 for value in first)


def test_fetchDataFromLegacySystem_blocks_for_its_drawn_latency() -> None:
    latency, _ = l29.legacyRecord(2, 1, 0.01, 0.03, 0)
    assert 0.01 <= latency <= 0.03
    with Stopwatch() as watch:
        l29.fetchDataFromLegacySystem(2, seed=1, latency=(0.01, 0.03), size=10)
    assert watch.elapsed >= latency


def test_processDataItem_fetches_on_the_thread_pool_then_analyses_on_the_process_pool() -> None:
    events: list[str] = []
    threads = Recording(InlineExecutor(), events, "thread pool")
    processes = Recording(InlineExecutor(), events, "process pool")
    result = asyncio.run(l29.processDataItem(2, threads, processes, seed=1, latency=(0.0, 0.0), size=300))
    assert events == ["thread pool: fetchDataFromLegacySystem", "process pool: runAnalysis"]
    assert threads.calls == [(2,)]
    [(data,)] = processes.calls
    assert data == l29.fetchDataFromLegacySystem(2, seed=1, latency=(0.0, 0.0), size=300)
    assert result == {"dataId": 2, **specAnalysis(cast(list[float], data))}
    assert sum(result["histogram"]) == 300


def test_exercise3_configurations_agree_with_the_spec_analysis() -> None:
    result = l29.runExercise3(TIERS, seed=1, executor="thread")
    tiered, poolOnly, sequential = result.runs
    assert tiered.results == poolOnly.results == sequential.results
    for dataId, item in enumerate(tiered.results):
        data = l29.fetchDataFromLegacySystem(dataId, seed=1, latency=(0.0, 0.0), size=TIERS.valuesPerItem)
        assert item == {"dataId": dataId, **specAnalysis(data)}
    assert [run.label for run in result.runs] == [
        "(a) async + 4 threads + 2 thread workers",
        "(b) async + 2 thread workers only",
        "(c) sequential",
    ]
    assert result.ordering == [run.label[:3] for run in sorted(result.runs, key=lambda run: run.seconds)]
    assert result.latencies == tuple(l29.legacyRecord(i, 1, 0.002, 0.004, 0)[0] for i in range(TIERS.items))
    # Every configuration waits out the longest fetch; (c) waits out every fetch in turn.
    assert all(run.seconds >= max(result.latencies) for run in result.runs)
    assert sequential.seconds >= sum(result.latencies)
    verdict = "held" if result.ordering == ["(a)", "(b)", "(c)"] else "did not hold"
    expected = f"Expected ordering (a) < (b) < (c) {verdict}: measured {' < '.join(result.ordering)}."
    assert expected in l29.formatExercise3(result).splitlines()


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
SUM_OF_ROOTS = round(sum(math.sqrt(i) for i in range(50000)), 4)  # the spec's work, its result to 4 places


def test_riskyComputation_fails_at_once_or_sleeps_then_sums_the_roots(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    with pytest.raises(ValueError, match=r"^Task 5 failed intentionally$"):
        l29.riskyComputation(5, True, 500)
    assert sleeps == []  # it raises before any sleep
    assert l29.riskyComputation(6, False, 30) == (6, SUM_OF_ROOTS)
    assert sleeps == [0.03]  # timeoutMs / 1000 seconds
    assert SUM_OF_ROOTS == 7453447.9139


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
def test_planTasks_is_the_spec_mix_4_4_4_shortest_hold_first(seed: int) -> None:
    plan = l29.planTasks(l29.Exercise4Config(), seed)
    assert sorted(task.taskId for task in plan) == list(range(12))
    # The spec's 12: 4 with shouldFail=True, 4 of 800 ms (past the 500 ms deadline), 4 of 100 ms that succeed.
    assert sum(task.shouldFail for task in plan) == 4
    assert sum(not task.shouldFail and task.timeoutMs == 800.0 for task in plan) == 4
    assert sum(not task.shouldFail and task.timeoutMs == 100.0 for task in plan) == 4
    roles = [task.role for task in plan]
    assert roles == ["fails"] * 4 + ["succeeds"] * 4 + ["too slow"] * 4
    assert all(task.shouldFail == (task.role == "fails") for task in plan)
    assert {task.timeoutMs for task in plan if task.role == "too slow"} == {800.0}


def specReport(taskId: int, shouldFail: bool, timeoutMs: float, deadlineMs: float) -> l29.TaskReport:
    """What the spec says a task ends as, from its arguments alone: ValueError, a missed deadline, or its result."""
    if shouldFail:
        return {
            "taskId": taskId,
            "status": "failed",
            "error": f"Task {taskId} failed intentionally",
            "errorType": "ValueError",
        }
    if timeoutMs > deadlineMs:
        error = f"no result within the {deadlineMs:.0f} ms deadline"
        return {"taskId": taskId, "status": "failed", "error": error, "errorType": "TimeoutError"}
    return {"taskId": taskId, "status": "ok", "result": SUM_OF_ROOTS}


def specReports(plan: tuple[l29.PlannedTask, ...], config: l29.Exercise4Config) -> tuple[l29.TaskReport, ...]:
    """Every task's spec outcome, by taskId."""
    ordered = sorted(plan, key=lambda task: task.taskId)
    return tuple(specReport(task.taskId, task.shouldFail, task.timeoutMs, config.deadlineMs) for task in ordered)


def assertRecovered(result: l29.Exercise4Result) -> None:
    """The retries: exactly the failed tasks, by taskId, each with shouldFail=False and okMs, each ok."""
    failed = [report["taskId"] for report in result.run.reports if report["status"] == "failed"]
    assert result.run.retries == tuple(specReport(taskId, False, result.config.okMs, 1e9) for taskId in failed)
    assert result.retriesSucceeded == len(failed)


def test_exercise4_split_is_exact_and_retries_all_succeed() -> None:
    first = l29.runExercise4(RISKY, seed=11, executor="thread")
    assert (first.successes, first.valueErrors, first.timeouts) == (4, 4, 4)
    assert first.matchingRoles == 12
    assert first.run.reports == specReports(first.plan, RISKY)
    assertRecovered(first)
    assert first.retriesSucceeded == 8
    # The 4 timed-out tasks kept their workers after the deadline: each slept 260 ms from a start before it.
    timedOut = [report["taskId"] for report in first.run.reports if l29.errorTypeOf(report) == "TimeoutError"]
    assert [timing.taskId for timing in first.run.abandoned] == timedOut
    assert all(timing.finished for timing in first.run.abandoned)
    assert all(timing.busyAfterDeadlineSeconds >= 0.06 - 1e-9 for timing in first.run.abandoned)
    assert first.totalSeconds == first.run.firstRoundSeconds + first.run.drainSeconds + first.run.retrySeconds
    report = l29.formatExercise4(first).splitlines()
    assert "Sum check: 4 + 4 + 4 = 12 of 12: ok" in report
    assert "Retries: 8 of 8 succeeded." in report


@pytest.mark.parametrize("startMethod", START_METHODS)
def test_exercise4_process_pool_split(startMethod: StartMethod) -> None:
    config = replace(RISKY, failing=2, slow=2, succeeding=2, workers=2)
    result = l29.runExercise4(config, seed=12, executor="process", startMethod=startMethod)
    assert (result.successes, result.valueErrors, result.timeouts) == (2, 2, 2)
    assert result.matchingRoles == 6
    assert result.run.reports == specReports(result.plan, config)
    assertRecovered(result)
    assert result.retriesSucceeded == 4


class JumpingSelector(selectors.DefaultSelector):
    """A selector that never sleeps: where the loop would wait ``timeout`` seconds, its clock jumps by that much."""

    def __init__(self, loop: VirtualClockLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            raise RuntimeError("nothing scheduled and nothing to wait for: the model would wait forever")
        self._loop.now += timeout
        return super().select(0)


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop on a virtual clock: timers fire in their order at once, and no stall of this machine can
    reorder a deadline and a result (trio's MockClock, looptime's idea)."""

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(JumpingSelector(self))

    def time(self) -> float:
        return self.now


class ModelPool:
    """``workers`` workers that run ``riskyComputation`` in virtual time, first come first served: a failing
    task raises its ValueError at once; any other holds its worker ``timeoutMs``, then gives the spec's result.
    Like a process pool, it drops a task cancelled while it waits, and cannot stop a task it started."""

    def __init__(self, workers: int) -> None:
        self._free = workers
        self._waiting: collections.deque[tuple[tuple[int, bool, float], Future[Any]]] = collections.deque()

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        assert (getattr(fn, "__name__", ""), kwargs) == ("riskyComputation", {})
        future: Future[Any] = Future()
        self._waiting.append((cast(tuple[int, bool, float], args), future))
        self._start()
        return future

    def _start(self) -> None:
        while self._free and self._waiting:
            (taskId, shouldFail, timeoutMs), future = self._waiting.popleft()
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while it waited for a worker: a pool drops it
            if shouldFail:
                try:
                    l29.riskyComputation(taskId, shouldFail, timeoutMs)
                except ValueError as error:
                    future.set_exception(error)
                continue
            self._free -= 1
            asyncio.get_running_loop().call_later(timeoutMs / 1000, self._finish, taskId, future)

    def _finish(self, taskId: int, future: Future[Any]) -> None:
        self._free += 1
        future.set_result((taskId, SUM_OF_ROOTS))
        self._start()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass


def configs4() -> st.SearchStrategy[l29.Exercise4Config]:
    """Task mixes and pools the config accepts, at the spec's timings: a 500 ms deadline, 800 ms slow tasks."""

    def build(failing: int, slow: int, succeeding: int, workers: int, okMs: float) -> l29.Exercise4Config | None:
        try:
            return l29.Exercise4Config(failing=failing, slow=slow, succeeding=succeeding, workers=workers, okMs=okMs)
        except ConfigError:
            return None

    mixes = st.builds(
        build,
        st.integers(0, 6),
        st.integers(0, 6),
        st.integers(0, 6),
        st.integers(1, 4),
        st.sampled_from([0.0, 10.0, 50.0, 100.0]),
    )
    return mixes.filter(lambda config: config is not None)  # type: ignore[return-value]


@settings(max_examples=60, deadline=None)
@given(config=configs4(), seed=st.integers(0, 2**32))
def test_every_task_mix_the_config_accepts_splits_exactly_adds_up_and_recovers(
    config: l29.Exercise4Config, seed: int
) -> None:
    plan = l29.planTasks(config, seed)
    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        run = runner.run(l29.handleWithRecovery(plan, ModelPool(config.workers), config))
    result = l29.Exercise4Result(config, "thread", plan, run, 0.0)
    assert [report["taskId"] for report in run.reports] == list(range(config.tasks))
    assert (result.successes, result.valueErrors, result.timeouts) == (config.succeeding, config.failing, config.slow)
    assert result.successes + result.valueErrors + result.timeouts == config.tasks
    assert run.reports == specReports(plan, config)
    assertRecovered(result)
    total = config.tasks
    sumCheck = f"Sum check: {config.succeeding} + {config.failing} + {config.slow} = {total} of {total}: ok"
    assert sumCheck in l29.formatExercise4(result).splitlines()


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
    Seen = tuple[l29.WatchedTask, ...]

    async def scenario(pool: TaskExecutor) -> tuple[bool, float, Seen, int, Seen]:
        watched = l29.WatchedExecutor(pool)
        standIn = watched.submit(time.sleep, 0.1)
        cancelled = standIn.cancel()  # what wait_for does at its deadline
        drained = await watched.drain(5.0)
        afterDrain = watched.statistics()
        value = await asyncio.wrap_future(watched.submit(pow, 2, 10))
        return cancelled, drained, afterDrain, value, watched.statistics()

    with executorScope("thread", 1) as pool:
        cancelled, drained, afterDrain, value, tasks = asyncio.run(scenario(pool))
    assert cancelled
    # drain returned once the abandoned sleep had left the worker, long before its limit
    assert [(task.args, task.finished) for task in afterDrain] == [((0.1,), True)]
    assert drained < 5.0
    assert value == 1024
    assert [(task.args, task.finished) for task in tasks] == [((0.1,), True), ((2, 10), True)]
    assert tasks[0].seconds == afterDrain[0].seconds >= 0.1


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
