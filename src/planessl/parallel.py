"""Worker processes for the parallel steps of ingest (header scan, study loading)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool of ``workers`` processes, forked where the platform can (the workers
    then share the parent's imported modules instead of importing them again)."""
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
