"""tasks.py: option parsing, the verify table and its exit rule, JSON output, the bridge benchmark."""

from __future__ import annotations

import pytest
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
