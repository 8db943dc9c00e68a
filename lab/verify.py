"""What ``invoke verify`` runs and prints: every exercise, judged by its lecture's lab.

Each exercise runs silently; its result is judged (the claims one run supports),
then its studies run (sweeps, load runs, calibrations). The table groups the
claims by lecture; a structural claim that fails, or an exercise that raises,
makes the task exit 1.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Final

from lab.claims import Claim, ClaimKind, Origin, Verdict, formatClaims
from lab.registry import LectureLab, labFor
from shared import (
    Exercise,
    Log,
    RunOptions,
    Stopwatch,
    banner,
    cpuCount,
    formatMarkdownTable,
    formatTable,
    prose,
    silent,
)


@dataclass(frozen=True, slots=True)
class VerifyRecord:
    """One exercise as ``invoke verify`` saw it: its claims, or the error that stopped it."""

    lecture: int
    exercise: int
    title: str
    seconds: float
    error: str
    claims: tuple[Claim, ...]
    result: object

    @property
    def structuralFailures(self) -> int:
        """Structural claims that did not hold: each one is a correctness bug."""
        return sum(c.kind is ClaimKind.STRUCTURAL and c.verdict is Verdict.FAILS for c in self.claims)


LabOf = Callable[[int], LectureLab]


def verifyOne(
    lecture: int, exercise: Exercise, options: RunOptions, *, studies: bool = True, labOf: LabOf = labFor
) -> VerifyRecord:
    """Run one exercise without its report, judge its result, then (with ``studies``) run its studies."""
    with Stopwatch() as watch:
        try:
            result = exercise.execute(options, silent)
            entry = labOf(lecture).exercise(exercise.number)
            claims = entry.claims(result) + (entry.studies(options, result, silent) if studies else ())
        except Exception as error:  # noqa: BLE001 - a crashing exercise is a verify failure, not a verify crash
            return VerifyRecord(lecture, exercise.number, exercise.title, watch.elapsed, repr(error), (), None)
    return VerifyRecord(lecture, exercise.number, exercise.title, watch.elapsed, "", claims, result)


def verifyAll(
    chosen: Sequence[tuple[int, Exercise]],
    options: RunOptions,
    log: Log = print,
    *,
    studies: bool = True,
    labOf: LabOf = labFor,
) -> list[VerifyRecord]:
    """Run every chosen (lecture, exercise) with a progress line each."""
    records: list[VerifyRecord] = []
    count = len(chosen)
    for index, (lecture, exercise) in enumerate(chosen, start=1):
        log(f"[{index}/{count}] {lecture}.{exercise.number} {exercise.title} ...")
        record = verifyOne(lecture, exercise, options, studies=studies, labOf=labOf)
        held = sum(c.verdict is Verdict.HOLDS for c in record.claims)
        status = f"error {record.error}" if record.error else f"{held}/{len(record.claims)} claims hold"
        log(f"[{index}/{count}] {lecture}.{exercise.number} done in {record.seconds:.1f} s: {status}")
        records.append(record)
    return records


MARKDOWN_HEADERS: Final = ("ex", "the lecture says", "measured", "spread", "verdict", "kind", "why not")


def lectureClaims(records: Sequence[VerifyRecord], lecture: int, origin: Origin) -> list[Claim]:
    """One lecture's claims of one origin, in exercise order."""
    return [c for r in records if r.lecture == lecture for c in r.claims if c.origin is origin]


def errorLines(records: Sequence[VerifyRecord], lecture: int) -> list[str]:
    """One line per exercise of ``lecture`` that raised instead of finishing."""
    return [
        prose(f"ERROR {r.lecture}.{r.exercise} {r.title}: the exercise raised {r.error}")
        for r in records
        if r.lecture == lecture and r.error
    ]


def verifyTotals(records: Sequence[VerifyRecord]) -> str:
    """How many claims held, failed, were too close to call, could not be measured; failures."""
    claims = [c for r in records for c in r.claims]
    counts = {verdict: sum(c.verdict is verdict for c in claims) for verdict in Verdict}
    errors = sum(bool(r.error) for r in records)
    structural = sum(r.structuralFailures for r in records)
    return prose(
        f"{len(claims)} claims: {counts[Verdict.HOLDS]} hold, {counts[Verdict.FAILS]} do not, "
        f"{counts[Verdict.TOO_CLOSE]} too close to call here, {counts[Verdict.NOT_MEASURED]} not measurable here; "
        f"{structural} structural failure(s), {errors} exercise error(s)"
    )


