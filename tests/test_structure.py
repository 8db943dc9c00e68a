"""The layout DESIGN.md fixes, checked with ast: the dependency rule and the lecture files' budgets.

A lecture file is a teaching file a student reads beside the lecture and an engineer
copies with shared.py: standard library only, the spec's code near each banner,
small functions, a short public surface.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LECTURES = ["l29", "l31", "l36", "l37"]
STANDARD = set(sys.stdlib_module_names) | {"__future__"}

# The names each exercise's spec gives; one of them must be defined within 40 lines of the banner.
SPEC_NAMES = {
    "l29": [
        {"analyzeRequest", "handleRequest"},
        {"transformRecord", "produceRecords", "consumeRecords"},
        {"fetchDataFromLegacySystem", "runAnalysis", "processDataItem"},
        {"riskyComputation", "safeHandleTask"},
    ],
    "l31": [
        {"parseCsvChunk", "fetchMetadataBlocking", "handleRequest"},
        {"queryShard", "LatencyTracker", "fanOutWithAdaptiveTimeout"},
        {"AsyncCircuitBreaker", "CircuitOpenError", "FlakyAsyncService"},
        {"fetchSensorReading", "normalizeReading", "storeReading", "aggregateResults"},
    ],
    "l36": [
        {"AsyncIngestionLayer", "AsyncSensorSource", "BatchAssembler", "ProcessPoolComputeLayer", "computeBatch"},
        {"ThroughputMonitor", "AdaptiveBatchProcessor", "computeLightBatch", "computeHeavyBatch"},
        {"PriorityBatchQueue", "classify", "PriorityPoolProcessor", "computePriorityBatch"},
        {"FaultTolerantBatchProcessor", "DeadLetterLog"},
    ],
    "l37": [
        {"detectAnomalies", "detectAnomaliesFast"},
        {"measuredStage", "ThresholdFilter", "WindowNormalizer", "MovingAvgTransform"},
        {"EventDict", "EventSlots", "EventNamedTuple", "EventDataclass"},
        {"PipelineMeasurementContext"},
    ],
}


def parsed(name: str) -> tuple[list[str], ast.Module]:
    text = (ROOT / name).read_text(encoding="utf-8")
    return text.splitlines(), ast.parse(text)


def importedModules(tree: ast.Module) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return found


@pytest.mark.parametrize("name", [*LECTURES, "shared"])
def test_lectures_and_shared_import_the_standard_library_and_shared_only(name: str) -> None:
    _, tree = parsed(f"{name}.py")
    allowed = STANDARD | ({"shared"} if name != "shared" else set())
    assert [m for m in importedModules(tree) if m.split(".")[0] not in allowed] == []


def sections(lines: list[str]) -> list[tuple[int, int]]:
    """(first, last) line numbers, 1-based, of each ``# Exercise N - title`` section, to the next banner."""
    titles = [
        i + 1 for i in range(1, len(lines) - 1) if lines[i - 1].startswith("# ===") and lines[i + 1].startswith("# ===")
    ]
    starts = [n for n in titles if re.match(r"# Exercise \d+ - ", lines[n - 1])]
    ends = [n - 1 for n in titles]  # the section ends at the next banner (its rule line)
    return [(start, min([end for end in ends if end > start] + [len(lines)]) - 1) for start in starts]


def definitions(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [node for node in ast.walk(tree) if isinstance(node, kinds)]


@pytest.mark.parametrize("name", LECTURES)
def test_a_lecture_file_keeps_its_budgets(name: str) -> None:
    lines, tree = parsed(f"{name}.py")
    assert len(lines) <= 1800
    found = sections(lines)
    assert len(found) == 4
    assert [last - first + 1 for first, last in found if last - first + 1 > 550] == []
    functions = [n for n in definitions(tree) if not isinstance(n, ast.ClassDef)]
    sizes = {n.name: (n.end_lineno or n.lineno) - n.lineno + 1 for n in functions}
    long = [f"{function} {size}" for function, size in sizes.items() if size > 80]
    assert long == []
    exported = next(n for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "__all__")
    names = ast.literal_eval(exported.value)
    assert len(names) <= 60
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
    defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    assert set(names) <= defined


@pytest.mark.parametrize("name", LECTURES)
def test_the_spec_code_comes_first_in_each_section(name: str) -> None:
    lines, tree = parsed(f"{name}.py")
    starts = {n.name: n.lineno for n in definitions(tree)}
    for (first, _), specNames in zip(sections(lines), SPEC_NAMES[name], strict=True):
        nearest = min(starts[spec] for spec in specNames if spec in starts)
        assert nearest - first <= 40, f"{name} line {first}: first spec name at +{nearest - first}"


def test_shared_stays_small_and_holds_no_claims_or_benchmarks() -> None:
    lines, tree = parsed("shared.py")
    assert len(lines) <= 1000
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    assert names & {"Claim", "Verdict", "judge", "BenchRow", "BenchReport", "interleavedRepeats"} == set()
