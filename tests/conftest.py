"""Shared test helpers: where the optional real data lives."""

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("PLANESSL_SHARED_DATA",
                                  Path(__file__).resolve().parents[1] / "../shared/data"))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def phantom_cache(tmp_path_factory) -> Path:
    """A cache of 10 small phantom subjects (labels, ED/ES, class targets), made once."""
    from planessl.cache import write_cache
    from planessl.phantom import make_study

    root = tmp_path_factory.mktemp("phantom")
    write_cache(root / "cache", [make_study(0, i) for i in range(10)])
    return root / "cache"
