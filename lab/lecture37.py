"""The lab of lecture 37 (Measurable pipeline: profiling and metrics): its claims, studies and benchmarks.

What ``l37.py`` leaves out, because the homework does not ask for it:

- exercise 1: data hard for floating point, where the spec's running sums
  (``detectAnomaliesFast``) flip flags and ``detectAnomaliesRobust`` does not;
  what each of the slow loop's operations costs alone; the output-building floor
  no fast version can beat; how cProfile's overhead on this interpreter distorts
  the profiled speedup;
- exercise 2: the lecture's latency rule judged under its own definition
  (yield to yield), and what self time adds; the cost of ``@measuredStage`` (bench 37.2);
- exercise 3: the readings of the attribute-read timings;
- exercise 4: where tracemalloc's snapshots say the leaked memory went, and what
  cProfile and tracemalloc together cost.

Closing note - the spec's parameters, seed 42, CPython 3.11.7 on 2 shared cores:

- Exercise 1: slow 120 ms, fast (the spec's running sums) 20 ms, 6.0x (timeit
  best of 20, three runs alike); the strict assert holds (largest zScore
  difference 2.8e-13). On 5,000 records of each hard data set the running sums
  flip 438 (offset 1e9), 4,137 (1e12), 2,809 (spread 1e-9), 95 (level shifts),
  2,172 (plateaus, all rounding ties), 0 (mixed scales) and 4,625 (1e6, spread
  0.01) flags; the robust version none. The variance's sum is 89% of the slow
  loop, the slice 3%.
- Exercise 2: yield to yield, the three stages' mean latencies agree to 0.1%;
  self time puts 657 of the pipeline's 685 ms in WindowNormalizer; after the
  fix the pipeline takes 22 ms. @measuredStage costs about 1.6 µs per record
  and stage (bench 37.2).
- Exercise 3: 128 / 80 / 96 / 128 B per instance; a touched ``__dict__`` adds
  64 B and slows reads to about 30 ns, against 10-14 ns untouched.
- Exercise 4: the leak keeps 3,418 KB per run (R² 1.0000), the fix 4 KB.
"""

from __future__ import annotations

import cProfile
import functools
import inspect
import math
import statistics
import sys
import tracemalloc
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import CodeType
from typing import Final, Literal

import l37
from l37 import (
    LECTURE,
    WINDOW_SIZE,
    AlertDetector,
    Exercise1Result,
    Exercise2Result,
    Exercise3Result,
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
    StageMetricsCollector,
    ThresholdFilter,
    WindowNormalizer,
    WindowNormalizerFixed,
    detectAnomalies,
    detectAnomaliesFast,
    detectAnomaliesRobust,
    makeAnomalyRecords,
    makeDashboardRecords,
    makeStageRecords,
    measuredStage,
    runStagePipeline,
    timeTurns,
    windowMoments,
)
from lab.bench import EFFICIENCY_TARGET, Benchmark, BenchOptions, BenchReport, BenchRow
from lab.claims import Claim, ClaimKind, judge
from lab.registry import ExerciseLab, LectureLab, noStudy
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
    """What one of the slow version's per-record operations costs, measured alone at full window."""

    operation: str
    nsPerRecord: float


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
    loop = timings[0].bestMs
    return tuple(
        OperationCost(t.label, (t.bestMs if t.label == WHOLE_LOOP else max(0.0, t.bestMs - loop)) / count * 1e6)
        for t in timings[1:]
    )


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


