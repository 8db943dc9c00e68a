"""Lecture 37: Big Project Stage 4 - Measurable Pipeline (Profiling and Metrics).

Exercises (spec: lecture37.txt):

1. Profile, identify, fix, re-profile: ``detectAnomalies`` -> ``detectAnomaliesFast``.
2. ``@measuredStage`` on a three-stage generator pipeline; trace the bottleneck.
3. ``__slots__`` and memory: tracemalloc, ``sys.getsizeof``, attribute reads, typo safety.
4. A measurement dashboard: ``PipelineMeasurementContext``, stability, a controlled leak.

Run one with ``python l37.py --ex 1``; ``--all`` runs every exercise, ``--quick``
uses small sizes, ``--seed N`` fixes every random draw. ``invoke run --lecture 37
--ex 1`` prints the same report, then the verdicts of the instructor's lab on it.
This file needs the standard library and ``shared.py`` only: copy both and it runs.

Everything here is single-threaded on purpose: what is measured is the cost of
Python code on one core, and cProfile sees only the thread that enabled it on
3.11 (3.12+ misattributes other threads' calls). There is no pool in this
lecture: ``--executor`` and ``--start-method`` are accepted (every lecture shares
one command line) but unused.

Beyond the spec, each labelled where it stands: ``detectAnomaliesRobust`` (a
sliding Welford update that a large offset cannot cancel), self time beside the
lecture's latency in ``@measuredStage``, and ``StageMetricsCollector`` (where the
decorator's figures go besides its printed line).
"""

from __future__ import annotations

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
from typing import ClassVar, Final, Literal, NamedTuple, ParamSpec, Protocol, TypedDict, TypeVar, final

from shared import (
    ConfigError,
    Exercise,
    LinearFit,
    Log,
    RunOptions,
    Stopwatch,
    coefficientOfVariation,
    formatTable,
    lectureMain,
    linearFit,
    makeRng,
    percentile,
    prose,
    requireRange,
    silent,
    speedup,
)

__all__ = [
    "EXERCISES",
    "AlertDetector",
    "EventDataclass",
    "EventDict",
    "EventNamedTuple",
    "EventSlots",
    "FeatureComputer",
    "FlaggedReading",
    "MovingAvgTransform",
    "Normalizer",
    "PipelineMeasurementContext",
    "ProfileRow",
    "Reading",
    "StageMetrics",
    "StageMetricsCollector",
    "ThresholdFilter",
    "WindowNormalizer",
    "WindowNormalizerFixed",
    "detectAnomalies",
    "detectAnomaliesFast",
    "detectAnomaliesRobust",
    "findAttributeTypo",
    "formatProfileRows",
    "main",
    "measuredStage",
    "profileRows",
]

LECTURE = 37
P = ParamSpec("P")
PYTHON: Final = f"{platform.python_implementation()} {platform.python_version()}"

