"""Lecture 29: results, accounting and determinism, read from result objects."""

from __future__ import annotations

import pytest

import l29
from shared import ClaimKind, ConfigError, StartMethod, Verdict

SMALL = l29.Exercise1Config(requests=4, valuesPerRequest=500, workers=2)


def test_analyzeRequest_computes_every_field() -> None:
    result = l29.analyzeRequest({"requestId": 7, "values": [0.25, 1.0]})
    assert result == {
        "requestId": 7,
        "mean": 0.625,
        "variance": 0.140625,
        "sumSqrt": 1.5,
        "riskScore": 1.5 / (0.625 * 2 + 1),
    }


def test_handleRequest_logs_dispatch_then_completion() -> None:
    lines: list[str] = []
    result = l29.runExercise1(SMALL, seed=1, executor="inline", log=lines.append)
    dispatches = [line for line in lines if line.endswith("dispatching")]
    completes = [line for line in lines if "complete, risk=" in line]
    assert len(dispatches) == len(completes) == SMALL.requests
    assert lines.index(dispatches[-1]) < lines.index(completes[0])
    assert result.dispatchedBeforeAnyCompleted


def test_exercise1_same_seed_same_figures() -> None:
    first = l29.runExercise1(SMALL, seed=3, executor="inline")
    second = l29.runExercise1(SMALL, seed=3, executor="inline")
    other = l29.runExercise1(SMALL, seed=4, executor="inline")
    assert first.rows == second.rows
    assert first.rows != other.rows
    assert [row.requestId for row in first.rows] == list(range(SMALL.requests))
    assert first.highRiskCount == sum(row.highRisk for row in first.rows)


@pytest.mark.parametrize("startMethod", ["fork", "spawn"])
def test_exercise1_process_pool_matches_inline(startMethod: StartMethod) -> None:
    pooled = l29.runExercise1(SMALL, seed=5, executor="process", startMethod=startMethod)
    inline = l29.runExercise1(SMALL, seed=5, executor="inline")
    assert pooled.rows == inline.rows
    assert pooled.matchesSequential
    assert pooled.coldSeconds > 0
    assert pooled.warmSeconds > 0


def test_exercise1_claims_are_judged() -> None:
    result = l29.runExercise1(SMALL, seed=2, executor="thread")
    byKind = {claim.kind for claim in result.claims}
    assert byKind == {ClaimKind.STRUCTURAL, ClaimKind.TIMING}
    structural = [claim for claim in result.claims if claim.kind is ClaimKind.STRUCTURAL]
    assert all(claim.verdict is Verdict.HOLDS for claim in structural)
    timing = next(claim for claim in result.claims if claim.kind is ClaimKind.TIMING)
    assert timing.verdict in {Verdict.HOLDS, Verdict.FAILS}
    assert f"bound {result.bound}x" in timing.measured


def test_exercise1_bound_is_min_of_requests_workers_cores() -> None:
    result = l29.runExercise1(SMALL, seed=2, executor="inline")
    assert result.bound == max(1, min(SMALL.requests, SMALL.workers, result.cores))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("requests", 0, r"^requests must be >= 1 and <= 10000, got 0$"),
        ("workers", 0, r"^workers must be >= 1 and <= 256, got 0$"),
        ("valuesPerRequest", -5, r"^valuesPerRequest must be >= 1 and <= 10000000, got -5$"),
    ],
)
def test_exercise1_config_rejects_bad_values(field: str, value: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        l29.Exercise1Config(**{field: value})
