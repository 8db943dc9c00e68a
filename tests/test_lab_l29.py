"""The lab of lecture 29: its judges fed results that hold and that fail, its study, its benchmarks."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import l29
from lab import lecture29 as lab29
from lab.bench import EFFICIENCY_TARGET, BenchOptions, flowMakespan
from lab.claims import Claim, ClaimKind, Verdict, formatClaims
from shared import StartMethod, cpuCount

START_METHODS = ["fork", "spawn", "forkserver"]
SMALL = l29.Exercise1Config(requests=4, valuesPerRequest=500, workers=2)
STREAM = l29.Exercise2Config(totalRecords=10, latencyLow=0.001, latencyHigh=0.003, waitSeconds=5.0)
TIERS = l29.Exercise3Config(items=6, threads=4, workers=2, valuesPerItem=300, latencyLow=0.002, latencyHigh=0.004)
RISKY = l29.Exercise4Config(deadlineSeconds=0.2, slowMs=260.0, okMs=20.0)


def verdicts(claims: tuple[Claim, ...]) -> list[Verdict]:
    return [claim.verdict for claim in claims]


def assertFits(claims: tuple[Claim, ...]) -> None:
    """The claims table ``invoke run`` prints after the report: every line within 100 columns."""
    lines = formatClaims(claims).splitlines()
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)


# ============================================================================
# Exercise 1
# ============================================================================


def test_exercise1_claims_are_judged() -> None:
    result = l29.runExercise1(SMALL, seed=2, executor="thread")
    claims = lab29.judge1(result)
    assert {claim.kind for claim in claims} == {ClaimKind.STRUCTURAL, ClaimKind.TIMING}
    structural = [claim for claim in claims if claim.kind is ClaimKind.STRUCTURAL]
    assert all(claim.verdict is Verdict.HOLDS for claim in structural)
    timing = next(claim for claim in claims if claim.kind is ClaimKind.TIMING)
    assert timing.statement == "async + process pool is about min(10/3, 1)x faster"
    assert f"bound {result.bound}x" in timing.measured
    assertFits(claims)


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


# ============================================================================
# Exercise 2: the judge of the exercise's runs, and the study
# ============================================================================

RESULTS = ((0, 1.0), (1, 2.0))


def queueRun(consumer: l29.ConsumerKind, maxsize: int, sizes: tuple[int, ...]) -> l29.QueueRun:
    """A hand-made run whose producer saw ``sizes`` before its puts."""
    return l29.QueueRun(
        consumer=consumer,
        maxsize=maxsize,
        results=RESULTS,
        sizesBeforePut=sizes,
        trace=tuple((index * 0.01, size) for index, size in enumerate(sizes)),
        producerBlockedSeconds=0.0,
        elapsedSeconds=0.1,
    )


THROTTLED: dict[int, tuple[int, ...]] = {2: (0, 1, 2, 2, 2), 5: (0, 2, 4, 5, 5), 20: (0, 2, 4, 6, 8)}
IDLE = (0, 0, 1, 0, 0)


def exercise2(sizes: dict[int, tuple[int, ...]]) -> l29.Exercise2Result:
    """A hand-made exercise 2: the spec's run at maxsize 5, then 2 and 20."""
    config = replace(STREAM, comparedMaxsizes=(2, 20))
    main, *comparison = (queueRun("literal", maxsize, sizes[maxsize]) for maxsize in (5, 2, 20))
    return l29.Exercise2Result(config, "thread", main, tuple(comparison), RESULTS, 0.0001)


def test_exercise2_occupancy_claims_read_the_queue_sizes() -> None:
    assert lab29._throttled(queueRun("bounded", 2, (0, 1, 2, 2, 2)))
    assert not lab29._throttled(queueRun("literal", 2, (0, 0, 1, 0, 0)))
    assert lab29._sizesDiffer(queueRun("bounded", 2, (2,)), queueRun("bounded", 20, (4,)))
    assert not lab29._sizesDiffer(queueRun("literal", 2, (1,)), queueRun("literal", 20, (1,)))


def test_exercise2_claims_hold_for_a_throttled_run_and_fail_for_an_idle_queue_or_a_lost_record() -> None:
    held = exercise2(THROTTLED)
    assert verdicts(lab29.judge2(held)) == [Verdict.HOLDS] * 4
    idle = exercise2(dict.fromkeys((2, 5, 20), IDLE))
    assert verdicts(lab29.judge2(idle)) == [Verdict.HOLDS, Verdict.HOLDS, Verdict.FAILS, Verdict.FAILS]
    lost = lab29.judge2(replace(held, expected=(*RESULTS, (2, 3.0))))
    assert lost[0].verdict is Verdict.FAILS
    overfull = exercise2({**THROTTLED, 2: (0, 1, 2, 3)})
    assert lab29.judge2(overfull)[1].verdict is Verdict.FAILS


