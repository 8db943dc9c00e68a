"""The instructor's lab: judges each lecture's claims, runs the extra studies and the benchmarks.

    lNN.py  --result record (facts)-->  lab.lectureNN  --Claim rows-->  lab.verify / invoke run
                                            |
                                            +-- studies (sweeps, load runs)    invoke verify only
                                            +-- BENCHMARKS --BenchReport-->     invoke bench

The arrows point one way: the lab imports the lecture modules and ``shared``; a
lecture module never imports the lab, so it can be copied out on its own.

- ``lab.claims``: ``Claim``, ``Verdict``, ``judge``, ``formatClaims``;
- ``lab.bench``: repeats, interleaved timers, ``BenchRow``, ``BenchReport``, the bridge benchmark;
- ``lab.registry``: ``ExerciseLab``, ``LectureLab``, ``labFor``, ``claimsFor``;
- ``lab.verify``: what ``invoke verify`` runs and prints;
- ``lab.lecture29`` ... ``lab.lecture37``: one lecture's claims, studies and benchmarks.
"""
