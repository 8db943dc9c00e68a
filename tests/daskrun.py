"""Every Dask check of the suite, in one child interpreter on one local cluster; prints one JSON line.

Why a child: a Dask client leaves threads behind (its offload pool, its profiler),
and on 3.12+ any later fork in the test process would warn about forking a
multi-threaded process, which the suite treats as an error. Why one: importing
``distributed`` and starting a cluster cost seconds each; the suite pays them once,
in the background (see ``conftest.daskResults``), and each test compares its part
with the same seeded run on a process pool.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import l29
import l31
import l36
from lab import lecture36 as lab36
from shared import daskSchedulerAddress, executorScope

L29_CONFIG = l29.Exercise1Config(requests=4, valuesPerRequest=500, workers=1)
L29_SEED = 5
L31_CONFIG = l31.Exercise1Config(requests=3, recordsPerRequest=4, threadWorkers=3, processWorkers=1, timeScale=0.02)
L31_SEED = 4
L36_SEED = 11


def l36Records() -> tuple[l36.FaultRecord, ...]:
    """Exercise 4's records with poison and glitches."""
    return l36.makeFaultRecords(60, seed=L36_SEED, poisonRate=0.1, glitchRate=0.05)


def l36Killers() -> frozenset[int]:
    """The one fatal record among them (the lab injects it through computeFn)."""
    return lab36.chooseKillers(60, L36_SEED, 1)


def runLectures() -> dict[str, object]:
    """One exercise of each lecture with a CPU tier, on the configured scheduler."""
    ex29 = l29.runExercise1(L29_CONFIG, seed=L29_SEED, executor="dask")
    ex31 = l31.runExercise1(L31_CONFIG, seed=L31_SEED, executor="dask")
    # No crashes; the fatal record raises BrokenProcessPool on Dask instead of ending the worker,
    # and its batch goes to the recovery pool (a second client) where it dies again.
    killer = functools.partial(lab36.killerCompute, killers=l36Killers(), abrupt=False)
    processor = l36.FaultTolerantBatchProcessor(
        seed=L36_SEED, crashRate=0.0, computeFn=killer, batchSize=10, executor="dask", workers=1
    )
    report = processor.process(l36Records())
    replay = processor.deadLetterLog.replay(killer)
    outcomes: dict[int, str] = {l36.entryRecordId(e): e["status"] for e in report.results}
    outcomes.update({d.record.recordId: "DEAD" for d in report.deadLetters})
    outcomes.update({l36.entryRecordId(e): e["status"] for e in replay.recovered})
    return {
        "l29": {"rows": [[r.requestId, r.riskScore, r.highRisk] for r in ex29.rows], "matches": ex29.matchesSequential},
        "l31": {"results": list(ex31.results), "matches": ex31.matchesSequential},
        "l36": {
            "outcomes": sorted(outcomes.items()),
            "killerBatches": list(report.killerBatches),
            "attempts": [d.failure.attempts for d in report.deadLetters],
        },
    }


def main() -> None:
    """The factory's own local cluster first, then an existing scheduler (``--address``) for the lectures."""
    found: dict[str, object] = {}
    with executorScope("dask", 1) as executor:
        found["protocol"] = [executor.submit(pow, n, 2).result(timeout=60) for n in range(5)]
    distributed = importlib.import_module("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0", host="127.0.0.1"
    ) as cluster:
        daskSchedulerAddress(cluster.scheduler_address)
        found.update(runLectures())
    print(json.dumps(found))


if __name__ == "__main__":
    main()
