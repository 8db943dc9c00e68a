"""The lab of lecture 36: judges fed results that hold and that fail, the studies, the benchmarks' logic."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace

import pytest

import l36
from lab import lecture36 as lab36
from lab.bench import BenchOptions, BenchReport
from lab.claims import Claim, ClaimKind, Verdict, formatClaims
from shared import RunOptions, SensorReading, silent

SMALL1 = l36.Exercise1Config(workers=2, durationSec=0.25, intervalSec=0.02)
SMALL3 = l36.Exercise3Config(durationSec=0.05, intervalSec=0.005, pollSec=0.01)
INLINE_QUICK = RunOptions(seed=3, quick=True, executor="inline")


def structuralHold(claims: Sequence[Claim]) -> bool:
    return all(claim.verdict is Verdict.HOLDS for claim in claims if claim.kind is ClaimKind.STRUCTURAL)


def verdictOf(claims: Sequence[Claim], words: str) -> Verdict:
    [claim] = [claim for claim in claims if words in claim.statement]
    return claim.verdict


# ============================================================================
# Exercise 1
# ============================================================================


@pytest.fixture(scope="module")
def inline1() -> l36.Exercise1Result:
    return l36.runExercise1(SMALL1, RunOptions(seed=3, executor="inline"))


def test_judge1_holds_on_a_run_and_fails_on_figures_that_break_it(inline1: l36.Exercise1Result) -> None:
    main = inline1.main
    assert structuralHold(lab36.judge1(inline1))
    assert verdictOf(lab36.judge1(inline1), "maxsize=50 bounds") is Verdict.HOLDS
    overfull = replace(main, ingestion=replace(main.ingestion, maxDepth=SMALL1.queueMaxsize + 1))
    assert verdictOf(lab36.judge1(replace(inline1, main=overfull)), "maxsize=50 bounds") is Verdict.FAILS
    lost = replace(main, received=main.received - 1)
    assert verdictOf(lab36.judge1(replace(inline1, main=lost)), "nothing lost") is Verdict.FAILS
    unsummarized = replace(main, summaries=main.summaries + 1)
    assert verdictOf(lab36.judge1(replace(inline1, main=unsummarized)), "summary every 100") is Verdict.FAILS


def test_load_claims_follow_the_figures(inline1: l36.Exercise1Result) -> None:
    main = inline1.main
    throttled = replace(main, ingestion=replace(main.ingestion, blockedPuts=7))
    flat = lab36.LoadStudy(lab36.MemoryRun(5, 1_000, throttled), lab36.MemoryRun(20, 1_090, throttled), 100.0)
    assert verdictOf(lab36.loadClaims(SMALL1, flat), "peak memory") is Verdict.HOLDS
    assert verdictOf(lab36.loadClaims(SMALL1, flat), "throttled") is Verdict.HOLDS
    assert verdictOf(lab36.loadClaims(SMALL1, flat), "under load too") is Verdict.HOLDS
    unthrottled = replace(main, ingestion=replace(main.ingestion, blockedPuts=0))
    growing = replace(flat, long=lab36.MemoryRun(20, 2_000, unthrottled))
    assert verdictOf(lab36.loadClaims(SMALL1, growing), "peak memory") is Verdict.FAILS
    assert verdictOf(lab36.loadClaims(SMALL1, growing), "throttled") is Verdict.FAILS
    overfull = replace(main, ingestion=replace(main.ingestion, maxDepth=51))
    spilled = replace(flat, short=lab36.MemoryRun(5, 1_000, overfull))
    assert verdictOf(lab36.loadClaims(SMALL1, spilled), "under load too") is Verdict.FAILS


def test_load_study_throttles_fast_sources_on_a_process_pool() -> None:
    options = RunOptions(seed=4, quick=True, startMethod="fork")
    study = lab36.runLoadStudy(replace(SMALL1, workers=2), options, silent)
    for run in (study.short, study.long):
        assert run.report.nothingLost
        assert run.report.ingestion.maxDepth <= SMALL1.queueMaxsize
        assert run.report.ingestion.blockedPuts > 0
        assert run.peakBytes > 0
    assert structuralHold(lab36.loadClaims(SMALL1, study))
    assert study.faulty is not None
    assert [f.source for f in study.faulty.ingestion.failures] == ["sensor-4"]
    assert lab36.isolationClaim(study.faulty, "faulty").verdict is Verdict.HOLDS
    sources = study.faulty.ingestion.sources
    stopped = replace(sources[0], lastAtSec=0.0)
    ingestion = replace(study.faulty.ingestion, sources=(stopped, *sources[1:]))
    halted = replace(study.faulty, ingestion=ingestion)
    assert lab36.isolationClaim(halted, "faulty").verdict is Verdict.FAILS
    rows = tuple(replace(row, failed=False) for row in sources)
    healthy = replace(halted, ingestion=replace(ingestion, sources=rows, failures=()))
    assert lab36.isolationClaim(healthy, "healthy").verdict is Verdict.NOT_MEASURED


# ============================================================================
# Exercise 2
# ============================================================================


@pytest.fixture(scope="module")
def inline2() -> l36.Exercise2Result:
    return l36.runExercise2(l36.Exercise2Config(records=400), RunOptions(seed=2, executor="inline"))


def test_judge2_holds_and_fails_on_broken_figures(inline2: l36.Exercise2Result) -> None:
    claims = lab36.judge2(inline2)
    assert structuralHold(claims)
    light, heavy = inline2.light, inline2.heavy
    larger = replace(inline2, heavy=replace(heavy, exploring=replace(heavy.exploring, finalSize=20)))
    assert verdictOf(lab36.judge2(larger), "light converges to a larger batch size") is Verdict.HOLDS
    flat = replace(larger, heavy=replace(heavy, exploring=replace(heavy.exploring, finalSize=200)))
    flat = replace(flat, light=replace(light, exploring=replace(light.exploring, finalSize=200)))
    assert verdictOf(lab36.judge2(flat), "light converges to a larger batch size") is Verdict.FAILS
    batches = light.literal.batches
    outside = replace(light.literal, batches=(replace(batches[0], planned=201), *batches[1:]))
    assert verdictOf(lab36.judge2(replace(inline2, light=replace(light, literal=outside))), "clamped") is (
        Verdict.FAILS
    )
    wrong = replace(light.exploring, outputsMatch=False)
    assert verdictOf(lab36.judge2(replace(inline2, light=replace(light, exploring=wrong))), "does not change") is (
        Verdict.FAILS
    )


def withTimes(
    workload: lab36.WorkloadResult, static: dict[int, float], adaptive: float, final: int
) -> lab36.WorkloadResult:
    points = tuple(lab36.StaticPoint(size, seconds, workload.adaptive.records) for size, seconds in static.items())
    return replace(workload, static=points, adaptive=replace(workload.adaptive, seconds=adaptive, finalSize=final))


@pytest.fixture(scope="module")
def sweep() -> lab36.SweepResult:
    config = l36.Exercise2Config(records=200)
    return lab36.runSweep(config, lab36.SweepConfig(staticSizes=(10, 100), repeats=1), INLINE_QUICK, silent)


def test_sweep_claims_follow_the_figures(sweep: lab36.SweepResult) -> None:
    assert structuralHold(lab36.sweepClaims(sweep))
    assert [point.size for point in sweep.light.static] == [10, 100]
    expected = replace(
        sweep,
        light=withTimes(sweep.light, {10: 1.0, 100: 0.5}, 0.52, 200),
        heavy=withTimes(sweep.heavy, {10: 1.0, 100: 0.8}, 1.2, 20),
    )
    claims = lab36.sweepClaims(expected)
    assert verdictOf(claims, "adaptive computeLightBatch >= 90%") is Verdict.HOLDS
    assert verdictOf(claims, "adaptive computeHeavyBatch >= 90%") is Verdict.FAILS
    [heavyClaim] = [c for c in claims if "computeHeavyBatch >= 90%" in c.statement]
    assert "settled on 20 where static 100 was best" in heavyClaim.reason
    broken = replace(expected, light=replace(expected.light, staticOutputsMatch=False))
    assert verdictOf(lab36.sweepClaims(broken), "static batch sizes") is Verdict.FAILS


def test_shortfall_names_the_noise_only_when_the_passes_spread_as_much_as_the_gap(
    sweep: lab36.SweepResult,
) -> None:
    short = withTimes(sweep.light, {10: 1.0, 100: 0.5}, 0.6, 100)  # 83% of the best static size
    steady = replace(short, adaptiveSeconds=(0.6, 0.61, 0.62))
    noisy = replace(short, adaptiveSeconds=(0.5, 0.6, 0.7))
    assert lab36.shortfall(steady).startswith("the climb from 10 and the probes cost")
    assert "noise" not in lab36.shortfall(steady)
    assert lab36.shortfall(noisy).endswith(
        "passes themselves spread 40%, as much as the 17% gap: noise of this machine"
    )


# ============================================================================
# Exercise 3
# ============================================================================


def latency(p95Ms: float) -> tuple[float, ...]:
    return (p95Ms,) * 10


def test_judge3_and_the_overload_claims_follow_the_figures() -> None:
    result = l36.runExercise3(SMALL3, RunOptions(seed=5, executor="inline"))
    assert structuralHold(lab36.judge3(result))
    misclassified = replace(
        result.main.results[0], priority="NORMAL" if result.main.results[0].priority == "CRITICAL" else "CRITICAL"
    )
    wrong = replace(result, main=replace(result.main, results=(misclassified, *result.main.results[1:])))
    assert verdictOf(lab36.judge3(wrong), "CRITICAL = value > 85") is Verdict.FAILS
    leftOver = replace(result, main=replace(result.main, produced=result.main.produced + 1))
    assert verdictOf(lab36.judge3(leftOver), "every record produced is processed") is Verdict.FAILS
    mix = replace(result, main=replace(result.main, produced=100, producedCritical=21))
    assert verdictOf(lab36.judge3(mix), "80% NORMAL") is Verdict.HOLDS
    skewed = replace(result, main=replace(result.main, produced=100, producedCritical=40))
    assert verdictOf(lab36.judge3(skewed), "80% NORMAL") is Verdict.FAILS
    study = lab36.runPriorityStudy(SMALL3, replace(INLINE_QUICK, seed=5), silent)
    assert study.spec.run.produced > 0
    assert structuralHold(lab36.orderClaims(study.spec))
    jumped = replace(study.spec, violations=1)
    assert verdictOf(lab36.orderClaims(jumped), "always processed before NORMAL") is Verdict.FAILS
    assert verdictOf(lab36.orderClaims(replace(study.spec, fifo=False)), "FIFO") is Verdict.FAILS
    assert structuralHold(lab36.overloadClaims(study))
    starved = replace(
        study,
        coupled=replace(
            study.coupled,
            run=replace(study.coupled.run, criticalLatencyMs=latency(2.0), normalLatencyMs=latency(9.0)),
        ),
        split=replace(study.split, whileProducing=(99, 1)),
    )
    assert verdictOf(lab36.overloadClaims(starved), "can starve NORMAL") is Verdict.HOLDS
    fair = replace(starved, split=replace(starved.split, whileProducing=(50, 50)))
    assert verdictOf(lab36.overloadClaims(fair), "can starve NORMAL") is Verdict.FAILS
    lost = replace(
        study, split=replace(study.split, run=replace(study.split.run, produced=study.split.run.produced + 1))
    )
    assert verdictOf(lab36.overloadClaims(lost), "under overload too") is Verdict.FAILS


class NormalFirst(l36.PriorityBatchQueue):
    """A queue that gets priority wrong: NORMAL records first."""

    async def get_batch(self, batchSize: int, *, timeoutSec: float = 1.0) -> list[SensorReading]:  # noqa: ARG002 - the spec's signature
        batch = [self.normalQueue.get_nowait() for _ in range(min(batchSize, self.normalQueue.qsize()))]
        room = batchSize - len(batch)
        return batch + [self.criticalQueue.get_nowait() for _ in range(min(room, self.criticalQueue.qsize()))]


class WatchedNormalFirst(lab36.DispatchProbe, NormalFirst):
    """The probe around the wrong queue."""


@pytest.mark.parametrize(("queueClass", "violations"), [(lab36.DispatchProbe, 0), (WatchedNormalFirst, 2)])
def test_the_probe_counts_batches_that_break_priority(queueClass: type[lab36.DispatchProbe], violations: int) -> None:
    async def scenario() -> lab36.DispatchProbe:
        probe = queueClass(maxsize=10)
        for seq, value in enumerate([50.0, 90.0, 40.0, 5.0]):
            record = SensorReading(0, seq, value, 0.0)
            await probe.put(record, l36.classify(record))
        await probe.get_batch(3)
        await probe.get_batch(3)
        return probe

    probe = asyncio.run(scenario())
    assert probe.violations == violations
    assert probe.order == {"CRITICAL": [1, 3], "NORMAL": [0, 2]}
    assert [len(classes) for _, classes in probe.dispatches] == [3, 1]


# ============================================================================
# Exercise 4
# ============================================================================


@pytest.fixture(scope="module")
def inline4() -> l36.Exercise4Result:
    # Seed 5: batches 2, 3 and 8 crash; 8 crashes again on the recovery pool, then comes back on the replay.
    return l36.runExercise4(l36.Exercise4Config(records=200, crashRate=0.3), RunOptions(seed=5, executor="inline"))


def test_judge4_holds_and_fails_on_figures_that_break_it(inline4: l36.Exercise4Result) -> None:
    assert structuralHold(lab36.judge4(inline4))
    report = inline4.report
    assert (report.crashedBatches, report.recovery) == ((2, 3, 8), (2, 1, 0, 0))
    assert report.deadLetters
    assert lab36.addsUp(report)
    assert lab36.finalAddsUp(inline4)
    lost = replace(inline4, report=replace(report, results=report.results[1:]))
    assert verdictOf(lab36.judge4(lost), "exactly one outcome") is Verdict.FAILS
    letter = report.deadLetters[0]
    blank = replace(letter, failure=replace(letter.failure, attempts=0))
    noAttempts = replace(inline4, report=replace(report, deadLetters=(blank, *report.deadLetters[1:])))
    assert verdictOf(lab36.judge4(noAttempts), "dead letters keep") is Verdict.FAILS
    unrecovered = replace(inline4, report=replace(report, crashedBatches=(*report.crashedBatches, 999)))
    assert verdictOf(lab36.judge4(unrecovered), "recovery pool") is Verdict.FAILS
    skipped = replace(inline4, replay=replace(inline4.replay, attempted=inline4.replay.attempted + 1))
    assert verdictOf(lab36.judge4(skipped), "replay(computeFn)") is Verdict.FAILS


def test_the_studies_name_every_outcome_of_the_crashed_batches(inline4: l36.Exercise4Result) -> None:
    options = replace(INLINE_QUICK, seed=5)
    stressed, killers, killed = lab36.study4(options, inline4, silent)
    assert stressed.verdict is Verdict.HOLDS
    assert killers.verdict is Verdict.HOLDS
    assert killed.verdict is Verdict.NOT_MEASURED  # an inline executor has no worker process to kill
    report = l36.runExercise4(
        replace(inline4.config, crashRate=lab36.STRESS_CRASH_RATE), RunOptions(seed=5, executor="inline")
    ).report
    assert stressed.measured.startswith(
        f"{lab36.sentToRecovery(report)} crashed = {report.ended('recovered')} recovered + "
        f"{report.ended('crashed again')} crashed again + {report.ended('killed the recovery worker')} killed the "
        "recovery worker"
    )


def test_a_fatal_record_is_dead_lettered_and_stays_dead_after_the_replay(inline4: l36.Exercise4Result) -> None:
    study = lab36.runWithKillers(inline4, replace(INLINE_QUICK, seed=5), silent, killers=2)
    run, killers = study.run, study.killers
    assert len(killers) == 2
    assert set(run.report.killerBatches) <= {k // 20 for k in killers}
    assert killers <= {letter.record.recordId for letter in run.replay.stillDead}
    assert lab36.killerClaim(study).verdict is Verdict.HOLDS
    revived = replace(run, replay=replace(run.replay, stillDead=()))
    assert lab36.killerClaim(replace(study, run=revived)).verdict is Verdict.FAILS
    fatal = l36.ComputeJob(0, "main", run.records[0:1], 5, 0.0)
    with pytest.raises(BrokenProcessPool, match=r"^a simulated worker death \(exit code 70\)$"):
        lab36.killerCompute(fatal, killers=frozenset({0}), abrupt=True)  # in this process: raises, never exits


def withLost(run: l36.Exercise4Result, lost: tuple[int, ...]) -> l36.Exercise4Result:
    """``run`` as if a kill from outside had cost batches ``lost``, all recovered."""
    names = ", ".join(map(str, lost))
    recovery = (run.report.recovery[0] + len(lost), *run.report.recovery[1:])
    death = f"SIGKILL (from outside) in the main run: batches {names} re-run on the recovery pool"
    return replace(run, report=replace(run.report, lostBatches=lost, recovery=recovery, deaths=(death,)))


def test_reportCountsAddUp_checks_every_sum_of_the_printed_report(inline4: l36.Exercise4Result) -> None:
    text = l36.formatExercise4(inline4)
    assert lab36.reportCountsAddUp(text)
    killed = withLost(inline4, (1, 2))
    assert lab36.reportCountsAddUp(l36.formatExercise4(killed))
    uncounted = replace(killed, report=replace(killed.report, deaths=()))
    assert not lab36.reportCountsAddUp(l36.formatExercise4(uncounted))
    recovery = (inline4.report.recovery[0] + 1, *inline4.report.recovery[1:])
    unrecovered = replace(inline4, report=replace(inline4.report, recovery=recovery))
    assert not lab36.reportCountsAddUp(l36.formatExercise4(unrecovered))
    total = inline4.report.total
    assert not lab36.reportCountsAddUp(text.replace(f"Records: {total:,} = ", f"Records: {total + 1:,} = "))
    assert not lab36.reportCountsAddUp(text.replace(f"total records                  {total}", "total records  1"))
    assert not lab36.reportCountsAddUp(text.replace(" again on the recovery pool.", "."))
    assert not lab36.reportCountsAddUp("")


def test_the_kill_claim_follows_the_figures(inline4: l36.Exercise4Result) -> None:
    killed = withLost(inline4, (3,))
    assert lab36.killClaim(inline4, killed).verdict is Verdict.HOLDS
    uncounted = replace(killed, report=replace(killed.report, deaths=()))
    assert lab36.killClaim(inline4, uncounted).verdict is Verdict.FAILS
    dropped = replace(killed, report=replace(killed.report, results=killed.report.results[1:]))
    assert lab36.killClaim(inline4, dropped).verdict is Verdict.FAILS
    assert lab36.killClaim(inline4, None).verdict is Verdict.NOT_MEASURED


@pytest.mark.timeout(30)
def test_runKilled_survives_a_kill_in_the_main_run_and_on_the_recovery_pool(inline4: l36.Exercise4Result) -> None:
    options = RunOptions(seed=5, quick=True, startMethod="fork")
    main = lab36.runKilled(inline4, options, silent)
    assert lab36.killClaim(inline4, main).verdict is Verdict.HOLDS
    assert 5 in main.report.lostBatches  # the middle batch of 10
    recovery = lab36.runKilled(inline4, options, silent, stage="recovery")
    assert recovery.report.ended("broken from outside") == 1
    assert recovery.report.deaths == ("SIGKILL (from outside) on the recovery pool: batch 2 dead-lettered",)
    assert lab36.addsUp(recovery.report)
    assert lab36.finalAddsUp(recovery)
    assert lab36.reportCountsAddUp(l36.formatExercise4(recovery))


def test_claims_tables_fit_100_columns(inline1: l36.Exercise1Result, inline4: l36.Exercise4Result) -> None:
    claims = [*lab36.judge1(inline1), *lab36.judge4(inline4)]
    assert max(len(line) for line in formatClaims(claims).splitlines()) <= 100


# ============================================================================
# Benchmarks: the logic, not the clock (tiny sizes, one repeat)
# ============================================================================

TINY_BENCH = BenchOptions(seed=3, repeats=1, startMethod="fork")


def checkRows(report: BenchReport, labels: list[str]) -> None:
    assert [row.label for row in report.rows] == labels
    assert all(row.medianSeconds > 0 and row.baselineSeconds > 0 and row.idealSeconds > 0 for row in report.rows)
    assert all(row.repeats >= 1 for row in report.rows)
    assert report.notes
    assert all(len(line) <= 100 for note in report.notes for line in note.splitlines())


def test_benchPipeline_rows_and_bounds() -> None:
    config = replace(SMALL1, durationSec=0.05)
    report = lab36.benchPipeline(TINY_BENCH, silent, config=config, seconds=0.03)
    checkRows(
        report,
        [
            "spec rate, inline (0.05 s run)",
            "spec rate, process x2 (0.05 s run)",
            *(
                f"full speed, {label} (per 10k)"
                for label in (
                    "inline, batch 15",
                    "inline, batch 200",
                    "thread x2, batch 15",
                    "process x2, batch 15",
                    "process x2, batch 200",
                )
            ),
        ],
    )
    assert report.judged
    for row in report.rows:
        assert row.idealSeconds <= row.baselineSeconds
        if row.label.startswith("spec rate"):
            assert row.idealSeconds == config.durationSec <= row.medianSeconds
        if "process" in row.label and "full speed" in row.label:
            assert row.idealSeconds < row.baselineSeconds
    assert any("arrive" in note for note in report.notes)


def test_benchAdaptive_rows_per_static_size_plus_adaptive() -> None:
    config = l36.Exercise2Config(records=300)
    report = lab36.benchAdaptive(TINY_BENCH, silent, config=config, staticSizes=(10, 50))
    labels = [row.label for row in report.rows]
    assert labels[:2] == ["light static 10", "light static 50"]
    assert labels[2].startswith("light adaptive -> ")
    assert labels[3:5] == ["heavy static 10", "heavy static 50"]
    assert labels[5].startswith("heavy adaptive -> ")
    assert not report.judged
    for row in report.rows:
        assert row.medianSeconds > 0
        assert row.idealSeconds <= row.baselineSeconds
    assert any("per batch" in note for note in report.notes)


def test_benchFaultTolerance_prices_the_faults_in_pool_start_ups() -> None:
    config = l36.Exercise4Config(records=200, crashRate=0.3)
    report = lab36.benchFaultTolerance(TINY_BENCH, silent, config=config)
    checkRows(report, ["plain pool map x2", "fault-tolerant, no faults", "fault-tolerant, spec faults"])
    assert not report.judged
    assert report.rows[0].efficiency == 1.0
    crashed = sum(l36.crashDecision(TINY_BENCH.seed, batchId, "main", 0.3) for batchId in range(10))
    assert crashed > 0
    assert any(
        note.startswith(f"Spec faults ({crashed} crashed batch")
        and "1 extra pool start-up (0 replacements, 1 recovery" in " ".join(note.split())
        for note in report.notes
    )


def test_benchmarks_are_registered() -> None:
    assert [b.key for b in lab36.BENCHMARKS] == ["36.1", "36.2", "36.4"]
