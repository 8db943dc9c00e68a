"""Lecture 36: pipeline accounting, adaptive sizing, priority order, fault tolerance, read from result objects."""

from __future__ import annotations

import asyncio
import functools
import math
import multiprocessing
import os
import re
import signal
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import daskrun
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import l36
from lab import lecture36 as lab36
from lab.claims import Claim, ClaimKind, Verdict
from lab.faults import inject, problems
from shared import (
    ConfigError,
    ExecutorKind,
    InlineExecutor,
    RunOptions,
    SensorReading,
    StartMethod,
    TaskExecutor,
    makeRng,
    warmUp,
)

ROOT = Path(__file__).resolve().parent.parent
# fork and spawn here (DESIGN.md); forkserver runs in test_shared, invoke matrix and invoke faults.
START_METHODS: list[StartMethod] = ["fork", "spawn"]


def structuralHold(claims: Sequence[Claim]) -> bool:
    return all(claim.verdict is Verdict.HOLDS for claim in claims if claim.kind is ClaimKind.STRUCTURAL)


def verdictOf(claims: Sequence[Claim], words: str) -> Verdict:
    [claim] = [claim for claim in claims if words in claim.statement]
    return claim.verdict


def reading(seq: int, value: float, sensorId: int = 0) -> SensorReading:
    return SensorReading(sensorId, seq, value, 0.0)


# ============================================================================
# Exercise 1
# ============================================================================

SMALL1 = l36.Exercise1Config(workers=2, durationSec=0.25, intervalSec=0.02)


def test_computeBatch_normalizes_on_the_scale_rolls_over_five_and_flags_above_0_8() -> None:
    values = [10.0, 20.0, 30.0, 40.0, 50.0, 90.0, 120.0]
    results = l36.computeBatch([reading(i, v) for i, v in enumerate(values)])
    assert [r.normalized for r in results] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.9, 1.0]
    assert results[0].rollingMean == pytest.approx(0.1)
    assert results[4].rollingMean == pytest.approx(0.3)
    assert results[6].rollingMean == pytest.approx((0.3 + 0.4 + 0.5 + 0.9 + 1.0) / 5)
    assert [r.anomaly for r in results] == [False] * 5 + [True, True]


def test_batchAssembler_fills_batches_then_flushes_after_a_quiet_spell_and_at_the_end() -> None:
    async def scenario() -> tuple[list[int], l36.BatchAssembler]:
        queue: asyncio.Queue[SensorReading | None] = asyncio.Queue()
        for seq in range(19):
            queue.put_nowait(reading(seq, 50.0))
        assembler = l36.BatchAssembler()

        async def feedLater() -> None:
            await asyncio.sleep(0.08)
            for seq in range(19, 21):
                await queue.put(reading(seq, 50.0))
            await queue.put(None)

        feeder = asyncio.create_task(feedLater())
        sizes = [len(batch) async for batch in assembler.assemble(queue, 15, 0.03)]
        await feeder
        return sizes, assembler

    sizes, assembler = asyncio.run(scenario())
    assert sizes == [15, 4, 2]
    assert (assembler.fullBatches, assembler.timeoutFlushes, assembler.finalFlushes) == (1, 1, 1)


def test_ingestion_keeps_going_when_one_source_raises() -> None:
    async def scenario() -> tuple[l36.IngestionStatistics, int]:
        sources = [
            lab36.FailingSensorSource(sensorId, intervalSec=0.01, seed=1, failAfter=2)
            if sensorId == 1
            else l36.AsyncSensorSource(sensorId, intervalSec=0.01, seed=1)
            for sensorId in range(3)
        ]
        layer = l36.AsyncIngestionLayer(sources, maxsize=50)
        drained = 0

        async def drain() -> None:
            nonlocal drained
            while await layer.queue.get() is not None:
                drained += 1

        consumer = asyncio.create_task(drain())
        await layer.run(0.2)
        await asyncio.wait_for(consumer, timeout=5)
        return layer.statistics(), drained

    statistics, drained = asyncio.run(scenario())
    assert [(f.source, f.errorType, f.readings) for f in statistics.failures] == [("sensor-1", "TimeoutError", 2)]
    failedAt = statistics.failures[0].atSec
    healthy = [row for row in statistics.sources if not row.failed]
    assert [row.source for row in healthy] == ["sensor-0", "sensor-2"]
    assert all(row.ingested > 2 and row.lastAtSec > failedAt for row in healthy)
    assert drained == sum(row.ingested for row in statistics.sources)


