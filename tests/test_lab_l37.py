"""The lab of lecture 37: its judges fed results that hold and that fail, its studies and benchmarks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import l37
import lab.lecture37 as lab37
from lab.bench import BenchOptions, formatBench
from lab.claims import Claim, ClaimKind, Verdict
from shared import silent


def _verdict(claims: Sequence[Claim], fragment: str) -> Claim:
    """The one claim whose statement contains ``fragment``."""
    (claim,) = [c for c in claims if fragment in c.statement]
    return claim


# ============================================================================
# Exercise 2
# ============================================================================


def _stage(name: str, meanMs: float, selfMs: float, records: int = 100) -> l37.StageMetrics:
    return l37.StageMetrics(name, records, records, meanMs, meanMs, meanMs * records, selfMs, meanMs * records, True)


def _pipeline(label: str, *stages: tuple[str, float, float]) -> l37.PipelineRun:
    return l37.PipelineRun(label, tuple(_stage(*stage) for stage in stages), 100, 50.0)


def _judged2(before: l37.PipelineRun, after: l37.PipelineRun) -> l37.Exercise2Result:
    return l37.Exercise2Result(l37.Exercise2Config(), 100, before, after, True, 10.0, 8.0)


PULL_ORDER = (("ThresholdFilter", 0.01, 1.0), ("WindowNormalizer", 0.5, 45.0), ("MovingAvgTransform", 0.52, 2.0))


def test_exercise2_latency_rule_fails_when_latency_piles_up_downstream() -> None:
    after = _pipeline(
        "after", ("ThresholdFilter", 0.01, 1.0), ("WindowNormalizer", 0.02, 1.2), ("MovingAvgTransform", 0.03, 1.1)
    )
    result = _judged2(_pipeline("before", *PULL_ORDER), after)
    assert _verdict(lab37.judge2(result), "downstream stage is slow").verdict is Verdict.FAILS
    assert _verdict(lab37.judge2(result), "finds the slow stage").verdict is Verdict.HOLDS
    assert result.afterFix == "disappeared"
    assert _verdict(lab37.judge2(result), "shifts or disappears").verdict is Verdict.HOLDS


def test_exercise2_latency_rule_holds_when_the_slow_stage_follows_the_highest_latency() -> None:
    before = _pipeline(
        "before", ("ThresholdFilter", 0.9, 1.0), ("WindowNormalizer", 0.5, 45.0), ("MovingAvgTransform", 0.52, 2.0)
    )
    still = _pipeline(
        "after", ("ThresholdFilter", 0.01, 1.0), ("WindowNormalizer", 0.3, 30.0), ("MovingAvgTransform", 0.3, 2.0)
    )
    shifted = _pipeline(
        "after", ("ThresholdFilter", 0.01, 1.0), ("WindowNormalizer", 0.02, 1.0), ("MovingAvgTransform", 0.3, 9.0)
    )
    assert _verdict(lab37.judge2(_judged2(before, still)), "downstream stage is slow").verdict is Verdict.HOLDS
    assert _judged2(before, still).afterFix == "unchanged"
    assert _verdict(lab37.judge2(_judged2(before, still)), "shifts or disappears").verdict is Verdict.FAILS
    assert _judged2(before, shifted).afterFix == "shifted"


def test_exercise2_lost_records_fail_the_structural_claim() -> None:
    before = _pipeline("before", *PULL_ORDER)
    lossy = replace(before, consumed=99)
    claim = _verdict(lab37.judge2(_judged2(lossy, before)), "counts add up")
    assert (claim.verdict, claim.kind) == (Verdict.FAILS, ClaimKind.STRUCTURAL)


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
    """An exercise-3 result built from figures, judged: the claim logic without timing anything."""
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
    assert result.materializedSlow
    slowest = _verdict(lab37.judge3(result), "reads are the slowest")
    assert slowest.verdict is Verdict.FAILS
    assert slowest.reason.endswith("only a materialised __dict__ is slow")
    assert _verdict(lab37.judge3(result), "Slots and NamedTuple").verdict is Verdict.FAILS
    text = l37.formatExercise3(result)
    assert "a separate values array the object points to (2 blocks per instance)" in text
    assert "is slow too (26.4 ns)" in text
    assert "EventSlots 80 B < EventNamedTuple 96 B < EventDict 120 B = EventDataclass 120 B" in text


def test_exercise3_inline_values_keep_reads_fast_after_dict_is_touched() -> None:
    result = _exercise3(READS_311, materializedNs=9.8, blocks=1.0)
    assert not result.materializedSlow
    slowest = _verdict(lab37.judge3(result), "reads are the slowest")
    assert (
        slowest.reason
        == "on CPython 3.x even a materialised __dict__ reads fast (9.8 ns): the values stay in the object"
    )
    text = l37.formatExercise3(result)
    assert "stored inline in the object's own memory block (one block per instance)" in text
    assert "costs nothing at read time here (9.8 ns)" in text


def test_exercise3_the_lecture_ranking_holds_when_measured_so() -> None:
    lecture = {"EventDict": 30.0, "EventSlots": 6.0, "EventNamedTuple": 7.0, "EventDataclass": 20.0}
    result = _exercise3(lecture, materializedNs=40.0, blocks=2.0)
    assert _verdict(lab37.judge3(result), "Slots and NamedTuple").verdict is Verdict.HOLDS
    assert _verdict(lab37.judge3(result), "reads are the slowest").verdict is Verdict.HOLDS
    assert all(c.verdict is Verdict.HOLDS for c in lab37.judge3(result) if c.kind is ClaimKind.STRUCTURAL)


# ============================================================================
# Benchmarks
# ============================================================================


def test_the_registry_lists_both_benchmarks() -> None:
    assert [b.key for b in lab37.LAB.benchmarks] == ["37.1-sweep", "37.2"]


def test_sweep_rows_per_size_with_the_floor_as_ideal() -> None:
    report = lab37.sweepExercise1((200, 400), BenchOptions(repeats=1), steadyRecords=2_000)
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


def test_pipeline_rows_per_size_with_the_floor_as_ideal() -> None:
    report = lab37.benchPipeline2((500, 1_000), BenchOptions(repeats=2), steadyRecords=1_000)
    assert report.key == "37.2"
    assert [row.label for row in report.rows] == ["fixed, 500 records", "fixed, 1,000 records"]
    for row in report.rows:
        assert 0 < row.idealSeconds < row.baselineSeconds
        assert 0 < row.medianSeconds < row.baselineSeconds
    assert "O(N²) per run" in formatBench(report)


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
    l37.OperationCost("window = window[1:] (+ append)", 150.0),
    l37.OperationCost("sum(window) / len(window)", 250.0),
    l37.OperationCost("sum((x - mean)**2 for x in window)", 3_400.0),
    l37.OperationCost(l37.WHOLE_LOOP, 4_300.0),
)


def _sweepPoint(records: int, fastOverFloor: float) -> lab37.SweepPoint:
    perRecord = records * 1e-9
    return lab37.SweepPoint(
        records, 4_300 * perRecord, 100 * fastOverFloor * perRecord, 130 * perRecord, 100 * perRecord, 3
    )


def test_sweep_notes_say_the_target_is_out_of_reach_when_the_gap_is_per_record() -> None:
    notes = "\n".join(lab37.sweepNotes([_sweepPoint(1_000, 3.0), _sweepPoint(10_000, 3.2)], BREAKDOWN))
    assert "is reached at no size tried (1,000-10,000)" in notes
    assert "linear in N (slope 4,300 ns/record, R² 1.000" in notes
    assert "the generator-fed variance sum 3,400 ns of 4,300 (79%)" in notes
    assert "between 13.4x and 14.3x" in notes


def test_sweep_notes_name_the_size_from_which_the_target_is_reached() -> None:
    notes = "\n".join(lab37.sweepNotes([_sweepPoint(1_000, 1.5), _sweepPoint(10_000, 1.1)], BREAKDOWN))
    assert "85% of the floor is reached from 10,000 records." in notes


def test_sweep_notes_explain_a_floor_that_rises_with_size() -> None:
    small = replace(_sweepPoint(1_000, 3.0), inputMb=0.2)
    large = replace(_sweepPoint(100_000, 2.2), floorSeconds=100_000 * 150e-9, inputMb=24.0)
    notes = "\n".join(lab37.sweepNotes([small, large], BREAKDOWN))
    assert "The floor per record rises from 100 to 150 ns while the input grows from 0.2 to 24 MB" in notes
    assert "rises from" not in "\n".join(lab37.sweepNotes([small, replace(small, records=2_000)], BREAKDOWN))


def _pipelinePoint(records: int, afterOverFloor: float) -> lab37.PipelinePoint:
    floor = records * 2e-6
    before = floor + records * records * 1e-8
    return lab37.PipelinePoint(records, records, before, floor * afterOverFloor, floor, before * 900, 1.0, 3)


def test_pipeline_notes_read_quadratic_before_and_linear_after() -> None:
    notes = "\n".join(lab37.pipelineNotes([_pipelinePoint(1_000, 1.05), _pipelinePoint(4_000, 1.05)]))
    assert "runs at 95%-95% of the floor at every size" in notes
    assert "(4x the records, " in notes
    assert "R² 1.000" in notes
    below = "\n".join(lab37.pipelineNotes([_pipelinePoint(1_000, 1.3), _pipelinePoint(4_000, 1.1)]))
    assert "reaches 85% of the floor from 4,000 records (77%-91%)" in below
    never = "\n".join(lab37.pipelineNotes([_pipelinePoint(1_000, 1.3), _pipelinePoint(4_000, 1.3)]))
    assert "reaches 85% of the floor at no size tried" in never