# ============================================================================
# Profiling helpers: cProfile's entries as rows a report tabulates (exercises 1 and 4)
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
    """The top ``limit`` functions of a finished profile (what pstats prints), as rows."""
    rows = [
        ProfileRow(_codeLabel(entry.code), entry.callcount, entry.inlinetime * 1e3, entry.totaltime * 1e3)
        for entry in profiler.getstats()
        if not (isinstance(entry.code, str) and "_lsprof.Profiler" in entry.code)  # the profiler's own disable()
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
# Exercise 1 - Profile, Identify, Fix, Re-Profile
# ============================================================================
#
# req 1   detectAnomalies (the spec's code); makeAnomalyRecords: 20,000 gauss(50, 10), 200 set to 150.0
# req 2   profileCall: cProfile, the top 12 by cumulative time, the total time
# req 3   detectAnomaliesFast: deque(maxlen=50), runningSum and runningSumSq, no loop over the window
# req 4   profileCall again; compareOutputs and the assert in runExercise1
# req 5   timeTurns: timeit, 20 repetitions of each; slow, fast, speedup
# beyond  detectAnomaliesRobust: a sliding Welford update, exact where the running sums cancel
#
#   records -> detectAnomalies      (per record: a slice and two sums over 50 values)  -> flagged
#           -> detectAnomaliesFast  (per record: one deque append, two running sums)   -> the same flags

WINDOW_SIZE: Final = 50


class Reading(TypedDict):
    """The spec's input record: ``{"id": i, "value": random.gauss(50, 10)}``."""

    id: int
    value: float


class FlaggedReading(Reading):
    """``detectAnomalies``' output: the reading, its flag, its distance from the window mean."""

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


def detectAnomaliesFast(records: Iterable[Reading], threshold: float = 2.5) -> list[FlaggedReading]:
    """Requirement 3: ``detectAnomalies`` in O(1) per record, from a deque and two running sums.

    ``runningSumSq / n - mean**2`` subtracts two numbers of the size of mean² to
    get one of the size of std²: exact to 6 decimals on gauss(50, 10), but an
    offset that dwarfs the spread cancels it (``detectAnomaliesRobust`` below).
    Rounding can leave it a hair below 0, and ``(-x) ** 0.5`` is a complex number
    in Python: hence the clamp.
    """
    results: list[FlaggedReading] = []
    window: deque[float] = deque(maxlen=WINDOW_SIZE)
    runningSum = 0.0
    runningSumSq = 0.0
    for r in records:
        newVal = r["value"]
        if len(window) == WINDOW_SIZE:
            droppedVal = window[0]  # the append below drops it (maxlen=50)
            runningSum += newVal - droppedVal
            runningSumSq += newVal**2 - droppedVal**2
        else:
            runningSum += newVal
            runningSumSq += newVal**2
        window.append(newVal)
        windowSize = len(window)
        mean = runningSum / windowSize
        variance = max(0.0, runningSumSq / windowSize - mean**2)
        isAnomaly = abs(newVal - mean) > threshold * variance**0.5
        results.append({**r, "anomaly": isAnomaly, "zScore": abs(newVal - mean)})
    return results


# Beyond the spec ------------------------------------------------------------
# The same O(1) per record without the cancellation: a sliding Welford update.

CANCELLATION_GUARD: Final = 1e-6


def windowMoments(window: Iterable[float]) -> tuple[float, float]:
    """Mean and sum of squared deviations, two-pass: exact to rounding, O(window)."""
    values = list(window)
    mean = sum(values) / len(values)
    return mean, sum([(v - mean) ** 2 for v in values])


def detectAnomaliesRobust(
    records: Sequence[Reading], threshold: float = 2.5, *, resyncEvery: int = 1024
) -> list[FlaggedReading]:
    """``detectAnomalies``' output in O(1) per record where running sums would cancel: sliding Welford.

    The window keeps its mean and M2 (sum of squared deviations); when ``x``
    enters and ``y`` leaves, ``mean += (x - y) / n`` and ``M2 += (x - y) * (x -
    newMean + y - oldMean)``. No offset-sized numbers are subtracted, so an offset
    of 1e9 leaves the variance intact. An exact two-pass recount of the 50 values
    (O(1) amortised) bounds what rounding can still do: every ``resyncEvery``
    records, and whenever M2 falls below a millionth of its recent peak (after a
    level shift leaves the window, M2's error is relative to the old, large M2).
    The comparison is done squared, ``dev² > threshold² * M2 / n``: no square root.
    """
    requireRange("resyncEvery", resyncEvery, 1)
    results: list[FlaggedReading] = []
    window: deque[float] = deque(maxlen=WINDOW_SIZE)
    mean = m2 = 0.0
    for count, r in enumerate(records[:WINDOW_SIZE], start=1):  # filling: the plain Welford update
        x = r["value"]
        window.append(x)
        delta = x - mean
        mean += delta / count
        m2 += delta * (x - mean)
        deviation = abs(x - mean)
        std = math.sqrt(m2 / count) if m2 > 0.0 else 0.0
        results.append({**r, "anomaly": deviation > threshold * std, "zScore": deviation})
    limit = threshold * threshold / WINDOW_SIZE
    step = 1.0 / WINDOW_SIZE
    for start in range(WINDOW_SIZE, len(records), resyncEvery):
        mean, m2 = windowMoments(window)
        peak = m2
        for r in records[start : start + resyncEvery]:
            x = r["value"]
            y = window[0]
            window.append(x)  # maxlen=50 drops y
            d = x - y
            newMean = mean + d * step
            m2 += d * (x - newMean + y - mean)
            mean = newMean
            if m2 > peak:
                peak = m2
            elif m2 < peak * CANCELLATION_GUARD:
                mean, m2 = windowMoments(window)
                peak = m2
            deviation = abs(x - mean)
            results.append({**r, "anomaly": deviation * deviation > limit * m2, "zScore": deviation})
    return results


# Config, result, runner -----------------------------------------------------


def makeAnomalyRecords(count: int, anomalies: int, seed: int) -> list[Reading]:
    """Requirement 1: gauss(50, 10) values, ``anomalies`` of them set to 150.0 at random indices."""
    rng = makeRng(seed, LECTURE, 1, "records")
    records: list[Reading] = [{"id": i, "value": rng.gauss(50, 10)} for i in range(count)]
    for index in rng.sample(range(count), anomalies):
        records[index]["value"] = 150.0
    return records


@dataclass(frozen=True, slots=True)
class OutputComparison:
    """Requirement 4: two detectors' outputs, record by record."""

    records: int
    flagMismatches: int
    zScoreMismatches: int  # records whose zScores differ once rounded to 6 decimal places
    maxZScoreDiff: float

    @property
    def identical(self) -> bool:
        """The same flags, and the same zScores to 6 decimal places."""
        return self.flagMismatches == 0 and self.zScoreMismatches == 0


def compareOutputs(slow: Sequence[FlaggedReading], fast: Sequence[FlaggedReading]) -> OutputComparison:
    """Flags and zScores of ``fast`` against ``slow``, record by record."""
    if len(slow) != len(fast) or any(a["id"] != b["id"] for a, b in zip(slow, fast, strict=True)):
        raise ConfigError(f"the outputs hold different records ({len(slow)} and {len(fast)})")
    pairs = list(zip(slow, fast, strict=True))
    return OutputComparison(
        records=len(pairs),
        flagMismatches=sum(a["anomaly"] != b["anomaly"] for a, b in pairs),
        zScoreMismatches=sum(round(a["zScore"], 6) != round(b["zScore"], 6) for a, b in pairs),
        maxZScoreDiff=max((abs(a["zScore"] - b["zScore"]) for a, b in pairs), default=0.0),
    )


@dataclass(frozen=True, slots=True)
class Exercise1Config:
    """The spec's numbers: 20,000 records, 200 anomalies of 150.0, threshold 2.5, top 12, timeit x 20."""

    records: int = 20_000
    anomalies: int = 200
    threshold: float = 2.5
    profileTop: int = 12
    repetitions: int = 20

    def __post_init__(self) -> None:
        requireRange("records", self.records, 1, 10_000_000)
        requireRange("anomalies", self.anomalies, 0, self.records)
        requireRange("threshold", self.threshold, 0.0, 1e6)
        requireRange("profileTop", self.profileTop, 1, 100)
        requireRange("repetitions", self.repetitions, 1, 1_000)

    @classmethod
    def quick(cls) -> Exercise1Config:
        """A fifth of the records, five repetitions."""
        return cls(records=4_000, anomalies=40, repetitions=5)


@dataclass(frozen=True, slots=True)
class TimingSummary:
    """timeit figures for one function, in milliseconds per call; ``samplesMs``: one per repetition."""

    label: str
    bestMs: float
    medianMs: float
    samplesMs: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Exercise1Result:
    """What exercise 1 measured; times in milliseconds."""

    config: Exercise1Config
    python: str
    flagged: int
    injectedFlagged: int
    slowProfile: tuple[ProfileRow, ...]
    fastProfile: tuple[ProfileRow, ...]
    slowProfiledMs: float
    fastProfiledMs: float
    comparison: OutputComparison
    slow: TimingSummary
    fast: TimingSummary

    @property
    def speedup(self) -> float:
        """Slow over fast, best of the timeit repetitions each."""
        return speedup(self.slow.bestMs, self.fast.bestMs)

    @property
    def pairedSpeedups(self) -> tuple[float, ...]:
        """Slow over fast in each repetition (the two ran in the same round): the speedup's spread."""
        pairs = zip(self.slow.samplesMs, self.fast.samplesMs, strict=True)
        return tuple(speedup(slow, fast) for slow, fast in pairs)


def profileCall(
    top: int, fn: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs
) -> tuple[tuple[ProfileRow, ...], float]:
    """Run ``fn(*args)`` under cProfile: its top functions by cumulative time, and the total ms."""
    profiler = cProfile.Profile()
    with Stopwatch() as watch:
        profiler.runcall(fn, *args, **kwargs)
    return profileRows(profiler, sortBy="cumulative", limit=top), watch.elapsed * 1e3


def timeTurns(calls: Sequence[tuple[str, Callable[[], object]]], repetitions: int) -> tuple[TimingSummary, ...]:
    """Requirement 5: timeit, one call per repetition, the functions taking turns.

    Taking turns spreads a slow moment of a shared machine over every function
    instead of whichever ran during it; repetition ``i`` of each function ran in
    the same round, so their ratio is a paired one. Best of N is the figure
    timeit's documentation recommends; the median and the samples show the spread.
    """
    timers = [(label, timeit.Timer(call)) for label, call in calls]
    samples: dict[str, list[float]] = {label: [] for label, _ in calls}
    for _ in range(repetitions):
        for label, timer in timers:
            samples[label].append(timer.timeit(number=1) * 1e3)
    return tuple(
        TimingSummary(label, min(times), statistics.median(times), tuple(times)) for label, times in samples.items()
    )


def runExercise1(config: Exercise1Config, *, seed: int, log: Log = silent) -> Exercise1Result:
    """Requirements 1-5: generate, profile the slow version, fix, re-profile, verify, time both."""
    records = makeAnomalyRecords(config.records, config.anomalies, seed)
    threshold = config.threshold
    log(f"{config.records:,} records, {config.anomalies} set to 150.0; profiling both versions ...")
    slowProfile, slowProfiledMs = profileCall(config.profileTop, detectAnomalies, records, threshold)
    fastProfile, fastProfiledMs = profileCall(config.profileTop, detectAnomaliesFast, records, threshold)
    slowOut = detectAnomalies(records, threshold)
    comparison = compareOutputs(slowOut, detectAnomaliesFast(records, threshold))
    assert comparison.flagMismatches == 0, f"{comparison.flagMismatches} anomaly flags differ"  # noqa: S101 - requirement 4 asks for assert; the lab checks the same under python -O
    assert comparison.zScoreMismatches == 0, f"{comparison.zScoreMismatches} zScores differ at 6 decimals"  # noqa: S101 - as above
    log(f"timeit: {config.repetitions} repetitions of each, taking turns ...")
    slow, fast = timeTurns(
        (
            ("detectAnomalies", lambda: detectAnomalies(records, threshold)),
            ("detectAnomaliesFast", lambda: detectAnomaliesFast(records, threshold)),
        ),
        config.repetitions,
    )
    injected = {r["id"] for r in records if r["value"] == 150.0}
    return Exercise1Result(
        config=config,
        python=PYTHON,
        flagged=sum(r["anomaly"] for r in slowOut),
        injectedFlagged=sum(r["anomaly"] for r in slowOut if r["id"] in injected),
        slowProfile=slowProfile,
        fastProfile=fastProfile,
        slowProfiledMs=slowProfiledMs,
        fastProfiledMs=fastProfiledMs,
        comparison=comparison,
        slow=slow,
        fast=fast,
    )


def _shortName(function: str) -> str:
    """``sum`` for ``<built-in method builtins.sum>``, the qualified name for Python code."""
    if function.startswith("<built-in method "):
        return function.removeprefix("<built-in method ").rstrip(">").rsplit(".", 1)[-1]
    return function.split("(", 1)[-1].rstrip(")") if "(" in function else function


def _cumulative(rows: Sequence[ProfileRow], name: str) -> ProfileRow | None:
    return next((row for row in rows if _shortName(row.function) == name), None)


def _whatDominates(result: Exercise1Result) -> str:
    """Requirement 2's question, read from the slow version's profile."""
    sums = _cumulative(result.slowProfile, "sum")
    if sums is None:
        return "What dominates: no sum() call in the top rows."
    genexpr = _cumulative(result.slowProfile, "detectAnomalies.<locals>.<genexpr>")
    own = _cumulative(result.slowProfile, "detectAnomalies")
    return (
        f"What dominates: sum() calls, {sums.cumulativeMs:.0f} of {result.slowProfiledMs:.0f} ms cumulative "
        f"({sums.calls:,} calls), {genexpr.cumulativeMs if genexpr else 0:.0f} ms of it in the generator that "
        f"feeds the variance's sum. The slice is a bytecode, not a call: cProfile counts it in detectAnomalies' "
        f"own time ({own.totalMs if own else 0:.0f} ms, with the rest of the loop)."
    )


def formatExercise1(result: Exercise1Result) -> str:
    """Requirements 2-5: both profiles, what dominates, the assert, the timings."""
    config = result.config
    comparison = result.comparison
    sums = _cumulative(result.slowProfile, "sum")
    fastSums = _cumulative(result.fastProfile, "sum")
    paired = result.pairedSpeedups
    timings = formatTable(
        ("function", "best ms", "median ms"),
        [(t.label, f"{t.bestMs:.2f}", f"{t.medianMs:.2f}") for t in (result.slow, result.fast)],
        title=f"timeit, {config.repetitions} repetitions of each (taking turns):",
    )
    return "\n".join(
        [
            "",
            prose(
                f"detectAnomalies flags {result.flagged} of {config.records:,} records, {result.injectedFlagged} of "
                f"them among the {config.anomalies} values set to 150.0."
            ),
            "",
            formatProfileRows(
                result.slowProfile,
                title=f"cProfile: detectAnomalies, top {config.profileTop} by cumulative time "
                f"(total {result.slowProfiledMs:.0f} ms under the profiler)",
            ),
            prose(_whatDominates(result)),
            "",
            formatProfileRows(
                result.fastProfile,
                title=f"cProfile: detectAnomaliesFast, top {config.profileTop} by cumulative time "
                f"(total {result.fastProfiledMs:.0f} ms under the profiler)",
            ),
            prose(
                f"Hotspots before -> after: sum() {sums.cumulativeMs if sums else 0:.0f} ms -> "
                f"{f'{fastSums.cumulativeMs:.0f} ms' if fastSums else 'not called'}; the whole function "
                f"{result.slowProfiledMs:.0f} -> {result.fastProfiledMs:.0f} ms under the profiler."
            ),
            "",
            prose(
                f"assert passed: the same flags on all {comparison.records:,} records, and zScores equal to 6 "
                f"decimal places (largest difference {comparison.maxZScoreDiff:.1e})."
            ),
            "",
            timings,
            prose(
                f"Slow {result.slow.bestMs:.1f} ms, fast {result.fast.bestMs:.1f} ms: speedup {result.speedup:.1f}x "
                f"(best of {config.repetitions}; repetition by repetition {min(paired, default=0):.1f}-"
                f"{max(paired, default=0):.1f}x)."
            ),
        ]
    )


def exercise1(options: RunOptions, log: Log) -> Exercise1Result:
    """Registry entry: run exercise 1 with the spec's numbers (or quick ones) and print it."""
    config = Exercise1Config.quick() if options.quick else Exercise1Config()
    result = runExercise1(config, seed=options.seed, log=log)
    log(formatExercise1(result))
    return result


# ============================================================================
# Exercise 2 - @measuredStage with Pipeline Integration
# ============================================================================
#
# req 2   measuredStage (first: the stages of req 1 are decorated with it); p95 in its report line
# req 1   ThresholdFilter, WindowNormalizer, MovingAvgTransform: generator methods
# req 3   makeStageRecords (5,000 gauss(50, 10)); runStagePipeline: the chain, consumed in a for loop
# req 4   formatExercise2: the highest mean latency, the lecture's rule, the stage it traces to
# req 5   WindowNormalizerFixed (a running min and max); the second run; before/after
# beyond  self time in StageMetrics; StageMetricsCollector (the figures, besides the printed lines)
#
#   records -> ThresholdFilter.process -> WindowNormalizer.process -> MovingAvgTransform.process -> for loop
#
# A pull pipeline: the for loop's next() runs the whole chain for one record.
# The lecture's latency, from one yield of a stage to its next, therefore spans
# what downstream did with the previous record and what upstream did for this
# one; self time is the part spent inside the stage's own code.

SelfT = TypeVar("SelfT")
InT = TypeVar("InT")
OutT = TypeVar("OutT")
T = TypeVar("T")
StageMethod = Callable[[SelfT, Iterable[InT]], Iterator[OutT]]


def measuredStage(name: str) -> Callable[[StageMethod[SelfT, InT, OutT]], StageMethod[SelfT, InT, OutT]]:
    """Example 37.2: measure a stage's generator method ``process(self, inputStream)``.

    Latency is the lecture's: the time from one yield of the stage to its next
    (the first from the stage's start), in ``latenciesMs``. Beside it, self time:
    the time inside the stage's own ``next()`` minus the time it spent pulling
    from upstream. When the stage ends (exhausted or closed) the figures become a
    ``StageMetrics`` (count, mean and p95 latency, throughput, self time) whose
    line is printed. The generator stays lazy: nothing runs until pulled.
    """

    def decorate(method: StageMethod[SelfT, InT, OutT]) -> StageMethod[SelfT, InT, OutT]:
        @functools.wraps(method)
        def measured(self: SelfT, inputStream: Iterable[InT]) -> Iterator[OutT]:
            upstream = _TimedInput(inputStream)
            inner = method(self, upstream)
            clock = time.perf_counter
            latenciesMs: list[float] = []
            selfSeconds = 0.0
            exhausted = False
            started = lastYield = clock()
            try:
                while True:
                    waited = upstream.seconds
                    begin = clock()
                    try:
                        item = next(inner)
                    except StopIteration:
                        exhausted = True
                        break
                    finally:
                        now = clock()
                        selfSeconds += now - begin - (upstream.seconds - waited)
                    latenciesMs.append((now - lastYield) * 1e3)
                    lastYield = now
                    yield item
            finally:
                if isinstance(inner, Generator):
                    inner.close()  # closed early: the stage's own finally blocks run now
                wallMs = (clock() - started) * 1e3
                _publish(StageMetrics.of(name, latenciesMs, upstream.count, selfSeconds * 1e3, wallMs, exhausted))

        return measured

    return decorate


@dataclass(frozen=True, slots=True)
class StageMetrics:
    """What ``@measuredStage`` measured for one stage run, frozen when the stage ended."""

    name: str
    records: int
    recordsIn: int
    meanLatencyMs: float
    p95LatencyMs: float
    selfMs: float
    wallMs: float
    exhausted: bool

    @classmethod
    def of(
        cls, name: str, latenciesMs: Sequence[float], recordsIn: int, selfMs: float, wallMs: float, exhausted: bool
    ) -> StageMetrics:
        """The summary of one stage's ``latenciesMs``: mean and p95 (linear interpolation)."""
        mean = statistics.fmean(latenciesMs) if latenciesMs else 0.0
        p95 = percentile(latenciesMs, 95) if latenciesMs else 0.0
        return cls(name, len(latenciesMs), recordsIn, mean, p95, selfMs, wallMs, exhausted)

    @property
    def meanSelfMs(self) -> float:
        """Own time per record delivered."""
        return self.selfMs / self.records if self.records else 0.0

    @property
    def throughputPerSec(self) -> float:
        """Records delivered per second of the stage's life (first pull to end)."""
        return self.records / (self.wallMs / 1e3) if self.wallMs > 0 else 0.0

    def reportLine(self) -> str:
        """The line ``@measuredStage`` prints when the stage ends (requirement 2: p95 included)."""
        state = "" if self.exhausted else ", closed early"
        return (
            f"[{self.name}{state}] {self.records:,} rec  mean {self.meanLatencyMs:.4f} ms  "
            f"p95 {self.p95LatencyMs:.4f} ms  {self.throughputPerSec:,.0f} rec/s  self {self.meanSelfMs:.4f} ms"
        )


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


_COLLECTORS: Final[list[StageMetricsCollector]] = []


def _publish(metrics: StageMetrics) -> None:
    if _COLLECTORS:
        _COLLECTORS[-1].add(metrics)
    else:
        print(metrics.reportLine())


@final
class StageMetricsCollector:
    """Beyond the spec: collects the metrics of every stage that ends inside ``with``.

    ``@measuredStage`` hands its metrics to the innermost active collector, which
    prints the line through ``log`` and keeps the figures for the runner; with no
    collector the decorator prints the line itself. Single-threaded, like the
    pipelines it measures.
    """

    def __init__(self, log: Log = print) -> None:
        self._log = log
        self._stages: list[StageMetrics] = []

    def __enter__(self) -> StageMetricsCollector:
        _COLLECTORS.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _COLLECTORS.remove(self)

    def add(self, metrics: StageMetrics) -> None:
        """Keep one finished stage's metrics and print its line."""
        self._stages.append(metrics)
        self._log(metrics.reportLine())

    @property
    def stages(self) -> tuple[StageMetrics, ...]:
        """Finished stages, in the order they ended (upstream first)."""
        return tuple(self._stages)


class NormalizedReading(Reading):
    """A reading with its min-max normalised value."""

    norm: float


class SmoothedReading(NormalizedReading):
    """A normalised reading with the moving average of the last 20 norms."""

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
    """Stage 2 as the spec gives it: min() and max() over every value seen, for each record.

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


class MovingAvgTransform:
    """Stage 3: the moving average of the last 20 norms."""

    @measuredStage("MovingAvgTransform")
    def process(self, inputStream: Iterable[NormalizedReading]) -> Iterator[SmoothedReading]:
        """Yield each reading with ``movingAvg`` over a deque of 20."""
        window: deque[float] = deque(maxlen=20)
        for r in inputStream:
            window.append(r["norm"])
            yield {**r, "movingAvg": sum(window) / len(window)}


class WindowNormalizerFixed:
    """Requirement 5: the same stage with a running min and max, O(1) per record.

    The spec's ``seen`` never slides (it keeps every value), so a running min and
    max over everything seen give exactly its output. They are updated by two
    compares: a builtin ``min()`` call costs about ten of them. Measured under the
    same stage name, so the before and after lines compare one to one.
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


class NormalizerStage(Protocol):
    """Either normaliser: the spec's slow one or the fixed one."""

    def process(self, inputStream: Iterable[Reading]) -> Iterator[NormalizedReading]:
        """Yield normalised readings."""
        ...


@dataclass(frozen=True, slots=True)
class Exercise2Config:
    """The spec's numbers: 5,000 gauss(50, 10) readings through three stages."""

    records: int = 5_000

    def __post_init__(self) -> None:
        requireRange("records", self.records, 1, 1_000_000)

    @classmethod
    def quick(cls) -> Exercise2Config:
        """Four fifths of the records: the O(N²) stage still runs long enough to be seen (and stopped)."""
        return cls(records=4_000)


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

    def downstreamOf(self, name: str) -> str | None:
        """The stage after ``name`` in the chain, None for the last one."""
        names = [s.name for s in self.stages]
        index = names.index(name) + 1
        return names[index] if index < len(names) else None

    @property
    def highestLatency(self) -> StageMetrics:
        """The stage with the highest mean latency: what requirement 4 reads first."""
        return max(self.stages, key=lambda s: s.meanLatencyMs)

    @property
    def bottleneck(self) -> StageMetrics:
        """The stage with the most self time: where the time is spent."""
        return max(self.stages, key=lambda s: s.selfMs)

    @property
    def countsAddUp(self) -> bool:
        """Each stage delivered what the next one pulled; the consumer got the last stage's output."""
        pairs = itertools.pairwise(self.stages)
        return all(a.records == b.recordsIn for a, b in pairs) and self.stages[-1].records == self.consumed


@dataclass(frozen=True, slots=True)
class Exercise2Result:
    """What exercise 2 measured: the run before the fix, the run after, whether they agree."""

    config: Exercise2Config
    inputRecords: int
    before: PipelineRun
    after: PipelineRun
    outputsIdentical: bool


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


def runExercise2(config: Exercise2Config, *, seed: int, log: Log = silent) -> Exercise2Result:
    """Requirements 3-5: run, trace the bottleneck, fix, re-run."""
    records = makeStageRecords(config.records, seed)
    log(f"Before the fix ({config.records:,} records), the lines @measuredStage prints:")
    before, slowOut = runStagePipeline(records, WindowNormalizer(), label="before fix", log=log)
    log("After the fix (a running min and max):")
    after, fastOut = runStagePipeline(records, WindowNormalizerFixed(), label="after fix", log=log)
    return Exercise2Result(config, len(records), before, after, outputsIdentical=slowOut == fastOut)


def formatExercise2(result: Exercise2Result) -> str:
    """Requirements 4 and 5: the highest latency, the lecture's rule, the traced stage, before/after."""
    before, after = result.before, result.after
    highest = before.highestLatency
    means = ", ".join(f"{s.name} {s.meanLatencyMs:.4f}" for s in before.stages if s is not highest)
    latencies = [s.meanLatencyMs for s in before.stages]
    spread = max(latencies) / min(latencies) - 1 if min(latencies) > 0 else math.inf
    downstream = before.downstreamOf(highest.name)
    slow = before.bottleneck
    top, *rest = sorted(after.stages, key=lambda s: s.selfMs, reverse=True)
    return "\n".join(
        [
            "",
            prose(
                f"Highest mean latency: {highest.name}, {highest.meanLatencyMs:.4f} ms ({means}; {spread:.1%} apart)."
            ),
            prose(
                "Read from the highest mean, the lecture's rule (high latency in a stage: its downstream stage is "
                "slow) points at "
                + (f"{downstream}" if downstream else f"no stage ({highest.name} is the last one)")
                + ". But yield to yield, a stage's interval spans what the stages after it did with its previous "
                "record and what the stages before it did for its next one: in a pull chain, the whole chain's "
                "work for one record, at every stage alike."
            ),
            prose(
                f"Self time (inside each stage's own next(), upstream excluded) traces the time to {slow.name}: "
                f"{slow.selfMs:.0f} of the pipeline's {before.wallMs:.0f} ms."
            ),
            "",
            prose(
                f"After the fix: the pipeline {before.wallMs:.0f} -> {after.wallMs:.0f} ms; WindowNormalizer's self "
                f"time {before.stage('WindowNormalizer').selfMs:.1f} -> {after.stage('WindowNormalizer').selfMs:.1f} "
                f"ms; the most self time is now {top.name}'s, {top.selfMs:.1f} ms (next: "
                + ", ".join(f"{s.name} {s.selfMs:.1f} ms" for s in rest)
                + f"). Outputs identical: {result.outputsIdentical}."
            ),
        ]
    )


def exercise2(options: RunOptions, log: Log) -> Exercise2Result:
    """Registry entry: run exercise 2 with the spec's numbers (or quick ones) and print it."""
    config = Exercise2Config.quick() if options.quick else Exercise2Config()
    result = runExercise2(config, seed=options.seed, log=log)
    log(formatExercise2(result))
    return result


# ============================================================================
# Exercise 3 - __slots__ and Memory Profiling
# ============================================================================
#
# req 1   EventDict, EventSlots, EventNamedTuple, EventDataclass: the same six attributes
# req 2   measureClassMemory: 50,000 instances between two tracemalloc snapshots
# req 3   measureClassMemory: sys.getsizeof(obj) and of obj.__dict__; formatExercise3's breakdown
# req 4   measureReads: timeit, 1,000,000 reads of obj.value per class
# req 5   findAttributeTypo: instance.vlaue = 99 on EventDict, then on EventSlots
#
#   makeEventRows -> cls(*row) x 50,000 between snapshots -> bytes/instance; obj.value x 1,000,000 -> reads/s


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
MATERIALIZED: Final = "EventDict, __dict__ touched"


@dataclass(frozen=True, slots=True)
class Exercise3Config:
    """The spec's numbers: 50,000 instances per class, 1,000,000 attribute reads."""

    instances: int = 50_000
    reads: int = 1_000_000
    readRepeats: int = 7

    def __post_init__(self) -> None:
        requireRange("instances", self.instances, 1, 10_000_000)
        requireRange("reads", self.reads, 1, 100_000_000)
        requireRange("readRepeats", self.readRepeats, 1, 100)

    @classmethod
    def quick(cls) -> Exercise3Config:
        """A tenth of the instances, a third of the reads (a round of a millisecond is all scheduler noise)."""
        return cls(instances=5_000, reads=300_000)


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
    """Requirement 4 for one class: reads of ``obj.value`` per second (timeit's loop included).

    ``readsPerSecond`` is the best of the repeats; ``nsSamples`` holds every
    repeat, in the order of the rounds in which all the classes took turns.
    """

    className: str
    readsPerSecond: float
    nsSamples: tuple[float, ...] = ()

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
    every instance, as a separate figure (from the traced total: a third
    snapshot would cost a second of grouping for one number).
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
    tracedBefore = tracemalloc.get_traced_memory()[0]
    try:
        namespaces = [instance.__dict__ for instance in instances]
    except AttributeError as error:
        dictError = type(error).__name__
    else:
        touched = tracemalloc.get_traced_memory()[0] - tracedBefore
        dictTouch = (touched - sys.getsizeof(namespaces)) / count
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


def measureReads(objects: Sequence[tuple[str, object]], reads: int, repeats: int) -> tuple[ReadRow, ...]:
    """Requirement 4: timeit, ``reads`` reads of ``obj.value``, ``repeats`` rounds in which each object takes a turn.

    Taking turns (the order rotating from round to round) spreads a slow moment
    of a shared machine over every class, so round ``i`` of two classes compares
    like with like.
    """
    timers = [timeit.Timer("o.value", setup="o = obj", globals={"obj": obj}) for _, obj in objects]
    seconds: list[list[float]] = [[] for _ in objects]
    for round_ in range(repeats):
        shift = round_ % len(objects)
        for index in [*range(shift, len(objects)), *range(shift)]:
            seconds[index].append(timers[index].timeit(number=reads))
    return tuple(
        ReadRow(label, reads / min(times), tuple(t / reads * 1e9 for t in times))
        for (label, _), times in zip(objects, seconds, strict=True)
    )


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
    outcome = "silently created 'vlaue'" if created else "refused"
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
    log(f"timeit: {config.reads:,} reads of obj.value per class, {config.readRepeats} rounds ...")
    materialized = EventDict(*rows[0])
    vars(materialized)  # asking for __dict__ creates it
    objects: list[tuple[str, object]] = [(cls.__name__, cls(*rows[0])) for cls in EVENT_CLASSES]
    *reads, touched = measureReads([*objects, (MATERIALIZED, materialized)], config.reads, config.readRepeats)
    emptyTimer = timeit.Timer("o", setup="o = obj", globals={"obj": materialized})
    emptyLoop = min(emptyTimer.repeat(repeat=config.readRepeats, number=config.reads)) / config.reads
    return Exercise3Result(
        config=config,
        python=PYTHON,
        memory=memory,
        reads=tuple(reads),
        readsMaterialized=touched,
        emptyLoopNs=emptyLoop * 1e9,
        typo=findAttributeTypo(silent),
    )


def formatExercise3(result: Exercise3Result) -> str:
    """Requirements 2-5: memory per class, EventDict's breakdown, reads per second, the typo."""
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
    reads = formatTable(
        ("class", "reads/s", "ns/read", "every round, ns/read"),
        [
            (
                row.className,
                f"{row.readsPerSecond:,.0f}",
                f"{row.nsPerRead:.1f}",
                f"{min(row.nsSamples, default=row.nsPerRead):.1f}-{max(row.nsSamples, default=row.nsPerRead):.1f}",
            )
            for row in (*result.reads, result.readsMaterialized)
        ],
        title=f"timeit, {config.reads:,} reads of obj.value, best of {config.readRepeats} rounds taking turns "
        f"(empty loop: {result.emptyLoopNs:.1f} ns):",
    )
    ranked = sorted(result.reads, key=lambda row: row.nsPerRead)
    return "\n".join(
        [
            "",
            memory,
            prose(_memoryOrder(result.memory)),
            "",
            _dictBreakdown(result),
            "",
            reads,
            prose(
                f"Fastest reads: {ranked[0].className}, then {ranked[1].className}; slowest: {ranked[-1].className} "
                f"({ranked[-1].nsPerRead:.1f} ns). The lecture expects Slots and NamedTuple fastest, Dict slowest."
            ),
            "",
            "Typo safety (findAttributeTypo):",
            *result.typo.lines,
        ]
    )


def _dictBreakdown(result: Exercise3Result) -> str:
    """Requirement 3: EventDict's bytes per instance, base object and __dict__ apart."""
    regular = result.memoryOf("EventDict")
    if regular.valuesInline:
        layout = "stored inline in the object's own memory block (one block per instance)"
    else:
        layout = f"a separate values array the object points to ({regular.blocksPerInstance:.0f} blocks per instance)"
    return formatTable(
        ("part", "bytes", "what it is"),
        [
            ("base object", regular.getsizeofInstance, "sys.getsizeof(obj): the object alone"),
            ("attribute values", f"{regular.bytesPerInstance - regular.getsizeofInstance:.0f}", layout),
            ("total (tracemalloc)", f"{regular.bytesPerInstance:.0f}", "no dict exists until __dict__ is first read"),
            (
                "__dict__ once read",
                f"+{regular.dictTouchBytesPerInstance or 0.0:.0f}",
                f"the dict object; sys.getsizeof(__dict__) = {regular.getsizeofDict} counts the values too",
            ),
        ],
        title=f"EventDict, bytes per instance on {result.python}:",
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
# Exercise 4 - Comprehensive Pipeline Measurement Dashboard
# ============================================================================
#
# req 1   PipelineMeasurementContext: tracemalloc + cProfile + a clock; elapsedMs, topHotspotsStr,
#         memoryAllocatedKb, peakMemoryKb
# req 2   ThresholdFilter (exercise 2's), Normalizer, FeatureComputer, AlertDetector, each @measuredStage
# req 3   runDashboardPipeline: 10,000 records inside the context; formatExercise4 prints the dashboard
# req 4   runExercise4: 5 more runs, their means; stabilityOf: each stage's throughput CV (< 10%: stable)
# req 5   AlertDetector(leak=True) keeps every record in AlertDetector.allAlerts: 5 runs, then 5 fixed
#
#   with PipelineMeasurementContext():
#       records -> ThresholdFilter -> Normalizer -> FeatureComputer -> AlertDetector -> for loop


@final
class PipelineMeasurementContext:
    """cProfile, tracemalloc and a wall clock around one block of single-threaded code.

    On enter: tracemalloc starts (unless already tracing, so that contexts nest
    in a longer tracemalloc session), the start snapshot is taken, the traced
    total read and the peak reset; then the profiler is enabled and the clock
    started, last, so that neither the snapshot nor the profiler's start-up is
    measured. On exit the same in reverse, with the end snapshot.

    Net memory is the traced total at exit minus at entry: what the block left
    allocated (cProfile's own few records included). Peak is above the level at
    entry. The two snapshots are kept (``snapshots``) for whoever wants to know
    where the memory went: grouping them costs time per traced block, so it is
    done only on demand. cProfile sees only the thread that enabled it on 3.11
    (3.12+ misattributes other threads' calls): keep the measured code in it.
    """

    def __init__(self, *, hotspots: int = 5) -> None:
        requireRange("hotspots", hotspots, 1, 100)
        self._hotspots = hotspots
        self._profiler: cProfile.Profile | None = None
        self._startedTracing = False
        self._startSnapshot: tracemalloc.Snapshot | None = None
        self._snapshots: tuple[tracemalloc.Snapshot, tracemalloc.Snapshot] | None = None
        self._startTraced = 0
        self._started = self._cpuStarted = 0.0
        self._elapsed: float | None = None
        self._cpu = 0.0
        self._netBytes = self._peakBytes = 0
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

    @property
    def snapshots(self) -> tuple[tracemalloc.Snapshot, tracemalloc.Snapshot]:
        """The start and end snapshots: ``end.compare_to(start, "lineno")`` says where the memory went."""
        self._finished()
        if self._snapshots is None:
            raise RuntimeError("the block ended before its end snapshot was taken")
        return self._snapshots


class FeatureReading(SmoothedReading):
    """A normalised reading with its moving average and its change from the previous one."""

    delta: float


class AlertReading(FeatureReading):
    """A reading with its features and the alert decision."""

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
    """The spec's numbers: 10,000 records; 5 stability runs, 5 leaking runs, 5 fixed runs; std < 10%."""

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
        """A twentieth of the records, three runs per series."""
        return cls(records=500, runs=3)


@dataclass(frozen=True, slots=True)
class DashboardRun:
    """One measured pipeline run: the context's figures, the stages' metrics, the counts."""

    elapsedMs: float
    cpuMs: float
    netKb: float
    peakKb: float
    hotspots: tuple[ProfileRow, ...]
    hotspotsText: str
    stages: tuple[StageMetrics, ...]
    consumed: int
    alerts: int
    kept: int
    retainedKb: float = math.nan

    @property
    def cpuShare(self) -> float:
        """The share of one core the run got over its wall time (1.0: it never waited for the CPU)."""
        return self.cpuMs / self.elapsedMs if self.elapsedMs > 0 else 1.0

    def throughput(self, stage: str) -> float:
        """Records per second of one stage, as @measuredStage measured it."""
        return next(s.throughputPerSec for s in self.stages if s.name == stage)


@dataclass(frozen=True, slots=True)
class StabilityRow:
    """Requirement 4 for one stage: throughput across runs and its coefficient of variation."""

    stage: str
    meanThroughput: float
    cv: float


@dataclass(frozen=True, slots=True)
class Exercise4Result:
    """What exercise 4 measured: the dashboard run, the stability runs, the leak and its fix."""

    config: Exercise4Config
    python: str
    inputRecords: int
    passedFilter: int
    main: DashboardRun
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
        """Requirement 4's test: every stage's throughput std is under the limit (10%) of its mean."""
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


def runDashboardPipeline(records: Sequence[Reading], *, leak: bool, log: Log = silent) -> DashboardRun:
    """Requirement 3: one 4-stage run inside a ``PipelineMeasurementContext``, consumed in a for loop."""
    consumed = alerts = 0
    with StageMetricsCollector(log) as collector, PipelineMeasurementContext() as measurement:
        filtered = ThresholdFilter().process(iter(records))
        normalized = Normalizer().process(filtered)
        features = FeatureComputer().process(normalized)
        for record in AlertDetector(leak=leak).process(features):
            consumed += 1
            alerts += record["alert"]
    return DashboardRun(
        elapsedMs=measurement.elapsedMs,
        cpuMs=measurement.cpuMs,
        netKb=measurement.memoryAllocatedKb,
        peakKb=measurement.peakMemoryKb,
        hotspots=measurement.hotspots,
        hotspotsText=measurement.topHotspotsStr,
        stages=collector.stages,
        consumed=consumed,
        alerts=alerts,
        kept=len(AlertDetector.allAlerts),
    )


def stabilityOf(runs: Sequence[DashboardRun]) -> tuple[StabilityRow, ...]:
    """Requirement 4: each stage's throughput across ``runs``, its mean and its CV (std / mean)."""
    return tuple(
        StabilityRow(
            stage.name,
            statistics.fmean(run.throughput(stage.name) for run in runs),
            coefficientOfVariation([run.throughput(stage.name) for run in runs]),
        )
        for stage in runs[0].stages
    )


def runSeries(records: Sequence[Reading], runs: int, *, leak: bool) -> tuple[tuple[DashboardRun, ...], LinearFit]:
    """Requirement 5: ``runs`` runs in one tracemalloc session, so what a run keeps shows in the next.

    Each run's ``retainedKb`` is the traced memory after it (its context and
    snapshots gone) above the level before the first: it grows by what the leak
    keeps. The fit is of that against the run number.
    """
    startedHere = not tracemalloc.is_tracing()
    if startedHere:
        tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        series: list[DashboardRun] = []
        for _ in range(runs):
            run = runDashboardPipeline(records, leak=leak)
            series.append(replace(run, retainedKb=(tracemalloc.get_traced_memory()[0] - baseline) / 1024))
    finally:
        if startedHere:
            tracemalloc.stop()
    fit = linearFit([float(i) for i in range(1, runs + 1)], [run.retainedKb for run in series])
    return tuple(series), fit


def runExercise4(config: Exercise4Config, *, seed: int, log: Log = silent) -> Exercise4Result:
    """Requirements 3-5: the dashboard run, five stability runs, five leaking runs, five fixed runs."""
    records = makeDashboardRecords(config, seed)
    log(f"Dashboard run ({config.records:,} records), the lines @measuredStage prints:")
    main = runDashboardPipeline(records, leak=False, log=log)
    stability = tuple(runDashboardPipeline(records, leak=False) for _ in range(config.runs))
    AlertDetector.allAlerts.clear()
    try:
        leaking, leakFit = runSeries(records, config.runs, leak=True)
    finally:
        AlertDetector.allAlerts.clear()  # the fix: nothing keeps the records any more
    fixed, fixedFit = runSeries(records, config.runs, leak=False)
    return Exercise4Result(
        config=config,
        python=PYTHON,
        inputRecords=len(records),
        passedFilter=main.stages[0].records,
        main=main,
        stability=stability,
        stabilityRows=stabilityOf(stability),
        leaking=leaking,
        fixed=fixed,
        leakFit=leakFit,
        fixedFit=fixedFit,
    )


def formatExercise4(result: Exercise4Result) -> str:
    """Requirements 3-5: the dashboard, the stability report, the leak and its fix."""
    main = result.main
    config = result.config
    rows: list[tuple[str | int, ...]] = [
        (i, f"{run.elapsedMs:.0f}", f"{run.netKb:.1f}", *(f"{run.throughput(s.name):,.0f}" for s in main.stages))
        for i, run in enumerate(result.stability, start=1)
    ]
    rows.append(("CV", "", "", *(f"{row.cv:.1%}" for row in result.stabilityRows)))
    stability = formatTable(
        ("run", "elapsed ms", "net KB", *(s.name for s in main.stages)),
        rows,
        title=f"Stability, {config.runs} runs (stage columns: records/s from @measuredStage; CV = std/mean):",
    )
    leak = formatTable(
        ("run", "leak: net KB", "kept records", "retained KB", "fixed: net KB", "retained KB"),
        [
            (i, f"{a.netKb:,.0f}", f"{a.kept:,}", f"{a.retainedKb:,.0f}", f"{b.netKb:,.1f}", f"{b.retainedKb:,.1f}")
            for i, (a, b) in enumerate(zip(result.leaking, result.fixed, strict=True), start=1)
        ],
        title="Leak (AlertDetector.allAlerts keeps every record), then fixed; retained = since the series began:",
    )
    worst = max(result.stabilityRows, key=lambda row: row.cv)
    return "\n".join(
        [
            "",
            prose(
                f"Total elapsed: {main.elapsedMs:.0f} ms for {result.inputRecords:,} records "
                f"({result.passedFilter:,} past the filter, {main.alerts} alerts), under cProfile and tracemalloc."
            ),
            "Top 5 hotspots by own time:",
            main.hotspotsText,
            f"Net memory allocated: {main.netKb:.1f} KB; peak during the run: {main.peakKb:,.0f} KB.",
            "",
            stability,
            prose(
                f"Mean elapsed {result.meanElapsedMs:.0f} ms, mean net memory {result.meanNetKb:.1f} KB. Throughput "
                f"{'stable' if result.stable else 'NOT stable'}: the largest CV is {worst.stage}'s, {worst.cv:.1%} "
                f"(limit {config.stabilityLimit:.0%})."
            ),
            "",
            leak,
            prose(
                f"Leak: retained memory grows {result.leakFit.slope:,.0f} KB per run (R² = "
                f"{result.leakFit.rSquared:.4f}): each run keeps its {result.passedFilter:,} records. Fixed: "
                f"{result.fixedFit.slope:,.1f} KB per run."
            ),
        ]
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
