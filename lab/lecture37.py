"""The lab of lecture 37 (Measurable pipeline: profiling and metrics): its claims, studies and benchmarks.

How each claim is judged (``judgeN`` on one run, ``studyN`` in ``invoke verify`` only):

- exercise 1: the assert's identity (structural); "4-20x" on the speedup of
  each timeit repetition (slow and fast ran in the same round), against the
  floor and the ceiling alike; whether slicing and the sums dominate, repetition
  by repetition. Beyond the lecture (findings, structural): the spec's running
  sums flip flags on data hard for floating point, ``detectAnomaliesRobust`` none;
  what cProfile's overhead does to the profiled speedup;
- exercise 2 (``study2``, five rounds of the pipeline before and after the fix,
  taking turns): the rule "high latency in a stage indicates the downstream stage
  is slow" under the lecture's latency (yield to yield), in its three readings,
  each with what self time adds; the trace to the slow stage; the fix;
- exercise 3: the typo, ``__dict__`` and memory claims (structural: bytes, not
  time); requirement 4's sentence part by part and "Dict with __dict__" in both
  readings, round by round; why, from the bytecode the read specialises into;
- exercise 4: counts and the controlled leak's memory (structural: tracemalloc
  bytes); stability over five series of five runs (``study4``); where the leaked
  memory went (a finding);
- benchmarks: exercise 1 over the record count, exercise 2 before and after the
  fix, each row with the spread of its runs and the floor checked round by round.

Closing note - the spec's parameters, seed 42, CPython 3.11.7, 2 cores shared with other runs:

- Exercise 1: slow 125 ms, fast (the spec's running sums) 20 ms, 6.2x best of
  20; repetition by repetition 3.3-10.0x on a busy machine, 5.3-6.6x quick when
  quieter: "4-20x" holds or is too close to call, never fails. The strict assert
  holds (largest zScore difference 2.8e-13). Near 1e6 with a spread of 0.01 the
  running sums flip 4,625 of 5,000 flags (14,276 over the seven hard data
  sets), the robust version none. The variance's sum is 84% of the slow loop,
  the slice 3%.
- Exercise 2: yield to yield, the three mean latencies agree to 0.1% (the
  reading from the highest is not measurable); 96% of ThresholdFilter's latency
  is WindowNormalizer's self time (holds); MovingAvgTransform, after the slow
  stage, shows the same latency with 2% of it its own (the rule as an indicator
  does not hold). Self time puts 519 of the pipeline's 544 ms in
  WindowNormalizer; after the fix 16 ms, its self time 0.65x the next stage's.
- Exercise 3: 128 / 80 / 96 / 128 B per instance; a touched ``__dict__`` adds
  64 B. Reads: a slot (LOAD_ATTR_SLOT) and an untouched instance
  (LOAD_ATTR_INSTANCE_VALUE) about 10-12 ns, too close to call; a NamedTuple
  field, a ``_tuplegetter`` descriptor the read does not specialise for, about
  24 ns; an instance whose ``__dict__`` exists, unspecialised, about 30 ns, the
  slowest in every round when the machine is quiet.
- Exercise 4: the leak keeps 3,416 KB per run (R² 1.0000); the fix 4 KB, each
  run's own result (its hotspot rows and stage metrics). The worst stage's CV
  ranged 1-30% from one 5-run series to the next: too close to call here.
- Bench 37.2: the floor won most paired rounds (64 and 67 of 105 in two quick
  runs); where a median crossed it (130% at 4,000 records) the floor's median
  was 18.6 ms, against 12.7 ms in the next run: the measurement on a busy
  machine, not the floor's calibration.
"""

from __future__ import annotations

import cProfile
import dis
import functools
import inspect
import itertools
import math
import statistics
import sys
import tracemalloc
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from types import CodeType
from typing import Any, Final, Literal

import l37
from l37 import (
    EVENT_CLASSES,
    LECTURE,
    MATERIALIZED,
    WINDOW_SIZE,
    AlertDetector,
    DashboardRun,
    EventDict,
    EventNamedTuple,
    Exercise1Result,
    Exercise2Result,
    Exercise3Result,
    Exercise4Config,
    Exercise4Result,
    FeatureComputer,
    FlaggedReading,
    MovingAvgTransform,
    NormalizedReading,
    Normalizer,
    NormalizerStage,
    PipelineMeasurementContext,
    PipelineRun,
    Reading,
    StabilityRow,
    StageMetrics,
    StageMetricsCollector,
    ThresholdFilter,
    TimingSummary,
    WindowNormalizer,
    WindowNormalizerFixed,
    detectAnomalies,
    detectAnomaliesFast,
    detectAnomaliesRobust,
    makeAnomalyRecords,
    makeDashboardRecords,
    makeEventRows,
    makeStageRecords,
    measuredStage,
    runDashboardPipeline,
    runStagePipeline,
    stabilityOf,
    timeTurns,
    windowMoments,
)
from lab.bench import EFFICIENCY_TARGET, Benchmark, BenchOptions, BenchReport, BenchRow, interleavedRepeats
from lab.claims import MIN_REPEATS, Claim, ClaimKind, Line, Origin, Repeats, Verdict, judge, judgeRepeats
from lab.registry import ExerciseLab, LectureLab
from lab.report import barChart
from shared import ConfigError, Log, RunOptions, Stopwatch, formatTable, linearFit, makeRng, prose, silent, speedup

# ============================================================================
# Exercise 1: hard data, the slow loop's operations one by one, the profiler's overhead
# ============================================================================

HardKind = Literal[
    "offset 1e9", "offset 1e12", "spread 1e-9", "level shifts", "plateaus", "mixed scales", "1e6, spread 0.01"
]
HARD_KINDS: Final[tuple[HardKind, ...]] = (
    "offset 1e9",
    "offset 1e12",
    "spread 1e-9",
    "level shifts",
    "plateaus",
    "mixed scales",
    "1e6, spread 0.01",
)


def makeHardRecords(kind: HardKind, count: int, seed: int) -> list[Reading]:
    """Data that is hard for floating point: each kind breaks a different shortcut.

    Large offsets cancel a running sum of squares (1e6 with a spread of 0.01
    is enough); a 1e-9 spread around 1.0 does too; level shifts and plateaus
    make M2 fall by many orders of magnitude, where an incremental update keeps
    an error relative to the old, large M2; mixed scales put values of 1e-6 and
    1e6 in one window. Each has 1% spikes of 8 spreads.
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
        elif kind == "mixed scales":
            values.append(rng.choice((1e-6, 1.0, 1e6)) * noise)
        else:
            values.append(1e6 + 0.01 * noise)
    return [{"id": i, "value": value} for i, value in enumerate(values)]


TIE_ULPS: Final = 64


@dataclass(frozen=True, slots=True)
class Agreement:
    """How a detector's output compares with ``detectAnomalies``', record by record.

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


def _isRoundingTie(values: Sequence[float], index: int, zScore: float, threshold: float) -> bool:
    """Whether the reference's flag at ``index`` was decided within ``TIE_ULPS`` ulps of its threshold."""
    window = values[max(0, index - WINDOW_SIZE + 1) : index + 1]
    _, m2 = windowMoments(window)
    margin = abs(zScore - threshold * math.sqrt(m2 / len(window)))
    return margin <= TIE_ULPS * math.ulp(max(abs(v) for v in window))


def agreementOf(
    reference: Sequence[FlaggedReading], candidate: Sequence[FlaggedReading], threshold: float = 2.5
) -> Agreement:
    """Flags and zScores of ``candidate`` against the slow version's ``reference``, rounding ties apart.

    The relative zScore error is against the larger of the value and the zScore:
    at an offset of 1e9 one ulp is 1.2e-7, so absolute decimals mean nothing there.
    """
    if len(reference) != len(candidate):
        raise ConfigError(f"outputs differ in length: {len(reference)} and {len(candidate)}")
    values = [r["value"] for r in reference]
    mismatches = ties = 0
    maxDiff = maxRelative = 0.0
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
class HardDataRow:
    """One hard data set: the spec's running sums and the robust version against the slow version."""

    kind: HardKind
    anomalies: int
    runningSums: Agreement
    robust: Agreement


def hardDataRow(kind: HardKind, count: int, seed: int, threshold: float = 2.5) -> HardDataRow:
    """The three detectors on one hard data set."""
    records = makeHardRecords(kind, count, seed)
    reference = detectAnomalies(records, threshold)
    return HardDataRow(
        kind=kind,
        anomalies=sum(r["anomaly"] for r in reference),
        runningSums=agreementOf(reference, detectAnomaliesFast(records, threshold), threshold),
        robust=agreementOf(reference, detectAnomaliesRobust(records, threshold), threshold),
    )


def _mismatches(agreement: Agreement) -> str:
    if not agreement.flagMismatches:
        return "0"
    return f"{agreement.flagMismatches:,} ({agreement.roundingTies:,} rounding ties)"


def formatHardData(rows: Sequence[HardDataRow]) -> str:
    """Flags that differ from the slow version's, per hard data set, running sums beside the robust version."""
    return formatTable(
        ("hard data", "anomalies", "running sums: flags differ", "robust: flags differ", "robust: rel. zScore"),
        [
            (
                row.kind,
                row.anomalies,
                _mismatches(row.runningSums),
                _mismatches(row.robust),
                f"{row.robust.maxRelativeZScoreDiff:.1e}",
            )
            for row in rows
        ],
        title="detectAnomaliesFast (the spec's running sums) and detectAnomaliesRobust vs detectAnomalies:",
    )


