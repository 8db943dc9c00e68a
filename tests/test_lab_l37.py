"""The lab of lecture 37: its judges fed results that hold and that fail, its studies and benchmarks."""

from __future__ import annotations

import re
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace

import pytest

import l37
import lab.lecture37 as lab37
from lab.bench import BenchOptions, BenchReport, formatBench
from lab.claims import Claim, ClaimKind, Origin, Verdict, formatClaims
from shared import REPORT_WIDTH, LinearFit, RunOptions, silent


def _verdict(claims: Sequence[Claim], fragment: str) -> Claim:
    """The one claim whose statement contains ``fragment``."""
    (claim,) = [c for c in claims if fragment in c.statement]
    return claim


def _flat(notes: Sequence[str]) -> str:
    """Notes as one line of text: prose wraps them at 100 columns, anywhere."""
    return re.sub(r"\s+", " ", " ".join(notes))


# Small real runs: the judges read the same result types the exercises return.
TINY1 = l37.Exercise1Config(records=600, anomalies=6, repetitions=1)
TINY2 = l37.Exercise2Config(records=1_000)
TINY3 = l37.Exercise3Config(instances=300, reads=2_000, readRepeats=1)
TINY4 = l37.Exercise4Config(records=200, runs=2)


@pytest.fixture(scope="module")
def result1() -> l37.Exercise1Result:
    return l37.runExercise1(TINY1, seed=11)


@pytest.fixture(scope="module")
def result2() -> l37.Exercise2Result:
    return l37.runExercise2(TINY2, seed=3)


@pytest.fixture(scope="module")
def result4() -> l37.Exercise4Result:
    return l37.runExercise4(TINY4, seed=5)


def test_every_claims_table_fits_100_columns(
    result1: l37.Exercise1Result, result2: l37.Exercise2Result, result4: l37.Exercise4Result
) -> None:
    result3 = l37.runExercise3(TINY3, seed=1)
    claims = [
        *lab37.judge1(result1),
        *lab37.judgeHardData([lab37.hardDataRow(kind, 300, 1) for kind in lab37.HARD_KINDS], result1),
        *lab37.judge2(result2),
        *lab37.judgeRounds(lab37.PipelineRounds((PULL,) * 5, (FIXED,) * 5)),
        *lab37.judge3(result3),
        *lab37.judge4(result4),
        lab37.judgeStability([_series(result4, SHAKY)] * 5, 0.10),
    ]
    assert len(claims) == 2 + 2 + 2 + 5 + 7 + 4 + 1
    wide = [line for line in formatClaims(claims).split("\n") if len(line) > REPORT_WIDTH]
    assert wide == []
    assert all(c.verdict is Verdict.HOLDS for c in claims if c.kind is ClaimKind.STRUCTURAL)


def test_the_lab_judges_every_exercise_and_lists_both_benchmarks() -> None:
    assert [entry.number for entry in lab37.LAB.exercises] == [1, 2, 3, 4]
    assert [b.key for b in lab37.LAB.benchmarks] == ["37.1-sweep", "37.2"]
    assert all(len(f"[1/3] {b.key} {b.title} ...") <= REPORT_WIDTH for b in lab37.LAB.benchmarks)


# ============================================================================
# Exercise 1
# ============================================================================


def _timed(result: l37.Exercise1Result, slowMs: Sequence[float], fastMs: Sequence[float]) -> l37.Exercise1Result:
    """Exercise 1's result with timeit repetitions of our choosing (slow and fast paired by position)."""

    def summary(label: str, samples: Sequence[float]) -> l37.TimingSummary:
        return l37.TimingSummary(label, min(samples), statistics.median(samples), tuple(samples))

    return replace(result, slow=summary("detectAnomalies", slowMs), fast=summary("detectAnomaliesFast", fastMs))


def _speedup(result: l37.Exercise1Result, slowMs: Sequence[float], fastMs: Sequence[float]) -> Claim:
    return _verdict(lab37.judge1(_timed(result, slowMs, fastMs)), "4-20x")


def test_speedup_holds_when_every_paired_repetition_lies_in_4_to_20x(result1: l37.Exercise1Result) -> None:
    held = _speedup(result1, [60.0, 61.0, 62.0, 63.0, 64.0], [10.0] * 5)
    assert (held.verdict, held.kind, held.reason) == (Verdict.HOLDS, ClaimKind.TIMING, "")
    assert held.spread == "6.0-6.4x over 5"
    assert held.measured == "6.2x, slow / fast per repetition (best of each: 6.0x)"


def test_speedup_below_4x_in_every_repetition_does_not_hold(result1: l37.Exercise1Result) -> None:
    failed = _speedup(result1, [30.0, 31.0, 32.0, 33.0, 34.0], [10.0] * 5)
    assert failed.verdict is Verdict.FAILS
    assert failed.reason == (
        "the fast version still costs 16667 ns per record: its output dict and the running statistics"
    )


def test_speedup_above_20x_is_not_within_the_range(result1: l37.Exercise1Result) -> None:
    above = _speedup(result1, [250.0, 260.0, 240.0, 230.0, 255.0], [10.0] * 5)
    assert above.verdict is Verdict.FAILS
    assert (
        above.reason == "above the lecture's range in every repetition: a larger speedup than 4-20x, not one within it"
    )
    assert above.spread == "23.0-26.0x over 5"


def test_speedup_across_either_line_is_too_close(result1: l37.Exercise1Result) -> None:
    nearFloor = _speedup(result1, [35.0, 45.0, 60.0, 60.0, 60.0], [10.0] * 5)
    assert (nearFloor.verdict, nearFloor.reason) == (
        Verdict.TOO_CLOSE,
        "the repeats straddle the line (>= 4.0x): the gap is inside the noise",
    )
    nearCeiling = _speedup(result1, [150.0, 190.0, 210.0, 180.0, 170.0], [10.0] * 5)
    assert (nearCeiling.verdict, nearCeiling.reason) == (
        Verdict.TOO_CLOSE,
        "the repeats straddle the line (< 20.0x): the gap is inside the noise",
    )
    few = _speedup(result1, [60.0, 60.0, 60.0], [10.0] * 3)
    assert (few.verdict, few.reason) == (Verdict.TOO_CLOSE, "3 repeats cannot decide a timing claim")