def judge1(result: Exercise1Result) -> tuple[Claim, ...]:
    """The claims one run of exercise 1 decides: the assert's identity, the speedup."""
    comparison = result.comparison
    fastNs = result.fast.bestMs * 1e6 / result.config.records
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
        judge(
            LECTURE,
            1,
            "the speedup is substantial (4-20x)",
            measured=f"{result.speedup:.1f}x (timeit best of {result.config.repetitions})",
            holds=result.speedup >= 4,
            kind=ClaimKind.TIMING,
            reason=f"the fast version still costs {fastNs:.0f} ns per record: its output dict and the running "
            "statistics",
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
    return (*judgeHardData(rows, result), judgeBreakdown(breakdown))


def judgeHardData(rows: Sequence[HardDataRow], result: Exercise1Result) -> tuple[Claim, ...]:
    """The robust version matches the slow one on hard data; the running sums do not."""
    robustFlags = sum(row.robust.flagMismatches for row in rows)
    robustReal = sum(row.robust.realMismatches for row in rows)
    sumsFlags = sum(row.runningSums.flagMismatches for row in rows)
    worst = max(rows, key=lambda row: row.runningSums.flagMismatches)
    return (
        judge(
            LECTURE,
            1,
            "detectAnomaliesRobust: the same flags as detectAnomalies on data hard for floating point",
            measured=f"{robustFlags} flags differ over {len(rows)} hard data sets of {rows[0].runningSums.records:,}"
            + (f", all rounding ties (< {TIE_ULPS} ulps)" if robustFlags and not robustReal else ""),
            holds=robustReal == 0,
            kind=ClaimKind.STRUCTURAL,
            reason="cancellation in the sliding update was not caught by the resync guard",
        ),
        judge(
            LECTURE,
            1,
            "a running sum and sum of squares compute the same variance",
            measured=f"{result.comparison.flagMismatches} flags differ on gauss(50, 10); {sumsFlags:,} on hard "
            f"data ({worst.runningSums.flagMismatches:,} on '{worst.kind}')",
            holds=result.comparison.flagMismatches == 0 and sumsFlags == 0,
            kind=ClaimKind.TIMING,
            reason="sumSq/n - mean² cancels catastrophically when the offset dwarfs the spread",
        ),
    )


def judgeBreakdown(breakdown: Sequence[OperationCost]) -> Claim:
    """Whether the slice and the sums, each timed alone, make up most of the slow loop."""
    costs = {cost.operation: cost.nsPerRecord for cost in breakdown}
    perRecordNs = costs[WHOLE_LOOP]
    slicing = next(ns for op, ns in costs.items() if op.startswith("window"))
    sums = sum(ns for op, ns in costs.items() if op.startswith("sum("))
    return judge(
        LECTURE,
        1,
        "list slicing and sum calls dominate the slow version's runtime",
        measured=f"sums {sums:.0f} + slice {slicing:.0f} of {perRecordNs:.0f} ns/record "
        f"({(sums + slicing) / perRecordNs:.0%}), each timed alone",
        holds=(sums + slicing) / perRecordNs >= 0.5,
        kind=ClaimKind.TIMING,
        reason="the loop's own bytecode (dict build, abs, compare) costs more than both",
    )


# ============================================================================
# Exercise 2: the lecture's latency rule under its own definition, and self time
# ============================================================================

STANDS_OUT: Final = 1.10  # a stage's mean latency stands out at 10% above every other stage's


def afterFix(result: Exercise2Result) -> Literal["shifted", "disappeared", "unchanged"]:
    """After the fix, by self time: the top stage changed, no stage dominates (top < 2x the next), or neither."""
    ranked = sorted(result.after.stages, key=lambda s: s.selfMs, reverse=True)
    if ranked[0].selfMs < 2 * ranked[1].selfMs:
        return "disappeared"
    return "shifted" if ranked[0].name != "WindowNormalizer" else "unchanged"


def latencyRule(run: PipelineRun) -> Claim:
    """The lecture's rule, judged with its own latency (yield to yield): decided only where a stage stands out.

    In a pull pipeline every stage's yield-to-yield interval spans the whole
    chain's work for one record, so the stages' means come out alike; where no
    stage's mean is 10% above every other's, the rule has nothing to point from.
    """
    highest = run.highestLatency
    others = [s.meanLatencyMs for s in run.stages if s is not highest]
    margin = highest.meanLatencyMs / max(others) - 1 if others and max(others) > 0 else math.inf
    downstream = run.downstreamOf(highest.name)
    standsOut = highest.meanLatencyMs >= STANDS_OUT * max(others, default=0.0)
    return judge(
        LECTURE,
        2,
        "high latency in a stage indicates the downstream stage is slow",
        measured="mean latency (yield to yield): "
        + ", ".join(f"{s.name} {s.meanLatencyMs:.4f} ms" for s in run.stages)
        + f"; highest {highest.name} by {margin:.1%}, downstream: {downstream or 'none'}",
        holds=(downstream == run.bottleneck.name) if standsOut else None,
        kind=ClaimKind.TIMING,
        reason=(
            f"the stage after {highest.name} is {downstream or 'none'}, not {run.bottleneck.name}, which has the "
            "most self time"
            if standsOut
            else "yield to yield, every stage of a pull chain times the whole chain's work for one record: no "
            f"stage's mean stands out ({STANDS_OUT - 1:.0%} above the others), so the rule points from none"
        ),
    )


def judge2(result: Exercise2Result) -> tuple[Claim, ...]:
    """The claims one run of exercise 2 decides: counts, identity, the latency rule, self time, the fix."""
    before, after = result.before, result.after
    ranked = sorted(before.stages, key=lambda s: s.selfMs, reverse=True)
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
        latencyRule(before),
        judge(
            LECTURE,
            2,
            "tracing the latencies back finds the slow stage: WindowNormalizer",
            measured="self time: " + ", ".join(f"{s.name} {s.selfMs:.0f} ms" for s in ranked),
            holds=before.bottleneck.name == "WindowNormalizer",
            kind=ClaimKind.TIMING,
            reason="another stage's own work exceeded the O(N²) normaliser's",
        ),
        judge(
            LECTURE,
            2,
            "after the fix the bottleneck shifts or disappears",
            measured=f"WindowNormalizer self {before.stage('WindowNormalizer').selfMs:.0f} -> "
            f"{after.stage('WindowNormalizer').selfMs:.1f} ms; bottleneck {afterFix(result)}",
            holds=afterFix(result) != "unchanged",
            kind=ClaimKind.TIMING,
            reason="WindowNormalizer still has twice the self time of any other stage",
        ),
    )


