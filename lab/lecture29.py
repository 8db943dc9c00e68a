"""The lab of lecture 29 (Async + multiprocessing hybrid architecture): its claims, studies and benchmarks."""

from __future__ import annotations

import l29
from lab.registry import ExerciseLab, LectureLab, carriedClaims

LAB = LectureLab(
    29,
    (
        ExerciseLab(1, l29.Exercise1Result, carriedClaims),
        ExerciseLab(2, l29.Exercise2Result, carriedClaims),
        ExerciseLab(3, l29.Exercise3Result, carriedClaims),
        ExerciseLab(4, l29.Exercise4Result, carriedClaims),
    ),
    l29.BENCHMARKS,
)