def test_exercise1_speedup_from_a_real_run_is_paired(result1: l37.Exercise1Result) -> None:
    claim = _verdict(lab37.judge1(result1), "4-20x")
    assert claim.verdict is Verdict.TOO_CLOSE  # TINY1 times one repetition: nothing to decide on
    assert claim.reason == "1 repeats cannot decide a timing claim"
    assert claim.measured.endswith(f"(best of each: {result1.speedup:.1f}x)")


def test_the_strictest_part_decides_a_claim_judged_in_parts(result1: l37.Exercise1Result) -> None:
    base = _verdict(lab37.judge1(result1), "4-20x")
    holds, close, fails, unmeasured = (
        replace(base, verdict=verdict, statement=verdict.name)
        for verdict in (Verdict.HOLDS, Verdict.TOO_CLOSE, Verdict.FAILS, Verdict.NOT_MEASURED)
    )
    assert lab37.strictest([holds, close, fails]) is fails
    assert lab37.strictest([unmeasured, close, holds]) is close
    assert lab37.strictest([holds, unmeasured]) is unmeasured
    assert lab37.strictest([holds, replace(holds, statement="second")]) is holds


def test_exercise1_identity_claim_is_structural_and_strict(result1: l37.Exercise1Result) -> None:
    held = _verdict(lab37.judge1(result1), "same anomaly flags")
    assert (held.verdict, held.kind, held.origin) == (Verdict.HOLDS, ClaimKind.STRUCTURAL, Origin.LECTURE)
    assert held.measured.startswith("0 flags and 0 zScores of 600 differ; max zScore diff ")
    for flags, zScores in ((1, 0), (0, 1)):
        broken = replace(result1.comparison, flagMismatches=flags, zScoreMismatches=zScores)
        claim = _verdict(lab37.judge1(replace(result1, comparison=broken)), "same anomaly flags")
        assert (claim.verdict, claim.kind) == (Verdict.FAILS, ClaimKind.STRUCTURAL)


def _flipLast(output: list[l37.FlaggedReading]) -> list[l37.FlaggedReading]:
    last: l37.FlaggedReading = {**output[-1], "anomaly": not output[-1]["anomaly"]}
    return [*output[:-1], last]


def _records(values: Sequence[float]) -> list[l37.Reading]:
    return [{"id": i, "value": value} for i, value in enumerate(values)]


def test_a_flipped_flag_far_from_the_threshold_is_a_real_mismatch() -> None:
    reference = l37.detectAnomalies(_records([1e12 + float(i % 3) for i in range(60)]))
    agreement = lab37.agreementOf(reference, _flipLast(reference))
    assert (agreement.flagMismatches, agreement.roundingTies, agreement.realMismatches) == (1, 0, 1)


def test_a_flag_decided_exactly_at_the_threshold_is_a_rounding_tie() -> None:
    reference = l37.detectAnomalies(_records([0.0, 2.0]), threshold=1.0)  # zScore 1 == 1.0 * std 1
    agreement = lab37.agreementOf(reference, _flipLast(reference), threshold=1.0)
    assert (agreement.flagMismatches, agreement.roundingTies, agreement.realMismatches) == (1, 1, 0)


@pytest.mark.parametrize("kind", lab37.HARD_KINDS)
def test_robust_equals_slow_on_hard_data(kind: lab37.HardKind) -> None:
    row = lab37.hardDataRow(kind, 1_500, 7)
    assert row.robust.flagMismatches == 0
    assert row.robust.maxRelativeZScoreDiff < 1e-9
    if kind in {"offset 1e9", "offset 1e12", "spread 1e-9", "level shifts", "1e6, spread 0.01"}:
        assert row.runningSums.realMismatches > row.anomalies  # they cancel: more flips than real anomalies


def test_hard_data_findings_are_structural_and_beyond_the_lecture(result1: l37.Exercise1Result) -> None:
    exact = lab37.Agreement(100, 0, 0, 0.0, 0.0)
    flipped = lab37.Agreement(100, 7, 0, 0.1, 0.1)
    ties = lab37.Agreement(100, 7, 7, 1e-12, 1e-12)
    cancelling = [
        lab37.HardDataRow("offset 1e9", 3, flipped, exact),
        lab37.HardDataRow("1e6, spread 0.01", 2, flipped, exact),
    ]
    sums, robust = lab37.judgeHardData(cancelling, result1)
    for claim in (sums, robust):
        assert (claim.verdict, claim.kind, claim.origin) == (Verdict.HOLDS, ClaimKind.STRUCTURAL, Origin.FINDING)
    assert sums.statement == (
        "a running sum and sum of squares compute the same variance on gauss(50, 10), not near 1e6, spread 0.01 "
        "(flags flip)"
    )
    assert (
        sums.measured
        == "0 flags differ on gauss(50, 10); 14 on hard data (7 beyond rounding ties on '1e6, spread 0.01')"
    )
    onlyTies = [cancelling[0], replace(cancelling[1], runningSums=ties)]
    sums, _ = lab37.judgeHardData(onlyTies, result1)
    assert (sums.verdict, sums.reason) == (
        Verdict.FAILS,
        "the running sums flipped no flag on '1e6, spread 0.01': that data no longer cancels",
    )
    drifted = [cancelling[0], replace(cancelling[1], robust=flipped)]
    _, robust = lab37.judgeHardData(drifted, result1)
    assert (robust.verdict, robust.reason) == (
        Verdict.FAILS,
        "cancellation in the sliding update was not caught by the resync guard",
    )
    _, robust = lab37.judgeHardData([cancelling[0], replace(cancelling[1], robust=ties)], result1)
    assert robust.verdict is Verdict.HOLDS
    assert robust.measured.endswith(f"all rounding ties (< {lab37.TIE_ULPS} ulps)")
    onSpec = replace(result1, comparison=replace(result1.comparison, flagMismatches=2))
    sums, _ = lab37.judgeHardData(cancelling, onSpec)
    assert (sums.verdict, sums.reason) == (Verdict.FAILS, "the running sums flipped flags on the spec's own data")


