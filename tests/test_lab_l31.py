"""The lab of lecture 31: its judges fed results that hold and that fail, its study, its benchmarks."""

from __future__ import annotations

import contextlib
import itertools
import statistics
import time
import warnings
from collections.abc import Iterator
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

import l31
from lab import lecture31 as lab31
from lab.bench import EFFICIENCY_TARGET, BenchOptions, BenchRow
from lab.claims import Claim, ClaimKind, Origin, Verdict
from shared import InlineExecutor, RunOptions, cpuCount, executorScope, makeRng, silent, warmUp

SMALL1 = l31.Exercise1Config(requests=3, recordsPerRequest=4, threadWorkers=3, processWorkers=2, timeScale=0.02)
SMALL4 = l31.Exercise4Config(
    sizes=(1, 3),
    processWorkers=2,
    storeWorkers=3,
    batches=6,
    batchSize=6,
    storeFailureProbability=0.5,
    maxExtraBatches=4,
    timeScale=0.1,
)


@contextlib.contextmanager
def noWarnings() -> Iterator[None]:
    """Fail if the block warns at all (the fork-with-threads warning of 3.12+ included)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []


def verdictOf(claims: tuple[Claim, ...], words: str) -> Verdict:
    """The verdict of the one claim whose statement contains ``words``."""
    (claim,) = [c for c in claims if words in c.statement]
    return claim.verdict


def structuralHold(claims: tuple[Claim, ...]) -> bool:
    """Every structural claim holds or could not be measured; none fails."""
    return all(c.verdict is not Verdict.FAILS for c in claims if c.kind is ClaimKind.STRUCTURAL)


@pytest.fixture(scope="module")
def inline1() -> l31.Exercise1Result:
    return l31.runExercise1(SMALL1, seed=4, executor="inline")


SEED4 = 2


@pytest.fixture(scope="module")
def inline4() -> l31.Exercise4Result:
    return l31.runExercise4(SMALL4, seed=SEED4, executor="inline")


# ============================================================================
# Exercise 1
# ============================================================================


def test_judge1_decides_only_the_structural_claims(inline1: l31.Exercise1Result) -> None:
    claims = lab31.judge1(inline1)
    assert [(c.kind, c.verdict) for c in claims] == [(ClaimKind.STRUCTURAL, Verdict.HOLDS)] * 2
    differ = lab31.judge1(replace(inline1, matchesSequential=False))
    assert verdictOf(differ, "returns what the synchronous handler returns") is Verdict.FAILS
    assert not structuralHold(differ)


BASELINE = (0.30, 0.31, 0.29, 0.30, 0.32)


def test_speedupClaim_holds_fails_or_is_too_close_on_paired_rounds() -> None:
    def claim(contender: tuple[float, ...]) -> Claim:
        return lab31.speedupClaim(1, "tiers beat sequential", (BASELINE[: len(contender)], contender), 0.05, "why")

    faster = claim((0.10, 0.10, 0.10, 0.10, 0.10))
    assert (faster.verdict, faster.reason, faster.spread) == (Verdict.HOLDS, "", "2.90-3.20x over 5")
    assert faster.measured == "3.00x (300 -> 100 ms); the latency model allows 6.00x"
    slower = claim((0.40, 0.41, 0.39, 0.40, 0.42))
    assert (slower.verdict, slower.reason) == (Verdict.FAILS, "why")
    inside = claim((0.29, 0.32, 0.28, 0.31, 0.30))
    assert inside.verdict is Verdict.TOO_CLOSE
    assert inside.reason == "the repeats straddle the line (>= 1.00x): the gap is inside the noise"
    few = claim((0.10, 0.10, 0.10, 0.10))
    assert (few.verdict, few.reason) == (Verdict.TOO_CLOSE, "4 repeats cannot decide a timing claim")


def test_a_speedup_past_its_bound_is_flagged_never_holds() -> None:
    def claim(contender: tuple[float, ...], ideal: float) -> Claim:
        return lab31.speedupClaim(1, "tiers beat sequential", (BASELINE, contender), ideal, "why")

    every = claim((0.10, 0.10, 0.10, 0.10, 0.10), 0.125)
    assert every.verdict is Verdict.NOT_MEASURED
    assert every.reason == "faster than its bound at every repeat: the bound's calibration is off by 20% or more"
    median = claim((0.10, 0.10, 0.10, 0.13, 0.13), 0.12)
    assert median.verdict is Verdict.NOT_MEASURED
    assert median.reason == (
        "its median beats its bound, within the spread of its repeats: the calibration or the measurement is off"
    )
    inside = claim((0.29, 0.32, 0.28, 0.31, 0.30), 0.31)
    assert inside.verdict is Verdict.TOO_CLOSE
    assert inside.reason.endswith(
        "inside the noise; its median beats its bound, within the spread of its repeats: "
        "the calibration or the measurement is off"
    )
    atBound = claim((0.10, 0.10, 0.10, 0.10, 0.10), 0.10)
    assert atBound.verdict is Verdict.HOLDS


def test_the_ideals_follow_the_latency_model() -> None:
    assert lab31.idealThreeTier(0.01, [0.05, 0.05], 1, 2) == pytest.approx(0.07)
    assert lab31.idealThreeTier(0.01, [0.05, 0.05], 2, 2) == pytest.approx(0.06)
    # Parsing free, 3 requests on 3 threads: sequential pays every call, both concurrent ones the slowest.
    delays, ideals = lab31.threeTierIdeals(SMALL1, 4, 0.0)
    assert ideals == pytest.approx([sum(delays), max(delays), max(delays)])
    _, onTheLoop = lab31.threeTierIdeals(SMALL1, 4, 0.01, width=1)
    assert onTheLoop[2] == pytest.approx(onTheLoop[1])


def test_study1_judges_each_tier_on_paired_rounds(inline1: l31.Exercise1Result) -> None:
    claims = lab31.study1(RunOptions(seed=4, quick=True, executor="inline"), inline1, silent)
    assert [c.statement for c in claims] == [
        "asyncio + thread pool + process pool beats the synchronous version (synchronous / async time)",
        "each tier adds its own gain: async + the thread pool beats the synchronous version",
        "each tier adds its own gain: the process pool beats parsing on the loop",
    ]
    assert all(c.kind is ClaimKind.TIMING for c in claims)
    assert [c.spread.endswith(" over 5") for c in claims] == [True, True, False]
    assert (claims[2].verdict, claims[2].reason) == (
        Verdict.NOT_MEASURED,
        "--executor inline: there is no CPU tier to compare",
    )


# ============================================================================
# Exercise 2
# ============================================================================


@pytest.fixture(scope="module")
def fanOut() -> l31.Exercise2Result:
    return l31.runExercise2(l31.Exercise2Config(queries=6, timeScale=0.02), seed=5)


def test_judge2_fails_a_straggler_and_a_lost_shard(fanOut: l31.Exercise2Result) -> None:
    assert structuralHold(lab31.judge2(fanOut))
    assert all(c.kind is ClaimKind.STRUCTURAL for c in lab31.judge2(fanOut))
    first = fanOut.queries[0]
    leaked = replace(fanOut, queries=(first | {"stragglersLeft": 1}, *fanOut.queries[1:]))
    assert verdictOf(lab31.judge2(leaked), "cancelled cleanly") is Verdict.FAILS
    lost = replace(fanOut, queries=(first | {"shardsFailed": first["shardsFailed"] + 1}, *fanOut.queries[1:]))
    assert verdictOf(lab31.judge2(lost), "every shard ends") is Verdict.FAILS


def lateBy(result: l31.Exercise2Result, milliseconds: float) -> l31.Exercise2Result:
    """The run with its first fan-out returning ``milliseconds`` after its timeout, the others on time."""
    first, *rest = result.queries
    onTime = [q | {"elapsedSeconds": q["usedTimeout"]} for q in rest]
    return replace(result, queries=(first | {"elapsedSeconds": first["usedTimeout"] + milliseconds / 1e3}, *onTime))


def test_fanOutClaims_judge_the_overshoot_on_every_run(fanOut: l31.Exercise2Result) -> None:
    # Margin at time scale 0.02: 50 ms x 0.02 = 1 ms.
    def overshoot(*late: float) -> Claim:
        (claim, _) = lab31.fanOutClaims([lateBy(fanOut, ms) for ms in late])
        return claim

    onTime = overshoot(0.1, 0.2, 0.1, 0.3, 0.1)
    assert (onTime.verdict, onTime.spread) == (Verdict.HOLDS, "0.1-0.3 ms over 5")
    late = overshoot(5.0, 4.0, 6.0, 5.0, 5.0)
    assert (late.verdict, late.reason) == (Verdict.FAILS, "the loop was late waking up (a loaded machine)")
    inside = overshoot(0.5, 2.0, 0.5, 0.5, 0.5)
    assert inside.verdict is Verdict.TOO_CLOSE


def withTimeouts(result: l31.Exercise2Result, *timeouts: float) -> l31.Exercise2Result:
    """The run with its queries' timeouts replaced, in seconds at its time scale (0.02: the default is 0.01)."""
    queries = (q | {"usedTimeout": t} for q, t in zip(result.queries, timeouts, strict=True))
    return replace(result, queries=tuple(queries))


