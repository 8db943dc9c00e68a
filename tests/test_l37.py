"""Lecture 37: detector equivalence, stage metrics and attribution, memory figures, the leak."""

from __future__ import annotations

import math
import random
import tracemalloc
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

import l37
import lab.lecture37 as lab37
from lab.claims import Claim, ClaimKind, Verdict
from shared import ConfigError, LinearFit, silent


def _verdict(claims: Sequence[Claim], fragment: str) -> Claim:
    """The one claim whose statement contains ``fragment``."""
    (claim,) = [c for c in claims if fragment in c.statement]
    return claim


# ============================================================================
# Exercise 1
# ============================================================================


def _records(values: Iterable[float]) -> list[l37.Reading]:
    return [{"id": i, "value": value} for i, value in enumerate(values)]


def _assertSameOutput(reference: list[l37.FlaggedReading], candidate: list[l37.FlaggedReading]) -> None:
    agreement = l37.compareOutputs(reference, candidate)
    assert agreement.realMismatches == 0
    assert agreement.maxRelativeZScoreDiff < 1e-9


def test_detectAnomalies_matches_hand_computation() -> None:
    result = l37.detectAnomalies(_records([1.0, 3.0]))
    assert result == [
        {"id": 0, "value": 1.0, "anomaly": False, "zScore": 0.0},
        {"id": 1, "value": 3.0, "anomaly": False, "zScore": 1.0},
    ]


def test_detectAnomalies_flags_a_spike_after_a_quiet_window() -> None:
    result = l37.detectAnomalies(_records([10.0, 10.5] * 30 + [50.0]))
    assert result[-1]["anomaly"]
    assert not any(r["anomaly"] for r in result[:-1])


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_fast_equals_slow_on_the_lecture_data(seed: int) -> None:
    records = l37.makeAnomalyRecords(1_200, 12, seed)
    agreement = l37.compareOutputs(l37.detectAnomalies(records), l37.detectAnomaliesFast(records))
    assert agreement.flagMismatches == 0
    assert agreement.zScoresTo6Decimals


@pytest.mark.parametrize("kind", l37.HARD_KINDS)
def test_fast_equals_slow_on_hard_data(kind: l37.HardKind) -> None:
    records = l37.makeHardRecords(kind, 1_500, 7)
    agreement = l37.compareOutputs(l37.detectAnomalies(records), l37.detectAnomaliesFast(records))
    assert agreement.flagMismatches == 0
    assert agreement.maxRelativeZScoreDiff < 1e-9


def _flipLast(output: list[l37.FlaggedReading]) -> list[l37.FlaggedReading]:
    last: l37.FlaggedReading = {**output[-1], "anomaly": not output[-1]["anomaly"]}
    return [*output[:-1], last]


def test_a_flipped_flag_far_from_the_threshold_is_a_real_mismatch() -> None:
    reference = l37.detectAnomalies(_records([1e12 + float(i % 3) for i in range(60)]))
    agreement = l37.compareOutputs(reference, _flipLast(reference))
    assert (agreement.flagMismatches, agreement.roundingTies, agreement.realMismatches) == (1, 0, 1)


def test_a_flag_decided_exactly_at_the_threshold_is_a_rounding_tie() -> None:
    reference = l37.detectAnomalies(_records([0.0, 2.0]), threshold=1.0)  # zScore 1 == 1.0 * std 1
    agreement = l37.compareOutputs(reference, _flipLast(reference), threshold=1.0)
    assert (agreement.flagMismatches, agreement.roundingTies, agreement.realMismatches) == (1, 1, 0)


@pytest.mark.parametrize("resyncEvery", [1, 7, 10**9])
def test_fast_is_exact_whatever_the_resync_period(resyncEvery: int) -> None:
    records = l37.makeHardRecords("level shifts", 1_500, 3)
    _assertSameOutput(l37.detectAnomalies(records), l37.detectAnomaliesFast(records, resyncEvery=resyncEvery))


