"""Lecture 37: the detectors, @measuredStage and its pipeline, memory figures, the dashboard and the leak.

Each exercise runs once in its quick config through its registry entry (``exerciseN``,
a capturing log); the tests read that result and that report. Oracles come from
the spec's text or an independent computation (``statistics``, hand-worked values).
"""

from __future__ import annotations

import math
import random
import statistics
import time
import tracemalloc
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

import l37
import lab.lecture37 as lab37
from shared import REPORT_WIDTH, ConfigError, Exercise, RunOptions, silent

SEED = 11


@dataclass(frozen=True, slots=True)
class QuickRun:
    """One exercise run in its quick config: its result and every line it printed."""

    result: object
    lines: tuple[str, ...]


def quickRun(exercise: Exercise) -> QuickRun:
    lines: list[str] = []
    result = exercise.execute(RunOptions(seed=SEED, quick=True), lambda text: lines.extend(text.split("\n")))
    return QuickRun(result, tuple(lines))


@pytest.fixture(scope="module")
def run1() -> QuickRun:
    return quickRun(l37.EXERCISES[0])


@pytest.fixture(scope="module")
def run2() -> QuickRun:
    return quickRun(l37.EXERCISES[1])


@pytest.fixture(scope="module")
def run3() -> QuickRun:
    return quickRun(l37.EXERCISES[2])


@pytest.fixture(scope="module")
def run4() -> QuickRun:
    return quickRun(l37.EXERCISES[3])


@pytest.mark.parametrize("name", ["run1", "run2", "run3", "run4"])
def test_every_report_line_fits_100_columns(name: str, request: pytest.FixtureRequest) -> None:
    run: QuickRun = request.getfixturevalue(name)
    assert run.lines
    wide = [line for line in run.lines if len(line) > REPORT_WIDTH]
    assert wide == []


# ============================================================================
# Exercise 1
# ============================================================================


def _records(values: Iterable[float]) -> list[l37.Reading]:
    return [{"id": i, "value": value} for i, value in enumerate(values)]


def _bruteForce(values: list[float], threshold: float = 2.5) -> list[tuple[bool, float]]:
    """The spec's statistics from the statistics module, window by window: flag and zScore."""
    out: list[tuple[bool, float]] = []
    for i, value in enumerate(values):
        window = values[max(0, i - 49) : i + 1]
        mean = statistics.fmean(window)
        out.append((abs(value - mean) > threshold * statistics.pstdev(window), abs(value - mean)))
    return out


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


@pytest.mark.parametrize("detector", [l37.detectAnomalies, l37.detectAnomaliesFast, l37.detectAnomaliesRobust])
def test_each_detector_matches_the_brute_force_window_statistics(
    detector: Callable[[list[l37.Reading], float], list[l37.FlaggedReading]],
) -> None:
    rng = random.Random(4)
    values = [150.0 if rng.random() < 0.02 else rng.gauss(50, 10) for _ in range(400)]
    expected = _bruteForce(values)
    output = detector(_records(values), 2.5)
    assert [r["anomaly"] for r in output] == [flag for flag, _ in expected]
    assert max(abs(r["zScore"] - z) for r, (_, z) in zip(output, expected, strict=True)) < 1e-9
    assert sum(flag for flag, _ in expected) > 5


@pytest.mark.parametrize("seed", [1, 2, 42])
def test_fast_equals_slow_to_the_spec_letter_on_the_spec_data(seed: int) -> None:
    records = l37.makeAnomalyRecords(2_000, 20, seed)
    slow = l37.detectAnomalies(records)
    fast = l37.detectAnomaliesFast(records)
    assert [r["anomaly"] for r in fast] == [r["anomaly"] for r in slow]
    assert [round(r["zScore"], 6) for r in fast] == [round(r["zScore"], 6) for r in slow]
    assert [{k: r[k] for k in ("id", "value")} for r in fast] == records


def test_the_running_sums_cancel_where_the_robust_version_does_not() -> None:
    rng = random.Random(1)
    records = _records(1e6 + 0.01 * rng.gauss(0, 1) for _ in range(1_000))
    slow = [r["anomaly"] for r in l37.detectAnomalies(records)]
    assert [r["anomaly"] for r in l37.detectAnomaliesFast(records)] != slow
    assert [r["anomaly"] for r in l37.detectAnomaliesRobust(records)] == slow