def test_fanOutClaims_need_the_timeout_to_move_in_every_run(fanOut: l31.Exercise2Result) -> None:
    moves = withTimeouts(fanOut, 0.01, 0.01, 0.012, 0.014, 0.014, 0.012)
    assert lab31.adaptiveTimeouts(moves) == pytest.approx([0.6, 0.7, 0.7, 0.6])
    (_, adapts) = lab31.fanOutClaims([moves] * 5)
    assert (adapts.verdict, adapts.spread) == (Verdict.HOLDS, "2-2 timeouts over 5")
    assert adapts.measured == "2 distinct adaptive timeouts a run, 0.600-0.700 s in all (spec's scale)"
    frozen = withTimeouts(fanOut, 0.01, 0.01, 0.02, 0.02, 0.02, 0.02)
    (_, stuck) = lab31.fanOutClaims([frozen] * 5)
    assert (stuck.verdict, stuck.reason) == (Verdict.FAILS, "too few shards answered for the timeout to move")
    (_, mixed) = lab31.fanOutClaims([frozen, moves, moves, moves, moves])
    assert mixed.verdict is Verdict.TOO_CLOSE
    (_, never) = lab31.fanOutClaims([withTimeouts(fanOut, *[0.01] * 6)] * 5)
    assert (never.verdict, never.measured) == (Verdict.FAILS, "no query had enough observations")


