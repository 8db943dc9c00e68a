"""Lecture 37: Big Project Stage 4 - Measurable Pipeline (Profiling and Metrics).

Exercises (spec: lecture37.txt):

1. Profile, identify, fix, re-profile: ``detectAnomalies`` and ``detectAnomaliesFast``.
2. ``@measuredStage`` on a three-stage generator pipeline; find the real bottleneck.
3. ``__slots__`` and memory: tracemalloc, ``sys.getsizeof``, attribute reads, typo safety.
4. A measurement dashboard: ``PipelineMeasurementContext``, stability, a controlled leak.

Run one with ``python l37.py --ex 1`` (or ``invoke run --lecture 37 --ex 1``);
``--all`` runs every exercise, ``--quick`` uses small sizes, ``--seed`` fixes every
random draw. Standard library and ``shared.py`` only.

Everything here is single-threaded on purpose: what is measured is the cost of
Python code on one core, and cProfile only sees the thread that enabled it on
3.11 (and misattributes other threads' calls on 3.12+). There is no pool in this
lecture, so ``--executor`` and ``--start-method`` are accepted (every lecture
shares one command line) but unused.

Closing note - a full run (``--all``) on CPython 3.11.7, 2 shared cores:

- Exercise 1: slow 85-100 ms, fast 6-7 ms, speedup 14-15x (timeit best of 20).
  The slow loop's cost is the generator-fed variance sum (80-90% per record),
  not the slice (3%). Fast / floor = 2.8-3.2x: the sliding statistics' dozen
  float operations per record cost more than the output dict itself. The
  sliding Welford update matches the slow flags on all six hard data sets; the
  lecture's running sum of squares gets 9,651 flags wrong over five of them.
  ``invoke bench`` (37.1-sweep): from 1k to 100k records both versions stay
  linear, the speedup stays 10-15x and fast / floor 2.3-3.4x at every size
  (lowest at 50k-100k, where the input outgrows the caches and the floor rises).
- Exercise 2: raw latency peaks at the last stage (MovingAvgTransform); self
  time names WindowNormalizer (419 of 435 ms). After the fix: 17 ms, no stage
  dominates. @measuredStage costs ~0.8 µs per record and stage. ``invoke bench``
  (37.2): the speedup grows with N, 6x at 1k records to 43x at 10k (O(N²) ->
  O(N)); the fixed pipeline runs at 93-98% of its output-building floor.
- Exercise 3: bytes per instance 128 (regular), 80 (slots), 96 (NamedTuple),
  128 (dataclass); reads 9.7 / 9.9 / 21 / 9.8 ns, 34 ns once ``__dict__`` has
  been touched (which also adds 64 B per instance).
- Exercise 4: the leak grows 3,419 KB per run (R² = 1.0000), the fix 4 KB per
  run; per-stage throughput CV 2-9% when every run has a core to itself;
  cProfile + tracemalloc make the run 8-9x slower.

On 3.12 and 3.13 (``.venv-3.12``, ``.venv-3.13``) the reports say what changed:
a regular instance is 120 B (the object shrank from 56 to 48 B in 3.12); on
3.13 its values sit inline in the object's own block, and a touched ``__dict__``
no longer slows reads (8.7 vs 25 ns on 3.12). cProfile moved onto
sys.monitoring in 3.12: call-free code runs at full speed under it (1.0x
against 1.7x on 3.11), and it now sees every thread's calls, which is one more
reason this lecture stays single-threaded. cProfile + tracemalloc together cost
15-18x there against 9x on 3.11.
"""

from __future__ import annotations

import contextlib
import cProfile
import functools
import gc
import itertools
import math
import platform
import statistics
import sys
import time
import timeit
import tracemalloc
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from types import CodeType, TracebackType
from typing import ClassVar, Final, Literal, NamedTuple, ParamSpec, Protocol, TypedDict, TypeVar, cast, final

from shared import (
    ConfigError,
    Exercise,
    LinearFit,
    Log,
    RunOptions,
    Stopwatch,
    barChart,
    coefficientOfVariation,
    formatTable,
    lectureMain,
    linearFit,
    makeRng,
    percentile,
    requireRange,
    silent,
    speedup,
)

LECTURE = 37
P = ParamSpec("P")
PROFILER_USES_MONITORING: Final = sys.version_info >= (3, 12)  # cProfile moved onto sys.monitoring (PEP 669)
PYTHON: Final = f"{platform.python_implementation()} {platform.python_version()}"

# ============================================================================
# Profiling helpers: cProfile results as rows a report can tabulate and a claim can read
# ============================================================================


@dataclass(frozen=True, slots=True)
class ProfileRow:
    """One function of a cProfile run: calls (generator resumptions count as calls) and times."""

    function: str
    calls: int
    totalMs: float
    cumulativeMs: float


def _codeLabel(code: CodeType | str) -> str:
    """``file.py:line(qualname)`` for Python code, cProfile's own text for built-ins."""
    if isinstance(code, str):
        return code
    fileName = code.co_filename.replace("\\", "/").rsplit("/", 1)[-1]
    return f"{fileName}:{code.co_firstlineno}({code.co_qualname})"


def profileRows(
    profiler: cProfile.Profile, *, sortBy: Literal["cumulative", "tottime"], limit: int
) -> tuple[ProfileRow, ...]:
    """The top ``limit`` functions of a finished profile, from ``Profile.getstats``.

    Built from the entries rather than pstats' printout so that reports can
    tabulate them and claims can read them; the profiler's own ``disable`` is left out.
    """
    rows = [
        ProfileRow(_codeLabel(entry.code), entry.callcount, entry.inlinetime * 1e3, entry.totaltime * 1e3)
        for entry in profiler.getstats()
        if not (isinstance(entry.code, str) and "_lsprof.Profiler" in entry.code)
    ]
    key = (lambda row: row.cumulativeMs) if sortBy == "cumulative" else (lambda row: row.totalMs)
    return tuple(sorted(rows, key=key, reverse=True)[:limit])


def formatProfileRows(rows: Sequence[ProfileRow], *, title: str = "") -> str:
    """A profile as a table: calls, own time, cumulative time."""
    return formatTable(
        ("function", "calls", "own ms", "cumulative ms"),
        [(row.function, row.calls, f"{row.totalMs:.2f}", f"{row.cumulativeMs:.2f}") for row in rows],
        title=title,
    )


# ============================================================================
# Exercise 1 - Profile, identify, fix, re-profile
# ============================================================================

WINDOW_SIZE: Final = 50
CANCELLATION_GUARD: Final = 1e-6
HardKind = Literal["offset 1e9", "offset 1e12", "spread 1e-9", "level shifts", "plateaus", "mixed scales"]
HARD_KINDS: Final[tuple[HardKind, ...]] = (
    "offset 1e9",
    "offset 1e12",
    "spread 1e-9",
    "level shifts",
    "plateaus",
    "mixed scales",
)


class Reading(TypedDict):
    """The spec's input record: ``{"id": i, "value": random.gauss(50, 10)}``."""

    id: int
    value: float


class FlaggedReading(TypedDict):
    """``detectAnomalies``' output: the reading plus its flag and its distance from the window mean."""

    id: int
    value: float
    anomaly: bool
    zScore: float


def detectAnomalies(records: Iterable[Reading], threshold: float = 2.5) -> list[FlaggedReading]:
    """Flag records whose value deviates more than threshold std-devs from the window mean."""
    results: list[FlaggedReading] = []
    window: list[float] = []
    for r in records:
        window.append(r["value"])
        if len(window) > 50:
            window = window[1:]  # O(N) slice: creates new list every record
        mean = sum(window) / len(window)  # O(N) every record
        std = (sum((x - mean) ** 2 for x in window) / len(window)) ** 0.5
        isAnomaly = abs(r["value"] - mean) > threshold * std
        results.append({**r, "anomaly": isAnomaly, "zScore": abs(r["value"] - mean)})
    return results


def detectAnomaliesRunningSums(records: Iterable[Reading], threshold: float = 2.5) -> list[FlaggedReading]:
    """Requirement 3 taken literally: deque, running sum and running sum of squares.

    Kept to show why ``detectAnomaliesFast`` does not use it: ``sumSq/n - mean**2``
    subtracts two numbers of size offset² to get one of size spread², so with an
    offset of 1e9 and a spread of 1 every digit cancels. The variance is clamped at 0
    because cancellation can make it negative, and ``(-x) ** 0.5`` is a complex number.
    """
    results: list[FlaggedReading] = []
    window: deque[float] = deque(maxlen=WINDOW_SIZE)
    runningSum = 0.0
    runningSumSq = 0.0
    for r in records:
        newVal = r["value"]
        if len(window) == WINDOW_SIZE:
            droppedVal = window[0]
            runningSum += newVal - droppedVal
            runningSumSq += newVal**2 - droppedVal**2
        else:
            runningSum += newVal
            runningSumSq += newVal**2
        window.append(newVal)
        windowSize = len(window)
        mean = runningSum / windowSize
        variance = max(0.0, runningSumSq / windowSize - mean**2)
        deviation = abs(newVal - mean)
        results.append({**r, "anomaly": deviation > threshold * math.sqrt(variance), "zScore": deviation})
    return results


def windowMoments(window: Iterable[float]) -> tuple[float, float]:
    """Mean and sum of squared deviations, two-pass: exact to rounding, O(window)."""
    values = list(window)
    mean = sum(values) / len(values)
    return mean, sum([(v - mean) ** 2 for v in values])


def detectAnomaliesFast(
    records: Sequence[Reading], threshold: float = 2.5, *, resyncEvery: int = 1024
) -> list[FlaggedReading]:
    """``detectAnomalies`` in O(1) per record: a deque and a sliding Welford update.

    The window keeps its mean and M2 (sum of squared deviations), updated when a
    value ``x`` enters and ``y`` leaves: ``mean += (x - y) / n`` and
    ``M2 += (x - y) * (x - newMean + y - oldMean)``. Unlike the running sum of
    squares it never subtracts two offset-sized numbers, so an offset does not
    cancel the variance away. Two things still can, and both trigger an exact
    two-pass recount of the 50 values (O(1) amortised):

    - every ``resyncEvery`` records, so rounding cannot drift without bound;
    - when M2 falls below a millionth of its recent peak: after a level shift
      leaves the window, M2's rounding error is relative to the peak, not to
      what is left (a plateau's M2 falls to 0 this way).

    Flags match the slow version's wherever the spread spans many ulps of the
    offset (tested down to a spread of 1e-12 x the offset). Below that the values
    are a handful of representable numbers and either version's flags are
    rounding noise.

    The comparison ``dev > threshold * sqrt(M2 / n)`` is done squared, which saves
    a square root per record. Output dicts are built with ``dict(r, ...)``: the same
    keys in the same order as ``{**r, ...}``, and faster (it clones r's key table).
    """
    requireRange("resyncEvery", resyncEvery, 1)
    results: list[FlaggedReading] = []
    append = cast("Callable[[object], None]", results.append)  # dict(r, **kw) is a FlaggedReading; mypy sees a dict
    window: deque[float] = deque(maxlen=WINDOW_SIZE)
    push = window.append
    mean = 0.0
    m2 = 0.0
    for count, r in enumerate(records[:WINDOW_SIZE], start=1):
        x = r["value"]
        push(x)
        delta = x - mean
        mean += delta / count
        m2 += delta * (x - mean)
        deviation = abs(x - mean)
        std = math.sqrt(m2 / count) if m2 > 0.0 else 0.0
        append(dict(r, anomaly=deviation > threshold * std, zScore=deviation))
    limit = threshold * threshold / WINDOW_SIZE
    step = 1.0 / WINDOW_SIZE
    for start in range(WINDOW_SIZE, len(records), resyncEvery):
        mean, m2 = windowMoments(window)
        peak, lowest = m2, m2 * CANCELLATION_GUARD
        for r in records[start : start + resyncEvery]:
            x = r["value"]
            y = window[0]
            push(x)  # maxlen=50 drops y
            d = x - y
            newMean = mean + d * step
            m2 += d * (x - newMean + y - mean)
            mean = newMean
            if m2 > peak:
                peak, lowest = m2, m2 * CANCELLATION_GUARD
            elif m2 < lowest:
                mean, m2 = windowMoments(window)
                peak, lowest = m2, m2 * CANCELLATION_GUARD
            deviation = x - mean
            if deviation < 0.0:
                deviation = -deviation
            append(dict(r, anomaly=deviation * deviation > limit * m2, zScore=deviation))
    return results


