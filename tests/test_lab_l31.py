"""The lab of lecture 31: its judges fed results that hold and that fail, its study, its benchmarks."""

from __future__ import annotations

import contextlib
import itertools
import warnings
from collections.abc import Iterator
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

import l31
from lab import lecture31 as lab31
from lab.bench import EFFICIENCY_TARGET, BenchOptions, BenchRow
from lab.claims import Claim, ClaimKind, Verdict
from shared import InlineExecutor, RunOptions, cpuCount, executorScope, silent, warmUp

SMALL1 = l31.Exercise1Config(requests=3, recordsPerRequest=4, threadWorkers=3, processWorkers=2, timeScale=0.02)
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


@contextlib.contextmanager
def noWarnings() -> Iterator[None]:
    """Fail if the block warns at all (the fork-with-threads warning of 3.12+ included)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []


def verdictOf(claims: tuple[Claim, ...], words: str) -> Verdict:
    """The verdict of the one claim whose statement contains ``words``."""
    (claim,) = [c for c in claims if words in c.statement]
    return claim.verdict


def structuralHold(claims: tuple[Claim, ...]) -> bool:
    """Every structural claim holds or could not be measured; none fails."""
    return all(c.verdict is not Verdict.FAILS for c in claims if c.kind is ClaimKind.STRUCTURAL)


@pytest.fixture(scope="module")
def inline1() -> l31.Exercise1Result:
    return l31.runExercise1(SMALL1, seed=4, executor="inline")


@pytest.fixture(scope="module")
def inline4() -> l31.Exercise4Result:
    return l31.runExercise4(SMALL4, seed=2, executor="inline")


# ============================================================================
# Exercise 1
# ============================================================================


def test_judge1_follows_the_figures(inline1: l31.Exercise1Result) -> None:
    def judged(sequential: float, threads: float, tiers: float) -> tuple[Claim, ...]:
        figures = replace(
            inline1,
            executor="process",
            sequentialSeconds=sequential,
            threadTierSeconds=threads,
            threeTierSeconds=tiers,
        )
        return lab31.judge1(figures, parseSeconds=0.002)

    fast = judged(0.8, 0.13, 0.11)
    assert verdictOf(fast, "beats the sequential handler") is Verdict.HOLDS
    assert verdictOf(fast, "each tier adds its own gain") is Verdict.HOLDS
    slow = judged(0.8, 0.10, 0.9)
    assert verdictOf(slow, "beats the sequential handler") is Verdict.FAILS
    assert verdictOf(slow, "each tier adds its own gain") is Verdict.FAILS
    assert verdictOf(lab31.judge1(inline1), "each tier adds its own gain") is Verdict.NOT_MEASURED
    differ = lab31.judge1(replace(inline1, matchesSequential=False), parseSeconds=0.002)
    assert verdictOf(differ, "returns what the synchronous handler returns") is Verdict.FAILS
    assert not structuralHold(differ)


def test_the_bound_follows_the_latency_model(inline1: l31.Exercise1Result) -> None:
    delays = inline1.metadataSeconds
    process = replace(inline1, executor="process")
    # Parsing free: the bound is sum(delays) over the slowest call (all overlap on 3 threads).
    assert lab31.threeTierBound(process, 0.0) == pytest.approx(sum(delays) / max(delays))
    assert lab31.idealThreeTier(0.01, [0.05, 0.05], 1, 2) == pytest.approx(0.07)
    assert lab31.idealThreeTier(0.01, [0.05, 0.05], 2, 2) == pytest.approx(0.06)


# ============================================================================
# Exercise 2
# ============================================================================


def test_judge2_fails_a_straggler_and_a_lost_shard() -> None:
    result = l31.runExercise2(l31.Exercise2Config(queries=6, timeScale=0.02), seed=5)
    assert structuralHold(lab31.judge2(result))
    first = result.queries[0]
    leaked = replace(result, queries=(first | {"stragglersLeft": 1}, *result.queries[1:]))
    assert verdictOf(lab31.judge2(leaked), "cancelled cleanly") is Verdict.FAILS
    lost = replace(result, queries=(first | {"shardsFailed": first["shardsFailed"] + 1}, *result.queries[1:]))
    assert verdictOf(lab31.judge2(lost), "every shard ends") is Verdict.FAILS
    late = replace(result, queries=(first | {"elapsedSeconds": first["usedTimeout"] + 0.5}, *result.queries[1:]))
    assert verdictOf(lab31.judge2(late), "returns by its timeout") is Verdict.FAILS
    (censoring,) = lab31.study2(RunOptions(seed=5, quick=True), result, silent)
    assert censoring.statement.startswith("censoring")
    assert censoring.verdict is Verdict.HOLDS


def test_long_run_ratchets_down_only_without_headroom() -> None:
    spec = lab31.simulateAdaptiveTimeouts(600, 6, seed=42, multiplier=2.0)
    tight = lab31.simulateAdaptiveTimeouts(600, 6, seed=42, multiplier=1.0)
    assert spec == lab31.simulateAdaptiveTimeouts(600, 6, seed=42, multiplier=2.0)
    assert spec.timeouts[0] == 0.5
    assert not spec.ratchetsDown
    assert tight.ratchetsDown
    assert tight.settledResponded < spec.settledResponded


# ============================================================================
# Exercise 3
# ============================================================================


def test_judge3_holds_on_a_run_and_fails_a_wrong_transition() -> None:
    config = l31.Exercise3Config(timeScale=0.01)
    result = l31.runExercise3(config, seed=4)
    claims = lab31.judge3(result)
    assert structuralHold(claims)
    closed, opened = l31.BreakerState.CLOSED, l31.BreakerState.OPEN
    halfOpen = l31.BreakerState.HALF_OPEN
    assert lab31.transitionsFollowSpec(
        [l31.StateChange(closed, opened, 0.0, ""), l31.StateChange(opened, halfOpen, 2.0, "")], 2.0
    )
    early = [l31.StateChange(closed, opened, 0.0, ""), l31.StateChange(opened, halfOpen, 1.9, "")]
    assert not lab31.transitionsFollowSpec(early, 2.0)
    assert not lab31.transitionsFollowSpec([l31.StateChange(closed, halfOpen, 0.0, "")], 2.0)
    skipped = replace(result, changes=(l31.StateChange(closed, halfOpen, 0.0, ""),))
    assert verdictOf(lab31.judge3(skipped), "the state follows") is Verdict.FAILS


# ============================================================================
# Exercise 4
# ============================================================================


def test_judge4_follows_the_figures(inline4: l31.Exercise4Result) -> None:
    def judged(*pairs: tuple[float, float]) -> tuple[Claim, ...]:
        rows = tuple(
            replace(row, naiveSeconds=naive, correctSeconds=correct)
            for row, (naive, correct) in zip(inline4.rows, pairs, strict=True)
        )
        return lab31.judge4(replace(inline4, rows=rows))

    growing = judged((0.33, 0.17), (0.59, 0.18))
    assert verdictOf(growing, "beats the naive one at every scale") is Verdict.HOLDS
    assert verdictOf(growing, "speedup increases with more sensors") is Verdict.HOLDS
    flat = judged((0.33, 0.11), (0.59, 0.30))
    assert verdictOf(flat, "beats the naive one at every scale") is Verdict.HOLDS
    assert verdictOf(flat, "speedup increases with more sensors") is Verdict.FAILS
    losing = judged((0.10, 0.17), (0.59, 0.18))
    assert verdictOf(losing, "beats the naive one at every scale") is Verdict.FAILS
    assert structuralHold(losing)


def test_the_breaker_claim_needs_an_opening_and_a_fast_fail(inline4: l31.Exercise4Result) -> None:
    words = "consecutive failures the breaker opens"
    assert inline4.fastFails > 0
    assert verdictOf(lab31.judge4(inline4), words) is Verdict.HOLDS
    closedRows = tuple(
        replace(row, successes=row.total, failures=0, fastFails=0, stateAfter=l31.BreakerState.CLOSED)
        for row in inline4.batches
    )
    never = replace(inline4, batches=closedRows, changes=())
    claim = lab31.breakerOpensClaim(never)
    assert claim.verdict is Verdict.NOT_MEASURED
    assert claim.reason.startswith("P(a run of 3 failures in ")
    lastOnly = replace(never, changes=inline4.changes[:1])
    assert lab31.breakerOpensClaim(lastOnly).verdict is Verdict.NOT_MEASURED
    bad = replace(inline4, changes=(replace(inline4.changes[0], reason="1 consecutive failures"),))
    assert lab31.breakerOpensClaim(bad).verdict is Verdict.FAILS
    lost = replace(inline4, batches=(replace(inline4.batches[0], successes=0), *inline4.batches[1:]))
    assert verdictOf(lab31.judge4(lost), "every guarded store ends") is Verdict.FAILS


@given(st.integers(1, 12), st.integers(1, 4), st.sampled_from([0.15, 0.5, 0.9]))
def test_runProbability_matches_enumeration(trials: int, runLength: int, probability: float) -> None:
    exact = 0.0
    for flags in itertools.product([False, True], repeat=trials):
        if lab31.longestRun(flags) >= runLength:
            hits = sum(flags)
            exact += probability**hits * (1 - probability) ** (trials - hits)
    assert lab31.runProbability(trials, runLength, probability) == pytest.approx(exact)


def test_normalizeWidth_is_the_cores_for_processes_and_one_inline() -> None:
    assert lab31.normalizeWidth("process", 12, 2) == min(2, cpuCount())
    assert lab31.normalizeWidth("inline", 12, 2) == 1
    assert lab31.normalizeWidth("thread", 12, 4) == 1


def test_stagedCorrectPipeline_times_the_stages_from_outside() -> None:
    with executorScope("thread", 2) as threads:
        warmUp(threads, 2)
        fetch, normalize, store = lab31.stagedCorrectPipeline(3, InlineExecutor(), threads, 3, 0.05)
    slowest = max(lab31.fetchDelays(3, 3, 0.05))
    assert fetch >= slowest
    assert normalize > 0
    assert store >= l31.STORE_SECONDS * 0.05


# ============================================================================
# Benchmarks: the logic, not the clock (tiny sizes, one repeat)
# ============================================================================

TINY_BENCH = BenchOptions(seed=3, repeats=1)
TINY4 = l31.Exercise4Config(processWorkers=2, storeWorkers=2, timeScale=0.02)


def test_benchThreeTier_rows_are_the_three_architectures() -> None:
    with noWarnings():
        report = lab31.benchThreeTier(SMALL1, TINY_BENCH, extensions=(5,))
    labels = [row.label for row in report.rows]
    assert report.key == "31.1"
    assert labels[:3] == [
        "sequential (baseline)",
        "async + 3 threads, parse on the loop",
        "async + 3 threads + 2 processes",
    ]
    assert all(label.endswith(", 5 requests") for label in labels[3:])
    sequential, threads, tiers = report.rows[:3]
    assert all(row.medianSeconds > 0 and row.repeats == 1 for row in report.rows)
    assert sequential.baselineSeconds == threads.baselineSeconds == tiers.baselineSeconds == sequential.medianSeconds
    assert tiers.idealSeconds <= threads.idealSeconds <= sequential.idealSeconds
    for row in report.rows[:3]:
        named = any(note.startswith(f"{row.label}: ") for note in report.notes)
        assert named is (row.efficiency < EFFICIENCY_TARGET)


def test_benchPipeline_measures_both_architectures_and_extends_below_target() -> None:
    with noWarnings():
        report = lab31.benchPipeline(TINY4, 2, (4,), TINY_BENCH)
    labels = [row.label for row in report.rows]
    assert labels[:2] == ["naive, 2 sensors", "correct, 2 sensors"]
    naive, correct = report.rows[:2]
    assert naive.baselineSeconds == naive.medianSeconds == correct.baselineSeconds
    assert correct.idealSeconds <= naive.idealSeconds
    if correct.efficiency < EFFICIENCY_TARGET:
        assert labels[2:] == ["correct, 4 sensors"]
        assert "target" in report.notes[-1]
    else:
        assert labels[2:] == []


def test_benchSweep_has_one_row_per_size_and_reads_the_speedup() -> None:
    report = lab31.benchSweep(TINY4, (2, 4), TINY_BENCH)
    assert [row.label for row in report.rows] == ["2 sensors", "4 sensors"]
    assert all(row.medianSeconds > 0 and row.baselineSeconds > 0 for row in report.rows)
    text = "\n".join(report.notes)
    assert "Speedup (naive / correct) per size" in text
    assert "Does the speedup keep growing?" in text
    assert "What bounds it on" in text


def point(sensors: int, naive: float, correct: float, ideal: float, stages: tuple[float, ...]) -> lab31.PipelinePoint:
    return lab31.PipelinePoint(sensors, naive, correct, naive, ideal, stages, (0.1, 0.005, 0.02), 5)


def test_growthReading_tells_shrinking_steps_from_a_drop() -> None:
    assert "yes, but by ever smaller steps (x1.50, x1.17)" in lab31.growthReading([2.0, 3.0, 3.5])
    assert "not started to shrink" in lab31.growthReading([1.0, 2.0, 4.1])
    assert "not at every step (x0.75)" in lab31.growthReading([2.0, 1.5])
    assert "one size" in lab31.growthReading([2.0])


def test_marginalCosts_read_the_last_two_sizes() -> None:
    small = point(48, 1.10, 0.24, 0.22, (0.12, 0.04, 0.08))
    large = point(96, 2.10, 0.37, 0.32, (0.12, 0.08, 0.16))
    margin = lab31.marginalCosts([small, large])
    assert margin is not None
    assert margin.naiveSeconds == pytest.approx(1.0 / 48)
    assert margin.correctSeconds == pytest.approx(0.13 / 48)
    assert margin.normalizeSeconds == pytest.approx(0.04 / 48)
    assert margin.storeSeconds == pytest.approx(0.08 / 48)
    assert margin.speedup == pytest.approx(1.0 / 0.13)
    assert lab31.marginalCosts([large]) is None
    assert large.outsideSeconds == pytest.approx(0.37 - 0.36)


def test_targetNote_says_where_the_target_is_reached_or_why_not() -> None:
    low = point(12, 0.33, 0.20, 0.14, (0.12, 0.01, 0.02))
    reached = point(24, 0.59, 0.19, 0.17, (0.12, 0.01, 0.04))
    worse = point(24, 0.59, 0.30, 0.17, (0.12, 0.10, 0.04))
    assert "reached at 24 sensors (89%)" in lab31.targetNote([low, reached])
    assert "not reached up to 24" in lab31.targetNote([low, worse])
    assert "growing with the batch" in lab31.targetNote([low, worse])
    assert "no larger size was tried" in lab31.targetNote([low])


def test_extensionNote_names_each_architecture_below_target() -> None:
    first = BenchRow("tiers", 0.2, 0.8, 0.1, 5)
    later = BenchRow("tiers, 20 requests", 0.2, 1.6, 0.18, 5)
    assert "tiers, 20 requests reaches the target (90%)" in lab31.extensionNote([first, later], [first], [10, 20])
    missed = BenchRow("tiers, 20 requests", 0.4, 1.6, 0.18, 5)
    assert "does not reach it up to 20 requests (45%)" in lab31.extensionNote([first, missed], [first], [10, 20])
    assert "no larger size was tried" in lab31.extensionNote([first], [first], [10])


def test_benchmarks_are_registered() -> None:
    assert [b.key for b in lab31.BENCHMARKS] == ["31.1", "31.4", "31.4s"]


def test_the_lab_registers_every_exercise() -> None:
    assert [entry.number for entry in lab31.LAB.exercises] == [1, 2, 3, 4]
    assert lab31.LAB.exercise(2).study is lab31.study2