def test_judge2_checks_the_default_against_the_observations_seen(fanOut: l31.Exercise2Result) -> None:
    def responded(*counts: int) -> l31.Exercise2Result:
        queries = (
            q | {"shardsResponded": n, "shardsTimedOut": 6 - n, "shardsFailed": 0}
            for q, n in zip(fanOut.queries, counts, strict=True)
        )
        return replace(fanOut, queries=tuple(queries))

    words = "use the default 0.5 s until 5 latencies"
    # 2 + 2 = 4 seen before the third query: it still uses the default; 4 + 1 = 5 before the fourth: it must not.
    right = withTimeouts(responded(2, 2, 1, 3, 3, 3), 0.01, 0.01, 0.01, 0.02, 0.03, 0.03)
    assert verdictOf(lab31.judge2(right), words) is Verdict.HOLDS
    early = withTimeouts(responded(2, 2, 1, 3, 3, 3), 0.01, 0.01, 0.02, 0.02, 0.03, 0.03)
    assert verdictOf(lab31.judge2(early), words) is Verdict.FAILS
    late = withTimeouts(responded(2, 2, 1, 3, 3, 3), 0.01, 0.01, 0.01, 0.01, 0.03, 0.03)
    assert verdictOf(lab31.judge2(late), words) is Verdict.FAILS
    short = replace(right, queries=(right.queries[0] | {"shardsTimedOut": 3}, *right.queries[1:]))
    assert verdictOf(lab31.judge2(short), "every shard ends") is Verdict.FAILS
    assert verdictOf(lab31.judge2(replace(right, liveShardTasks=1)), "cancelled cleanly") is Verdict.FAILS
    warned = replace(right, loopProblems=("Task was destroyed but it is pending!",))
    assert verdictOf(lab31.judge2(warned), "cancelled cleanly") is Verdict.FAILS


def test_study2_adds_the_censoring_finding_beyond_the_lecture(fanOut: l31.Exercise2Result) -> None:
    claims = lab31.study2(RunOptions(seed=5, quick=True), fanOut, silent)
    assert [(c.statement, c.origin) for c in claims] == [
        ("a fan-out returns by its timeout (plus a small margin)", Origin.LECTURE),
        ("later queries adapt the timeout to the observed distribution", Origin.LECTURE),
        ("censoring (only in-time shards are seen) does not ratchet the x2.0 timeout down", Origin.FINDING),
    ]
    assert all(c.spread.endswith(" over 5") for c in claims[:2])
    assert claims[2].verdict is Verdict.HOLDS


def test_the_simulation_replays_the_draws_through_the_spec_tracker() -> None:
    run = lab31.simulateAdaptiveTimeouts(40, 6, seed=42)
    answered: list[float] = []
    for index, (timeout, responded) in enumerate(zip(run.timeouts, run.responded, strict=True)):
        window = answered[-20:]
        expected = 0.5 if len(window) < 5 else 2.0 * statistics.quantiles(window, n=10, method="inclusive")[8]
        assert timeout == pytest.approx(expected)
        inTime = []
        for shardId in range(6):
            rng = makeRng(42, 31, 2, f"q{index + 1:02d}", shardId)
            latency = 0.1 + rng.expovariate(5.0)
            if latency <= timeout and rng.random() >= 0.1:
                inTime.append(latency)
        assert responded == len(inTime)
        answered += inTime
    # Two queries on the default, then adaptive ones; 217 latencies went through the 20-long window.
    assert (run.timeouts[:2], len(answered)) == ((0.5, 0.5), 217)


