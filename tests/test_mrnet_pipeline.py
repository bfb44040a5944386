"""MRNet sample (five exams, no geometry): ingest, slice-location samples per plane, the line
task refused in one line, and the exam-level classification pipeline as a format check."""

import json

import numpy as np
import pytest

from planessl.cli import main

VIEWS = ("sagittal", "coronal", "axial")


@pytest.mark.realdata
def test_mrnet_sample_through_slices_and_classification(shared_data, tmp_path, capsys):
    from planessl.cache import Cache
    from planessl.data import SampleSpec, make_sample
    from planessl.data.module import check_caches
    from planessl.errors import PlaneSSLError
    from planessl.ingest import ingest

    src = shared_data / "mrnet_sample"
    if not src.is_dir():
        pytest.skip("../shared/data/mrnet_sample is absent")
    ingest([src], tmp_path / "cache", progress=False)
    cache = Cache(tmp_path / "cache")
    assert len(cache) == 5
    assert all(set(cache.entry(i)["targets"]) == {"abnormal", "acl", "meniscus"} for i in cache.ids)
    with pytest.raises(PlaneSSLError, match="line task is not available") as exc:
        check_caches([cache], VIEWS, VIEWS, False)
    assert "\n" not in str(exc.value)
    assert check_caches([cache], VIEWS, (), True) == [sorted(cache.ids)]
    study = cache.load(cache.ids[0])
    spec = SampleSpec(input_views=VIEWS, line_channels=VIEWS, image_size=32, spacing_mm=8.0)
    for s_idx, series in enumerate(study.series):
        locs = [float(make_sample(study, s_idx, k, 0, spec, None, np.random.default_rng(0))
                      ["slice"][0]) for k in (0, series.n_slices - 1)]
        assert locs == [0.0, 1.0]  # stored order (no geometry)
    ft = ["model.preset=tiny", "data.image_size=32", "data.spacing_mm=8.0", "data.batch_size=2",
          "trainer.accelerator=cpu", "trainer.progress_bar=false", "trainer.threads=1",
          "finetune.pooling=max", "finetune.slices_per_view=3", "finetune.steps=2",
          "finetune.val_every_n_steps=2", "finetune.target_keys=[abnormal,acl,meniscus]",
          "data.input_views=[sagittal,coronal,axial]", "split.val_size=1", "split.test_fraction=0.4"]
    run = tmp_path / "run"
    assert main(["finetune", "--task", "classification", "--data", str(tmp_path / "cache"),
                 "--labelled", "2", "--init", "scratch", "--out", str(run)] + ft) == 0
    assert main(["predict", "--model", str(run), "--data", str(tmp_path / "cache"),
                 "--out", str(tmp_path / "pred")]) == 0
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "cache")]) == 0
    summary = json.loads((tmp_path / "pred" / "evaluation.json").read_text())
    assert summary["n_studies"] == 5 and set(summary["labels"]) == {"abnormal", "acl", "meniscus"}
