"""The lab of lecture 31 (Concurrency architecture patterns): its claims, studies and benchmarks."""

from __future__ import annotations

import l31
from lab.registry import ExerciseLab, LectureLab, carriedClaims

LAB = LectureLab(
    31,
    (
        ExerciseLab(1, l31.Exercise1Result, carriedClaims),
        ExerciseLab(2, l31.Exercise2Result, carriedClaims),
        ExerciseLab(3, l31.Exercise3Result, carriedClaims),
        ExerciseLab(4, l31.Exercise4Result, carriedClaims),
    ),
    l31.BENCHMARKS,
)