def test_resultsSink_summarizes_every_100_records_and_can_keep_only_the_last() -> None:
    lines: list[str] = []
    sink = l36.ResultsSink(retain=10, log=lines.append)
    batch = l36.computeBatch([reading(i, 90.0 if i % 3 == 0 else 10.0) for i in range(15)])
    for _ in range(20):
        sink.receive_batch(batch)
    assert sink.received == 300
    assert sink.anomalies == 100
    assert sink.summaries == 3
    assert len(lines) == 3
    assert lines[0].startswith("[sink] 105 received, 35 anomalies")
    assert len(sink.results) == 10


def test_exercise1_inline_loses_nothing() -> None:
    lines: list[str] = []
    result = l36.runExercise1(SMALL1, RunOptions(seed=3, executor="inline"), log=lines.append)
    main = result.main
    assert main.nothingLost
    assert main.keysMatch is True
    assert main.ingested == main.processed == main.received > 0
    assert main.ingestion.failures == ()
    assert [row.source for row in main.ingestion.sources] == [f"sensor-{i}" for i in range(5)]


def test_the_report_names_a_source_that_failed() -> None:
    lines: list[str] = []
    sources = l36.makeSources(SMALL1, 3, intervalSec=0.02)
    sources[4] = lab36.FailingSensorSource(4, intervalSec=0.02, seed=3, failAfter=3)
    sink = l36.ResultsSink(log=lines.append)
    report = asyncio.run(l36.runPipeline(sources, InlineExecutor(), sink, SMALL1, log=lines.append))
    assert report.nothingLost
    assert [(f.source, f.readings) for f in report.ingestion.failures] == [("sensor-4", 3)]
    assert any(line.startswith("[ingest] sensor-4 failed at") for line in lines)
    text = l36.formatExercise1(l36.Exercise1Result(SMALL1, "inline", report))
    assert "FAILED: sensor-4 stopped responding after 3 readings" in text


def sinkFigures(config: l36.Exercise1Config, seed: int, report: l36.PipelineReport) -> tuple[int, float]:
    """Anomalies and mean normalized value of exactly the readings each source ingested, recomputed here."""
    sources = l36.makeSources(config, seed, intervalSec=0.0)

    async def take(source: l36.AsyncSensorSource, count: int) -> list[SensorReading]:
        return [await source.read() for _ in range(count)]

    ingested = {row.source: row.ingested for row in report.ingestion.sources}
    readings = [reading for source in sources for reading in asyncio.run(take(source, ingested[source.name]))]
    results = l36.computeBatch(readings)
    return sum(r.anomaly for r in results), sum(r.normalized for r in results) / len(results)


SMALL1P = replace(SMALL1, durationSec=0.15)


@pytest.mark.parametrize("startMethod", START_METHODS)
def test_exercise1_on_a_process_pool_loses_nothing_and_sums_every_reading(startMethod: StartMethod) -> None:
    result = l36.runExercise1(SMALL1P, RunOptions(seed=4, executor="process", startMethod=startMethod))
    assert result.main.nothingLost
    assert result.main.keysMatch is True
    assert result.main.ingestion.maxDepth <= SMALL1P.queueMaxsize
    anomalies, meanNormalized = sinkFigures(SMALL1P, 4, result.main)
    assert result.main.anomalies == anomalies
    assert result.main.meanNormalized == pytest.approx(meanNormalized)


def test_exercise1_same_seed_same_readings() -> None:
    first = l36.makeSources(SMALL1, 7, intervalSec=0.0)
    second = l36.makeSources(SMALL1, 7, intervalSec=0.0)

    async def take(sources: list[l36.AsyncSensorSource]) -> list[float]:
        return [(await source.read()).value for source in sources for _ in range(3)]

    assert asyncio.run(take(first)) == asyncio.run(take(second))


# ============================================================================
# Exercise 2
# ============================================================================


def test_monitor_recommends_the_size_with_the_lowest_ms_per_record_among_the_last_10() -> None:
    monitor = l36.ThroughputMonitor()
    with pytest.raises(LookupError, match=r"^no batch recorded yet: nothing to recommend$"):
        monitor.recommended_batch_size()
    monitor.record_batch(10, 5.0)
    monitor.record_batch(20, 8.0)
    monitor.record_batch(40, 20.0)
    assert monitor.recommended_batch_size() == 20
    for _ in range(10):
        monitor.record_batch(5, 4.0)
    assert len(monitor.history) == 10
    assert monitor.recommended_batch_size() == 5


def test_monitor_alone_never_leaves_the_size_it_was_given() -> None:
    monitor = l36.ThroughputMonitor()
    for duration in (3.0, 2.0, 9.0):
        monitor.record_batch(10, duration)
    assert monitor.recommended_batch_size() == 10


