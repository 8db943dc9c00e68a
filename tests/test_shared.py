"""shared.py: every helper, the executor Protocol on every kind, the asyncio bridge."""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.bench import efficiency
from shared import (
    ConfigError,
    ExecutorKind,
    InlineExecutor,
    OccupancyQueue,
    StartMethod,
    Stopwatch,
    TaskExecutor,
    _osThreadCount,
    _workerIdentity,
    bar,
    coefficientOfVariation,
    executorScope,
    formatTable,
    linearFit,
    makeExecutor,
    makeRng,
    parallelBound,
    percentile,
    prose,
    requireRange,
    runInExecutor,
    settleThreads,
    speedup,
    stopChildren,
    timeWeightedMean,
    warmUp,
)

ROOT = Path(__file__).resolve().parent.parent
finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)


def square(x: int) -> int:
    return x * x


def fail(message: str) -> int:
    raise ValueError(message)


# ---------------------------------------------------------------- executors


def test_inline_executor_runs_at_once_and_delivers_errors_through_the_future() -> None:
    executor = InlineExecutor()
    done = executor.submit(square, 7)
    assert done.done()
    assert done.result() == 49
    failed = executor.submit(fail, "boom")
    with pytest.raises(ValueError, match=r"^boom$"):
        failed.result()
    executor.shutdown()
    with pytest.raises(RuntimeError, match=r"^cannot schedule new futures after shutdown$"):
        executor.submit(square, 1)


def submitThroughProtocol(executor: TaskExecutor) -> list[int]:
    """Typed against the Protocol only: mypy checks that each kind satisfies it."""
    return [executor.submit(square, n).result(timeout=30) for n in range(5)]


@pytest.mark.parametrize("kind", ["process", "thread", "inline"])
def test_every_executor_kind_satisfies_the_protocol(kind: ExecutorKind) -> None:
    with executorScope(kind, 2) as executor:
        assert submitThroughProtocol(executor) == [0, 1, 4, 9, 16]


@pytest.mark.dask
def test_a_dask_local_cluster_satisfies_the_protocol(daskResults: dict[str, Any]) -> None:
    assert daskResults["protocol"] == [0, 1, 4, 9, 16]


@pytest.mark.parametrize("startMethod", ["fork", "spawn", "forkserver"])
def test_bridge_awaits_process_pool_work(startMethod: StartMethod) -> None:
    async def main(executor: TaskExecutor) -> list[int]:
        return await asyncio.gather(*(runInExecutor(executor, square, n) for n in range(6)))

    with executorScope("process", 2, startMethod) as executor:
        assert asyncio.run(main(executor)) == [0, 1, 4, 9, 16, 25]


@pytest.mark.parametrize("kind", ["thread", "inline"])
def test_bridge_raises_the_worker_exception(kind: ExecutorKind) -> None:
    async def main(executor: TaskExecutor) -> int:
        return await runInExecutor(executor, fail, "worker said no")

    with executorScope(kind, 1) as executor, pytest.raises(ValueError, match=r"^worker said no$"):
        asyncio.run(main(executor))


def failInsideScope(before: set[multiprocessing.process.BaseProcess]) -> int:
    """Start two workers in a scope, then fail; return how many workers had started."""
    with executorScope("process", 2, "fork") as executor:
        warmUp(executor, 2)
        started = len(set(multiprocessing.active_children()) - before)
        raise KeyError(started)


def test_scope_stops_its_workers_when_the_body_raises() -> None:
    before = set(multiprocessing.active_children())
    with pytest.raises(KeyError) as raised:
        failInsideScope(before)
    assert raised.value.args == (2,)
    assert set(multiprocessing.active_children()) <= before


def slowSquare(x: int) -> int:
    time.sleep(0.3)
    return x * x


@pytest.mark.parametrize("startMethod", ["fork", "spawn"])
def test_scope_error_path_after_cancelled_submissions_leaves_no_thread_and_no_worker(
    startMethod: StartMethod,
) -> None:
    """Cancelled queued futures, then an error: the pool's manager thread must not fail them again.

    Killing the workers before the shutdown made 3.11's manager thread raise
    InvalidStateError on futures asyncio had cancelled (an unhandled thread
    exception, an error under pytest) and left its queue feeder thread running.
    """

    async def cancelThenFail(executor: TaskExecutor) -> None:
        tasks = [asyncio.create_task(runInExecutor(executor, slowSquare, n)) for n in range(8)]
        await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise KeyError("after the cancellations")

    children = set(multiprocessing.active_children())
    threads = set(threading.enumerate())
    with pytest.raises(KeyError), executorScope("process", 2, startMethod) as executor:
        asyncio.run(cancelThenFail(executor))
    assert set(multiprocessing.active_children()) <= children
    assert set(threading.enumerate()) <= threads


