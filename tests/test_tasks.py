"""tasks.py: option parsing, the verify table and its exit rule, JSON output, the bridge benchmark."""

from __future__ import annotations

import pytest
from invoke.context import Context
from invoke.exceptions import Exit

import tasks
from shared import RunOptions


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


@pytest.mark.parametrize(
    ("flag", "path", "message"),
    [
        ("--out", "/nonexistent/dir/x.md", "--out /nonexistent/dir/x.md: the folder '/nonexistent/dir' does not exist"),
        ("--json", "/", "--json /: is a folder, not a file"),
    ],
)
def test_an_output_path_is_checked_before_any_work(flag: str, path: str, message: str) -> None:
    with pytest.raises(Exit) as raised:
        tasks.checkOutput(flag, path)
    assert (raised.value.code, raised.value.message) == (2, f"invoke: error: {message}")


def test_verify_refuses_a_bad_out_path_before_running_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    def mustNotRun(*_args: object, **_kwargs: object) -> list[object]:
        raise AssertionError("verify ran an exercise before checking --out")

    monkeypatch.setattr(tasks, "verifyAll", mustNotRun)
    with pytest.raises(Exit) as raised:
        tasks.verify(Context(), lecture="29", out="/nonexistent/dir/x.md")
    assert raised.value.code == 2


@pytest.mark.parametrize(("text", "message"), [("0", "got 0"), ("21", "got 21"), ("x", "got 'x'")])
def test_repeat_counts_are_whole_numbers_in_range(text: str, message: str) -> None:
    with pytest.raises(Exit) as raised:
        tasks.parseCount("--repeat", text, 1, 20)
    assert raised.value.message == f"invoke: error: --repeat must be an integer from 1 to 20, {message}"
