"""Suite-wide settings: hypothesis without per-example deadlines, no warning may pass unseen, one Dask run."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from hypothesis import settings

settings.register_profile("course", deadline=None, max_examples=60, print_blob=True)
settings.load_profile("course")

TESTS = Path(__file__).resolve().parent


def _spawnWithoutPytest() -> None:
    """Keep spawn and forkserver workers from re-importing pytest (about 0.5 s per worker here).

    Such a worker first re-runs the parent's main module, named by ``__main__.__spec__``
    or ``__file__``; under pytest that is pytest's entry point, which imports pytest.
    A user's run re-imports the lecture file instead, which the worker imports anyway
    to unpickle the task: without the two attributes the worker behaves the same,
    importing only the modules its tasks come from.
    """
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    entry = spec.name if spec is not None else str(getattr(main, "__file__", ""))
    if "pytest" in entry:
        main.__spec__ = None
        if hasattr(main, "__file__"):
            del main.__file__


_spawnWithoutPytest()


@pytest.fixture(autouse=True)
def failOnAnyWarning() -> Iterator[None]:
    """Record every warning a test raises and fail the test if there was one.

    ``filterwarnings = error`` is not enough: on 3.12+ ``os.fork`` in a process with
    threads warns (DeprecationWarning), but under an "error" filter CPython drops the
    exception, since a fork cannot fail half-way. Recorded with "always", it is seen.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    assert [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught] == []


@dataclass(frozen=True, slots=True)
class DaskChild:
    """The background interpreter running ``daskrun.py``, and the file its stderr goes to."""

    process: subprocess.Popen[str]
    stderr: IO[str]


@pytest.fixture(scope="session", autouse=True)
def daskChild(request: pytest.FixtureRequest) -> Iterator[DaskChild | None]:
    """Start ``daskrun.py`` with the session, so its ~8 s overlap the other tests.

    Only when a test marked ``dask`` is selected and ``distributed`` is installed;
    killed at the end of the session if it is still running.
    """
    wanted = any(item.get_closest_marker("dask") for item in request.session.items)
    if not wanted or importlib.util.find_spec("distributed") is None:
        yield None
        return
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(TESTS / "daskrun.py")], stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        try:
            yield DaskChild(process, stderr)
        finally:
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=30)


@pytest.fixture(scope="session")
def daskResults(daskChild: DaskChild | None) -> dict[str, Any]:
    """What ``daskrun.py`` printed, once it has finished; skips when Dask is not installed."""
    if daskChild is None:
        pytest.skip("the optional package 'distributed' is not installed")
    stdout, _ = daskChild.process.communicate(timeout=120)
    daskChild.stderr.seek(0)
    assert daskChild.process.returncode == 0, daskChild.stderr.read()[-2000:]
    found: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return found