def test_warmUp_returns_once_every_worker_answered() -> None:
    # Inline: the caller answers the first round, three 20 ms holds one after another.
    assert 0.06 <= warmUp(InlineExecutor(), 3) < 0.5
    with executorScope("thread", 3) as pool:
        assert warmUp(pool, 3) >= 0.02  # one round: each task holds its worker 20 ms
        holders = [pool.submit(_workerIdentity, 0.05, ()) for _ in range(3)]
        assert len({holder.result(timeout=30) for holder in holders}) == 3


def test_settleThreads_waits_until_joined_threads_leave_the_os_count() -> None:
    with executorScope("thread", 2) as pool:
        assert [pool.submit(abs, -n).result(timeout=30) for n in range(4)] == [0, 1, 2, 3]
    settleThreads()
    count = _osThreadCount()
    assert count is None or count == threading.active_count()


def imported(name: str) -> bool:
    return name in sys.modules


def test_warm_up_imports_the_preloaded_modules_in_each_worker() -> None:
    # colorsys: a standard module that neither pytest, shared nor this file imports. Forked
    # workers start with the parent's modules, so the parent must not have it either.
    assert "colorsys" not in sys.modules
    with executorScope("process", 1, "fork") as executor:
        assert executor.submit(imported, "colorsys").result(timeout=30) is False
    with executorScope("process", 1, "fork") as executor:
        warmUp(executor, 1, preload=("colorsys",))
        assert executor.submit(imported, "colorsys").result(timeout=30) is True
    assert "colorsys" not in sys.modules


def test_warm_up_starts_every_worker() -> None:
    with executorScope("process", 2, "fork") as executor:
        seconds = warmUp(executor, 2)
        pids = {executor.submit(os.getpid).result(timeout=30) for _ in range(8)}
    assert seconds >= 0.02  # at least one round of 20 ms holds
    assert os.getpid() not in pids


def test_stop_children_spares_the_excluded() -> None:
    assert stopChildren(exclude=set(multiprocessing.active_children())) == 0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: makeExecutor("process", 0), r"^workers must be >= 1 and <= 256, got 0$"),
        (lambda: makeExecutor("gpu", 2), r"^executor must be one of process, thread, inline, dask, got 'gpu'$"),  # type: ignore[arg-type]  # a bad kind on purpose
        (
            lambda: makeExecutor("process", 2, "vfork"),  # type: ignore[arg-type]  # a bad start method on purpose
            r"^start method must be one of fork, spawn, forkserver, got 'vfork'$",
        ),
    ],
)
def test_make_executor_rejects_bad_input(make: Callable[[], TaskExecutor], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


# --------------------------------------------------------------- randomness


def test_make_rng_depends_only_on_seed_and_keys() -> None:
    assert makeRng(1, "a", 2).random() == makeRng(1, "a", 2).random()
    assert makeRng(1, "a", 2).random() != makeRng(1, "a", 3).random()
    assert makeRng(1, "a", 2).random() != makeRng(2, "a", 2).random()


# -------------------------------------------------------------- measurement


def test_stopwatch_measures_and_freezes_on_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter([10.0, 10.25, 99.0])
    monkeypatch.setattr("shared.time.perf_counter", lambda: next(ticks))
    with Stopwatch() as watch:
        pass
    assert watch.elapsed == 0.25
    assert watch.elapsed == 0.25  # frozen: the clock is not read again once stopped
    with pytest.raises(RuntimeError, match=r"^stopwatch was never started$"):
        _ = Stopwatch().elapsed


def test_percentile_known_values() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    assert percentile(values, 90) == pytest.approx(3.7)


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match=r"^percentile of an empty sequence$"):
        percentile([], 50)
    with pytest.raises(ConfigError, match=r"^pct must be >= 0.0 and <= 100.0, got 101$"):
        percentile([1.0], 101)


@given(st.lists(finite, min_size=1, max_size=50), st.floats(min_value=0, max_value=100))
def test_percentile_lies_between_min_and_max(values: list[float], pct: float) -> None:
    assert min(values) <= percentile(values, pct) <= max(values)


@given(st.lists(finite, min_size=1, max_size=50), st.floats(0, 100), st.floats(0, 100))
def test_percentile_is_monotone_in_pct(values: list[float], p: float, q: float) -> None:
    low, high = sorted((p, q))
    assert percentile(values, low) <= percentile(values, high) + 1e-6 * (1 + max(map(abs, values)))


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=2, max_size=40))
def test_percentile_matches_statistics_inclusive_quartiles(values: list[float]) -> None:
    quartiles = statistics.quantiles(values, n=4, method="inclusive")
    for expected, pct in zip(quartiles, (25, 50, 75), strict=True):
        assert percentile(values, pct) == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_speedup_efficiency_and_bound() -> None:
    assert speedup(10.0, 4.0) == 2.5
    assert speedup(1.0, 0.0) == math.inf
    assert efficiency(2.0, 4.0) == 0.5
    assert efficiency(2.0, 0.0) == 0.0
    assert parallelBound(10, 3, 2) == 2
    assert parallelBound(10, 3, 8) == 3
    assert parallelBound(1, 3, 8) == 1
    assert 1 <= parallelBound(100, 100) <= (os.cpu_count() or 1)