def _breakdown(
    slicing: Sequence[float], sums: Sequence[float], whole: Sequence[float]
) -> tuple[lab37.OperationCost, ...]:
    """A breakdown from per-repetition ns/record, the sums split in two halves, medians as headlines."""
    half = tuple(value / 2 for value in sums)
    return (
        lab37.OperationCost("window = window[1:] (+ append)", statistics.median(slicing), tuple(slicing)),
        lab37.OperationCost("sum(window) / len(window)", statistics.median(half), half),
        lab37.OperationCost("sum((x - mean)**2 for x in window)", statistics.median(half), half),
        lab37.OperationCost(lab37.WHOLE_LOOP, statistics.median(whole), tuple(whole)),
    )


def test_dominance_is_judged_repetition_by_repetition() -> None:
    whole = [1_000.0] * 5
    held = lab37.judgeBreakdown(_breakdown([30.0] * 5, [800.0, 820.0, 840.0, 860.0, 880.0], whole))
    assert (held.verdict, held.kind, held.spread) == (Verdict.HOLDS, ClaimKind.TIMING, "83%-91% over 5")
    assert held.measured == "87% of the loop: sum calls 84%, the slice 3% (medians, each timed alone)"
    failed = lab37.judgeBreakdown(_breakdown([30.0] * 5, [200.0, 250.0, 300.0, 350.0, 400.0], whole))
    assert (failed.verdict, failed.reason) == (
        Verdict.FAILS,
        "the loop's own bytecode (dict build, abs, compare) costs more than both",
    )
    straddling = lab37.judgeBreakdown(_breakdown([30.0] * 5, [400.0, 450.0, 500.0, 550.0, 600.0], whole))
    assert (straddling.verdict, straddling.reason) == (
        Verdict.TOO_CLOSE,
        "the repeats straddle the line (>= 50%): the gap is inside the noise",
    )


def test_breakdown_times_each_operation_and_the_whole_loop() -> None:
    breakdown = lab37.measureBreakdown(l37.makeAnomalyRecords(300, 3, 1), repetitions=2)
    assert [c.operation for c in breakdown][-1] == lab37.WHOLE_LOOP
    assert len(breakdown) == 4
    assert all(len(c.samples) == 2 and c.nsPerRecord == statistics.median(c.samples) for c in breakdown)
    assert "share of the loop" in lab37.formatBreakdown(breakdown)


def test_breakdown_table_gives_each_operation_its_share_of_the_loop() -> None:
    rows = [line.split("  ") for line in lab37.formatBreakdown(BREAKDOWN).split("\n")[2:]]
    assert [[cell.strip() for cell in row if cell.strip()] for row in rows] == [
        ["window = window[1:] (+ append)", "150", "3%"],
        ["sum(window) / len(window)", "250", "6%"],
        ["sum((x - mean)**2 for x in window)", "3400", "79%"],
        [lab37.WHOLE_LOOP, "4300", "100%"],
    ]


def test_profiler_note_names_the_profiler_of_this_interpreter(result1: l37.Exercise1Result) -> None:
    text = lab37.profilerNote(result1, 1.7)
    expected, other = ("sys.monitoring", "sys.setprofile")
    if not lab37.PROFILER_USES_MONITORING:
        expected, other = other, expected
    assert expected in text
    assert other not in text
    assert result1.python in text
    assert "runs 1.7x as long under it" in _flat([text])


def test_floor_builds_the_same_keys_as_the_detectors() -> None:
    records = l37.makeAnomalyRecords(60, 1, 2)
    floor = lab37.buildOutputFloor(records)
    withWindow = lab37.buildOutputWithWindow(records)
    fast = l37.detectAnomaliesFast(records)
    assert [list(r) for r in floor] == [list(r) for r in fast] == [list(r) for r in withWindow]
    assert list(fast[0]) == ["id", "value", "anomaly", "zScore"]


# ============================================================================
# Exercise 2
# ============================================================================


def _stage(name: str, latencyMs: float, selfMs: float, records: int = 100) -> l37.StageMetrics:
    return l37.StageMetrics(name, records, records, latencyMs, latencyMs, selfMs, latencyMs * records, True)


NAMES = ("ThresholdFilter", "WindowNormalizer", "MovingAvgTransform")


def _pipeline(latencies: Sequence[float], selfs: Sequence[float], label: str = "before") -> l37.PipelineRun:
    """One run of the three stages: mean latencies (ms) and self times (ms over 100 records)."""
    stages = tuple(_stage(*args) for args in zip(NAMES, latencies, selfs, strict=True))
    return l37.PipelineRun(label, stages, 100, 50.0)


def _result2(before: l37.PipelineRun, after: l37.PipelineRun) -> l37.Exercise2Result:
    return l37.Exercise2Result(l37.Exercise2Config(), 100, before, after, True)


# A pull chain: every stage's latency is the chain's 0.5 ms per record; WindowNormalizer does 0.45 of it.
PULL = _pipeline((0.5, 0.5, 0.5), (1.0, 45.0, 2.0))
FIXED = _pipeline((0.05, 0.05, 0.05), (1.0, 1.2, 2.0), "after")


def _rounds(*runs: l37.PipelineRun) -> list[l37.PipelineRun]:
    """Five rounds: the runs given, the last repeated."""
    return [*runs, *(runs[-1],) * (5 - len(runs))]


def test_highest_latency_reading_is_not_measurable_when_no_stage_stands_out() -> None:
    claim = lab37.highestReading(_rounds(PULL))
    assert (claim.verdict, claim.kind, claim.spread) == (Verdict.NOT_MEASURED, ClaimKind.TIMING, "1.000-1.000x over 5")
    assert claim.measured == "mean latency 0.5000 ms at every stage (medians); the highest / the next 1.000x"
    assert claim.reason == (
        "yield to yield, every stage's interval spans the whole chain's work for one record, so no stage's mean "
        "stands out (10% above the others) and the rule has no stage to start from; self time says what the "
        "latencies cannot: WindowNormalizer does 94% of the chain's own work"
    )