def _markdownRows(claims: Sequence[Claim]) -> list[tuple[str, ...]]:
    return [
        (f"{c.lecture}.{c.exercise}", c.statement, c.measured, c.spread, c.verdict.value, c.kind.value, c.reason)
        for c in claims
    ]


def formatVerify(records: Sequence[VerifyRecord], markdown: bool = False) -> str:
    """The verify tables grouped by lecture (the lecture's claims, then findings beyond it)."""
    parts: list[str] = []
    for lecture in sorted({r.lecture for r in records}):
        said = lectureClaims(records, lecture, Origin.LECTURE)
        found = lectureClaims(records, lecture, Origin.FINDING)
        if markdown:
            parts += [f"\n## Lecture {lecture}\n", formatMarkdownTable(MARKDOWN_HEADERS, _markdownRows(said))]
            if found:
                parts += ["\nBeyond the lecture:\n", formatMarkdownTable(MARKDOWN_HEADERS, _markdownRows(found))]
        else:
            parts += [banner(f"Lecture {lecture}"), formatClaims(said)]
            if found:
                parts += ["", "Beyond the lecture: this project's own findings", formatClaims(found, heading="finding")]
        parts += errorLines(records, lecture)
    parts += ["", verifyTotals(records)]
    return "\n".join(parts)


# ============================================================================
# --repeat N: how many runs agreed on each claim
# ============================================================================


@dataclass(frozen=True, slots=True)
class Agreement:
    """One claim over several verify runs: the verdict of each run."""

    lecture: int
    exercise: int
    statement: str
    verdicts: tuple[Verdict, ...]

    @property
    def agreed(self) -> int:
        """Runs that gave the most common verdict."""
        return max(self.verdicts.count(v) for v in set(self.verdicts))

    @property
    def flipped(self) -> bool:
        """Decided both ways: holds in one run, does not hold in another."""
        return {Verdict.HOLDS, Verdict.FAILS} <= set(self.verdicts)


def agreements(runs: Sequence[Sequence[VerifyRecord]]) -> list[Agreement]:
    """Each claim (by lecture, exercise, statement) with its verdict in every run, first-seen order."""
    seen: dict[tuple[int, int, str], list[Verdict]] = {}
    for records in runs:
        for claim in (c for r in records for c in r.claims):
            seen.setdefault((claim.lecture, claim.exercise, claim.statement), []).append(claim.verdict)
    return [Agreement(lecture, ex, statement, tuple(v)) for (lecture, ex, statement), v in seen.items()]


def formatAgreements(found: Sequence[Agreement], runs: int) -> str:
    """The claims whose verdict was not the same in every run, then one line of totals."""
    moved = [a for a in found if a.agreed < runs or len(a.verdicts) < runs]
    rows = [
        (
            f"{a.lecture}.{a.exercise}",
            a.statement,
            " / ".join(v.value for v in a.verdicts),
            "FLIPPED" * a.flipped,
        )
        for a in moved
    ]
    table = (
        formatTable(("ex", "claim", "verdict per run", "flip"), rows) if rows else "Every claim got the same verdict."
    )
    flips = sum(a.flipped for a in found)
    total = prose(
        f"{len(found)} claims over {runs} runs: {len(found) - len(moved)} agreed in every run, "
        f"{len(moved) - flips} moved between a verdict and too close / not measurable, {flips} flipped."
    )
    return "\n".join([table, total])


def machineFacts(seed: int) -> dict[str, object]:
    """What a figure depends on besides the code: interpreter, platform, cores, seed."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpuCount": cpuCount(),
        "seed": seed,
    }


def jsonValue(value: object) -> object:
    """``json.dumps`` fallback: dataclasses as dicts, enums by value, anything else by repr."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, Enum):
        return value.value
    return repr(value)


def writeJson(path: str, payload: object) -> None:
    """Write ``payload`` as indented JSON."""
    Path(path).write_text(json.dumps(payload, default=jsonValue, indent=2) + "\n", encoding="utf-8")
