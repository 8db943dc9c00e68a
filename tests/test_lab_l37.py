"""The lab of lecture 37: its judges fed results that hold and that fail, its studies and benchmarks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import pytest

import l37
import lab.lecture37 as lab37
from lab.bench import BenchOptions, formatBench
from lab.claims import Claim, ClaimKind, Verdict, formatClaims
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
        *lab37.judge3(result3),
        *lab37.judge4(result4),
    ]
    assert len(claims) == 2 + 2 + 5 + 5 + 5
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


def _timed(result: l37.Exercise1Result, slowMs: float, fastMs: float) -> l37.Exercise1Result:
    return replace(
        result,
        slow=l37.TimingSummary("detectAnomalies", slowMs, slowMs),
        fast=l37.TimingSummary("detectAnomaliesFast", fastMs, fastMs),
    )


def test_exercise1_speedup_claim_holds_from_4x(result1: l37.Exercise1Result) -> None:
    held = _verdict(lab37.judge1(_timed(result1, 80.0, 8.0)), "4-20x")
    failed = _verdict(lab37.judge1(_timed(result1, 80.0, 40.0)), "4-20x")
    assert (held.verdict, held.measured, held.reason) == (Verdict.HOLDS, "10.0x (timeit best of 1)", "")
    assert (failed.verdict, failed.measured.split(" ")[0]) == (Verdict.FAILS, "2.0x")
    assert failed.reason == (
        "the fast version still costs 66667 ns per record: its output dict and the running statistics"
    )
    assert failed.kind is ClaimKind.TIMING


def test_exercise1_identity_claim_is_structural_and_strict(result1: l37.Exercise1Result) -> None:
    held = _verdict(lab37.judge1(result1), "same anomaly flags")
    assert (held.verdict, held.kind) == (Verdict.HOLDS, ClaimKind.STRUCTURAL)
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
        assert row.runningSums.realMismatches > 0  # the spec's running sums cancel here


def test_hard_data_claims_read_the_rows(result1: l37.Exercise1Result) -> None:
    exact = lab37.Agreement(100, 0, 0, 0.0, 0.0)
    flipped = lab37.Agreement(100, 7, 0, 0.1, 0.1)
    clean = [lab37.HardDataRow("offset 1e9", 3, exact, exact), lab37.HardDataRow("plateaus", 2, exact, exact)]
    cancelled = [replace(clean[0], runningSums=flipped), clean[1]]
    drifted = [replace(clean[0], robust=flipped), clean[1]]
    robust, sums = lab37.judgeHardData(clean, result1)
    assert (robust.verdict, robust.kind, sums.verdict) == (Verdict.HOLDS, ClaimKind.STRUCTURAL, Verdict.HOLDS)
    robust, sums = lab37.judgeHardData(cancelled, result1)
    assert (robust.verdict, sums.verdict) == (Verdict.HOLDS, Verdict.FAILS)
    assert sums.measured == "0 flags differ on gauss(50, 10); 7 on hard data (7 on 'offset 1e9')"
    robust, _ = lab37.judgeHardData(drifted, result1)
    assert robust.verdict is Verdict.FAILS
    ties = [replace(clean[0], robust=replace(flipped, roundingTies=7)), clean[1]]
    robust, _ = lab37.judgeHardData(ties, result1)
    assert robust.verdict is Verdict.HOLDS
    assert robust.measured.endswith(f"all rounding ties (< {lab37.TIE_ULPS} ulps)")


def test_dominance_claim_reads_the_breakdown() -> None:
    def judged(sums: float, slicing: float) -> Claim:
        breakdown = (
            lab37.OperationCost("window = window[1:] (+ append)", slicing),
            lab37.OperationCost("sum(window) / len(window)", sums / 2),
            lab37.OperationCost("sum((x - mean)**2 for x in window)", sums / 2),
            lab37.OperationCost(lab37.WHOLE_LOOP, 1_000.0),
        )
        return lab37.judgeBreakdown(breakdown)

    assert judged(800.0, 100.0).verdict is Verdict.HOLDS
    weak = judged(200.0, 100.0)
    assert weak.verdict is Verdict.FAILS
    assert "(30%)" in weak.measured


def test_breakdown_times_each_operation_and_the_whole_loop() -> None:
    breakdown = lab37.measureBreakdown(l37.makeAnomalyRecords(300, 3, 1), repetitions=1)
    assert [c.operation for c in breakdown][-1] == lab37.WHOLE_LOOP
    assert len(breakdown) == 4
    assert all(c.nsPerRecord >= 0 for c in breakdown)
    assert "share of the loop" in lab37.formatBreakdown(breakdown)


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


def _stage(name: str, meanMs: float, selfMs: float, records: int = 100) -> l37.StageMetrics:
    return l37.StageMetrics(name, records, records, meanMs, meanMs, selfMs, meanMs * records, True)


def _pipeline(label: str, *stages: tuple[str, float, float]) -> l37.PipelineRun:
    return l37.PipelineRun(label, tuple(_stage(*stage) for stage in stages), 100, 50.0)


def _result2(before: l37.PipelineRun, after: l37.PipelineRun) -> l37.Exercise2Result:
    return l37.Exercise2Result(l37.Exercise2Config(), 100, before, after, True)


YIELD_TO_YIELD = (("ThresholdFilter", 0.5, 1.0), ("WindowNormalizer", 0.5, 45.0), ("MovingAvgTransform", 0.501, 2.0))
AFTER = (("ThresholdFilter", 0.01, 1.0), ("WindowNormalizer", 0.02, 1.2), ("MovingAvgTransform", 0.03, 1.1))


def test_latency_rule_is_not_decided_when_no_stage_stands_out() -> None:
    result = _result2(_pipeline("before", *YIELD_TO_YIELD), _pipeline("after", *AFTER))
    rule = _verdict(lab37.judge2(result), "downstream stage is slow")
    assert (rule.verdict, rule.kind) == (Verdict.NOT_MEASURED, ClaimKind.TIMING)
    assert "highest MovingAvgTransform by 0.2%, downstream: none" in rule.measured
    assert rule.reason.startswith("yield to yield, every stage of a pull chain times the whole chain's work")
    assert _verdict(lab37.judge2(result), "finds the slow stage").verdict is Verdict.HOLDS
    assert lab37.afterFix(result) == "disappeared"
    assert _verdict(lab37.judge2(result), "shifts or disappears").verdict is Verdict.HOLDS


def test_latency_rule_holds_when_the_slow_stage_follows_a_stage_that_stands_out() -> None:
    before = _pipeline(
        "before", ("ThresholdFilter", 0.9, 1.0), ("WindowNormalizer", 0.5, 45.0), ("MovingAvgTransform", 0.52, 2.0)
    )
    still = _pipeline(
        "after", ("ThresholdFilter", 0.01, 1.0), ("WindowNormalizer", 0.3, 30.0), ("MovingAvgTransform", 0.3, 2.0)
    )
    shifted = _pipeline(
        "after", ("ThresholdFilter", 0.01, 1.0), ("WindowNormalizer", 0.02, 1.0), ("MovingAvgTransform", 0.3, 9.0)
    )
    assert _verdict(lab37.judge2(_result2(before, still)), "downstream stage is slow").verdict is Verdict.HOLDS
    assert lab37.afterFix(_result2(before, still)) == "unchanged"
    assert _verdict(lab37.judge2(_result2(before, still)), "shifts or disappears").verdict is Verdict.FAILS
    assert lab37.afterFix(_result2(before, shifted)) == "shifted"


def test_latency_rule_fails_when_the_stage_that_stands_out_is_followed_by_a_fast_one() -> None:
    before = _pipeline(
        "before", ("ThresholdFilter", 0.5, 1.0), ("WindowNormalizer", 0.5, 45.0), ("MovingAvgTransform", 0.9, 2.0)
    )
    rule = _verdict(lab37.judge2(_result2(before, _pipeline("after", *AFTER))), "downstream stage is slow")
    assert rule.verdict is Verdict.FAILS
    assert rule.reason == (
        "the stage after MovingAvgTransform is none, not WindowNormalizer, which has the most self time"
    )


def test_exercise2_lost_records_fail_the_structural_claim() -> None:
    before = _pipeline("before", *YIELD_TO_YIELD)
    lossy = replace(before, consumed=99)
    claim = _verdict(lab37.judge2(_result2(lossy, before)), "counts add up")
    assert (claim.verdict, claim.kind) == (Verdict.FAILS, ClaimKind.STRUCTURAL)


def test_exercise2_judged_on_a_real_run(result2: l37.Exercise2Result) -> None:
    claims = lab37.judge2(result2)
    assert _verdict(claims, "finds the slow stage").verdict is Verdict.HOLDS
    assert _verdict(claims, "downstream stage is slow").verdict is Verdict.NOT_MEASURED
    assert all(c.verdict is Verdict.HOLDS for c in claims if c.kind is ClaimKind.STRUCTURAL)


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


def _exercise3(readNs: dict[str, float], materializedNs: float, blocks: float) -> l37.Exercise3Result:
    """An exercise-3 result built from figures: the judging and the report without timing anything."""
    memory = (
        _memoryRow("EventDict", 120.0, blocks, hasDict=True),
        _memoryRow("EventSlots", 80.0, 1.0, hasDict=False),
        _memoryRow("EventNamedTuple", 96.0, 1.0, hasDict=False),
        _memoryRow("EventDataclass", 120.0, blocks, hasDict=True),
    )
    return l37.Exercise3Result(
        config=l37.Exercise3Config.quick(),
        python="CPython 3.x",
        memory=memory,
        reads=tuple(l37.ReadRow(name, 1e9 / ns) for name, ns in readNs.items()),
        readsMaterialized=l37.ReadRow("EventDict, __dict__ touched", 1e9 / materializedNs),
        emptyLoopNs=6.0,
        typo=l37.findAttributeTypo(silent),
    )


READS_311 = {"EventDict": 9.7, "EventSlots": 6.9, "EventNamedTuple": 15.9, "EventDataclass": 9.8}


def test_exercise3_a_materialised_dict_is_slow_with_a_separate_values_array() -> None:
    result = _exercise3(READS_311, materializedNs=26.4, blocks=2.0)
    assert lab37.materializedSlow(result)
    slowest = _verdict(lab37.judge3(result), "reads are the slowest")
    assert slowest.verdict is Verdict.FAILS
    assert slowest.reason.endswith("only a materialised __dict__ is slow")
    assert _verdict(lab37.judge3(result), "Slots and NamedTuple").verdict is Verdict.FAILS
    text = _flat([l37.formatExercise3(result)])
    assert "a separate values array the object points to (2 blocks per instance)" in text
    assert "EventSlots 80 B < EventNamedTuple 96 B < EventDict 120 B = EventDataclass 120 B" in text
    assert "Fastest reads: EventSlots, then EventDict; slowest: EventNamedTuple (15.9 ns)." in text


def test_exercise3_inline_values_keep_reads_fast_after_dict_is_touched() -> None:
    result = _exercise3(READS_311, materializedNs=9.8, blocks=1.0)
    assert not lab37.materializedSlow(result)
    slowest = _verdict(lab37.judge3(result), "reads are the slowest")
    assert (
        slowest.reason
        == "on CPython 3.x even a materialised __dict__ reads fast (9.8 ns): the values stay in the object"
    )
    text = _flat([l37.formatExercise3(result)])
    assert "stored inline in the object's own memory block (one block per instance)" in text


def test_exercise3_the_lecture_ranking_holds_when_measured_so() -> None:
    lecture = {"EventDict": 30.0, "EventSlots": 6.0, "EventNamedTuple": 7.0, "EventDataclass": 20.0}
    result = _exercise3(lecture, materializedNs=40.0, blocks=2.0)
    assert _verdict(lab37.judge3(result), "Slots and NamedTuple").verdict is Verdict.HOLDS
    assert _verdict(lab37.judge3(result), "reads are the slowest").verdict is Verdict.HOLDS
    assert all(c.verdict is Verdict.HOLDS for c in lab37.judge3(result) if c.kind is ClaimKind.STRUCTURAL)


# ============================================================================
# Exercise 4
# ============================================================================


def test_exercise4_stability_reason_names_a_starved_run(result4: l37.Exercise4Result) -> None:
    def judged(cv: float, cpuShare: float) -> Claim:
        rows = tuple(replace(row, cv=cv) for row in result4.stabilityRows)
        runs = tuple(
            replace(run, elapsedMs=100.0, cpuMs=100.0 * (cpuShare if i == 1 else 1.0))
            for i, run in enumerate(result4.stability)
        )
        return lab37.judgeStability(replace(result4, stabilityRows=rows, stability=runs))

    assert judged(0.05, 1.0).verdict is Verdict.HOLDS
    starved = judged(0.3, 0.5)
    assert (starved.verdict, starved.reason) == (
        Verdict.FAILS,
        "other processes took the CPU: run 2 had a core for only 50% of its wall time",
    )
    assert judged(0.3, 0.97).reason == (
        "every run had a core for at least 97% of its wall time, but the same work took 1.03x the CPU time in one run "
        "as in another: it ran slower (a busy host, shared caches)"
    )


def test_exercise4_leak_claims_read_the_fits(result4: l37.Exercise4Result) -> None:
    flat = LinearFit(slope=2.0, intercept=0.0, rSquared=0.1)
    noisy = replace(result4.leakFit, rSquared=0.5)
    result = replace(result4, leakFit=noisy, fixedFit=replace(noisy, slope=noisy.slope))
    assert _verdict(lab37.judge4(result), "grows linearly").verdict is Verdict.FAILS
    assert _verdict(lab37.judge4(result), "stabilises").verdict is Verdict.FAILS
    fixed = replace(result4, fixedFit=flat)
    assert _verdict(lab37.judge4(fixed), "stabilises").verdict is Verdict.HOLDS
    assert all(c.verdict is Verdict.HOLDS for c in lab37.judge4(result4) if c.kind is ClaimKind.STRUCTURAL)


def test_exercise4_a_lost_record_fails_the_structural_claim(result4: l37.Exercise4Result) -> None:
    lossy = replace(result4, main=replace(result4.main, consumed=result4.main.consumed - 1))
    claim = _verdict(lab37.judge4(lossy), "counts add up")
    assert (claim.verdict, claim.kind) == (Verdict.FAILS, ClaimKind.STRUCTURAL)


def test_study4_finds_the_leaking_line_and_the_cost_of_measuring(result4: l37.Exercise4Result) -> None:
    lines: list[str] = []
    (claim,) = lab37.study4(RunOptions(seed=5, quick=True), result4, lines.append)
    assert claim.verdict is Verdict.HOLDS
    assert re.search(r"^top line: l37\.py:\d+ \(AlertDetector\.process\), ", claim.measured)
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
    for row in report.rows:
        assert 0 < row.idealSeconds < row.baselineSeconds
        assert 0 < row.medianSeconds < row.baselineSeconds
    text = formatBench(report)
    assert "Where the slow version's cost comes from" in text
    assert "Speedup of detectAnomaliesFast over detectAnomalies, by size:" in text
    assert max(len(line) for line in text.split("\n")) <= REPORT_WIDTH


def test_pipeline_rows_per_size_with_the_floor_as_ideal() -> None:
    report = lab37.benchPipeline2((500, 1_000), BenchOptions(repeats=2), steadyRecords=1_000)
    assert report.key == "37.2"
    assert [row.label for row in report.rows] == ["fixed, 500 records", "fixed, 1,000 records"]
    for row in report.rows:
        assert 0 < row.idealSeconds < row.baselineSeconds
        assert 0 < row.medianSeconds < row.baselineSeconds
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