class CostModel:
    """A fake clock and a compute function that advances it by ``overhead + perRecord * n ** power``."""

    def __init__(self, overheadMs: float, perRecordMs: float, power: float) -> None:
        self.now = 0.0
        self.overheadMs = overheadMs
        self.perRecordMs = perRecordMs
        self.power = power

    def clock(self) -> float:
        return self.now

    def compute(self, batch: Sequence[SensorReading]) -> list[float]:
        self.now += (self.overheadMs + self.perRecordMs * len(batch) ** self.power) / 1e3
        return l36.computeLightBatch(batch)


def runModel(model: CostModel, records: int, *, explore: bool = True) -> l36.BatchRun:
    exploration = l36.Exploration() if explore else None
    processor = l36.AdaptiveBatchProcessor(model.compute, InlineExecutor(), explore=exploration)
    readings = l36.makeReadings(records, 1, 2)
    run = l36.processInBatches(model.compute, processor.executor, readings, processor, inFlight=1, clock=model.clock)
    return replace(run, changes=processor.changes, finalSize=processor.batchSize)


def test_processor_climbs_to_200_when_every_batch_pays_a_fixed_round_trip() -> None:
    run = runModel(CostModel(overheadMs=0.5, perRecordMs=0.002, power=1.0), 5_000)
    assert run.batches[0].planned == 10
    assert [batch.planned for batch in run.batches[:5]] == [10, 30, 90, 200, 5]
    assert [c.newSize for c in run.changes[:2]] == [200, 200]
    assert [batch.planned for batch in run.batches[5:15]] == [200] * 4 + [200] + [200] * 4 + [100]
    assert run.finalSize == 200
    assert run.outputsMatch


def test_the_spec_processor_keeps_its_size_whatever_the_costs() -> None:
    # Requirement 2 read literally: every batch has the current size, so the monitor's history
    # holds only size 10 and its argmin is 10, even where 200 would be 4x cheaper per record.
    run = runModel(CostModel(overheadMs=0.5, perRecordMs=0.002, power=1.0), 1_000, explore=False)
    assert [batch.planned for batch in run.batches] == [10] * 100
    assert [c.afterBatches for c in run.changes] == list(range(5, 101, 5))
    assert {(c.recommended, c.newSize) for c in run.changes} == {(10, 10)}
    assert run.finalSize == 10


def test_processor_comes_down_to_5_when_cost_grows_faster_than_the_batch() -> None:
    run = runModel(CostModel(overheadMs=0.0, perRecordMs=0.01, power=2.0), 2_000)
    assert run.finalSize == 5
    assert all(5 <= batch.planned <= 200 for batch in run.batches)


@given(
    overheadMs=st.floats(0.0, 5.0),
    perRecordMs=st.floats(0.0001, 0.1),
    power=st.floats(0.5, 2.0),
    records=st.integers(1, 1_500),
    explore=st.booleans(),
)
@settings(max_examples=40)
def test_processor_invariants_hold_for_any_cost_model(
    overheadMs: float, perRecordMs: float, power: float, records: int, explore: bool
) -> None:
    run = runModel(CostModel(overheadMs, perRecordMs, power), records, explore=explore)
    assert run.outputsMatch
    assert sum(batch.size for batch in run.batches) == records
    assert all(5 <= batch.planned <= 200 for batch in run.batches)
    assert [c.afterBatches for c in run.changes] == list(range(5, len(run.batches) + 1, 5))
    assert all(5 <= c.newSize <= 200 for c in run.changes)


@pytest.mark.parametrize("startMethod", START_METHODS)
def test_exercise2_on_a_process_pool_keeps_every_result(startMethod: StartMethod) -> None:
    config = l36.Exercise2Config(records=400)
    result = l36.runExercise2(config, RunOptions(seed=2, startMethod=startMethod))
    for workload in result.workloads:
        assert all(run.outputsMatch for run in (workload.literal, workload.exploring))
        assert sum(batch.size for batch in workload.literal.batches) == 400
        assert [batch.planned for batch in workload.literal.batches] == [10] * 40
        assert workload.literal.finalSize == workload.literal.finalRecommended == 10
        assert [batch.planned for batch in workload.exploring.batches[:4]] == [10, 30, 90, 200]
    report = l36.formatExercise2(result)
    assert "computeLightBatch:" in report
    assert "its history only ever holds size 10, so the argmin is 10" in report


def test_heavy_batch_is_100_sines_per_record() -> None:
    acc = 42.0
    for _ in range(100):
        acc = math.sin(acc) + 1.0
    assert l36.computeHeavyBatch([reading(0, 42.0)]) == [acc]
    assert l36.computeLightBatch([reading(0, 21.0)]) == [42.0]


