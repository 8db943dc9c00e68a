"""Lecture 37: the detectors, @measuredStage and its pipeline, memory figures, the dashboard and the leak.

Exercises 2 and 4 run once in their quick configs through their registry entries
(``exerciseN``, a capturing log); exercises 1 and 3 run once in small configs
through their runners and report formatters. The tests read those results and
reports. Oracles come from the spec's text or an independent computation: exact
integer arithmetic for the detectors, a model of the pull chain on a fake clock
for ``@measuredStage``, ``sys.getsizeof`` of a known object for the memory
figures. The width of every report is checked by tests/test_portability.py.
"""

from __future__ import annotations

import math
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

import l37
import lab.lecture37 as lab37
from shared import ConfigError, Exercise, RunOptions, silent

SEED = 11


@dataclass(frozen=True, slots=True)
class QuickRun:
    """One exercise run: its result and every line it printed."""

    result: object
    lines: tuple[str, ...]


def quickRun(exercise: Exercise) -> QuickRun:
    lines: list[str] = []
    result = exercise.execute(RunOptions(seed=SEED, quick=True), lambda text: lines.extend(text.split("\n")))
    return QuickRun(result, tuple(lines))


# Exercises 1 to 3 in configs smaller than quick: the same code paths, a fraction of the time.
SMALL1 = l37.Exercise1Config(records=1_500, anomalies=15, repetitions=5)
SMALL2 = l37.Exercise2Config(records=3_000)  # the O(N²) stage's self time: 10x any other's
SMALL3 = l37.Exercise3Config(instances=1_000, reads=20_000, readRepeats=3)


@pytest.fixture(scope="module")
def run1() -> QuickRun:
    result = l37.runExercise1(SMALL1, seed=SEED)
    return QuickRun(result, tuple(l37.formatExercise1(result).split("\n")))


@pytest.fixture(scope="module")
def run2() -> QuickRun:
    lines: list[str] = []
    result = l37.runExercise2(SMALL2, seed=SEED, log=lines.append)
    return QuickRun(result, tuple("\n".join([*lines, l37.formatExercise2(result)]).split("\n")))


@pytest.fixture(scope="module")
def run3() -> QuickRun:
    result = l37.runExercise3(SMALL3, seed=SEED)
    return QuickRun(result, tuple(l37.formatExercise3(result).split("\n")))


@pytest.fixture(scope="module")
def run4() -> QuickRun:
    return quickRun(l37.EXERCISES[3])


# ============================================================================
# Exercise 1
# ============================================================================

Detector = Callable[..., list[l37.FlaggedReading]]
DETECTORS: tuple[Detector, ...] = (l37.detectAnomalies, l37.detectAnomaliesFast, l37.detectAnomaliesRobust)


def _records(values: Iterable[float]) -> list[l37.Reading]:
    return [{"id": i, "value": value} for i, value in enumerate(values)]


def _bruteForce(values: list[float], threshold: float = 2.5) -> list[tuple[bool, float]]:
    """The spec's statistics, window by window, from correctly rounded sums (math.fsum): flag and zScore."""
    out: list[tuple[bool, float]] = []
    for i, value in enumerate(values):
        window = values[max(0, i - 49) : i + 1]
        mean = math.fsum(window) / len(window)
        std = math.sqrt(math.fsum([(x - mean) ** 2 for x in window]) / len(window))
        out.append((abs(value - mean) > threshold * std, abs(value - mean)))
    return out


@dataclass(frozen=True, slots=True)
class Exact:
    """The spec's statistics for one record in exact arithmetic: the flag, the zScore, the margin."""

    anomaly: bool
    zScore: float
    margin: float  # |zScore - threshold * std|, rounded once at the end
    scale: float  # the window's largest magnitude (at least 1): what a rounding error is relative to


def _exact(values: Sequence[float], threshold: float = 2.5) -> list[Exact]:
    """Flag and zScore of each record with no rounding at all, over windows of the last 50 values.

    The values must be multiples of 1/4 (here scaled to integers) and the threshold a
    binary fraction. With k = 4 * value, n values, S = sum(k), Q = sum(k²):
    n * 4 * |value - mean| = |n*k - S| and n² * 16 * variance = n*Q - S², so
    "|value - mean| > threshold * std" is (n*k - S)² > threshold² * (n*Q - S²), in integers.
    """
    scaled = [int(value * 4) for value in values]
    assert [k / 4 for k in scaled] == list(values), "the values must be multiples of 1/4"
    top, bottom = threshold.as_integer_ratio()
    out: list[Exact] = []
    for i, k in enumerate(scaled):
        window = scaled[max(0, i - 49) : i + 1]
        n, s, q = len(window), sum(window), sum(x * x for x in window)
        deviation, spread = abs(n * k - s), n * q - s * s
        zScore = deviation / (4 * n)
        std = math.sqrt(spread) / (4 * n)
        out.append(
            Exact(
                anomaly=deviation * deviation * bottom * bottom > top * top * spread,
                zScore=zScore,
                margin=abs(zScore - threshold * std),
                scale=max(1.0, *(abs(x) / 4 for x in window)),
            )
        )
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


