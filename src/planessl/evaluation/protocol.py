"""The few-label protocol: which studies train, validate, test and pretrain.

Rules (all reproducible from the arguments alone; ids are sorted first, so the order in
which a cache lists its studies does not matter):

- **test**: fixed for the whole experiment — the given ``test_ids``, or a
  ``test_fraction`` of the labelled studies drawn with ``split_seed`` (never with ``seed``).
- **val**: fixed too — the given ``val_ids``, or ``val_size`` labelled studies outside the
  test set drawn with ``split_seed``; used only for checkpoint selection, identical for every
  method, N and seed.
- **pool**: the given ``pool_ids``, or the remaining labelled studies (the first
  ``pool_size`` of them in the ``split_seed`` order when given).
- **train**: the first ``n`` studies of the pool in a permutation drawn with ``seed``: for
  one seed the choices are nested (N=1 ⊂ N=2 ⊂ N=5 …).
- **pretrain**: every study outside test, val and pool (labels unused) — so pretraining never
  sees an image that the labelled pool or the evaluation holds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from planessl.errors import PlaneSSLError


@dataclass(frozen=True)
class Split:
    """Study ids of each role (see module docstring)."""

    train: list[str]
    val: list[str]
    test: list[str]
    pool: list[str]
    pretrain: list[str]
    n: int
    seed: int
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _draw(ids: Sequence[str], seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    ids = sorted(ids)
    return [ids[k] for k in rng.permutation(len(ids))]


def _explicit(role: str, ids: Sequence[str], labelled: list[str], taken: list[str]) -> list[str]:
    """Explicit ``role`` ids, checked to be labelled and not in an earlier role."""
    ids = sorted(set(ids))
    missing = [i for i in ids if i not in set(labelled)]
    if missing:
        raise PlaneSSLError(f"{role} ids without labels or not in the data: "
                            f"{', '.join(missing[:5])}" + (" …" if len(missing) > 5 else ""))
    clash = [i for i in ids if i in set(taken)]
    if clash:
        raise PlaneSSLError(f"{role} ids also in an earlier role (test / validation): "
                            f"{', '.join(clash[:5])}")
    return ids


def few_label_split(all_ids: Sequence[str], labelled_ids: Sequence[str], n: int, seed: int,
                    test_ids: Sequence[str] | None = None, test_fraction: float = 0.2,
                    val_size: int = 0, pool_size: int | None = None,
                    split_seed: int = 0, val_ids: Sequence[str] | None = None,
                    pool_ids: Sequence[str] | None = None) -> Split:
    """Choose the N labelled training studies and the fixed val/test/pretrain sets.

    Args:
        all_ids: every study id available (labelled or not).
        labelled_ids: the ids that carry segmentation labels (or classification targets).
        n: number of labelled training studies (>= 1).
        seed: the experiment seed; it changes only which pool studies train.
        test_ids: explicit held-out test ids (must be labelled), else ``test_fraction``.
        val_size: number of fixed validation studies (0: no validation set).
        pool_size: cap on the labelled pool (the rest goes to pretraining).
        split_seed: seed of the fixed parts (test, val, pool membership).
        val_ids: explicit validation ids (labelled, outside the test set); ``val_size`` is
            then ignored.
        pool_ids: explicit labelled pool (labelled, outside test and validation);
            ``pool_size`` is then ignored.

    Raises:
        PlaneSSLError: no labelled studies, unknown or overlapping test / val / pool ids, or
            ``n`` larger than the pool.
    """
    all_set, labelled = set(all_ids), sorted(set(labelled_ids))
    if not labelled:
        raise PlaneSSLError("no labelled studies: the data holds no segmentation labels / targets")
    if not set(labelled) <= all_set:
        raise PlaneSSLError("labelled ids not in the data: " + ", ".join(sorted(set(labelled) - all_set)[:5]))
    if n < 1:
        raise PlaneSSLError(f"--labelled must be >= 1, got {n}")
    order = _draw(labelled, split_seed)
    if test_ids is not None:
        missing = sorted(set(test_ids) - set(labelled))
        if missing:
            raise PlaneSSLError(f"test ids without labels or not in the data: {', '.join(missing[:5])}"
                                + (" …" if len(missing) > 5 else ""))
        test = sorted(test_ids)
    else:
        n_test = int(round(test_fraction * len(labelled)))
        test = sorted(order[:n_test])
    rest = [i for i in order if i not in set(test)]
    if val_ids is not None:
        val = _explicit("validation", val_ids, labelled, test)
        rest = [i for i in rest if i not in set(val)]
    else:
        val = sorted(rest[:val_size])
        rest = rest[val_size:]
    if pool_ids is not None:
        pool = _explicit("pool", pool_ids, labelled, test + val)
    else:
        pool = rest if pool_size is None else rest[:pool_size]
    if n > len(pool):
        raise PlaneSSLError(f"--labelled {n} is larger than the labelled pool of {len(pool)} studies "
                            f"({len(labelled)} labelled, {len(test)} test, {len(val)} validation)")
    pool_set = set(pool)
    pool_order = [i for i in _draw(pool, seed)]
    train = pool_order[:n]
    fixed = set(test) | set(val) | pool_set
    pretrain = sorted(i for i in all_set if i not in fixed)
    params = {"test_fraction": test_fraction if test_ids is None else None,
              "val_size": val_size if val_ids is None else len(val),
              "pool_size": pool_size if pool_ids is None else len(pool),
              "split_seed": split_seed, "explicit_test": test_ids is not None,
              "explicit_val": val_ids is not None, "explicit_pool": pool_ids is not None}
    return Split(train=train, val=val, test=test, pool=sorted(pool), pretrain=pretrain, n=n,
                 seed=seed, params=params)