@pytest.mark.parametrize("count", [0, 1, 2, 49, 50, 51])
def test_fast_and_robust_handle_short_inputs(count: int) -> None:
    records = l37.makeAnomalyRecords(count, 0, 5) if count else []
    slow = l37.detectAnomalies(records)
    for output in (l37.detectAnomaliesFast(records), l37.detectAnomaliesRobust(records)):
        assert [r["anomaly"] for r in output] == [r["anomaly"] for r in slow]
        assert all(math.isclose(a["zScore"], b["zScore"], abs_tol=1e-9) for a, b in zip(output, slow, strict=True))


@pytest.mark.parametrize("value", [2.0, 3.3])
def test_constant_values_have_no_anomalies(value: float) -> None:
    records = _records([value] * 200)
    for detector in (l37.detectAnomalies, l37.detectAnomaliesRobust):
        output = detector(records)
        assert not any(r["anomaly"] for r in output), detector.__name__
        assert max(r["zScore"] for r in output) < 1e-12
    fast = l37.detectAnomaliesFast(records)
    assert max(r["zScore"] for r in fast) < 1e-12
    if value == 2.0:  # an exact mean: zScore and std are both 0, and 0 > 0 is False (>= would flag)
        assert {r["zScore"] for r in fast} == {0.0}
        assert not any(r["anomaly"] for r in fast)
    else:  # an inexact mean: the running sums' variance cancels to 0 while zScore keeps a rounding error
        agreement = lab37.agreementOf(l37.detectAnomalies(records), fast)
        assert agreement.flagMismatches > 0
        assert agreement.realMismatches == 0


@pytest.mark.parametrize("resyncEvery", [1, 7, 10**9])
def test_robust_is_exact_whatever_the_resync_period(resyncEvery: int) -> None:
    records = lab37.makeHardRecords("level shifts", 1_500, 3)
    agreement = lab37.agreementOf(
        l37.detectAnomalies(records), l37.detectAnomaliesRobust(records, resyncEvery=resyncEvery)
    )
    assert agreement.realMismatches == 0
    assert agreement.maxRelativeZScoreDiff < 1e-9