def test_highest_latency_reading_is_decided_where_one_stage_stands_out_in_every_round() -> None:
    beforeSlow = _pipeline((0.9, 0.5, 0.5), (1.0, 45.0, 2.0))
    held = lab37.highestReading(_rounds(beforeSlow))
    assert (held.verdict, held.reason) == (Verdict.HOLDS, "")
    lastStandsOut = _pipeline((0.5, 0.5, 0.9), (1.0, 45.0, 2.0))
    failed = lab37.highestReading(_rounds(lastStandsOut))
    assert (failed.verdict, failed.reason) == (
        Verdict.FAILS,
        "the stage after MovingAvgTransform is none, not WindowNormalizer, the slow one",
    )
    sometimes = lab37.highestReading(_rounds(beforeSlow, beforeSlow, PULL))
    assert (sometimes.verdict, sometimes.reason) == (
        Verdict.TOO_CLOSE,
        "the repeats straddle the line (>= 1.100x): the gap is inside the noise",
    )
    wandering = lab37.highestReading(_rounds(beforeSlow, lastStandsOut))
    assert (wandering.verdict, wandering.reason) == (
        Verdict.TOO_CLOSE,
        "a different stage stood out (or was slowest) from one round to the next",
    )


def test_cause_reading_a_stage_before_the_slow_one_shows_it_in_its_latency() -> None:
    held = lab37.causeReading(_rounds(PULL))
    assert (held.verdict, held.spread) == (Verdict.HOLDS, "90%-90% over 5")
    assert held.measured == "ThresholdFilter's latency: 90% of it is WindowNormalizer's self time, 2.0% its own"
    hidden = _pipeline((2.0, 2.0, 2.0), (1.0, 45.0, 2.0))  # the slow stage's time is a fifth of the interval
    failed = lab37.causeReading(_rounds(hidden))
    assert (failed.verdict, failed.reason) == (
        Verdict.FAILS,
        "WindowNormalizer's own time is under half of the latency of the stages before it",
    )
    assert lab37.causeReading(_rounds(PULL, hidden)).verdict is Verdict.TOO_CLOSE
    firstSlow = _pipeline((0.5, 0.5, 0.5), (45.0, 1.0, 2.0))
    unmeasured = lab37.causeReading(_rounds(firstSlow))
    assert (unmeasured.verdict, unmeasured.reason) == (
        Verdict.NOT_MEASURED,
        "no stage sits before the slow one to show it",
    )


def test_indicator_reading_fails_when_a_stage_after_the_slow_one_waits_as_long() -> None:
    failed = lab37.indicatorReading(_rounds(PULL))
    assert (failed.verdict, failed.spread) == (Verdict.FAILS, "4.0%-4.0% over 5")
    assert (
        failed.measured
        == "MovingAvgTransform, after WindowNormalizer: the same latency, 4.0% of it its own (self time)"
    )
    assert failed.reason == (
        "a stage after WindowNormalizer waits as long, for upstream's work on its next record: yield to yield, the "
        "rule cannot tell which side is slow; self time can"
    )
    busyLast = _pipeline((0.5, 0.5, 0.5), (1.0, 45.0, 40.0))  # its own time fills most of its interval: no wait
    assert lab37.indicatorReading(_rounds(busyLast)).verdict is Verdict.HOLDS
    assert lab37.indicatorReading(_rounds(PULL, busyLast)).verdict is Verdict.TOO_CLOSE
    slowLast = _pipeline((0.5, 0.5, 0.5), (1.0, 2.0, 45.0))
    held = lab37.indicatorReading(_rounds(slowLast))
    assert (held.verdict, held.measured) == (
        Verdict.HOLDS,
        "MovingAvgTransform is the last stage: every stage before it has it downstream",
    )


def test_trace_follows_the_rule_while_a_stage_waits() -> None:
    assert lab37.traceBottleneck(PULL) == "WindowNormalizer"
    assert lab37.traceBottleneck(FIXED) == "the consumer"
    held = lab37.traceReading(_rounds(PULL))
    assert (held.verdict, held.spread) == (Verdict.HOLDS, "90.0%-90.0% over 5")
    assert held.measured == (
        "the rule followed while a stage waits stops at WindowNormalizer (5 of 5 rounds); WindowNormalizer's self "
        "time: 90.0% of its latency"
    )
    elsewhere = _pipeline((0.5, 0.5, 0.5), (1.0, 2.0, 45.0))
    failed = lab37.traceReading(_rounds(elsewhere))
    assert (failed.verdict, failed.reason) == (
        Verdict.FAILS,
        "WindowNormalizer's own time is under half of its latency: it waits for another stage",
    )


def test_after_the_fix_the_normaliser_must_lose_its_dominance_in_every_round() -> None:
    def judged(*after: l37.PipelineRun) -> Claim:
        rounds = lab37.PipelineRounds(tuple(_rounds(PULL)), tuple(_rounds(*after)))
        return lab37.afterFixReading(rounds)

    held = judged(FIXED)
    assert (held.verdict, held.spread) == (Verdict.HOLDS, "0.60-0.60x over 5")
    assert held.measured == (
        "WindowNormalizer self 45 -> 1.2 ms, 0.60x the next stage's (top now: MovingAvgTransform); its latency "
        "0.5000 -> 0.0500 ms"
    )
    still = _pipeline((0.3, 0.3, 0.3), (1.0, 30.0, 2.0), "after")
    assert (judged(still).verdict, judged(still).reason) == (
        Verdict.FAILS,
        "WindowNormalizer still has twice the self time of any other stage",
    )
    assert judged(FIXED, still).verdict is Verdict.TOO_CLOSE


def test_exercise2_judge_keeps_the_structural_claims_only() -> None:
    claims = lab37.judge2(_result2(PULL, FIXED))
    assert [(c.kind, c.verdict) for c in claims] == [(ClaimKind.STRUCTURAL, Verdict.HOLDS)] * 2
    lossy = replace(PULL, consumed=99)
    claim = _verdict(lab37.judge2(_result2(lossy, FIXED)), "counts add up")
    assert (claim.verdict, claim.kind) == (Verdict.FAILS, ClaimKind.STRUCTURAL)