def test_long_run_ratchets_down_only_without_headroom() -> None:
    spec = lab31.simulateAdaptiveTimeouts(600, 6, seed=42, multiplier=2.0)
    tight = lab31.simulateAdaptiveTimeouts(600, 6, seed=42, multiplier=1.0)
    assert spec == lab31.simulateAdaptiveTimeouts(600, 6, seed=42, multiplier=2.0)
    assert spec.timeouts[0] == 0.5
    assert not spec.ratchetsDown
    assert tight.ratchetsDown
    assert tight.settledResponded < spec.settledResponded
    config = l31.Exercise2Config()
    assert lab31.censoringClaim(config, spec, tight).verdict is Verdict.HOLDS
    ratcheted = lab31.censoringClaim(config, tight, tight)
    assert (ratcheted.verdict, ratcheted.origin) == (Verdict.FAILS, Origin.FINDING)
    assert ratcheted.reason == (
        f"the window settles at {tight.settledSeconds / tight.referenceSeconds:.0%} of the uncensored timeout: "
        "too little headroom over the censored p90"
    )


# ============================================================================
# Exercise 3
# ============================================================================


@pytest.fixture(scope="module")
def breaker3() -> l31.Exercise3Result:
    return l31.runExercise3(l31.Exercise3Config(timeScale=0.01), seed=4)


def test_judge3_holds_on_a_run_and_fails_a_wrong_transition(breaker3: l31.Exercise3Result) -> None:
    claims = lab31.judge3(breaker3)
    assert structuralHold(claims)
    assert all(c.kind is ClaimKind.STRUCTURAL for c in claims)
    closed, opened = l31.BreakerState.CLOSED, l31.BreakerState.OPEN
    halfOpen = l31.BreakerState.HALF_OPEN
    assert lab31.transitionsFollowSpec(
        [l31.StateChange(closed, opened, 0.0, ""), l31.StateChange(opened, halfOpen, 2.0, "")], 2.0
    )
    early = [l31.StateChange(closed, opened, 0.0, ""), l31.StateChange(opened, halfOpen, 1.9, "")]
    assert not lab31.transitionsFollowSpec(early, 2.0)
    assert not lab31.transitionsFollowSpec([l31.StateChange(closed, halfOpen, 0.0, "")], 2.0)
    skipped = replace(breaker3, changes=(l31.StateChange(closed, halfOpen, 0.0, ""),))
    assert verdictOf(lab31.judge3(skipped), "the state follows") is Verdict.FAILS


def test_judge3_fails_a_lost_call_a_leaked_rejection_and_a_miscounted_timeout(
    breaker3: l31.Exercise3Result,
) -> None:
    lost = replace(breaker3, calls=breaker3.calls[1:])
    assert verdictOf(lab31.judge3(lost), "= 30 calls") is Verdict.FAILS
    rejected = next(i for i, r in enumerate(breaker3.calls) if r.outcome is l31.CallOutcome.CIRCUIT_OPEN)
    calls = list(breaker3.calls)
    calls[rejected] = replace(calls[rejected], reachedService=True)
    leaked = replace(breaker3, calls=tuple(calls), serviceCalls=breaker3.serviceCalls + 1)
    assert verdictOf(lab31.judge3(leaked), "without calling the service") is Verdict.FAILS
    words = "an outer wait_for timeout is not a service failure"
    timeout = replace(calls[0], outcome=l31.CallOutcome.TIMEOUT, timeoutSource="outer")
    released = replace(timeout, releasedUncounted=True, countedAsFailure=False)
    counted = replace(timeout, releasedUncounted=False, countedAsFailure=True)
    assert verdictOf(lab31.judge3(replace(breaker3, calls=(released,))), words) is Verdict.HOLDS
    assert verdictOf(lab31.judge3(replace(breaker3, calls=(counted,))), words) is Verdict.FAILS
    probe = replace(counted, timeoutSource="probe")
    assert verdictOf(lab31.judge3(replace(breaker3, calls=(probe,))), words) is Verdict.HOLDS
    uncountedProbe = replace(released, timeoutSource="probe")
    assert verdictOf(lab31.judge3(replace(breaker3, calls=(uncountedProbe,))), words) is Verdict.FAILS
    noTimeout = replace(breaker3, calls=tuple(r for r in breaker3.calls if r.outcome is not l31.CallOutcome.TIMEOUT))
    assert verdictOf(lab31.judge3(noTimeout), words) is Verdict.NOT_MEASURED


def timedCalls(result: l31.Exercise3Result, fastFail: float, slowest: float) -> l31.Exercise3Result:
    """The run with every fast-fail taking ``fastFail`` ms, the other calls 5 ms, the last of them ``slowest``."""
    rejected = l31.CallOutcome.CIRCUIT_OPEN
    calls = [replace(r, seconds=(fastFail if r.outcome is rejected else 5.0) / 1e3) for r in result.calls]
    last = max(i for i, r in enumerate(calls) if r.outcome is not rejected)
    calls[last] = replace(calls[last], seconds=slowest / 1e3)
    return replace(result, calls=tuple(calls))