# ============================================================================
# Exercise 3
# ============================================================================


@pytest.mark.parametrize(
    ("value", "priority", "urgency"),
    [
        (85.0, "NORMAL", None),
        (15.0, "NORMAL", None),
        (50.0, "NORMAL", None),
        (100.0, "CRITICAL", 100.0),
        (92.5, "CRITICAL", 50.0),
        (0.0, "CRITICAL", 100.0),
        (7.5, "CRITICAL", 50.0),
    ],
)
def test_classify_and_urgencyScore(value: float, priority: str, urgency: float | None) -> None:
    record = reading(0, value)
    assert l36.classify(record) == priority
    [result] = l36.computePriorityBatch([record])
    assert result.priority == priority
    assert result.urgencyScore == (None if urgency is None else pytest.approx(urgency))
    assert result.normalized == pytest.approx(value / 100)


Op = tuple[str, int]


@given(
    st.lists(
        st.one_of(
            st.tuples(st.sampled_from(["CRITICAL", "NORMAL"]), st.just(0)),
            st.tuples(st.just("get"), st.integers(1, 12)),
        ),
        max_size=80,
    )
)
@settings(max_examples=60)
def test_get_batch_drains_critical_first_and_keeps_fifo_within_a_class(ops: list[Op]) -> None:
    async def scenario() -> None:
        queue = l36.PriorityBatchQueue(maxsize=100)
        model: dict[str, deque[int]] = {"CRITICAL": deque(), "NORMAL": deque()}
        for seq, (kind, size) in enumerate(ops):
            if kind == "get":
                expected = [model["CRITICAL"].popleft() for _ in range(min(size, len(model["CRITICAL"])))]
                room = size - len(expected)
                expected += [model["NORMAL"].popleft() for _ in range(min(room, len(model["NORMAL"])))]
                batch = await queue.get_batch(size, timeoutSec=0.001)
                assert [record.seq for record in batch] == expected
            else:
                await queue.put(reading(seq, 50.0), "CRITICAL" if kind == "CRITICAL" else "NORMAL")
                model[kind].append(seq)

    asyncio.run(scenario())


def test_get_batch_returns_empty_after_its_deadline() -> None:
    async def scenario() -> list[SensorReading]:
        return await l36.PriorityBatchQueue().get_batch(5, timeoutSec=0.01)

    assert asyncio.run(scenario()) == []


SMALL3 = l36.Exercise3Config(durationSec=0.12, intervalSec=0.005, pollSec=0.01)


@pytest.mark.parametrize("startMethod", START_METHODS)
def test_exercise3_processes_everything_in_priority_order(startMethod: StartMethod) -> None:
    result = l36.runExercise3(SMALL3, RunOptions(seed=5, startMethod=startMethod))
    run = result.main
    assert run.processed == run.produced > 0
    assert all(r.priority == ("CRITICAL" if r.value > 85 or r.value < 15 else "NORMAL") for r in run.results)
    assert all((r.urgencyScore is not None) == (r.priority == "CRITICAL") for r in run.results)
    assert run.criticalProcessed == run.producedCritical
    assert len(run.criticalLatencyMs) == run.criticalProcessed
    rng = makeRng(5, l36.LECTURE, 3, SMALL3.criticalFraction)
    expected = [l36.priorityValue(rng, SMALL3.criticalFraction) for _ in range(run.produced)]
    assert [r.value for r in run.results] == expected
    report = l36.formatExercise3(result)
    assert "Mean CRITICAL latency" in report
    assert "NORMAL:" in report


def test_exercise3_prints_every_record_with_urgency_above_50_percent() -> None:
    result = l36.runExercise3(
        replace(SMALL3, durationSec=0.6, intervalSec=0.002), RunOptions(seed=5, executor="inline")
    )
    urgent = [r for r in result.main.results if r.urgencyScore is not None and r.urgencyScore > 50]
    assert len(urgent) > 4
    assert list(result.main.urgent) == urgent
    rows = l36.formatExercise3(result).split("urgencyScore > 50%")[1]
    printed = [int(cell) for line in rows.splitlines()[3:] for cell in line.split()[0::3] if cell.isdigit()]
    assert printed == [r.seq for r in urgent]


# ============================================================================
# Exercise 4
# ============================================================================


def job(*values: float, crashRate: float = 0.0) -> l36.ComputeJob:
    records = tuple(l36.FaultRecord(i, v) for i, v in enumerate(values))
    return l36.ComputeJob(0, "main", records, seed=1, crashRate=crashRate)


