"""Exam-level knee classification: slice features -> pooling over slices -> multi-label
classifier, in `planessl finetune` / `predict` / `evaluate` / `experiment`."""

import json

import numpy as np
import pytest

from planessl.cli import main

KNEE_FT = ["model.preset=tiny", "data.image_size=32", "data.spacing_mm=5.0", "data.batch_size=4",
           "trainer.accelerator=cpu", "trainer.progress_bar=false", "trainer.threads=1",
           "augment.enabled=false", "finetune.pooling=max", "finetune.slices_per_view=5",
           "data.input_views=[sagittal,coronal]", "split.val_size=2", "split.test_fraction=0.4",
           "finetune.val_every_n_steps=20"]


@pytest.fixture(scope="module")
def knee_cache(tmp_path_factory):
    """16 small knee phantoms; effusion in every other one (the easy label)."""
    from planessl.cache import write_cache
    from planessl.phantom.knee import make_knee_study

    root = tmp_path_factory.mktemp("knee")
    write_cache(root / "cache", [make_knee_study(0, i, effusion=bool(i % 2)) for i in range(16)])
    return root / "cache"


def test_exam_classification_multilabel_beats_chance(knee_cache, tmp_path, capsys):
    run = tmp_path / "cls"
    keys = "finetune.target_keys=[effusion,abnormal,acl,meniscus]"
    assert main(["finetune", "--task", "classification", "--data", str(knee_cache),
                 "--labelled", "8", "--init", "scratch", "--out", str(run), "--seed", "0"]
                + KNEE_FT + [keys, "finetune.steps=200", "optim.warmup_steps=10", "optim.lr=3e-3",
                    "trainer.precision=32-true"]) == 0
    model = json.loads((run / "model.json").read_text())
    assert model["multilabel"] and model["n_classes"] == 4 and model["pooling"] == "max"
    split = json.loads((run / "split.json").read_text())
    pred = tmp_path / "pred"
    assert main(["predict", "--model", str(run), "--data", str(knee_cache), "--out", str(pred)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--pred", str(pred), "--truth", str(knee_cache)]) == 0
    summary = json.loads((pred / "evaluation.json").read_text())
    assert summary["n_studies"] == 16
    assert set(summary["labels"]) == {"effusion", "abnormal", "acl", "meniscus"}
    # effusion (a distended, fluid-bright recess) is learnt: it ranks the held-out test exams
    # better than chance (ROC AUC; accuracy at 0.5 depends on calibration after so few
    # steps and is not asserted)
    from planessl.cache import Cache
    from planessl.evaluation.metrics import multilabel_metrics
    import csv

    rows = {r["study"]: r for r in csv.DictReader(open(pred / "predictions.csv"))}
    cache = Cache(knee_cache)
    test = split["test"]
    probs = np.array([[float(rows[s]["p_effusion"])] for s in test])
    truth = np.array([[cache.entry(s)["targets"]["effusion"]] for s in test])
    m = multilabel_metrics(probs, truth, ["effusion"])["labels"]["effusion"]
    assert m["auc"] > 0.5, m


def test_exam_classification_refuses_multilabel_image_pooling(knee_cache, tmp_path, capsys):
    code = main(["finetune", "--task", "classification", "--data", str(knee_cache),
                 "--labelled", "2", "--init", "scratch", "--out", str(tmp_path / "x")]
                + KNEE_FT + ["finetune.pooling=image", "finetune.target_keys=[acl,meniscus]"])
    assert code != 0
    assert "finetune.pooling=max or mean" in capsys.readouterr().err


def test_knee_experiment_with_pretraining(knee_cache, tmp_path, capsys):
    import yaml

    cfg = {"data": str(knee_cache), "task": "classification",
           "methods": ["scratch", "multitask"], "labelled": [4], "seeds": [0],
           "pretrain": ["model.preset=tiny", "data.image_size=32", "data.spacing_mm=5.0",
                        "data.batch_size=4", "trainer.accelerator=cpu", "trainer.threads=1",
                        "trainer.progress_bar=false", "trainer.max_steps=3",
                        "trainer.max_epochs=-1", "data.input_views=[sagittal,coronal,axial]",
                        "task.line_channels=[sagittal,coronal,axial]", "task.stack_line=mid"],
           "finetune": KNEE_FT + ["finetune.target_keys=[abnormal,acl,meniscus]",
                                  "finetune.steps=3", "split.pool_size=5"]}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["experiment", str(path), "--out", str(tmp_path / "exp")]) == 0
    results = (tmp_path / "exp" / "results.csv").read_text()
    assert "acl_auc" in results and "meniscus_accuracy" in results
    assert (tmp_path / "exp" / "summary.md").is_file()
