"""A DataLoader whose worker processes start fetching only when the first batch is asked for.

Why: Lightning (2.x) creates the training iterator in ``FitLoop.setup_data`` *before* it
calls ``set_epoch`` on the sampler, and when a run is resumed it keeps that iterator for the
first epoch. With ``num_workers >= 1`` a DataLoader iterator sends its first indices to the
workers as soon as it is created, so the resumed epoch would be drawn from the sampler's
stale epoch (0) instead of the resumed one, and ``--resume`` would not be exact. With
``num_workers = 0`` the sampler is only read at the first ``next()``, after ``set_epoch``.
:class:`EpochLoader` gives the worker case the same order of events.
"""

from __future__ import annotations

from typing import Any, Iterator

from torch.utils.data import DataLoader


class _DeferredIterator(Iterator):
    """Creates the DataLoader's real iterator at the first ``next()``."""

    def __init__(self, loader: DataLoader) -> None:
        self._loader = loader
        self._it: Iterator | None = None

    def __iter__(self) -> "_DeferredIterator":
        return self

    def __next__(self) -> Any:
        if self._it is None:
            self._it = DataLoader.__iter__(self._loader)
        return next(self._it)

    def __len__(self) -> int:
        return len(self._loader)


class EpochLoader(DataLoader):
    """:class:`~torch.utils.data.DataLoader` that reads its sampler (and starts its
    workers' prefetching) at the first batch of an epoch rather than at ``iter()``, so a
    ``set_epoch`` between the two is always honoured (see the module docstring)."""

    def __iter__(self) -> Iterator:  # type: ignore[override]
        return _DeferredIterator(self)