def test_require_range_names_value_and_bounds() -> None:
    requireRange("x", 5, 1, 10)
    with pytest.raises(ConfigError, match=r"^x must be >= 1 and <= 10, got 11$"):
        requireRange("x", 11, 1, 10)
    with pytest.raises(ConfigError, match=r"^rate must be >= 0.0, got -1.5$"):
        requireRange("rate", -1.5, 0.0)


# ------------------------------------------------------------------ reports

cellText = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)
cell = st.one_of(cellText, st.integers(-(10**6), 10**6), st.floats(-1e5, 1e5, allow_nan=False))


@given(
    st.integers(1, 5).flatmap(
        lambda n: st.tuples(
            st.lists(cellText, min_size=n, max_size=n), st.lists(st.lists(cell, min_size=n, max_size=n), max_size=8)
        )
    )
)
def test_format_table_has_a_header_a_rule_and_one_line_per_row(table: tuple[list[str], list[list[object]]]) -> None:
    headers, rows = table
    text = formatTable(headers, rows)  # type: ignore[arg-type]  # hypothesis gives object-typed cells
    lines = text.split("\n")
    assert len(lines) == len(rows) + 2
    rule = lines[1]
    assert set(rule) <= {"-", " "}
    assert all(len(line) <= len(rule) for line in lines)
    for header in headers:
        assert header in lines[0]


def test_format_table_aligns_numbers_right_and_text_left() -> None:
    text = formatTable(("name", "n"), [("a", 1), ("bbb", 100)], title="T")
    assert text.split("\n") == ["T", "name    n", "----  ---", "a       1", "bbb   100"]


def test_format_table_rejects_ragged_rows() -> None:
    with pytest.raises(ConfigError, match=r"^every row must have 2 cells, got 1: \('x',\)$"):
        formatTable(("a", "b"), [("x",)])


WORDS = st.text(alphabet="abcdefgh", min_size=1, max_size=12)


@given(st.lists(st.lists(WORDS, min_size=1, max_size=30).map(" ".join), min_size=4, max_size=4), st.integers(0, 9))
def test_a_wide_table_wraps_its_text_to_the_width_and_keeps_every_word(cells: list[str], number: int) -> None:
    table = formatTable(("ex", "the lecture says", "measured", "why not"), [(number, *cells[:3]), (1, *cells[1:])])
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= 100
    words = Counter(" ".join([str(number), *cells[:3], "1", *cells[1:]]).split())
    assert Counter(" ".join(lines[2:]).split()) == words


def test_a_narrow_table_is_not_wrapped_and_prose_wraps_at_100() -> None:
    assert formatTable(("a", "long header"), [("x", "y")]) == "a  long header\n-  -----------\nx  y"
    assert formatTable(("a", "b"), [("one two three", "four")], width=9).splitlines()[2:] == [
        "one     four",
        "two",
        "three",
    ]
    assert [len(line) for line in prose("word " * 60).splitlines()] == [99, 99, 99]


def test_bar_scales_and_clamps() -> None:
    assert bar(5, 10, width=10) == "#####"
    assert bar(20, 10, width=10) == "#" * 10
    assert bar(-1, 10) == ""
    assert bar(1, 0) == ""
    assert bar(math.nan, 1) == ""


# ------------------------------------------------------------------- claims


# ------------------------------------------------------- queues and models


@given(st.lists(st.tuples(st.floats(0, 10), st.integers(0, 9)), min_size=1, max_size=20), st.floats(0.1, 20))
def test_timeWeightedMean_lies_within_the_values(points: list[tuple[float, int]], end: float) -> None:
    trace = [(0.0, points[0][1]), *sorted(points)]
    mean = timeWeightedMean(trace, max(end, trace[-1][0] + 0.1))
    values = [value for _, value in trace]
    assert min(values) - 1e-9 <= mean <= max(values) + 1e-9


def test_occupancy_queue_records_every_change() -> None:
    async def run() -> tuple[tuple[float, int], ...]:
        queue: OccupancyQueue[int] = OccupancyQueue(2)
        await queue.put(1)
        queue.put_nowait(2)
        await queue.get()
        return queue.trace

    assert [size for _, size in asyncio.run(run())] == [0, 1, 2, 1]


def test_linearFit_on_a_line_and_on_a_constant() -> None:
    line = linearFit([1.0, 2.0, 3.0], [5.0, 7.0, 9.0])
    assert (line.slope, line.intercept) == pytest.approx((2.0, 3.0))
    assert line.rSquared == pytest.approx(1.0)
    flat = linearFit([1.0, 2.0, 3.0], [4.0, 4.0, 4.0])
    assert flat.slope == pytest.approx(0.0)
    assert math.isnan(flat.rSquared)


def test_coefficientOfVariation() -> None:
    assert coefficientOfVariation([10.0, 10.0, 10.0]) == 0.0
    assert coefficientOfVariation([9.0, 11.0]) == pytest.approx(math.sqrt(2) / 10)
