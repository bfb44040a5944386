"""Running an experiment's pretraining runs and cells several at a time, each in a fresh
spawned process with its share of the cores (``planessl experiment --jobs``)."""

from __future__ import annotations

from typing import Any, Callable


def run_parallel(pre_jobs: list, cell_jobs: list, jobs: int, worker: Callable,
                 args_of: Callable[[Any], tuple], finished: Callable[[Any, dict | None, list[str]], None],
                 echo: Callable[[str], None]) -> None:
    """Run the jobs ``jobs`` at a time in spawned processes (one per job): a pretraining as
    soon as a worker is free, a cell once its pretraining is done; the first failure stops
    new work, lets the running jobs finish, then raises.

    A job has ``kind`` (``pretrain`` or ``cell``), ``out``, ``needs`` (the pretraining run a
    cell waits for), ``method`` and ``what``; ``worker(job, *args_of(job), threads)`` runs it
    in the child (a module-level function, so it can be pickled) and returns
    ``(row or None, messages)``, handed to ``finished``."""
    import multiprocessing
    import os
    import sys
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    threads = max(1, (os.cpu_count() or 1) // jobs)
    kwargs = {"max_tasks_per_child": 1} if sys.version_info >= (3, 11) else {}
    queue = list(pre_jobs) + list(cell_jobs)
    pending = {j.out for j in pre_jobs}  # pretraining runs not finished yet
    failure: BaseException | None = None
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                             **kwargs) as pool:
        running: dict = {}
        while queue or running:
            while failure is None and len(running) < jobs:
                ready = next((j for j in queue if j.kind == "pretrain" or j.needs is None
                              or j.needs not in pending), None)
                if ready is None:
                    break
                queue.remove(ready)
                running[pool.submit(worker, ready, *args_of(ready), threads)] = ready
            if not running:
                break
            done_now, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done_now:
                job = running.pop(fut)
                try:
                    row, said = fut.result()
                except Exception as err:  # noqa: BLE001 - reported, then re-raised below
                    log = job.out / "log.txt"
                    echo(f"{job.what or f'pretraining {job.method}'}: failed, see {log}")
                    failure = failure or err
                    continue
                if job.kind == "pretrain":
                    pending.discard(job.out)
                finished(job, row, said)
    if failure is not None:
        raise failure
