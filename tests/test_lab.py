"""The lab's machinery: claims and verdicts, the verify driver and its output, bench timers."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.bench import (
    BenchOptions,
    BenchReport,
    BenchRow,
    ForeignLoad,
    benchBridge,
    flowMakespan,
    foreignLoadNote,
    formatBench,
    interleavedMedians,
    interleavedRepeats,
)
from lab.claims import Claim, ClaimKind, Line, Origin, Repeats, Verdict, formatClaims, judge, judgeRepeats
from lab.registry import ExerciseLab, LectureLab
from lab.report import barChart, binSteps, occupancyPlot, sideBySide
from lab.verify import VerifyRecord, agreements, formatAgreements, formatVerify, machineFacts, verifyAll, writeJson
from shared import Exercise, Log, RunOptions, silent, timeWeightedMean


class FakeClock:
    """perf_counter for a test: time moves only when a step says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def step(self, seconds: float, calls: list[str], label: str) -> Callable[[], None]:
        def run() -> None:
            calls.append(label)
            self.now += seconds

        return run


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr("shared.time.perf_counter", fake)
    return fake


def test_interleaved_repeats_time_every_function_in_rotating_rounds(clock: FakeClock) -> None:
    calls: list[str] = []
    durations = interleavedRepeats([clock.step(0.25, calls, "a"), clock.step(0.5, calls, "b")], 3)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert durations == [[0.25, 0.25, 0.25], [0.5, 0.5, 0.5]]


def test_interleavedMedians_keeps_every_label_in_order(clock: FakeClock) -> None:
    calls: list[str] = []
    medians = interleavedMedians({"a": clock.step(0.125, calls, "a"), "b": clock.step(2.0, calls, "b")}, 3)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert medians == {"a": 0.125, "b": 2.0}