def buildOutputWithWindow(records: Iterable[Reading]) -> list[FlaggedReading]:
    """The floor plus reading each value and sliding the deque: everything but the statistics."""
    results: list[FlaggedReading] = []
    window: deque[float] = deque(maxlen=WINDOW_SIZE)
    for r in records:
        x = r["value"]
        window.append(x)
        results.append({**r, "anomaly": False, "zScore": x})
    return results


def buildOutputFloor(records: Iterable[Reading]) -> list[FlaggedReading]:
    """Only the mandated output, one new dict per record, no statistics: no version can be faster."""
    return [{**r, "anomaly": False, "zScore": 0.0} for r in records]


@dataclass(frozen=True, slots=True)
class OperationCost:
    """What one of the slow version's per-record operations costs, measured alone at full window.

    ``samples`` holds every repetition's figure (the empty loop of the same round
    subtracted), in round order; ``nsPerRecord`` is their median.
    """

    operation: str
    nsPerRecord: float
    samples: tuple[float, ...] = ()


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

    timings = timeTurns(
        (
            ("loop", emptyLoop),
            ("window = window[1:] (+ append)", slicing),
            ("sum(window) / len(window)", meanSum),
            ("sum((x - mean)**2 for x in window)", varianceSum),
            (WHOLE_LOOP, lambda: detectAnomalies(sample)),
        ),
        repetitions,
    )
    loop = timings[0]

    def perRecord(t: TimingSummary) -> tuple[float, ...]:
        pairs = zip(t.samplesMs, loop.samplesMs, strict=True)
        return tuple((ms if t.label == WHOLE_LOOP else max(0.0, ms - loopMs)) / count * 1e6 for ms, loopMs in pairs)

    return tuple(OperationCost(t.label, statistics.median(perRecord(t)), perRecord(t)) for t in timings[1:])


def formatBreakdown(breakdown: Sequence[OperationCost]) -> str:
    """The breakdown as a table with each operation's share of the whole loop."""
    whole = next(c.nsPerRecord for c in breakdown if c.operation == WHOLE_LOOP)
    return formatTable(
        ("operation (once per record, window of 50, timed alone)", "ns/record", "share of the loop"),
        [(c.operation, f"{c.nsPerRecord:.0f}", f"{c.nsPerRecord / whole:.0%}") for c in breakdown],
    )


PROFILER_USES_MONITORING: Final = sys.version_info >= (3, 12)  # cProfile moved onto sys.monitoring (PEP 669)


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


def profilerNote(result: Exercise1Result, bytecodeRatio: float) -> str:
    """Why the profiled speedup differs from timeit's, for the profiler this interpreter has."""
    records = result.config.records
    profiled = speedup(result.slowProfiledMs, result.fastProfiledMs)
    slowEvents = sum(row.calls for row in result.slowProfile) / records
    fastEvents = sum(row.calls for row in result.fastProfile) / records
    events = (
        f"every call and generator resumption pays a fixed cost ({slowEvents:.0f} per record in the slow version, "
        f"{fastEvents:.0f} in the fast one)"
    )
    loop = f"a loop that makes no calls runs {bytecodeRatio:.1f}x as long under it"
    if PROFILER_USES_MONITORING:
        how = f"On {result.python} cProfile listens to sys.monitoring call events only (PEP 669): {loop}, but {events}."
    else:
        how = (
            f"On {result.python} cProfile is a sys.setprofile hook, which sends every instruction through the "
            f"interpreter's slower tracing path: {loop}; on top of that {events}."
        )
    return prose(
        f"Under cProfile the speedup reads {profiled:.1f}x against timeit's {result.speedup:.1f}x. {how} Both "
        "distort the ratio: profiled figures are for finding hotspots, timeit's is the real one."
    )


def strictest(claims: Sequence[Claim]) -> Claim:
    """One claim every part must agree on: the first part that does not hold, else the first too close, else all hold.

    Parts are judged apart (a slot against each rival alone, a speedup against
    its floor and its ceiling), so that no part borrows another's noise.
    """
    for verdict in (Verdict.FAILS, Verdict.TOO_CLOSE, Verdict.NOT_MEASURED):
        for claim in claims:
            if claim.verdict is verdict:
                return claim
    return claims[0]


SPEEDUP_LOW: Final = 4.0  # requirement 5: "The speedup should be substantial (4-20x)"
SPEEDUP_HIGH: Final = 20.0


def judgeWithin(
    exercise: int,
    statement: str,
    figure: Repeats,
    lines: tuple[Line, Line],
    *,
    measured: str,
    reasons: tuple[str, str],
) -> Claim:
    """A timing claim "the figure lies between two lines" (a floor and a ceiling), decided repeat by repeat.

    Every repeat inside the range holds; every repeat below the floor, or every
    repeat above the ceiling, does not hold (with that side's reason: above the
    ceiling is not "within the range" either); any repeat across a line is too close.
    """
    floor, ceiling = (
        judgeRepeats(LECTURE, exercise, statement, figure, line, measured=measured, reason=reason)
        for line, reason in zip(lines, reasons, strict=True)
    )
    return strictest((floor, ceiling))


def judge1(result: Exercise1Result) -> tuple[Claim, ...]:
    """The claims one run of exercise 1 decides: the assert's identity; the speedup, from timeit's repetitions.

    The speedup is judged repetition by repetition: slow and fast ran in the same
    round, so their ratio is paired, and the range of those ratios is its spread.
    """
    comparison = result.comparison
    fastNs = result.fast.bestMs * 1e6 / result.config.records
    paired = Repeats.of(result.pairedSpeedups or (result.speedup,))
    return (
        judge(
            LECTURE,
            1,
            "detectAnomaliesFast: same anomaly flags, same zScores to 6 decimal places",
            measured=f"{comparison.flagMismatches} flags and {comparison.zScoreMismatches} zScores of "
            f"{comparison.records:,} differ; max zScore diff {comparison.maxZScoreDiff:.1e}",
            holds=comparison.identical,
            kind=ClaimKind.STRUCTURAL,
            reason="the running sums drifted from the slow version's two-pass statistics",
        ),
        judgeWithin(
            1,
            "the speedup is substantial (4-20x)",
            paired,
            (Line.above(SPEEDUP_LOW, spec=".1f", unit="x"), Line.under(SPEEDUP_HIGH, spec=".1f", unit="x")),
            measured=f"{paired.median:.1f}x, slow / fast per repetition (best of each: {result.speedup:.1f}x)",
            reasons=(
                (
                    f"the fast version still costs {fastNs:.0f} ns per record: its output dict and the running "
                    "statistics"
                ),
                (
                    f"above the lecture's range in every repetition: a larger speedup than {SPEEDUP_LOW:.0f}-"
                    f"{SPEEDUP_HIGH:.0f}x, not one within it"
                ),
            ),
        ),
    )


def study1(options: RunOptions, result: Exercise1Result, log: Log) -> tuple[Claim, ...]:
    """Hard data (running sums vs the robust version), the operations one by one, the profiler's overhead."""
    count = 1_500 if options.quick else 5_000
    rows = tuple(hardDataRow(kind, count, options.seed, result.config.threshold) for kind in HARD_KINDS)
    breakdown = measureBreakdown(makeAnomalyRecords(result.config.records, result.config.anomalies, options.seed))
    log(formatHardData(rows))
    log(formatBreakdown(breakdown))
    log(profilerNote(result, profiledBytecodeRatio()))
    return (judgeBreakdown(breakdown), *judgeHardData(rows, result))


CANCELS_ON: Final[HardKind] = "1e6, spread 0.01"  # an offset a hundred million times the spread


def judgeHardData(rows: Sequence[HardDataRow], result: Exercise1Result) -> tuple[Claim, ...]:
    """This project's findings on hard data: the running sums cancel, the robust version does not.

    Both are deterministic (seeded data, no timing), so both are structural: a
    failure means the lab's hard data or the robust update is broken.
    """
    robustFlags = sum(row.robust.flagMismatches for row in rows)
    robustReal = sum(row.robust.realMismatches for row in rows)
    sumsFlags = sum(row.runningSums.flagMismatches for row in rows)
    cancelling = next((row for row in rows if row.kind == CANCELS_ON), None)
    cancelled = cancelling.runningSums.realMismatches if cancelling else 0
    onSpec = result.comparison.flagMismatches
    return (
        judge(
            LECTURE,
            1,
            "a running sum and sum of squares compute the same variance on gauss(50, 10), not near "
            f"{CANCELS_ON} (flags flip)",
            measured=f"{onSpec} flags differ on gauss(50, 10); {sumsFlags:,} on hard data ({cancelled:,} beyond "
            f"rounding ties on '{CANCELS_ON}')",
            holds=onSpec == 0 and cancelled > 0,
            kind=ClaimKind.STRUCTURAL,
            reason=(
                "the running sums flipped flags on the spec's own data"
                if onSpec
                else f"the running sums flipped no flag on '{CANCELS_ON}': that data no longer cancels"
            ),
            origin=Origin.FINDING,
        ),
        judge(
            LECTURE,
            1,
            "detectAnomaliesRobust: the same flags as detectAnomalies on data hard for floating point",
            measured=f"{robustFlags} flags differ over {len(rows)} hard data sets of {rows[0].runningSums.records:,}"
            + (f", all rounding ties (< {TIE_ULPS} ulps)" if robustFlags and not robustReal else ""),
            holds=robustReal == 0,
            kind=ClaimKind.STRUCTURAL,
            reason="cancellation in the sliding update was not caught by the resync guard",
            origin=Origin.FINDING,
        ),
    )