def buildOutputWithWindow(records: Iterable[Reading]) -> list[FlaggedReading]:
    """The floor plus reading each value and sliding the deque: everything but the statistics."""
    results: list[FlaggedReading] = []
    append = cast("Callable[[object], None]", results.append)  # as in detectAnomaliesFast
    window: deque[float] = deque(maxlen=WINDOW_SIZE)
    push = window.append
    for r in records:
        x = r["value"]
        push(x)
        append(dict(r, anomaly=False, zScore=x))
    return results


def buildOutputFloor(records: Iterable[Reading]) -> list[FlaggedReading]:
    """Only the mandated output, one new dict per record, no statistics: the floor.

    No implementation that returns these dicts can be faster than this.
    """
    return cast(list[FlaggedReading], [dict(r, anomaly=False, zScore=0.0) for r in records])


def makeAnomalyRecords(count: int, anomalies: int, seed: int) -> list[Reading]:
    """Requirement 1: gauss(50, 10) values, ``anomalies`` of them set to 150.0 at random indices."""
    rng = makeRng(seed, LECTURE, 1, "records")
    records: list[Reading] = [{"id": i, "value": rng.gauss(50, 10)} for i in range(count)]
    for index in rng.sample(range(count), anomalies):
        records[index]["value"] = 150.0
    return records