def test_faultTolerantCompute_returns_error_records_instead_of_raising() -> None:
    results = l36.faultTolerantCompute(job(4.0, -1.0, math.nan, math.inf, 0.0))
    assert [entry["status"] for entry in results] == ["OK", "FAILED", "POISON_PILL", "POISON_PILL", "FAILED"]
    first = results[0]
    assert first["status"] == "OK"
    assert first["result"] == pytest.approx(math.log(4.0) * 10 + 2.0)
    failed = results[1]
    assert failed["status"] == "FAILED"
    assert failed["error"] == "math domain error"
    assert failed["originalRecord"] == l36.FaultRecord(1, -1.0)


def test_faultTolerantCompute_crashes_at_rate_1() -> None:
    with pytest.raises(RuntimeError, match=r"^worker crash$"):
        l36.faultTolerantCompute(job(1.0, crashRate=1.0))


def test_crash_decision_comes_from_seed_batch_and_stage() -> None:
    draws = [l36.crashDecision(9, batchId, "main", 0.5) for batchId in range(200)]
    assert draws == [l36.crashDecision(9, batchId, "main", 0.5) for batchId in range(200)]
    assert 60 < sum(draws) < 140
    assert draws != [l36.crashDecision(9, batchId, "recovery", 0.5) for batchId in range(200)]


def outcomes(report: l36.ProcessingReport, replay: l36.ReplayReport | None = None) -> dict[int, str]:
    """Each record's outcome: its status, or DEAD; after ``replay``, if given."""
    found: dict[int, str] = {l36.entryRecordId(e): e["status"] for e in report.results}
    found.update({letter.record.recordId: "DEAD" for letter in report.deadLetters})
    if replay is not None:
        found.update({l36.entryRecordId(e): e["status"] for e in replay.recovered})
    return found


def killing(killers: frozenset[int], *, abrupt: bool) -> l36.ComputeJobFn:
    """faultTolerantCompute with fatal records (the lab's simulation, injected as the computeFn)."""
    return functools.partial(lab36.killerCompute, killers=killers, abrupt=abrupt)


def processRecords(
    records: tuple[l36.FaultRecord, ...],
    *,
    crashRate: float,
    seed: int,
    batchSize: int,
    kind: ExecutorKind = "inline",
    startMethod: StartMethod | None = None,
    workers: int = 2,
    killers: frozenset[int] = frozenset(),
) -> tuple[l36.ProcessingReport, l36.ReplayReport]:
    processor = l36.FaultTolerantBatchProcessor(
        seed=seed,
        crashRate=crashRate,
        computeFn=killing(killers, abrupt=kind == "process"),
        batchSize=batchSize,
        executor=kind,
        workers=workers,
        startMethod=startMethod,
    )
    report = processor.process(records)
    return report, processor.deadLetterLog.replay(killing(killers, abrupt=False))