def test_exercise2_rounds_of_real_runs() -> None:
    records = l37.makeStageRecords(400, 3)
    rounds = lab37.runPipelineRounds(records, 5)
    assert [len(rounds.before), len(rounds.after)] == [5, 5]
    assert {run.label for run in rounds.before} == {"before fix"}
    claims = lab37.judgeRounds(rounds)
    assert [c.statement.split(" (read: ")[-1] for c in claims[:3]] == [
        "the highest mean latency sits just before the slow stage)",
        "a stage before the slow one shows its slowness in its latency)",
        "every stage with high latency has the slow stage after it)",
    ]
    assert claims[0].verdict is Verdict.NOT_MEASURED  # yield to yield, the means agree to a fraction of 10%
    assert all(c.kind is ClaimKind.TIMING and c.spread.endswith(" over 5") for c in claims)


def test_exercise2_judged_on_a_real_run(result2: l37.Exercise2Result) -> None:
    claims = lab37.judge2(result2)
    assert [c.verdict for c in claims] == [Verdict.HOLDS, Verdict.HOLDS]


# ============================================================================
# Exercise 3
# ============================================================================


def _memoryRow(name: str, bytesPer: float, blocks: float, hasDict: bool) -> l37.MemoryRow:
    return l37.MemoryRow(
        className=name,
        bytesPerInstance=bytesPer,
        totalKb=bytesPer * 50,
        getsizeofInstance=48 if hasDict else int(bytesPer),
        getsizeofDict=120 if hasDict else None,
        dictError="" if hasDict else "AttributeError",
        dictTouchBytesPerInstance=64.0 if hasDict else None,
        blocksPerInstance=blocks,
    )


def _exercise3(rounds: Mapping[str, Sequence[float]], slotsBytes: float = 80.0) -> l37.Exercise3Result:
    """An exercise-3 result built from ns/read per round: the judging without timing anything."""
    memory = (
        _memoryRow("EventDict", 128.0, 2.0, hasDict=True),
        _memoryRow("EventSlots", slotsBytes, 1.0, hasDict=False),
        _memoryRow("EventNamedTuple", 96.0, 1.0, hasDict=False),
        _memoryRow("EventDataclass", 128.0, 2.0, hasDict=True),
    )

    def row(name: str) -> l37.ReadRow:
        return l37.ReadRow(name, 1e9 / min(rounds[name]), tuple(rounds[name]))

    return l37.Exercise3Result(
        config=l37.Exercise3Config.quick(),
        python="CPython 3.x",
        memory=memory,
        reads=tuple(row(cls.__name__) for cls in l37.EVENT_CLASSES),
        readsMaterialized=row(l37.MATERIALIZED),
        emptyLoopNs=6.0,
        typo=l37.findAttributeTypo(silent),
    )


def _steady(ns: float) -> list[float]:
    return [ns, ns + 0.1, ns + 0.2, ns + 0.1, ns]


# What 3.11 measured (ns/read per round) and what its bytecode says.
READS_311 = {
    "EventDict": _steady(10.2),
    "EventSlots": _steady(9.0),
    "EventNamedTuple": _steady(21.5),
    "EventDataclass": _steady(10.7),
    l37.MATERIALIZED: _steady(31.7),
}
FACTS_311 = lab37.ReadFacts(
    (3, 11),
    {
        "EventDict": "LOAD_ATTR_INSTANCE_VALUE",
        "EventSlots": "LOAD_ATTR_SLOT",
        "EventNamedTuple": "LOAD_ATTR_ADAPTIVE",
        "EventDataclass": "LOAD_ATTR_INSTANCE_VALUE",
        l37.MATERIALIZED: "LOAD_ATTR_ADAPTIVE",
    },
    "_tuplegetter",
)
FACTS_313 = replace(
    FACTS_311,
    version=(3, 13),
    instructions={
        **FACTS_311.instructions,
        "EventNamedTuple": "LOAD_ATTR",
        l37.MATERIALIZED: "LOAD_ATTR_INSTANCE_VALUE",
    },
)


def _reads(result: l37.Exercise3Result, facts: lab37.ReadFacts, fragment: str) -> Claim:
    return _verdict(lab37.judge3(result, facts), fragment)


def test_exercise3_each_part_of_the_lecture_sentence_is_judged_round_by_round() -> None:
    result = _exercise3(READS_311)
    slots = _reads(result, FACTS_311, "EventSlots reads beat")
    assert (slots.verdict, slots.kind, slots.spread) == (Verdict.HOLDS, ClaimKind.TIMING, "1.13-1.13x over 5")
    assert slots.measured == ("Dict / Slots 1.13x per round; ns/read Slots 9.1, Dict 10.3, Dataclass 10.8 (medians)")
    named = _reads(result, FACTS_311, "EventNamedTuple reads beat")
    assert (named.verdict, named.spread) == (Verdict.FAILS, "0.47-0.48x over 5")
    untouched = _reads(result, FACTS_311, "read as an EventDict as created")
    assert untouched.verdict is Verdict.FAILS
    touched = _reads(result, FACTS_311, "read as an EventDict whose __dict__ exists")
    assert (touched.verdict, touched.reason) == (Verdict.HOLDS, "")
    assert touched.measured.startswith("__dict__ touched / NamedTuple 1.47x per round; ")


def test_exercise3_a_part_inside_the_noise_is_too_close() -> None:
    close = {**READS_311, "EventSlots": [9.0, 11.0, 9.5, 10.9, 9.2]}  # beats Dict in some rounds only
    slots = _reads(_exercise3(close), FACTS_311, "EventSlots reads beat")
    assert (slots.verdict, slots.reason) == (
        Verdict.TOO_CLOSE,
        "the repeats straddle the line (>= 1.00x): the gap is inside the noise",
    )
    slower = {**READS_311, "EventSlots": _steady(11.5)}
    slots = _reads(_exercise3(slower), FACTS_311, "EventSlots reads beat")
    assert (slots.verdict, slots.reason) == (
        Verdict.FAILS,
        (
            "on CPython 3.x both reads are specialised (EventSlots LOAD_ATTR_SLOT, EventDict "
            "LOAD_ATTR_INSTANCE_VALUE): a slot has no edge over an instance's values array"
        ),
    )


