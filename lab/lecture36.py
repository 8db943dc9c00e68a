"""The lab of lecture 36 (Process pool for CPU-bound pipeline stages): its claims, studies and benchmarks."""

from __future__ import annotations

import l36
from lab.registry import ExerciseLab, LectureLab, carriedClaims

LAB = LectureLab(
    36,
    (
        ExerciseLab(1, l36.Exercise1Result, carriedClaims),
        ExerciseLab(2, l36.Exercise2Result, carriedClaims),
        ExerciseLab(3, l36.Exercise3Result, carriedClaims),
        ExerciseLab(4, l36.Exercise4Result, carriedClaims),
    ),
    l36.BENCHMARKS,
)