def openedAtThree(result: l31.Exercise3Result) -> l31.Exercise3Result:
    """The run as if calls 0-2 failed (the circuit opening at call 2), call 15 were a probe that timed out,
    and the other 26 calls were rejected."""
    states = [l31.BreakerState.CLOSED] * 2 + [l31.BreakerState.OPEN] * 28
    outcomes = [l31.CallOutcome.SERVICE_ERROR] * 3 + [l31.CallOutcome.CIRCUIT_OPEN] * 27
    outcomes[15] = l31.CallOutcome.TIMEOUT
    calls = (
        replace(r, outcome=outcome, stateAfter=state, reachedService=outcome is not l31.CallOutcome.CIRCUIT_OPEN)
        for r, outcome, state in zip(result.calls, outcomes, states, strict=True)
    )
    return replace(result, calls=tuple(calls))


def test_fastFailClaims_draw_their_line_at_a_twentieth_of_the_outer_timeout(breaker3: l31.Exercise3Result) -> None:
    # Time scale 0.01: outer timeout 10 ms, line 0.5 ms; the hang 30 ms.
    opened = openedAtThree(breaker3)

    def claims(*fastFails: float, slowest: float = 5.0) -> tuple[Claim, ...]:
        return lab31.fastFailClaims([timedCalls(opened, ms, slowest) for ms in fastFails])

    fast, noHang = claims(0.1, 0.2, 0.1, 0.1, 0.1)
    assert (fast.verdict, fast.spread) == (Verdict.HOLDS, "0.10-0.20 ms over 5")
    assert fast.measured.startswith("slowest of 26 fast-fails 0.10 ms (line: 1/20 of the 10 ms outer timeout")
    assert noHang.verdict is Verdict.HOLDS
    slow, _ = claims(0.8, 0.9, 0.8, 0.8, 0.7)
    assert (slow.verdict, slow.reason) == (
        Verdict.FAILS,
        "a rejected call waited: the loop was late or the breaker's lock contended",
    )
    inside, _ = claims(0.1, 0.9, 0.1, 0.1, 0.1)
    assert inside.verdict is Verdict.TOO_CLOSE
    _, hung = claims(0.1, 0.1, 0.1, 0.1, 0.1, slowest=40.0)
    assert (hung.verdict, hung.reason) == (Verdict.FAILS, "a call waited out the service's hang")
    # The slowest call after the opening is what counts: 5 ms then, under the 30 ms hang.
    assert (noHang.verdict, noHang.spread) == (Verdict.HOLDS, "5-5 ms over 5")


def test_fastFailClaims_are_not_measurable_when_the_circuit_never_opened(breaker3: l31.Exercise3Result) -> None:
    closedCalls = tuple(
        replace(r, stateAfter=l31.BreakerState.CLOSED, outcome=l31.CallOutcome.SUCCESS) for r in breaker3.calls
    )
    claims = lab31.fastFailClaims([breaker3, replace(breaker3, calls=closedCalls)])
    assert [(c.verdict, c.reason) for c in claims] == [(Verdict.NOT_MEASURED, "the circuit never opened in a run")] * 2


# ============================================================================
# Exercise 4
# ============================================================================


def test_judge4_decides_only_the_structural_claims(inline4: l31.Exercise4Result) -> None:
    claims = lab31.judge4(inline4)
    assert [c.kind for c in claims] == [ClaimKind.STRUCTURAL] * 3
    assert structuralHold(claims)


def scaleRounds(sensors: int, naive: float, correct: tuple[float, ...]) -> lab31.ScaleRounds:
    return lab31.ScaleRounds(sensors, (naive,) * len(correct), correct, 0.01)


def test_growthClaim_judges_the_smallest_step_of_each_round() -> None:
    small = scaleRounds(12, 0.33, (0.17, 0.16, 0.17, 0.18, 0.17))
    growing = lab31.growthClaim([small, scaleRounds(24, 0.59, (0.18, 0.18, 0.19, 0.18, 0.17))])
    assert (growing.verdict, growing.spread) == (Verdict.HOLDS, "1.59-1.79x over 5")
    flat = lab31.growthClaim([small, scaleRounds(24, 0.59, (0.33, 0.33, 0.34, 0.34, 0.33))])
    assert (flat.verdict, flat.reason) == (
        Verdict.FAILS,
        "the speedup did not grow from one scale to the next in any round",
    )
    inside = lab31.growthClaim([small, scaleRounds(24, 0.66, (0.36, 0.30, 0.35, 0.31, 0.34))])
    assert inside.verdict is Verdict.TOO_CLOSE
    one = lab31.growthClaim([small])
    assert (one.verdict, one.reason) == (Verdict.NOT_MEASURED, "one scale only")


def test_study4_judges_every_scale_and_the_growth_on_interleaved_rounds(inline4: l31.Exercise4Result) -> None:
    claims = lab31.study4(RunOptions(seed=SEED4, quick=True, executor="inline"), inline4, silent)
    assert [c.statement for c in claims] == [
        "the correct architecture beats the naive one at 1 sensors",
        "the correct architecture beats the naive one at 3 sensors",
        "the speedup increases with more sensors",
    ]
    assert all(c.kind is ClaimKind.TIMING and c.spread.endswith(" over 5") for c in claims)