@pytest.mark.parametrize("count", [0, 1, 2, 49, 50, 51])
def test_fast_handles_short_inputs(count: int) -> None:
    records = l37.makeAnomalyRecords(count, 0, 5) if count else []
    _assertSameOutput(l37.detectAnomalies(records), l37.detectAnomaliesFast(records))


def test_constant_values_have_no_anomalies() -> None:
    records = _records([3.3] * 200)
    for output in (l37.detectAnomalies(records), l37.detectAnomaliesFast(records)):
        assert not any(r["anomaly"] for r in output)
        assert max(r["zScore"] for r in output) < 1e-12


@given(
    seed=st.integers(0, 2**32),
    offset=st.sampled_from([0.0, 1e3, 1e9, -1e12]),
    scale=st.sampled_from([1e-6, 1.0, 1e3]),
    shift=st.sampled_from([0.0, 1e6]),
    size=st.integers(0, 300),
)
def test_fast_equals_slow_for_any_offset_scale_and_level_shift(
    seed: int, offset: float, scale: float, shift: float, size: int
) -> None:
    rng = random.Random(seed)
    values = [offset + (shift if (i // 90) % 2 else 0.0) + scale * rng.gauss(0, 1) for i in range(size)]
    records = _records(values)
    _assertSameOutput(l37.detectAnomalies(records), l37.detectAnomaliesFast(records))


def test_floor_builds_the_same_keys_as_the_detectors() -> None:
    records = l37.makeAnomalyRecords(60, 1, 2)
    floor = l37.buildOutputFloor(records)
    withWindow = l37.buildOutputWithWindow(records)
    fast = l37.detectAnomaliesFast(records)
    assert [list(r) for r in floor] == [list(r) for r in fast] == [list(r) for r in withWindow]
    assert list(fast[0]) == ["id", "value", "anomaly", "zScore"]


SMALL1 = l37.Exercise1Config(records=1_500, anomalies=15, repetitions=2, hardRecords=600)


@pytest.fixture(scope="module")
def exercise1Result() -> l37.Exercise1Result:
    return l37.runExercise1(SMALL1, seed=11)


def test_exercise1_result_and_claims(exercise1Result: l37.Exercise1Result) -> None:
    result = exercise1Result
    assert result.agreement.flagMismatches == 0
    assert result.hardFlagMismatches == 0
    assert result.runningSumsAgreement.flagMismatches == 0
    assert sum(row.runningSums.flagMismatches for row in result.hardData) > 0
    assert result.injectedFlagged <= SMALL1.anomalies <= result.flaggedSlow + SMALL1.anomalies
    assert len(result.slowProfile) <= SMALL1.profileTop
    assert any("genexpr" in row.function for row in result.slowProfile)
    assert not any("genexpr" in row.function for row in result.fastProfile)
    assert result.slow.bestMs > result.fast.bestMs > 0
    assert [c.operation for c in result.breakdown][-1] == l37.WHOLE_LOOP
    structural = [c for c in lab37.judge1(result) if c.kind is ClaimKind.STRUCTURAL]
    assert len(structural) == 2
    assert all(c.verdict is Verdict.HOLDS for c in structural)
    text = l37.formatExercise1(result)
    assert "fast / floor" in text
    assert "cProfile: detectAnomalies," in text


def test_exercise1_same_seed_same_figures(exercise1Result: l37.Exercise1Result) -> None:
    first = exercise1Result
    second = l37.runExercise1(SMALL1, seed=11)
    assert first.flaggedSlow == second.flaggedSlow
    assert first.injectedFlagged == second.injectedFlagged
    assert [row.anomalies for row in first.hardData] == [row.anomalies for row in second.hardData]
    assert first.runningSumsAgreement == second.runningSumsAgreement


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("records", 0, r"^records must be >= 1 and <= 10000000, got 0$"),
        ("repetitions", 0, r"^repetitions must be >= 1 and <= 1000, got 0$"),
        ("anomalies", 30_000, r"^anomalies must be >= 0 and <= 20000, got 30000$"),
    ],
)
def test_exercise1_config_rejects_bad_values(field: str, value: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        l37.Exercise1Config(**{field: value})


def _timed(result: l37.Exercise1Result, slowMs: float, fastMs: float) -> l37.Exercise1Result:
    return replace(
        result,
        slow=l37.TimingSummary("detectAnomalies", slowMs, slowMs),
        fast=l37.TimingSummary("detectAnomaliesFast", fastMs, fastMs),
        floor=l37.TimingSummary("floor", 2.0, 2.0),
    )


def test_exercise1_speedup_claim_holds_from_4x(exercise1Result: l37.Exercise1Result) -> None:
    held = _verdict(lab37.judge1(_timed(exercise1Result, 80.0, 8.0)), "4-20x")
    failed = _verdict(lab37.judge1(_timed(exercise1Result, 80.0, 40.0)), "4-20x")
    assert (held.verdict, held.measured.split(" ")[0], held.reason) == (Verdict.HOLDS, "10.0x", "")
    assert (failed.verdict, failed.measured.split(" ")[0]) == (Verdict.FAILS, "2.0x")
    assert failed.reason == "the output dicts alone cost 2.0 ms, capping any version at 40.0x"
    assert failed.kind is ClaimKind.TIMING


def test_exercise1_dominance_claim_reads_the_breakdown(exercise1Result: l37.Exercise1Result) -> None:
    def judged(sums: float, slicing: float) -> Claim:
        breakdown = (
            l37.OperationCost("window = window[1:] (+ append)", slicing),
            l37.OperationCost("sum(window) / len(window)", sums / 2),
            l37.OperationCost("sum((x - mean)**2 for x in window)", sums / 2),
            l37.OperationCost(l37.WHOLE_LOOP, 1_000.0),
        )
        return _verdict(lab37.judge1(replace(exercise1Result, breakdown=breakdown)), "dominate")

    assert judged(800.0, 100.0).verdict is Verdict.HOLDS
    weak = judged(200.0, 100.0)
    assert weak.verdict is Verdict.FAILS
    assert "(30%)" in weak.measured


def test_exercise1_a_real_flag_mismatch_is_a_structural_failure(exercise1Result: l37.Exercise1Result) -> None:
    broken = replace(exercise1Result.agreement, flagMismatches=3, roundingTies=1)
    claim = _verdict(lab37.judge1(replace(exercise1Result, agreement=broken)), "same anomaly flags")
    assert (claim.verdict, claim.kind) == (Verdict.FAILS, ClaimKind.STRUCTURAL)
    tiesOnly = replace(exercise1Result.agreement, flagMismatches=2, roundingTies=2)
    assert (
        _verdict(lab37.judge1(replace(exercise1Result, agreement=tiesOnly)), "same anomaly flags").verdict
        is Verdict.HOLDS
    )


def test_exercise1_names_the_profiler_of_this_interpreter(exercise1Result: l37.Exercise1Result) -> None:
    text = l37.formatExercise1(exercise1Result)
    assert exercise1Result.profiledBytecodeRatio > 0
    expected, other = ("sys.monitoring", "sys.setprofile")
    if not l37.PROFILER_USES_MONITORING:
        expected, other = other, expected
    assert expected in text
    assert other not in text
    assert exercise1Result.python in text


def test_fast_rejects_a_zero_resync_period() -> None:
    with pytest.raises(ConfigError, match=r"^resyncEvery must be >= 1, got 0$"):
        l37.detectAnomaliesFast([], resyncEvery=0)


# ============================================================================
# Exercise 2
# ============================================================================


class EvenFilter:
    """A test stage: keeps even numbers."""

    @l37.measuredStage("EvenFilter")
    def process(self, inputStream: Iterable[int]) -> Iterator[int]:
        for item in inputStream:
            if item % 2 == 0:
                yield item


class Doubler:
    """A test stage: doubles each number."""

    @l37.measuredStage("Doubler")
    def process(self, inputStream: Iterable[int]) -> Iterator[int]:
        for item in inputStream:
            yield item * 2


def test_measuredStage_counts_and_reports_one_line() -> None:
    lines: list[str] = []
    with l37.StageMetricsCollector(lines.append) as collector:
        out = list(Doubler().process(EvenFilter().process(range(100))))
    assert out == [2 * i for i in range(0, 100, 2)]
    evens, doubler = collector.stages
    assert (evens.name, evens.recordsIn, evens.records, evens.exhausted) == ("EvenFilter", 100, 50, True)
    assert (doubler.name, doubler.recordsIn, doubler.records) == ("Doubler", 50, 50)
    assert len(lines) == 2
    assert all("p95" in line and "rec/s" in line for line in lines)
    for stage in collector.stages:
        assert 0 < stage.selfMs <= stage.busyMs <= stage.wallMs
        assert stage.meanLatencyMs > 0
        assert stage.throughputPerSec > 0
    assert doubler.meanLatencyMs > evens.meanLatencyMs * 0.5


def test_measuredStage_reports_an_early_close() -> None:
    with l37.StageMetricsCollector(silent) as collector:
        stream = Doubler().process(range(100))
        for index, _ in enumerate(stream):
            if index == 2:
                break
        assert not collector.stages
        assert isinstance(stream, Generator)
        stream.close()
    (stage,) = collector.stages
    assert stage.records == 3
    assert not stage.exhausted
    assert "closed early after 3" in stage.reportLine()


def test_measuredStage_is_lazy_and_prints_without_a_collector(capsys: pytest.CaptureFixture[str]) -> None:
    pulled: list[int] = []

    def source() -> Iterator[int]:
        for i in range(5):
            pulled.append(i)
            yield i

    stream = Doubler().process(source())
    assert pulled == []
    assert list(stream) == [0, 2, 4, 6, 8]
    assert capsys.readouterr().out.startswith("[measuredStage] Doubler")


def test_stagesUnmeasured_passes_records_through_untimed() -> None:
    with l37.StageMetricsCollector(silent) as collector, l37.stagesUnmeasured():
        assert list(Doubler().process(range(3))) == [0, 2, 4]
    assert collector.stages == ()


def test_innermost_collector_receives_the_metrics() -> None:
    with l37.StageMetricsCollector(silent) as outer:
        with l37.StageMetricsCollector(silent) as inner:
            list(Doubler().process(range(3)))
        list(Doubler().process(range(4)))
    assert [s.records for s in inner.stages] == [3]
    assert [s.records for s in outer.stages] == [4]


@given(items=st.lists(st.integers(-1000, 1000), max_size=200))
def test_measuredStage_counts_add_up_for_any_input(items: list[int]) -> None:
    with l37.StageMetricsCollector(silent) as collector:
        out = list(Doubler().process(EvenFilter().process(items)))
    evens, doubler = collector.stages
    assert evens.recordsIn == len(items)
    assert evens.records == doubler.recordsIn == doubler.records == len(out)
    assert out == [2 * i for i in items if i % 2 == 0]


def test_exercise2_names_the_real_bottleneck_and_the_fix_removes_it() -> None:
    result = l37.runExercise2(l37.Exercise2Config.quick(), seed=3)
    before, after = result.before, result.after
    assert [s.name for s in before.stages] == ["ThresholdFilter", "WindowNormalizer", "MovingAvgTransform"]
    assert before.countsAddUp
    assert after.countsAddUp
    assert result.outputsIdentical
    assert before.highestLatency.name == "MovingAvgTransform"
    assert before.bottleneck.name == "WindowNormalizer"
    assert before.stage("WindowNormalizer").selfMs > 3 * after.stage("WindowNormalizer").selfMs
    assert all(c.verdict is Verdict.HOLDS for c in lab37.judge2(result) if c.kind is ClaimKind.STRUCTURAL)
    rule = next(c for c in lab37.judge2(result) if "downstream stage is slow" in c.statement)
    assert rule.verdict is Verdict.FAILS
    assert "WindowNormalizer" in l37.formatExercise2(result)


def test_window_normalizers_agree() -> None:
    records = l37.makeStageRecords(300, 8)
    with l37.StageMetricsCollector(silent):
        slow = list(l37.WindowNormalizer().process(records))
        fast = list(l37.WindowNormalizerFixed().process(records))
    assert slow == fast
    assert all(0.0 <= r["norm"] <= 1.0 for r in fast)


# ============================================================================
# Exercise 3
# ============================================================================


def test_slots_reject_a_typo_and_a_regular_class_accepts_it() -> None:
    outcome = l37.findAttributeTypo(silent)
    assert outcome.dictCreatedAttribute
    assert outcome.dictValueUnchanged
    assert outcome.slotsError.startswith("AttributeError")
    event = l37.EventSlots("S1", 0.0, 1.0, "C", 0, False)
    with pytest.raises(AttributeError):
        event.vlaue = 99  # type: ignore[attr-defined]  # the typo is the test


def test_exercise3_memory_and_reads() -> None:
    wasTracing = tracemalloc.is_tracing()
    result = l37.runExercise3(l37.Exercise3Config(instances=2_000, reads=20_000, readRepeats=1), seed=1)
    assert tracemalloc.is_tracing() == wasTracing
    regular = result.memoryOf("EventDict")
    slots = result.memoryOf("EventSlots")
    named = result.memoryOf("EventNamedTuple")
    assert slots.bytesPerInstance < regular.bytesPerInstance
    assert slots.bytesPerInstance >= slots.getsizeofInstance * 0.9
    assert regular.bytesPerInstance > regular.getsizeofInstance
    assert slots.getsizeofDict is None
    assert named.getsizeofDict is None
    assert slots.dictError == named.dictError == "AttributeError"
    assert regular.getsizeofDict is not None
    assert regular.dictTouchBytesPerInstance is not None
    assert regular.dictTouchBytesPerInstance > 0
    assert math.isclose(regular.totalKb * 1024, regular.bytesPerInstance * 2_000)
    assert [row.className for row in result.reads] == [cls.__name__ for cls in l37.EVENT_CLASSES]
    assert all(row.readsPerSecond > 0 for row in result.reads)
    assert all(c.verdict is Verdict.HOLDS for c in lab37.judge3(result) if c.kind is ClaimKind.STRUCTURAL)
    assert result.python in l37.formatExercise3(result)


# ============================================================================
# Exercise 4
# ============================================================================


def test_measurement_context_refuses_figures_before_exit() -> None:
    context = l37.PipelineMeasurementContext()
    with pytest.raises(RuntimeError, match=r"^measurements are available after the with block$"):
        _ = context.elapsedMs


def test_measurement_context_measures_and_stops_tracing() -> None:
    assert not tracemalloc.is_tracing()
    with l37.PipelineMeasurementContext(hotspots=3) as context:
        kept = [float(i) for i in range(20_000)]
    assert not tracemalloc.is_tracing()
    assert context.elapsedMs > 0
    assert len(context.hotspots) <= 3
    assert context.memoryAllocatedKb > 20_000 * 24 / 1024
    assert context.peakMemoryKb >= context.memoryAllocatedKb * 0.9
    assert "function" in context.topHotspotsStr
    assert len(kept) == 20_000


def test_measurement_context_nests_in_a_tracemalloc_session() -> None:
    tracemalloc.start()
    try:
        with l37.PipelineMeasurementContext():
            pass
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()


SMALL4 = l37.Exercise4Config(records=600, runs=3)


@pytest.fixture(scope="module")
def exercise4Result() -> l37.Exercise4Result:
    return l37.runExercise4(SMALL4, seed=5)


def test_exercise4_leak_grows_and_the_fix_does_not(exercise4Result: l37.Exercise4Result) -> None:
    config = SMALL4
    result = exercise4Result
    assert l37.AlertDetector.allAlerts == []
    passed = result.passedFilter
    assert passed == result.main.consumed
    assert [run.kept for run in result.leaking] == [passed, 2 * passed, 3 * passed]
    assert all(run.kept == 0 for run in result.fixed)
    assert result.leakFit.slope > 0
    assert result.leakFit.rSquared > 0.99
    assert abs(result.fixedFit.slope) < 0.05 * result.leakFit.slope
    assert result.leaking[0].allocations[0].site.endswith("(AlertDetector.process)")
    assert result.leaking[1].allocations == ()
    assert [s.name for s in result.main.stages] == ["ThresholdFilter", "Normalizer", "FeatureComputer", "AlertDetector"]
    assert result.main.stages[0].recordsIn == config.records
    assert len(result.stability) == config.runs
    assert all(c.verdict is Verdict.HOLDS for c in lab37.judge4(result) if c.kind is ClaimKind.STRUCTURAL)
    assert "R² =" in l37.formatExercise4(result)


def test_exercise4_measures_cpu_and_the_plain_run(exercise4Result: l37.Exercise4Result) -> None:
    assert exercise4Result.plainMs > 0
    assert all(run.cpuMs > 0 for run in exercise4Result.stability)
    assert "Without the context" in l37.formatExercise4(exercise4Result)


def test_exercise4_stability_reason_names_a_starved_run(exercise4Result: l37.Exercise4Result) -> None:
    def judged(cv: float, cpuShare: float) -> Claim:
        rows = tuple(replace(row, cv=cv) for row in exercise4Result.stabilityRows)
        runs = tuple(
            replace(run, elapsedMs=100.0, cpuMs=100.0 * (cpuShare if i == 1 else 1.0))
            for i, run in enumerate(exercise4Result.stability)
        )
        result = replace(exercise4Result, stabilityRows=rows, stability=runs)
        return _verdict(lab37.judge4(result), "consistent across runs")

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


def test_exercise4_leak_claims_read_the_fits(exercise4Result: l37.Exercise4Result) -> None:
    flat = LinearFit(slope=2.0, intercept=0.0, rSquared=0.1)
    noisy = replace(exercise4Result.leakFit, rSquared=0.5)
    result = replace(exercise4Result, leakFit=noisy, fixedFit=replace(noisy, slope=noisy.slope))
    assert _verdict(lab37.judge4(result), "grows linearly").verdict is Verdict.FAILS
    assert _verdict(lab37.judge4(result), "stabilises").verdict is Verdict.FAILS
    fixed = replace(exercise4Result, fixedFit=flat)
    assert _verdict(lab37.judge4(fixed), "stabilises").verdict is Verdict.HOLDS


def test_alert_detector_keeps_nothing_without_the_leak() -> None:
    records = l37.makeDashboardRecords(l37.Exercise4Config(records=200), 1)
    with l37.StageMetricsCollector(silent):
        features = l37.FeatureComputer().process(l37.Normalizer().process(records))
        alerts = list(l37.AlertDetector().process(features))
    assert len(alerts) == 200
    assert l37.AlertDetector.allAlerts == []


# ============================================================================
# Helpers and CLI
# ============================================================================


def test_cli_lists_and_rejects_an_unknown_exercise(capsys: pytest.CaptureFixture[str]) -> None:
    assert l37.main(["--list"]) == 0
    assert "measurement dashboard" in capsys.readouterr().out
    assert l37.main(["--ex", "9"]) == 2
    assert "invalid choice" in capsys.readouterr().err