DOMINATES: Final = 0.5  # "dominate": more than half of the slow loop's time


def judgeBreakdown(breakdown: Sequence[OperationCost]) -> Claim:
    """Requirement 2's suspects (list slicing, sum calls) against the whole loop, repetition by repetition.

    Each repetition timed every operation and the whole loop in the same round,
    so each gives one share; the claim is decided only when every share is on one
    side of one half.
    """
    costs = {cost.operation: cost for cost in breakdown}
    whole = costs[WHOLE_LOOP]
    slicing = next(cost for op, cost in costs.items() if op.startswith("window"))
    sums = [cost for op, cost in costs.items() if op.startswith("sum(")]

    def series(cost: OperationCost) -> tuple[float, ...]:
        return cost.samples or (cost.nsPerRecord,)

    sumSeries = [sum(values) for values in zip(*(series(cost) for cost in sums), strict=True)]
    shares = Repeats.of(
        [(s + c) / w for s, c, w in zip(sumSeries, series(slicing), series(whole), strict=True) if w > 0] or [0.0]
    )
    sumShare = statistics.median(s / w for s, w in zip(sumSeries, series(whole), strict=True) if w > 0)
    sliceShare = statistics.median(c / w for c, w in zip(series(slicing), series(whole), strict=True) if w > 0)
    return judgeRepeats(
        LECTURE,
        1,
        "list slicing and sum calls dominate the slow version's runtime",
        shares,
        Line.above(DOMINATES, spec=".0%"),
        measured=f"{shares.median:.0%} of the loop: sum calls {sumShare:.0%}, the slice {sliceShare:.0%} "
        "(medians, each timed alone)",
        reason="the loop's own bytecode (dict build, abs, compare) costs more than both",
    )


# ============================================================================
# Exercise 2: the lecture's latency rule under its own definition, and self time
# ============================================================================
#
# Yield to yield (the lecture's latency), a stage's interval spans what the
# stages after it did with its previous record and what the stages before it did
# for its next one. In a pull chain that is the whole chain's work for one
# record, at every stage alike: so the rule "high latency in a stage indicates
# the downstream stage is slow" is judged in three readings, and self time (a
# stage's own share of its interval) says what the latencies cannot.

STANDS_OUT: Final = 1.10  # a stage's mean latency stands out at 10% above every other stage's
WAITS: Final = 0.5  # a stage waits when less than half of its latency is its own time
DOMINANT: Final = 2.0  # a stage with twice the self time of any other is the bottleneck


@dataclass(frozen=True, slots=True)
class PipelineRounds:
    """Exercise 2's pipeline before and after the fix, the two taking turns round by round."""

    before: tuple[PipelineRun, ...]
    after: tuple[PipelineRun, ...]


def runPipelineRounds(records: Sequence[Reading], rounds: int) -> PipelineRounds:
    """``rounds`` runs of each pipeline through the exercise's runner, interleaved (the order rotating)."""
    before: list[PipelineRun] = []
    after: list[PipelineRun] = []

    def slow() -> None:
        before.append(runStagePipeline(records, WindowNormalizer(), label="before fix")[0])

    def fixed() -> None:
        after.append(runStagePipeline(records, WindowNormalizerFixed(), label="after fix")[0])

    interleavedRepeats([slow, fixed], rounds)
    return PipelineRounds(tuple(before), tuple(after))


def ownShare(stage: StageMetrics) -> float:
    """The part of a stage's mean latency that is its own time (self time per record over latency)."""
    return stage.meanSelfMs / stage.meanLatencyMs if stage.meanLatencyMs > 0 else 1.0


def traceBottleneck(run: PipelineRun) -> str:
    """Follow the lecture's rule downstream from the first stage while a stage waits; stop where one does not.

    A stage whose own time is under half of its latency waits: the rule sends the
    search to the stage after it. The first stage whose own time fills its latency
    is the slow one; past the last stage, the time is the consumer's.
    """
    for stage in run.stages:
        if ownShare(stage) >= WAITS:
            return stage.name
    return "the consumer"


def _medianStage(runs: Sequence[PipelineRun], name: str, field: Callable[[StageMetrics], float]) -> float:
    return statistics.median(field(run.stage(name)) for run in runs)


def _latencies(runs: Sequence[PipelineRun]) -> str:
    """The stages' median mean latencies: one figure when they agree to 4 decimals, else one per stage."""
    names = [s.name for s in runs[0].stages]
    means = {name: f"{_medianStage(runs, name, lambda s: s.meanLatencyMs):.4f}" for name in names}
    if len(set(means.values())) == 1:
        return f"{means[names[0]]} ms at every stage"
    return ", ".join(f"{name} {mean}" for name, mean in means.items()) + " ms"


def _standOut(run: PipelineRun) -> float:
    """The highest stage's mean latency over the next highest's."""
    means = sorted((s.meanLatencyMs for s in run.stages), reverse=True)
    return means[0] / means[1] if len(means) > 1 and means[1] > 0 else math.inf


RULE: Final = "high latency in a stage indicates the downstream stage is slow"


def highestReading(runs: Sequence[PipelineRun]) -> Claim:
    """Reading 1: the stage with the highest mean latency sits just before the slow one.

    Decided only where one stage stands out (10% above every other) in every round;
    where none does in any round, there is nothing to point from: not measurable.
    """
    figure = Repeats.of([_standOut(run) for run in runs])
    slow = runs[0].bottleneck
    claim = judgeRepeats(
        LECTURE,
        2,
        f"{RULE} (read: the highest mean latency sits just before the slow stage)",
        figure,
        Line.above(STANDS_OUT, spec=".3f", unit="x"),
        measured=f"mean latency {_latencies(runs)} (medians); the highest / the next {figure.median:.3f}x",
    )
    if claim.verdict is Verdict.FAILS:
        share = statistics.median(run.stage(slow.name).selfMs / sum(s.selfMs for s in run.stages) for run in runs)
        return replace(
            claim,
            verdict=Verdict.NOT_MEASURED,
            reason="yield to yield, every stage's interval spans the whole chain's work for one record, so no "
            f"stage's mean stands out ({STANDS_OUT - 1:.0%} above the others) and the rule has no stage to start "
            f"from; self time says what the latencies cannot: {slow.name} does {share:.0%} of the chain's own work",
        )
    if claim.verdict is Verdict.HOLDS:
        highest = {run.highestLatency.name for run in runs}
        pointed = {run.downstreamOf(run.highestLatency.name) for run in runs}
        slowest = {run.bottleneck.name for run in runs}
        if len(highest) > 1 or len(slowest) > 1:
            why = "a different stage stood out (or was slowest) from one round to the next"
            return replace(claim, verdict=Verdict.TOO_CLOSE, reason=why)
        if pointed != slowest:
            why = f"the stage after {highest.pop()} is {pointed.pop() or 'none'}, not {slowest.pop()}, the slow one"
            return replace(claim, verdict=Verdict.FAILS, reason=why)
    return claim


def causeReading(runs: Sequence[PipelineRun]) -> Claim:
    """Reading 2: a stage whose downstream stage is slow shows that slowness in its own latency.

    Per round, the smallest share of an upstream stage's latency that is the slow
    stage's own time; not measurable when the slow stage is the first one.
    """
    statement = f"{RULE} (read: a stage before the slow one shows its slowness in its latency)"
    slow = runs[0].bottleneck.name
    names = [s.name for s in runs[0].stages]
    upstream = names[: names.index(slow)]
    if not upstream:
        return judge(
            LECTURE,
            2,
            statement,
            measured=f"{slow} is the first stage",
            holds=None,
            kind=ClaimKind.TIMING,
            reason="no stage sits before the slow one to show it",
        )
    shares = Repeats.of(
        [min(run.stage(slow).meanSelfMs / run.stage(u).meanLatencyMs for u in upstream) for run in runs]
    )
    first = upstream[-1]
    return judgeRepeats(
        LECTURE,
        2,
        statement,
        shares,
        Line.above(WAITS, spec=".0%"),
        measured=f"{first}'s latency: {shares.median:.0%} of it is {slow}'s self time, "
        f"{_medianStage(runs, first, ownShare):.1%} its own",
        reason=f"{slow}'s own time is under half of the latency of the stages before it",
    )


def indicatorReading(runs: Sequence[PipelineRun]) -> Claim:
    """Reading 3: every stage whose latency is high (mostly not its own time) has the slow stage downstream.

    Per round, the smallest own share among the stages after the slow one: under
    one half in every round means a stage after it waits as much, and the rule,
    pointing downstream from it, points away from the slow stage.
    """
    slow = runs[0].bottleneck.name
    names = [s.name for s in runs[0].stages]
    after = names[names.index(slow) + 1 :]
    figure = Repeats.of([min((ownShare(run.stage(d)) for d in after), default=1.0) for run in runs])
    last = after[-1] if after else slow
    return judgeRepeats(
        LECTURE,
        2,
        f"{RULE} (read: every stage with high latency has the slow stage after it)",
        figure,
        Line.above(WAITS, spec=".1%"),
        measured=(
            f"{last}, after {slow}: the same latency, {figure.median:.1%} of it its own (self time)"
            if after
            else f"{slow} is the last stage: every stage before it has it downstream"
        ),
        reason=f"a stage after {slow} waits as long, for upstream's work on its next record: yield to yield, the "
        "rule cannot tell which side is slow; self time can",
    )