@pytest.mark.parametrize("detector", DETECTORS)
def test_each_detector_matches_the_brute_force_window_statistics(detector: Detector) -> None:
    rng = random.Random(4)
    values = [150.0 if rng.random() < 0.02 else rng.gauss(50, 10) for _ in range(400)]
    expected = _bruteForce(values)
    output = detector(_records(values), 2.5)
    assert [r["anomaly"] for r in output] == [flag for flag, _ in expected]
    assert max(abs(r["zScore"] - z) for r, (_, z) in zip(output, expected, strict=True)) < 1e-9
    spikes = [i for i, value in enumerate(values) if value == 150.0]
    assert [i for i, (flag, _) in enumerate(expected) if flag] == spikes  # the data: every spike, nothing else


# A window of 50 in which 0.0 and 10.0 lie exactly 2.5 standard deviations from the mean:
# 4 zeros, 42 fives, 4 tens: mean 5, variance (4 * 25 + 4 * 25) / 50 = 4, std 2, and 2.5 * 2 = 5.
TIE_WINDOW = [0.0] * 4 + [5.0] * 42 + [10.0] * 4


def _tieRecords() -> list[float]:
    """The tie window shuffled, repeated four times: from record 49 on, every window is the tie window."""
    period = TIE_WINDOW[:-1]
    random.Random(3).shuffle(period)
    return [*period, 10.0] * 4


@pytest.mark.parametrize("detector", DETECTORS)
def test_a_value_exactly_at_the_threshold_is_not_an_anomaly(detector: Detector) -> None:
    """The spec's "deviates more than threshold std-devs": at exactly threshold * std, ``>`` says no.

    From record 50 on (the window full and sliding) every detector computes mean 5 and
    std 2 exactly. While the window fills, the robust version's Welford update may
    round: record 49 is left to the filling test below.
    """
    values = _tieRecords()
    output = detector(_records(values))[50:]
    expected = _exact(values)[50:]
    ties = [i for i, value in enumerate(values[50:]) if value != 5.0]
    assert len(ties) == 8 * 3
    assert [(output[i]["anomaly"], output[i]["zScore"]) for i in ties] == [(False, 5.0)] * len(ties)
    assert [(r["anomaly"], r["zScore"]) for r in output] == [(e.anomaly, e.zScore) for e in expected]
    assert not any(e.anomaly for e in expected)


@pytest.mark.parametrize("detector", DETECTORS)
def test_ties_while_the_window_fills_and_at_a_wider_threshold(detector: Detector) -> None:
    # 25 zeros, then k values of 29: the k-th is sqrt(25 / k) std-devs away, 2.5 exactly at k = 4 (zScore 25.0)
    filling = detector(_records([0.0] * 25 + [29.0] * 4))
    assert [r["anomaly"] for r in filling] == [False] * 25 + [True, True, True, False]
    assert [r["zScore"] for r in filling[25:]] == pytest.approx([29 * 25 / (25 + k) for k in (1, 2, 3, 4)])
    assert filling[-1]["zScore"] == 25.0
    # one 50.0 among 49 zeros: mean 1, zScore 49, std 7, exactly 7 std-devs; at record 49 and at 99, 149, 199
    spiked = detector(_records([50.0 if i % 50 == 49 else 0.0 for i in range(200)]), 7.0)
    assert [(r["anomaly"], r["zScore"]) for r in spiked[49::50]] == [(False, 49.0)] * 4
    assert not any(r["anomaly"] for r in spiked)


quarterValues = st.lists(st.integers(-40, 40) | st.integers(-4_000, 4_000), max_size=110).map(
    lambda ks: [k / 4 for k in ks]
)


@given(values=quarterValues, threshold=st.sampled_from([1.0, 2.0, 2.5, 3.0]), resyncEvery=st.integers(1, 80))
def test_every_detector_matches_exact_arithmetic_on_random_small_inputs(
    values: list[float], threshold: float, resyncEvery: int
) -> None:
    """Flags equal the exact ones wherever the exact margin is not within rounding of the threshold."""
    expected = _exact(values, threshold)
    records = _records(values)
    outputs = (
        l37.detectAnomalies(records, threshold),
        l37.detectAnomaliesFast(records, threshold),
        l37.detectAnomaliesRobust(records, threshold, resyncEvery=resyncEvery),
    )
    for output in outputs:
        assert [(r["id"], r["value"]) for r in output] == [(r["id"], r["value"]) for r in records]
        for r, e in zip(output, expected, strict=True):
            assert abs(r["zScore"] - e.zScore) <= 1e-9 * e.scale
            if e.margin > 1e-6 * e.scale:
                assert r["anomaly"] == e.anomaly