@given(
    seed=st.integers(0, 10_000),
    crashRate=st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0)),
    poisonRate=st.floats(0.0, 0.5),
    count=st.integers(1, 80),
    batchSize=st.integers(1, 25),
    killers=st.integers(0, 3),
)
@settings(max_examples=60)
def test_every_record_ends_in_exactly_one_outcome(
    seed: int, crashRate: float, poisonRate: float, count: int, batchSize: int, killers: int
) -> None:
    records = l36.makeFaultRecords(count, seed=seed, poisonRate=poisonRate, glitchRate=0.1)
    killerIds = lab36.chooseKillers(count, seed, killers)
    report, replay = processRecords(records, crashRate=crashRate, seed=seed, batchSize=batchSize, killers=killerIds)
    assert sorted(outcomes(report)) == list(range(count))
    assert len(report.results) + len(report.deadLetters) == count
    assert sum(report.count(status) for status in l36.STATUSES) + len(report.deadLetters) == count
    sent = len(report.crashedBatches) + len(report.killerBatches) + len(report.lostBatches)
    assert sent == sum(report.recovery)
    assert killerIds <= {letter.record.recordId for letter in report.deadLetters}
    assert replay.attempted == len(report.deadLetters)
    assert replay.successes + len(replay.stillDead) == replay.attempted
    stillDead = {letter.record.recordId for letter in replay.stillDead}
    assert killerIds <= stillDead
    assert all(d.failure.errorType == "RuntimeError" for d in replay.stillDead if d.record.recordId not in killerIds)
    killerBatches = sorted({k // batchSize for k in killerIds})
    if crashRate == 0.0:
        assert report.crashes == 0
        assert list(report.killerBatches) == killerBatches
        assert {d.record.recordId for d in report.deadLetters} == {
            r for b in killerBatches for r in range(b * batchSize, min(count, b * batchSize + batchSize))
        }
        assert stillDead == killerIds
    if crashRate == 1.0:
        assert len(report.deadLetters) == count
        assert report.killerBatches == ()
        assert all(letter.failure.errorType == "RuntimeError" for letter in report.deadLetters)
        assert all(letter.failure.attempts == 2 for letter in report.deadLetters)
        assert replay.successes == 0


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("startMethod", "seed", "crashRate", "killers", "workers"),
    [
        # Seed 18 under fork: two killers, two crashed batches, one recovered and one crashing
        # again on the recovery pool, so the replacement and recovery pools are both made.
        ("fork", 18, 0.2, 2, 2),
        # One worker under spawn: each of the pools starts a new interpreter per worker,
        # importing the lecture again.
        ("spawn", 11, 0.1, 1, 1),
    ],
)
def test_a_real_worker_death_is_survived_and_reproducible(
    startMethod: StartMethod, seed: int, crashRate: float, killers: int, workers: int
) -> None:
    records = l36.makeFaultRecords(60, seed=seed, poisonRate=0.1, glitchRate=0.05)
    killerIds = lab36.chooseKillers(60, seed, killers)
    assert len(killerIds) == killers
    report, replay = processRecords(
        records,
        crashRate=crashRate,
        seed=seed,
        batchSize=10,
        kind="process",
        startMethod=startMethod,
        workers=workers,
        killers=killerIds,
    )
    assert sorted(outcomes(report)) == list(range(60))
    assert len(report.results) + len(report.deadLetters) == 60
    # Replaced after the main run's death, after each killer's batch alone, after each recovery worker's.
    assert report.poolReplacements >= 1 + len(report.killerBatches) + report.ended("killed the recovery worker")
    assert (report.lostBatches, report.ended("broken from outside")) == ((), 0)
    sent = len(report.crashedBatches) + len(report.killerBatches)
    assert sent == report.ended("recovered") + report.ended("crashed again") + report.ended(
        "killed the recovery worker"
    )
    dead = {letter.record.recordId: letter for letter in report.deadLetters}
    assert any(d.startswith(f"exit code {lab36.KILLER_EXIT_CODE} in the main run") for d in report.deaths)
    deaths = [dead[k].failure for k in killerIds if dead[k].failure.errorType == "BrokenProcessPool"]
    # (a killer's batch may crash again on the recovery pool before its killer runs)
    assert all(f.message.startswith(f"worker exit code {lab36.KILLER_EXIT_CODE}: ") for f in deaths)
    assert all(dead[k].failure.errorType in ("BrokenProcessPool", "RuntimeError") for k in killerIds)
    assert killerIds <= {letter.record.recordId for letter in replay.stillDead}
    inline, inlineReplay = processRecords(records, crashRate=crashRate, seed=seed, batchSize=10, killers=killerIds)
    assert outcomes(report) == outcomes(inline)
    assert outcomes(report, replay) == outcomes(inline, inlineReplay)
    assert report.killerBatches == inline.killerBatches
    assert [d.failure.attempts for d in report.deadLetters] == [d.failure.attempts for d in inline.deadLetters]
    assert (report.crashes, report.recovery) == (inline.crashes, inline.recovery)
    assert replay.successes == inlineReplay.successes


@pytest.mark.timeout(20)
def test_supervisedPool_replaces_a_broken_pool_and_says_how_its_worker_ended() -> None:
    with l36.SupervisedPool("process", 2, "fork") as pool:
        with pytest.raises(BrokenExecutor) as broken:
            pool.executor.submit(os._exit, 70).result(timeout=10)
        assert pool.replace(broken.value) == "exit code 70"
        assert pool.executor.submit(l36.faultTolerantCompute, job(1.0)).result(timeout=10)[0]["status"] == "OK"
        assert (pool.replacements, pool.startBreaks) == (1, [])
    assert multiprocessing.active_children() == []


def test_supervisedPool_starts_again_when_a_worker_is_killed_while_it_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    starts: list[int] = []

    def killFirstStart(executor: TaskExecutor, workers: int, *, preload: Sequence[str]) -> float:
        starts.append(workers)
        if len(starts) == 1:
            os.kill(executor.submit(os.getpid).result(timeout=10), signal.SIGKILL)
        return warmUp(executor, workers, preload=preload)

    monkeypatch.setattr("l36.warmUp", killFirstStart)
    lines: list[str] = []
    with l36.SupervisedPool("process", 2, "fork", log=lines.append) as pool:
        assert pool.executor.submit(l36.faultTolerantCompute, job(1.0)).result(timeout=10)[0]["status"] == "OK"
    assert (starts, pool.startBreaks, pool.replacements) == ([2, 2], ["SIGKILL"], 0)
    assert lines == ["[pool] a worker died while its pool started (SIGKILL): starting again"]
    assert multiprocessing.active_children() == []


def killedAt(
    batchId: int, stage: l36.Stage, records: tuple[l36.FaultRecord, ...], crashRate: float
) -> l36.ProcessingReport:
    """The records through a fork pool whose worker given ``batchId`` at ``stage`` is SIGKILLed."""
    lines: list[str] = []
    processor = l36.FaultTolerantBatchProcessor(
        seed=7,
        crashRate=crashRate,
        computeFn=functools.partial(lab36.sigkillAt, batchId=batchId, stage=stage),
        batchSize=10,
        startMethod="fork",
        log=lines.append,
    )
    report = processor.process(records)
    assert max(len(line) for text in lines for line in text.splitlines()) <= 100
    return report


@pytest.mark.timeout(30)
def test_a_worker_killed_from_outside_costs_only_the_batches_in_flight_which_the_recovery_pool_runs() -> None:
    records = l36.makeFaultRecords(120, seed=7, poisonRate=0.1, glitchRate=0.05)
    report = killedAt(6, "main", records, crashRate=0.0)
    assert 6 in report.lostBatches
    assert 1 <= len(report.lostBatches) <= 4  # two batches per worker in flight
    lost = f"batch{'es' if len(report.lostBatches) > 1 else ''} {', '.join(map(str, report.lostBatches))}"
    assert report.deaths == (f"SIGKILL (from outside) in the main run: {lost} re-run on the recovery pool",)
    assert (report.crashedBatches, report.killerBatches) == ((), ())
    assert report.ended("recovered") == len(report.lostBatches)
    assert report.deadLetters == ()
    undisturbed, _ = processRecords(records, crashRate=0.0, seed=7, batchSize=10)
    assert outcomes(report) == outcomes(undisturbed)  # the kill changed no record's outcome


@pytest.mark.timeout(30)
def test_a_recovery_worker_killed_from_outside_dead_letters_its_batch_and_the_replay_brings_it_back() -> None:
    records = l36.makeFaultRecords(200, seed=7, poisonRate=0.1, glitchRate=0.05)
    crashed = [b for b in range(20) if l36.crashDecision(7, b, "main", 0.2)]
    victim = next(b for b in crashed if not l36.crashDecision(7, b, "replay", 0.2))
    report = killedAt(victim, "recovery", records, crashRate=0.2)
    assert report.crashedBatches == tuple(crashed)
    assert report.deaths == (f"SIGKILL (from outside) on the recovery pool: batch {victim} dead-lettered",)
    assert report.ended("broken from outside") == 1
    assert len(crashed) == sum(report.recovery)
    lost = [d for d in report.deadLetters if d.job.batchId == victim]
    assert [d.record.recordId for d in lost] == list(range(victim * 10, victim * 10 + 10))
    assert all(d.failure.message.startswith("worker SIGKILL (killed from outside): ") for d in lost)
    assert all((d.failure.errorType, d.failure.attempts) == ("BrokenProcessPool", 2) for d in lost)
    assert sorted(outcomes(report)) == list(range(200))
    replayed = l36.DeadLetterLog()
    for letter in lost:
        replayed.add(letter.job, letter.record, RuntimeError("from the report"), attempts=2)
    assert replayed.replay(l36.faultTolerantCompute).successes == 10


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
@pytest.mark.parametrize("startMethod", ["fork", "spawn"])
def test_exercise4_survives_a_worker_killed_from_outside_and_counts_it(
    startMethod: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A temporary folder of its own: what other runs on the machine leave in /tmp is not this run's.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    # A worker killed while the pool is still starting it can be missed by the scope's bookkeeping, which
    # then names the survivors' SIGTERM (shared.executorScope); either way, it was killed from outside.
    counted = re.compile(
        r"^Dead workers: 1 \(SIG(KILL|TERM) (\(from outside\) in the main run|while a pool started)", re.M
    )
    for _ in range(3):  # a kill that lands after the last pool closed is not a death of the run: try again
        run = inject(
            [sys.executable, "l36.py", "--ex", "4", "--start-method", startMethod], "sigkill-worker", 0.0, cwd=str(ROOT)
        )
        assert (run.finishedFirst, run.note) == (False, "")
        assert (run.status, run.traceback, run.stderr) == (0, False, "")
        assert problems(run, "l36.py", recovers=lab36.reportCountsAddUp) == []
        assert max(len(line) for line in run.stdout.splitlines()) <= 100
        if counted.search(run.stdout):
            return
    pytest.fail(f"no kill landed on a pool in 3 runs:\n{run.stdout[-800:]}")


def test_deadLetterLog_replay_retries_each_entry_once() -> None:
    deadLetterLog = l36.DeadLetterLog()
    crashy = job(4.0, 9.0)
    for record in crashy.records:
        deadLetterLog.add(crashy, record, RuntimeError("worker crash"), attempts=2)
    killer = replace(job(1.0), batchId=1)
    deadLetterLog.add(killer, killer.records[0], RuntimeError("worker died"), attempts=2, note="worker exit code 70")
    calls: list[l36.ComputeJob] = []

    def computeFn(replayed: l36.ComputeJob) -> list[l36.ResultEntry]:
        calls.append(replayed)
        return killing(frozenset({0}) if replayed.batchId == 1 else frozenset(), abrupt=False)(replayed)

    report = deadLetterLog.replay(computeFn)
    assert report.attempted == 3
    assert report.successes == 2
    assert [letter.record.recordId for letter in report.stillDead] == [0]
    [still] = deadLetterLog.entries
    assert (still.failure.errorType, still.failure.attempts) == ("BrokenProcessPool", 3)
    assert all(call.stage == "replay" for call in calls)


def test_exercise4_inline_report_adds_up_and_logs_each_event_once() -> None:
    lines: list[str] = []
    config = l36.Exercise4Config(records=400, crashRate=0.3)
    result = l36.runExercise4(config, RunOptions(seed=42, executor="inline"), log=lines.append)
    report, replay = result.report, result.replay
    assert sorted(outcomes(report)) == list(range(400))
    assert sum(result.finalCount(status) for status in l36.STATUSES) + len(replay.stillDead) == 400
    crashed = len(report.crashedBatches)
    assert crashed == report.ended("recovered") + report.ended("crashed again")
    assert report.crashes == crashed + report.ended("crashed again")
    events = [line for line in lines if line.startswith(("[main] batch", "[recovery] batch"))]
    assert len(events) == len(set(events))
    assert sum("[main] batch" in line and "crashed" in line for line in lines) == crashed
    text = l36.formatExercise4(result)
    assert f"Crashed batches: {crashed} = {crashed} worker crashes + 0 killed their worker + 0 lost to a" in text
    assert (
        f"  {crashed} = {report.ended('recovered')} recovered + {report.ended('crashed again')} crashed again + "
        "0 killed the recovery worker + 0 broken from outside." in text
    )
    assert "Dead workers: 0." in text


# ============================================================================
# Dask: the CPU tier on a LocalCluster gives the process pool's seeded results
# ============================================================================


@pytest.mark.dask
def test_exercise4_on_a_dask_cluster_matches_the_process_pool(daskResults: dict[str, Any]) -> None:
    # The fatal record raises BrokenProcessPool on Dask instead of ending the worker, and the
    # processor handles it exactly as it does a real death on the process pool.
    onDask = daskResults["l36"]
    onPool, replay = processRecords(
        daskrun.l36Records(),
        crashRate=0.0,
        seed=daskrun.L36_SEED,
        batchSize=10,
        kind="process",
        startMethod="fork",
        killers=daskrun.l36Killers(),
    )
    assert onDask["outcomes"] == [list(pair) for pair in sorted(outcomes(onPool, replay).items())]
    assert onDask["killerBatches"] == list(onPool.killerBatches) != []
    assert onDask["attempts"] == [d.failure.attempts for d in onPool.deadLetters]


# ============================================================================
# Configs and CLI
# ============================================================================


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: l36.Exercise1Config(workers=0), r"^workers must be >= 1 and <= 256, got 0$"),
        (lambda: l36.Exercise1Config(sensors=0), r"^sensors must be >= 1 and <= 1000, got 0$"),
        (lambda: l36.Exploration(ladder=()), r"^ladder must be positive factors, got \(\)$"),
        (
            lambda: l36.AdaptiveBatchProcessor(l36.computeLightBatch, InlineExecutor(), initialBatchSize=300),
            r"^initialBatchSize must be >= 5 and <= 200, got 300$",
        ),
        (lambda: l36.Exercise3Config(criticalFraction=1.5), r"^criticalFraction must be >= 0.0 and <= 1.0, got 1.5$"),
        (lambda: l36.Exercise4Config(crashRate=-0.1), r"^crashRate must be >= 0.0 and <= 1.0, got -0.1$"),
    ],
)
def test_configs_reject_bad_values(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


def test_list_names_the_four_exercises(capsys: pytest.CaptureFixture[str]) -> None:
    assert l36.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert [e.number for e in l36.EXERCISES] == [1, 2, 3, 4]
    assert all(e.title in out for e in l36.EXERCISES)
