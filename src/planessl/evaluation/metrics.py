"""Segmentation and classification metrics on MONAI.

Segmentation metrics are computed per volume (a SAX stack at one phase), per structure
(:data:`STRUCTURES`: RV, myocardium, LV in the ACDC label convention):

- ``dice``: MONAI ``DiceMetric`` on the whole stack.
- ``hd95``: 95th-percentile symmetric Hausdorff distance (MONAI's definition: the larger of
  the two directed 95th percentiles of boundary-to-boundary distances).
- ``assd``: average symmetric surface distance (mean of both directed distance sets).

Units. With a known voxel spacing ``(slice_step, di, dj)`` in mm the distances are in **mm**,
computed in 3D from MONAI's boundary distances (``get_edge_surface_distance``) with the
definitions of ``HausdorffDistanceMetric(percentile=95)`` and
``SurfaceDistanceMetric(symmetric=True)`` (the tests check equality with those classes). Without a known spacing (e.g. ACDC HDF5) the slice
gap is unknown too, so a 3D distance would mix units; the distances are then in **in-plane
pixels**, computed slice by slice (MONAI ``get_edge_surface_distance``) and pooled over the
stack before taking the percentile / mean; a slice where only one of the two masks holds
the structure adds no distances (its error shows in the Dice). :func:`segmentation_metrics`
says which unit in ``unit`` ("mm" or "px").

Empty masks (documented rule, applied per structure and volume):

- structure absent from both truth and prediction: Dice 1.0, HD95 0.0, ASSD 0.0 (nothing to
  find, nothing predicted: perfect agreement);
- absent from exactly one of them: Dice 0.0, HD95 and ASSD NaN (undefined; a NaN is
  excluded from means and counted in ``n_undefined`` by :func:`summarise`).
"""

from __future__ import annotations

import math
import warnings
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch

#: Structures scored, label value -> name (ACDC convention).
STRUCTURES: dict[int, str] = {1: "RV", 2: "myocardium", 3: "LV"}
METRICS = ("dice", "hd95", "assd")


