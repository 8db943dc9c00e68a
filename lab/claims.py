"""What a lecture asserts, judged against what was measured.

A ``Claim`` is one sentence of a lecture with the figure that decides it and a
verdict. Structural claims are correctness (counts add up, order kept, nothing
lost): one that fails makes ``invoke verify`` exit 1. Timing claims depend on the
machine and are reported, never fatal.
"""

from __future__ import annotations

import enum
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from shared import ConfigError, formatTable, percentile, prose


class Verdict(enum.Enum):
    """Whether a lecture's claim held on this run."""

    HOLDS = "holds"
    FAILS = "does not hold"
    TOO_CLOSE = "too close to call here"
    NOT_MEASURED = "not measurable here"


class ClaimKind(enum.Enum):
    """Structural claims are correctness (fatal in verify); timing claims are reported."""

    STRUCTURAL = "structural"
    TIMING = "timing"


class Origin(enum.Enum):
    """Whose claim it is: the lecture's own words, or a finding of this project beyond them."""

    LECTURE = "the lecture"
    FINDING = "beyond the lecture"


@dataclass(frozen=True, slots=True)
class Claim:
    """One claim of a lecture, with the measurement that decides it.

    ``spread`` is the range the measurement took over its repeats (timing claims);
    ``origin`` tells the lecture's claims from the project's own findings.
    """

    lecture: int
    exercise: int
    statement: str
    measured: str
    verdict: Verdict
    kind: ClaimKind
    reason: str = ""
    spread: str = ""
    origin: Origin = Origin.LECTURE


def judge(
    lecture: int,
    exercise: int,
    statement: str,
    *,
    measured: str,
    holds: bool | None,
    kind: ClaimKind,
    reason: str = "",
    origin: Origin = Origin.LECTURE,
) -> Claim:
    """Build a ``Claim`` from one decision: ``holds=None`` means the run could not measure it.

    ``reason`` should say, in one line, why a claim does not hold or cannot be measured.
    A timing claim measured in repeats goes through ``judgeRepeats`` instead.
    """
    verdict = Verdict.NOT_MEASURED if holds is None else Verdict.HOLDS if holds else Verdict.FAILS
    return Claim(lecture, exercise, statement, measured, verdict, kind, "" if holds else reason, origin=origin)


# ============================================================================
# Timing claims: decided only outside the spread of their repeats
# ============================================================================

MIN_REPEATS: Final = 5
DECILE_REPEATS: Final = 10


@dataclass(frozen=True, slots=True)
class Repeats:
    """One figure measured in several repeats: its median and its spread.

    The spread is min to max below ``DECILE_REPEATS`` repeats; from there on it is the
    10th to the 90th percentile, so that one outlier among 20 repeats (a burst of
    load) does not make every verdict "too close". Take the repeats interleaved with
    the figure's rivals (``lab.bench.interleavedRepeats``), so that a burst of load
    from other processes hits every contender alike.
    """

    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ConfigError("Repeats needs at least one value")

    @classmethod
    def of(cls, values: Sequence[float]) -> Repeats:
        """The repeats of ``values``, in the order they were measured."""
        return cls(tuple(values))

    @classmethod
    def ratios(cls, numerators: Sequence[float], denominators: Sequence[float]) -> Repeats:
        """Round-by-round ratios of two interleaved series (a speedup per round, say)."""
        if len(numerators) != len(denominators):
            raise ConfigError(f"paired repeats must have equal lengths, got {len(numerators)} and {len(denominators)}")
        return cls(tuple(n / d if d else math.inf for n, d in zip(numerators, denominators, strict=True)))

    @property
    def median(self) -> float:
        """The figure to quote."""
        return statistics.median(self.values)

    @property
    def deciles(self) -> bool:
        """Whether the spread is the 10th-90th percentile range (enough repeats) or min-max."""
        return len(self.values) >= DECILE_REPEATS

    @property
    def low(self) -> float:
        """The spread's low end: the smallest repeat, or the 10th percentile."""
        return percentile(self.values, 10) if self.deciles else min(self.values)

    @property
    def high(self) -> float:
        """The spread's high end: the largest repeat, or the 90th percentile."""
        return percentile(self.values, 90) if self.deciles else max(self.values)

    def spreadText(self, spec: str = ".2f", unit: str = "") -> str:
        """``"1.02-1.21x over 5"``: the range the repeats took (``"p10-p90 of 20"`` with deciles)."""
        over = f"p10-p90 of {len(self.values)}" if self.deciles else f"over {len(self.values)}"
        return f"{self.low:{spec}}-{self.high:{spec}}{unit} {over}"