def test_the_breaker_claim_needs_an_opening_and_a_fast_fail(inline4: l31.Exercise4Result) -> None:
    words = "consecutive failures the breaker opens"
    # Seed 2, p = 0.5: it opens in batch 2 and fails 6 + 6 + 6 + 5 stores fast (test_l31's replay of the rules).
    assert inline4.fastFails == 23
    assert verdictOf(lab31.judge4(inline4), words) is Verdict.HOLDS
    closedRows = tuple(
        replace(row, successes=row.total, failures=0, fastFails=0, stateAfter=l31.BreakerState.CLOSED)
        for row in inline4.batches
    )
    never = replace(inline4, batches=closedRows, changes=())
    claim = lab31.breakerOpensClaim(never)
    assert claim.verdict is Verdict.NOT_MEASURED
    assert claim.reason.startswith("P(a run of 3 failures in ")
    lastOnly = replace(never, changes=inline4.changes[:1])
    assert lab31.breakerOpensClaim(lastOnly).verdict is Verdict.NOT_MEASURED
    bad = replace(inline4, changes=(replace(inline4.changes[0], reason="1 consecutive failures"),))
    assert lab31.breakerOpensClaim(bad).verdict is Verdict.FAILS
    lost = replace(inline4, batches=(replace(inline4.batches[0], successes=0), *inline4.batches[1:]))
    assert verdictOf(lab31.judge4(lost), "every guarded store ends") is Verdict.FAILS
    stats = inline4.breakerStatistics
    ranAnyway = replace(inline4, breakerStatistics=replace(stats, rejected=stats.rejected - 1))
    assert verdictOf(lab31.judge4(ranAnyway), "every guarded store ends") is Verdict.FAILS
    differ = replace(inline4, rows=(replace(inline4.rows[0], aggregatesMatch=False), *inline4.rows[1:]))
    assert verdictOf(lab31.judge4(differ), "compute the same aggregate") is Verdict.FAILS


@given(st.integers(1, 10), st.integers(1, 4), st.sampled_from([0.15, 0.5, 0.9]))
def test_runProbability_matches_enumeration(trials: int, runLength: int, probability: float) -> None:
    exact = 0.0
    for flags in itertools.product([False, True], repeat=trials):
        if lab31.longestRun(flags) >= runLength:
            hits = sum(flags)
            exact += probability**hits * (1 - probability) ** (trials - hits)
    assert lab31.runProbability(trials, runLength, probability) == pytest.approx(exact)


def test_normalizeWidth_is_the_cores_for_processes_and_one_inline() -> None:
    assert lab31.normalizeWidth("process", 12, 2) == min(2, cpuCount())
    assert lab31.normalizeWidth("inline", 12, 2) == 1
    assert lab31.normalizeWidth("thread", 12, 4) == 1


def fetchDelay(sensorId: int, seed: int) -> float:
    """A sensor's fetch delay as requirement 1a draws it: uniform(0.08, 0.12) s from the seed and the sensor."""
    return makeRng(seed, 31, 4, sensorId).uniform(0.08, 0.12)


def metadataDelay(recordId: int, seed: int) -> float:
    """A metadata call's delay as exercise 1 draws it: uniform(0.05, 0.1) s from the seed and the record."""
    return makeRng(seed, 31, 1, "metadata", recordId).uniform(0.05, 0.1)


def test_stagedCorrectPipeline_times_the_stages_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    normalize = l31.normalizeReading

    def sleepyNormalize(reading: l31.RawReading) -> l31.NormalizedReading:
        time.sleep(0.004)
        return normalize(reading, 1)

    monkeypatch.setattr(l31, "normalizeReading", sleepyNormalize)
    with executorScope("thread", 2) as threads:
        warmUp(threads, 2)
        fetch, normalizeStage, store = lab31.stagedCorrectPipeline(3, InlineExecutor(), threads, 3, 0.05)
    # Bounds from the stages' own sleeps: the slowest fetch; three 4 ms normalisations in series on the
    # inline executor; at least one 1 ms store.
    assert fetch >= max(fetchDelay(sensorId, 3) for sensorId in range(3)) * 0.05
    assert normalizeStage >= 3 * 0.004
    assert store >= l31.STORE_SECONDS * 0.05
    assert lab31.fetchDelays(3, 3, 0.05) == [fetchDelay(sensorId, 3) * 0.05 for sensorId in range(3)]


# ============================================================================
# Benchmarks: the logic, not the clock (tiny sizes, one repeat)
# ============================================================================

TINY_BENCH = BenchOptions(seed=3, repeats=1)
TINY4 = l31.Exercise4Config(processWorkers=2, storeWorkers=2, timeScale=0.02)


