"""Benchmarks: medians of repeats against the ideal bound of a latency model.

Each lecture's lab module lists its ``BENCHMARKS``; ``invoke bench`` runs them,
prints each ``BenchReport`` (a table, a chart, the notes that name what takes the
missing efficiency) and writes them as JSON on request.
"""

from __future__ import annotations

import asyncio
import heapq
import multiprocessing
import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Final, final

from lab.report import barChart
from shared import (
    DEFAULT_SEED,
    REPORT_WIDTH,
    Log,
    StartMethod,
    Stopwatch,
    formatTable,
    prose,
    requireRange,
    runInExecutor,
    speedup,
)


def timeRepeats(fn: Callable[[], object], repeats: int) -> list[float]:
    """Seconds taken by each of ``repeats`` calls of ``fn``; report their median, not the best."""
    requireRange("repeats", repeats, 1, 10_000)
    durations: list[float] = []
    for _ in range(repeats):
        with Stopwatch() as watch:
            fn()
        durations.append(watch.elapsed)
    return durations


def interleavedRepeats(fns: Sequence[Callable[[], object]], repeats: int) -> list[list[float]]:
    """Seconds of each call of each ``fn``, ``repeats`` rounds, each round calling every ``fn`` once.

    Timing the contenders in turn, rather than one block after another, spreads a
    burst of load from other processes over all of them: their medians stay
    comparable on a shared machine. The order rotates from one round to the next,
    so no ``fn`` always goes first (cold caches) or last.
    """
    requireRange("repeats", repeats, 1, 10_000)
    durations: list[list[float]] = [[] for _ in fns]
    for repeat in range(repeats):
        shift = repeat % len(fns) if fns else 0
        for index in [*range(shift, len(fns)), *range(shift)]:
            with Stopwatch() as watch:
                fns[index]()
            durations[index].append(watch.elapsed)
    return durations


