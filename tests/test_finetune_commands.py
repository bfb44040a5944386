"""finetune / predict / evaluate / experiment on tiny phantom data, and their bad inputs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from planessl.cache import write_cache
from planessl.cli import main
from planessl.phantom import make_study

TINY = ["model.preset=tiny", "trainer.progress_bar=false", "trainer.threads=1",
        "data.batch_size=4"]
FT = TINY + ["finetune.steps=6", "finetune.val_every_n_steps=3", "split.val_size=1",
             "split.pool_size=3", "split.test_fraction=0.25"]


@pytest.fixture(scope="module")
def pretrain_run(phantom_cache, tmp_path_factory) -> Path:
    from planessl.config import PretrainConfig, load_config
    from planessl.pretraining import run_pretraining

    out = tmp_path_factory.mktemp("pre") / "run"
    cfg = load_config(PretrainConfig, None, TINY + ["task.name=multitask", "trainer.max_steps=3",
                                                    "trainer.max_epochs=-1"])
    run_pretraining(cfg, phantom_cache, out)
    return out


@pytest.fixture(scope="module")
def finetuned(phantom_cache, pretrain_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ft") / "run"
    assert main(["finetune", "--data", str(phantom_cache), "--labelled", "2", "--init",
                 str(pretrain_run), "--out", str(out), "--seed", "1"] + FT) == 0
    return out


def test_finetune_transfers_and_reports_keys(finetuned, pretrain_run):
    from planessl.finetune import load_finetuned
    from safetensors.torch import load_file

    report = json.loads((finetuned / "transfer.json").read_text())
    net, model = load_finetuned(finetuned)
    backbone_keys = [k for k in net.backbone.state_dict() if k.startswith(("encoder.", "decoder."))]
    assert sorted(report["transferred"]) == sorted(backbone_keys)
    assert report["missing"] == []
    assert report["unexpected"] and all(k.startswith("heads.") for k in report["unexpected"])
    split = json.loads((finetuned / "split.json").read_text())
    assert len(split["train"]) == 2 and not set(split["train"]) & set(split["test"])
    assert model["task"] == "segmentation" and model["selected"] == "best"
    assert (finetuned / "config.yaml").is_file() and (finetuned / "run_info.json").is_file()
    # the model inherited the pretraining run's backbone (tiny) without being told twice
    pre = load_file(str(pretrain_run / "weights.safetensors"))
    assert tuple(pre["encoder.stem.conv_0.conv.weight"].shape) == \
        tuple(net.backbone.state_dict()["encoder.stem.conv_0.conv.weight"].shape)


def test_encoder_scope_and_lr_groups(pretrain_run):
    from planessl.finetune import build_net
    from planessl.tasks.segmentation import param_groups
    from planessl.tasks.transfer import load_weights, transfer_backbone

    net = build_net("segmentation", [4, 8, 16, 32], 4)
    weights, _ = load_weights(pretrain_run)
    report = transfer_backbone(net.backbone, weights, "encoder")
    assert report["transferred"] and all(k.startswith("encoder.") for k in report["transferred"])
    assert any(k.startswith("decoder.") for k in report["unexpected"])
    k = report["transferred"][0]
    assert np.allclose(net.backbone.state_dict()[k].numpy(), weights[k].numpy())
    groups = param_groups(net, report["transferred"], 1e-3, 0.1)
    by_name = {g["name"]: g for g in groups}
    assert by_name["transferred"]["lr"] == pytest.approx(1e-4) and by_name["new"]["lr"] == 1e-3
    n_old = sum(p.numel() for p in by_name["transferred"]["params"])
    assert n_old == sum(v.numel() for kk, v in net.backbone.named_parameters() if kk.startswith("encoder."))


def test_mismatched_architecture_is_refused(phantom_cache, pretrain_run, tmp_path, capsys):
    rc = main(["finetune", "--data", str(phantom_cache), "--labelled", "1", "--init", str(pretrain_run),
               "--out", str(tmp_path / "r")] + FT + ["model.features=[8,16,32,64]"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "architecture does not match" in err[0]


def test_predict_evaluate_cache(finetuned, phantom_cache, tmp_path, capsys):
    import nibabel as nib

    from planessl.cache import Cache
    from planessl.predict import stack_affine

    pred = tmp_path / "pred"
    assert main(["predict", "--model", str(finetuned), "--data", str(phantom_cache), "--out", str(pred),
                 "--subset", "test", "--lcc"]) == 0
    index = json.loads((pred / "predictions.json").read_text())
    test = json.loads((finetuned / "split.json").read_text())["test"]
    assert {e["study"] for e in index["entries"]} == set(test)
    assert {e["phase"] for e in index["entries"]} == {"ED", "ES"}
    e = index["entries"][0]
    series = Cache(phantom_cache).load(e["study"]).series[0]
    img = nib.load(str(pred / e["file"]))
    assert img.shape == (series.pixels.shape[2], series.pixels.shape[3], series.pixels.shape[0])
    assert np.allclose(img.affine, stack_affine(series.planes))
    assert set(np.unique(np.asarray(img.dataobj))) <= {0, 1, 2, 3}
    capsys.readouterr()
    assert main(["evaluate", "--pred", str(pred), "--truth", str(phantom_cache)]) == 0
    out = capsys.readouterr().out
    assert "| ED | LV |" in out and "distances in mm" in out
    summary = json.loads((pred / "evaluation.json").read_text())
    assert summary["n_volumes"] == len(index["entries"]) and summary["units"] == ["mm"]
    assert 0.0 <= summary["all"]["mean_dice"]["mean"] <= 1.0


def test_predict_nifti_files_named_after_input_same_grid(finetuned, phantom_cache, tmp_path):
    import nibabel as nib

    from planessl.cache import Cache
    from planessl.predict import stack_affine

    series = Cache(phantom_cache).load(Cache(phantom_cache).ids[0]).series[0]
    vol = np.asarray(series.pixels[:, 0]).transpose(1, 2, 0)
    src = tmp_path / "in" / "case7_sa_ED.nii.gz"
    src.parent.mkdir()
    nib.save(nib.Nifti1Image(vol, stack_affine(series.planes)), str(src))
    bad = tmp_path / "in" / "broken.nii.gz"
    bad.write_bytes(b"not a nifti")
    out = tmp_path / "out"
    assert main(["predict", "--model", str(finetuned), "--data", str(src), str(bad), "--out", str(out)]) == 0
    res = nib.load(str(out / "case7_sa_ED_pred.nii.gz"))
    assert res.shape == vol.shape and np.allclose(res.affine, nib.load(str(src)).affine)
    assert sorted(p.name for p in out.iterdir()) == ["case7_sa_ED_pred.nii.gz", "predictions.json"]


def test_largest_component_keeps_one_blob():
    from planessl.predict import largest_components

    lab = np.zeros((2, 20, 20), np.uint8)
    lab[:, 2:10, 2:10] = 3
    lab[0, 15:17, 15:17] = 3
    lab[1, 12:14, 12:14] = 1
    out = largest_components(lab, 4)
    assert out[0, 15, 15] == 0 and out[0, 5, 5] == 3 and out[1, 12, 12] == 1


def test_stack_affine_round_trip(phantom_cache):
    from planessl.cache import Cache
    from planessl.geometry import planes_from_affine
    from planessl.predict import stack_affine

    series = Cache(phantom_cache).load(Cache(phantom_cache).ids[0]).series[0]
    shape = (series.pixels.shape[2], series.pixels.shape[3], series.n_slices)
    back = planes_from_affine(stack_affine(series.planes), shape)
    for a, b in zip(series.planes, back):
        assert np.allclose(a.origin, b.origin, atol=1e-4) and np.allclose(a.row_dir, b.row_dir)
        assert np.allclose(a.spacing, b.spacing)
    assert np.allclose(stack_affine(series.planes, spacing_known=False), np.eye(4))


def _one_line_error(capsys, argv) -> str:
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("planessl: error:")
    return err[0]


def test_bad_inputs(phantom_cache, pretrain_run, finetuned, tmp_path, capsys):
    from planessl.cache import Cache

    base = ["finetune", "--data", str(phantom_cache), "--init", "scratch", "--out", str(tmp_path / "x")]
    assert "larger than the labelled pool of 3" in _one_line_error(capsys, base + ["--labelled", "4"] + FT)
    # a cache without labels
    c = Cache(phantom_cache)
    unlabelled = [dataclasses.replace(c.load(i, mmap=False), series=[
        dataclasses.replace(s, labels=None, labelled_frames=[]) for s in c.load(i, mmap=False).series])
        for i in c.ids[:3]]
    write_cache(tmp_path / "nolab", unlabelled)
    msg = _one_line_error(capsys, ["finetune", "--data", str(tmp_path / "nolab"), "--init", "scratch",
                                   "--out", str(tmp_path / "y"), "--labelled", "1"] + FT)
    assert "no study has segmentation labels" in msg
    # run folders of another kind
    assert "pretraining run" in _one_line_error(
        capsys, ["predict", "--model", str(pretrain_run), "--data", str(phantom_cache), "--out", str(tmp_path / "p")])
    assert "fine-tuned segmentation model" in _one_line_error(
        capsys, base + ["--labelled", "1", "--init", str(finetuned)] + FT)
    # predictions that do not match the truth
    pred = tmp_path / "pred"
    assert main(["predict", "--model", str(finetuned), "--data", str(phantom_cache), "--out", str(pred),
                 "--subset", "test"]) == 0
    other = write_cache(tmp_path / "other", [make_study(5, 0)])
    capsys.readouterr()
    assert "no prediction matches" in _one_line_error(
        capsys, ["evaluate", "--pred", str(pred), "--truth", str(other.path)])
    assert "not a planessl prediction folder" in _one_line_error(
        capsys, ["evaluate", "--pred", str(tmp_path), "--truth", str(phantom_cache)])


def test_classification_finetune_predict_evaluate(phantom_cache, tmp_path, capsys):
    run = tmp_path / "cls"
    assert main(["finetune", "--task", "classification", "--data", str(phantom_cache), "--labelled", "3",
                 "--init", "scratch", "--out", str(run)] + FT + ["finetune.n_classes=0"]) == 0
    model = json.loads((run / "model.json").read_text())
    assert model["task"] == "classification" and model["n_classes"] >= 2
    pred = tmp_path / "cpred"
    assert main(["predict", "--model", str(run), "--data", str(phantom_cache), "--out", str(pred)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--pred", str(pred), "--truth", str(phantom_cache)]) == 0
    assert "accuracy" in capsys.readouterr().out
    summary = json.loads((pred / "evaluation.json").read_text())
    assert summary["n_studies"] == 10 and 0.0 <= summary["accuracy"] <= 1.0


def test_experiment_runs_and_resumes(phantom_cache, tmp_path, capsys):
    import yaml

    cfg = {"data": str(phantom_cache), "methods": ["scratch", "slices"], "labelled": [1, 2],
           "seeds": [0], "distances": False,
           "pretrain": TINY + ["trainer.max_steps=2", "trainer.max_epochs=-1"],
           "finetune": FT + ["finetune.steps=3"]}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "exp"
    assert main(["experiment", str(path), "--out", str(out)]) == 0
    console = capsys.readouterr().out.splitlines()
    # one compact line per cell and per pretraining run; each run's chatter is in its log.txt
    assert [line.split(":")[0] for line in console if line.startswith("[")] == [
        "[1/4] scratch N=1 seed 0", "[2/4] scratch N=2 seed 0", "[3/4] slices N=1 seed 0",
        "[4/4] slices N=2 seed 0"]
    assert sum(line.startswith("pretraining slices seed 0 on ") for line in console) == 1
    assert not [line for line in console if "fine-tuned" in line or "predicted" in line]
    assert "fine-tuned segmentation" in (out / "cells" / "slices-n1-s0" / "log.txt").read_text()
    assert (out / "pretrain" / "slices-s0" / "log.txt").is_file()
    rows = (out / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 5 and rows[0].startswith("method,n,seed")
    summary = (out / "summary.md").read_text()
    assert "| slices | 1 |" in summary and "Paired difference to scratch" in summary
    assert " of 1)" in summary
    assert (out / "dice_vs_n.png").stat().st_size > 1000
    # every pretrained cell used the single pretraining run of (slices, seed 0)
    assert len(list((out / "pretrain").iterdir())) == 1
    # resume: a finished experiment redoes nothing; a lost row is redone alone
    stamp = {p: p.stat().st_mtime for p in (out / "cells").glob("*/evaluation.csv")}
    lines = (out / "results.csv").read_text().splitlines()
    (out / "results.csv").write_text("\n".join(lines[:-1]) + "\n")
    capsys.readouterr()
    assert main(["experiment", str(path), "--out", str(out)]) == 0
    log = capsys.readouterr().out
    assert [line for line in log.splitlines() if line.startswith("[")] == [
        line for line in log.splitlines() if line.startswith("[4/4] slices N=2 seed 0: mean Dice ")]
    assert log.count("[4/4]") == 1 and "3 of 4 cells done earlier" in log
    redone = [p for p, t in stamp.items() if p.stat().st_mtime != t]
    assert len(redone) == 1
    assert len((out / "results.csv").read_text().strip().splitlines()) == 5
    # resuming with a different fine-tuning recipe would mix results: refused
    cfg["finetune"] = FT + ["finetune.steps=4"]
    path.write_text(yaml.safe_dump(cfg))
    assert main(["experiment", str(path), "--out", str(out)]) == 2
    assert "different 'finetune'" in capsys.readouterr().err


def test_experiment_jobs_2_gives_the_rows_of_jobs_1(phantom_cache, tmp_path, capsys):
    """Two cells (and the pretraining) at once, each in its own spawned process, give the
    same rows in the same order as one at a time in this process; a semi-arm style arm that
    starts from another arm's pretraining (``init``) with its own fine-tuning overrides
    reuses that run."""
    import yaml

    cfg = {"data": str(phantom_cache), "methods": ["scratch", "slices", "slices-short"],
           "labelled": [1], "seeds": [0, 1], "distances": False, "pretrain_per_seed": False,
           "arms": {"slices-short": {"init": "slices", "finetune": ["finetune.steps=2"]}},
           "pretrain": TINY + ["trainer.max_steps=2", "trainer.max_epochs=-1"],
           "finetune": FT + ["finetune.steps=3"]}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    # --pretrain-only: the pretraining the cells need, and no cell
    pre = tmp_path / "exp-pre"
    assert main(["experiment", str(path), "--out", str(pre), "--pretrain-only"]) == 0
    assert (pre / "pretrain" / "slices" / "weights.safetensors").is_file()
    assert not (pre / "cells").exists() and not (pre / "results.csv").exists()
    results = {}
    for jobs in (1, 2):
        out = tmp_path / f"exp-j{jobs}"
        assert main(["experiment", str(path), "--out", str(out), "--jobs", str(jobs)]) == 0
        results[jobs] = [{k: v for k, v in r.items() if not k.endswith("_seconds")}
                         for r in _csv_rows(out / "results.csv")]
        assert [p.name for p in (out / "pretrain").iterdir()] == ["slices"]
        steps = yaml.safe_load((out / "cells" / "slices-short-n1-s1" / "run" / "config.yaml")
                               .read_text())["finetune"]["steps"]
        assert steps == 2
    console = capsys.readouterr().out
    assert "2 at once" in console
    assert [(r["method"], r["seed"]) for r in results[2]] == [
        ("scratch", "0"), ("slices", "0"), ("slices-short", "0"),
        ("scratch", "1"), ("slices", "1"), ("slices-short", "1")]
    assert results[2] == results[1]
    assert results[1][1]["mean_dice"] != results[1][2]["mean_dice"]  # the arm's own recipe


def _csv_rows(path: Path) -> list[dict]:
    import csv

    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
