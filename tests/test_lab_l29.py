"""The lab of lecture 29: its judges fed results that hold and that fail, its studies, its benchmarks."""

from __future__ import annotations

from dataclasses import replace

import pytest

import l29
from lab import lecture29 as lab29
from lab.bench import EFFICIENCY_TARGET, BenchOptions
from lab.claims import Claim, ClaimKind, Verdict
from shared import cpuCount

TIERS = l29.Exercise3Config(items=6, threads=4, workers=2, valuesPerItem=300, latencyLow=0.002, latencyHigh=0.004)

SMALL = l29.Exercise1Config(requests=4, valuesPerRequest=500, workers=2)
STREAM = l29.Exercise2Config(totalRecords=10, latencyLow=0.001, latencyHigh=0.003, storeMs=20.0, waitSeconds=5.0)
RISKY = l29.Exercise4Config(deadlineSeconds=0.2, slowMs=260.0, okMs=20.0)


def verdicts(claims: tuple[Claim, ...]) -> list[Verdict]:
    return [claim.verdict for claim in claims]


# ============================================================================
# Claims: each judge fed results that hold and results that fail
# ============================================================================


def test_exercise1_claims_are_judged() -> None:
    result = l29.runExercise1(SMALL, seed=2, executor="thread")
    claims = lab29.judge1(result)
    assert {claim.kind for claim in claims} == {ClaimKind.STRUCTURAL, ClaimKind.TIMING}
    structural = [claim for claim in claims if claim.kind is ClaimKind.STRUCTURAL]
    assert all(claim.verdict is Verdict.HOLDS for claim in structural)
    timing = next(claim for claim in claims if claim.kind is ClaimKind.TIMING)
    assert timing.verdict in {Verdict.HOLDS, Verdict.FAILS}
    assert f"bound {result.bound}x" in timing.measured


def test_exercise1_speedup_claim_holds_at_85_percent_of_the_bound_and_fails_below() -> None:
    base = replace(l29.runExercise1(SMALL, seed=2, executor="inline"), cores=2, sequentialSeconds=1.0)
    fast = replace(base, warmSeconds=0.55, coldSeconds=0.6)
    slow = replace(base, warmSeconds=0.9, coldSeconds=1.2)
    assert fast.bound == slow.bound == 2
    assert verdicts(lab29.judge1(fast)) == [Verdict.HOLDS, Verdict.HOLDS, Verdict.HOLDS]
    slowClaims = lab29.judge1(slow)
    assert verdicts(slowClaims) == [Verdict.HOLDS, Verdict.HOLDS, Verdict.FAILS]
    assert "min(10/3, 1) = 1 is a typo for min(requests, workers, cores) = 2" in slowClaims[2].reason
    assert "1.11x warm" in slowClaims[2].measured


def test_exercise1_structural_claims_fail_on_a_blocked_loop_or_different_results() -> None:
    base = l29.runExercise1(SMALL, seed=2, executor="inline")
    broken = lab29.judge1(replace(base, dispatchedBeforeAnyCompleted=False, matchesSequential=False))
    structural = [claim for claim in broken if claim.kind is ClaimKind.STRUCTURAL]
    assert [claim.verdict for claim in structural] == [Verdict.FAILS, Verdict.FAILS]


def queueRun(consumer: l29.ConsumerKind, maxsize: int, storeMs: float, sizes: tuple[int, ...]) -> l29.QueueRun:
    """A hand-made run whose producer saw ``sizes`` before its puts."""
    return l29.QueueRun(
        consumer=consumer,
        maxsize=maxsize,
        storeMs=storeMs,
        results=((0, 1.0), (1, 2.0)),
        sizesBeforePut=sizes,
        trace=tuple((index * 0.01, size) for index, size in enumerate(sizes)),
        producerBlockedSeconds=0.0,
        maxInFlight=2,
        elapsedSeconds=0.1,
    )


