"""tasks.py: option parsing, the verify table and its exit rule, JSON output, the bridge benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from invoke.exceptions import Exit

import tasks
from shared import BenchOptions, ClaimKind, Exercise, Log, Outcome, RunOptions, Verdict, judge, silent


def holdsAndFails(_options: RunOptions, _log: Log) -> Outcome:
    return Outcome(
        result={"figure": 1.5},
        claims=(
            judge(99, 1, "counts add up", measured="3 = 3", holds=True, kind=ClaimKind.STRUCTURAL),
            judge(99, 1, "4x faster", measured="1.9x", holds=False, kind=ClaimKind.TIMING, reason="2 cores"),
        ),
    )


def structuralFailure(_options: RunOptions, _log: Log) -> Outcome:
    claim = judge(99, 2, "nothing lost", measured="9 of 10", holds=False, kind=ClaimKind.STRUCTURAL, reason="lost 1")
    return Outcome(result=None, claims=(claim,))


def crashes(_options: RunOptions, _log: Log) -> Outcome:
    raise ZeroDivisionError("division by zero")


def selection(*exercises: Exercise) -> tasks.Selection:
    return tasks.Selection(tuple((99, exercise) for exercise in exercises), ())


def test_verify_keeps_claims_and_records_a_crash_without_stopping() -> None:
    lines: list[str] = []
    records = tasks.verifyAll(
        selection(Exercise(1, "fine", holdsAndFails), Exercise(3, "crash", crashes)), RunOptions(), lines.append
    )
    assert [r.error for r in records] == ["", "ZeroDivisionError('division by zero')"]
    assert [len(r.claims) for r in records] == [2, 0]
    assert records[0].structuralFailures == 0
    assert lines[1] == f"[1/2] 99.1 done in {records[0].seconds:.1f} s: 1/2 claims hold"
    text = tasks.formatVerify(records)
    assert "ERROR" in text
    assert "2 cores" in text
    assert text.endswith(
        "2 claims: 1 hold, 1 do not, 0 not measurable here; 0 structural failure(s), 1 exercise error(s)"
    )


def test_only_structural_failures_count_as_correctness_failures() -> None:
    records = tasks.verifyAll(
        selection(Exercise(1, "timing fails", holdsAndFails), Exercise(2, "structural fails", structuralFailure)),
        RunOptions(),
        silent,
    )
    assert [r.structuralFailures for r in records] == [0, 1]


def test_verify_markdown_has_one_table_per_lecture() -> None:
    records = tasks.verifyAll(selection(Exercise(1, "fine", holdsAndFails)), RunOptions(), silent)
    markdown = tasks.formatVerify(records, markdown=True)
    assert "## Lecture 99" in markdown
    assert "| 99.1 | counts add up | 3 = 3 | holds | structural |  |" in markdown


def test_json_output_carries_dataclasses_and_enums(tmp_path: Path) -> None:
    records = tasks.verifyAll(selection(Exercise(1, "fine", holdsAndFails)), RunOptions(), silent)
    path = tmp_path / "figures.json"
    tasks.writeJson(str(path), {"machine": tasks.machineFacts(7), "exercises": records})
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["machine"]["seed"] == 7
    assert data["machine"]["cpuCount"] >= 1
    claims = data["exercises"][0]["claims"]
    assert [c["verdict"] for c in claims] == [Verdict.HOLDS.value, Verdict.FAILS.value]
    assert data["exercises"][0]["result"] == {"figure": 1.5}


@pytest.mark.parametrize(
    ("seed", "executor", "startMethod", "message"),
    [
        ("-1", "", "", "--seed must be an integer >= 0, got -1"),
        ("1.5", "", "", "--seed must be an integer >= 0, got '1.5'"),
        ("", "cluster", "", "--executor must be one of process, thread, inline, dask, got 'cluster'"),
        ("", "", "posix", "--start-method must be one of fork, spawn, forkserver, got 'posix'"),
    ],
)
def test_parse_options_rejects_bad_values(seed: str, executor: str, startMethod: str, message: str) -> None:
    with pytest.raises(Exit) as raised:
        tasks.parseOptions(seed, False, executor, startMethod)
    assert raised.value.code == 2
    assert raised.value.message == f"invoke: error: {message}"


def test_parse_options_defaults() -> None:
    assert tasks.parseOptions("", True, "", "") == RunOptions(quick=True)
    assert tasks.parseOptions("9", False, "thread", "spawn") == RunOptions(9, False, "thread", "spawn")


def test_bridge_benchmark_reports_three_round_trips() -> None:
    report = tasks.benchBridge(BenchOptions(quick=True, startMethod="fork"), silent)
    assert [row.label for row in report.rows] == [
        "submit().result()",
        "runInExecutor (bridge)",
        "loop.run_in_executor",
    ]
    assert all(row.medianSeconds > 0 for row in report.rows)
    assert report.rows[0].efficiency == 1.0
    assert report.belowTarget == ()