def test_exercise3_explanations_follow_the_bytecode_not_the_timings() -> None:
    result = _exercise3(READS_311)
    assert _reads(result, FACTS_311, "EventNamedTuple reads beat").reason == (
        "EventNamedTuple.value is a _tuplegetter descriptor, and on CPython 3.x its read is not specialised "
        "(LOAD_ATTR_ADAPTIVE): every read calls the descriptor, while EventDict's is LOAD_ATTR_INSTANCE_VALUE"
    )
    assert _reads(result, FACTS_311, "as created").reason == (
        "on CPython 3.x an instance keeps its values in an array until __dict__ is asked for: its read is "
        "LOAD_ATTR_INSTANCE_VALUE, specialised like a slot's (LOAD_ATTR_SLOT)"
    )
    fastTouched = _exercise3({**READS_311, l37.MATERIALIZED: _steady(10.3)})
    for facts, reason in (
        (FACTS_311, "on CPython 3.x the read through an existing __dict__ is LOAD_ATTR_ADAPTIVE"),
        (
            FACTS_313,
            (
                "on CPython 3.x the values stay in the object once __dict__ exists (the dict refers to them): the "
                "read stays LOAD_ATTR_INSTANCE_VALUE"
            ),
        ),
    ):
        claim = _reads(fastTouched, facts, "whose __dict__ exists")
        assert (claim.verdict, claim.reason) == (Verdict.FAILS, reason)


def test_exercise3_the_lecture_ranking_holds_when_measured_so() -> None:
    lecture = {
        "EventDict": _steady(30.0),
        "EventSlots": _steady(6.0),
        "EventNamedTuple": _steady(7.0),
        "EventDataclass": _steady(20.0),
        l37.MATERIALIZED: _steady(40.0),
    }
    claims = lab37.judge3(_exercise3(lecture), FACTS_311)
    assert [c.verdict for c in claims] == [Verdict.HOLDS] * 7
    assert [c.kind for c in claims] == [ClaimKind.STRUCTURAL] * 3 + [ClaimKind.TIMING] * 4


def test_exercise3_memory_is_structural() -> None:
    claim = _reads(_exercise3(READS_311, slotsBytes=128.0), FACTS_311, "saves memory")
    assert (claim.verdict, claim.kind) == (Verdict.FAILS, ClaimKind.STRUCTURAL)


def test_read_facts_of_this_interpreter() -> None:
    facts = lab37.readFacts()
    assert facts.version == sys.version_info[:2]
    assert facts.instructions["EventSlots"] == "LOAD_ATTR_SLOT"
    assert facts.instructions["EventDict"] == "LOAD_ATTR_INSTANCE_VALUE"
    assert facts.namedTupleField == "_tuplegetter"
    assert set(facts.instructions) == {*(cls.__name__ for cls in l37.EVENT_CLASSES), l37.MATERIALIZED}
    if sys.version_info < (3, 13):
        assert facts.generic(l37.MATERIALIZED)  # the values moved into the dict: no specialised read
    assert lab37.specialisedRead(l37.EventSlots("S1", 0.0, 1.0, "C", 0, False)) == "LOAD_ATTR_SLOT"


def test_exercise3_report_reads_the_rounds() -> None:
    text = _flat([l37.formatExercise3(_exercise3(READS_311))])
    assert "a separate values array the object points to (2 blocks per instance)" in text
    assert "EventSlots 80 B < EventNamedTuple 96 B < EventDict 128 B = EventDataclass 128 B" in text
    assert "Fastest reads: EventSlots, then EventDict; slowest: EventNamedTuple (21.5 ns)." in text
    assert "best of 7 rounds taking turns" in text


# ============================================================================
# Exercise 4
# ============================================================================


def _series(result: l37.Exercise4Result, throughputs: Sequence[float], cpuShare: float = 1.0) -> list[l37.DashboardRun]:
    """One series: the result's first stability run repeated, each stage at the given records/s."""
    template = result.stability[0]
    runs = []
    for perSecond in throughputs:
        stages = tuple(replace(s, wallMs=s.records / perSecond * 1e3) for s in template.stages)
        runs.append(replace(template, stages=stages, elapsedMs=100.0, cpuMs=100.0 * cpuShare))
    return runs


STEADY = (100_000.0, 101_000.0, 99_000.0, 100_500.0, 99_500.0)  # CV 0.8%
SHAKY = (100_000.0, 70_000.0, 130_000.0, 90_000.0, 110_000.0)  # CV 22%


def test_stability_is_judged_over_series(result4: l37.Exercise4Result) -> None:
    held = lab37.judgeStability([_series(result4, STEADY)] * 5, 0.10)
    assert (held.verdict, held.kind, held.spread) == (Verdict.HOLDS, ClaimKind.TIMING, "0.8%-0.8% over 5")
    assert held.measured.startswith("the worst stage's CV, 5 series of 5 runs: 0.8% (median; most often ")
    failed = lab37.judgeStability([_series(result4, SHAKY, cpuShare=0.97)] * 5, 0.10)
    assert (failed.verdict, failed.spread) == (Verdict.FAILS, "22.4%-22.4% over 5")
    assert failed.reason == (
        "every run had a core for at least 97% of its wall time, but the same work took 1.00x the CPU time in one "
        "run as in another: it ran slower (a busy host, shared caches)"
    )
    starved = lab37.judgeStability([_series(result4, SHAKY, cpuShare=0.5)] * 5, 0.10)
    assert (starved.verdict, starved.reason) == (
        Verdict.TOO_CLOSE,
        (
            "every series varied by 10% or more, but other processes took the CPU (one run had a core for only 50% "
            "of its wall time): that spread is the machine's load, not the pipeline's"
        ),
    )
    assert lab37.judgeStability([_series(result4, STEADY, cpuShare=0.5)] * 5, 0.10).verdict is Verdict.HOLDS
    mixed = lab37.judgeStability(
        [_series(result4, STEADY), _series(result4, SHAKY)] * 2 + [_series(result4, STEADY)], 0.10
    )
    assert (mixed.verdict, mixed.reason) == (
        Verdict.TOO_CLOSE,
        "the repeats straddle the line (< 10.0%): the gap is inside the noise",
    )