def test_exercise2_occupancy_claims_read_the_queue_sizes() -> None:
    assert lab29._throttled(queueRun("bounded", 2, 20.0, (0, 1, 2, 2, 2)))
    assert not lab29._throttled(queueRun("literal", 2, 20.0, (0, 0, 1, 0, 0)))
    assert lab29._sizesDiffer(queueRun("bounded", 2, 20.0, (2,)), queueRun("bounded", 20, 20.0, (4,)))
    assert not lab29._sizesDiffer(queueRun("literal", 2, 0.0, (1,)), queueRun("literal", 20, 0.0, (1,)))


def test_exercise2_claims_hold_for_a_throttled_run_and_fail_for_a_lost_record() -> None:
    config = replace(STREAM, comparedMaxsizes=(2, 20))
    comparison = tuple(
        queueRun(consumer, maxsize, storeMs, (0, 1, 2, 2, 2) if maxsize == 2 else (0, 2, 4, 6, 8))
        for storeMs in (0.0, config.storeMs)
        for maxsize in (2, 20)
        for consumer in ("literal", "bounded")
    )
    failure = l29.FailureDemo("consumer crashed", 0.05, 3, True, 0)
    held = l29.Exercise2Result(
        config=config,
        executor="thread",
        main=comparison[0],
        comparison=comparison,
        expected=((0, 1.0), (1, 2.0)),
        failure=failure,
        transformSeconds=0.0001,
    )
    assert all(verdict is Verdict.HOLDS for verdict in verdicts(lab29.judge2(held)))
    lost = lab29.judge2(replace(held, expected=((0, 1.0), (1, 2.0), (2, 3.0))))
    assert lost[0].verdict is Verdict.FAILS
    hung = lab29.judge2(replace(held, failure=replace(failure, pendingTasks=1)))
    assert hung[-1].verdict is Verdict.FAILS


def test_exercise3_ordering_claims_follow_the_measured_times() -> None:
    base = l29.runExercise3(TIERS, seed=1, executor="inline")

    def timed(a: float, b: float, c: float) -> tuple[Claim, ...]:
        runs = tuple(replace(run, seconds=seconds) for run, seconds in zip(base.runs, (a, b, c), strict=True))
        return lab29.judge3(replace(base, runs=runs))  # type: ignore[arg-type]  # three runs in, three out

    assert verdicts(timed(0.1, 0.2, 0.9)) == [Verdict.HOLDS] * 3
    assert verdicts(timed(0.3, 0.2, 0.9)) == [Verdict.HOLDS, Verdict.FAILS, Verdict.FAILS]
    assert verdicts(timed(0.1, 0.95, 0.9)) == [Verdict.HOLDS, Verdict.HOLDS, Verdict.FAILS]
    assert "(b) was faster on this run" in timed(0.3, 0.2, 0.9)[1].reason


def test_exercise4_claims_catch_a_lost_task_and_a_split_that_timing_changed() -> None:
    config = l29.Exercise4Config()
    plan = l29.planTasks(config, 3)
    expected = {"fails": "ValueError", "too slow": "TimeoutError", "succeeds": "ok"}

    def report(task: l29.PlannedTask, outcome: str) -> l29.TaskReport:
        if outcome == "ok":
            return {"taskId": task.taskId, "status": "ok", "result": 1.0}
        return {"taskId": task.taskId, "status": "failed", "error": "x", "errorType": outcome}

    def judged(outcomes: dict[int, str]) -> tuple[Claim, ...]:
        reports = tuple(report(task, outcomes.get(task.taskId, expected[task.role])) for task in plan)
        retries = tuple(report(task, "ok") for task in plan if task.role != "succeeds")
        busy = tuple(l29.AbandonedTiming(task.taskId, 0.3, True) for task in plan if task.role == "too slow")
        run = l29.RecoveryRun(reports, retries, busy, 0.5, 0.3, 0.1)
        return lab29.judge4(l29.Exercise4Result(config, "thread", plan, run, 0.01))

    assert all(verdict is Verdict.HOLDS for verdict in verdicts(judged({})))
    succeeding = next(task.taskId for task in plan if task.role == "succeeds")
    late = judged({succeeding: "TimeoutError"})
    assert verdicts(late)[:2] == [Verdict.HOLDS, Verdict.FAILS]
    other = judged({succeeding: "RuntimeError"})
    assert verdicts(other)[:2] == [Verdict.FAILS, Verdict.FAILS]
    assert "(+1 other)" in other[0].measured


