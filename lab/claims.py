"""What a lecture asserts, judged against what was measured.

A ``Claim`` is one sentence of a lecture with the figure that decides it and a
verdict. Structural claims are correctness (counts add up, order kept, nothing
lost): one that fails makes ``invoke verify`` exit 1. Timing claims depend on the
machine and are reported, never fatal.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from shared import formatTable


class Verdict(enum.Enum):
    """Whether a lecture's claim held on this run."""

    HOLDS = "holds"
    FAILS = "does not hold"
    NOT_MEASURED = "not measurable here"


class ClaimKind(enum.Enum):
    """Structural claims are correctness (fatal in verify); timing claims are reported."""

    STRUCTURAL = "structural"
    TIMING = "timing"


@dataclass(frozen=True, slots=True)
class Claim:
    """One claim of a lecture, with the measurement that decides it."""

    lecture: int
    exercise: int
    statement: str
    measured: str
    verdict: Verdict
    kind: ClaimKind
    reason: str = ""


def judge(
    lecture: int,
    exercise: int,
    statement: str,
    *,
    measured: str,
    holds: bool | None,
    kind: ClaimKind,
    reason: str = "",
) -> Claim:
    """Build a ``Claim``: ``holds=None`` means the run could not measure it.

    ``reason`` should say, in one line, why a claim does not hold or cannot be measured.
    """
    verdict = Verdict.NOT_MEASURED if holds is None else Verdict.HOLDS if holds else Verdict.FAILS
    return Claim(lecture, exercise, statement, measured, verdict, kind, "" if holds else reason)


def formatClaims(claims: Sequence[Claim]) -> str:
    """The claims of a run as a table: statement, measurement, verdict, reason."""
    rows = [(f"{c.lecture}.{c.exercise}", c.statement, c.measured, c.verdict.value, c.reason) for c in claims]
    return formatTable(("ex", "the lecture says", "measured", "verdict", "why not"), rows)
