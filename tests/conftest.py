"""Shared helpers for the tests: random planes and the optional real-data folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from planessl.geometry import Plane

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$PLANESSL_SHARED_DATA`` or ``<repo>/../shared/data`` (may not exist)."""
    env = os.environ.get("PLANESSL_SHARED_DATA")
    return Path(env) if env else (REPO_ROOT / ".." / "shared" / "data").resolve()


SHARED_DATA = shared_data_dir()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 2] = -q[:, 2]
    return q


def random_plane(rng: np.random.Generator, shape=(64, 80), spacing=None) -> Plane:
    q = random_rotation(rng)
    if spacing is None:
        spacing = (rng.uniform(0.6, 2.0), rng.uniform(0.6, 2.0))
    return Plane(rng.normal(size=3) * 40, q[:, 0], q[:, 1], spacing, shape, 8.0)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def phantom_cache(tmp_path_factory) -> Path:
    """A cache of 10 small phantom subjects (labels, ED/ES, class targets), made once."""
    from planessl.cache import write_cache
    from planessl.phantom import make_study

    root = tmp_path_factory.mktemp("phantom")
    write_cache(root / "cache", [make_study(0, i) for i in range(10)])
    return root / "cache"
