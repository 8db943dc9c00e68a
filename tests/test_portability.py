"""Portability promises: copy one file and run it bare; Ctrl-C stops cleanly, leaving no process behind."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared import Exercise

ROOT = Path(__file__).resolve().parent.parent
LECTURES = ("l29", "l31", "l36", "l37")
# -S: no site module, so no third-party package is importable; -E -s: no PYTHON* variables, no
# user site. Not -I: it would also drop the script's own folder from sys.path, and with it shared.py.
BARE = (sys.executable, "-S", "-E", "-s")


def exercisesOf(name: str) -> tuple[Exercise, ...]:
    module = importlib.import_module(name)
    exercises: tuple[Exercise, ...] = module.EXERCISES
    return exercises


@pytest.fixture(scope="module")
def mypyCache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mypy-cache")


def copied(tmp_path: Path, *names: str) -> Path:
    for name in names:
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def run(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def runTogether(commands: dict[str, list[str]], cwd: Path, timeout: float = 120) -> dict[str, tuple[int, str, str]]:
    """Run the commands at the same time (most exercises mostly wait); (status, stdout, stderr) by name.

    Output goes to files, not pipes, so no child ever stalls on a full pipe while another is read.
    """
    running: dict[str, tuple[subprocess.Popen[bytes], Path, Path]] = {}
    for name, args in commands.items():
        out, err = cwd / f"{name}.out", cwd / f"{name}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            running[name] = (subprocess.Popen(args, cwd=cwd, stdout=stdout, stderr=stderr), out, err)
    results: dict[str, tuple[int, str, str]] = {}
    try:
        for name, (process, out, err) in running.items():
            status = process.wait(timeout=timeout)
            results[name] = (status, out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8"))
    finally:
        for process, _, _ in running.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    return results


# mypy --strict on a copied pair would repeat the project's own check (invoke check runs it
# on every file): a lecture file imports the standard library and shared.py only
# (tests/test_structure.py), so what mypy finds in it does not depend on where it lies.


@pytest.mark.parametrize("name", LECTURES)
def test_a_lecture_file_with_shared_runs_alone(name: str, tmp_path: Path) -> None:
    folder = copied(tmp_path, f"{name}.py", "shared.py")
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"{name}.py", "shared.py"])
    commands = {f"ex{e.number}": [*BARE, f"{name}.py", "--ex", str(e.number), "--quick"] for e in exercisesOf(name)}
    for label, (status, stdout, stderr) in runTogether(commands, folder).items():
        assert status == 0, f"{name} {label}: {stderr[-2000:]}"
        assert "Traceback" not in stderr
        assert "the lecture says" not in stdout  # the report alone: verdicts are the lab's
        assert [line for line in stdout.splitlines() if len(line) > 100] == []


def test_shared_alone_imports_bare_without_any_optional_package(tmp_path: Path) -> None:
    folder = copied(tmp_path, "shared.py")
    imported = run(
        [*BARE, "-c", "import shared, sys; print(sorted(m for m in sys.modules if m == 'distributed'))"], folder
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "[]"