def traceReading(runs: Sequence[PipelineRun]) -> Claim:
    """Requirement 4's trace: follow the rule downstream while a stage waits; it should stop at WindowNormalizer."""
    target = "WindowNormalizer"
    shares = Repeats.of([ownShare(run.stage(target)) for run in runs])
    traced = Counter(traceBottleneck(run) for run in runs)
    return judgeRepeats(
        LECTURE,
        2,
        f"tracing the bottleneck finds the actual slow stage: {target}",
        shares,
        Line.above(WAITS, spec=".1%"),
        measured=f"the rule followed while a stage waits stops at {traced.most_common(1)[0][0]} "
        f"({traced.most_common(1)[0][1]} of {len(runs)} rounds); {target}'s self time: {shares.median:.1%} of "
        "its latency",
        reason=f"{target}'s own time is under half of its latency: it waits for another stage",
    )


def afterFixReading(rounds: PipelineRounds) -> Claim:
    """Requirement 5: after the fix, WindowNormalizer no longer has twice the self time of any other stage."""
    name = "WindowNormalizer"

    def dominance(run: PipelineRun) -> float:
        others = max(s.selfMs for s in run.stages if s.name != name)
        return run.stage(name).selfMs / others if others > 0 else math.inf

    figure = Repeats.of([dominance(run) for run in rounds.after])
    top = Counter(run.bottleneck.name for run in rounds.after).most_common(1)[0][0]
    before = _medianStage(rounds.before, name, lambda s: s.selfMs)
    after = _medianStage(rounds.after, name, lambda s: s.selfMs)
    latency = (
        f"{_medianStage(rounds.before, name, lambda s: s.meanLatencyMs):.4f} -> "
        f"{_medianStage(rounds.after, name, lambda s: s.meanLatencyMs):.4f} ms"
    )
    return judgeRepeats(
        LECTURE,
        2,
        "after the fix the bottleneck shifts or disappears",
        figure,
        Line.under(DOMINANT, spec=".2f", unit="x"),
        measured=f"{name} self {before:.0f} -> {after:.1f} ms, {figure.median:.2f}x the next stage's (top now: "
        f"{top}); its latency {latency}",
        reason=f"{name} still has twice the self time of any other stage",
    )


def judge2(result: Exercise2Result) -> tuple[Claim, ...]:
    """The claims one run of exercise 2 decides: the counts and the fix's identity (the timing ones need rounds)."""
    before, after = result.before, result.after
    return (
        judge(
            LECTURE,
            2,
            "every stage reports once; counts add up from source to consumer",
            measured=" -> ".join(f"{s.name} {s.recordsIn:,}/{s.records:,}" for s in before.stages),
            holds=before.countsAddUp
            and after.countsAddUp
            and before.stages[0].recordsIn == result.inputRecords
            and len(before.stages) == len(after.stages) == 3,
            kind=ClaimKind.STRUCTURAL,
            reason="a stage lost or duplicated records, or did not report",
        ),
        judge(
            LECTURE,
            2,
            "the fixed WindowNormalizer yields the same records",
            measured=f"{after.consumed:,} records, identical" if result.outputsIdentical else "outputs differ",
            holds=result.outputsIdentical,
            kind=ClaimKind.STRUCTURAL,
            reason="the running min/max differ from min(seen)/max(seen)",
        ),
    )


def judgeRounds(rounds: PipelineRounds) -> tuple[Claim, ...]:
    """The lecture's rule in its three readings, the trace, and the fix, each over the rounds."""
    return (
        highestReading(rounds.before),
        causeReading(rounds.before),
        indicatorReading(rounds.before),
        traceReading(rounds.before),
        afterFixReading(rounds),
    )


def study2(options: RunOptions, result: Exercise2Result, log: Log) -> tuple[Claim, ...]:
    """Exercise 2's pipelines before and after the fix in rounds; the timing claims judged over them."""
    rounds = runPipelineRounds(makeStageRecords(result.config.records, options.seed), MIN_REPEATS)
    log(f"exercise 2: {MIN_REPEATS} rounds of the pipeline before and after the fix")
    return judgeRounds(rounds)


# ============================================================================
# Exercise 3: the attribute reads, judged round by round; why, from the bytecode
# ============================================================================
#
# Requirement 4 says "Slots and NamedTuple should be fastest; Dict with __dict__
# should be slowest". Each part is judged on its own, round by round (the classes
# took turns in each round). "Dict with __dict__" has two readings on 3.11+: an
# EventDict as created keeps its values in an array and has no dict until
# __dict__ is asked for; one whose __dict__ exists reads through it. Why a read
# is fast or slow is told from facts: which instruction the interpreter
# specialised the read into (dis, adaptive) and what kind of attribute it is.

GENERIC_READS: Final = frozenset({"LOAD_ATTR", "LOAD_ATTR_ADAPTIVE"})  # not specialised (3.12+ shows LOAD_ATTR)
WARM_UP: Final = 1_000  # calls before the read is looked at: the interpreter specialises after a few


def specialisedRead(obj: object) -> str:
    """The instruction this interpreter turns ``obj.value`` into once warm (``dis``, adaptive).

    The read is compiled afresh for each object, so no other object's
    specialisation is in its code.
    """
    namespace: dict[str, Any] = {}
    exec(compile("def read(o):\n    return o.value\n", "<read>", "exec"), namespace)  # noqa: S102 - a constant
    read = namespace["read"]
    for _ in range(WARM_UP):
        read(obj)
    found = [i.opname for i in dis.get_instructions(read, adaptive=True) if i.opname.startswith("LOAD_ATTR")]
    return found[0] if found else "?"


@dataclass(frozen=True, slots=True)
class ReadFacts:
    """How this interpreter reads ``obj.value`` for each kind of object: facts, not timings."""

    version: tuple[int, int]
    instructions: dict[str, str]  # class label -> the specialised instruction
    namedTupleField: str  # the type of EventNamedTuple.value (a descriptor on the class)

    def generic(self, label: str) -> bool:
        """Whether the read of ``label`` stayed unspecialised (the generic attribute lookup)."""
        return self.instructions[label] in GENERIC_READS


@functools.cache
def readFacts() -> ReadFacts:
    """The read facts of the running interpreter (computed once)."""
    row = makeEventRows(1, 0)[0]
    materialized = EventDict(*row)
    vars(materialized)
    objects: list[tuple[str, object]] = [(cls.__name__, cls(*row)) for cls in EVENT_CLASSES]
    objects.append((MATERIALIZED, materialized))
    return ReadFacts(
        (sys.version_info.major, sys.version_info.minor),
        {label: specialisedRead(obj) for label, obj in objects},
        type(vars(EventNamedTuple)["value"]).__name__,
    )


def _rounds(result: Exercise3Result, label: str) -> tuple[float, ...]:
    row = result.readsMaterialized if label == MATERIALIZED else result.readsOf(label)
    return row.nsSamples or (row.nsPerRead,)


def _short(label: str) -> str:
    return "__dict__ touched" if label == MATERIALIZED else label.removeprefix("Event")


def _readsClaim(
    result: Exercise3Result, statement: str, subject: str, rivals: Sequence[str], *, fastest: bool, reason: str
) -> Claim:
    """``subject`` faster (``fastest``) or slower than each of ``rivals``, round by round, one rival at a time.

    The figure against a rival is its time over the subject's (``fastest``) or the
    subject's over its, per round: at least 1 in every round against every rival
    holds. Where every part holds, the row shows the closest rival.
    """
    ns = {label: statistics.median(_rounds(result, label)) for label in (subject, *rivals)}
    times = ", ".join(f"{_short(label)} {ns[label]:.1f}" for label in (subject, *rivals))
    parts: list[tuple[float, Claim]] = []
    for rival in rivals:
        pair = (_rounds(result, rival), _rounds(result, subject))
        figure = Repeats.ratios(*pair) if fastest else Repeats.ratios(*reversed(pair))
        ratio = f"{_short(rival)} / {_short(subject)}" if fastest else f"{_short(subject)} / {_short(rival)}"
        claim = judgeRepeats(
            LECTURE,
            3,
            statement,
            figure,
            Line.above(1.0, spec=".2f", unit="x"),
            measured=f"{ratio} {figure.median:.2f}x per round; ns/read {times} (medians)",
            reason=reason,
        )
        parts.append((figure.median, claim))
    parts.sort(key=lambda part: part[0])
    return strictest([claim for _, claim in parts])


def _slotReason(result: Exercise3Result, facts: ReadFacts) -> str:
    ins = facts.instructions
    return (
        f"on {result.python} both reads are specialised (EventSlots {ins['EventSlots']}, EventDict "
        f"{ins['EventDict']}): a slot has no edge over an instance's values array"
        if not facts.generic("EventSlots") and not facts.generic("EventDict")
        else f"EventSlots' read is {ins['EventSlots']}, EventDict's {ins['EventDict']} on {result.python}"
    )


def _namedTupleReason(result: Exercise3Result, facts: ReadFacts) -> str:
    ins = facts.instructions
    if facts.generic("EventNamedTuple"):
        return (
            f"EventNamedTuple.value is a {facts.namedTupleField} descriptor, and on {result.python} its read is "
            f"not specialised ({ins['EventNamedTuple']}): every read calls the descriptor, while EventDict's is "
            f"{ins['EventDict']}"
        )
    return f"on {result.python} the NamedTuple read is {ins['EventNamedTuple']}, EventDict's {ins['EventDict']}"


def _untouchedReason(result: Exercise3Result, facts: ReadFacts) -> str:
    ins = facts.instructions
    if facts.version >= (3, 11) and not facts.generic("EventDict"):
        return (
            f"on {result.python} an instance keeps its values in an array until __dict__ is asked for: its read is "
            f"{ins['EventDict']}, specialised like a slot's ({ins['EventSlots']})"
        )
    return f"on {result.python} EventDict's read is {ins['EventDict']}"


