"""The lab of lecture 29: its judges fed results that hold and that fail, its studies, its benchmarks."""

from __future__ import annotations

from dataclasses import replace

import pytest

import l29
from lab import lecture29 as lab29
from lab.bench import EFFICIENCY_TARGET, BenchOptions
from shared import cpuCount

TIERS = l29.Exercise3Config(items=6, threads=4, workers=2, valuesPerItem=300, latencyLow=0.002, latencyHigh=0.004)

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