def study(
    boundedSizes: dict[int, tuple[int, ...]], *, peak: int = 4, failure: lab29.FailureDemo | None = None
) -> lab29.Study2:
    """A hand-made study: each consumer x workload x maxsize but the exercise's own runs."""
    runs = tuple(
        lab29.ProbedRun(
            queueRun(consumer, maxsize, boundedSizes[maxsize] if consumer == "bounded" else IDLE),
            storeMs,
            peak if consumer == "bounded" else 9,
        )
        for storeMs in (0.0, 20.0)
        for maxsize in (2, 20)
        for consumer in ("literal", "bounded")
        if storeMs or consumer == "bounded"
    )
    crash = failure or lab29.FailureDemo("consumer crashed", 0.05, 3, True, 0)
    return lab29.Study2(replace(STREAM, comparedMaxsizes=(2, 20)), RESULTS, 20.0, runs, crash)


def test_study2_claims_hold_when_the_bounded_consumer_throttles_and_fail_otherwise() -> None:
    assert verdicts(lab29.judgeStudy2(study(THROTTLED))) == [Verdict.HOLDS] * 5
    idle = lab29.judgeStudy2(study({2: IDLE, 20: IDLE}))
    assert verdicts(idle) == [Verdict.FAILS, Verdict.FAILS, Verdict.HOLDS, Verdict.HOLDS, Verdict.HOLDS]
    assert lab29.judgeStudy2(study(THROTTLED, peak=5))[2].verdict is Verdict.FAILS
    hung = lab29.FailureDemo("consumer crashed", 0.05, 3, True, 1)
    assert lab29.judgeStudy2(study(THROTTLED, failure=hung))[3].verdict is Verdict.FAILS
    silentCrash = lab29.FailureDemo("", 0.05, 0, False, 0)
    assert lab29.judgeStudy2(study(THROTTLED, failure=silentCrash))[3].verdict is Verdict.FAILS
    overfull = lab29.judgeStudy2(study({**THROTTLED, 2: (0, 1, 2, 3)}))
    assert overfull[4].verdict is Verdict.FAILS
    assert overfull[4].kind is ClaimKind.STRUCTURAL


def test_exercise2_structural_claims_hold_on_a_real_run() -> None:
    claims = lab29.judge2(l29.runExercise2(STREAM, seed=2, executor="thread"))
    structural = [claim for claim in claims if claim.kind is ClaimKind.STRUCTURAL]
    assert len(structural) == 2
    assert all(claim.verdict is Verdict.HOLDS for claim in structural)
    assertFits(claims)


def test_study2_on_a_thread_pool_throttles_with_the_bounded_consumer_and_survives_the_crash() -> None:
    expected = tuple(l29.transformRecord(l29.makeRecord(2, recordId)) for recordId in range(STREAM.totalRecords))
    found = lab29.runStudy2(STREAM, expected, seed=2, storeMs=20.0, executor="thread")
    assert len(found.runs) == 6
    assert all(probed.run.results == expected for probed in found.runs)
    assert all(probed.maxInFlight <= STREAM.workers for probed in found.runs if probed.run.consumer == "bounded")
    literalSlow = found.run("literal", 2, 20.0)
    assert literalSlow.maxInFlight > STREAM.workers  # the spec's consumer: the backlog waits in the executor
    assert literalSlow.run.fullPuts == 0
    assert found.failure.pendingTasks == 0
    assert "consumer crashed after" in found.failure.error
    claims = lab29.judgeStudy2(found)
    assert all(claim.verdict is Verdict.HOLDS for claim in claims if claim.kind is ClaimKind.STRUCTURAL)
    assertFits(claims)
    report = lab29.formatStudy2(found).splitlines()
    assert "bounded consumer, maxsize 20, + 20 ms store" in "\n".join(report)
    assert max(len(line) for line in report) <= 100


@pytest.mark.parametrize("startMethod", START_METHODS)
def test_study2_on_a_process_pool_gives_the_same_results_and_a_clean_crash(startMethod: StartMethod) -> None:
    config = replace(STREAM, totalRecords=6, comparedMaxsizes=(2,), workers=2)
    expected = tuple(l29.transformRecord(l29.makeRecord(4, recordId)) for recordId in range(6))
    found = lab29.runStudy2(config, expected, seed=4, storeMs=5.0, executor="process", startMethod=startMethod)
    assert all(probed.run.results == expected for probed in found.runs)
    assert found.failure.pendingTasks == 0
    assert found.failure.error


# ============================================================================
# Exercise 3: the judge, and the tier model the benchmark holds each run to
# ============================================================================


def test_exercise3_ordering_claims_follow_the_measured_times() -> None:
    base = l29.runExercise3(TIERS, seed=1, executor="inline")

    def timed(a: float, b: float, c: float) -> tuple[Claim, ...]:
        runs = tuple(replace(run, seconds=seconds) for run, seconds in zip(base.runs, (a, b, c), strict=True))
        return lab29.judge3(replace(base, runs=runs))  # type: ignore[arg-type]  # three runs in, three out

    assert verdicts(timed(0.1, 0.2, 0.9)) == [Verdict.HOLDS] * 3
    assert verdicts(timed(0.3, 0.2, 0.9)) == [Verdict.HOLDS, Verdict.FAILS, Verdict.FAILS]
    assert verdicts(timed(0.1, 0.95, 0.9)) == [Verdict.HOLDS, Verdict.HOLDS, Verdict.FAILS]
    assert "(b) was faster on this run" in timed(0.3, 0.2, 0.9)[1].reason