def _as_bool(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.bool)


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two binary masks of any shape (MONAI ``DiceMetric``; empty rule above)."""
    from monai.metrics import DiceMetric

    p, t = _as_bool(pred), _as_bool(truth)
    if not p.any() and not t.any():
        return 1.0
    metric = DiceMetric(include_background=True, reduction="none", ignore_empty=False)
    return float(metric(p[None, None].float(), t[None, None].float())[0, 0])


def surface_distances(pred: np.ndarray, truth: np.ndarray,
                      spacing: Sequence[float] | None) -> tuple[float, float]:
    """``(hd95, assd)`` of two binary ``(S, H, W)`` masks; mm with ``spacing``, else pixels.

    Args:
        pred, truth: binary masks, slices first.
        spacing: ``(slice_step, di, dj)`` in mm, or ``None`` when unknown (then 2D per slice,
            in-plane pixels, pooled over slices).
    """
    from monai.metrics.utils import get_edge_surface_distance

    p, t = _as_bool(pred), _as_bool(truth)
    if p.shape != t.shape or p.ndim != 3:
        raise ValueError(f"masks must be equal (S, H, W) arrays, got {tuple(p.shape)} and {tuple(t.shape)}")
    has_p, has_t = bool(p.any()), bool(t.any())
    if not has_p and not has_t:
        return 0.0, 0.0
    if has_p != has_t:
        return math.nan, math.nan
    if spacing is not None:
        # One MONAI edge/distance pass gives both metrics, with the definitions of MONAI's
        # HausdorffDistanceMetric(percentile=95) and SurfaceDistanceMetric(symmetric=True)
        # (checked against those classes in the tests); calling both classes would compute
        # the distance transforms twice.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            _, (d_pt, d_tp), _ = get_edge_surface_distance(p, t, spacing=[float(v) for v in spacing],
                                                           symmetric=True, warn_empty=False)
        return _hd95_assd([d_pt.flatten().double()], [d_tp.flatten().double()])
    # Unknown spacing: per-slice 2D distances, pooled per direction over the stack. MONAI has
    # no pooled-over-slices variant, so only the pooling (same definitions as MONAI) is ours.
    p_to_t: list[torch.Tensor] = []
    t_to_p: list[torch.Tensor] = []
    for k in range(p.shape[0]):
        ps, ts = p[k], t[k]
        if not ps.any() or not ts.any():
            # A slice where only one mask has the structure: its boundary pixels have no
            # partner in this slice; the 2D distance is undefined there, so the slice is skipped.
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            _, (d_pt, d_tp), _ = get_edge_surface_distance(ps, ts, spacing=None, symmetric=True,
                                                           warn_empty=False)
        p_to_t.append(d_pt.flatten().double())
        t_to_p.append(d_tp.flatten().double())
    if not p_to_t:
        return math.nan, math.nan
    return _hd95_assd(p_to_t, t_to_p)


def _hd95_assd(p_to_t: list[torch.Tensor], t_to_p: list[torch.Tensor]) -> tuple[float, float]:
    """MONAI's definitions: HD95 = larger of the directed 95th percentiles (linear
    interpolation, ``torch.quantile``); ASSD = mean of both directed distance sets."""
    a, b = torch.cat(p_to_t), torch.cat(t_to_p)
    hd95 = max(float(torch.quantile(a, 0.95)), float(torch.quantile(b, 0.95)))
    assd = float(torch.cat([a, b]).mean())
    return hd95, assd


def segmentation_metrics(pred: np.ndarray, truth: np.ndarray,
                         spacing: Sequence[float] | None = None,
                         structures: Mapping[int, str] = STRUCTURES,
                         distances: bool = True) -> dict:
    """Dice, HD95, ASSD per structure of one label-map volume.

    Args:
        pred, truth: integer label maps ``(S, H, W)`` (a 2D ``(H, W)`` map is one slice).
        spacing: ``(slice_step, di, dj)`` mm, or ``None`` when unknown (distances in pixels).
        structures: label value -> name.
        distances: compute HD95 and ASSD (``False``: NaN, Dice only — much faster).

    Returns:
        ``{"unit": "mm"|"px", "<name>": {"dice", "hd95", "assd"}, ...}``.
    """
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.ndim == 2:
        pred, truth = pred[None], truth[None]
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} != truth shape {truth.shape}")
    out: dict = {"unit": "mm" if spacing is not None else "px"}
    for value, name in structures.items():
        p, t = pred == value, truth == value
        hd, sd = surface_distances(p, t, spacing) if distances else (math.nan, math.nan)
        out[name] = {"dice": dice(p, t), "hd95": hd, "assd": sd}
    return out


def flatten_metrics(result: Mapping) -> dict[str, float]:
    """``{"RV_dice": ..., "RV_hd95": ..., "mean_dice": ...}`` from :func:`segmentation_metrics`."""
    flat: dict[str, float] = {}
    dices = []
    for name in STRUCTURES.values():
        if name not in result:
            continue
        for m in METRICS:
            flat[f"{name}_{m}"] = float(result[name][m])
        dices.append(float(result[name]["dice"]))
    flat["mean_dice"] = float(np.mean(dices)) if dices else math.nan
    return flat


def summarise(rows: Iterable[Mapping[str, float]], keys: Sequence[str]) -> dict[str, dict]:
    """Mean, std (ddof 0), count and NaN count of each key over rows (NaNs excluded)."""
    rows = list(rows)
    out = {}
    for k in keys:
        vals = np.array([float(r[k]) for r in rows if k in r], dtype=float)
        finite = vals[~np.isnan(vals)]
        out[k] = {"mean": float(finite.mean()) if finite.size else math.nan,
                  "std": float(finite.std()) if finite.size else math.nan,
                  "n": int(finite.size), "n_undefined": int(np.isnan(vals).sum())}
    return out


def classification_metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy and ROC AUC (MONAI ``compute_roc_auc``, macro one-vs-rest for > 2 classes).

    Args:
        probs: ``(N, C)`` class probabilities (``C >= 2``).
        labels: ``(N,)`` integer classes.

    AUC is NaN when the labels hold a single class (undefined).
    """
    from monai.metrics import compute_roc_auc

    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels).astype(int)
    if probs.ndim != 2 or probs.shape[0] != labels.shape[0]:
        raise ValueError(f"probs must be (N, C) for N={labels.shape[0]} labels, got {probs.shape}")
    acc = float((probs.argmax(1) == labels).mean()) if labels.size else math.nan
    n_cls = probs.shape[1]
    present = np.unique(labels)
    if present.size < 2:
        auc = math.nan
    elif n_cls == 2:
        auc = float(compute_roc_auc(torch.as_tensor(probs[:, 1]), torch.as_tensor(labels)))
    else:
        # One-vs-rest over the classes present in the labels (AUC of an absent class is undefined).
        onehot = np.eye(n_cls)[labels][:, present]
        auc = float(compute_roc_auc(torch.as_tensor(probs[:, present]), torch.as_tensor(onehot),
                                    average="macro"))
    return {"accuracy": acc, "auc": auc}


def multilabel_metrics(probs: np.ndarray, labels: np.ndarray,
                       names: Sequence[str] | None = None) -> dict:
    """Per-label accuracy (threshold 0.5) and ROC AUC of independent binary labels, and
    their means over the labels (AUC: over the labels whose test set holds both classes).

    Args:
        probs: ``(N, K)`` probabilities of each label being 1.
        labels: ``(N, K)`` 0/1 targets.
        names: the K label names (default ``label0``...).

    Returns:
        ``{"accuracy": mean, "auc": mean, "labels": {name: {"accuracy", "auc", "n_positive"}}}``.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels).astype(int)
    if probs.shape != labels.shape or probs.ndim != 2:
        raise ValueError(f"probs {probs.shape} and labels {labels.shape} must both be (N, K)")
    names = list(names) if names is not None else [f"label{k}" for k in range(probs.shape[1])]
    per = {}
    for k, name in enumerate(names):
        two = np.stack([1 - probs[:, k], probs[:, k]], 1)
        m = classification_metrics(two, labels[:, k])
        per[name] = {**m, "n_positive": int(labels[:, k].sum())}
    aucs = [v["auc"] for v in per.values() if not math.isnan(v["auc"])]
    return {"accuracy": float(np.mean([v["accuracy"] for v in per.values()])),
            "auc": float(np.mean(aucs)) if aucs else math.nan, "labels": per}