def _driftingRecords(count: int) -> tuple[list[l37.Reading], list[float], float]:
    """Records on which a sliding mean update drifts by the same rounding error every record.

    Values lie on a grid of u = 2**-30 near 6.3e6 (where one ulp is u). Each record
    differs from the one 50 before by 150t + 120 or -(100t + 80) grid steps (two up,
    three down per residue class: bounded), so the window mean moves by 3t + 2.4 or
    -(2t + 1.6) steps, and each rounds to the grid 0.4 step low. Without a recount the
    mean is off by 0.4 u per record, 2.2e-6 after 6,000; a recount every R records
    keeps it under 0.4 u R. Returns the records, their exact zScores and u.
    """
    u = 2.0**-30
    base = 2.0**22 + 2.0**21
    t = 3_000_000
    cycle = (150 * t + 120, 150 * t + 120, -(100 * t + 80), -(100 * t + 80), -(100 * t + 80))
    rng = random.Random(5)
    steps = [rng.randrange(2**30) for _ in range(50)]
    for i in range(50, count):
        steps.append(steps[i - 50] + cycle[(i // 50) % 5])
    exact: list[float] = []
    total = 0
    for i, k in enumerate(steps):
        total += k - (steps[i - 50] if i >= 50 else 0)
        n = min(i + 1, 50)
        exact.append(abs(n * k - total) / n * u)
    records = _records(base + k * u for k in steps)
    assert all(r["value"] == base + k * u for r, k in zip(records, steps, strict=True))  # every value exact
    return records, exact, u


@pytest.fixture(scope="module")
def drifting() -> tuple[list[l37.Reading], list[float], float]:
    return _driftingRecords(6_000)


def _worstDrift(output: Sequence[l37.FlaggedReading], exact: Sequence[float]) -> float:
    return max(abs(r["zScore"] - z) for r, z in zip(output, exact, strict=True))


def test_robust_recount_keeps_zScores_to_6_decimals_on_data_built_to_drift(
    drifting: tuple[list[l37.Reading], list[float], float],
) -> None:
    records, exact, u = drifting
    assert _worstDrift(l37.detectAnomalies(records), exact) < 16 * u  # the two-pass reference: a few ulps
    assert _worstDrift(l37.detectAnomaliesRobust(records), exact) < 5e-7  # resyncEvery=1024: under 0.4 u 1024
    noRecount = _worstDrift(l37.detectAnomaliesRobust(records, resyncEvery=10**9), exact)
    assert noRecount > 0.4 * u * 5_000  # the data drifts: 0.4 u per record without a recount


@pytest.mark.parametrize("resyncEvery", [64, 1024])
def test_robust_drift_is_bounded_by_the_recount_period(
    drifting: tuple[list[l37.Reading], list[float], float], resyncEvery: int
) -> None:
    records, exact, u = drifting
    drift = _worstDrift(l37.detectAnomaliesRobust(records, resyncEvery=resyncEvery), exact)
    assert drift <= (0.4 * resyncEvery + 32) * u


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
    fast = [r["anomaly"] for r in l37.detectAnomaliesFast(records)]
    assert sum(a != b for a, b in zip(fast, slow, strict=True)) > 10 * sum(slow)  # more flips than anomalies
    assert [r["anomaly"] for r in l37.detectAnomaliesRobust(records)] == slow


@pytest.mark.parametrize("count", [0, 1, 2, 49, 50, 51])
def test_fast_and_robust_handle_short_inputs(count: int) -> None:
    records = l37.makeAnomalyRecords(count, 0, 5) if count else []
    slow = l37.detectAnomalies(records)
    assert len(slow) == count
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
        flags = sum(r["anomaly"] for r in fast)  # the slow version flags none: every one of these is a flip
        assert agreement.flagMismatches == agreement.roundingTies == flags > len(fast) // 2


@pytest.mark.parametrize("resyncEvery", [1, 7, 10**9])
def test_robust_is_exact_whatever_the_resync_period(resyncEvery: int) -> None:
    """Level shifts: the guard's recount (M2 collapsing) keeps the flags, whatever the periodic one does."""
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
    assert l37.makeAnomalyRecords(2_000, 20, 42) == l37.makeAnomalyRecords(2_000, 20, 42)
    assert l37.makeAnomalyRecords(2_000, 20, 42) != l37.makeAnomalyRecords(2_000, 20, 43)
    normal = [r["value"] for r in records if r["value"] != 150.0]
    mean = math.fsum(normal) / len(normal)
    assert mean == pytest.approx(50, abs=0.3)  # gauss(50, 10): 19,800 draws, the mean's sd 0.07
    assert math.sqrt(math.fsum([(v - mean) ** 2 for v in normal]) / len(normal)) == pytest.approx(10, abs=0.3)


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
    assert l37.compareOutputs(slow, slow) == l37.OutputComparison(3, 0, 0, 0.0)
    assert l37.compareOutputs(slow, slow).identical
    with pytest.raises(ConfigError, match=r"^the outputs hold different records \(3 and 2\)$"):
        l37.compareOutputs(slow, slow[:2])


def test_exercise1_result(run1: QuickRun) -> None:
    result = run1.result
    assert isinstance(result, l37.Exercise1Result)
    config = SMALL1
    records = l37.makeAnomalyRecords(config.records, config.anomalies, SEED)
    reference = _bruteForce([r["value"] for r in records])
    injected = [flag for (flag, _), r in zip(reference, records, strict=True) if r["value"] == 150.0]
    assert (result.flagged, result.injectedFlagged) == (sum(f for f, _ in reference), sum(injected))
    assert result.comparison == l37.OutputComparison(config.records, 0, 0, result.comparison.maxZScoreDiff)
    assert result.comparison.maxZScoreDiff < 1e-9
    slowRows = {row.function: row for row in result.slowProfile}
    fastRows = {row.function: row for row in result.fastProfile}
    assert len(result.slowProfile) <= config.profileTop
    window = [min(i + 1, 50) for i in range(config.records)]
    assert slowRows["<built-in method builtins.sum>"].calls == 2 * config.records  # the mean's and the variance's
    (genexpr,) = [row for name, row in slowRows.items() if name.endswith("(detectAnomalies.<locals>.<genexpr>)")]
    assert genexpr.calls == sum(window) + config.records  # a resumption per value, and the last one per record
    assert [name for name in fastRows if "genexpr" in name or "builtins.sum" in name] == []
    assert fastRows["<built-in method builtins.max>"].calls == config.records  # the variance clamp
    assert result.slow.bestMs > 2 * result.fast.bestMs  # O(W) -> O(1) per record: a large effect (5-10x here)
    assert result.speedup == result.slow.bestMs / result.fast.bestMs
    for timing in (result.slow, result.fast):
        assert len(timing.samplesMs) == config.repetitions
        assert timing.bestMs == min(timing.samplesMs)
        assert timing.medianMs == statistics.median(timing.samplesMs)
    paired = result.pairedSpeedups
    assert paired == tuple(s / f for s, f in zip(result.slow.samplesMs, result.fast.samplesMs, strict=True))
    text = " ".join(run1.lines)
    assert "cProfile: detectAnomalies, top 12 by cumulative time" in text
    assert f"assert passed: the same flags on all {config.records:,} records" in text
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


TINY1 = l37.Exercise1Config(records=300, anomalies=3, repetitions=1)


def test_exercise1_asserts_the_same_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    def flipped(records: Iterable[l37.Reading], threshold: float = 2.5) -> list[l37.FlaggedReading]:
        out = l37.detectAnomalies(records, threshold)
        return [{**out[0], "anomaly": not out[0]["anomaly"]}, *out[1:]]

    monkeypatch.setattr(l37, "detectAnomaliesFast", flipped)
    with pytest.raises(AssertionError, match=r"^1 anomaly flags differ$"):
        l37.runExercise1(TINY1, seed=1)


def test_exercise1_asserts_zScores_to_6_decimal_places(monkeypatch: pytest.MonkeyPatch) -> None:
    """A zScore off by 2e-6 on one record fails the spec's assert; one off by 1e-12 on every record does not."""

    def shiftedBy(first: float, others: float) -> Detector:
        def detector(records: Iterable[l37.Reading], threshold: float = 2.5) -> list[l37.FlaggedReading]:
            out = l37.detectAnomalies(records, threshold)
            return [{**r, "zScore": r["zScore"] + (others if i else first)} for i, r in enumerate(out)]

        return detector

    monkeypatch.setattr(l37, "detectAnomaliesFast", shiftedBy(2e-6, 0.0))
    with pytest.raises(AssertionError, match=r"^1 zScores differ at 6 decimals$"):
        l37.runExercise1(TINY1, seed=1)
    monkeypatch.setattr(l37, "detectAnomaliesFast", shiftedBy(1e-12, 1e-12))
    assert l37.runExercise1(TINY1, seed=1).comparison.identical


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
    for stage in collector.stages:  # real clock: relations that hold whatever the timings
        assert stage.selfMs <= stage.wallMs
        assert stage.meanLatencyMs * stage.records <= stage.wallMs * (1 + 1e-9)  # the intervals lie within the life
        assert stage.throughputPerSec == pytest.approx(stage.records / (stage.wallMs / 1e3))


class FakeClock:
    """``time.perf_counter`` for a test: time moves only when the test says so, in whole microseconds."""

    def __init__(self) -> None:
        self.us = 0

    def __call__(self) -> float:
        return 100.0 + self.us / 1e6


def test_measuredStage_latency_runs_from_one_yield_to_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    """Upstream takes 1 ms per item, the stage 2 ms, downstream 4 ms: latency 7 ms, self time 2 ms."""
    clock = FakeClock()
    monkeypatch.setattr(time, "perf_counter", clock)

    def upstream() -> Iterator[int]:
        for i in range(4):
            clock.us += 1_000
            yield i

    class Working:
        @l37.measuredStage("Working")
        def process(self, inputStream: Iterable[int]) -> Iterator[int]:
            for item in inputStream:
                clock.us += 2_000
                yield item

    with l37.StageMetricsCollector(silent) as collector:
        for _ in Working().process(upstream()):
            clock.us += 4_000  # downstream's work on the item, before it asks for the next
    (stage,) = collector.stages
    assert stage.records == 4
    assert stage.meanLatencyMs == pytest.approx((3 + 7 + 7 + 7) / 4)  # the first: from the stage's start
    assert stage.p95LatencyMs == pytest.approx(7.0)
    assert stage.selfMs == pytest.approx(4 * 2)
    assert stage.wallMs == pytest.approx(3 + 7 + 7 + 7 + 4)  # and downstream's work on the last item


Step = tuple[int, int, bool, int]  # upstream µs, the stage's own µs, kept, downstream µs (when kept)


def _percentile95(values: Sequence[float]) -> float:
    """The 95th percentile, linear between ranks: statistics.quantiles' inclusive method."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[18]


@given(
    steps=st.lists(
        st.tuples(st.integers(0, 5_000), st.integers(0, 5_000), st.booleans(), st.integers(0, 5_000)), max_size=30
    )
)
def test_measuredStage_statistics_match_a_model_of_the_pull_chain(steps: list[Step]) -> None:
    """A filtering stage on a fake clock: latency, p95, self time and wall time from a model of the chain.

    Each pull runs upstream's work for one item, then the stage's; a kept item is
    yielded (its latency: the time since the stage's previous yield, or its start),
    and downstream works on it before pulling again.
    """
    now = last = 0
    latenciesUs: list[int] = []
    for upstreamUs, ownUs, kept, downstreamUs in steps:
        now += upstreamUs + ownUs
        if kept:
            latenciesUs.append(now - last)
            last = now
            now += downstreamUs
    latencies = [us / 1e3 for us in latenciesUs]
    clock = FakeClock()

    def upstream() -> Iterator[Step]:
        for step in steps:
            clock.us += step[0]
            yield step

    class Filtering:
        @l37.measuredStage("Filtering")
        def process(self, inputStream: Iterable[Step]) -> Iterator[Step]:
            for step in inputStream:
                clock.us += step[1]
                if step[2]:
                    yield step

    with pytest.MonkeyPatch.context() as patch, l37.StageMetricsCollector(silent) as collector:
        patch.setattr(time, "perf_counter", clock)
        for step in Filtering().process(upstream()):
            clock.us += step[3]
    (stage,) = collector.stages
    assert (stage.records, stage.recordsIn, stage.exhausted) == (len(latencies), len(steps), True)
    assert stage.meanLatencyMs == pytest.approx(statistics.fmean(latencies) if latencies else 0.0, abs=1e-6)
    assert stage.p95LatencyMs == pytest.approx(_percentile95(latencies) if latencies else 0.0, abs=1e-6)
    assert stage.selfMs == pytest.approx(sum(step[1] for step in steps) / 1e3, abs=1e-6)
    assert stage.wallMs == pytest.approx(now / 1e3, abs=1e-6)


def test_stage_metrics_mean_and_p95_of_known_latencies() -> None:
    metrics = l37.StageMetrics.of("S", [float(ms) for ms in range(1, 101)], 100, 5.0, 2_000.0, True)
    assert metrics.meanLatencyMs == 50.5
    assert metrics.p95LatencyMs == pytest.approx(95.05)  # linear interpolation between ranks 94 and 95 (0-based)
    assert metrics.throughputPerSec == 50.0
    assert metrics.meanSelfMs == 0.05
    assert metrics.reportLine() == ("[S] 100 rec  mean 50.5000 ms  p95 95.0500 ms  50 rec/s  self 0.0500 ms")
    skewed = l37.StageMetrics.of("S", [1.0] * 18 + [10.0, 30.0], 20, 0.0, 100.0, False)
    assert skewed.p95LatencyMs == pytest.approx(11.0)  # rank 18.05: 10 + 0.05 * (30 - 10)
    empty = l37.StageMetrics.of("S", [], 0, 0.0, 0.0, True)
    assert (empty.meanLatencyMs, empty.p95LatencyMs, empty.throughputPerSec, empty.meanSelfMs) == (0.0, 0.0, 0.0, 0.0)


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
    assert (stage.records, stage.recordsIn) == (3, 3)
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


def test_threshold_filter_keeps_10_to_90_bounds_included() -> None:
    values = [9.999, 10.0, 10.001, 50.0, 89.999, 90.0, 90.001, -10.0, 150.0]
    records = _records(values)
    with l37.StageMetricsCollector(silent) as collector:
        kept = list(l37.ThresholdFilter().process(records))
    assert [r["value"] for r in kept] == [10.0, 10.001, 50.0, 89.999, 90.0]
    assert all(any(r is source for source in records) for r in kept)  # passed through, not copied
    (stage,) = collector.stages
    assert (stage.name, stage.recordsIn, stage.records) == ("ThresholdFilter", 9, 5)


def test_moving_average_covers_the_last_20_norms() -> None:
    norms = [float((i * i) % 11) for i in range(45)]
    records: list[l37.NormalizedReading] = [{"id": i, "value": 0.0, "norm": n} for i, n in enumerate(norms)]
    with l37.StageMetricsCollector(silent):
        out = list(l37.MovingAvgTransform().process(records))
    expected = [statistics.fmean(norms[max(0, i - 19) : i + 1]) for i in range(len(norms))]
    assert [r["movingAvg"] for r in out] == pytest.approx(expected, abs=1e-12)
    assert [{k: v for k, v in r.items() if k != "movingAvg"} for r in out] == records


def _normalizersMatchMinMax(values: list[float]) -> None:
    """The spec's ``seen`` keeps every value: norm = (value - min) / (max - min), span 1 while all are equal."""
    records = _records(values)
    with l37.StageMetricsCollector(silent):
        slow = list(l37.WindowNormalizer().process(records))
        fixed = list(l37.WindowNormalizerFixed().process(records))
        dashboard = list(l37.Normalizer().process(records))
    expected = []
    for i, value in enumerate(values):
        low, high = min(values[: i + 1]), max(values[: i + 1])
        expected.append({"id": i, "value": value, "norm": (value - low) / (high - low if high != low else 1)})
    assert slow == expected
    assert fixed == expected
    assert dashboard == expected


@given(values=st.lists(st.floats(-1e6, 1e6) | st.sampled_from([0.0, 2.5]), max_size=60))
def test_normalizers_equal_min_max_over_every_value_seen(values: list[float]) -> None:
    _normalizersMatchMinMax(values)


def test_normalizers_remember_the_first_values_of_a_long_run() -> None:
    """A minimum and a maximum set in the first records still bound the 500th record's norm."""
    values = [r["value"] for r in l37.makeStageRecords(500, 8)]
    _normalizersMatchMinMax([0.0, 100.0, *values])


def _metrics(name: str, recordsIn: int, records: int, latencyMs: float, selfMs: float) -> l37.StageMetrics:
    return l37.StageMetrics(name, records, recordsIn, latencyMs, latencyMs, selfMs, 100.0, True)


def test_pipeline_run_reads_its_stages() -> None:
    stages = (
        _metrics("A", 100, 90, 0.5, 3.0),
        _metrics("B", 90, 90, 0.6, 40.0),
        _metrics("C", 90, 90, 0.4, 5.0),
    )
    run = l37.PipelineRun("r", stages, 90, 50.0)
    assert run.countsAddUp
    assert (run.highestLatency.name, run.bottleneck.name) == ("B", "B")
    assert [run.downstreamOf(name) for name in "ABC"] == ["B", "C", None]
    assert run.stage("C") is stages[2]
    lost = (stages[0], _metrics("B", 89, 89, 0.6, 40.0), stages[2])  # B pulled one record fewer than A gave
    assert not l37.PipelineRun("r", lost, 90, 50.0).countsAddUp
    assert not l37.PipelineRun("r", stages, 89, 50.0).countsAddUp  # the consumer lost one


def test_exercise2_traces_the_bottleneck_and_the_fix_removes_it(run2: QuickRun) -> None:
    result = run2.result
    assert isinstance(result, l37.Exercise2Result)
    before, after = result.before, result.after
    assert [s.name for s in before.stages] == ["ThresholdFilter", "WindowNormalizer", "MovingAvgTransform"]
    assert before.countsAddUp
    assert after.countsAddUp
    records = l37.makeStageRecords(SMALL2.records, SEED)
    assert before.stages[0].recordsIn == result.inputRecords == len(records)
    assert before.consumed == after.consumed == sum(10.0 <= r["value"] <= 90.0 for r in records)
    assert result.outputsIdentical
    assert before.bottleneck.name == "WindowNormalizer"
    assert before.stage("WindowNormalizer").selfMs > 3 * after.stage("WindowNormalizer").selfMs  # O(N²) -> O(N)
    latencies = [s.meanLatencyMs for s in before.stages]  # yield to yield: each spans the chain's whole cycle
    assert max(latencies) < 1.02 * min(latencies)
    printed = [line for line in run2.lines if line.startswith("[")]
    assert printed == [s.reportLine() for s in (*before.stages, *after.stages)]
    assert "traces the time to WindowNormalizer" in " ".join(run2.lines)


# ============================================================================
# Exercise 3
# ============================================================================


# First in this section: findAttributeTypo adds 'vlaue' to EventDict's shared key table (CPython's
# key-sharing dicts), and every EventDict made after that in this process is 8 bytes larger on 3.11.
# runExercise3 measures before its own typo demo; this test must see memory before the others' demos.
def test_exercise3_memory_and_reads(run3: QuickRun) -> None:
    result = run3.result
    assert isinstance(result, l37.Exercise3Result)
    assert not tracemalloc.is_tracing()
    row = l37.makeEventRows(1, SEED)[0]
    regular = result.memoryOf("EventDict")
    slots = result.memoryOf("EventSlots")
    named = result.memoryOf("EventNamedTuple")
    dataclass_ = result.memoryOf("EventDataclass")
    # tracemalloc traces what each allocation asked for: a slotted instance is one block of getsizeof's bytes
    assert slots.getsizeofInstance == sys.getsizeof(l37.EventSlots(*row))
    assert slots.bytesPerInstance == pytest.approx(sys.getsizeof(l37.EventSlots(*row)), abs=1.0)
    assert sys.getsizeof(l37.EventNamedTuple(*row)) <= named.bytesPerInstance <= sys.getsizeof(row) + 16
    assert slots.bytesPerInstance < regular.bytesPerInstance
    assert dataclass_.bytesPerInstance == pytest.approx(regular.bytesPerInstance, abs=1.0)  # a regular class beneath
    assert regular.bytesPerInstance > regular.getsizeofInstance
    assert (slots.getsizeofDict, named.getsizeofDict) == (None, None)
    assert slots.dictError == named.dictError == "AttributeError"
    assert (regular.dictError, dataclass_.dictError) == ("", "")
    assert regular.getsizeofDict == sys.getsizeof(vars(l37.EventDict(*row)))
    assert dataclass_.getsizeofDict == sys.getsizeof(vars(l37.EventDataclass(*row)))
    assert regular.dictTouchBytesPerInstance == pytest.approx(sys.getsizeof({}), abs=2.0)  # a dict object each
    assert math.isclose(regular.totalKb * 1024, regular.bytesPerInstance * SMALL3.instances)
    assert round(slots.blocksPerInstance) == round(named.blocksPerInstance) == 1
    assert [row.className for row in result.reads] == [cls.__name__ for cls in l37.EVENT_CLASSES]
    assert all(row.nsPerRead < 1_000 for row in result.reads)  # a read is nanoseconds, not microseconds
    for read in (*result.reads, result.readsMaterialized):  # one sample per round, the best one quoted
        assert len(read.nsSamples) == result.config.readRepeats
        assert read.nsPerRead == pytest.approx(min(read.nsSamples))
        assert read.readsPerSecond == pytest.approx(1e9 / min(read.nsSamples))
    assert result.readsMaterialized.className == l37.MATERIALIZED
    text = "\n".join(run3.lines)
    assert result.python in text
    assert "EventSlots: instance.vlaue = 99 -> AttributeError" in text


def test_slots_reject_a_typo_and_a_regular_class_accepts_it() -> None:
    lines: list[str] = []
    outcome = l37.findAttributeTypo(lines.append)
    assert outcome.dictCreatedAttribute
    assert outcome.dictValueUnchanged
    assert outcome.slotsError == "AttributeError: 'EventSlots' object has no attribute 'vlaue'"
    value = l37.makeEventRows(1, 0)[0][2]
    assert list(outcome.lines) == lines
    assert lines == [
        f"EventDict:  instance.vlaue = 99 -> silently created 'vlaue'; instance.value is still {value:.2f}",
        "EventSlots: instance.vlaue = 99 -> AttributeError: 'EventSlots' object has no attribute 'vlaue'",
    ]
    event = l37.EventSlots("S1", 0.0, 1.0, "C", 0, False)
    with pytest.raises(AttributeError):
        event.vlaue = 99  # type: ignore[attr-defined]  # the typo is the test


def test_the_four_event_classes_hold_the_same_six_fields() -> None:
    row = ("S42", 1_700_000_000.0, 51.5, "C", 2, True)
    fields = ("sensorId", "timestamp", "value", "unit", "stageId", "flag")
    for cls in l37.EVENT_CLASSES:
        event = cls(*row)
        assert tuple(getattr(event, name) for name in fields) == row, cls.__name__
        assert hasattr(event, "__dict__") == (cls in (l37.EventDict, l37.EventDataclass)), cls.__name__


# ============================================================================
# Exercise 4
# ============================================================================

MB = 1_000_000
SLACK_BYTES = 8_192  # the context's own records (cProfile's entries, the clock reads): about 2 KB here


def test_measurement_context_refuses_figures_before_exit() -> None:
    context = l37.PipelineMeasurementContext()
    with pytest.raises(RuntimeError, match=r"^measurements are available after the with block$"):
        _ = context.elapsedMs


def test_measurement_context_net_and_peak_of_a_freed_allocation() -> None:
    """3 MB made and freed inside the block: nothing left (net ~ 0), 3 MB at the peak."""
    with l37.PipelineMeasurementContext() as context:
        temporary = bytearray(3 * MB)
        del temporary
    assert abs(context.memoryAllocatedKb * 1024) < SLACK_BYTES
    assert 3 * MB <= context.peakMemoryKb * 1024 < 3 * MB + SLACK_BYTES
    assert not tracemalloc.is_tracing()


def test_measurement_context_net_and_peak_of_a_kept_allocation() -> None:
    """2 MB made and kept: net and peak both 2 MB."""
    with l37.PipelineMeasurementContext() as context:
        kept = bytearray(2 * MB)
    size = sys.getsizeof(kept)  # the buffer and the object: 2 MB and a few dozen bytes
    assert size - 64 <= 2 * MB <= size
    assert size <= context.memoryAllocatedKb * 1024 < size + SLACK_BYTES
    assert context.memoryAllocatedKb <= context.peakMemoryKb < context.memoryAllocatedKb + SLACK_BYTES / 1024
    before, after = context.snapshots
    assert size <= sum(stat.size_diff for stat in after.compare_to(before, "filename")) < size + SLACK_BYTES


def test_measurement_context_net_below_peak_when_part_is_freed() -> None:
    """1 MB kept, 3 MB freed after the kept one was made: net 1 MB, peak 4 MB."""
    with l37.PipelineMeasurementContext() as context:
        kept = bytearray(1 * MB)
        temporary = bytearray(3 * MB)
        del temporary
    assert len(kept) == MB
    assert MB <= context.memoryAllocatedKb * 1024 < MB + SLACK_BYTES
    assert 4 * MB <= context.peakMemoryKb * 1024 < 4 * MB + SLACK_BYTES


def test_measurement_context_peak_is_above_the_level_at_entry() -> None:
    """Memory held before the block counts in neither figure."""
    tracemalloc.start()
    try:
        held = bytearray(2 * MB)
        with l37.PipelineMeasurementContext() as context:
            temporary = bytearray(MB)
            del temporary
        assert tracemalloc.is_tracing()  # the context nests in a longer tracemalloc session
    finally:
        tracemalloc.stop()
    assert len(held) == 2 * MB
    assert abs(context.memoryAllocatedKb * 1024) < SLACK_BYTES
    assert MB <= context.peakMemoryKb * 1024 < MB + SLACK_BYTES


def test_measurement_context_times_and_profiles_the_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake clocks: 250 ms of wall time, 180 ms of CPU; the profile counts the calls made in the block."""
    wall, cpu = FakeClock(), FakeClock()
    monkeypatch.setattr(time, "perf_counter", wall)
    monkeypatch.setattr(time, "process_time", cpu)

    def work(n: int) -> float:
        return math.fsum(float(i) for i in range(n))

    with l37.PipelineMeasurementContext(hotspots=3) as context:
        for _ in range(7):
            work(2_000)
        wall.us += 250_000
        cpu.us += 180_000
    assert context.elapsedMs == pytest.approx(250.0)
    assert context.cpuMs == pytest.approx(180.0)
    assert len(context.hotspots) == 3
    rows = {row.function.split("(")[-1].rstrip(")"): row for row in context.hotspots}
    assert rows["test_measurement_context_times_and_profiles_the_block.<locals>.work.<locals>.<genexpr>"].calls == (
        7 * 2_001  # a resumption per value, and the last one per sum
    )
    assert rows["<built-in method math.fsum>"].calls == 7
    assert context.topHotspotsStr == l37.formatProfileRows(context.hotspots)
    assert not tracemalloc.is_tracing()


@dataclass(frozen=True, slots=True)
class Featured:
    """What the four dashboard stages should make of one reading, computed here from the spec's rules."""

    norm: float
    movingAvg: float
    delta: float
    alert: bool


def _dashboardModel(values: Sequence[float], jump: float = 0.3) -> list[tuple[int, Featured]]:
    """Filter 10..90, min-max over what passed, the mean of the last 20 norms, the change, the alert."""
    passed = [(i, v) for i, v in enumerate(values) if 10.0 <= v <= 90.0]
    norms: list[float] = []
    out: list[tuple[int, Featured]] = []
    for position, (index, value) in enumerate(passed):
        seen = [v for _, v in passed[: position + 1]]
        low, high = min(seen), max(seen)
        norm = (value - low) / (high - low if high != low else 1)
        norms.append(norm)
        movingAvg = statistics.fmean(norms[-20:])
        delta = norm - norms[-2] if len(norms) > 1 else 0.0
        out.append((index, Featured(norm, movingAvg, delta, abs(norm - movingAvg) > jump)))
    return out


def test_the_four_dashboard_stages_follow_the_model() -> None:
    records = l37.makeDashboardRecords(l37.Exercise4Config(records=300), 1)
    with l37.StageMetricsCollector(silent) as collector:
        features = l37.FeatureComputer().process(l37.Normalizer().process(l37.ThresholdFilter().process(records)))
        alerts = list(l37.AlertDetector().process(features))
    expected = _dashboardModel([r["value"] for r in records])
    assert [r["id"] for r in alerts] == [index for index, _ in expected]
    for record, (_, model) in zip(alerts, expected, strict=True):
        assert (record["norm"], record["delta"], record["alert"]) == (model.norm, model.delta, model.alert)
        assert record["movingAvg"] == pytest.approx(model.movingAvg, abs=1e-12)
    alerted = {index for index, model in expected if model.alert}
    spikes = {r["id"] for r in records if r["value"] == 89.0}
    assert len(spikes) == 4  # seed 1: four spikes of 89.0 among 300 records
    assert spikes <= alerted < {index for index, _ in expected}  # every spike alerts, and not every record does
    assert [(s.name, s.recordsIn, s.records) for s in collector.stages] == [
        ("ThresholdFilter", 300, len(expected)),
        ("Normalizer", len(expected), len(expected)),
        ("FeatureComputer", len(expected), len(expected)),
        ("AlertDetector", len(expected), len(expected)),
    ]
    assert l37.AlertDetector.allAlerts == []


def test_alert_detector_leak_keeps_every_record_it_yields() -> None:
    l37.AlertDetector.allAlerts.clear()
    records = l37.makeDashboardRecords(l37.Exercise4Config(records=100), 2)
    try:
        with l37.StageMetricsCollector(silent):
            features = l37.FeatureComputer().process(l37.Normalizer().process(records))
            first = list(l37.AlertDetector(leak=True).process(features))
            features = l37.FeatureComputer().process(l37.Normalizer().process(records))
            second = list(l37.AlertDetector(leak=True).process(features))
        kept = l37.AlertDetector.allAlerts
        assert len(kept) == 200
        assert all(a is b for a, b in zip(kept, first + second, strict=True))
    finally:
        l37.AlertDetector.allAlerts.clear()


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
    # What each leaking run keeps, estimated apart: the record dict, its three new floats, a list slot.
    sample = {"id": 1, "value": 1.5, "norm": 0.5, "movingAvg": 0.5, "delta": 0.1, "alert": False}
    perRecord = sys.getsizeof(sample) + 3 * sys.getsizeof(0.5) + 8
    assert result.leakFit.slope * 1024 == pytest.approx(passed * perRecord, rel=0.08)
    assert result.leakFit.rSquared > 0.99
    assert abs(result.fixedFit.slope) < 0.05 * result.leakFit.slope
    for leaking, fixed in zip(result.leaking, result.fixed, strict=True):
        assert leaking.netKb - fixed.netKb == pytest.approx(result.leakFit.slope, rel=0.08)  # net: what a run keeps
        assert fixed.netKb < 0.5 * fixed.peakKb  # the stages' intermediate dicts come and go
        assert leaking.netKb <= leaking.peakKb
    assert [s.name for s in result.main.stages] == ["ThresholdFilter", "Normalizer", "FeatureComputer", "AlertDetector"]
    assert result.main.stages[0].recordsIn == config.records
    assert len(result.stability) == config.runs
    assert result.stable == all(row.cv < 0.10 for row in result.stabilityRows)
    for row in result.stabilityRows:
        throughputs = [run.throughput(row.stage) for run in result.stability]
        assert row.meanThroughput == pytest.approx(statistics.fmean(throughputs))
        assert row.cv == pytest.approx(statistics.stdev(throughputs) / statistics.fmean(throughputs))
    assert result.meanNetKb == pytest.approx(statistics.fmean(run.netKb for run in result.stability))
    text = "\n".join(run4.lines)
    assert f"R² = {result.leakFit.rSquared:.4f}" in text
    assert "Top 5 hotspots by own time:" in text


# ============================================================================
# CLI
# ============================================================================


def test_cli_lists_and_rejects_an_unknown_exercise(capsys: pytest.CaptureFixture[str]) -> None:
    assert l37.main(["--list"]) == 0
    assert "measurement dashboard" in capsys.readouterr().out
    assert l37.main(["--ex", "9"]) == 2
    assert "invalid choice" in capsys.readouterr().err