# ============================================================================
# Exercise 3: the readings of the attribute-read timings
# ============================================================================

CLEARLY_SLOWER: Final = 1.5  # one read this many times slower than another: a real difference, not timer noise


def materializedSlow(result: Exercise3Result) -> bool:
    """Reading a regular instance got markedly slower (1.5x) once its ``__dict__`` was materialised.

    True on 3.11 and 3.12, where the dict takes the values over and the read
    becomes a dict lookup; false on 3.13+, where the values stay in the object
    and the dict refers to them, so the specialised read still applies.
    """
    return result.readsMaterialized.nsPerRead > CLEARLY_SLOWER * result.readsOf("EventDict").nsPerRead


def judge3(result: Exercise3Result) -> tuple[Claim, ...]:
    """The claims one run of exercise 3 decides: typo safety, __dict__, memory, the read ranking."""
    regular = result.memoryOf("EventDict")
    slots = result.memoryOf("EventSlots")
    named = result.memoryOf("EventNamedTuple")
    ranked = sorted(result.reads, key=lambda row: row.readsPerSecond, reverse=True)
    fastestTwo = {row.className for row in ranked[:2]}
    plainRead, slotsRead, namedRead = (result.readsOf(name) for name in ("EventDict", "EventSlots", "EventNamedTuple"))
    slowest = ranked[-1].className
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
            kind=ClaimKind.TIMING,
            reason="this interpreter stores a regular instance's attributes as compactly as slots",
        ),
        judge(
            LECTURE,
            3,
            "Slots and NamedTuple attribute reads are the fastest",
            measured="fastest two: " + ", ".join(row.className for row in ranked[:2]) + f" on {result.python}",
            holds=fastestTwo == {"EventSlots", "EventNamedTuple"},
            kind=ClaimKind.TIMING,
            reason=f"a NamedTuple field is a descriptor call (_tuplegetter, {namedRead.nsPerRead:.1f} ns); instance "
            f"and slot reads are both specialised ({plainRead.nsPerRead:.1f} and {slotsRead.nsPerRead:.1f} ns)",
        ),
        judge(
            LECTURE,
            3,
            "Dict (attributes in __dict__) reads are the slowest",
            measured=f"slowest: {slowest}; EventDict {result.readsOf('EventDict').readsPerSecond / 1e6:.0f}M/s, "
            f"with __dict__ materialised {result.readsMaterialized.readsPerSecond / 1e6:.0f}M/s",
            holds=slowest == "EventDict",
            kind=ClaimKind.TIMING,
            reason=(
                "an untouched regular instance reads its values array as fast as slots; only a materialised "
                "__dict__ is slow"
                if materializedSlow(result)
                else f"on {result.python} even a materialised __dict__ reads fast "
                f"({result.readsMaterialized.nsPerRead:.1f} ns): the values stay in the object"
            ),
        ),
    )


# ============================================================================
# Exercise 4: stability and the leak judged; where the leaked memory went
# ============================================================================

FULL_CORE: Final = 0.9  # a run whose CPU time is below this share of its wall time waited for a core