def test_exercise3_claims_are_judged_on_a_real_run() -> None:
    claims = lab29.judge3(l29.runExercise3(TIERS, seed=1, executor="thread"))
    assert {claim.kind for claim in claims} == {ClaimKind.STRUCTURAL, ClaimKind.TIMING}
    assert all(claim.verdict is Verdict.HOLDS for claim in claims if claim.kind is ClaimKind.STRUCTURAL)
    assertFits(claims)


def test_tier_model_reads_the_exercises_latencies_and_sums_the_sequential_run() -> None:
    model = lab29.tierModel(TIERS, 1, "process", cpuTimes=(0.001,) * TIERS.items)
    assert model.latencies == tuple(l29.legacyRecord(i, 1, 0.002, 0.004, 0)[0] for i in range(TIERS.items))
    tiered, _, sequential = model.ideals
    assert sequential == pytest.approx(sum(model.latencies) + 0.001 * TIERS.items)
    assert tiered <= sequential
    assert (model.threads, model.poolServers) == (TIERS.threads, TIERS.workers)
    assert model.cpuServers == max(1, min(TIERS.items, TIERS.workers, cpuCount()))
    assert lab29.tierModel(TIERS, 1, "thread", cpuTimes=model.cpuTimes).cpuServers == 1


@settings(max_examples=40)
@given(
    items=st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)), min_size=1, max_size=12),
    threads=st.integers(1, 8),
    cpuServers=st.integers(1, 4),
)
def test_tier_model_bounds_lie_between_the_obvious_limits(
    items: list[tuple[float, float]], threads: int, cpuServers: int
) -> None:
    latencies = tuple(latency for latency, _ in items)
    cpu = tuple(seconds for _, seconds in items)
    model = lab29.TierModel(latencies, cpu, threads=threads, poolServers=threads, cpuServers=cpuServers)
    tiered, poolOnly, sequential = model.ideals
    floor = max(sum(cpu) / cpuServers, *(latency + seconds for latency, seconds in items))
    assert floor - 1e-9 <= tiered <= sequential + 1e-9
    assert tiered == poolOnly
    assert sequential == pytest.approx(sum(latencies) + sum(cpu))
    assert tiered == flowMakespan([(latencies, threads), (cpu, cpuServers)])


# ============================================================================
# Exercise 4
# ============================================================================


def test_exercise4_claims_catch_a_lost_task_and_a_split_that_timing_changed() -> None:
    config = l29.Exercise4Config()
    plan = l29.planTasks(config, 3)
    expected = {"fails": "ValueError", "too slow": "TimeoutError", "succeeds": "ok"}

    def report(task: l29.PlannedTask, outcome: str) -> l29.TaskReport:
        if outcome == "ok":
            return {"taskId": task.taskId, "status": "ok", "result": 1.0}
        assert outcome in {"ValueError", "TimeoutError"}
        errorType: Literal["ValueError", "TimeoutError"] = "ValueError" if outcome == "ValueError" else "TimeoutError"
        return {"taskId": task.taskId, "status": "failed", "error": "x", "errorType": errorType}

    def judged(outcomes: dict[int, str], finished: bool = True) -> tuple[Claim, ...]:
        reports = tuple(report(task, outcomes.get(task.taskId, expected[task.role])) for task in plan)
        retries = tuple(report(task, "ok") for task in plan if task.role != "succeeds")
        busy = tuple(l29.AbandonedTiming(task.taskId, 0.3, finished) for task in plan if task.role == "too slow")
        run = l29.RecoveryRun(reports, retries, busy, 0.5, 0.3, 0.1)
        return lab29.judge4(l29.Exercise4Result(config, "thread", plan, run, 0.01))

    assert all(verdict is Verdict.HOLDS for verdict in verdicts(judged({})))
    succeeding = next(task.taskId for task in plan if task.role == "succeeds")
    late = judged({succeeding: "TimeoutError"})
    assert verdicts(late)[:2] == [Verdict.HOLDS, Verdict.FAILS]
    assert judged({}, finished=False)[-1].verdict is Verdict.FAILS


def test_exercise4_structural_claims_hold_on_a_real_run() -> None:
    claims = lab29.judge4(l29.runExercise4(RISKY, seed=11, executor="thread"))
    assert all(claim.verdict is Verdict.HOLDS for claim in claims if claim.kind is ClaimKind.STRUCTURAL)
    assertFits(claims)


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
    model = lab29.TierModel((0.01, 0.01), (0.002, 0.002), threads=8, poolServers=4, cpuServers=2)
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
