"""Shared pieces of the reader tests: the real unpacked packages that the ``corpus`` tests read."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechsep.data.packages import cache_dir
from speechsep.data.sources import Listing, SpeechSource, get_source


def unpacked(package: str) -> Path | None:
    """The newest ``<cache>/unpacked/<package>_<version>_<arch>/`` folder, or ``None`` when there is none."""
    hits = sorted(p for p in (cache_dir() / "unpacked").glob(f"{package}_*") if p.is_dir())
    return hits[-1] if hits else None


@pytest.fixture
def real_listing():
    """``load(name) -> (source, listing)`` of the real package; skips the test when it is not unpacked.

    The real packages are downloaded by ``speechsep data demo`` (or by hand), never by the tests, so
    on a fresh machine these tests skip rather than fail.
    """

    def load(name: str) -> tuple[SpeechSource, Listing]:
        source = get_source(name)
        package = source.packages[0]
        root = unpacked(package)
        if root is None:
            pytest.skip(f"{package} is not unpacked under {cache_dir() / 'unpacked'}")
        return source, source.list({package: root})

    return load