def _ratio(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"


def judge4(result: Exercise4Result) -> tuple[Claim, ...]:
    """The claims one run of exercise 4 decides: counts, the leak's records, stability, the leak's slope."""
    main = result.main
    runs = (main, *result.stability, *result.leaking, *result.fixed)
    countsOk = all(
        run.stages[0].recordsIn == result.inputRecords
        and all(a.records == b.recordsIn for a, b in zip(run.stages, run.stages[1:], strict=False))
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
        judgeStability(result),
        judge(
            LECTURE,
            4,
            "with the leak, memory grows linearly across runs",
            measured=f"slope {leakSlope:,.0f} KB/run, R² {result.leakFit.rSquared:.4f}",
            holds=leakSlope > 0 and result.leakFit.rSquared >= 0.99,
            kind=ClaimKind.TIMING,
            reason="the kept records did not account for the growth",
        ),
        judge(
            LECTURE,
            4,
            "after the fix, memory stabilises",
            measured=f"slope {result.fixedFit.slope:,.1f} KB/run ({_ratio(result.fixedFit.slope, leakSlope)} "
            "of the leak's)",
            holds=abs(result.fixedFit.slope) < max(0.02 * leakSlope, 16.0),
            kind=ClaimKind.TIMING,
            reason="something else is kept from run to run",
        ),
    )


def judgeStability(result: Exercise4Result) -> Claim:
    """Requirement 4's test, with the reason a run was slower when it does not hold."""
    worst = max(result.stabilityRows, key=lambda row: row.cv)
    starved = min(result.stability, key=lambda run: run.cpuShare)
    starvedIndex = result.stability.index(starved) + 1
    cpuTimes = [run.cpuMs for run in result.stability]
    cpuSpread = max(cpuTimes) / min(cpuTimes) if min(cpuTimes) > 0 else math.inf
    return judge(
        LECTURE,
        4,
        "per-stage throughput is consistent across runs (std < 10% of mean)",
        measured=f"worst: {worst.stage} at {worst.cv:.1%}",
        holds=result.stable,
        kind=ClaimKind.TIMING,
        reason=(
            f"other processes took the CPU: run {starvedIndex} had a core for only {starved.cpuShare:.0%} of its "
            "wall time"
            if starved.cpuShare < FULL_CORE
            else f"every run had a core for at least {starved.cpuShare:.0%} of its wall time, but the same work "
            f"took {cpuSpread:.2f}x the CPU time in one run as in another: it ran slower "
            "(a busy host, shared caches)"
        ),
    )


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


def study4(options: RunOptions, result: Exercise4Result, log: Log) -> tuple[Claim, ...]:
    """Where a leaking run's memory went (the snapshots, by line), and what measuring costs."""
    records = makeDashboardRecords(result.config, options.seed)
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
        judge(
            LECTURE,
            4,
            "tracemalloc's snapshots point at the line that leaks",
            measured=f"top line: {top.site}, {top.sizeKb:,.0f} KB in {top.blocks:,} blocks" if top else "no line",
            holds=top is not None and top.site.endswith("(AlertDetector.process)"),
            kind=ClaimKind.TIMING,
            reason="the largest net allocation is not the record AlertDetector keeps",
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

    def nsPerRecord(self, seconds: float) -> float:
        """``seconds`` (one of this point's medians) per record, in nanoseconds."""
        return seconds / self.records * 1e9

    @property
    def row(self) -> BenchRow:
        """detectAnomaliesFast against detectAnomalies (baseline) and the output-building floor (ideal)."""
        return BenchRow(
            f"fast, {self.records:,} records", self.fastSeconds, self.slowSeconds, self.floorSeconds, self.repeats
        )


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

    def usPerRecord(self, seconds: float) -> float:
        """``seconds`` (one of this point's medians) per input record, in microseconds."""
        return seconds / self.records * 1e6

    @property
    def row(self) -> BenchRow:
        """The fixed pipeline against the spec's (baseline) and the floor's (ideal)."""
        return BenchRow(
            f"fixed, {self.records:,} records", self.afterSeconds, self.beforeSeconds, self.floorSeconds, self.repeats
        )


def measurePipelinePoint(records: int, *, seed: int, runs: int) -> PipelinePoint:
    """Exercise 2's pipeline with each normaliser, ``runs`` runs each, taking turns; medians.

    Each run goes through the exercise's own runner (``@measuredStage`` on, as
    in the exercise), so the three differ only in the normaliser.
    """
    data = makeStageRecords(records, seed)
    normalizers: tuple[tuple[str, Callable[[], NormalizerStage]], ...] = (
        ("before", WindowNormalizer),
        ("after", WindowNormalizerFixed),
        ("floor", NormalizerFloor),
    )
    measured: dict[str, list[PipelineRun]] = {label: [] for label, _ in normalizers}
    for _ in range(runs):
        for label, make in normalizers:
            measured[label].append(runStagePipeline(data, make(), label=label)[0])
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
        *((cost.note(),) if cost else ()),
    )
    return tuple(note if "\n" in note else prose(note) for note in notes)


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
        ExerciseLab(2, l37.Exercise2Result, judge2, noStudy),
        ExerciseLab(3, l37.Exercise3Result, judge3, noStudy),
        ExerciseLab(4, l37.Exercise4Result, judge4, study4),
    ),
    (
        Benchmark(
            "37.1-sweep", "exercise 1 over 1k-100k records: O(N·W) vs O(N), against the output floor", benchSweep1
        ),
        Benchmark("37.2", "exercise 2's pipeline before and after the WindowNormalizer fix: O(N²) vs O(N)", bench2),
    ),
)