def test_foreign_load_is_the_machines_busy_time_minus_ours(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    busy = iter([10.0, 12.5])  # the machine: 2.5 CPU seconds busy while the block ran
    own = iter([1.0, 1.5])  # this process and its reaped children: 0.5 of them
    monkeypatch.setattr("lab.bench.machineBusySeconds", lambda: next(busy))
    monkeypatch.setattr("lab.bench.ownCpuSeconds", lambda: next(own))
    with ForeignLoad() as load:
        clock.now += 1.0
    assert load.cores == 2.0
    note = foreignLoadNote(load, "fork", 2)
    assert note == (
        (
            "(Other processes kept 2.0 of the 2 cores busy on average during this benchmark: "
            "the pool runs lose more to that than the sequential baseline does.)"
        ),
    )
    assert foreignLoadNote(load, "forkserver", 2) == ()  # forkserver workers are not our children


def test_foreign_load_is_unknown_without_proc_stat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lab.bench.machineBusySeconds", lambda: None)
    with ForeignLoad() as load:
        pass
    assert load.cores is None
    assert foreignLoadNote(load, "fork", 2) == ()


def test_judge_maps_holds_to_verdicts() -> None:
    held = judge(29, 1, "s", measured="m", holds=True, kind=ClaimKind.TIMING, reason="r")
    failed = judge(29, 1, "s", measured="m", holds=False, kind=ClaimKind.STRUCTURAL, reason="r")
    unknown = judge(29, 1, "s", measured="m", holds=None, kind=ClaimKind.TIMING, reason="no cores")
    assert (held.verdict, held.reason) == (Verdict.HOLDS, "")
    assert (failed.verdict, failed.reason) == (Verdict.FAILS, "r")
    assert (unknown.verdict, unknown.reason) == (Verdict.NOT_MEASURED, "no cores")


def test_format_claims_shows_each_verdict() -> None:
    claims = [
        judge(31, 3, "fails fast", measured="0.1 ms", holds=True, kind=ClaimKind.STRUCTURAL),
        judge(31, 4, "speedup grows", measured="1.2x", holds=False, kind=ClaimKind.TIMING, reason="2 cores"),
    ]
    assert formatClaims(claims).splitlines() == [
        "ex    kind    the lecture says  measured  verdict",
        "----  ------  ----------------  --------  -----------------",
        "31.3  struct  fails fast        0.1 ms    holds",
        "31.4  timing  speedup grows     1.2x      does not hold [1]",
        "[1] 31.4: 2 cores",
    ]


def figures(_options: RunOptions, _log: Log) -> dict[str, float]:
    return {"figure": 1.9}


def nothingMeasured(_options: RunOptions, _log: Log) -> dict[str, float]:
    return {}


def crashes(_options: RunOptions, _log: Log) -> dict[str, float]:
    raise ZeroDivisionError("division by zero")


def holdsAndFails(result: dict[str, float]) -> tuple[Claim, ...]:
    return (
        judge(99, 1, "counts add up", measured="3 = 3", holds=True, kind=ClaimKind.STRUCTURAL),
        judge(
            99, 1, "4x faster", measured=f"{result['figure']}x", holds=False, kind=ClaimKind.TIMING, reason="2 cores"
        ),
    )


def lostOne(_result: dict[str, float]) -> tuple[Claim, ...]:
    return (judge(99, 2, "nothing lost", measured="9 of 10", holds=False, kind=ClaimKind.STRUCTURAL, reason="lost 1"),)


def studied(_options: RunOptions, _result: dict[str, float], _log: Log) -> tuple[Claim, ...]:
    return (judge(99, 1, "a sweep agrees", measured="5 of 5 sizes", holds=True, kind=ClaimKind.TIMING),)


LAB99 = LectureLab(
    99,
    (
        ExerciseLab(1, dict, holdsAndFails, studied),
        ExerciseLab(2, dict, lostOne),
        ExerciseLab(3, dict, holdsAndFails),
    ),
)


def lab99(lecture: int) -> LectureLab:
    assert lecture == 99
    return LAB99


def chosen(*exercises: Exercise) -> list[tuple[int, Exercise]]:
    return [(99, exercise) for exercise in exercises]


def test_verify_judges_each_result_runs_its_studies_and_records_a_crash_without_stopping() -> None:
    lines: list[str] = []
    records = verifyAll(
        chosen(Exercise(1, "fine", figures), Exercise(3, "crash", crashes)), RunOptions(), lines.append, labOf=lab99
    )
    assert [r.error for r in records] == ["", "ZeroDivisionError('division by zero')"]
    assert [c.statement for c in records[0].claims] == ["counts add up", "4x faster", "a sweep agrees"]
    assert records[0].claims[1].measured == "1.9x"
    assert records[0].structuralFailures == 0
    assert lines[1] == f"[1/2] 99.1 done in {records[0].seconds:.1f} s: 2/3 claims hold"
    text = formatVerify(records)
    assert "ERROR 99.3 crash: the exercise raised ZeroDivisionError('division by zero')" in text
    assert "does not hold [1]" in text
    assert "[1] 99.1: 2 cores" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    assert " ".join(text.split()).endswith(
        "3 claims: 2 hold, 1 do not, 0 too close to call here, 0 not measurable here; "
        "0 structural failure(s), 1 exercise error(s)"
    )


def test_verify_without_studies_judges_the_run_alone() -> None:
    records = verifyAll(chosen(Exercise(1, "fine", figures)), RunOptions(), silent, studies=False, labOf=lab99)
    assert [c.statement for c in records[0].claims] == ["counts add up", "4x faster"]


def test_a_result_of_the_wrong_type_is_an_exercise_error() -> None:
    lab = LectureLab(99, (ExerciseLab(1, list, lambda _result: ()),))
    records = verifyAll(chosen(Exercise(1, "fine", figures)), RunOptions(), silent, labOf=lambda _n: lab)
    assert records[0].error == "TypeError('exercise 1 returned dict, not list')"


def test_only_structural_failures_count_as_correctness_failures() -> None:
    records = verifyAll(
        chosen(Exercise(1, "timing fails", figures), Exercise(2, "structural fails", nothingMeasured)),
        RunOptions(),
        silent,
        labOf=lab99,
    )
    assert [r.structuralFailures for r in records] == [0, 1]


def test_verify_markdown_has_one_table_per_lecture() -> None:
    records = verifyAll(chosen(Exercise(1, "fine", figures)), RunOptions(), silent, labOf=lab99)
    markdown = formatVerify(records, markdown=True)
    assert "## Lecture 99" in markdown
    assert "| 99.1 | counts add up | 3 = 3 |  | holds | structural |  |" in markdown


def test_json_output_carries_dataclasses_and_enums(tmp_path: Path) -> None:
    records = verifyAll(chosen(Exercise(1, "fine", figures)), RunOptions(), silent, studies=False, labOf=lab99)
    path = tmp_path / "figures.json"
    writeJson(str(path), {"machine": machineFacts(7), "exercises": records})
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["machine"]["seed"] == 7
    assert data["machine"]["cpuCount"] >= 1
    claims = data["exercises"][0]["claims"]
    assert [c["verdict"] for c in claims] == [Verdict.HOLDS.value, Verdict.FAILS.value]
    assert {"lecture", "exercise", "statement", "measured", "verdict", "kind", "reason"} <= set(claims[0])
    assert data["exercises"][0]["result"] == {"figure": 1.9}


def test_bridge_benchmark_reports_three_round_trips() -> None:
    report = benchBridge(BenchOptions(quick=True, startMethod="fork"), silent)
    assert [row.label for row in report.rows] == [
        "submit().result()",
        "runInExecutor (bridge)",
        "loop.run_in_executor",
    ]
    raw = report.rows[0].medianSeconds
    assert [(row.repeats, row.baselineSeconds, row.idealSeconds) for row in report.rows] == [(200, raw, raw)] * 3
    assert report.rows[0].efficiency == 1.0
    assert (report.judged, report.belowTarget, report.beyondIdeal) == (False, (), ())


# ------------------------------------------------------- timing claims: decided outside the spread


def timing(values: list[float], line: Line) -> Claim:
    return judgeRepeats(36, 2, "adaptive beats static", Repeats.of(values), line, measured="m", reason="2 cores")


def test_a_timing_claim_holds_or_fails_only_when_every_repeat_agrees() -> None:
    assert timing([1.2, 1.3, 1.25, 1.4, 1.21], Line.above(1.1)).verdict is Verdict.HOLDS
    failed = timing([0.9, 1.0, 0.95, 1.05, 1.09], Line.above(1.1))
    assert (failed.verdict, failed.reason) == (Verdict.FAILS, "2 cores")
    close = timing([1.0, 1.2, 1.15, 1.3, 1.05], Line.above(1.1, unit="x"))
    assert close.verdict is Verdict.TOO_CLOSE
    assert close.reason == "the repeats straddle the line (>= 1.10x): the gap is inside the noise"
    assert close.spread == "1.00-1.30x over 5"
    assert timing([0.1, 0.2, 0.3, 0.4, 0.49], Line.under(0.5)).verdict is Verdict.HOLDS
    assert timing([0.5, 0.6, 0.7, 0.8, 0.9], Line.under(0.5)).verdict is Verdict.FAILS


def test_fewer_than_five_repeats_decide_nothing() -> None:
    claim = timing([3.0, 3.1, 3.2, 3.3], Line.above(1.0))
    assert (claim.verdict, claim.reason) == (Verdict.TOO_CLOSE, "4 repeats cannot decide a timing claim")


@given(st.lists(st.floats(0.01, 100.0), min_size=5, max_size=12), st.floats(0.01, 100.0))
def test_the_verdict_follows_the_spread_against_the_line(values: list[float], threshold: float) -> None:
    verdict = timing(values, Line.above(threshold)).verdict
    # Below 10 repeats the spread is min-max; from 10 on, the 10th-90th percentile (inclusive deciles).
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    low, high = (deciles[0], deciles[8]) if len(values) >= 10 else (min(values), max(values))
    expected = Verdict.HOLDS if low >= threshold else Verdict.FAILS if high < threshold else Verdict.TOO_CLOSE
    assert verdict is expected


def test_repeats_pair_ratios_round_by_round() -> None:
    ratios = Repeats.ratios([2.0, 3.0, 4.0], [1.0, 2.0, 0.0])
    assert ratios.values == (2.0, 1.5, math.inf)
    assert (Repeats.of([3.0, 1.0, 2.0]).median, Repeats.of([3.0, 1.0, 2.0]).low) == (2.0, 1.0)


def test_findings_print_apart_from_the_lectures_claims() -> None:
    finding = judge(37, 1, "running sums flip flags", measured="9,651 flags", holds=True, kind=ClaimKind.STRUCTURAL)
    record = VerifyRecord(37, 1, "t", 0.1, "", (replace(finding, origin=Origin.FINDING),), None)
    text = formatVerify([record])
    assert text.index("Beyond the lecture") < text.index("running sums flip flags")


def agreeing(*verdicts: Verdict) -> list[list[VerifyRecord]]:
    return [[VerifyRecord(31, 1, "t", 0.1, "", (Claim(31, 1, "s", "m", v, ClaimKind.TIMING),), None)] for v in verdicts]


def test_repeat_runs_count_agreement_and_name_a_flip() -> None:
    steady = agreements(agreeing(Verdict.HOLDS, Verdict.HOLDS, Verdict.HOLDS))
    assert [(a.agreed, a.flipped) for a in steady] == [(3, False)]
    moved = agreements(agreeing(Verdict.HOLDS, Verdict.TOO_CLOSE, Verdict.HOLDS))
    assert [(a.agreed, a.flipped) for a in moved] == [(2, False)]
    flipped = agreements(agreeing(Verdict.HOLDS, Verdict.FAILS, Verdict.TOO_CLOSE))
    assert [(a.agreed, a.flipped) for a in flipped] == [(1, True)]
    text = formatAgreements([*steady, *flipped], 3)
    assert "holds / does not hold / too close to call here" in text
    assert " ".join(text.split()).endswith(
        "2 claims over 3 runs: 1 agreed in every run, 0 moved between a verdict and too close / not measurable, "
        "1 flipped."
    )


# ------------------------------------------------------- bench rows: spread, and past the ideal


def test_a_bench_row_keeps_its_repeats_and_quotes_their_median() -> None:
    row = BenchRow.of("pool", [0.012, 0.010, 0.011, 0.014, 0.013], baselineSeconds=0.022, idealSeconds=0.011)
    assert (row.medianSeconds, row.repeats, row.spread) == (0.012, 5, "10-14")
    assert row.speedup == pytest.approx(0.022 / 0.012)
    assert row.beyondIdeal == ""


def test_a_row_faster_than_its_bound_is_flagged_not_met() -> None:
    always = BenchRow.of("fast", [0.008, 0.009, 0.0085, 0.0088, 0.0082], 0.02, 0.010)
    assert (
        always.beyondIdeal
        == "fast: faster than its bound at every repeat: the bound's calibration is off by 10% or more"
    )
    sometimes = BenchRow.of("edge", [0.0095, 0.011, 0.0097, 0.012, 0.0098], 0.02, 0.010)
    assert sometimes.beyondIdeal == "edge: its median beats its bound (102%), within the spread of its repeats"
    report = BenchReport("37.2", "t", (always, sometimes))
    text = formatBench(report)
    assert "118% (!)" in text
    assert "(!) fast: faster than its bound at every repeat" in text
    assert report.beyondIdeal == (always.beyondIdeal, sometimes.beyondIdeal)
    assert BenchReport("ref", "t", (always,), judged=False).beyondIdeal == ()
    assert max(len(line) for line in text.splitlines()) <= 100


# ------------------------------------------------------- charts and latency models


def test_bar_chart_has_one_line_per_point() -> None:
    chart = barChart([("a", 1.0), ("bb", 2.0)], width=4, unit=" ms", title="t")
    assert chart.split("\n") == ["t", " a | ##   1 ms", "bb | #### 2 ms"]


def test_occupancy_helpers_on_a_known_trace() -> None:
    trace = [(0.0, 0), (1.0, 2), (3.0, 1)]
    assert timeWeightedMean(trace, 4.0) == pytest.approx((0 * 1 + 2 * 2 + 1 * 1) / 4)
    assert binSteps(trace, 4.0, 4) == [(0.0, 0), (2.0, 2), (2.0, 2), (1.0, 1)]
    plot = occupancyPlot(trace, 2, 4.0, width=4)
    assert plot[:2] == ["   2 | ## ", "   1 | ###"]
    assert sideBySide([["a", "bb"], ["c"]], gap=1) == "a  c\nbb"


def test_flowMakespan_known_schedules() -> None:
    assert flowMakespan([([3.0, 1.0, 1.0, 1.0], 2)]) == 3.0
    assert flowMakespan([([1.0, 1.0], 2), ([1.0, 1.0], 1)]) == 3.0
    assert flowMakespan([([2.0, 1.0], 2), ([0.5, 0.5], 2)]) == 2.5


@given(st.lists(st.floats(0.0, 5.0), min_size=1, max_size=15), st.integers(1, 6))
def test_flowMakespan_lies_between_the_bounds(durations: list[float], servers: int) -> None:
    span = flowMakespan([(durations, servers)])
    assert max(durations) - 1e-9 <= span <= sum(durations) + 1e-9
    assert span >= sum(durations) / servers - 1e-9


def test_twenty_repeats_judge_on_their_deciles_so_one_outlier_does_not_blur_the_verdict() -> None:
    values = [5.0 + 0.1 * i for i in range(19)] + [0.5]  # one burst of load among 20 repeats
    claim = timing(values, Line.above(4.0, unit="x"))
    assert (claim.verdict, claim.spread) == (Verdict.HOLDS, "5.09-6.61x p10-p90 of 20")
    assert timing([*values[:9], 0.5], Line.above(4.0)).verdict is Verdict.HOLDS  # 10 repeats: p10 = 4.55
    assert timing([*values[:8], 0.5], Line.above(4.0)).verdict is Verdict.TOO_CLOSE  # 9: min-max, 0.5 counts
