"""Which lab judges which exercise: one ``LectureLab`` per lecture module.

An exercise returns its result record (facts); its ``ExerciseLab`` turns that
record into the claims this run supports (``invoke run`` and ``invoke verify``)
and, in ``invoke verify`` only, runs the extra studies (sweeps, load runs,
calibrations) that judge the claims one run cannot.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Protocol, TypeVar

from lab.bench import Benchmark
from lab.claims import Claim
from shared import Log, RunOptions

R = TypeVar("R")

LECTURES: Final = (29, 31, 36, 37)


class CarriesClaims(Protocol):
    """A result that judged its own claims (lecture files not yet split from their lab)."""

    @property
    def claims(self) -> tuple[Claim, ...]: ...


def carriedClaims(result: CarriesClaims) -> tuple[Claim, ...]:
    """The claims a result judged itself: the bridge until its lecture's claims move here."""
    return result.claims


def noStudy(_options: RunOptions, _result: object, _log: Log) -> tuple[Claim, ...]:
    """An exercise whose claims all rest on its own run."""
    return ()


@dataclass(frozen=True, slots=True)
class ExerciseLab(Generic[R]):
    """How the lab judges one exercise: the result type it reads, its claims, its studies."""

    number: int
    resultType: type[R]
    judge: Callable[[R], tuple[Claim, ...]] = field(repr=False)
    study: Callable[[RunOptions, R, Log], tuple[Claim, ...]] = field(default=noStudy, repr=False)

    def claims(self, result: object) -> tuple[Claim, ...]:
        """The claims one run's result supports."""
        return self.judge(self._typed(result))

    def studies(self, options: RunOptions, result: object, log: Log) -> tuple[Claim, ...]:
        """The claims the extra studies decide (``invoke verify`` only)."""
        return self.study(options, self._typed(result), log)

    def _typed(self, result: object) -> R:
        if not isinstance(result, self.resultType):
            raise TypeError(f"exercise {self.number} returned {type(result).__name__}, not {self.resultType.__name__}")
        return result


@dataclass(frozen=True, slots=True)
class LectureLab:
    """A lecture's lab: one ``ExerciseLab`` per exercise, and its benchmarks."""

    lecture: int
    exercises: tuple[ExerciseLab[Any], ...]
    benchmarks: tuple[Benchmark, ...] = ()

    def exercise(self, number: int) -> ExerciseLab[Any]:
        """The lab of exercise ``number``."""
        for entry in self.exercises:
            if entry.number == number:
                return entry
        raise KeyError(f"lecture {self.lecture} has no exercise {number} in its lab")


def labFor(lecture: int) -> LectureLab:
    """The lab of one lecture (imports ``lab.lectureNN``, which imports ``lNN``)."""
    if lecture not in LECTURES:
        raise KeyError(f"no lab for lecture {lecture}; the lectures are {', '.join(map(str, LECTURES))}")
    module = importlib.import_module(f"lab.lecture{lecture}")
    found: LectureLab = module.LAB
    return found


def claimsFor(lecture: int, exercise: int, result: object) -> tuple[Claim, ...]:
    """The verdicts one run of an exercise supports, judged by its lecture's lab."""
    return labFor(lecture).exercise(exercise).claims(result)