def test_benchThreeTier_rows_are_the_three_architectures() -> None:
    with noWarnings():
        report = lab31.benchThreeTier(SMALL1, TINY_BENCH, extensions=(5,))
    labels = [row.label for row in report.rows]
    assert report.key == "31.1"
    assert labels[:3] == [
        "sequential (baseline)",
        "async + 3 threads, parse on the loop",
        "async + 3 threads + 2 processes",
    ]
    assert all(label.endswith(", 5 requests") for label in labels[3:])
    sequential, threads, tiers = report.rows[:3]
    assert all(row.repeats == len(row.samples) == 1 for row in report.rows)
    # Bounds from the handlers' own sleeps: sequential sleeps every metadata call and 0.1 ms per record parsed;
    # both concurrent architectures wait at least for the slowest call.
    delays = [metadataDelay(requestId * 1000, 3) * SMALL1.timeScale for requestId in range(SMALL1.requests)]
    assert sequential.medianSeconds >= sum(delays) + SMALL1.requests * SMALL1.recordsPerRequest * 0.0001
    assert min(threads.medianSeconds, tiers.medianSeconds) >= max(delays)
    assert sequential.idealSeconds >= sum(delays) + SMALL1.requests * SMALL1.recordsPerRequest * 0.0001
    assert tiers.idealSeconds >= max(delays)
    assert sequential.baselineSeconds == threads.baselineSeconds == tiers.baselineSeconds == sequential.medianSeconds
    assert tiers.idealSeconds <= threads.idealSeconds <= sequential.idealSeconds
    for row in report.rows[:3]:
        named = any(note.startswith(f"{row.label}: ") for note in report.notes)
        assert named is (row.efficiency < EFFICIENCY_TARGET)


def assertPipelineBounds(naiveSeconds: float, correctSeconds: float, sensors: int) -> None:
    """Bounds from the pipelines' own sleeps at ``TINY4``'s time scale: both wait for the slowest fetch and
    then store at least once; the naive loop also stores every sensor in series after the first fetch."""
    delays = [fetchDelay(sensorId, TINY_BENCH.seed) * TINY4.timeScale for sensorId in range(sensors)]
    store = l31.STORE_SECONDS * TINY4.timeScale
    assert correctSeconds >= max(delays) + store
    assert naiveSeconds >= max(max(delays) + store, min(delays) + sensors * store)


def test_benchPipeline_measures_both_architectures_and_extends_below_target() -> None:
    with noWarnings():
        report = lab31.benchPipeline(TINY4, 2, (4,), TINY_BENCH)
    labels = [row.label for row in report.rows]
    assert labels[:2] == ["naive, 2 sensors", "correct, 2 sensors"]
    naive, correct = report.rows[:2]
    assert naive.baselineSeconds == naive.medianSeconds == correct.baselineSeconds
    assert correct.idealSeconds <= naive.idealSeconds
    assertPipelineBounds(naive.medianSeconds, correct.medianSeconds, 2)
    notes = [" ".join(note.split()) for note in report.notes]
    if correct.efficiency < EFFICIENCY_TARGET:
        assert labels[2:] == ["correct, 4 sensors"]
        assertPipelineBounds(naive.medianSeconds, report.rows[2].medianSeconds, 4)
        assert notes[1].startswith(f"correct, 2 sensors: {correct.efficiency:.0%} of ideal, ")
        assert notes[-1].startswith(f"The 85% target is {'' if report.rows[2].efficiency >= 0.85 else 'not '}reached")
    else:
        assert labels[2:] == []
        assert len(notes) == 1


def test_benchSweep_has_one_row_per_size_and_reads_the_speedup() -> None:
    report = lab31.benchSweep(TINY4, (2, 4), TINY_BENCH)
    assert [row.label for row in report.rows] == ["2 sensors", "4 sensors"]
    for sensors, row in zip((2, 4), report.rows, strict=True):
        assertPipelineBounds(row.baselineSeconds, row.medianSeconds, sensors)
    chart = [line for note in report.notes for line in note.splitlines() if " measured | " in line]
    assert [line.split()[-1] for line in chart] == [f"{row.speedup:,.3g}x" for row in report.rows]
    text = " ".join(" ".join(report.notes).split())
    path = " -> ".join(f"{row.speedup:.2f}x" for row in report.rows)
    assert f"Does the speedup keep growing? {path}: " in text
    assert f"What bounds it on {cpuCount()} cores: in the model, (normalize + store) / (normalize / " in text


def point(sensors: int, naive: float, correct: float, ideal: float, stages: tuple[float, ...]) -> lab31.PipelinePoint:
    return lab31.PipelinePoint(sensors, naive, correct, naive, ideal, stages, (0.1, 0.005, 0.02), 5)


def test_growthReading_tells_shrinking_steps_from_a_drop() -> None:
    assert "yes, but by ever smaller steps (x1.50, x1.17)" in lab31.growthReading([2.0, 3.0, 3.5])
    assert "not started to shrink" in lab31.growthReading([1.0, 2.0, 4.1])
    assert "not at every step (x0.75)" in lab31.growthReading([2.0, 1.5])
    assert "one size" in lab31.growthReading([2.0])