def interleavedMedians(runs: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each labelled run over ``repeats`` rounds of ``interleavedRepeats``."""
    durations = interleavedRepeats(list(runs.values()), repeats)
    return {label: statistics.median(times) for label, times in zip(runs, durations, strict=True)}


@dataclass(frozen=True, slots=True)
class BenchRow:
    """One architecture (or one size of a sweep): its median time beside the baseline and the ideal.

    ``idealSeconds`` comes from the exercise's own latency model with the CPU share
    divided by min(workers, cores): the time no implementation on this machine can beat.
    """

    label: str
    medianSeconds: float
    baselineSeconds: float
    idealSeconds: float
    repeats: int
    samples: tuple[float, ...] = ()  # the seconds of each repeat, when the row kept them

    @classmethod
    def of(cls, label: str, samples: Sequence[float], baselineSeconds: float, idealSeconds: float) -> BenchRow:
        """A row from the seconds of its repeats: the median is quoted, the spread kept."""
        return cls(label, statistics.median(samples), baselineSeconds, idealSeconds, len(samples), tuple(samples))

    @property
    def spread(self) -> str:
        """The range of the repeats in ms ("12.1-13.4"), or "" when the row did not keep them."""
        return f"{min(self.samples) * 1e3:.3g}-{max(self.samples) * 1e3:.3g}" if self.samples else ""

    @property
    def beyondIdeal(self) -> str:
        """A row faster than its own lower bound, in words ("" when it is not).

        No run can beat the ideal of its model, so a median under it means the bound
        (its calibration) or the measurement is off; when even the slowest repeat beats
        it, the calibration is off by at least that much.
        """
        if self.efficiency <= 1.0:
            return ""
        slowest = max(self.samples) if self.samples else self.medianSeconds
        if slowest < self.idealSeconds:
            return (
                f"{self.label}: faster than its bound at every repeat: the bound's calibration is off by "
                f"{1 - slowest / self.idealSeconds:.0%} or more"
            )
        return f"{self.label}: its median beats its bound ({self.efficiency:.0%}), within the spread of its repeats"

    @property
    def speedup(self) -> float:
        """Baseline median over this row's median."""
        return speedup(self.baselineSeconds, self.medianSeconds)

    @property
    def efficiency(self) -> float:
        """Ideal time over measured time (1.0 = the bound was reached)."""
        return efficiency(self.idealSeconds, self.medianSeconds)


EFFICIENCY_TARGET: Final = 0.85


@dataclass(frozen=True, slots=True)
class BenchReport:
    """One benchmark: its rows and the notes that name what takes the missing efficiency."""

    key: str
    title: str
    rows: tuple[BenchRow, ...]
    notes: tuple[str, ...] = ()
    judged: bool = True  # False where "ideal" is a reference, not an architecture's bound

    @property
    def belowTarget(self) -> tuple[BenchRow, ...]:
        """Rows under the 85% efficiency target (none for a report that is not judged)."""
        return tuple(row for row in self.rows if self.judged and row.efficiency < EFFICIENCY_TARGET)

    @property
    def beyondIdeal(self) -> tuple[str, ...]:
        """One line per row faster than its bound (a judged report only): never counted as met."""
        return tuple(row.beyondIdeal for row in self.rows if self.judged and row.beyondIdeal)


def formatBench(report: BenchReport) -> str:
    """A benchmark as a table (median and spread, baseline, ideal, speedup, efficiency), a chart, notes.

    An efficiency past 100% is flagged under the table ("faster than its bound"),
    never shown as a target met.
    """
    spreads = any(row.samples for row in report.rows)
    rows = [
        (
            row.label,
            row.medianSeconds * 1e3,
            *((row.spread,) if spreads else ()),
            row.baselineSeconds * 1e3,
            row.idealSeconds * 1e3,
            f"{row.speedup:.2f}x",
            f"{row.efficiency:.0%}" + (" (!)" if report.judged and row.efficiency > 1.0 else ""),
        )
        for row in report.rows
    ]
    headers = ("run", "median ms", *(("spread ms",) if spreads else ()), "baseline ms", "ideal ms", "speedup")
    table = formatTable((*headers, "efficiency"), rows, title=f"{report.key}  {report.title}")
    chart = barChart([(row.label, row.efficiency * 100) for row in report.rows], unit="% of ideal")
    flags = [prose(f"(!) {line}") for line in report.beyondIdeal]
    notes = [prose(line) if len(line) > REPORT_WIDTH else line for note in report.notes for line in note.splitlines()]
    return "\n".join([table, "", chart, *flags, *notes])


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """What ``invoke bench`` decides for every benchmark."""

    seed: int = DEFAULT_SEED
    quick: bool = False
    repeats: int = 5
    startMethod: StartMethod | None = None


@dataclass(frozen=True, slots=True)
class Benchmark:
    """One registry entry of a lecture's ``BENCHMARKS``."""

    key: str
    title: str
    run: Callable[[BenchOptions, Log], BenchReport] = field(repr=False)


def machineBusySeconds() -> float | None:
    """CPU seconds the whole machine has spent busy, all cores (time stolen by a hypervisor included).

    Read from /proc/stat (Linux); None where it does not exist.
    """
    try:
        with open("/proc/stat", encoding="ascii") as stat:  # noqa: PTH123 - shared.py does not import pathlib
            ticks = [int(value) for value in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (ticks + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def ownCpuSeconds() -> float:
    """CPU seconds of this process and of the children it has reaped (a pool's workers, once shut down)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


@final
class ForeignLoad:
    """How busy other processes kept the cores while a block ran: the machine's busy time minus ours.

    On a shared machine a parallel run loses more to other work than a
    sequential one does; this says how much there was. Ours counts only reaped
    children, so workers a forkserver started (not our children) would count
    as foreign: leave it unused then. Linux only; elsewhere it reports None.
    """

    __slots__ = ("_busy", "_foreign", "_own", "_watch")

    def __init__(self) -> None:
        self._busy: float | None = None
        self._own = 0.0
        self._watch = Stopwatch()
        self._foreign: float | None = None

    def __enter__(self) -> ForeignLoad:
        self._busy = machineBusySeconds()
        self._own = ownCpuSeconds()
        self._watch.start()
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = self._watch.stop()
        busy = machineBusySeconds()
        if self._busy is None or busy is None or elapsed <= 0:
            return
        others = (busy - self._busy) - (ownCpuSeconds() - self._own)
        self._foreign = max(0.0, others / elapsed)

    @property
    def cores(self) -> float | None:
        """Cores other processes kept busy on average (None if unknown or still running)."""
        return self._foreign


def foreignLoadNote(load: ForeignLoad, startMethod: StartMethod | None, cores: int) -> tuple[str, ...]:
    """A note when other processes took a noticeable share of the cores (0.2 of a core or more)."""
    method = startMethod or multiprocessing.get_context().get_start_method()
    if load.cores is None or load.cores < 0.2 or method == "forkserver":
        return ()
    return (
        (
            f"(Other processes kept {load.cores:.1f} of the {cores} cores busy on average during this benchmark: "
            "the pool runs lose more to that than the sequential baseline does.)"
        ),
    )


# ============================================================================
# The bridge: what runInExecutor costs beside loop.run_in_executor and a blocking call
# ============================================================================


def nothing() -> None:
    """The task the bridge benchmark sends: the round trip is all there is to time."""


async def roundTrips(pool: ProcessPoolExecutor, calls: int) -> dict[str, list[float]]:
    """Per-call seconds of a no-op three ways, interleaved so that drift hits all three alike."""
    loop = asyncio.get_running_loop()

    async def raw() -> None:
        pool.submit(nothing).result(timeout=60)

    async def bridge() -> None:
        await runInExecutor(pool, nothing)

    async def native() -> None:
        await loop.run_in_executor(pool, nothing)

    ways = {"submit().result()": raw, "runInExecutor (bridge)": bridge, "loop.run_in_executor": native}
    durations: dict[str, list[float]] = {label: [] for label in ways}
    order = list(ways)
    for call in range(calls):
        for label in order[call % 3 :] + order[: call % 3]:
            with Stopwatch() as watch:
                await ways[label]()
            durations[label].append(watch.elapsed)
    return durations


def benchBridge(options: BenchOptions, log: Log) -> BenchReport:
    """Median round trip of a no-op on a warm raw ProcessPoolExecutor: blocking, bridge, run_in_executor."""
    calls = 200 if options.quick else 1_000
    log(f"bridge overhead: {calls} round trips x 3 ways on a 1-worker ProcessPoolExecutor")
    context = multiprocessing.get_context(options.startMethod)
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        pool.submit(nothing).result(timeout=60)
        durations = asyncio.run(roundTrips(pool, calls))
    medians = {label: statistics.median(times) for label, times in durations.items()}
    raw, bridged, native = medians.values()
    rows = tuple(BenchRow(label, median, raw, raw, calls) for label, median in medians.items())
    return BenchReport(
        "shared",
        f"executor bridge overhead, median of {calls} round trips",
        rows,
        (
            f"bridge vs raw submit().result(): {(bridged - raw) * 1e6:+.1f} us per call (an event-loop wake-up);",
            f"bridge vs loop.run_in_executor: {(bridged - native) * 1e6:+.1f} us per call (both wrap_future(submit)).",
        ),
        judged=False,
    )


BRIDGE: Final = Benchmark("shared", "executor bridge overhead vs a raw submit().result()", benchBridge)


def efficiency(idealSeconds: float, measuredSeconds: float) -> float:
    """Ideal time over measured time: 1.0 means the architecture reached its bound."""
    return idealSeconds / measuredSeconds if measuredSeconds > 0 else 0.0


def flowMakespan(stages: Sequence[tuple[Sequence[float], int]]) -> float:
    """When the last item leaves a flow of stages, each a list of per-item durations and a server count.

    Items enter the first stage in order, each on the next free server; an item
    enters the next stage as soon as it leaves this one, served in order of
    arrival. With overheads ignored this is the best a pool of each size can do,
    so it is the latency model's lower bound (one stage: I/O spread over threads).
    """
    ready: list[float] | None = None
    for durations, servers in stages:
        requireRange("servers", servers, 1)
        arrivals = [0.0] * len(durations) if ready is None else ready
        free = [0.0] * servers
        finished = [0.0] * len(durations)
        for index in sorted(range(len(durations)), key=lambda i: arrivals[i]):
            start = max(arrivals[index], heapq.heappop(free))
            finished[index] = start + durations[index]
            heapq.heappush(free, finished[index])
        ready = finished
    return max(ready or [0.0])