def makeHardRecords(kind: HardKind, count: int, seed: int) -> list[Reading]:
    """Data that is hard for floating point: each kind breaks a different shortcut.

    Large offsets cancel a running sum of squares; a 1e-9 spread around 1.0 does
    too; level shifts and plateaus make M2 fall by many orders of magnitude, where
    an incremental update keeps an error relative to the old, large M2; mixed
    scales put values of 1e-6 and 1e6 in one window. Each has 1% spikes of 8 spreads.
    """
    rng = makeRng(seed, LECTURE, 1, "hard", kind)
    values: list[float] = []
    for i in range(count):
        spike = 8.0 if rng.random() < 0.01 else 0.0
        noise = rng.gauss(0, 1) + spike
        if kind == "offset 1e9":
            values.append(1e9 + noise)
        elif kind == "offset 1e12":
            values.append(1e12 + noise)
        elif kind == "spread 1e-9":
            values.append(1.0 + 1e-9 * noise)
        elif kind == "level shifts":
            values.append((1e8 if (i // 500) % 2 else 0.0) + noise)
        elif kind == "plateaus":
            values.append(float(round(noise)) if (i // 300) % 2 else 3.3)
        else:
            values.append(rng.choice((1e-6, 1.0, 1e6)) * noise)
    return [{"id": i, "value": value} for i, value in enumerate(values)]


@dataclass(frozen=True, slots=True)
class Agreement:
    """How two detectors' outputs compare, record by record.

    A flag mismatch is a rounding tie when the reference's own margin,
    ``|zScore - threshold * std|``, is within ``TIE_ULPS`` ulps of the window's
    largest magnitude: there the flag is decided by the last bits of rounding,
    and two correct summation orders can disagree. Any other mismatch is real.
    """

    records: int
    flagMismatches: int
    roundingTies: int
    maxZScoreDiff: float
    maxRelativeZScoreDiff: float

    @property
    def realMismatches(self) -> int:
        """Flag mismatches that rounding does not explain."""
        return self.flagMismatches - self.roundingTies

    @property
    def zScoresTo6Decimals(self) -> bool:
        """unittest's ``assertAlmostEqual(places=6)`` for every record: ``round(a - b, 6) == 0``."""
        return round(self.maxZScoreDiff, 6) == 0


TIE_ULPS: Final = 64


def _isRoundingTie(values: Sequence[float], index: int, zScore: float, threshold: float) -> bool:
    """Whether the slow version's flag at ``index`` was decided within ``TIE_ULPS`` ulps of its threshold."""
    window = values[max(0, index - WINDOW_SIZE + 1) : index + 1]
    _, m2 = windowMoments(window)
    margin = abs(zScore - threshold * math.sqrt(m2 / len(window)))
    return margin <= TIE_ULPS * math.ulp(max(abs(v) for v in window))


def compareOutputs(
    reference: Sequence[FlaggedReading], candidate: Sequence[FlaggedReading], threshold: float = 2.5
) -> Agreement:
    """Flags and zScores of ``candidate`` against the slow version's ``reference``.

    The relative zScore error is against the larger of the value and the zScore:
    at an offset of 1e9 one ulp is 1.2e-7, so absolute decimals mean nothing there.
    """
    if len(reference) != len(candidate):
        raise ConfigError(f"outputs differ in length: {len(reference)} and {len(candidate)}")
    values = [r["value"] for r in reference]
    mismatches = ties = 0
    maxDiff = 0.0
    maxRelative = 0.0
    for index, (a, b) in enumerate(zip(reference, candidate, strict=True)):
        if a["id"] != b["id"] or a["value"] != b["value"]:
            raise ConfigError(f"record {a['id']} was not passed through unchanged")
        if a["anomaly"] != b["anomaly"]:
            mismatches += 1
            ties += _isRoundingTie(values, index, a["zScore"], threshold)
        diff = abs(a["zScore"] - b["zScore"])
        maxDiff = max(maxDiff, diff)
        maxRelative = max(maxRelative, diff / max(1.0, abs(a["value"]), a["zScore"]))
    return Agreement(len(reference), mismatches, ties, maxDiff, maxRelative)


@dataclass(frozen=True, slots=True)
class Exercise1Config:
    """The spec's numbers: 20,000 records, 200 anomalies of 150.0, threshold 2.5, timeit x 20."""

    records: int = 20_000
    anomalies: int = 200
    threshold: float = 2.5
    repetitions: int = 20
    hardRecords: int = 5_000
    profileTop: int = 12

    def __post_init__(self) -> None:
        requireRange("records", self.records, 1, 10_000_000)
        requireRange("anomalies", self.anomalies, 0, self.records)
        requireRange("threshold", self.threshold, 0.0, 1e6)
        requireRange("repetitions", self.repetitions, 1, 1_000)
        requireRange("hardRecords", self.hardRecords, 0, 10_000_000)
        requireRange("profileTop", self.profileTop, 1, 100)

    @classmethod
    def quick(cls) -> Exercise1Config:
        """A fifth of the records, five repetitions: well under 2 s."""
        return cls(records=4_000, anomalies=40, repetitions=5, hardRecords=1_500)


@dataclass(frozen=True, slots=True)
class OperationCost:
    """What one of the slow version's per-record operations costs, measured alone at full window."""

    operation: str
    nsPerRecord: float


@dataclass(frozen=True, slots=True)
class HardDataRow:
    """One hard data set: how the fast path and the lecture's running sums compare with the slow version."""

    kind: HardKind
    anomalies: int
    fast: Agreement
    runningSums: Agreement


@dataclass(frozen=True, slots=True)
class TimingSummary:
    """timeit figures for one function, in milliseconds per call."""

    label: str
    bestMs: float
    medianMs: float


@dataclass(frozen=True, slots=True)
class Exercise1Result:
    """Every figure exercise 1 measured; times in milliseconds."""

    config: Exercise1Config
    python: str
    flaggedSlow: int
    injectedFlagged: int
    slowProfile: tuple[ProfileRow, ...]
    fastProfile: tuple[ProfileRow, ...]
    slowProfiledMs: float
    fastProfiledMs: float
    profiledBytecodeRatio: float
    breakdown: tuple[OperationCost, ...]
    agreement: Agreement
    runningSumsAgreement: Agreement
    hardData: tuple[HardDataRow, ...]
    slow: TimingSummary
    fast: TimingSummary
    floor: TimingSummary
    floorWithWindow: TimingSummary

    @property
    def speedup(self) -> float:
        """Slow over fast, best of the timeit repetitions each."""
        return speedup(self.slow.bestMs, self.fast.bestMs)

    @property
    def fastOverFloor(self) -> float:
        """How far the fast path is above the cost of building its output alone (1.0 = at the floor)."""
        return self.fast.bestMs / self.floor.bestMs if self.floor.bestMs > 0 else math.inf

    @property
    def floorSpeedup(self) -> float:
        """The best speedup any implementation with this output could reach: slow over floor."""
        return speedup(self.slow.bestMs, self.floor.bestMs)

    @property
    def profiledSpeedup(self) -> float:
        """Slow over fast as cProfile saw them: inflated by the per-call cost profiling adds."""
        return speedup(self.slowProfiledMs, self.fastProfiledMs)

    @property
    def hardFlagMismatches(self) -> int:
        """Flag mismatches of the fast path summed over every hard data set."""
        return sum(row.fast.flagMismatches for row in self.hardData)

    @property
    def hardRealMismatches(self) -> int:
        """... of which rounding ties do not explain: must be 0."""
        return sum(row.fast.realMismatches for row in self.hardData)


def profileCall(
    top: int, fn: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs
) -> tuple[tuple[ProfileRow, ...], float]:
    """Run ``fn(*args)`` under cProfile; return its top functions by cumulative time and the profiled ms."""
    profiler = cProfile.Profile()
    with Stopwatch() as watch:
        profiler.runcall(fn, *args, **kwargs)
    return profileRows(profiler, sortBy="cumulative", limit=top), watch.elapsed * 1e3


def profiledBytecodeRatio(iterations: int = 200_000, repeats: int = 5) -> float:
    """How many times slower a loop that makes no calls runs under cProfile: its cost per bytecode.

    About 1.7x on 3.11, where the profiler is a ``sys.setprofile`` hook and the
    interpreter then runs every instruction through its tracing path; about 1.0x
    on 3.12+, where cProfile listens to ``sys.monitoring`` call events only.
    """

    def loop() -> float:
        total = 0.0
        for i in range(iterations):
            total += i * 0.5 - 1.0
        return total

    plain = profiled = math.inf
    for _ in range(repeats):  # taking turns, best of each: the two see the same machine
        with Stopwatch() as profiledWatch:
            cProfile.Profile().runcall(loop)
        with Stopwatch() as plainWatch:
            loop()
        profiled = min(profiled, profiledWatch.elapsed)
        plain = min(plain, plainWatch.elapsed)
    return profiled / plain


WHOLE_LOOP: Final = "the whole loop (detectAnomalies)"


def measureBreakdown(records: Sequence[Reading], repetitions: int = 5) -> tuple[OperationCost, ...]:
    """Requirement 2's question, answered by timing each of the slow loop's operations alone.

    cProfile cannot: a slice is a bytecode, not a call, so its cost hides in
    ``detectAnomalies``' own time. Here each operation runs once per record on a
    full 50-value window, as in the steady state, taking turns with the whole
    loop on the same records so that the shares compare like with like. The
    last row is the whole loop.
    """
    sample = records[:5_000]
    count = len(sample)
    window = [r["value"] for r in sample[:WINDOW_SIZE]]
    mean = sum(window) / len(window)

    def slicing() -> None:
        w = window
        for _ in range(count):
            w = w[1:]
            w.append(0.0)

    def meanSum() -> None:
        for _ in range(count):
            sum(window) / len(window)

    def varianceSum() -> None:
        for _ in range(count):
            (sum((x - mean) ** 2 for x in window) / len(window)) ** 0.5

    def emptyLoop() -> None:
        for _ in range(count):
            pass

    timings = timeInterleaved(
        (
            ("loop", emptyLoop),
            ("window = window[1:] (+ append)", slicing),
            ("sum(window) / len(window)", meanSum),
            ("sum((x - mean)**2 for x in window)", varianceSum),
            (WHOLE_LOOP, lambda: detectAnomalies(sample)),
        ),
        repetitions,
    )
    loop = timings[0].bestMs
    return tuple(
        OperationCost(t.label, (t.bestMs if t.label == WHOLE_LOOP else max(0.0, t.bestMs - loop)) / count * 1e6)
        for t in timings[1:]
    )


def timeInterleaved(calls: Sequence[tuple[str, Callable[[], object]]], repetitions: int) -> tuple[TimingSummary, ...]:
    """Requirement 5: ``timeit``, one call per repetition, the functions taking turns.

    Taking turns spreads any slow-down of a shared machine over all of them
    instead of penalising whichever ran during it; best-of-N is the figure
    timeit's documentation recommends, the median shows the spread.
    """
    timers = [(label, timeit.Timer(call)) for label, call in calls]
    samples: dict[str, list[float]] = {label: [] for label, _ in calls}
    for _ in range(repetitions):
        for label, timer in timers:
            samples[label].append(timer.timeit(number=1) * 1e3)
    return tuple(TimingSummary(label, min(samples[label]), statistics.median(samples[label])) for label, _ in calls)


def runExercise1(config: Exercise1Config, *, seed: int, log: Log = silent) -> Exercise1Result:
    """Requirements 1-5: generate, profile the slow version, fix, re-profile, verify, time."""
    records = makeAnomalyRecords(config.records, config.anomalies, seed)
    threshold = config.threshold
    log(f"{config.records:,} records, {config.anomalies} set to 150.0; profiling detectAnomalies ...")
    slowProfile, slowProfiledMs = profileCall(config.profileTop, detectAnomalies, records, threshold)
    fastProfile, fastProfiledMs = profileCall(config.profileTop, detectAnomaliesFast, records, threshold)
    slowOut = detectAnomalies(records, threshold)
    fastOut = detectAnomaliesFast(records, threshold)
    agreement = compareOutputs(slowOut, fastOut, threshold)
    assert agreement.realMismatches == 0, f"{agreement.realMismatches} anomaly flags differ"  # noqa: S101 - requirement 4 asks for assert; the lab repeats it for python -O
    assert agreement.zScoresTo6Decimals, f"zScores differ by {agreement.maxZScoreDiff:.3g}"  # noqa: S101 - as above
    log("outputs identical: same flags, same zScores to 6 decimals (assert passed)")
    hardData = tuple(_hardDataRow(kind, config.hardRecords, seed, threshold) for kind in HARD_KINDS)
    log(f"timeit: {config.repetitions} repetitions each, interleaved ...")
    slow, fast, floor, floorWithWindow = timeInterleaved(
        (
            ("detectAnomalies", lambda: detectAnomalies(records, threshold)),
            ("detectAnomaliesFast", lambda: detectAnomaliesFast(records, threshold)),
            ("output dicts only (floor)", lambda: buildOutputFloor(records)),
            ("output dicts + deque window", lambda: buildOutputWithWindow(records)),
        ),
        config.repetitions,
    )
    injected = {r["id"] for r in records if r["value"] == 150.0}
    return Exercise1Result(
        config=config,
        python=PYTHON,
        flaggedSlow=sum(r["anomaly"] for r in slowOut),
        injectedFlagged=sum(r["anomaly"] for r in slowOut if r["id"] in injected),
        slowProfile=slowProfile,
        fastProfile=fastProfile,
        slowProfiledMs=slowProfiledMs,
        fastProfiledMs=fastProfiledMs,
        profiledBytecodeRatio=profiledBytecodeRatio(),
        breakdown=measureBreakdown(records),
        agreement=agreement,
        runningSumsAgreement=compareOutputs(slowOut, detectAnomaliesRunningSums(records, threshold), threshold),
        hardData=hardData,
        slow=slow,
        fast=fast,
        floor=floor,
        floorWithWindow=floorWithWindow,
    )


def _hardDataRow(kind: HardKind, count: int, seed: int, threshold: float) -> HardDataRow:
    records = makeHardRecords(kind, count, seed)
    reference = detectAnomalies(records, threshold)
    return HardDataRow(
        kind=kind,
        anomalies=sum(r["anomaly"] for r in reference),
        fast=compareOutputs(reference, detectAnomaliesFast(records, threshold), threshold),
        runningSums=compareOutputs(reference, detectAnomaliesRunningSums(records, threshold), threshold),
    )


def _mismatchText(agreement: Agreement) -> str:
    if not agreement.flagMismatches:
        return "0 flags differ"
    return f"{agreement.flagMismatches} flags differ ({agreement.roundingTies} rounding ties within {TIE_ULPS} ulps)"


def formatExercise1(result: Exercise1Result) -> str:
    """Requirements 2-5: both profiles, the breakdown, the identity check, the hard data, the timings."""
    config = result.config
    perRecordNs = next(c.nsPerRecord for c in result.breakdown if c.operation == WHOLE_LOOP)
    breakdown = formatTable(
        ("operation (once per record, window of 50, timed alone)", "ns/record", "share of the loop"),
        [(c.operation, f"{c.nsPerRecord:.0f}", f"{c.nsPerRecord / perRecordNs:.0%}") for c in result.breakdown],
    )
    dominant = max((c for c in result.breakdown if c.operation != WHOLE_LOOP), key=lambda c: c.nsPerRecord)
    hard = formatTable(
        ("hard data", "anomalies", "fast: flags differ", "fast: max rel. zScore diff", "running sums: flags differ"),
        [
            (
                row.kind,
                row.anomalies,
                f"{row.fast.flagMismatches} ({row.fast.roundingTies} rounding ties)"
                if row.fast.flagMismatches
                else "0",
                f"{row.fast.maxRelativeZScoreDiff:.1e}",
                row.runningSums.flagMismatches,
            )
            for row in result.hardData
        ],
    )
    timings = formatTable(
        ("function", "best ms", "median ms", "vs slow"),
        [
            (t.label, f"{t.bestMs:.2f}", f"{t.medianMs:.2f}", f"{speedup(result.slow.bestMs, t.bestMs):.1f}x")
            for t in (result.slow, result.fast, result.floorWithWindow, result.floor)
        ],
    )
    slowHot = _hotspot(result.slowProfile, ("<genexpr>", "builtins.sum"))
    fastHot = _hotspot(result.fastProfile, ("builtins.sum",))
    agreement = result.agreement
    statsNs = max(0.0, result.fast.bestMs - result.floorWithWindow.bestMs) * 1e6 / config.records
    floorNs = result.floor.bestMs * 1e6 / config.records
    comparison = "more than" if statsNs > floorNs else "less than"
    return "\n".join(
        [
            "",
            f"Anomalies flagged: {result.flaggedSlow}, {result.injectedFlagged} of them among the "
            f"{config.anomalies} injected 150.0 values (the rest: gauss tails beyond 2.5 std-devs)"
            + (
                ""
                if result.injectedFlagged == config.anomalies
                else "; an injected value sharing a window with others raises that window's std and can hide"
            )
            + ".",
            "",
            formatProfileRows(
                result.slowProfile,
                title=f"cProfile: detectAnomalies, top {config.profileTop} by cumulative time "
                f"(total {result.slowProfiledMs:.0f} ms under the profiler)",
            ),
            "",
            breakdown,
            (
                f"Which dominates? The sums, above all {dominant.operation!r}: a generator resumed 50 times per "
                "record. The slice is cheap in comparison, and cProfile cannot show it (a slice is a bytecode, "
                "not a call, so it hides in detectAnomalies' own time)."
            ),
            "",
            formatProfileRows(
                result.fastProfile,
                title=f"cProfile: detectAnomaliesFast, top {config.profileTop} by cumulative time "
                f"(total {result.fastProfiledMs:.0f} ms under the profiler)",
            ),
            f"Hotspots before -> after: {slowHot} -> {fastHot}.",
            "",
            (
                f"Identity (assert) over {agreement.records:,} records: {_mismatchText(agreement)}; zScores agree "
                f"to 6 decimals (max difference {agreement.maxZScoreDiff:.1e})."
            ),
            "",
            hard,
            (
                "The lecture's running sum of squares gives wrong flags wherever an offset or a level shift dwarfs "
                "the spread; the sliding Welford update with its resync guard matches the slow version everywhere. "
                "(At offset 1e9 one ulp is 1.2e-7, so zScores there agree relatively, not to 6 decimals: "
                "no two summation orders would.)"
            ),
            "",
            timings,
            (
                f"Speedup {result.speedup:.1f}x (timeit, best of {config.repetitions}); fast / floor = "
                f"{result.fastOverFloor:.2f}x."
            ),
            (
                f"What bounds it: building {config.records:,} output dicts alone takes {result.floor.bestMs:.2f} ms, "
                f"so no version with this output beats {result.floorSpeedup:.1f}x; reading each value and sliding the "
                f"deque brings that to {result.floorWithWindow.bestMs:.2f} ms. The sliding statistics (about a dozen "
                f"float operations per record, each a new float object on CPython) cost the remaining "
                f"{statsNs:.0f} ns/record, {comparison} the dict build's {floorNs:.0f} ns, so fast / floor is "
                f"{result.fastOverFloor:.1f}x here. "
                + (
                    f"The lecture's upper 20x is not reached ({result.speedup:.0f}x) for that reason: what is left "
                    "is the statistics and the output, not the slicing."
                    if result.speedup < 20
                    else f"The speedup ({result.speedup:.0f}x) is at the top of the lecture's 4-20x range."
                )
            ),
            (
                "With a fixed window the work per record drops from O(50) to O(1): the gain is a constant factor "
                "(about the window size), not O(N²) -> O(N)."
            ),
            _profilerSentence(result),
        ]
    )


def _profilerSentence(result: Exercise1Result) -> str:
    """Why the profiled speedup differs from timeit's, for the profiler this interpreter has."""
    records = result.config.records
    slowEvents = sum(row.calls for row in result.slowProfile) / records
    fastEvents = sum(row.calls for row in result.fastProfile) / records
    events = (
        f"every call and generator resumption pays a fixed cost ({slowEvents:.0f} per record in the slow version, "
        f"{fastEvents:.0f} in the fast one)"
    )
    loop = f"a loop that makes no calls runs {result.profiledBytecodeRatio:.1f}x as long under it"
    if PROFILER_USES_MONITORING:
        how = f"On {result.python} cProfile listens to sys.monitoring call events only (PEP 669): {loop}, but {events}."
    else:
        how = (
            f"On {result.python} cProfile is a sys.setprofile hook, which sends every instruction through the "
            f"interpreter's slower tracing path: {loop}; on top of that {events}."
        )
    return (
        f"Under cProfile the speedup reads {result.profiledSpeedup:.1f}x against timeit's {result.speedup:.1f}x. "
        f"{how} Both distort the ratio: profiled figures are for finding hotspots, timeit's is the real one."
    )


def _shortName(function: str) -> str:
    """``sum`` for ``<built-in method builtins.sum>``, the qualified name for Python code."""
    if function.startswith("<built-in method "):
        return function.removeprefix("<built-in method ").rstrip(">").rsplit(".", 1)[-1]
    return function.split("(", 1)[-1].rstrip(")") if "(" in function else function


def _hotspot(rows: Sequence[ProfileRow], needles: Sequence[str]) -> str:
    found = [row for row in rows if any(needle in row.function for needle in needles)]
    if not found:
        return "none in the top rows"
    return ", ".join(f"{_shortName(row.function)} {row.cumulativeMs:.1f} ms" for row in found)


def exercise1(options: RunOptions, log: Log) -> Exercise1Result:
    """Registry entry: run exercise 1 with the spec's numbers (or quick ones) and print it."""
    config = Exercise1Config.quick() if options.quick else Exercise1Config()
    result = runExercise1(config, seed=options.seed, log=log)
    log(formatExercise1(result))
    return result


# ============================================================================
# Exercise 2 - @measuredStage with pipeline integration
# ============================================================================

SelfT = TypeVar("SelfT")
InT = TypeVar("InT")
OutT = TypeVar("OutT")
T = TypeVar("T")
StageMethod = Callable[[SelfT, Iterable[InT]], Iterator[OutT]]


@dataclass(frozen=True, slots=True)
class StageMetrics:
    """What ``@measuredStage`` measured for one stage run, frozen when the stage finished.

    Latency is the wall time of one ``next()`` on the stage: in a pull pipeline
    that includes the upstream stages' work for that record. Self time subtracts
    the time spent waiting on the stage's own input, leaving its own work (plus
    the instrumentation's). Throughput is records per second of busy time: the
    rate this stage, with its upstream, delivers when pulled without pause.
    """

    name: str
    records: int
    recordsIn: int
    meanLatencyMs: float
    p95LatencyMs: float
    busyMs: float
    selfMs: float
    wallMs: float
    exhausted: bool

    @property
    def meanSelfMs(self) -> float:
        """Own time per record delivered."""
        return self.selfMs / self.records if self.records else 0.0

    @property
    def throughputPerSec(self) -> float:
        """Records delivered per second of busy time."""
        return self.records / (self.busyMs / 1e3) if self.busyMs > 0 else 0.0

    def reportLine(self) -> str:
        """The one line ``@measuredStage`` prints when the stage is exhausted."""
        state = "" if self.exhausted else f" (closed early after {self.records:,})"
        return (
            f"[measuredStage] {self.name:<18} {self.records:>7,} records  mean {self.meanLatencyMs:.4f} ms  "
            f"p95 {self.p95LatencyMs:.4f} ms  {self.throughputPerSec:>9,.0f} rec/s  "
            f"self {self.meanSelfMs:.4f} ms/rec{state}"
        )


@final
class StageMetricsCollector:
    """Collects the metrics of every stage that finishes inside ``with``.

    ``@measuredStage`` hands its metrics to the innermost active collector, which
    prints the report line through ``log``; with no collector active the decorator
    prints it itself. Single-threaded, like the pipelines it measures.
    """

    def __init__(self, log: Log = print) -> None:
        self._log = log
        self._stages: list[StageMetrics] = []

    def __enter__(self) -> StageMetricsCollector:
        _STATE.collectors.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _STATE.collectors.remove(self)

    def add(self, metrics: StageMetrics) -> None:
        """Record one finished stage and print its report line."""
        self._stages.append(metrics)
        self._log(metrics.reportLine())

    @property
    def stages(self) -> tuple[StageMetrics, ...]:
        """Finished stages, in the order they finished (upstream first)."""
        return tuple(self._stages)


@final
class _MeasurementState:
    """Where ``@measuredStage`` reports to, and whether it measures at all."""

    __slots__ = ("collectors", "enabled")

    def __init__(self) -> None:
        self.collectors: list[StageMetricsCollector] = []
        self.enabled = True


_STATE: Final = _MeasurementState()


@contextlib.contextmanager
def stagesUnmeasured() -> Iterator[None]:
    """Inside, ``@measuredStage`` stages pass records through untimed: the baseline for its cost."""
    previous = _STATE.enabled
    _STATE.enabled = False
    try:
        yield
    finally:
        _STATE.enabled = previous


def _publish(metrics: StageMetrics) -> None:
    if _STATE.collectors:
        _STATE.collectors[-1].add(metrics)
    else:
        print(metrics.reportLine())


@final
class _TimedInput(Iterator[T]):
    """A stage's input stream, counting the records pulled and the seconds spent waiting for them."""

    __slots__ = ("_source", "count", "seconds")

    def __init__(self, source: Iterable[T]) -> None:
        self._source = iter(source)
        self.seconds = 0.0
        self.count = 0

    def __next__(self) -> T:
        start = time.perf_counter()
        try:
            item = next(self._source)
        finally:
            self.seconds += time.perf_counter() - start
        self.count += 1
        return item


def measuredStage(name: str) -> Callable[[StageMethod[SelfT, InT, OutT]], StageMethod[SelfT, InT, OutT]]:
    """Decorate a stage's generator method ``process(self, inputStream)`` to measure it.

    Per record it records the latency of each ``next()`` and the part of it spent
    waiting on the input (the wrapped input stream times that), so it knows the
    stage's own time as well. When the stage is exhausted (or closed) it freezes
    the figures into a ``StageMetrics`` - count, mean and p95 latency, throughput,
    self time - and prints one report line. Generators stay lazy: nothing runs
    until the consumer pulls.
    """

    def decorate(method: StageMethod[SelfT, InT, OutT]) -> StageMethod[SelfT, InT, OutT]:
        @functools.wraps(method)
        def measured(self: SelfT, inputStream: Iterable[InT]) -> Iterator[OutT]:
            if not _STATE.enabled:
                yield from method(self, inputStream)
                return
            upstream = _TimedInput(inputStream)
            inner = method(self, upstream)
            clock = time.perf_counter
            latencies: list[float] = []
            waits: list[float] = []
            tail = tailWait = 0.0
            exhausted = False
            started = clock()
            try:
                while True:
                    waitedBefore = upstream.seconds
                    begin = clock()
                    try:
                        item = next(inner)
                    except StopIteration:
                        tail = clock() - begin
                        tailWait = upstream.seconds - waitedBefore
                        exhausted = True
                        break
                    latencies.append(clock() - begin)
                    waits.append(upstream.seconds - waitedBefore)
                    yield item
            finally:
                if isinstance(inner, Generator):
                    inner.close()  # closed early: let the stage's own finally blocks run now
                busy = sum(latencies) + tail
                _publish(
                    StageMetrics(
                        name=name,
                        records=len(latencies),
                        recordsIn=upstream.count,
                        meanLatencyMs=statistics.fmean(latencies) * 1e3 if latencies else 0.0,
                        p95LatencyMs=percentile(latencies, 95) * 1e3 if latencies else 0.0,
                        busyMs=busy * 1e3,
                        selfMs=(busy - sum(waits) - tailWait) * 1e3,
                        wallMs=(clock() - started) * 1e3,
                        exhausted=exhausted,
                    )
                )

        return measured

    return decorate


class NormalizedReading(TypedDict):
    """A reading with its min-max normalised value."""

    id: int
    value: float
    norm: float


class SmoothedReading(TypedDict):
    """A normalised reading with the moving average of the last 20 norms."""

    id: int
    value: float
    norm: float
    movingAvg: float


class ThresholdFilter:
    """Stage 1: keep readings with 10.0 <= value <= 90.0."""

    @measuredStage("ThresholdFilter")
    def process(self, inputStream: Iterable[Reading]) -> Iterator[Reading]:
        """Yield the readings inside the band."""
        for r in inputStream:
            if 10.0 <= r["value"] <= 90.0:
                yield r


class WindowNormalizer:
    """Stage 2 as the spec gives it: min() and max() over every value seen, per record.

    The spec's comment says "a fresh sorted list (O(N log N))"; the code sorts
    nothing. It scans the whole ``seen`` list twice per record: O(N) per record,
    O(N²) per run.
    """

    @measuredStage("WindowNormalizer")
    def process(self, inputStream: Iterable[Reading]) -> Iterator[NormalizedReading]:
        """Yield each reading with ``norm`` = (value - min) / (max - min) over all values so far."""
        # Deliberately slow: min() and max() scan every value seen, for each record (O(N))
        seen: list[float] = []
        for r in inputStream:
            seen.append(r["value"])
            localMin = min(seen)  # O(N) every record
            localMax = max(seen)  # O(N) every record
            span = localMax - localMin if localMax != localMin else 1
            yield {**r, "norm": (r["value"] - localMin) / span}


class WindowNormalizerFixed:
    """Requirement 5: the same stage with a running min and max, O(1) per record.

    The spec's ``seen`` never slides (it keeps every value), so a running min and
    max over everything seen reproduce its output exactly; a window that slides
    would need monotonic deques for O(1) amortised. They are updated by
    comparison: ``min(localMin, value)`` and ``max(...)`` are builtin calls, about
    ten times the cost of two compares, enough to show in ``invoke bench``.
    Measured under the same stage name so the reports compare line for line.
    """

    @measuredStage("WindowNormalizer")
    def process(self, inputStream: Iterable[Reading]) -> Iterator[NormalizedReading]:
        """Yield each reading with ``norm`` from the running min and max."""
        localMin = math.inf
        localMax = -math.inf
        for r in inputStream:
            value = r["value"]
            if value < localMin:  # noqa: PLR1730 - a compare costs a tenth of a builtin min() call
                localMin = value
            if value > localMax:  # noqa: PLR1730 - as above
                localMax = value
            span = localMax - localMin if localMax != localMin else 1
            yield {**r, "norm": (value - localMin) / span}


class MovingAvgTransform:
    """Stage 3: the moving average of the last 20 norms."""

    @measuredStage("MovingAvgTransform")
    def process(self, inputStream: Iterable[NormalizedReading]) -> Iterator[SmoothedReading]:
        """Yield each reading with ``movingAvg`` over a deque of 20."""
        window: deque[float] = deque(maxlen=20)
        for r in inputStream:
            window.append(r["norm"])
            yield {**r, "movingAvg": sum(window) / len(window)}


class NormalizerStage(Protocol):
    """Either normaliser: the slow one of the spec or the fixed one."""

    def process(self, inputStream: Iterable[Reading]) -> Iterator[NormalizedReading]:
        """Yield normalised readings."""
        ...


@dataclass(frozen=True, slots=True)
class Exercise2Config:
    """The spec's numbers: 5,000 gauss(50, 10) readings through three stages."""

    records: int = 5_000
    overheadRepetitions: int = 3

    def __post_init__(self) -> None:
        requireRange("records", self.records, 1, 1_000_000)
        requireRange("overheadRepetitions", self.overheadRepetitions, 1, 100)

    @classmethod
    def quick(cls) -> Exercise2Config:
        """A third of the records: the O(N²) stage shrinks ninefold."""
        return cls(records=1_500)


@dataclass(frozen=True, slots=True)
class PipelineRun:
    """One run of the three-stage pipeline: its stages' metrics and what came out."""

    label: str
    stages: tuple[StageMetrics, ...]
    consumed: int
    wallMs: float

    def stage(self, name: str) -> StageMetrics:
        """The metrics of the stage called ``name``."""
        return next(s for s in self.stages if s.name == name)

    @property
    def highestLatency(self) -> StageMetrics:
        """The stage with the highest mean latency: what requirement 4 reads first."""
        return max(self.stages, key=lambda s: s.meanLatencyMs)

    @property
    def bottleneck(self) -> StageMetrics:
        """The stage with the most self time: where the time really goes."""
        return max(self.stages, key=lambda s: s.selfMs)

    @property
    def countsAddUp(self) -> bool:
        """Each stage delivered exactly what the next one pulled, and the consumer got the last stage's output."""
        pairs = zip(self.stages, self.stages[1:], strict=False)
        return all(a.records == b.recordsIn for a, b in pairs) and self.stages[-1].records == self.consumed


@dataclass(frozen=True, slots=True)
class Exercise2Result:
    """Every figure exercise 2 measured: both runs, the identity check, the instrumentation's cost."""

    config: Exercise2Config
    inputRecords: int
    before: PipelineRun
    after: PipelineRun
    outputsIdentical: bool
    measuredMs: float
    unmeasuredMs: float

    @property
    def overheadUsPerRecordStage(self) -> float:
        """What ``@measuredStage`` adds per record and stage (fixed pipeline, best runs)."""
        perRecord = (self.measuredMs - self.unmeasuredMs) * 1e3 / max(1, self.after.consumed)
        return max(0.0, perRecord / len(self.after.stages))

    @property
    def afterFix(self) -> Literal["shifted", "disappeared", "unchanged"]:
        """After the fix: the top stage by self time changed, no stage dominates (top < 2x the next), or neither."""
        ranked = sorted(self.after.stages, key=lambda s: s.selfMs, reverse=True)
        if ranked[0].selfMs < 2 * ranked[1].selfMs:
            return "disappeared"
        return "shifted" if ranked[0].name != "WindowNormalizer" else "unchanged"

    @property
    def shifted(self) -> bool:
        """The spec's test: the bottleneck shifts or disappears."""
        return self.afterFix != "unchanged"


def makeStageRecords(count: int, seed: int) -> list[Reading]:
    """Requirement 3: ``count`` readings of gauss(50, 10)."""
    rng = makeRng(seed, LECTURE, 2)
    return [{"id": i, "value": rng.gauss(50, 10)} for i in range(count)]


def runStagePipeline(
    records: Sequence[Reading], normalizer: NormalizerStage, *, label: str, log: Log = silent
) -> tuple[PipelineRun, list[SmoothedReading]]:
    """Requirement 3: source -> filter -> normalizer -> transform, consumed in a for loop."""
    output: list[SmoothedReading] = []
    with StageMetricsCollector(log) as collector, Stopwatch() as watch:
        source = iter(records)
        filtered = ThresholdFilter().process(source)
        normalized = normalizer.process(filtered)
        transformed = MovingAvgTransform().process(normalized)
        for record in transformed:
            output.append(record)  # noqa: PERF402 - the spec's for loop is the consumer being measured
    return PipelineRun(label, collector.stages, len(output), watch.elapsed * 1e3), output


def timeFixedPipeline(records: Sequence[Reading], repetitions: int) -> tuple[float, float]:
    """Best wall ms of the fixed pipeline measured and unmeasured: the decorator's cost."""
    measured: list[float] = []
    unmeasured: list[float] = []
    for _ in range(repetitions):
        measured.append(runStagePipeline(records, WindowNormalizerFixed(), label="timing")[0].wallMs)
        with stagesUnmeasured():
            unmeasured.append(runStagePipeline(records, WindowNormalizerFixed(), label="timing")[0].wallMs)
    return min(measured), min(unmeasured)


def runExercise2(config: Exercise2Config, *, seed: int, log: Log = silent) -> Exercise2Result:
    """Requirements 3-5: run, attribute, fix, re-run, compare."""
    records = makeStageRecords(config.records, seed)
    log(f"Before the fix ({config.records:,} records), the decorator's report lines:")
    before, slowOut = runStagePipeline(records, WindowNormalizer(), label="before fix", log=log)
    log("After the fix (running min and max):")
    after, fastOut = runStagePipeline(records, WindowNormalizerFixed(), label="after fix", log=log)
    measuredMs, unmeasuredMs = timeFixedPipeline(records, config.overheadRepetitions)
    return Exercise2Result(
        config=config,
        inputRecords=len(records),
        before=before,
        after=after,
        outputsIdentical=slowOut == fastOut,
        measuredMs=measuredMs,
        unmeasuredMs=unmeasuredMs,
    )


def formatExercise2(result: Exercise2Result) -> str:
    """Requirements 4 and 5: the per-stage comparison, the attribution, the cost of measuring."""
    before, after = result.before, result.after
    rows = []
    for b, a in zip(before.stages, after.stages, strict=True):
        rows.append(
            (
                b.name,
                f"{b.recordsIn:,}/{b.records:,}",
                f"{b.meanLatencyMs:.4f}",
                f"{b.p95LatencyMs:.4f}",
                f"{b.selfMs:.1f}",
                f"{a.meanLatencyMs:.4f}",
                f"{a.p95LatencyMs:.4f}",
                f"{a.selfMs:.1f}",
            )
        )
    table = formatTable(
        (
            "stage",
            "in/out",
            "before: mean ms",
            "p95 ms",
            "self ms",
            "after: mean ms",
            "p95 ms",
            "self ms",
        ),
        rows,
    )
    highest = before.highestLatency
    chart = barChart(
        [(f"{s.name} {label}", s.selfMs) for label, run in (("before", before), ("after", after)) for s in run.stages],
        unit=" ms",
        title="Self time per stage (latency minus time waiting on input):",
    )
    return "\n".join(
        [
            "",
            table,
            "",
            f"Highest mean latency: {highest.name} ({highest.meanLatencyMs:.4f} ms/record)"
            + (", the last stage, with no stage downstream of it." if highest is before.stages[-1] else ".")
            + " A stage's latency includes every upstream stage's work for that record: in a pull pipeline "
            "latency grows along the chain, so the lecture's rule ('high latency means the downstream stage is "
            "slow') points the wrong way here. It fits push pipelines with bounded queues, where a stage blocked "
            "on put() waits for its downstream.",
            (
                f"Traced by self time, the bottleneck is {before.bottleneck.name} "
                f"({before.bottleneck.selfMs:.0f} ms of {before.wallMs:.0f} ms): min() and max() over every value "
                "seen, O(N) per record."
            ),
            f"After the fix the pipeline takes {after.wallMs:.0f} ms instead of {before.wallMs:.0f} ms; "
            f"WindowNormalizer's self time fell from {before.stage('WindowNormalizer').selfMs:.0f} ms to "
            f"{after.stage('WindowNormalizer').selfMs:.1f} ms. "
            + _afterFixSentence(result)
            + f" Outputs identical: {result.outputsIdentical}.",
            "",
            chart,
            "",
            (
                f"What measuring costs: the fixed pipeline runs in {result.measuredMs:.1f} ms measured, "
                f"{result.unmeasuredMs:.1f} ms unmeasured, about {result.overheadUsPerRecordStage:.2f} µs per record "
                "per stage (four perf_counter calls, a generator hop and a method call) - more than a cheap "
                "stage's own work, which is why after the fix the self times are mostly the instrument's."
            ),
        ]
    )


def _afterFixSentence(result: Exercise2Result) -> str:
    ranked = sorted(result.after.stages, key=lambda s: s.selfMs, reverse=True)
    top, second = ranked[0], ranked[1]
    if result.afterFix == "shifted":
        return f"The bottleneck shifted to {top.name} ({top.selfMs:.1f} ms)."
    if result.afterFix == "disappeared":
        return (
            f"The bottleneck disappeared: {top.name} {top.selfMs:.1f} ms vs {second.name} {second.selfMs:.1f} ms, "
            "within 2x of each other."
        )
    return f"{top.name} is still the bottleneck ({top.selfMs:.1f} ms vs {second.selfMs:.1f} ms)."


def exercise2(options: RunOptions, log: Log) -> Exercise2Result:
    """Registry entry: run exercise 2 with the spec's numbers (or quick ones) and print it."""
    config = Exercise2Config.quick() if options.quick else Exercise2Config()
    result = runExercise2(config, seed=options.seed, log=log)
    log(formatExercise2(result))
    return result


# ============================================================================
# Exercise 3 - __slots__ and memory profiling
# ============================================================================


class EventDict:
    """A regular class: attributes live in a per-instance namespace."""

    def __init__(self, sensorId: str, timestamp: float, value: float, unit: str, stageId: int, flag: bool) -> None:
        self.sensorId = sensorId
        self.timestamp = timestamp
        self.value = value
        self.unit = unit
        self.stageId = stageId
        self.flag = flag


class EventSlots:
    """The same six attributes in fixed slots: no ``__dict__``, no new attributes."""

    __slots__ = ("flag", "sensorId", "stageId", "timestamp", "unit", "value")

    def __init__(self, sensorId: str, timestamp: float, value: float, unit: str, stageId: int, flag: bool) -> None:
        self.sensorId = sensorId
        self.timestamp = timestamp
        self.value = value
        self.unit = unit
        self.stageId = stageId
        self.flag = flag


class EventNamedTuple(NamedTuple):
    """The same six fields as an immutable tuple."""

    sensorId: str
    timestamp: float
    value: float
    unit: str
    stageId: int
    flag: bool


@dataclass
class EventDataclass:
    """The same six fields as a plain (unslotted) dataclass: a regular class underneath."""

    sensorId: str
    timestamp: float
    value: float
    unit: str
    stageId: int
    flag: bool


EventClass = type[EventDict] | type[EventSlots] | type[EventNamedTuple] | type[EventDataclass]
EVENT_CLASSES: Final[tuple[EventClass, ...]] = (EventDict, EventSlots, EventNamedTuple, EventDataclass)
EventRow = tuple[str, float, float, str, int, bool]
CLEARLY_SLOWER: Final = 1.5  # one read this many times slower than another: a real difference, not timer noise


@dataclass(frozen=True, slots=True)
class Exercise3Config:
    """The spec's numbers: 50,000 instances per class, 1,000,000 attribute reads."""

    instances: int = 50_000
    reads: int = 1_000_000
    readRepeats: int = 5

    def __post_init__(self) -> None:
        requireRange("instances", self.instances, 1, 10_000_000)
        requireRange("reads", self.reads, 1, 100_000_000)
        requireRange("readRepeats", self.readRepeats, 1, 100)

    @classmethod
    def quick(cls) -> Exercise3Config:
        """A fifth of the instances and reads, three repeats."""
        return cls(instances=10_000, reads=200_000, readRepeats=3)


@dataclass(frozen=True, slots=True)
class MemoryRow:
    """Requirements 2 and 3 for one class: tracemalloc's figure and sys.getsizeof's."""

    className: str
    bytesPerInstance: float
    totalKb: float
    getsizeofInstance: int
    getsizeofDict: int | None
    dictError: str
    dictTouchBytesPerInstance: float | None
    blocksPerInstance: float

    @property
    def valuesInline(self) -> bool:
        """One memory block per instance: the attribute values live inside the object's own block."""
        return round(self.blocksPerInstance) == 1


@dataclass(frozen=True, slots=True)
class ReadRow:
    """Requirement 4 for one class: reads of ``obj.value`` per second (timeit's loop included)."""

    className: str
    readsPerSecond: float

    @property
    def nsPerRead(self) -> float:
        """Nanoseconds per read, loop included."""
        return 1e9 / self.readsPerSecond


@dataclass(frozen=True, slots=True)
class TypoOutcome:
    """Requirement 5: what ``instance.vlaue = 99`` did to each class."""

    dictCreatedAttribute: bool
    dictValueUnchanged: bool
    slotsError: str
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Exercise3Result:
    """Every figure exercise 3 measured, with the interpreter it was measured on."""

    config: Exercise3Config
    python: str
    memory: tuple[MemoryRow, ...]
    reads: tuple[ReadRow, ...]
    readsMaterialized: ReadRow
    emptyLoopNs: float
    typo: TypoOutcome

    def memoryOf(self, className: str) -> MemoryRow:
        """The memory row of one class."""
        return next(row for row in self.memory if row.className == className)

    def readsOf(self, className: str) -> ReadRow:
        """The read-speed row of one class."""
        return next(row for row in self.reads if row.className == className)

    @property
    def materializedSlow(self) -> bool:
        """Reading a regular instance got markedly slower (1.5x) once its ``__dict__`` was materialised.

        True on 3.11 and 3.12, where the dict takes the values over and the read
        becomes a dict lookup; false on 3.13+, where the values stay in the
        object and the dict refers to them, so the specialised read still applies.
        """
        return self.readsMaterialized.nsPerRead > CLEARLY_SLOWER * self.readsOf("EventDict").nsPerRead


def makeEventRows(count: int, seed: int) -> list[EventRow]:
    """Realistic values, made before any measurement so that only the instances are counted."""
    rng = makeRng(seed, LECTURE, 3)
    start = 1_700_000_000.0
    return [
        (f"S{rng.randrange(100)}", start + i * 0.01, rng.gauss(50, 10), "C", rng.randrange(4), rng.random() < 0.1)
        for i in range(count)
    ]


def _allocatedBetween(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> tuple[int, int]:
    """Bytes and blocks allocated from ``before`` to ``after``, tracemalloc's own (the snapshots) left out.

    Grouping first and dropping tracemalloc's file afterwards costs half of
    ``filter_traces``, which walks every trace in Python.
    """
    stats = [
        stat for stat in after.compare_to(before, "filename") if stat.traceback[0].filename != tracemalloc.__file__
    ]
    return sum(stat.size_diff for stat in stats), sum(stat.count_diff for stat in stats)


def measureClassMemory(cls: EventClass, rows: Sequence[EventRow]) -> MemoryRow:
    """Requirements 2 and 3 for one class, on the running interpreter, ``__dict__`` untouched until the end.

    The list that holds the instances is allocated before the first snapshot, so
    the difference is the instances alone. A regular instance on 3.11+ keeps its
    attribute values in a plain values array, with no dict, until its ``__dict__``
    is first asked for: on 3.11 and 3.12 that array is a second memory block, on
    3.13+ it sits inside the object's own block (so the block count tells which
    layout this interpreter uses). Touching ``__dict__`` is measured last, on
    every instance, as a separate figure.
    """
    count = len(rows)
    instances: list[object] = [None] * count
    gc.collect()
    before = tracemalloc.take_snapshot()
    for index, row in enumerate(rows):
        instances[index] = cls(*row)
    after = tracemalloc.take_snapshot()
    allocated, blocks = _allocatedBetween(before, after)
    sample = instances[0]
    shallow = sys.getsizeof(sample)
    dictTouch: float | None = None
    dictSize: int | None = None
    dictError = ""
    try:
        namespaces = [instance.__dict__ for instance in instances]
    except AttributeError as error:
        dictError = type(error).__name__
    else:
        touched = tracemalloc.take_snapshot()
        dictTouch = (_allocatedBetween(after, touched)[0] - sys.getsizeof(namespaces)) / count
        dictSize = sys.getsizeof(namespaces[0])
    return MemoryRow(
        className=cls.__name__,
        bytesPerInstance=allocated / count,
        totalKb=allocated / 1024,
        getsizeofInstance=shallow,
        getsizeofDict=dictSize,
        dictError=dictError,
        dictTouchBytesPerInstance=dictTouch,
        blocksPerInstance=blocks / count,
    )


def measureReads(obj: object, reads: int, repeats: int) -> float:
    """Requirement 4: reads of ``obj.value`` per second, best of ``repeats`` timeit runs of ``reads``."""
    timer = timeit.Timer("o.value", setup="o = obj", globals={"obj": obj})
    return reads / min(timer.repeat(repeat=repeats, number=reads))


def findAttributeTypo(log: Log = print) -> TypoOutcome:
    """Requirement 5: the same typo, ``instance.vlaue = 99``, on a regular and a slotted class."""
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        log(line)

    row = makeEventRows(1, 0)[0]
    loose = EventDict(*row)
    loose.vlaue = 99  # type: ignore[attr-defined]  # the typo is the experiment
    created = "vlaue" in vars(loose)
    outcome = "silently created a new attribute 'vlaue'" if created else "refused"
    say(f"EventDict:  instance.vlaue = 99 -> {outcome}; instance.value is still {loose.value:.2f}")
    strict = EventSlots(*row)
    slotsError = ""
    try:
        strict.vlaue = 99  # type: ignore[attr-defined]  # the typo is the experiment
    except AttributeError as error:
        slotsError = f"AttributeError: {error}"
        say(f"EventSlots: instance.vlaue = 99 -> {slotsError}")
    else:
        say("EventSlots: instance.vlaue = 99 -> silently accepted")
    return TypoOutcome(created, loose.value == row[2], slotsError, tuple(lines))


def runExercise3(config: Exercise3Config, *, seed: int, log: Log = silent) -> Exercise3Result:
    """Requirements 2-5: memory per class, the getsizeof breakdown, read speed, the typo."""
    rows = makeEventRows(config.instances, seed)
    log(f"tracemalloc: {config.instances:,} instances of each class, __dict__ untouched ...")
    startedHere = not tracemalloc.is_tracing()
    if startedHere:
        tracemalloc.start()
    try:
        memory = tuple(measureClassMemory(cls, rows) for cls in EVENT_CLASSES)
    finally:
        if startedHere:
            tracemalloc.stop()
    log(f"timeit: {config.reads:,} reads of obj.value per class ...")
    reads = tuple(
        ReadRow(cls.__name__, measureReads(cls(*rows[0]), config.reads, config.readRepeats)) for cls in EVENT_CLASSES
    )
    materialized = EventDict(*rows[0])
    vars(materialized)
    emptyTimer = timeit.Timer("o", setup="o = obj", globals={"obj": materialized})
    emptyLoop = min(emptyTimer.repeat(repeat=config.readRepeats, number=config.reads)) / config.reads
    return Exercise3Result(
        config=config,
        python=PYTHON,
        memory=memory,
        reads=reads,
        readsMaterialized=ReadRow(
            "EventDict, __dict__ touched", measureReads(materialized, config.reads, config.readRepeats)
        ),
        emptyLoopNs=emptyLoop * 1e9,
        typo=findAttributeTypo(silent),
    )


def formatExercise3(result: Exercise3Result) -> str:
    """Requirements 2-4: memory per class, the getsizeof breakdown, reads per second."""
    config = result.config
    memory = formatTable(
        ("class", "bytes/instance", f"KB for {config.instances:,}", "getsizeof(obj)", "getsizeof(__dict__)"),
        [
            (
                row.className,
                f"{row.bytesPerInstance:.1f}",
                f"{row.totalKb:,.0f}",
                row.getsizeofInstance,
                str(row.getsizeofDict) if row.getsizeofDict is not None else row.dictError,
            )
            for row in result.memory
        ],
        title=f"tracemalloc, {config.instances:,} instances per class, {result.python}:",
    )
    regular = result.memoryOf("EventDict")
    touched = regular.dictTouchBytesPerInstance or 0.0
    values = regular.bytesPerInstance - regular.getsizeofInstance
    reads = formatTable(
        ("class", "reads/s", "ns/read"),
        [
            (row.className, f"{row.readsPerSecond:,.0f}", f"{row.nsPerRead:.1f}")
            for row in (*result.reads, result.readsMaterialized)
        ],
        title=f"timeit, {config.reads:,} reads of obj.value (best of {config.readRepeats}; "
        f"the empty loop alone is {result.emptyLoopNs:.1f} ns/iteration):",
    )
    if regular.valuesInline:
        layout = "stored inline in the object's own memory block (one block per instance), yet not counted by getsizeof"
        adoption = "points at the values inside the object rather than copying them"
    else:
        layout = (
            f"a separate values array the object points to ({regular.blocksPerInstance:.0f} blocks per instance), "
            "which getsizeof leaves out"
        )
        adoption = "takes over the values array rather than copying it"
    return "\n".join(
        [
            "",
            memory,
            "",
            (
                f"Breakdown for EventDict on {result.python}: getsizeof(obj) = {regular.getsizeofInstance} B is the "
                f"object alone; tracemalloc finds {regular.bytesPerInstance:.0f} B, the other {values:.0f} B being "
                f"the attribute values, {layout}. No dict exists until __dict__ is first touched: then each instance "
                f"grows by {touched:.0f} B, the dict object; getsizeof(__dict__) = {regular.getsizeofDict} B also "
                f"counts the values: the dict {adoption}."
            ),
            "",
            reads,
            "",
            _readsSentence(result),
            _memoryOrder(result.memory),
            "",
            "Typo safety (findAttributeTypo):",
            *result.typo.lines,
        ]
    )


def _readsSentence(result: Exercise3Result) -> str:
    """What the read table shows on this interpreter, from the measured ns per read."""
    plain, slotted, named = (result.readsOf(name) for name in ("EventDict", "EventSlots", "EventNamedTuple"))
    touched = result.readsMaterialized
    slowest = max(result.reads, key=lambda row: row.nsPerRead).className
    namedText = (
        f"a NamedTuple field goes through a descriptor (_tuplegetter) and is the slowest ({named.nsPerRead:.1f} ns)"
        if slowest == "EventNamedTuple"
        else f"a NamedTuple field goes through a descriptor (_tuplegetter), {named.nsPerRead:.1f} ns"
    )
    if result.materializedSlow:
        touchedText = (
            f"a regular instance whose __dict__ was materialised is slow too ({touched.nsPerRead:.1f} ns): its "
            "values now belong to the dict, and the read becomes a dict lookup"
        )
    else:
        touchedText = (
            f"materialising __dict__ costs nothing at read time here ({touched.nsPerRead:.1f} ns): the values stay "
            "in the object and the dict refers to them, so the specialised read still applies"
        )
    pace = (
        "about as fast as slots"
        if max(plain.nsPerRead, slotted.nsPerRead) < CLEARLY_SLOWER * min(plain.nsPerRead, slotted.nsPerRead)
        else "faster than slots"
        if plain.nsPerRead < slotted.nsPerRead
        else "slower than slots"
    )
    return (
        f"On {result.python}, an untouched regular instance reads its values {pace} "
        f"({plain.nsPerRead:.1f} vs {slotted.nsPerRead:.1f} ns; both are specialised reads at a fixed offset); "
        f"{namedText}; {touchedText}."
    )


def _memoryOrder(rows: Sequence[MemoryRow]) -> str:
    """``Memory: A 80 B < B 96 B < C 120 B = D 120 B``, from the measured bytes per instance."""
    ranked = sorted(rows, key=lambda row: row.bytesPerInstance)
    text = f"{ranked[0].className} {ranked[0].bytesPerInstance:.0f} B"
    for previous, row in itertools.pairwise(ranked):
        relation = "=" if round(row.bytesPerInstance) == round(previous.bytesPerInstance) else "<"
        text += f" {relation} {row.className} {row.bytesPerInstance:.0f} B"
    return f"Memory per instance: {text} (the dataclass is unslotted: a regular class underneath)."


def exercise3(options: RunOptions, log: Log) -> Exercise3Result:
    """Registry entry: run exercise 3 with the spec's numbers (or quick ones) and print it."""
    config = Exercise3Config.quick() if options.quick else Exercise3Config()
    result = runExercise3(config, seed=options.seed, log=log)
    log(formatExercise3(result))
    return result


# ============================================================================
# Exercise 4 - Comprehensive pipeline measurement dashboard
# ============================================================================


@final
class PipelineMeasurementContext:
    """cProfile, tracemalloc and a wall clock around one block of single-threaded code.

    On enter: tracemalloc starts (unless already tracing, so contexts nest inside
    a longer tracemalloc session), the start snapshot is taken, the traced total
    read and the peak reset; then the profiler is enabled and the clock starts,
    last, so that neither the snapshot nor the profiler's start-up is measured.
    On exit the same in reverse, with the end snapshot.

    Net memory is the traced total at exit minus at entry: what the block left
    allocated, including cProfile's own small per-function records. Peak is
    above the level at entry (and resets a surrounding session's peak). The
    snapshots say where the net memory went (``topAllocations``), computed only
    when asked: grouping a snapshot costs microseconds per traced block, seconds
    once a leak has left a few hundred thousand of them.
    cProfile sees only the thread that enabled it on 3.11 (3.12+ misattributes
    other threads' calls), so keep the measured code in this thread.
    """

    def __init__(self, *, hotspots: int = 5) -> None:
        requireRange("hotspots", hotspots, 1, 100)
        self._hotspots = hotspots
        self._profiler: cProfile.Profile | None = None
        self._startedTracing = False
        self._snapshots: tuple[tracemalloc.Snapshot, tracemalloc.Snapshot] | None = None
        self._startSnapshot: tracemalloc.Snapshot | None = None
        self._startTraced = 0
        self._started = 0.0
        self._cpuStarted = 0.0
        self._elapsed: float | None = None
        self._cpu = 0.0
        self._netBytes = 0
        self._peakBytes = 0
        self._rows: tuple[ProfileRow, ...] = ()

    def __enter__(self) -> PipelineMeasurementContext:
        self._startedTracing = not tracemalloc.is_tracing()
        if self._startedTracing:
            tracemalloc.start()
        self._startSnapshot = tracemalloc.take_snapshot()
        self._startTraced = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        self._profiler = cProfile.Profile()
        self._profiler.enable()
        self._cpuStarted = time.process_time()
        self._started = time.perf_counter()
        return self

    def __exit__(
        self, excType: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        elapsed = time.perf_counter() - self._started
        cpu = time.process_time() - self._cpuStarted
        if self._profiler is None or self._startSnapshot is None:
            raise RuntimeError("PipelineMeasurementContext exited without entering")
        self._profiler.disable()
        try:
            current, peak = tracemalloc.get_traced_memory()
            self._netBytes = current - self._startTraced
            self._peakBytes = peak - self._startTraced
            self._snapshots = (self._startSnapshot, tracemalloc.take_snapshot())
        finally:
            self._startSnapshot = None
            if self._startedTracing:
                tracemalloc.stop()
        self._rows = profileRows(self._profiler, sortBy="tottime", limit=self._hotspots)
        self._elapsed = elapsed
        self._cpu = cpu

    def _finished(self) -> float:
        if self._elapsed is None:
            raise RuntimeError("measurements are available after the with block")
        return self._elapsed

    @property
    def elapsedMs(self) -> float:
        """Wall time of the block."""
        return self._finished() * 1e3

    @property
    def cpuMs(self) -> float:
        """CPU time this process spent in the block: below ``elapsedMs`` when it waited for a core."""
        self._finished()
        return self._cpu * 1e3

    @property
    def hotspots(self) -> tuple[ProfileRow, ...]:
        """The top functions by own time (cumulative time ranks nested generators all alike)."""
        self._finished()
        return self._rows

    @property
    def topHotspotsStr(self) -> str:
        """The top functions from cProfile as a table."""
        return formatProfileRows(self.hotspots)

    @property
    def memoryAllocatedKb(self) -> float:
        """Net KB the block left allocated."""
        self._finished()
        return self._netBytes / 1024

    @property
    def peakMemoryKb(self) -> float:
        """Peak traced KB during the block, above the level at entry."""
        self._finished()
        return self._peakBytes / 1024

    def topAllocations(self, limit: int = 3) -> tuple[AllocationSite, ...]:
        """The source lines that left the most memory allocated (end snapshot minus start snapshot)."""
        self._finished()
        if self._snapshots is None:
            return ()
        before, after = self._snapshots
        stats = [
            stat
            for stat in after.compare_to(before, "lineno")
            if stat.size_diff > 0 and stat.traceback[0].filename != tracemalloc.__file__
        ]
        return tuple(
            AllocationSite(_frameLabel(stat.traceback[0]), stat.size_diff / 1024, stat.count_diff)
            for stat in stats[:limit]
        )


@dataclass(frozen=True, slots=True)
class AllocationSite:
    """One source line and the memory it left allocated."""

    site: str
    sizeKb: float
    blocks: int


def _frameLabel(frame: tracemalloc.Frame) -> str:
    """``file.py:line (function)``, the function found among this module's code objects."""
    fileName = frame.filename.replace("\\", "/").rsplit("/", 1)[-1]
    owner = next(
        (
            code.co_qualname
            for code in _moduleCode()
            if code.co_filename == frame.filename and any(line == frame.lineno for *_, line in code.co_lines())
        ),
        "",
    )
    return f"{fileName}:{frame.lineno} ({owner})" if owner else f"{fileName}:{frame.lineno}"


@functools.cache
def _moduleCode() -> tuple[CodeType, ...]:
    """Every code object of this module's functions and methods (decorated ones unwrapped), nested ones too."""
    functions: list[object] = []
    for value in list(globals().values()):
        functions.extend(vars(value).values() if isinstance(value, type) else (value,))
    found: list[CodeType] = []
    pending = [
        code for f in functions if isinstance(code := getattr(getattr(f, "__wrapped__", f), "__code__", None), CodeType)
    ]
    while pending:
        code = pending.pop()
        found.append(code)
        pending.extend(const for const in code.co_consts if isinstance(const, CodeType))
    return tuple(found)


class FeatureReading(TypedDict):
    """A normalised reading with its moving average and its change from the previous one."""

    id: int
    value: float
    norm: float
    movingAvg: float
    delta: float


class AlertReading(TypedDict):
    """A reading with its features and the alert decision."""

    id: int
    value: float
    norm: float
    movingAvg: float
    delta: float
    alert: bool


class Normalizer:
    """Stage 2: min-max normalisation with a running min and max (exercise 2's fix)."""

    @measuredStage("Normalizer")
    def process(self, inputStream: Iterable[Reading]) -> Iterator[NormalizedReading]:
        """Yield each reading with ``norm`` in [0, 1] over the values seen so far."""
        localMin = math.inf
        localMax = -math.inf
        for r in inputStream:
            value = r["value"]
            if value < localMin:  # noqa: PLR1730 - a compare costs a tenth of a builtin min() call
                localMin = value
            if value > localMax:  # noqa: PLR1730 - as above
                localMax = value
            span = localMax - localMin if localMax != localMin else 1
            yield {**r, "norm": (value - localMin) / span}


class FeatureComputer:
    """Stage 3: moving average of 20 norms and the change from the previous norm."""

    @measuredStage("FeatureComputer")
    def process(self, inputStream: Iterable[NormalizedReading]) -> Iterator[FeatureReading]:
        """Yield each reading with ``movingAvg`` and ``delta``."""
        window: deque[float] = deque(maxlen=20)
        previous: float | None = None
        for r in inputStream:
            norm = r["norm"]
            window.append(norm)
            delta = 0.0 if previous is None else norm - previous
            previous = norm
            yield {**r, "movingAvg": sum(window) / len(window), "delta": delta}


class AlertDetector:
    """Stage 4: alert when a norm jumps away from its moving average.

    ``leak=True`` is requirement 5's controlled leak: every record it yields is
    also kept in the class-level ``allAlerts`` list, which outlives the run.
    """

    allAlerts: ClassVar[list[AlertReading]] = []

    def __init__(self, *, leak: bool = False, jump: float = 0.3) -> None:
        self._leak = leak
        self._jump = jump

    @measuredStage("AlertDetector")
    def process(self, inputStream: Iterable[FeatureReading]) -> Iterator[AlertReading]:
        """Yield each reading with ``alert``; keep it forever when leaking."""
        for r in inputStream:
            record: AlertReading = {**r, "alert": abs(r["norm"] - r["movingAvg"]) > self._jump}
            if self._leak:
                AlertDetector.allAlerts.append(record)
            yield record


@dataclass(frozen=True, slots=True)
class Exercise4Config:
    """The spec's numbers: 10,000 records, 5 stability runs, 5 leaking runs, 5 fixed runs."""

    records: int = 10_000
    runs: int = 5
    stabilityLimit: float = 0.10
    glitchRate: float = 0.01
    spikeRate: float = 0.01

    def __post_init__(self) -> None:
        requireRange("records", self.records, 1, 1_000_000)
        requireRange("runs", self.runs, 2, 100)
        requireRange("stabilityLimit", self.stabilityLimit, 0.0, 10.0)
        requireRange("glitchRate", self.glitchRate, 0.0, 1.0)
        requireRange("spikeRate", self.spikeRate, 0.0, 1.0)

    @classmethod
    def quick(cls) -> Exercise4Config:
        """A tenth of the records, three runs per series: about 2 s with cProfile and tracemalloc on."""
        return cls(records=1_000, runs=3)


@dataclass(frozen=True, slots=True)
class DashboardRun:
    """One measured pipeline run: the context's figures, the stages' metrics, the counts."""

    elapsedMs: float
    netKb: float
    peakKb: float
    hotspots: tuple[ProfileRow, ...]
    hotspotsText: str
    allocations: tuple[AllocationSite, ...]
    stages: tuple[StageMetrics, ...]
    consumed: int
    alerts: int
    retainedKb: float
    kept: int
    cpuMs: float

    @property
    def cpuShare(self) -> float:
        """The share of one core the run got over its wall time (1.0 = it never waited for the CPU)."""
        return self.cpuMs / self.elapsedMs if self.elapsedMs > 0 else 1.0

    def throughput(self, stage: str) -> float:
        """Records per second of busy time of one stage."""
        return next(s.throughputPerSec for s in self.stages if s.name == stage)


FULL_CORE: Final = 0.9  # a run whose CPU time is below this share of its wall time waited for a core


@dataclass(frozen=True, slots=True)
class StabilityRow:
    """Requirement 4 for one stage: throughput across runs and its coefficient of variation."""

    stage: str
    meanThroughput: float
    cv: float


@dataclass(frozen=True, slots=True)
class Exercise4Result:
    """Every figure exercise 4 measured: the dashboard run, stability, the leak and its fix."""

    config: Exercise4Config
    python: str
    inputRecords: int
    passedFilter: int
    main: DashboardRun
    plainMs: float
    stability: tuple[DashboardRun, ...]
    stabilityRows: tuple[StabilityRow, ...]
    leaking: tuple[DashboardRun, ...]
    fixed: tuple[DashboardRun, ...]
    leakFit: LinearFit
    fixedFit: LinearFit

    @property
    def meanElapsedMs(self) -> float:
        """Mean wall time of the stability runs."""
        return statistics.fmean(run.elapsedMs for run in self.stability)

    @property
    def meanNetKb(self) -> float:
        """Mean net memory of the stability runs."""
        return statistics.fmean(run.netKb for run in self.stability)

    @property
    def stable(self) -> bool:
        """Every stage's throughput varied less than the limit across runs."""
        return all(row.cv < self.config.stabilityLimit for row in self.stabilityRows)


def makeDashboardRecords(config: Exercise4Config, seed: int) -> list[Reading]:
    """gauss(50, 10) readings with a few glitches (120.0, filtered out) and spikes (89.0, alerts)."""
    rng = makeRng(seed, LECTURE, 4)
    records: list[Reading] = []
    for i in range(config.records):
        draw = rng.random()
        if draw < config.glitchRate:
            value = 120.0
        elif draw < config.glitchRate + config.spikeRate:
            value = 89.0
        else:
            value = rng.gauss(50, 10)
        records.append({"id": i, "value": value})
    return records


def runDashboardPipeline(
    records: Sequence[Reading], *, leak: bool, log: Log = silent, allocationSites: int = 0
) -> DashboardRun:
    """Requirement 3: one 4-stage run inside a ``PipelineMeasurementContext``, consumed in a for loop.

    ``allocationSites`` > 0 also asks the context where the net memory went.
    Retained memory (inside a surrounding tracemalloc session) is read after the
    context and its snapshots are gone.
    """
    consumed = 0
    alerts = 0
    with StageMetricsCollector(log) as collector, PipelineMeasurementContext() as measurement:
        filtered = ThresholdFilter().process(iter(records))
        normalized = Normalizer().process(filtered)
        features = FeatureComputer().process(normalized)
        for record in AlertDetector(leak=leak).process(features):
            consumed += 1
            alerts += record["alert"]
    run = DashboardRun(
        elapsedMs=measurement.elapsedMs,
        netKb=measurement.memoryAllocatedKb,
        peakKb=measurement.peakMemoryKb,
        hotspots=measurement.hotspots,
        hotspotsText=measurement.topHotspotsStr,
        allocations=measurement.topAllocations(allocationSites) if allocationSites else (),
        stages=collector.stages,
        consumed=consumed,
        alerts=alerts,
        retainedKb=math.nan,
        kept=len(AlertDetector.allAlerts),
        cpuMs=measurement.cpuMs,
    )
    del measurement
    if tracemalloc.is_tracing():
        run = replace(run, retainedKb=tracemalloc.get_traced_memory()[0] / 1024)
    return run


def _seriesRuns(records: Sequence[Reading], runs: int, *, leak: bool) -> tuple[tuple[DashboardRun, ...], LinearFit]:
    """``runs`` runs inside one tracemalloc session, so memory kept from run to run is visible."""
    startedHere = not tracemalloc.is_tracing()
    if startedHere:
        tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0] / 1024
        series = tuple(
            replace(run, retainedKb=run.retainedKb - baseline)
            for run in (
                runDashboardPipeline(records, leak=leak, allocationSites=3 if index == 0 else 0)
                for index in range(runs)
            )
        )
    finally:
        if startedHere:
            tracemalloc.stop()
    fit = linearFit([float(i) for i in range(1, runs + 1)], [run.retainedKb for run in series])
    return series, fit


def timePlainDashboard(records: Sequence[Reading], runs: int) -> float:
    """Median wall ms of the 4-stage run with no context around it (``@measuredStage`` still on).

    Set against the dashboard run's time, it is what cProfile and tracemalloc cost together.
    """
    times: list[float] = []
    for _ in range(runs):
        with StageMetricsCollector(silent), Stopwatch() as watch:
            features = FeatureComputer().process(Normalizer().process(ThresholdFilter().process(iter(records))))
            for _record in AlertDetector().process(features):
                pass
        times.append(watch.elapsed * 1e3)
    return statistics.median(times)


def runExercise4(config: Exercise4Config, *, seed: int, log: Log = silent) -> Exercise4Result:
    """Requirements 3-5: the dashboard run, five stability runs, five leaking runs, five fixed runs."""
    records = makeDashboardRecords(config, seed)
    log(f"Dashboard run ({config.records:,} records), the decorator's report lines:")
    main = runDashboardPipeline(records, leak=False, log=log, allocationSites=3)
    stability = tuple(runDashboardPipeline(records, leak=False) for _ in range(config.runs))
    stageNames = [s.name for s in main.stages]
    stabilityRows = tuple(
        StabilityRow(
            name,
            statistics.fmean(run.throughput(name) for run in stability),
            coefficientOfVariation([run.throughput(name) for run in stability]),
        )
        for name in stageNames
    )
    AlertDetector.allAlerts.clear()
    try:
        leaking, leakFit = _seriesRuns(records, config.runs, leak=True)
    finally:
        AlertDetector.allAlerts.clear()  # the fix: nothing keeps the records any more
    fixed, fixedFit = _seriesRuns(records, config.runs, leak=False)
    passed = main.stages[0].records
    return Exercise4Result(
        config=config,
        python=PYTHON,
        inputRecords=len(records),
        passedFilter=passed,
        main=main,
        plainMs=timePlainDashboard(records, config.runs),
        stability=stability,
        stabilityRows=stabilityRows,
        leaking=leaking,
        fixed=fixed,
        leakFit=leakFit,
        fixedFit=fixedFit,
    )


def formatExercise4(result: Exercise4Result) -> str:
    """Requirements 3-5: the dashboard, the stability report, the leak and its fix."""
    main = result.main
    config = result.config
    table: list[tuple[str | int, ...]] = [
        (
            i,
            f"{run.elapsedMs:.0f}",
            f"{run.cpuShare:.0%}",
            f"{run.netKb:.1f}",
            f"{run.peakKb:,.0f}",
            *(f"{run.throughput(s.name):,.0f}" for s in main.stages),
        )
        for i, run in enumerate(result.stability, start=1)
    ]
    table.append(("CV (std/mean)", "", "", "", "", *(f"{row.cv:.1%}" for row in result.stabilityRows)))
    stability = formatTable(
        ("run", "elapsed ms", "CPU/wall", "net KB", "peak KB", *(s.name for s in main.stages)),
        table,
        title=f"Stability: {config.runs} runs (stage columns: throughput, records/s of busy time)",
    )
    leak = formatTable(
        ("run", "leak: net KB", "kept records", "retained KB", "fixed: net KB", "retained KB"),
        [
            (
                i,
                f"{leaking.netKb:,.0f}",
                f"{leaking.kept:,}",
                f"{leaking.retainedKb:,.0f}",
                f"{fixed.netKb:,.1f}",
                f"{fixed.retainedKb:,.1f}",
            )
            for i, (leaking, fixed) in enumerate(zip(result.leaking, result.fixed, strict=True), start=1)
        ],
        title="Leak (AlertDetector(leak=True) keeps every record in AlertDetector.allAlerts), then fixed:",
    )
    chart = barChart(
        [(f"leak run {i}", run.retainedKb / 1024) for i, run in enumerate(result.leaking, start=1)]
        + [(f"fixed run {i}", run.retainedKb / 1024) for i, run in enumerate(result.fixed, start=1)],
        unit=" MB",
        title="Memory retained since the series began:",
    )
    stable = "stable" if result.stable else "NOT stable"
    leakSites = result.leaking[0].allocations if result.leaking else ()
    return "\n".join(
        [
            "",
            (
                f"Total elapsed: {main.elapsedMs:.0f} ms for {result.inputRecords:,} records "
                f"({result.passedFilter:,} past the filter, {main.alerts} alerts), profiled and traced. Without "
                f"the context (@measuredStage still on) the same run takes {result.plainMs:.0f} ms: cProfile and "
                f"tracemalloc together make it {main.elapsedMs / result.plainMs:.1f}x slower on {result.python}."
            ),
            (
                f"Net memory allocated: {main.netKb:.1f} KB; peak during the run: {main.peakKb:,.0f} KB "
                "(the peak includes @measuredStage's per-record latency lists)."
            ),
            "Top 5 hotspots by own time (cumulative time ranks the nested generators all near the top):",
            main.hotspotsText,
            (
                "cProfile merges the four stages' 'measured' wrappers into one row (one code object); the "
                "instrument itself (the wrapper and its latency-list appends, _TimedInput, perf_counter, next) is "
                "most of what it sees: each stage's own work is a few dict operations per record."
            ),
            _formatSites(main.allocations, "Where the net memory went (tracemalloc snapshots, by line):"),
            "",
            stability,
            (
                f"Mean elapsed {result.meanElapsedMs:.0f} ms, mean net memory {result.meanNetKb:.1f} KB; "
                f"throughput {stable} (every stage's std < {config.stabilityLimit:.0%} of its mean: "
                f"{all(row.cv < config.stabilityLimit for row in result.stabilityRows)}). CPU/wall is the share of "
                f"a core each run got: below {FULL_CORE:.0%} it waited for the CPU while other processes ran, which "
                "lowers that run's throughput."
            ),
            "",
            leak,
            (
                f"Leak: retained memory grows {result.leakFit.slope:,.0f} KB per run, R² = "
                f"{result.leakFit.rSquared:.4f} (linear: each run keeps its {result.passedFilter:,} records). "
                f"Fixed: {result.fixedFit.slope:,.1f} KB per run, the report's own records of each run "
                "(hotspot table, stage metrics): memory is stable."
            ),
            _formatSites(leakSites, "Where leak run 1's net memory went - the snapshots name the leak's lines:"),
            "",
            chart,
            "",
            (
                "Single-threaded on purpose: cProfile sees only the thread that enabled it on 3.11, and "
                "misattributes other threads' calls on 3.12+."
            ),
        ]
    )


def _formatSites(sites: Sequence[AllocationSite], title: str) -> str:
    if not sites:
        return ""
    return formatTable(
        ("line", "KB", "blocks"),
        [(site.site, f"{site.sizeKb:,.1f}", site.blocks) for site in sites],
        title=title,
    )


def exercise4(options: RunOptions, log: Log) -> Exercise4Result:
    """Registry entry: run exercise 4 with the spec's numbers (or quick ones) and print it."""
    config = Exercise4Config.quick() if options.quick else Exercise4Config()
    result = runExercise4(config, seed=options.seed, log=log)
    log(formatExercise4(result))
    return result


# ============================================================================
# Registry and entry point
# ============================================================================

TITLE = "Big Project Stage 4 - Measurable Pipeline (Profiling and Metrics)"
EXERCISES = (
    Exercise(1, "Profile, identify, fix, re-profile", exercise1),
    Exercise(2, "@measuredStage with pipeline integration", exercise2),
    Exercise(3, "__slots__ and memory profiling", exercise3),
    Exercise(4, "Comprehensive pipeline measurement dashboard", exercise4),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run lecture 37's exercises from the command line; return the exit status."""
    return lectureMain(argv, lecture=LECTURE, title=TITLE, exercises=EXERCISES)


if __name__ == "__main__":
    raise SystemExit(main())
