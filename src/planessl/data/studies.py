"""Lazily opened studies for Datasets: a bounded, per-process set of memory-mapped studies."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from planessl.cache import Cache
from planessl.study import Study


class OpenStudies:
    """Lazily opened, memory-mapped studies of one or more caches for a Dataset, at most
    :attr:`max_open` at a time (each open study holds its arrays' file mappings), reopened
    in each worker process (cache handles are not pickled)."""

    cache_path: Path
    max_open: int = 32

    def _study(self, sid: str, path: Path | None = None) -> Study:
        """Study ``sid`` of the cache at ``path`` (default :attr:`cache_path`)."""
        path = self.cache_path if path is None else path
        opened = self.__dict__.setdefault("_studies", OrderedDict())
        caches = self.__dict__.get("_caches")
        if caches is None:
            caches = self._caches = {}
        if path not in caches:
            caches[path] = Cache(path)
        key = (path, sid)
        if key in opened:
            opened.move_to_end(key)
        else:
            opened[key] = caches[path].load(sid)
            while len(opened) > self.max_open:
                opened.popitem(last=False)
        return opened[key]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_caches"], state["_studies"] = None, OrderedDict()
        return state