def test_exercise2_structural_claims_hold_on_a_real_run() -> None:
    result = l29.runExercise2(STREAM, seed=2, executor="thread")
    structural = [claim for claim in lab29.judge2(result) if claim.kind is ClaimKind.STRUCTURAL]
    assert len(structural) == 4
    assert all(claim.verdict is Verdict.HOLDS for claim in structural)


def test_exercise3_claims_are_judged_on_a_real_run() -> None:
    claims = lab29.judge3(l29.runExercise3(TIERS, seed=1, executor="thread"))
    assert {claim.kind for claim in claims} == {ClaimKind.STRUCTURAL, ClaimKind.TIMING}
    assert all(claim.verdict is Verdict.HOLDS for claim in claims if claim.kind is ClaimKind.STRUCTURAL)


def test_exercise4_structural_claims_hold_on_a_real_run() -> None:
    claims = lab29.judge4(l29.runExercise4(RISKY, seed=11, executor="thread"))
    assert all(claim.verdict is Verdict.HOLDS for claim in claims if claim.kind is ClaimKind.STRUCTURAL)


# ============================================================================
# Benchmarks: the logic, on tiny sizes with one repeat (no wall-clock thresholds)
# ============================================================================

ONCE = BenchOptions(seed=3, repeats=1, startMethod="fork")
TINY = l29.Exercise1Config(requests=3, valuesPerRequest=200, workers=2)


def batch(size: int, sequential: float, warm: float, cold: float, ipc: float = 0.0) -> lab29.BatchTimings:
    """Hand-made figures for one size of the sweep: 10 requests, 3 workers, 2 cores."""
    return lab29.BatchTimings(
        config=l29.Exercise1Config(valuesPerRequest=size),
        cores=2,
        repeats=1,
        sequentialSeconds=sequential,
        warmSeconds=warm,
        coldSeconds=cold,
        dumpsSeconds=ipc / 3,
        loadsSeconds=2 * ipc / 3,
    )


def test_benchExercise1_rows_are_sequential_warm_cold_against_sequential_over_the_bound() -> None:
    report = lab29.benchExercise1(TINY, ONCE)
    assert [row.label for row in report.rows] == ["sequential loop", "warm pool, 2 workers", "cold pool, 2 workers"]
    sequential = report.rows[0].medianSeconds
    bound = max(1, min(TINY.requests, TINY.workers, cpuCount()))
    for row in report.rows:
        assert row.medianSeconds > 0
        assert row.baselineSeconds == sequential
        assert row.repeats == 1
    assert [row.idealSeconds for row in report.rows[1:]] == [sequential / bound] * 2
    assert all(row.idealSeconds <= row.baselineSeconds for row in report.rows)
    assert report.key == "29.1"


def test_sweepExercise1_gives_a_warm_and_a_cold_row_per_size_and_reads_them() -> None:
    report = lab29.sweepExercise1((100, 400), TINY, ONCE)
    assert [row.label for row in report.rows] == [
        "warm pool, 2 workers, 100",
        "cold pool, 2 workers, 100",
        "warm pool, 2 workers, 400",
        "cold pool, 2 workers, 400",
    ]
    assert all(row.medianSeconds > 0 and row.idealSeconds <= row.baselineSeconds for row in report.rows)
    text = "\n".join(report.notes)
    assert "The warm pool beats the sequential loop" in text
    assert "85% of ideal (warm pool) is reached" in text


def test_batch_timings_ceiling_floor_and_overheads() -> None:
    timings = batch(10_000, sequential=1.0, warm=0.8, cold=0.9, ipc=0.5)
    assert timings.bound == 2
    assert timings.idealSeconds == 0.5
    assert timings.ipcFloorSeconds == pytest.approx(0.75)
    assert timings.ipcCeiling == pytest.approx(1.0 / 1.5)
    assert timings.dispatchSeconds == pytest.approx(0.05)
    assert timings.startupSeconds == pytest.approx(0.1)
    warm, cold = timings.rows(", 10,000")
    assert (warm.label, cold.label) == ("warm pool, 3 workers, 10,000", "cold pool, 3 workers, 10,000")
    assert warm.efficiency == pytest.approx(0.5 / 0.8)
    notes = "\n".join(lab29.batchNotes(timings))
    assert "no pool can beat 750.0 ms (67% of ideal)" in notes
    assert "adds 100.0 ms to every batch" in notes
    assert lab29.batchNotes(batch(10_000, sequential=1.0, warm=0.5, cold=0.55))[1:] == ()


