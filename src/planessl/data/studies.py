"""Lazily opened studies for Datasets: a bounded, per-process set of memory-mapped studies."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from planessl.cache import Cache
from planessl.study import Study


class OpenStudies:
    """Lazily opened, memory-mapped studies of a cache for a Dataset, at most
    :attr:`max_open` at a time (each open study holds its arrays' file mappings), reopened
    in each worker process (the cache handle is not pickled)."""

    cache_path: Path
    max_open: int = 32

    def _study(self, sid: str) -> Study:
        opened = self.__dict__.setdefault("_studies", OrderedDict())
        if self.__dict__.get("_cache") is None:
            self._cache = Cache(self.cache_path)
        if sid in opened:
            opened.move_to_end(sid)
        else:
            opened[sid] = self._cache.load(sid)
            while len(opened) > self.max_open:
                opened.popitem(last=False)
        return opened[sid]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_cache"], state["_studies"] = None, OrderedDict()
        return state
