"""The lab of lecture 37 (Measurable pipeline: profiling and metrics): its claims, studies and benchmarks."""

from __future__ import annotations

import l37
from lab.registry import ExerciseLab, LectureLab, carriedClaims

LAB = LectureLab(
    37,
    (
        ExerciseLab(1, l37.Exercise1Result, carriedClaims),
        ExerciseLab(2, l37.Exercise2Result, carriedClaims),
        ExerciseLab(3, l37.Exercise3Result, carriedClaims),
        ExerciseLab(4, l37.Exercise4Result, carriedClaims),
    ),
    l37.BENCHMARKS,
)
