"""Suite-wide settings: hypothesis without per-example deadlines, and no warning may pass unseen."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from hypothesis import settings

settings.register_profile("course", deadline=None, max_examples=60, print_blob=True)
settings.load_profile("course")


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
