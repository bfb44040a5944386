"""nnU-Net interop: a phantom cache exported as an nnU-Net raw dataset, nnU-Net's own
fingerprint and 2D planning on it, planessl pretraining of the planned network, and the
exported checkpoint loaded by nnU-Net's own ``load_pretrained_weights``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from planessl.cache import Cache, write_cache
from planessl.cli import main
from planessl.errors import PlaneSSLError
from planessl.nnunet.dataset import export_nnunet_dataset

DATASET_ID = 501
NNUNET_MISSING = "nnU-Net v2 is not installed: pip install '.[nnunet]' (CI installs it)"


@pytest.fixture(scope="module")
def labelled_cache(tmp_path_factory) -> Cache:
    from planessl.phantom import make_study

    root = tmp_path_factory.mktemp("nnunet")
    return write_cache(root / "cache", [make_study(3, i) for i in range(3)])


@pytest.fixture(scope="module")
def raw_dataset(labelled_cache, tmp_path_factory):
    raw = tmp_path_factory.mktemp("nnUNet_raw")
    return export_nnunet_dataset(labelled_cache, raw, DATASET_ID, log=lambda m: None)


def test_export_dataset_writes_nnunet_raw_format(labelled_cache, raw_dataset):
    folder = raw_dataset.folder
    assert folder.name == f"Dataset{DATASET_ID}_PlaneSSL"
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "MRI"} and meta["file_ending"] == ".nii.gz"
    # ED and ES of each study's SAX stack; labels consecutive from background = 0.
    assert meta["numTraining"] == len(raw_dataset.cases) == 2 * len(labelled_cache)
    assert sorted(meta["labels"].values()) == list(range(len(meta["labels"])))
    assert meta["labels"]["background"] == 0 and meta["labels"]["LV"] == 3
    images = sorted((folder / "imagesTr").iterdir())
    labels = sorted((folder / "labelsTr").iterdir())
    assert [p.name.replace("_0000", "") for p in images] == [p.name for p in labels]

    study = labelled_cache.load(labelled_cache.ids[0])
    sax = study.views("sax")[0]
    case = f"{study.id}_sax_f{sax.ed_frame:02d}"
    img = nib.load(folder / "imagesTr" / f"{case}_0000.nii.gz")
    seg = nib.load(folder / "labelsTr" / f"{case}.nii.gz")
    # Voxels are the cache's pixels, (H, W, S); labels unchanged (0..3 map to themselves).
    np.testing.assert_allclose(img.get_fdata(), np.asarray(sax.pixels[:, sax.ed_frame]).transpose(1, 2, 0),
                               rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(seg.dataobj), np.asarray(sax.labels[:, sax.ed_frame]).transpose(1, 2, 0))
    # Spacing, checked independently of the affine code: pixel spacing from the planes and
    # the slice step from the distance between the first two slice origins.
    p0, p1 = sax.planes[0], sax.planes[1]
    step = float(np.linalg.norm(p1.origin - p0.origin))
    np.testing.assert_allclose(img.header.get_zooms(), (p0.spacing[0], p0.spacing[1], step), rtol=1e-5)
    # Voxel (i, j, k) lies where the cache's plane k puts pixel (i, j) (RAS = LPS with x, y negated).
    i, j, k = 7, 11, 1
    lps = sax.planes[k].origin + i * sax.planes[k].spacing[0] * sax.planes[k].col_dir \
        + j * sax.planes[k].spacing[1] * sax.planes[k].row_dir
    ras = (img.affine @ [i, j, k, 1])[:3]
    np.testing.assert_allclose(ras, lps * [-1, -1, 1], atol=1e-3)
    # An existing dataset is never overwritten.
    with pytest.raises(PlaneSSLError, match="already exists"):
        export_nnunet_dataset(labelled_cache, folder.parent, DATASET_ID)


def test_nnunet_options_without_the_extra_name_it(monkeypatch, tmp_path, capsys):
    for name in ("nnunetv2", "dynamic_network_architectures"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    rc = main(["pretrain", "--data", str(tmp_path), "--network", f"nnunet:{tmp_path}/p.json",
               "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "pip install 'planessl[nnunet]'" in err
    (tmp_path / "run2" / "nnunet").mkdir(parents=True)
    (tmp_path / "run2" / "nnunet" / "network.json").write_text('{"configuration": "2d"}')
    assert main(["export", str(tmp_path / "run2"), "--nnunet", str(tmp_path / "x.pth")]) == 2
    assert "pip install 'planessl[nnunet]'" in capsys.readouterr().err
    assert not (tmp_path / "x.pth").exists()


def _plan_small(raw: Path, pre: Path) -> Path:
    """nnU-Net's fingerprint extraction and experiment planning (in a subprocess, as its
    paths are read from the environment at import), with a small feature budget."""
    code = (
        "from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprints\n"
        "from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner "
        "import ExperimentPlanner\n"
        f"extract_fingerprints([{DATASET_ID}], num_processes=1, check_dataset_integrity=True)\n"
        f"p = ExperimentPlanner({DATASET_ID})\n"
        "p.UNet_base_num_features, p.UNet_max_features_2d = 4, 32\n"
        "p.plan_experiment()\n")
    env = {**os.environ, "nnUNet_raw": str(raw), "nnUNet_preprocessed": str(pre),
           "nnUNet_results": str(pre.parent / "results"), "OMP_NUM_THREADS": "1",
           "nnUNet_def_n_proc": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    plans = pre / f"Dataset{DATASET_ID}_PlaneSSL" / "nnUNetPlans.json"
    assert plans.is_file() and (plans.parent / "dataset.json").is_file()
    return plans


def test_whole_path_pretrained_weights_load_into_nnunet(labelled_cache, raw_dataset, tmp_path):
    pytest.importorskip("nnunetv2", reason=NNUNET_MISSING)
    from nnunetv2.run.load_pretrained_weights import load_pretrained_weights
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from planessl.config import PretrainConfig, load_config
    from planessl.engine import load_weights
    from planessl.pretraining import run_pretraining, sample_spec

    plans = _plan_small(raw_dataset.folder.parent, tmp_path / "preprocessed")
    conf = PlansManager(str(plans)).get_configuration("2d")
    network = f"nnunet:{plans}"
    cfg = load_config(PretrainConfig, overrides=[
        f"model.network={network}", "data.batch_size=2", "trainer.max_steps=2",
        "trainer.max_epochs=-1", "trainer.progress_bar=false", "trainer.threads=1",
        "data.val_fraction=0.34", "optim.lr=0.01"])
    # The input grid comes from the plans: patch size and in-plane spacing, z-score unclipped.
    spec = sample_spec(cfg)
    assert spec.image_size == max(conf.patch_size)
    assert spec.spacing_mm == pytest.approx(float(np.mean(conf.spacing)))
    assert spec.clip_percentiles == (0.0, 100.0)

    module = run_pretraining(cfg, labelled_cache, tmp_path / "run", quiet=True)
    backbone = module.backbone
    # The backbone is the class nnU-Net builds, with its arguments and channel counts.
    reference = get_network_from_plans(conf.network_arch_class_name, conf.network_arch_init_kwargs,
                                       conf.network_arch_init_kwargs_req_import, 1,
                                       len(raw_dataset.labels), deep_supervision=True)
    assert backbone.network_class.endswith(type(reference).__name__)
    own = {f"{k}": v for k, v in backbone.state_dict().items()}
    assert {k: v.shape for k, v in own.items()} == {k: v.shape for k, v in reference.state_dict().items()}
    # The decoder features are what nnU-Net's final segmentation layer sees.
    x = torch.randn(1, 1, *conf.patch_size)
    with torch.no_grad():
        dec, enc = backbone.eval()(x)
        reference.load_state_dict(backbone.state_dict())
        reference.decoder.deep_supervision = False
        torch.testing.assert_close(reference.decoder.seg_layers[-1](dec), reference(x))
    assert dec.shape[-2:] == x.shape[-2:] and len(enc) == len(conf.network_arch_init_kwargs["strides"])

    out = tmp_path / "pretrained.pth"
    assert main(["export", str(tmp_path / "run"), "--nnunet", str(out)]) == 0
    saved = torch.load(out, weights_only=True)
    assert set(saved) == {"network_weights"}
    assert not any(".seg_layers." in k for k in saved["network_weights"])

    # nnU-Net's own loading function, into a fresh network built from the plans.
    fresh = get_network_from_plans(conf.network_arch_class_name, conf.network_arch_init_kwargs,
                                   conf.network_arch_init_kwargs_req_import, 1,
                                   len(raw_dataset.labels), deep_supervision=True)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    load_pretrained_weights(fresh, str(out))
    trained = module.backbone.state_dict()
    weights = load_weights(tmp_path / "run" / "weights.safetensors")
    checked = 0
    for key, value in fresh.state_dict().items():
        if ".seg_layers." in key:
            assert torch.equal(value, before[key]), key  # left to nnU-Net
            continue
        assert torch.equal(value, trained[key]), key  # every other weight is planessl's
        checked += 1
    assert checked == len(saved["network_weights"]) > 20
    # The weights file holds those values, and loading replaced the fresh initialisation.
    first_conv = "encoder.stages.0.0.convs.0.conv.weight"
    assert torch.equal(weights[first_conv], fresh.state_dict()[first_conv])
    assert not torch.equal(before[first_conv], fresh.state_dict()[first_conv])


def test_residual_encoder_unet_backbone_features_are_what_its_seg_layer_sees():
    """The residual-encoder presets' class works as a backbone too (small arguments)."""
    pytest.importorskip("nnunetv2", reason=NNUNET_MISSING)
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    from planessl.nnunet.network import NnUNetBackbone

    kwargs = {"n_stages": 4, "features_per_stage": [4, 8, 16, 32],
              "conv_op": "torch.nn.modules.conv.Conv2d", "kernel_sizes": [[3, 3]] * 4,
              "strides": [[1, 1], [2, 2], [2, 2], [2, 2]], "n_blocks_per_stage": [1, 2, 2, 2],
              "n_conv_per_stage_decoder": [1, 1, 1], "conv_bias": True,
              "norm_op": "torch.nn.modules.instancenorm.InstanceNorm2d",
              "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None,
              "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
              "nonlin_kwargs": {"inplace": True}}
    net = get_network_from_plans("dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
                                 kwargs, ["conv_op", "norm_op", "dropout_op", "nonlin"], 1, 3,
                                 deep_supervision=False)
    backbone = NnUNetBackbone(net).eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        dec, enc = backbone(x)
        torch.testing.assert_close(net.decoder.seg_layers[-1](dec), net(x))
    assert dec.shape == (2, backbone.out_channels, 32, 32) == (2, 4, 32, 32)
    assert [e.shape[1] for e in enc] == [4, 8, 16, 32] and backbone.deep_channels == 32
    assert not any(p.requires_grad for p in net.decoder.seg_layers.parameters())


def test_planessl_finetune_refuses_nnunet_networks():
    from planessl.finetune import FinetuneConfig, features_of, inherit_from_pretrain

    with pytest.raises(PlaneSSLError, match="fine-tune it in nnU-Net"):
        inherit_from_pretrain(FinetuneConfig(), {"model": {"network": "nnunet:/p.json:2d"}}, [])
    cfg = FinetuneConfig()
    cfg.model.network = "nnunet:/p.json:2d"
    with pytest.raises(PlaneSSLError, match="fine-tune nnU-Net networks in nnU-Net"):
        features_of(cfg)
    inherit_from_pretrain(FinetuneConfig(), {"model": {"network": "unet", "preset": "tiny"}}, [])