def test_marginalCosts_read_the_last_two_sizes() -> None:
    small = point(48, 1.10, 0.24, 0.22, (0.12, 0.04, 0.08))
    large = point(96, 2.10, 0.37, 0.32, (0.12, 0.08, 0.16))
    margin = lab31.marginalCosts([small, large])
    assert margin is not None
    assert margin.naiveSeconds == pytest.approx(1.0 / 48)
    assert margin.correctSeconds == pytest.approx(0.13 / 48)
    assert margin.normalizeSeconds == pytest.approx(0.04 / 48)
    assert margin.storeSeconds == pytest.approx(0.08 / 48)
    assert margin.speedup == pytest.approx(1.0 / 0.13)
    assert lab31.marginalCosts([large]) is None
    assert large.outsideSeconds == pytest.approx(0.37 - 0.36)


def test_a_negative_pickling_cost_is_never_printed_it_names_what_is_off() -> None:
    model = 0.0005
    above = lab31.MarginalCosts(0.02, 0.003, 0.0008, 0.002, (0.0006, 0.001))
    assert lab31.ipcReading(above, model) == "+0.30 ms of pickling and IPC per reading through the pool's queues"
    noisy = lab31.MarginalCosts(0.02, 0.003, 0.0002, 0.002, (-0.0001, 0.0007))
    assert lab31.ipcReading(noisy, model) == (
        "less than the model's, but the stage times' spread allows -0.10 to 0.70 ms per reading: the measurement "
        "is off, and no pickling cost can be read from these sizes"
    )
    under = lab31.MarginalCosts(0.02, 0.003, 0.0002, 0.002, (0.0001, 0.0004))
    assert lab31.ipcReading(under, model) == (
        "less than the model's even at its highest (0.40 ms): the model is off, its calibrated normalize cost "
        "overstates what the workers take per reading"
    )


def test_marginalCosts_take_the_range_from_the_stage_samples() -> None:
    small = replace(point(48, 1.10, 0.24, 0.22, (0.12, 0.04, 0.08)), stageSamples=((), (0.03, 0.05), ()))
    large = replace(point(96, 2.10, 0.37, 0.32, (0.12, 0.08, 0.16)), stageSamples=((), (0.07, 0.10), ()))
    margin = lab31.marginalCosts([small, large])
    assert margin is not None
    assert margin.normalizeRange == pytest.approx((0.02 / 48, 0.07 / 48))


def test_a_stage_under_its_ideal_says_whether_the_model_or_the_measurement_is_off() -> None:
    under = replace(point(12, 0.33, 0.20, 0.14, (0.12, 0.004, 0.02)), stageSamples=((), (0.003, 0.004), ()))
    assert under.underIdeal(1) == (
        "the model is off: every repeat beat it, by 20% or more; its calibrated cost overstates what the workers take"
    )
    straddles = replace(under, stageSamples=((), (0.003, 0.006), ()))
    assert straddles.underIdeal(1) == (
        "the measurement is off: its repeats straddle the ideal, so no pickling cost can be read from it"
    )
    assert "normalize 1.0 ms under its ideal (the model is off" in under.gapCause()


def test_targetNote_says_where_the_target_is_reached_or_why_not() -> None:
    low = point(12, 0.33, 0.20, 0.14, (0.12, 0.01, 0.02))
    reached = point(24, 0.59, 0.19, 0.17, (0.12, 0.01, 0.04))
    worse = point(24, 0.59, 0.30, 0.17, (0.12, 0.10, 0.04))
    assert "reached at 24 sensors (89%)" in lab31.targetNote([low, reached])
    assert "not reached up to 24" in lab31.targetNote([low, worse])
    assert "growing with the batch" in lab31.targetNote([low, worse])
    assert "no larger size was tried" in lab31.targetNote([low])


def test_extensionNote_names_each_architecture_below_target() -> None:
    first = BenchRow("tiers", 0.2, 0.8, 0.1, 5)
    later = BenchRow("tiers, 20 requests", 0.2, 1.6, 0.18, 5)
    assert "tiers, 20 requests reaches the target (90%)" in lab31.extensionNote([first, later], [first], [10, 20])
    missed = BenchRow("tiers, 20 requests", 0.4, 1.6, 0.18, 5)
    assert "does not reach it up to 20 requests (45%)" in lab31.extensionNote([first, missed], [first], [10, 20])
    assert "no larger size was tried" in lab31.extensionNote([first], [first], [10])


def test_benchmarks_are_registered() -> None:
    assert [b.key for b in lab31.BENCHMARKS] == ["31.1", "31.4", "31.4s"]


def test_the_lab_registers_every_exercise() -> None:
    assert [entry.number for entry in lab31.LAB.exercises] == [1, 2, 3, 4]
    assert lab31.LAB.exercise(2).study is lab31.study2
