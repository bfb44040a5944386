"""The few-label split: reproducible, nested, fixed test set, clear errors."""

import pytest

from planessl.errors import PlaneSSLError
from planessl.evaluation.protocol import few_label_split

IDS = [f"p{k:03d}" for k in range(30)]
LABELLED = IDS[:24]


def test_nested_over_n_and_reproducible():
    s1, s2, s5 = (few_label_split(IDS, LABELLED, n, seed=3, val_size=2) for n in (1, 2, 5))
    assert s1.train == s2.train[:1] and s2.train == s5.train[:2]
    assert few_label_split(IDS, LABELLED, 5, seed=3, val_size=2) == s5
    # listing order does not matter
    assert few_label_split(IDS[::-1], LABELLED[::-1], 5, seed=3, val_size=2) == s5


def test_fixed_sets_do_not_depend_on_seed_and_are_disjoint():
    a = few_label_split(IDS, LABELLED, 3, seed=0, val_size=2, pool_size=10)
    b = few_label_split(IDS, LABELLED, 3, seed=1, val_size=2, pool_size=10)
    assert a.test == b.test and a.val == b.val and a.pool == b.pool and a.pretrain == b.pretrain
    assert a.train != b.train
    roles = [set(a.test), set(a.val), set(a.pool), set(a.pretrain)]
    assert sum(len(r) for r in roles) == len(IDS)
    assert set().union(*roles) == set(IDS)
    assert set(a.train) <= set(a.pool)
    assert len(a.test) == round(0.2 * 24) and len(a.pool) == 10
    assert set(IDS[24:]) <= set(a.pretrain)


def test_explicit_test_ids():
    s = few_label_split(IDS, LABELLED, 2, seed=0, test_ids=LABELLED[-4:])
    assert s.test == LABELLED[-4:] and not set(s.train) & set(s.test)
    with pytest.raises(PlaneSSLError, match="test ids"):
        few_label_split(IDS, LABELLED, 2, seed=0, test_ids=["p029"])


def test_errors():
    with pytest.raises(PlaneSSLError, match="larger than the labelled pool of 10"):
        few_label_split(IDS, LABELLED, 11, seed=0, test_fraction=0.25, val_size=4, pool_size=10)
    with pytest.raises(PlaneSSLError, match="no labelled studies"):
        few_label_split(IDS, [], 1, seed=0)