def test_exercise4_leak_claims_are_structural_and_read_the_fits(result4: l37.Exercise4Result) -> None:
    claims = lab37.judge4(result4)
    assert [c.kind for c in claims] == [ClaimKind.STRUCTURAL] * 4
    assert [c.verdict for c in claims] == [Verdict.HOLDS] * 4
    flat = LinearFit(slope=2.0, intercept=0.0, rSquared=0.1)
    noisy = replace(result4.leakFit, rSquared=0.5)
    result = replace(result4, leakFit=noisy, fixedFit=replace(noisy, slope=noisy.slope))
    grows = _verdict(lab37.judge4(result), "grows linearly")
    assert (grows.verdict, grows.reason) == (Verdict.FAILS, "the kept records did not account for the growth")
    assert _verdict(lab37.judge4(result), "stabilises").verdict is Verdict.FAILS
    assert _verdict(lab37.judge4(replace(result4, fixedFit=flat)), "stabilises").verdict is Verdict.HOLDS


def test_exercise4_a_lost_record_fails_the_structural_claim(result4: l37.Exercise4Result) -> None:
    lossy = replace(result4, main=replace(result4.main, consumed=result4.main.consumed - 1))
    claim = _verdict(lab37.judge4(lossy), "counts add up")
    assert (claim.verdict, claim.kind) == (Verdict.FAILS, ClaimKind.STRUCTURAL)


def test_study4_judges_stability_in_series_and_finds_the_leaking_line(result4: l37.Exercise4Result) -> None:
    lines: list[str] = []
    config = l37.Exercise4Config(records=100, runs=2)  # study4 reads its records from the config
    stability, leak = lab37.study4(RunOptions(seed=5, quick=True), replace(result4, config=config), lines.append)
    assert stability.spread.endswith(" over 5")
    assert stability.measured.startswith("the worst stage's CV, 5 series of 5 runs: ")
    assert (leak.verdict, leak.kind, leak.origin) == (Verdict.HOLDS, ClaimKind.STRUCTURAL, Origin.FINDING)
    found = re.search(
        r"^top line: l37\.py:\d+ \(AlertDetector\.process\), ([\d,]+) KB in ([\d,]+) blocks$", leak.measured
    )
    assert found is not None, leak.measured
    kb, blocks = (int(group.replace(",", "")) for group in found.groups())
    records = sum(10.0 <= r["value"] <= 90.0 for r in l37.makeDashboardRecords(config, 5))  # one dict each kept
    sample = {"id": 1, "value": 1.5, "norm": 0.5, "movingAvg": 0.5, "delta": 0.1, "alert": False}
    assert abs(kb - records * sys.getsizeof(sample) / 1024) <= 0.05 * records * sys.getsizeof(sample) / 1024 + 1
    assert blocks >= records
    assert l37.AlertDetector.allAlerts == []
    assert "Where a leaking run's net memory went" in lines[0]
    assert "cProfile and tracemalloc make it" in _flat(lines[1:])


# ============================================================================
# Benchmarks
# ============================================================================


def test_sweep_rows_per_size_with_the_floor_as_ideal() -> None:
    report = lab37.sweepExercise1((200, 400), BenchOptions(repeats=1), steadyRecords=2_000, breakdownRecords=400)
    assert report.key == "37.1-sweep"
    assert [row.label for row in report.rows] == ["fast, 200 records", "fast, 400 records"]
    assert (
        [row.repeats for row in report.rows] == [lab37.runsFor(200, 1, 2_000), lab37.runsFor(400, 1, 2_000)] == [10, 5]
    )
    assert [len(row.samples) for row in report.rows] == [10, 5]  # every timeit run kept: the spread shows
    assert all(row.medianSeconds == statistics.median(row.samples) for row in report.rows)
    for row in report.rows:  # medians of paired runs: O(W) per record against O(1), the floor below both
        assert row.idealSeconds < row.baselineSeconds
        assert row.medianSeconds < row.baselineSeconds
    text = formatBench(report)
    assert "Where the slow version's cost comes from" in text
    assert "Speedup of detectAnomaliesFast over detectAnomalies, by size:" in text
    assert max(len(line) for line in text.split("\n")) <= REPORT_WIDTH


def test_pipeline_rows_per_size_with_the_floor_as_ideal() -> None:
    report = lab37.benchPipeline2((500, 1_000), BenchOptions(repeats=2), steadyRecords=1_000)
    assert report.key == "37.2"
    assert [row.label for row in report.rows] == ["fixed, 500 records", "fixed, 1,000 records"]
    assert [len(row.samples) for row in report.rows] == [4, 2]
    assert "Is the floor a bound? Round by round" in _flat([formatBench(report)])
    for row in report.rows:  # the spec's normaliser rescans every value seen: slower than the fix and the floor
        assert row.idealSeconds < row.baselineSeconds
        assert row.medianSeconds < row.baselineSeconds
    text = formatBench(report)
    assert "O(N²) per run" in _flat([text])
    assert "What measuring costs: at 1,000 records" in _flat([text])
    assert max(len(line) for line in text.split("\n")) <= REPORT_WIDTH


def test_measuring_cost_per_record_and_stage() -> None:
    cost = lab37.MeasuringCost(records=1_000, stages=3, measuredMs=9.0, unmeasuredMs=3.0)
    assert cost.usPerRecordStage == pytest.approx(2.0)
    assert "2.00 µs per record and stage" in cost.note()
    assert lab37.MeasuringCost(1_000, 3, 3.0, 4.0).usPerRecordStage == 0.0


def test_the_floor_normaliser_builds_the_same_keys() -> None:
    records = l37.makeStageRecords(50, 1)
    with l37.StageMetricsCollector(silent) as collector:
        floor = list(lab37.NormalizerFloor().process(records))
        fixed = list(l37.WindowNormalizerFixed().process(records))
    assert [list(r) for r in floor] == [list(r) for r in fixed]
    assert [s.name for s in collector.stages] == ["WindowNormalizer", "WindowNormalizer"]


def test_firstSizeFrom_wants_every_larger_size_to_hold() -> None:
    sizes = (1, 2, 3, 4)
    assert lab37.firstSizeFrom(sizes, (False, True, False, True)) == 4
    assert lab37.firstSizeFrom(sizes, (False, True, True, True)) == 2
    assert lab37.firstSizeFrom(sizes, (True, True, True, False)) is None
    assert lab37.firstSizeFrom(sizes, (True,) * 4) == 1


