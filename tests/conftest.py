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