def test_sweep_notes_say_where_the_pool_pays_and_where_it_reaches_the_target() -> None:
    paying = [
        batch(1_000, 0.01, 0.03, 0.05),
        batch(10_000, 0.1, 0.08, 0.12),
        batch(100_000, 1.0, 0.55, 0.58),
    ]
    assert lab29.firstSizeFrom(paying, lab29._warmPays) == 10_000
    assert lab29.firstSizeFrom(paying, lab29._coldPays) == 100_000
    assert lab29.firstSizeFrom(paying, lab29._warmOnTarget) == 100_000
    text = "\n".join(lab29.sweepNotes(paying))
    assert "beats the sequential loop from 10,000 values per request on (up to 100,000 tried)" in text
    assert "85% of ideal (warm pool) is reached from 100,000 values per request on" in text
    assert "Large requests do not escape" not in text

    flickering = [
        batch(1_000, 0.01, 0.03, 0.05, 0.005),
        batch(10_000, 0.1, 0.09, 0.2, 0.05),
        batch(100_000, 1.0, 1.1, 1.2, 0.5),
    ]
    text = "\n".join(lab29.sweepNotes(flickering))
    assert "beats the sequential loop at 10,000 values per request only, not at the largest tried (100,000)" in text
    assert "beats it at no size tried (1,000-100,000 values per request)" in text
    assert "the ceiling stays at 67%-67% over all sizes, below 85%" in text


def test_benchExercise3_rows_hold_each_configuration_to_its_flow_bound() -> None:
    config = replace(TIERS, items=4, valuesPerItem=200)
    report = lab29.benchExercise3(config, ONCE)
    labels = [row.label for row in report.rows]
    assert labels[:3] == list(l29.tierLabels(config, "process"))
    tiered, poolOnly, sequential = report.rows[:3]
    assert all(row.baselineSeconds == sequential.medianSeconds for row in (tiered, poolOnly, sequential))
    assert tiered.idealSeconds <= sequential.idealSeconds
    assert poolOnly.idealSeconds <= sequential.idealSeconds
    assert all(row.medianSeconds > 0 for row in report.rows)
    for row in report.rows[3:]:
        assert row.label[:3] in {"(a)", "(b)"}
        assert "fetches" in row.label
    below = [row.label[:3] for row in (tiered, poolOnly) if row.efficiency < EFFICIENCY_TARGET]
    assert {row.label[:3] for row in report.rows[3:]} == set(below)


def test_tierNotes_name_the_overheads_of_a_configuration_below_target() -> None:
    model = l29.TierModel((0.01, 0.01), (0.002, 0.002), threads=8, poolServers=4, cpuServers=2)
    timings = lab29.TierTimings(
        config=replace(TIERS, items=2),
        model=model,
        labels=l29.tierLabels(replace(TIERS, items=2), "process"),
        medians=(0.024, 0.0121, 0.024),
        repeats=1,
        generationSeconds=0.001,
        dumpsSeconds=0.0005,
        loadsSeconds=0.0005,
    )
    notes = "\n".join(lab29.tierNotes(timings))
    assert "(a) at 50%, 12.0 ms over its bound" in notes
    assert "crosses a process boundary 1x, 1.0 ms of (un)pickling; the other 10.0 ms is scheduling" in notes
    assert "(b) at" not in notes


def test_registry_lists_the_benchmarks() -> None:
    assert [benchmark.key for benchmark in lab29.BENCHMARKS] == ["29.1", "29.1-sweep", "29.3"]
    assert lab29.SWEEP_SIZES[0] == 1_000
    assert lab29.SWEEP_SIZES[-1] == 1_000_000