def _materializedReason(result: Exercise3Result, facts: ReadFacts) -> str:
    ins = facts.instructions
    if facts.version >= (3, 13) and not facts.generic(MATERIALIZED):
        return (
            f"on {result.python} the values stay in the object once __dict__ exists (the dict refers to them): "
            f"the read stays {ins[MATERIALIZED]}"
        )
    return f"on {result.python} the read through an existing __dict__ is {ins[MATERIALIZED]}"


def judgeReads(result: Exercise3Result, facts: ReadFacts) -> tuple[Claim, ...]:
    """Requirement 4's sentence part by part, "Dict with __dict__" in both readings, each round by round."""
    classes = [cls.__name__ for cls in EVENT_CLASSES]
    plain = ("EventDict", "EventDataclass")
    fastest = "Slots and NamedTuple should be fastest"
    slowest = "Dict with __dict__ should be slowest"
    return (
        _readsClaim(
            result,
            f"{fastest}: EventSlots reads beat EventDict's and EventDataclass's",
            "EventSlots",
            plain,
            fastest=True,
            reason=_slotReason(result, facts),
        ),
        _readsClaim(
            result,
            f"{fastest}: EventNamedTuple reads beat EventDict's and EventDataclass's",
            "EventNamedTuple",
            plain,
            fastest=True,
            reason=_namedTupleReason(result, facts),
        ),
        _readsClaim(
            result,
            f"{slowest}, read as an EventDict as created (no dict until one is asked for)",
            "EventDict",
            [label for label in classes if label != "EventDict"],
            fastest=False,
            reason=_untouchedReason(result, facts),
        ),
        _readsClaim(
            result,
            f"{slowest}, read as an EventDict whose __dict__ exists",
            MATERIALIZED,
            classes,
            fastest=False,
            reason=_materializedReason(result, facts),
        ),
    )


def judge3(result: Exercise3Result, facts: ReadFacts | None = None) -> tuple[Claim, ...]:
    """The claims one run of exercise 3 decides: typo safety, __dict__, memory; the reads from its rounds."""
    regular = result.memoryOf("EventDict")
    slots = result.memoryOf("EventSlots")
    named = result.memoryOf("EventNamedTuple")
    noDict = {row.className: row.dictError for row in result.memory if row.getsizeofDict is None}
    typo = result.typo
    return (
        judge(
            LECTURE,
            3,
            "a typo on a regular instance silently creates an attribute; __slots__ raises AttributeError",
            measured=f"EventDict created 'vlaue': {typo.dictCreatedAttribute}; EventSlots: "
            f"{typo.slotsError.split(':')[0] or 'accepted'}",
            holds=typo.dictCreatedAttribute and typo.dictValueUnchanged and typo.slotsError.startswith("Attribute"),
            kind=ClaimKind.STRUCTURAL,
            reason="the interpreter's attribute rules differ from the lecture's",
        ),
        judge(
            LECTURE,
            3,
            "sys.getsizeof(instance.__dict__) fails for NamedTuple and Slots",
            measured=", ".join(f"{name}: {error}" for name, error in noDict.items()) or "every class has __dict__",
            holds=set(noDict) == {"EventSlots", "EventNamedTuple"},
            kind=ClaimKind.STRUCTURAL,
            reason="a class without __slots__ has a __dict__",
        ),
        judge(
            LECTURE,
            3,
            "__slots__ saves memory over a regular class (tracemalloc)",
            measured=f"{slots.bytesPerInstance:.0f} vs {regular.bytesPerInstance:.0f} B/instance "
            f"(NamedTuple {named.bytesPerInstance:.0f}) on {result.python}",
            holds=slots.bytesPerInstance < regular.bytesPerInstance,
            kind=ClaimKind.STRUCTURAL,
            reason="a slotted instance took as much memory as a regular one: tracemalloc counts bytes, not time",
        ),
        *judgeReads(result, facts or readFacts()),
    )


# ============================================================================
# Exercise 4: stability and the leak judged; where the leaked memory went
# ============================================================================

FULL_CORE: Final = 0.9  # a run whose CPU time is below this share of its wall time waited for a core
LINEAR: Final = 0.99  # R² of the retained memory against the run number: a straight line
STABLE_SHARE: Final = 0.02  # after the fix, a slope under 2% of the leak's (or 16 KB/run) is flat
STABLE_KB: Final = 16.0
SERIES_RUNS: Final = Exercise4Config().runs  # requirement 4's five runs per series


