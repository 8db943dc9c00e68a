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

from lab.claims import Claim, ClaimKind, Verdict
from lab.registry import LectureLab, labFor
from shared import Exercise, Log, RunOptions, Stopwatch, banner, cpuCount, formatMarkdownTable, formatTable, silent


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


VERIFY_HEADERS: Final = ("ex", "the lecture says", "measured", "verdict", "kind", "why not")


def verifyRows(records: Sequence[VerifyRecord], lecture: int) -> list[tuple[str, str, str, str, str, str]]:
    """The table rows of one lecture: one per claim, one per exercise that crashed."""
    rows: list[tuple[str, str, str, str, str, str]] = []
    for record in records:
        if record.lecture != lecture:
            continue
        key = f"{record.lecture}.{record.exercise}"
        if record.error:
            rows.append((key, record.title, "the exercise raised", "ERROR", "structural", record.error))
        rows.extend((key, c.statement, c.measured, c.verdict.value, c.kind.value, c.reason) for c in record.claims)
    return rows


def verifyTotals(records: Sequence[VerifyRecord]) -> str:
    """One line: how many claims held, failed, could not be measured; structural failures."""
    claims = [c for r in records for c in r.claims]
    counts = {verdict: sum(c.verdict is verdict for c in claims) for verdict in Verdict}
    errors = sum(bool(r.error) for r in records)
    structural = sum(r.structuralFailures for r in records)
    return (
        f"{len(claims)} claims: {counts[Verdict.HOLDS]} hold, {counts[Verdict.FAILS]} do not, "
        f"{counts[Verdict.NOT_MEASURED]} not measurable here; "
        f"{structural} structural failure(s), {errors} exercise error(s)"
    )


def formatVerify(records: Sequence[VerifyRecord], markdown: bool = False) -> str:
    """The verify table grouped by lecture, as plain text or as Markdown."""
    parts: list[str] = []
    for lecture in sorted({r.lecture for r in records}):
        rows = verifyRows(records, lecture)
        if markdown:
            parts += [f"\n## Lecture {lecture}\n", formatMarkdownTable(VERIFY_HEADERS, rows)]
        else:
            parts += [banner(f"Lecture {lecture}"), formatTable(VERIFY_HEADERS, rows)]
    parts += ["", verifyTotals(records)]
    return "\n".join(parts)


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
