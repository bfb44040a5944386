"""Labelled datasets keep a bounded number of studies open and survive pickling."""

import pickle

import numpy as np
import torch

from planessl.cache import Cache
from planessl.data.labelled import GridSpec, SegmentationDataset


def test_open_studies_are_bounded_and_items_unchanged(phantom_cache):
    cache = Cache(phantom_cache)
    ds = SegmentationDataset(cache, cache.ids[:5], GridSpec(image_size=32, spacing_mm=6.0))
    ds.max_open = 2
    per_study = {}
    for index, item in enumerate(ds.items):
        per_study.setdefault(item[0], index)
    first = {}
    for sid, index in per_study.items():
        torch.manual_seed(0)
        first[sid] = ds[index]["label"].numpy()
        assert len(ds._studies) <= 2
    clone = pickle.loads(pickle.dumps(ds))
    assert len(clone._studies) == 0
    for sid, index in per_study.items():
        torch.manual_seed(0)
        np.testing.assert_array_equal(clone[index]["label"].numpy(), first[sid])
    assert len(per_study) == 5