def _ratio(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"


def judge4(result: Exercise4Result) -> tuple[Claim, ...]:
    """The claims one run of exercise 4 decides: counts, the leak's records, the leak's and the fix's slopes.

    The memory claims are bytes counted by tracemalloc, the same from run to run
    (the leak's R² is 1.0000, the fix's slope within 0.1 KB): facts about the
    controlled leak, structural. The stability claim needs several series of runs
    (``study4``).
    """
    main = result.main
    runs = (main, *result.stability, *result.leaking, *result.fixed)
    countsOk = all(
        run.stages[0].recordsIn == result.inputRecords
        and all(a.records == b.recordsIn for a, b in itertools.pairwise(run.stages))
        and run.stages[-1].records == run.consumed == result.passedFilter
        for run in runs
    )
    leakSlope = result.leakFit.slope
    kept = [run.kept for run in result.leaking]
    expectedKept = [result.passedFilter * i for i in range(1, len(kept) + 1)]
    return (
        judge(
            LECTURE,
            4,
            "every run: four stages report, counts add up, the context reports time, hotspots, memory",
            measured=f"{len(runs)} runs, {result.inputRecords:,} in, {result.passedFilter:,} past the filter, "
            f"{main.alerts} alerts; hotspots {len(main.hotspots)}",
            holds=countsOk and all(len(run.stages) == 4 and run.elapsedMs > 0 and run.hotspots for run in runs),
            kind=ClaimKind.STRUCTURAL,
            reason="a stage lost records or the context measured nothing",
        ),
        judge(
            LECTURE,
            4,
            "each leaking run adds its records to AlertDetector.allAlerts",
            measured=f"kept after each run: {', '.join(f'{k:,}' for k in kept)}",
            holds=kept == expectedKept and all(run.kept == 0 for run in result.fixed),
            kind=ClaimKind.STRUCTURAL,
            reason="the leak switch did not keep every record",
        ),
        judge(
            LECTURE,
            4,
            "with the leak, memory grows linearly across runs",
            measured=f"retained: slope {leakSlope:,.0f} KB/run, R² {result.leakFit.rSquared:.4f} over "
            f"{len(result.leaking)} runs",
            holds=leakSlope > 0 and result.leakFit.rSquared >= LINEAR,
            kind=ClaimKind.STRUCTURAL,
            reason="the kept records did not account for the growth",
        ),
        judge(
            LECTURE,
            4,
            "after the fix, memory stabilises",
            measured=f"retained: slope {result.fixedFit.slope:,.1f} KB/run ({_ratio(result.fixedFit.slope, leakSlope)} "
            "of the leak's)",
            holds=abs(result.fixedFit.slope) < max(STABLE_SHARE * leakSlope, STABLE_KB),
            kind=ClaimKind.STRUCTURAL,
            reason="something else is kept from run to run",
        ),
    )


def worstCv(runs: Sequence[DashboardRun]) -> StabilityRow:
    """The stage whose throughput varied most across ``runs`` (requirement 4's figure for one series)."""
    return max(stabilityOf(runs), key=lambda row: row.cv)


def judgeStability(series: Sequence[Sequence[DashboardRun]], limit: float) -> Claim:
    """Requirement 4's test over several series of runs: the worst stage's CV of each series is one repeat.

    One series gives one CV, and on a shared machine that CV lands on either side
    of 10% from one series to the next: decided only when every series agrees.
    A series in which a run waited for a core (its CPU time under 90% of its wall
    time) measured the machine's load as much as the pipeline: it can show that
    the throughput is consistent, not that it is not; then the claim is too close.
    """
    worst = [worstCv(runs) for runs in series]
    figure = Repeats.of([row.cv for row in worst])
    stage = Counter(row.stage for row in worst).most_common(1)[0][0]
    runs = [run for runs in series for run in runs]
    starved = min(runs, key=lambda run: run.cpuShare)
    cpuTimes = [run.cpuMs for run in runs]
    cpuSpread = max(cpuTimes) / min(cpuTimes) if min(cpuTimes) > 0 else math.inf
    claim = judgeRepeats(
        LECTURE,
        4,
        f"per-stage throughput is consistent across runs (std < {limit:.0%} of mean)",
        figure,
        Line.under(limit, spec=".1%"),
        measured=f"the worst stage's CV, {len(series)} series of {len(series[0])} runs: {figure.median:.1%} "
        f"(median; most often {stage})",
        reason=f"every run had a core for at least {starved.cpuShare:.0%} of its wall time, but the same work took "
        f"{cpuSpread:.2f}x the CPU time in one run as in another: it ran slower (a busy host, shared caches)",
    )
    if claim.verdict is Verdict.FAILS and starved.cpuShare < FULL_CORE:
        why = (
            f"every series varied by {limit:.0%} or more, but other processes took the CPU (one run had a core for "
            f"only {starved.cpuShare:.0%} of its wall time): that spread is the machine's load, not the pipeline's"
        )
        return replace(claim, verdict=Verdict.TOO_CLOSE, reason=why)
    return claim


@dataclass(frozen=True, slots=True)
class AllocationSite:
    """One source line and the memory it left allocated."""

    site: str
    sizeKb: float
    blocks: int


def allocationSites(context: PipelineMeasurementContext, limit: int = 3) -> tuple[AllocationSite, ...]:
    """The source lines that left the most memory allocated, from the context's two snapshots."""
    before, after = context.snapshots
    stats = [
        stat
        for stat in after.compare_to(before, "lineno")
        if stat.size_diff > 0 and stat.traceback[0].filename != tracemalloc.__file__
    ]
    return tuple(
        AllocationSite(_frameLabel(stat.traceback[0]), stat.size_diff / 1024, stat.count_diff) for stat in stats[:limit]
    )


def _frameLabel(frame: tracemalloc.Frame) -> str:
    """``file.py:line (function)``, the function found among the lecture module's code objects."""
    fileName = frame.filename.replace("\\", "/").rsplit("/", 1)[-1]
    owner = next(
        (
            code.co_qualname
            for code in _lectureCode()
            if code.co_filename == frame.filename and any(line == frame.lineno for *_, line in code.co_lines())
        ),
        "",
    )
    return f"{fileName}:{frame.lineno} ({owner})" if owner else f"{fileName}:{frame.lineno}"


@functools.cache
def _lectureCode() -> tuple[CodeType, ...]:
    """Every code object of l37's functions and methods (decorated ones unwrapped), nested ones too."""
    functions: list[object] = []
    for value in list(vars(l37).values()):
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


def leakingRun(records: Sequence[Reading]) -> tuple[tuple[AllocationSite, ...], float]:
    """One leaking 4-stage run in the measurement context: where its net memory went, and its ms."""
    AlertDetector.allAlerts.clear()
    try:
        with StageMetricsCollector(silent), PipelineMeasurementContext() as context:
            features = FeatureComputer().process(Normalizer().process(ThresholdFilter().process(iter(records))))
            for _record in AlertDetector(leak=True).process(features):
                pass
        return allocationSites(context), context.elapsedMs
    finally:
        AlertDetector.allAlerts.clear()


def plainRunMs(records: Sequence[Reading], runs: int) -> float:
    """Median ms of the 4-stage run with no context around it (``@measuredStage`` still on)."""
    times: list[float] = []
    for _ in range(runs):
        with StageMetricsCollector(silent), Stopwatch() as watch:
            features = FeatureComputer().process(Normalizer().process(ThresholdFilter().process(iter(records))))
            for _record in AlertDetector().process(features):
                pass
        times.append(watch.elapsed * 1e3)
    return statistics.median(times)


def stabilitySeries(records: Sequence[Reading], series: int, runs: int) -> tuple[tuple[DashboardRun, ...], ...]:
    """``series`` series of ``runs`` dashboard runs each, as requirement 4 runs one."""
    return tuple(tuple(runDashboardPipeline(records, leak=False) for _ in range(runs)) for _ in range(series))


def study4(options: RunOptions, result: Exercise4Result, log: Log) -> tuple[Claim, ...]:
    """Requirement 4's stability over several 5-run series; where a leaking run's memory went; what measuring costs."""
    records = makeDashboardRecords(result.config, options.seed)
    series = stabilitySeries(records, MIN_REPEATS, SERIES_RUNS)
    sites, _ = leakingRun(records)
    plainMs = plainRunMs(records, result.config.runs)
    log(
        formatTable(
            ("line", "KB", "blocks"),
            [(site.site, f"{site.sizeKb:,.1f}", site.blocks) for site in sites],
            title="Where a leaking run's net memory went (tracemalloc snapshots, by line):",
        )
    )
    log(
        prose(
            f"Without the context (@measuredStage still on) the run takes {plainMs:.0f} ms; cProfile and "
            f"tracemalloc make it {statistics.fmean(run.elapsedMs for run in result.stability) / plainMs:.1f}x "
            f"slower on {result.python}."
        )
    )
    top = sites[0] if sites else None
    return (
        judgeStability(series, result.config.stabilityLimit),
        judge(
            LECTURE,
            4,
            "tracemalloc's snapshots point at the line that leaks",
            measured=f"top line: {top.site}, {top.sizeKb:,.0f} KB in {top.blocks:,} blocks" if top else "no line",
            holds=top is not None and top.site.endswith("(AlertDetector.process)"),
            kind=ClaimKind.STRUCTURAL,
            reason="the largest net allocation is not the record AlertDetector keeps",
            origin=Origin.FINDING,
        ),
    )


# ============================================================================
# Benchmarks: exercise 1 over the record count, exercise 2 before and after its fix
# ============================================================================
#
# Both are single-threaded, so the "ideal" of a row is not a parallel bound but
# the output-building floor: the same output built with no statistics at all,
# which no implementation that returns those records can beat. "baseline" is
# the slow version. Efficiency = floor / fast: how much of the fast version's
# time is the output itself.

SWEEP_SIZES: Final = (1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000)
QUICK_SWEEP_SIZES: Final = (1_000, 10_000, 100_000)
PIPELINE_SIZES: Final = (1_000, 2_500, 5_000, 10_000)
QUICK_PIPELINE_SIZES: Final = (1_000, 2_000, 4_000)
BREAKDOWN_RECORDS: Final = 5_000
STEADY_RECORDS: Final = 20_000


def runsFor(records: int, repeats: int, steadyRecords: int = STEADY_RECORDS) -> int:
    """``repeats``, multiplied at small sizes so that every size is timed over about as many records.

    A run of a thousand records takes a millisecond or two, where one scheduler
    hiccup moves a median of three; more runs there keep the small rows as steady as the large ones.
    """
    return repeats * max(1, steadyRecords // records)


@dataclass(frozen=True, slots=True)
class SweepPoint:
    """Exercise 1 at one record count: median seconds of both detectors and both floors."""

    records: int
    slowSeconds: float
    fastSeconds: float
    windowSeconds: float
    floorSeconds: float
    repeats: int
    inputMb: float = 0.0
    robustSeconds: float = math.nan
    fastSamples: tuple[float, ...] = ()  # seconds of each timeit run of the fast version

    def nsPerRecord(self, seconds: float) -> float:
        """``seconds`` (one of this point's medians) per record, in nanoseconds."""
        return seconds / self.records * 1e9

    @property
    def row(self) -> BenchRow:
        """detectAnomaliesFast against detectAnomalies (baseline) and the output-building floor (ideal)."""
        samples = self.fastSamples or (self.fastSeconds,) * self.repeats
        return BenchRow.of(f"fast, {self.records:,} records", samples, self.slowSeconds, self.floorSeconds)


def measureSweepPoint(records: int, *, seed: int, runs: int, threshold: float = 2.5) -> SweepPoint:
    """Exercise 1's timings at one size: 1% anomalies as in the spec, medians of timeit runs taking turns."""
    data = makeAnomalyRecords(records, records // 100, seed)
    slow, fast, robust, window, floor = timeTurns(
        (
            ("detectAnomalies", lambda: detectAnomalies(data, threshold)),
            ("detectAnomaliesFast", lambda: detectAnomaliesFast(data, threshold)),
            ("detectAnomaliesRobust", lambda: detectAnomaliesRobust(data, threshold)),
            ("output dicts + deque window", lambda: buildOutputWithWindow(data)),
            ("output dicts only (floor)", lambda: buildOutputFloor(data)),
        ),
        runs,
    )
    inputBytes = sum(sys.getsizeof(r) + sys.getsizeof(r["value"]) + sys.getsizeof(r["id"]) for r in data)
    return SweepPoint(
        records,
        slow.medianMs / 1e3,
        fast.medianMs / 1e3,
        window.medianMs / 1e3,
        floor.medianMs / 1e3,
        runs,
        inputBytes / 2**20,
        robust.medianMs / 1e3,
        tuple(ms / 1e3 for ms in fast.samplesMs),
    )


def firstSizeFrom(sizes: Sequence[int], holds: Sequence[bool]) -> int | None:
    """The smallest size from which ``holds`` is true at every larger size tried, or None."""
    found: int | None = None
    for size, ok in reversed(list(zip(sizes, holds, strict=True))):
        if not ok:
            break
        found = size
    return found


def sweepTable(points: Sequence[SweepPoint]) -> str:
    """Nanoseconds per record of every timed function, by size."""
    return formatTable(
        ("records", "slow ns", "fast ns", "robust ns", "dict+deque ns", "floor ns", "speedup", "fast/floor"),
        [
            (
                f"{p.records:,}",
                f"{p.nsPerRecord(p.slowSeconds):,.0f}",
                f"{p.nsPerRecord(p.fastSeconds):,.0f}",
                f"{p.nsPerRecord(p.robustSeconds):,.0f}",
                f"{p.nsPerRecord(p.windowSeconds):.0f}",
                f"{p.nsPerRecord(p.floorSeconds):.0f}",
                f"{p.row.speedup:.1f}x",
                f"{p.fastSeconds / p.floorSeconds:.2f}x",
            )
            for p in points
        ],
        title="ns per record by size (medians; fast: the spec's running sums, robust: the Welford update):",
    )


def sweepNotes(
    points: Sequence[SweepPoint], breakdown: Sequence[OperationCost], breakdownRecords: int = BREAKDOWN_RECORDS
) -> tuple[str, ...]:
    """Read the sweep: where the slow version's cost comes from, how speedup and fast / floor move with size."""
    chart = barChart(
        [(f"{p.records:,} records", p.row.speedup) for p in points],
        unit="x",
        title="Speedup of detectAnomaliesFast over detectAnomalies, by size:",
    )
    fit = linearFit([float(p.records) for p in points], [p.slowSeconds for p in points])
    slowNs = [p.nsPerRecord(p.slowSeconds) for p in points]
    speedups = [p.row.speedup for p in points]
    ratios = [p.fastSeconds / p.floorSeconds for p in points]
    costs = {cost.operation: cost.nsPerRecord for cost in breakdown}
    whole = costs[WHOLE_LOOP]
    variance = next(ns for op, ns in costs.items() if op.startswith("sum((x"))
    meanSum = next(ns for op, ns in costs.items() if op.startswith("sum(window)"))
    slicing = next(ns for op, ns in costs.items() if op.startswith("window"))
    quietest = min(points, key=lambda p: p.fastSeconds / p.floorSeconds)
    fastNs = quietest.nsPerRecord(quietest.fastSeconds)
    windowNs = quietest.nsPerRecord(quietest.windowSeconds)
    floorNs = quietest.nsPerRecord(quietest.floorSeconds)
    first, last = points[0], points[-1]
    reached = firstSizeFrom([p.records for p in points], [p.row.efficiency >= EFFICIENCY_TARGET for p in points])
    target = (
        f"85% of the floor is reached from {reached:,} records."
        if reached is not None
        else (
            f"85% of the floor (fast / floor <= {1 / EFFICIENCY_TARGET:.2f}x) is reached at no size tried "
            f"({points[0].records:,}-{points[-1].records:,}), and no size would reach it: both are linear in N, "
            "so what separates them is work per record, not a fixed cost that more records amortise."
        )
    )
    notes = (
        (
            "ideal = the output-building floor: one new dict per record, no statistics (buildOutputFloor); "
            f"baseline = detectAnomalies. Medians of {points[-1].repeats}-{points[0].repeats} timeit runs per "
            "function (more at the small sizes), taking turns; timeit switches the garbage collector off, as in "
            "exercise 1."
        ),
        "",
        sweepTable(points),
        "",
        chart,
        (
            f"Where the slow version's cost comes from: it is linear in N (slope {fit.slope * 1e9:,.0f} ns/record, "
            f"R² {fit.rSquared:.3f}; {min(slowNs):,.0f}-{max(slowNs):,.0f} ns per record at every size): O(N·W) "
            "with the window W = 50 fixed, not O(N²). Per record, timed alone on a full window "
            f"({breakdownRecords:,} records): the generator-fed variance sum {variance:,.0f} ns of {whole:,.0f} "
            f"({variance / whole:.0%}), the mean's sum {meanSum:,.0f} ns ({meanSum / whole:.0%}), the slice "
            f"{slicing:,.0f} ns ({slicing / whole:.0%}): fifty generator resumptions per record, not the copying."
        ),
        (
            f"The speedup stays between {min(speedups):.1f}x and {max(speedups):.1f}x at every size: the fix removes "
            "the factor W, which does not grow with N."
        ),
        (
            f"Per record the fast version goes from {first.nsPerRecord(first.fastSeconds):.0f} ns at "
            f"{first.records:,} records to {last.nsPerRecord(last.fastSeconds):.0f} ns at {last.records:,}, the "
            f"floor from {first.nsPerRecord(first.floorSeconds):.0f} to {last.nsPerRecord(last.floorSeconds):.0f} ns; "
            f"fast / floor ranges from {min(ratios):.2f}x to {max(ratios):.2f}x. {target} At {quietest.records:,} "
            f"records (the lowest ratio), of the fast version's {fastNs:.0f} ns per record, building the output "
            f"dict is {floorNs:.0f} ns, reading the value and sliding the deque {max(0.0, windowNs - floorNs):.0f} "
            f"ns, and the running sums (a dozen float operations, each a new float object) "
            f"{max(0.0, fastNs - windowNs):.0f} ns."
        ),
        *_cacheNote(first, last),
    )
    return tuple(note if "\n" in note else prose(note) for note in notes)


def _cacheNote(first: SweepPoint, last: SweepPoint) -> tuple[str, ...]:
    """A sentence when the floor's cost per record rises with size (by a fifth or more), else nothing."""
    low, high = first.nsPerRecord(first.floorSeconds), last.nsPerRecord(last.floorSeconds)
    if high < 1.2 * low:
        return ()
    fastRise = last.nsPerRecord(last.fastSeconds) - first.nsPerRecord(first.fastSeconds)
    text = (
        f"The floor per record rises from {low:.0f} to {high:.0f} ns while the input grows from "
        f"{first.inputMb:.1f} to {last.inputMb:.0f} MB of dicts, ints and floats; most likely the records no longer "
        "fit in the CPU caches and each costs a fetch from memory, which weighs most on the loop that does least "
        f"(the fast version changes by {fastRise:+.0f} ns). That, not the statistics, is why fast / floor is lowest "
        "at the large sizes."
    )
    return (text,)


def sweepExercise1(
    sizes: Sequence[int],
    options: BenchOptions,
    log: Log = silent,
    *,
    steadyRecords: int = STEADY_RECORDS,
    breakdownRecords: int = BREAKDOWN_RECORDS,
) -> BenchReport:
    """Exercise 1 over the record count: slow, fast, robust and the output-building floors at each size."""
    points: list[SweepPoint] = []
    for size in sizes:
        runs = runsFor(size, options.repeats, steadyRecords)
        log(f"  {size:,} records: slow, fast, robust and both floors, {runs} timeit runs each")
        points.append(measureSweepPoint(size, seed=options.seed, runs=runs))
    breakdown = measureBreakdown(makeAnomalyRecords(breakdownRecords, breakdownRecords // 100, options.seed))
    return BenchReport(
        "37.1-sweep",
        "detectAnomaliesFast vs detectAnomalies by record count, against the output floor",
        tuple(p.row for p in points),
        sweepNotes(points, breakdown, breakdownRecords),
    )


class NormalizerFloor:
    """Exercise 2's floor: the normaliser stage building the same output dicts and computing nothing.

    Measured under the same stage name, so the pipeline around it, the
    decorator's cost included, is the same as before and after the fix.
    """

    @measuredStage("WindowNormalizer")
    def process(self, inputStream: Iterable[Reading]) -> Iterator[NormalizedReading]:
        """Yield each reading with a constant ``norm``."""
        for r in inputStream:
            yield {**r, "norm": 0.0}


@dataclass(frozen=True, slots=True)
class PipelinePoint:
    """Exercise 2's pipeline at one record count: median wall seconds and WindowNormalizer's self time."""

    records: int
    normalized: int
    beforeSeconds: float
    afterSeconds: float
    floorSeconds: float
    beforeSelfMs: float
    afterSelfMs: float
    repeats: int
    afterSamples: tuple[float, ...] = ()  # seconds of each fixed run, round by round
    floorSamples: tuple[float, ...] = ()  # seconds of each floor run, in the same rounds

    def usPerRecord(self, seconds: float) -> float:
        """``seconds`` (one of this point's medians) per input record, in microseconds."""
        return seconds / self.records * 1e6

    @property
    def row(self) -> BenchRow:
        """The fixed pipeline against the spec's (baseline) and the floor's (ideal)."""
        samples = self.afterSamples or (self.afterSeconds,) * self.repeats
        return BenchRow.of(f"fixed, {self.records:,} records", samples, self.beforeSeconds, self.floorSeconds)

    @property
    def overFloor(self) -> tuple[float, ...]:
        """The fixed run's time over the floor run's, round by round (paired: the same round)."""
        pairs = zip(self.afterSamples, self.floorSamples, strict=True)
        return tuple(after / floor for after, floor in pairs if floor > 0)


def measurePipelinePoint(records: int, *, seed: int, runs: int) -> PipelinePoint:
    """Exercise 2's pipeline with each normaliser, ``runs`` runs each, taking turns; medians and rounds.

    Each run goes through the exercise's own runner (``@measuredStage`` on, as
    in the exercise), so the three differ only in the normaliser. The order
    rotates from round to round (``interleavedRepeats``), so that no normaliser
    always runs right after the slow one.
    """
    data = makeStageRecords(records, seed)
    normalizers: tuple[tuple[str, Callable[[], NormalizerStage]], ...] = (
        ("before", WindowNormalizer),
        ("after", WindowNormalizerFixed),
        ("floor", NormalizerFloor),
    )
    measured: dict[str, list[PipelineRun]] = {label: [] for label, _ in normalizers}

    def runner(label: str, make: Callable[[], NormalizerStage]) -> Callable[[], None]:
        return lambda: measured[label].append(runStagePipeline(data, make(), label=label)[0])

    interleavedRepeats([runner(label, make) for label, make in normalizers], runs)
    consumed = {run.consumed for series in measured.values() for run in series}
    if len(consumed) != 1:
        raise RuntimeError(f"the normalisers passed different record counts: {sorted(consumed)}")

    def wall(label: str) -> float:
        return statistics.median(run.wallMs for run in measured[label]) / 1e3

    def selfMs(label: str) -> float:
        return statistics.median(run.stage("WindowNormalizer").selfMs for run in measured[label])

    return PipelinePoint(
        records=records,
        normalized=consumed.pop(),
        beforeSeconds=wall("before"),
        afterSeconds=wall("after"),
        floorSeconds=wall("floor"),
        beforeSelfMs=selfMs("before"),
        afterSelfMs=selfMs("after"),
        repeats=runs,
        afterSamples=tuple(run.wallMs / 1e3 for run in measured["after"]),
        floorSamples=tuple(run.wallMs / 1e3 for run in measured["floor"]),
    )


def pipelineTable(points: Sequence[PipelinePoint]) -> str:
    """Microseconds per input record before, after and at the floor; WindowNormalizer's self time."""
    return formatTable(
        ("records", "before µs", "after µs", "floor µs", "self before ms", "self after ms", "speedup"),
        [
            (
                f"{p.records:,}",
                f"{p.usPerRecord(p.beforeSeconds):.2f}",
                f"{p.usPerRecord(p.afterSeconds):.2f}",
                f"{p.usPerRecord(p.floorSeconds):.2f}",
                f"{p.beforeSelfMs:,.1f}",
                f"{p.afterSelfMs:.1f}",
                f"{p.row.speedup:.1f}x",
            )
            for p in points
        ],
        title="Time per input record by size (medians; self = WindowNormalizer's self time):",
    )


def pipelineNotes(points: Sequence[PipelinePoint], cost: MeasuringCost | None = None) -> tuple[str, ...]:
    """Read the pipeline benchmark: O(N²) before, O(N) after, how close the fix comes to the floor."""
    chart = barChart(
        [(f"{p.records:,} records", p.row.speedup) for p in points],
        unit="x",
        title="Speedup of the fixed pipeline over the spec's, by size:",
    )
    small, large = points[0], points[-1]
    growth = large.records / small.records
    perRecordFit = linearFit([float(p.normalized) for p in points], [p.beforeSelfMs / p.normalized for p in points])
    after = [p.usPerRecord(p.afterSeconds) for p in points]
    reached = firstSizeFrom([p.records for p in points], [p.row.efficiency >= EFFICIENCY_TARGET for p in points])
    addedNs = [(p.afterSeconds - p.floorSeconds) / p.records * 1e9 for p in points]
    efficiencies = [p.row.efficiency for p in points]
    floorUs = statistics.median(p.usPerRecord(p.floorSeconds) for p in points)
    span = f"{min(efficiencies):.0%}-{max(efficiencies):.0%}"
    if reached == small.records:
        closing = f"The fixed pipeline runs at {span} of the floor at every size"
    else:
        where = f"from {reached:,} records" if reached is not None else "at no size tried"
        closing = f"The fixed pipeline reaches 85% of the floor {where} ({span})"
    closing += (
        f": the running min and max add {statistics.median(addedNs):.0f} ns per record (two compares and "
        f"assignments) to the floor's {floorUs:.2f} µs, most of which is @measuredStage's timing of three stages. "
        "Both are per-record costs: more records do not amortise them."
    )
    notes = (
        (
            "ideal = the same measured pipeline with a normaliser that only builds its output dicts "
            "(NormalizerFloor); baseline = the spec's WindowNormalizer. Every run through runStagePipeline, "
            f"@measuredStage on; medians of {large.repeats}-{small.repeats} runs each (more at the small sizes), "
            "taking turns."
        ),
        "",
        pipelineTable(points),
        "",
        chart,
        (
            f"Before the fix the cost per record grows with N: WindowNormalizer's self time per record rises "
            f"{perRecordFit.slope * 1e9:,.0f} ns for every 1,000 more records in the run (R² "
            f"{perRecordFit.rSquared:.3f}), "
            f"from {small.beforeSelfMs / small.normalized * 1e3:.1f} µs at {small.records:,} records to "
            f"{large.beforeSelfMs / large.normalized * 1e3:.1f} µs at {large.records:,}: min() and max() scan every "
            "value seen, O(N) per record, O(N²) per run."
        ),
        (
            f"After it the cost per record is flat, {min(after):.2f}-{max(after):.2f} µs at every size: O(N). "
            f"So the speedup grows with N: {small.row.speedup:.1f}x at {small.records:,} records, "
            f"{large.row.speedup:.1f}x at {large.records:,} ({growth:.0f}x the records, "
            f"{large.row.speedup / small.row.speedup:.1f}x the speedup)."
        ),
        closing,
        *floorNote(points),
        *((cost.note(),) if cost else ()),
    )
    return tuple(note if "\n" in note else prose(note) for note in notes)


def floorNote(points: Sequence[PipelinePoint]) -> tuple[str, ...]:
    """Whether the floor bounds the fixed pipeline here, from the paired rounds; where a median crossed it, why.

    The floor does strictly less work than the fix (the same dicts, no compares),
    so a round it loses is the machine's noise, and a median that crosses it while
    the floor wins most rounds is the measurement's doing; a floor that loses most
    rounds is miscalibrated.
    """
    ratios = [ratio for p in points for ratio in p.overFloor]
    if not ratios:
        return ()
    lost = sum(ratio < 1.0 for ratio in ratios)
    text = (
        "Is the floor a bound? Round by round (the fixed and the floor pipelines in the same round, the order "
        f"rotating), the fixed one took {min(ratios):.2f}-{max(ratios):.2f}x the floor's time, less in {lost} of "
        f"{len(ratios)} rounds: "
    )
    if 2 * lost >= len(ratios):
        return (text + "the floor is not a bound here; its calibration is off, not the measurement.",)
    text += "the floor wins most rounds, as a bound must, so its calibration holds."
    for p in points:
        if p.row.efficiency <= 1.0 or not p.overFloor:
            continue
        won = sum(ratio >= 1.0 for ratio in p.overFloor)
        low, high = min(p.floorSamples) * 1e3, max(p.floorSamples) * 1e3
        text += (
            f" At {p.records:,} records the medians cross ({p.row.efficiency:.0%}) although the floor won {won} of "
            f"{len(p.overFloor)} rounds: its runs took {low:.1f}-{high:.1f} ms on this busy machine, so that row is "
            "the measurement's doing."
        )
    return (text,)


@dataclass(frozen=True, slots=True)
class MeasuringCost:
    """The fixed pipeline timed with @measuredStage on and with its stages unwrapped."""

    records: int
    stages: int
    measuredMs: float
    unmeasuredMs: float

    @property
    def usPerRecordStage(self) -> float:
        """What the decorator adds per record and stage."""
        return max(0.0, self.measuredMs - self.unmeasuredMs) * 1e3 / self.records / self.stages

    def note(self) -> str:
        """One sentence for the benchmark's notes."""
        return (
            f"What measuring costs: at {self.records:,} records the fixed pipeline takes {self.measuredMs:.1f} ms "
            f"with @measuredStage, {self.unmeasuredMs:.1f} ms with its stages unwrapped (inspect.unwrap): "
            f"{self.usPerRecordStage:.2f} µs per record and stage, more than a cheap stage's own work."
        )


def measureMeasuringCost(records: Sequence[Reading], runs: int) -> MeasuringCost:
    """Median ms of the fixed pipeline measured and unmeasured, taking turns."""
    stages = (ThresholdFilter(), WindowNormalizerFixed(), MovingAvgTransform())
    methods = [inspect.unwrap(type(stage).process) for stage in stages]

    def unmeasured() -> None:
        stream: Iterator[object] = iter(records)
        for stage, method in zip(stages, methods, strict=True):
            stream = method(stage, stream)
        for _ in stream:
            pass

    measured, plain = timeTurns(
        (
            ("measured", lambda: runStagePipeline(records, WindowNormalizerFixed(), label="measured")),
            ("unmeasured", unmeasured),
        ),
        runs,
    )
    return MeasuringCost(len(records), len(stages), measured.medianMs, plain.medianMs)


def benchPipeline2(
    sizes: Sequence[int], options: BenchOptions, log: Log = silent, *, steadyRecords: int = STEADY_RECORDS
) -> BenchReport:
    """Exercise 2's pipeline before and after the fix, and its floor, at each record count."""
    points: list[PipelinePoint] = []
    for size in sizes:
        runs = runsFor(size, options.repeats, steadyRecords)
        log(f"  {size:,} records: the pipeline with each normaliser, {runs} runs each")
        points.append(measurePipelinePoint(size, seed=options.seed, runs=runs))
    largest = max(sizes)
    log(f"  {largest:,} records: the fixed pipeline measured and unmeasured")
    runs = runsFor(largest, options.repeats, steadyRecords)
    cost = measureMeasuringCost(makeStageRecords(largest, options.seed), runs)
    return BenchReport(
        "37.2",
        "exercise 2's pipeline, WindowNormalizer fixed vs the spec's, against the output-building floor",
        tuple(p.row for p in points),
        pipelineNotes(points, cost),
    )


def benchSweep1(options: BenchOptions, log: Log) -> BenchReport:
    """Registry entry: exercise 1 over 1k-100k records (quick: three sizes across the same range)."""
    return sweepExercise1(QUICK_SWEEP_SIZES if options.quick else SWEEP_SIZES, options, log)


def bench2(options: BenchOptions, log: Log) -> BenchReport:
    """Registry entry: exercise 2's pipeline over 1k-10k records (quick: 1k-4k)."""
    return benchPipeline2(QUICK_PIPELINE_SIZES if options.quick else PIPELINE_SIZES, options, log)


LAB = LectureLab(
    37,
    (
        ExerciseLab(1, l37.Exercise1Result, judge1, study1),
        ExerciseLab(2, l37.Exercise2Result, judge2, study2),
        ExerciseLab(3, l37.Exercise3Result, judge3),
        ExerciseLab(4, l37.Exercise4Result, judge4, study4),
    ),
    (
        Benchmark(
            "37.1-sweep", "exercise 1 over 1k-100k records: O(N·W) vs O(N), against the output floor", benchSweep1
        ),
        Benchmark("37.2", "exercise 2's pipeline before and after the WindowNormalizer fix: O(N²) vs O(N)", bench2),
    ),
)
