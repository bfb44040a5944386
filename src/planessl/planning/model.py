"""A pretrained line model (``planessl pretrain --task lines`` or ``multitask``) as a line
predictor: heatmaps on the training grid, one line per channel.

The run folder gives the configuration (``config.yaml``: line channels, grid size, spacing,
intensity clipping) and the weights (``weights.safetensors``, else the Lightning checkpoint
``checkpoints/last.ckpt``). An image is put on the network's grid exactly as in training
without augmentation (:func:`planessl.data.transforms.input_plane`,
:func:`~planessl.data.transforms.resample_to_plane`,
:func:`~planessl.data.transforms.normalise_intensity`); a line is fitted to each channel's
ridge by :func:`planessl.evaluation.lines.fit_line`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from planessl.errors import PlaneSSLError
from planessl.geometry import Plane

#: The planning model shipped with the package (``weights.safetensors`` + ``config.yaml``): a
#: small ``lines`` model trained on phantom exams by ``benchmarks/plan_phantom.py --export``
#: (the best on its validation split of the benchmark's final models: inputs the localizers
#: ``loc_2ch``, ``loc_4ch``, ``loc_sax`` or SAX cine slices as well, trained for longer or on
#: more exams; channels 2CH, 3CH, 4CH and the mid-ventricular SAX slice; its ``config.yaml``
#: says which). ``planessl plan`` uses it
#: without ``--model``.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"
#: How reports name the shipped model.
DEFAULT_MODEL_NAME = "the shipped phantom-trained planning model"

#: A channel whose heatmap peaks below this holds no line (the targets peak at 1).
DEFAULT_MIN_PEAK = 0.5
#: Ridge pixels (>= threshold x peak) must be at least this many times longer than wide.
DEFAULT_MIN_ELONGATION = 3.0
#: Test-time augmentation of :meth:`LineModel.heatmaps`: ``(in-plane rotation in degrees,
#: left-right mirror)`` of each extra view of an image (within the training augmentation's
#: range); the heatmaps are mapped back onto the image's grid and averaged.
TTA_VIEWS = ((0.0, False), (0.0, True), (10.0, False), (-10.0, False),
             (10.0, True), (-10.0, True))


@dataclass(frozen=True)
class HeatmapLine:
    """A line fitted to one heatmap channel, or why there is none.

    Attributes:
        abc: ``(a, b, c)`` of ``a*i + b*j + c = 0`` in the grid's pixel indices, or ``None``.
        reason: why there is no line (``None`` when there is one).
        peak: the channel's maximum.
        elongation: length / width (rms) of the ridge pixels.
    """

    abc: tuple[float, float, float] | None
    reason: str | None
    peak: float
    elongation: float | None = None


def heatmap_line(heat: np.ndarray, spacing: tuple[float, float], threshold: float = 0.5,
                 min_peak: float = DEFAULT_MIN_PEAK,
                 min_elongation: float = DEFAULT_MIN_ELONGATION) -> HeatmapLine:
    """The line of one heatmap channel (see the module), refusing flat or blob-like maps."""
    from planessl.evaluation.lines import fit_line

    h = np.asarray(heat, dtype=np.float64)
    peak = float(h.max()) if h.size else 0.0
    if not np.isfinite(peak) or peak < min_peak:
        return HeatmapLine(None, f"no ridge (peak {peak:.2f} < {min_peak:g})", peak)
    ii, jj = np.nonzero(h >= threshold * peak)
    if len(ii) < 3:
        return HeatmapLine(None, "ridge of fewer than 3 pixels", peak)
    w = h[ii, jj]
    pts = np.stack([ii * spacing[0], jj * spacing[1]], axis=1)
    d = pts - (w[:, None] * pts).sum(0) / w.sum()
    cov = (w[:, None, None] * d[:, :, None] * d[:, None, :]).sum(0) / w.sum()
    lo, hi = np.linalg.eigvalsh(cov)
    elongation = float(np.sqrt(hi / max(lo, 1e-12)))
    if elongation < min_elongation:
        return HeatmapLine(None, f"ridge is not a line (length/width {elongation:.1f} "
                                 f"< {min_elongation:g})", peak, elongation)
    abc = fit_line(h, spacing, threshold)
    if abc is None:
        return HeatmapLine(None, "no ridge", peak, elongation)
    return HeatmapLine(abc, None, peak, elongation)


class LineModel:
    """A pretraining run's line heads, ready to predict.

    Attributes:
        channels: view type of each heatmap channel (``task.line_channels``).
        image_size, spacing_mm, clip_percentiles: the input grid of training.
        calibration: the run's :class:`~planessl.planning.calibration.LineCalibration`
            (``line_calibration.json``; ``None`` when it has none): the plane fit's weights.
        run: the run folder; ``name``: how reports name the model (default: the folder).
    """

    def __init__(self, run: str | Path, device: str = "cpu", name: str | None = None) -> None:
        import torch

        from planessl.config import PretrainConfig, _merge
        from planessl.finetune import read_run_config
        from planessl.pretraining import sample_spec
        from planessl.tasks.multitask import PretrainModule, task_weights

        run = Path(run)
        if not run.is_dir():
            raise PlaneSSLError(f"{run}: --model must be a `planessl pretrain` run folder")
        cfg = _merge(PretrainConfig(), read_run_config(run))
        if cfg.task.name not in ("lines", "multitask") or task_weights(cfg)[0] <= 0:
            raise PlaneSSLError(f"{run}: a {cfg.task.name} run has no line heads; planning needs "
                                f"a run of --task lines (or multitask with task.alpha > 0)")
        self.run = run
        self.name = str(run) if name is None else name
        self.channels = [str(c) for c in cfg.task.line_channels]
        spec = sample_spec(cfg)
        self.image_size, self.spacing_mm = spec.image_size, spec.spacing_mm
        self.clip_percentiles = spec.clip_percentiles
        self.input_views = list(spec.input_views)
        module = PretrainModule(cfg)
        state, source = self._weights(run)
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise PlaneSSLError(f"{source}: weights do not match the run's configuration "
                                f"({str(exc).splitlines()[0][:160]})") from None
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()
        self.weights_path = source
        from planessl.planning.calibration import LineCalibration

        self.calibration = LineCalibration.load(run)

    @classmethod
    def default(cls, device: str = "cpu") -> "LineModel":
        """The planning model shipped with the package (:data:`DEFAULT_MODEL_DIR`)."""
        if not (DEFAULT_MODEL_DIR / "config.yaml").is_file():
            raise PlaneSSLError(f"{DEFAULT_MODEL_DIR}: the shipped planning model is missing "
                                f"(reinstall planessl, or give --model RUN)")
        return cls(DEFAULT_MODEL_DIR, device=device,
                   name=f"{DEFAULT_MODEL_NAME} ({DEFAULT_MODEL_DIR})")

    @staticmethod
    def _weights(run: Path) -> tuple[dict, Path]:
        from planessl.engine import WEIGHTS_FILE, load_weights

        path = run / WEIGHTS_FILE
        if path.is_file():
            exported = load_weights(path)  # encoder.*, decoder.*, heads.*
            state = {("backbone." + k if k.startswith(("encoder.", "decoder.")) else k): v
                     for k, v in exported.items()}
            return state, path
        from planessl.engine import CHECKPOINT_DIR, LAST_CHECKPOINT

        ckpt = run / CHECKPOINT_DIR / LAST_CHECKPOINT
        if ckpt.is_file():
            state = load_weights(ckpt)
            return {k: v for k, v in state.items() if k.startswith(("backbone.", "heads."))}, ckpt
        raise PlaneSSLError(f"{run}: no {WEIGHTS_FILE} nor {CHECKPOINT_DIR}/{LAST_CHECKPOINT} "
                            f"(is it a finished `planessl pretrain` run?)")

    def grid(self, plane: Plane) -> Plane:
        """The network's input grid of an image (as in training, without augmentation)."""
        from planessl.data.transforms import input_plane

        return input_plane(plane, self.spacing_mm, self.image_size)

    def heatmaps(self, images: Sequence[tuple[np.ndarray, Plane]], batch_size: int = 16,
                 tta: Sequence[tuple[float, bool]] = ((0.0, False),)
                 ) -> list[tuple[np.ndarray, Plane]]:
        """``(heatmaps (C, H, W), grid plane)`` of each ``(pixels (H, W), plane)``.

        ``tta``: views of each image to predict, ``(in-plane rotation in deg, mirror)``
        (e.g. :data:`TTA_VIEWS`); their heatmaps are resampled back onto the image's grid
        and averaged where they cover it. The default is the image as it is."""
        import torch

        from planessl.data.transforms import normalise_intensity, resample_to_plane

        grids, xs, views = [], [], []
        for pixels, plane in images:
            raw = np.asarray(pixels, dtype=np.float32)
            grid = self.grid(plane)
            grids.append(grid)
            for angle, mirror in tta:
                view = grid.rotate(float(angle)) if angle else grid
                view = view.flip_cols() if mirror else view
                image = resample_to_plane(raw, plane, view, cval=float(raw.min()))
                xs.append(normalise_intensity(image, self.clip_percentiles))
                views.append(view)
        out = []
        with torch.no_grad():
            for k in range(0, len(xs), batch_size):
                x = torch.from_numpy(np.stack(xs[k:k + batch_size])[:, None]).to(self.device)
                out.append(self.module(x)["lines"].float().cpu().numpy())
        heat = np.concatenate(out) if out else np.zeros((0, len(self.channels), 1, 1))
        n = len(tta)
        result = []
        for k, grid in enumerate(grids):
            if n == 1 and views[k] is grid:
                result.append((heat[k], grid))
                continue
            total = np.zeros((len(self.channels), *grid.shape), dtype=np.float64)
            cover = np.zeros(grid.shape, dtype=np.float64)
            for t in range(n):
                view = views[k * n + t]
                ones = np.ones(view.shape, dtype=np.float32)
                w = resample_to_plane(ones, view, grid, antialias=False)
                cover += w
                for c in range(len(self.channels)):
                    total[c] += resample_to_plane(heat[k * n + t, c], view, grid,
                                                  antialias=False)
            result.append(((total / np.maximum(cover, 1e-6)).astype(np.float32), grid))
        return result