@given(
    seed=st.integers(0, 2**32),
    offset=st.sampled_from([0.0, 1e3, 1e9, -1e12]),
    scale=st.sampled_from([1e-6, 1.0, 1e3]),
    shift=st.sampled_from([0.0, 1e6]),
    size=st.integers(0, 300),
)
def test_robust_equals_slow_for_any_offset_scale_and_level_shift(
    seed: int, offset: float, scale: float, shift: float, size: int
) -> None:
    rng = random.Random(seed)
    values = [offset + (shift if (i // 90) % 2 else 0.0) + scale * rng.gauss(0, 1) for i in range(size)]
    records = _records(values)
    agreement = lab37.agreementOf(l37.detectAnomalies(records), l37.detectAnomaliesRobust(records))
    assert agreement.realMismatches == 0
    assert agreement.maxRelativeZScoreDiff < 1e-9


def test_robust_rejects_a_zero_resync_period() -> None:
    with pytest.raises(ConfigError, match=r"^resyncEvery must be >= 1, got 0$"):
        l37.detectAnomaliesRobust([], resyncEvery=0)


def test_makeAnomalyRecords_sets_the_spec_anomalies() -> None:
    records = l37.makeAnomalyRecords(20_000, 200, 42)
    assert [r["id"] for r in records] == list(range(20_000))
    assert sum(r["value"] == 150.0 for r in records) == 200
    assert records == l37.makeAnomalyRecords(20_000, 200, 42)
    assert records != l37.makeAnomalyRecords(20_000, 200, 43)


def test_compareOutputs_counts_flags_and_zScores_at_6_decimals() -> None:
    slow = l37.detectAnomalies(_records([1.0, 3.0, 2.0]))
    fast: list[l37.FlaggedReading] = [
        {**slow[0], "anomaly": True},
        {**slow[1], "zScore": slow[1]["zScore"] + 6e-7},  # 1.0000006 rounds to 1.000001
        {**slow[2], "zScore": slow[2]["zScore"] + 1e-9},
    ]
    comparison = l37.compareOutputs(slow, fast)
    assert (comparison.records, comparison.flagMismatches, comparison.zScoreMismatches) == (3, 1, 1)
    assert comparison.maxZScoreDiff == pytest.approx(6e-7)
    assert not comparison.identical


def test_exercise1_result(run1: QuickRun) -> None:
    result = run1.result
    assert isinstance(result, l37.Exercise1Result)
    config = l37.Exercise1Config.quick()
    assert result.comparison == l37.OutputComparison(config.records, 0, 0, result.comparison.maxZScoreDiff)
    assert result.comparison.maxZScoreDiff < 1e-9
    assert result.injectedFlagged <= config.anomalies <= result.flagged + config.anomalies
    assert len(result.slowProfile) <= config.profileTop
    assert any("genexpr" in row.function for row in result.slowProfile)
    assert any(row.function == "<built-in method builtins.sum>" for row in result.slowProfile)
    assert not any("genexpr" in row.function or "builtins.sum" in row.function for row in result.fastProfile)
    assert result.slow.bestMs > result.fast.bestMs > 0  # O(W) -> O(1) per record: a large effect
    assert result.speedup == result.slow.bestMs / result.fast.bestMs
    for timing in (result.slow, result.fast):
        assert len(timing.samplesMs) == config.repetitions
        assert timing.bestMs == min(timing.samplesMs)
        assert timing.medianMs == statistics.median(timing.samplesMs)
    paired = result.pairedSpeedups
    assert paired == tuple(s / f for s, f in zip(result.slow.samplesMs, result.fast.samplesMs, strict=True))
    text = " ".join(run1.lines)
    assert "cProfile: detectAnomalies, top 12 by cumulative time" in text
    assert "assert passed" in text
    assert f"speedup {result.speedup:.1f}x (best of 5; repetition by repetition " in text
    assert f"{min(paired):.1f}-{max(paired):.1f}x)." in text


def test_exercise1_same_seed_same_figures() -> None:
    config = l37.Exercise1Config(records=600, anomalies=6, repetitions=1)
    first, second = (l37.runExercise1(config, seed=3) for _ in range(2))
    assert (first.flagged, first.injectedFlagged, first.comparison) == (
        second.flagged,
        second.injectedFlagged,
        second.comparison,
    )


def test_exercise1_asserts_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    def flipped(records: Iterable[l37.Reading], threshold: float = 2.5) -> list[l37.FlaggedReading]:
        out = l37.detectAnomalies(records, threshold)
        return [{**out[0], "anomaly": not out[0]["anomaly"]}, *out[1:]]

    monkeypatch.setattr(l37, "detectAnomaliesFast", flipped)
    with pytest.raises(AssertionError, match=r"^1 anomaly flags differ$"):
        l37.runExercise1(l37.Exercise1Config(records=300, anomalies=3, repetitions=1), seed=1)


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
    assert lines == [evens.reportLine(), doubler.reportLine()]
    assert lines[0].startswith("[EvenFilter] 50 rec  mean ")
    for stage in collector.stages:
        assert 0 < stage.selfMs <= stage.wallMs
        assert stage.throughputPerSec == pytest.approx(stage.records / (stage.wallMs / 1e3))


class FakeClock:
    """``time.perf_counter`` for a test: time moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_measuredStage_latency_runs_from_one_yield_to_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    """Upstream takes 1 ms per item, the stage 2 ms, downstream 4 ms: latency 7 ms, self time 2 ms."""
    clock = FakeClock()
    monkeypatch.setattr(time, "perf_counter", clock)

    def upstream() -> Iterator[int]:
        for i in range(4):
            clock.now += 0.001
            yield i

    class Working:
        @l37.measuredStage("Working")
        def process(self, inputStream: Iterable[int]) -> Iterator[int]:
            for item in inputStream:
                clock.now += 0.002
                yield item

    with l37.StageMetricsCollector(silent) as collector:
        for _ in Working().process(upstream()):
            clock.now += 0.004  # downstream's work on the item, before it asks for the next
    (stage,) = collector.stages
    assert stage.records == 4
    assert stage.meanLatencyMs == pytest.approx((3 + 7 + 7 + 7) / 4)  # the first: from the stage's start
    assert stage.selfMs == pytest.approx(4 * 2)
    assert stage.wallMs == pytest.approx(3 + 7 + 7 + 7 + 4)  # and downstream's work on the last item


def test_stage_metrics_mean_and_p95_of_known_latencies() -> None:
    metrics = l37.StageMetrics.of("S", [float(ms) for ms in range(1, 101)], 100, 5.0, 2_000.0, True)
    assert metrics.meanLatencyMs == 50.5
    assert metrics.p95LatencyMs == pytest.approx(95.05)  # linear interpolation between ranks 94 and 95 (0-based)
    assert metrics.throughputPerSec == 50.0
    assert metrics.meanSelfMs == 0.05
    assert metrics.reportLine() == ("[S] 100 rec  mean 50.5000 ms  p95 95.0500 ms  50 rec/s  self 0.0500 ms")


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
    assert stage.reportLine().startswith("[Doubler, closed early] 3 rec")


def test_measuredStage_is_lazy_and_prints_without_a_collector(capsys: pytest.CaptureFixture[str]) -> None:
    pulled: list[int] = []

    def source() -> Iterator[int]:
        for i in range(5):
            pulled.append(i)
            yield i

    stream = Doubler().process(source())
    assert pulled == []
    assert list(stream) == [0, 2, 4, 6, 8]
    assert capsys.readouterr().out.startswith("[Doubler] 5 rec")


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


def test_exercise2_traces_the_bottleneck_and_the_fix_removes_it(run2: QuickRun) -> None:
    result = run2.result
    assert isinstance(result, l37.Exercise2Result)
    before, after = result.before, result.after
    assert [s.name for s in before.stages] == ["ThresholdFilter", "WindowNormalizer", "MovingAvgTransform"]
    assert before.countsAddUp
    assert after.countsAddUp
    assert before.stages[0].recordsIn == result.inputRecords == l37.Exercise2Config.quick().records
    assert result.outputsIdentical
    assert before.bottleneck.name == "WindowNormalizer"
    assert before.stage("WindowNormalizer").selfMs > 3 * after.stage("WindowNormalizer").selfMs
    latencies = [s.meanLatencyMs for s in before.stages]  # yield to yield: each spans the chain's whole cycle
    assert max(latencies) < 1.02 * min(latencies)
    assert before.downstreamOf("ThresholdFilter") == "WindowNormalizer"
    assert before.downstreamOf("MovingAvgTransform") is None
    printed = [line for line in run2.lines if line.startswith("[")]
    assert printed == [s.reportLine() for s in (*before.stages, *after.stages)]
    assert "traces the time to WindowNormalizer" in " ".join(run2.lines)


def test_window_normalizers_agree() -> None:
    records = l37.makeStageRecords(300, 8)
    with l37.StageMetricsCollector(silent):
        slow = list(l37.WindowNormalizer().process(records))
        fast = list(l37.WindowNormalizerFixed().process(records))
    assert slow == fast
    values = [r["value"] for r in records]
    expected = [
        (v - min(values[: i + 1])) / ((max(values[: i + 1]) - min(values[: i + 1])) or 1) for i, v in enumerate(values)
    ]
    assert [r["norm"] for r in fast] == pytest.approx(expected)


# ============================================================================
# Exercise 3
# ============================================================================


def test_slots_reject_a_typo_and_a_regular_class_accepts_it() -> None:
    outcome = l37.findAttributeTypo(silent)
    assert outcome.dictCreatedAttribute
    assert outcome.dictValueUnchanged
    assert outcome.slotsError == "AttributeError: 'EventSlots' object has no attribute 'vlaue'"
    event = l37.EventSlots("S1", 0.0, 1.0, "C", 0, False)
    with pytest.raises(AttributeError):
        event.vlaue = 99  # type: ignore[attr-defined]  # the typo is the test


def test_exercise3_memory_and_reads(run3: QuickRun) -> None:
    result = run3.result
    assert isinstance(result, l37.Exercise3Result)
    assert not tracemalloc.is_tracing()
    instances = l37.Exercise3Config.quick().instances
    regular = result.memoryOf("EventDict")
    slots = result.memoryOf("EventSlots")
    named = result.memoryOf("EventNamedTuple")
    assert slots.bytesPerInstance < regular.bytesPerInstance
    assert slots.bytesPerInstance >= slots.getsizeofInstance * 0.9
    assert regular.bytesPerInstance > regular.getsizeofInstance
    assert (slots.getsizeofDict, named.getsizeofDict) == (None, None)
    assert slots.dictError == named.dictError == "AttributeError"
    assert regular.getsizeofDict is not None
    assert regular.dictTouchBytesPerInstance is not None
    assert regular.dictTouchBytesPerInstance >= 48  # at least a dict object's header per instance
    assert math.isclose(regular.totalKb * 1024, regular.bytesPerInstance * instances)
    assert [row.className for row in result.reads] == [cls.__name__ for cls in l37.EVENT_CLASSES]
    assert all(row.nsPerRead < 1_000 for row in result.reads)  # a read is nanoseconds, not microseconds
    for row in (*result.reads, result.readsMaterialized):  # one sample per round, the best one quoted
        assert len(row.nsSamples) == result.config.readRepeats
        assert row.nsPerRead == pytest.approx(min(row.nsSamples))
    assert result.readsMaterialized.className == l37.MATERIALIZED
    text = "\n".join(run3.lines)
    assert result.python in text
    assert "EventSlots: instance.vlaue = 99 -> AttributeError" in text


# ============================================================================
# Exercise 4
# ============================================================================


def test_measurement_context_refuses_figures_before_exit() -> None:
    context = l37.PipelineMeasurementContext()
    with pytest.raises(RuntimeError, match=r"^measurements are available after the with block$"):
        _ = context.elapsedMs


def test_measurement_context_measures_and_stops_tracing() -> None:
    assert not tracemalloc.is_tracing()
    kept: list[float] = []
    with l37.PipelineMeasurementContext(hotspots=3) as context:
        kept.extend(float(i) for i in range(20_000))
    assert not tracemalloc.is_tracing()
    assert context.elapsedMs > 0
    assert len(context.hotspots) <= 3
    assert context.memoryAllocatedKb > 20_000 * 24 / 1024  # 20,000 floats of 24 bytes, kept
    assert context.peakMemoryKb >= context.memoryAllocatedKb
    assert "function" in context.topHotspotsStr
    before, after = context.snapshots
    assert sum(stat.size_diff for stat in after.compare_to(before, "filename")) > 20_000 * 24


def test_measurement_context_net_is_below_peak_when_the_block_frees_what_it_made() -> None:
    with l37.PipelineMeasurementContext() as context:
        temporary = [float(i) for i in range(50_000)]
        del temporary
    assert context.peakMemoryKb > 50_000 * 24 / 1024
    assert context.memoryAllocatedKb < 0.2 * context.peakMemoryKb


def test_measurement_context_nests_in_a_tracemalloc_session() -> None:
    tracemalloc.start()
    try:
        with l37.PipelineMeasurementContext():
            pass
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()


def test_exercise4_leak_grows_and_the_fix_does_not(run4: QuickRun) -> None:
    result = run4.result
    assert isinstance(result, l37.Exercise4Result)
    config = l37.Exercise4Config.quick()
    assert l37.AlertDetector.allAlerts == []
    passed = result.passedFilter
    records = l37.makeDashboardRecords(config, SEED)
    assert passed == result.main.consumed == sum(10.0 <= r["value"] <= 90.0 for r in records)
    assert [run.kept for run in result.leaking] == [passed, 2 * passed, 3 * passed]
    assert all(run.kept == 0 for run in result.fixed)
    assert result.leakFit.slope > 0
    assert result.leakFit.rSquared > 0.99
    assert abs(result.fixedFit.slope) < 0.05 * result.leakFit.slope
    assert [s.name for s in result.main.stages] == ["ThresholdFilter", "Normalizer", "FeatureComputer", "AlertDetector"]
    assert result.main.stages[0].recordsIn == config.records
    assert len(result.stability) == config.runs
    assert all(run.cpuMs > 0 for run in result.stability)
    assert result.stable == all(row.cv < 0.10 for row in result.stabilityRows)
    text = "\n".join(run4.lines)
    assert "R² =" in text
    assert "Top 5 hotspots by own time:" in text


def test_alert_detector_keeps_nothing_without_the_leak() -> None:
    records = l37.makeDashboardRecords(l37.Exercise4Config(records=200), 1)
    with l37.StageMetricsCollector(silent):
        features = l37.FeatureComputer().process(l37.Normalizer().process(records))
        alerts = list(l37.AlertDetector().process(features))
    assert len(alerts) == 200
    assert l37.AlertDetector.allAlerts == []


# ============================================================================
# CLI
# ============================================================================


def test_cli_lists_and_rejects_an_unknown_exercise(capsys: pytest.CaptureFixture[str]) -> None:
    assert l37.main(["--list"]) == 0
    assert "measurement dashboard" in capsys.readouterr().out
    assert l37.main(["--ex", "9"]) == 2
    assert "invalid choice" in capsys.readouterr().err