BREAKDOWN = (
    lab37.OperationCost("window = window[1:] (+ append)", 150.0),
    lab37.OperationCost("sum(window) / len(window)", 250.0),
    lab37.OperationCost("sum((x - mean)**2 for x in window)", 3_400.0),
    lab37.OperationCost(lab37.WHOLE_LOOP, 4_300.0),
)


def _sweepPoint(records: int, fastOverFloor: float) -> lab37.SweepPoint:
    perRecord = records * 1e-9
    return lab37.SweepPoint(
        records, 4_300 * perRecord, 100 * fastOverFloor * perRecord, 130 * perRecord, 100 * perRecord, 3
    )


def test_sweep_notes_say_the_target_is_out_of_reach_when_the_gap_is_per_record() -> None:
    notes = _flat(lab37.sweepNotes([_sweepPoint(1_000, 3.0), _sweepPoint(10_000, 3.2)], BREAKDOWN))
    assert "is reached at no size tried (1,000-10,000)" in notes
    assert "linear in N (slope 4,300 ns/record, R² 1.000" in notes
    assert "the generator-fed variance sum 3,400 ns of 4,300 (79%)" in notes
    assert "between 13.4x and 14.3x" in notes


def test_sweep_notes_name_the_size_from_which_the_target_is_reached() -> None:
    notes = _flat(lab37.sweepNotes([_sweepPoint(1_000, 1.5), _sweepPoint(10_000, 1.1)], BREAKDOWN))
    assert "85% of the floor is reached from 10,000 records." in notes


def test_sweep_notes_explain_a_floor_that_rises_with_size() -> None:
    small = replace(_sweepPoint(1_000, 3.0), inputMb=0.2)
    large = replace(_sweepPoint(100_000, 2.2), floorSeconds=100_000 * 150e-9, inputMb=24.0)
    notes = _flat(lab37.sweepNotes([small, large], BREAKDOWN))
    assert "The floor per record rises from 100 to 150 ns while the input grows from 0.2 to 24 MB" in notes
    assert "rises from" not in _flat(lab37.sweepNotes([small, replace(small, records=2_000)], BREAKDOWN))


def _pipelinePoint(records: int, afterOverFloor: float) -> lab37.PipelinePoint:
    floor = records * 2e-6
    before = floor + records * records * 1e-8
    return lab37.PipelinePoint(records, records, before, floor * afterOverFloor, floor, before * 900, 1.0, 3)


def test_pipeline_notes_read_quadratic_before_and_linear_after() -> None:
    notes = _flat(lab37.pipelineNotes([_pipelinePoint(1_000, 1.05), _pipelinePoint(4_000, 1.05)]))
    assert "runs at 95%-95% of the floor at every size" in notes
    assert "(4x the records, " in notes
    assert "R² 1.000" in notes
    below = _flat(lab37.pipelineNotes([_pipelinePoint(1_000, 1.3), _pipelinePoint(4_000, 1.1)]))
    assert "reaches 85% of the floor from 4,000 records (77%-91%)" in below
    never = _flat(lab37.pipelineNotes([_pipelinePoint(1_000, 1.3), _pipelinePoint(4_000, 1.3)]))
    assert "reaches 85% of the floor at no size tried" in never


def _paired(records: int, after: Sequence[float], floor: Sequence[float]) -> lab37.PipelinePoint:
    """A pipeline point from paired rounds (seconds): medians from the rounds, before far slower."""
    return lab37.PipelinePoint(
        records,
        records,
        beforeSeconds=10 * max(after),
        afterSeconds=statistics.median(after),
        floorSeconds=statistics.median(floor),
        beforeSelfMs=1_000.0,
        afterSelfMs=1.0,
        repeats=len(after),
        afterSamples=tuple(after),
        floorSamples=tuple(floor),
    )


def test_floor_note_says_the_calibration_holds_when_the_floor_wins_most_rounds() -> None:
    point = _paired(1_000, [0.0105, 0.0106, 0.0104, 0.0107, 0.0105], [0.0100, 0.0101, 0.0100, 0.0102, 0.0099])
    assert point.overFloor == pytest.approx((1.05, 1.0495, 1.04, 1.0490, 1.0606), abs=1e-3)
    (note,) = lab37.floorNote([point])
    assert note == (
        "Is the floor a bound? Round by round (the fixed and the floor pipelines in the same round, the order "
        "rotating), the fixed one took 1.04-1.06x the floor's time, less in 0 of 5 rounds: the floor wins most "
        "rounds, as a bound must, so its calibration holds."
    )


def test_a_median_past_the_floor_while_the_floor_wins_most_rounds_is_the_measurement() -> None:
    point = _paired(1_000, [0.0090, 0.0100, 0.0110, 0.0120, 0.0099], [0.0085, 0.0095, 0.0105, 0.0125, 0.0101])
    assert point.row.efficiency == pytest.approx(1.01)  # the fixed median (10.0 ms) beats the floor's (10.1 ms)
    (note,) = lab37.floorNote([point])
    assert note.endswith(
        "less in 2 of 5 rounds: the floor wins most rounds, as a bound must, so its calibration holds. At 1,000 "
        "records the medians cross (101%) although the floor won 3 of 5 rounds: its runs took 8.5-12.5 ms on this "
        "busy machine, so that row is the measurement's doing."
    )
    text = formatBench(BenchReport("37.2", "t", (point.row,), (note,)))
    assert "(!) fixed, 1,000 records: its median beats its bound (101%), within the spread of its repeats" in _flat(
        [text]
    )


def test_a_floor_beaten_in_most_rounds_has_its_calibration_off() -> None:
    point = _paired(1_000, [0.0095, 0.0096, 0.0094, 0.0101, 0.0095], [0.0100, 0.0101, 0.0100, 0.0100, 0.0099])
    (note,) = lab37.floorNote([point])
    assert note.endswith(
        "less in 4 of 5 rounds: the floor is not a bound here; its calibration is off, not the measurement."
    )
    assert lab37.floorNote([replace(point, afterSamples=(), floorSamples=())]) == ()