@dataclass(frozen=True, slots=True)
class Line:
    """The threshold a timing claim draws: the figure must be at least it, or below it."""

    threshold: float
    atLeast: bool = True
    spec: str = ".2f"
    unit: str = ""

    @classmethod
    def above(cls, threshold: float, *, spec: str = ".2f", unit: str = "") -> Line:
        """The claim holds when the figure is at least ``threshold``."""
        return cls(threshold, True, spec, unit)

    @classmethod
    def under(cls, threshold: float, *, spec: str = ".2f", unit: str = "") -> Line:
        """The claim holds when the figure is below ``threshold``."""
        return cls(threshold, False, spec, unit)

    def side(self, value: float) -> bool:
        """Whether ``value`` lies on the claim's side of the line."""
        return value >= self.threshold if self.atLeast else value < self.threshold

    def __str__(self) -> str:
        return f"{'>=' if self.atLeast else '<'} {self.threshold:{self.spec}}{self.unit}"


def judgeRepeats(
    lecture: int,
    exercise: int,
    statement: str,
    figure: Repeats,
    line: Line,
    *,
    measured: str,
    reason: str = "",
    origin: Origin = Origin.LECTURE,
) -> Claim:
    """Judge a timing claim "the figure lies on the claim's side of ``line``" from its repeats.

    Decided only outside the spread: holds when the whole spread lies on the claim's
    side, does not hold when it lies on the other side, and is too close to call here
    when it straddles the line (the difference is inside this machine's noise). Below
    10 repeats the spread is every repeat; fewer than ``MIN_REPEATS`` decide nothing.
    """
    sides = {line.side(figure.low), line.side(figure.high)}
    spread = figure.spreadText(line.spec, line.unit)
    if len(figure.values) < MIN_REPEATS:
        verdict, why = Verdict.TOO_CLOSE, f"{len(figure.values)} repeats cannot decide a timing claim"
    elif sides == {True}:
        verdict, why = Verdict.HOLDS, ""
    elif sides == {False}:
        verdict, why = Verdict.FAILS, reason
    else:
        verdict, why = Verdict.TOO_CLOSE, f"the repeats straddle the line ({line}): the gap is inside the noise"
    return Claim(lecture, exercise, statement, measured, verdict, ClaimKind.TIMING, why, spread, origin)


def formatClaims(claims: Sequence[Claim], *, heading: str = "the lecture says") -> str:
    """Claims as a table that fits 100 columns, each reason a numbered note below it.

    Columns: exercise, kind, statement, measurement, the spread of its repeats (when
    any claim was measured in repeats), verdict.
    """
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    spreads = any(claim.spread for claim in claims)
    for claim in claims:
        verdict = claim.verdict.value
        if claim.reason:
            notes.append(prose(f"[{len(notes) + 1}] {claim.lecture}.{claim.exercise}: {claim.reason}"))
            verdict += f" [{len(notes)}]"
        kind = "struct" if claim.kind is ClaimKind.STRUCTURAL else "timing"
        spread = (claim.spread,) if spreads else ()
        rows.append((f"{claim.lecture}.{claim.exercise}", kind, claim.statement, claim.measured, *spread, verdict))
    headers = ("ex", "kind", heading, "measured", *(("spread",) if spreads else ()), "verdict")
    return "\n".join([formatTable(headers, rows), *notes])
