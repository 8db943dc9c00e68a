"""The lab's machinery: claims and verdicts, the verify driver and its output, bench timers."""

from __future__ import annotations

import json
from pathlib import Path

from lab.bench import BenchOptions, ForeignLoad, benchBridge, foreignLoadNote, interleavedMedians, interleavedRepeats
from lab.claims import Claim, ClaimKind, Verdict, formatClaims, judge
from lab.registry import ExerciseLab, LectureLab
from lab.verify import formatVerify, machineFacts, verifyAll, writeJson
from shared import Exercise, Log, RunOptions, silent


def test_interleaved_repeats_time_every_function_in_rotating_rounds() -> None:
    calls: list[str] = []
    durations = interleavedRepeats([lambda: calls.append("a"), lambda: calls.append("b")], 3)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert [len(times) for times in durations] == [3, 3]
    assert all(seconds >= 0 for times in durations for seconds in times)


def test_interleavedMedians_keeps_every_label_in_order() -> None:
    calls: list[str] = []
    medians = interleavedMedians({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert list(medians) == ["a", "b"]
    assert all(seconds >= 0 for seconds in medians.values())


def test_foreign_load_is_measured_or_unknown() -> None:
    with ForeignLoad() as load:
        sum(range(10_000))
    assert load.cores is None or load.cores >= 0.0
    assert foreignLoadNote(load, "forkserver", 2) == ()


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
    text = formatClaims(claims)
    assert "31.3" in text
    assert "holds" in text
    assert "does not hold" in text
    assert "2 cores" in text


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
    assert "ERROR" in text
    assert "2 cores" in text
    assert text.endswith(
        "3 claims: 2 hold, 1 do not, 0 not measurable here; 0 structural failure(s), 1 exercise error(s)"
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
    assert "| 99.1 | counts add up | 3 = 3 | holds | structural |  |" in markdown


def test_json_output_carries_dataclasses_and_enums(tmp_path: Path) -> None:
    records = verifyAll(chosen(Exercise(1, "fine", figures)), RunOptions(), silent, studies=False, labOf=lab99)
    path = tmp_path / "figures.json"
    writeJson(str(path), {"machine": machineFacts(7), "exercises": records})
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["machine"]["seed"] == 7
    assert data["machine"]["cpuCount"] >= 1
    claims = data["exercises"][0]["claims"]
    assert [c["verdict"] for c in claims] == [Verdict.HOLDS.value, Verdict.FAILS.value]
    assert set(claims[0]) == {"lecture", "exercise", "statement", "measured", "verdict", "kind", "reason"}
    assert data["exercises"][0]["result"] == {"figure": 1.9}


def test_bridge_benchmark_reports_three_round_trips() -> None:
    report = benchBridge(BenchOptions(quick=True, startMethod="fork"), silent)
    assert [row.label for row in report.rows] == [
        "submit().result()",
        "runInExecutor (bridge)",
        "loop.run_in_executor",
    ]
    assert all(row.medianSeconds > 0 for row in report.rows)
    assert report.rows[0].efficiency == 1.0
    assert report.belowTarget == ()
