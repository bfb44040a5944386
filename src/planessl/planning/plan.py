"""``planessl plan``: propose the target views' planes from lines on input images.

Steps: open the study (a cache study, or a DICOM / NIfTI folder read as ``planessl ingest``
would); choose the input images (the localizer series, views ``loc_*``, else the views the
user names: one image per slice, the ED frame where known, else frame 0); get each target
view's line on every input image, from a line model or (``oracle``) from the acquired target
plane; lift the lines into 3D and fit each target plane (:mod:`planessl.planning.fit`), each
line weighted by how far that model's lines of that kind lie from the truth where the model
has a calibration (:mod:`planessl.planning.calibration`); compare with the acquired plane
when the study holds that view (a stack: its middle slice).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from planessl.errors import PlaneSSLError
from planessl.geometry import (DEFAULT_PARALLEL_TOLERANCE_DEG, Plane, intersection_line,
                               plane_angle_deg)
from planessl.planning.fit import (DEFAULT_MAX_RESIDUAL_RMS_MM, DEFAULT_MIN_SPREAD_MM,
                                   DEFAULT_OUTLIER_RMS_MM, Line3D, PlaneFit, fit_plane_robust,
                                   lift_line, line_in_pixels, plane_errors)
from planessl.study import Series, Study, mid_slice_index

if TYPE_CHECKING:
    from planessl.planning.calibration import LineCalibration

#: View types of localizer series (written by the phantom's localizers).
LOCALIZER_PREFIX = "loc_"
#: Target views planned by default with ``--oracle`` (those the study holds).
TARGET_VIEWS = ("2ch", "3ch", "4ch", "sax")


@dataclass(eq=False)
class InputImage:
    """One input image: a slice of an input series at one frame."""

    name: str
    series: str
    view: str
    slice: int
    frame: int
    plane: Plane
    pixels: np.ndarray


@dataclass
class LineRecord:
    """A target's line on one input image (``abc`` in that image's pixel indices)."""

    image: str
    abc: tuple[float, float, float] | None
    reason: str | None = None
    peak: float | None = None
    line3d: Line3D | None = None

    def to_dict(self) -> dict:
        out = {"image": self.image, "ok": self.abc is not None, "reason": self.reason,
               "line": None if self.abc is None else [float(v) for v in self.abc]}
        if self.peak is not None:
            out["peak"] = float(self.peak)
        return out


@dataclass
class TargetResult:
    """The proposed plane of one target view and its comparison with the acquired one."""

    view: str
    fit: PlaneFit
    lines: list[LineRecord]
    acquired_series: str | None = None
    acquired_plane: Plane | None = None
    angle_deg: float | None = None
    distance_mm: float | None = None
    weighting: str = "equal"
    acquired_name: str | None = None

    @property
    def label(self) -> str:
        """The target as the report names it: ``3ch (LVOT)`` where the acquired series was
        named so (:func:`name_label`), else the view type."""
        return f"{self.view} ({self.acquired_name})" if self.acquired_name else self.view

    def to_dict(self) -> dict:
        out = {"view": self.view, **self.fit.to_dict(), "line_weights": self.weighting,
               "lines": [r.to_dict() for r in self.lines], "acquired": None}
        acq = self.acquired_plane
        if acq is not None:
            out["acquired"] = {"series": self.acquired_series, "name_says": self.acquired_name,
                               "angle_deg": self.angle_deg,
                               "distance_mm": self.distance_mm,
                               "ImagePositionPatient": [float(x) for x in acq.origin],
                               "ImageOrientationPatient": [float(x) for x in acq.row_dir]
                               + [float(x) for x in acq.col_dir]}
        return out


@dataclass
class PlanResult:
    """Everything ``planessl plan`` reports."""

    study: str
    source: str
    lines_from: str
    inputs: list[dict]
    inputs_reason: str
    targets: list[TargetResult] = field(default_factory=list)
    images: list[InputImage] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"study": self.study, "source": self.source, "lines_from": self.lines_from,
                "inputs": self.inputs, "inputs_reason": self.inputs_reason,
                "targets": {t.view: t.to_dict() for t in self.targets}}


# ----------------------------------------------------------------------------- the study
def _report_skipped(skipped, echo: Callable[[str], None] | None) -> None:
    """One line per file left out of a study read from source (files that are no image of
    the format, e.g. a README beside DICOM files, in one line)."""
    if echo is None:
        return
    others = [sk.path for sk in skipped if not sk.cached and sk.reason == "not a DICOM file"]
    for sk in skipped:
        if not sk.cached and sk.reason != "not a DICOM file":
            echo(f"planessl: skipped {sk.path}: {sk.reason}")
    if others:
        more = f" (and {len(others) - 1} more)" if len(others) > 1 else ""
        echo(f"planessl: skipped {others[0]}{more}: not a DICOM file")


def open_study(path: str | Path, study_id: str | None = None,
               echo: Callable[[str], None] | None = None) -> tuple[Study, str]:
    """``(study, description)`` of a cache (``study_id``, or its only study) or of a source
    file/folder holding one study (any format ``planessl ingest`` reads). Files of a source
    that cannot be used (damaged, truncated) are left out, each reported on one line through
    ``echo`` (e.g. a slice of the SAX localizer: the study is planned without it)."""
    from planessl.cache import MANIFEST, Cache

    p = Path(path)
    if not p.exists():
        raise PlaneSSLError(f"{p}: no such file or folder")
    if p.is_dir() and (p / MANIFEST).is_file():
        cache = Cache(p)
        if study_id is None:
            if len(cache) != 1:
                raise PlaneSSLError(f"{p}: the cache holds {len(cache)} studies; choose one with "
                                    f"--study ID (e.g. {', '.join(cache.ids[:3])})")
            study_id = cache.ids[0]
        elif study_id not in set(cache.ids):
            raise PlaneSSLError(f"{p}: no study {study_id!r} in the cache")
        return cache.load(study_id), f"cache {p}, study {study_id}"
    if study_id is not None:
        raise PlaneSSLError(f"--study selects a study of a cache; {p} is not a cache")
    from planessl.ingest import FORMATS, detect_format
    from planessl.io.sources import opaque_id

    fmt = detect_format(p)
    sources, skipped = FORMATS[fmt].discover_fn()([p], workers=1, progress=False)
    if not sources:
        why = "; ".join(f"{s.path}: {s.reason}" for s in skipped[:3])
        raise PlaneSSLError(f"{p}: no study found (read as {fmt})" + (f": {why}" if why else ""))
    if len(sources) > 1:
        raise PlaneSSLError(f"{p}: holds {len(sources)} studies (read as {fmt}); give the folder "
                            f"of one study, or ingest them and use --study")
    src = sources[0]
    found = skipped
    skipped = []
    study = FORMATS[fmt].load_fn()(src, opaque_id(src.key), skipped=skipped)
    if not study.series:
        why = "; ".join(f"{s.path}: {s.reason}" for s in skipped[:3])
        raise PlaneSSLError(f"{p}: no usable series (read as {fmt})" + (f": {why}" if why else ""))
    _report_skipped(found + skipped, echo)
    return study, f"{fmt} {'folder' if p.is_dir() else 'file'} {p}"


def choose_inputs(study: Study, inputs: Sequence[str] | None = None
                  ) -> tuple[list[Series], str]:
    """The input series and why: ``inputs`` (view types or series names) when given, else
    the localizer series (views ``loc_*``)."""
    views = sorted({s.view for s in study.series})
    if inputs:
        wanted = set(inputs)
        chosen = [s for s in study.series if s.view in wanted or s.name in wanted]
        found = {s.view for s in chosen} | {s.name for s in chosen}
        missing = [v for v in inputs if v not in found]
        if missing:
            raise PlaneSSLError(f"--inputs {','.join(missing)}: no such view or series in the "
                                f"study (views: {', '.join(views)})")
        how = f"--inputs {','.join(inputs)}"
    else:
        chosen = [s for s in study.series if s.view.startswith(LOCALIZER_PREFIX)]
        if not chosen:
            raise PlaneSSLError(f"the study has no localizer series (views {LOCALIZER_PREFIX}*); "
                                f"name the input views with --inputs (views here: "
                                f"{', '.join(views)})")
        how = f"localizer series (views {LOCALIZER_PREFIX}*)"
    nominal = [s.name for s in chosen if not s.spacing_known]
    if nominal:
        raise PlaneSSLError(f"series {', '.join(nominal)} carry no geometry (no pixel spacing): "
                            f"they cannot be used for planning")
    return chosen, how


def input_images(series: Sequence[Series]) -> list[InputImage]:
    """One image per slice of each series: the ED frame where known, else frame 0."""
    out = []
    for s in series:
        frame = s.ed_frame if s.ed_frame is not None and s.ed_frame < s.n_frames else 0
        for k in range(s.n_slices):
            name = s.name if s.n_slices == 1 else f"{s.name}[{k}]"
            out.append(InputImage(name, s.name, s.view, k, frame, s.planes[k],
                                  np.asarray(s.pixels[k, frame], dtype=np.float32)))
    return out


def acquired_series(study: Study, view: str, exclude: Sequence[str] = ()) -> Series | None:
    """The acquired series of a target view: the first series of that view not among
    ``exclude`` (series names) with a known spacing."""
    for s in study.series:
        if s.view == view and s.name not in exclude and s.spacing_known:
            return s
    return None


def acquired_plane(study: Study, view: str,
                   exclude: Sequence[str] = ()) -> tuple[str, Plane] | None:
    """The acquired plane of a target view (:func:`acquired_series`); for a stack its middle
    slice (:func:`mid_slice_index`, the slice a ``task.stack_line=mid`` model is trained to
    plan)."""
    s = acquired_series(study, view, exclude)
    return None if s is None else (s.name, s.planes[mid_slice_index(s.planes)])


_NAME_SAYS = re.compile(r"name says '([^']+)'")


def name_label(series: Series) -> str | None:
    """The word of the series' name that gave its view, upper case, where it is not just the
    view type written out (``LVOT`` for a 3CH cine named ``TF Cine Retro_iPAT LVOT``, ``SAO``,
    ``4C``; ``None`` for ``3ch``/``3-ch``, or when geometry overruled the name). The cache
    keeps no series name; the word is read from the series' ``view_reason``."""
    from planessl.io.views import view_from_name

    m = _NAME_SAYS.search(series.view_reason or "")
    if m is None:
        return None
    word = m.group(1)
    if view_from_name(word)[0] != series.view:
        return None
    if re.sub(r"[^a-z0-9]", "", word.lower()) == re.sub(r"[^a-z0-9]", "", series.view):
        return None
    return word.upper()


# ----------------------------------------------------------------------------- lines
def _lift_record(img: InputImage, abc, peak: float | None = None) -> LineRecord:
    line = lift_line(img.plane, abc, source=img.name)
    if line is None:
        return LineRecord(img.name, None, "the line misses the image", peak)
    return LineRecord(img.name, tuple(float(v) for v in abc), None, peak, line)


def oracle_lines(images: Sequence[InputImage], target: Plane,
                 tolerance_deg: float = DEFAULT_PARALLEL_TOLERANCE_DEG) -> list[LineRecord]:
    """The true lines of an acquired target plane on each input image."""
    out = []
    for img in images:
        line = intersection_line(img.plane, target, tolerance_deg)
        if line is None:
            out.append(LineRecord(img.name, None, "image parallel to the target (%.2f deg)"
                                  % plane_angle_deg(img.plane, target)))
        else:
            out.append(_lift_record(img, (line.a, line.b, line.c)))
    return out


def model_lines(images: Sequence[InputImage], model, min_peak: float | None = None,
                tta: bool = True) -> dict[str, list[LineRecord]]:
    """Each model channel's lines on each input image (``{view: records}``), in the input
    images' own pixel indices (fitted on the network's grid, then mapped back). ``tta``:
    average the heatmaps of each image's rotated / mirrored views
    (:data:`planessl.planning.model.TTA_VIEWS`) before fitting the line."""
    from planessl.planning.model import DEFAULT_MIN_PEAK, TTA_VIEWS, heatmap_line

    pairs = [(img.pixels, img.plane) for img in images]
    heat = model.heatmaps(pairs, tta=TTA_VIEWS) if tta else model.heatmaps(pairs)
    out: dict[str, list[LineRecord]] = {v: [] for v in model.channels}
    for img, (maps, grid) in zip(images, heat):
        for c, view in enumerate(model.channels):
            hl = heatmap_line(maps[c], grid.spacing,
                              min_peak=DEFAULT_MIN_PEAK if min_peak is None else min_peak)
            if hl.abc is None:
                out[view].append(LineRecord(img.name, None, hl.reason, hl.peak))
                continue
            on_grid = lift_line(grid, hl.abc)
            if on_grid is None:
                out[view].append(LineRecord(img.name, None, "the line misses the image", hl.peak))
                continue
            out[view].append(_lift_record(img, line_in_pixels(on_grid, img.plane), hl.peak))
    return out


# ----------------------------------------------------------------------------- weights
#: ``plan(line_weights=...)``: ``auto`` weighs lines by the model's calibration where it has
#: one for every input view, else equally; ``equal``; ``calibrated`` (refuse without one).
LINE_WEIGHTS = ("auto", "equal", "calibrated")


def weigh_lines(records: Sequence[LineRecord], target: str, images: Sequence[InputImage],
                calibration: LineCalibration | None = None, line_weights: str = "auto",
                balance_series: bool = False) -> tuple[list[Line3D], str]:
    """The 3D lines of ``records`` with their fit weights, and how they were weighed.

    With a :class:`~planessl.planning.calibration.LineCalibration` (``line_weights`` ``auto``
    or ``calibrated``), a line on an image of input view ``v`` weighs ``1 / sigma(target, v)^2``
    (the inverse-variance fit); ``auto`` falls back to equal weights when the calibration
    lacks a view that gave lines. ``balance_series``: each input series counts once (its lines
    share its weight), since the lines of one series tend to err together."""
    if line_weights not in LINE_WEIGHTS:
        raise PlaneSSLError(f"line weights must be one of {', '.join(LINE_WEIGHTS)}, "
                            f"got {line_weights!r}")
    by_name = {img.name: img for img in images}
    lines = [r.line3d for r in records if r.line3d is not None]
    weights = [1.0] * len(lines)
    how = "equal"
    if line_weights != "equal":
        if calibration is None:
            if line_weights == "calibrated":
                raise PlaneSSLError("line weights `calibrated` need a model with a line "
                                    "calibration (`planessl plan-calibrate`)")
        else:
            views = sorted({by_name[ln.source].view for ln in lines})
            w = {v: calibration.weight(target, v) for v in views}
            missing = [v for v, x in w.items() if x is None]
            if missing and line_weights == "calibrated":
                raise PlaneSSLError(f"the model's line calibration has no {target} lines on "
                                    f"{', '.join(missing)} images")
            if missing:
                how = f"equal (the calibration has no {target} lines on {', '.join(missing)})"
            elif views:
                weights = [w[by_name[ln.source].view] for ln in lines]
                how = "1/sigma^2 (" + ", ".join(
                    f"{v} {calibration.sigma_mm[target][v]:.1f} mm" for v in views) + ")"
    if balance_series and lines:
        count: dict[str, int] = {}
        for ln in lines:
            count[by_name[ln.source].series] = count.get(by_name[ln.source].series, 0) + 1
        weights = [x / count[by_name[ln.source].series] for x, ln in zip(weights, lines)]
        how += ", each series once"
    return [replace(ln, weight=x) for ln, x in zip(lines, weights)], how


# ----------------------------------------------------------------------------- planning
#: a fitted plane must be backed by at least this share of the input series it cuts, a series
#: backing it when this share of its images that the plane cuts gave a line that was kept
DEFAULT_MIN_SUPPORT = 0.5


def support_check(fit: PlaneFit, images: Sequence[InputImage], min_support: float,
                  tolerance_deg: float = DEFAULT_PARALLEL_TOLERANCE_DEG) -> None:
    """Refuse (``fit.ok = False`` with a reason) a fitted plane that too few of the input
    series it cuts back: a series backs the plane when at least ``min_support`` of its
    images that the plane crosses gave a line that the fit kept, and at least
    ``min_support`` of the series the plane crosses must back it. A plane fitted to 3 lines
    of a 12-slice SAX stack, the others dropped as outliers or never found, is a guess, not a
    plan; a localizer series that the plane crosses without a line (e.g. the SAX localizer
    for a SAX target, nearly parallel to it) is outvoted by the long-axis localizers."""
    if not fit.ok or fit.plane is None or min_support <= 0:
        return
    kept = set(fit.sources)
    crossed: dict[str, list[str]] = {}
    for img, rec in zip(images, oracle_lines(images, fit.plane, tolerance_deg)):
        if rec.line3d is not None:
            crossed.setdefault(img.series, []).append(img.name)
    backing = [name for name, imgs in crossed.items()
               if sum(i in kept for i in imgs) >= min_support * len(imgs)]
    if crossed and len(backing) < min_support * len(crossed):
        detail = "; ".join(f"{name}: {sum(i in kept for i in imgs)} of {len(imgs)}"
                           for name, imgs in crossed.items())
        fit.ok = False
        fit.reason = (f"the lines disagree: the fitted plane crosses {len(crossed)} input "
                      f"series, {len(backing)} back it with lines on at least "
                      f"{min_support:.0%} of the images it crosses ({detail})")


def plan(study: Study, source: str, inputs: Sequence[str] | None = None,
         model=None, oracle: bool = False, targets: Sequence[str] | None = None,
         min_spread_mm: float = DEFAULT_MIN_SPREAD_MM,
         max_residual_rms_mm: float | None = DEFAULT_MAX_RESIDUAL_RMS_MM,
         min_peak: float | None = None,
         outlier_rms_mm: float | None = DEFAULT_OUTLIER_RMS_MM,
         tta: bool = True,
         tolerance_deg: float = DEFAULT_PARALLEL_TOLERANCE_DEG,
         min_support: float = DEFAULT_MIN_SUPPORT,
         line_weights: str = "auto", balance_series: bool = False) -> PlanResult:
    """Propose each target view's plane (see the module).

    Args:
        study, source: the study and a description of where it came from.
        inputs: input view types or series names (default: the localizer series).
        model: a :class:`planessl.planning.model.LineModel` (required unless ``oracle``).
        oracle: use the true lines of the acquired target planes.
        targets: target views (default: the model's channels; with ``oracle`` the views of
            :data:`TARGET_VIEWS` that the study holds beside the inputs).
        min_spread_mm, max_residual_rms_mm: see :func:`planessl.planning.fit.fit_plane`.
        min_peak: heatmap peak below which a channel holds no line (model).
        outlier_rms_mm: drop outlier lines while the residual exceeds this (rms, mm; ``None``
            or 0: keep all); see :func:`planessl.planning.fit.fit_plane_robust`.
        tta: test-time augmentation of the model (see :func:`model_lines`).
        min_support: refuse a plane that too few of the input series it crosses back
            (:func:`support_check`; 0: off).
        line_weights, balance_series: the lines' weights in the fit (:func:`weigh_lines`;
            the calibration is the model's ``calibration``; the oracle's lines weigh equally).
    """
    if not oracle and model is None:
        raise PlaneSSLError("give a line model (--model RUN) or --oracle")
    series, how = choose_inputs(study, inputs)
    images = input_images(series)
    in_names = [s.name for s in series]
    in_views = {s.view for s in series}
    if targets:
        views = list(dict.fromkeys(targets))
        if not oracle:
            unknown = [v for v in views if v not in model.channels]
            if unknown:
                raise PlaneSSLError(f"the model predicts no {', '.join(unknown)} lines (its "
                                    f"channels: {', '.join(model.channels)})")
    elif oracle:
        present = {s.view for s in study.series if s.name not in in_names}
        views = [v for v in TARGET_VIEWS if v in present and v not in in_views]
        if not views:
            raise PlaneSSLError(f"--oracle: the study holds none of the target views "
                                f"({', '.join(TARGET_VIEWS)}) beside the inputs")
    else:
        views = [v for v in model.channels if v not in in_views]
    result = PlanResult(
        study=study.id, source=source,
        lines_from="oracle (true lines of the acquired target planes)" if oracle
        else f"model {getattr(model, 'name', model.run)}",
        inputs=[{"series": s.name, "view": s.view, "slices": s.n_slices,
                 "frame": images[[i.series for i in images].index(s.name)].frame}
                for s in series],
        inputs_reason=how, images=images)
    predicted = None if oracle else model_lines(images, model, min_peak, tta)
    reference = images[0].plane
    for view in views:
        acq = acquired_plane(study, view, exclude=in_names)
        acq_series = acquired_series(study, view, exclude=in_names)
        acq_name = None if acq_series is None else name_label(acq_series)
        if oracle:
            if acq is None:
                records = []
                fit = PlaneFit(ok=False, reason=f"the study holds no acquired {view} plane "
                                                f"(the oracle needs one)")
                result.targets.append(TargetResult(view, fit, records))
                continue
            records = oracle_lines(images, acq[1], tolerance_deg)
        else:
            records = predicted[view]
        lines, weighting = weigh_lines(
            records, view, images, None if oracle else getattr(model, "calibration", None),
            "equal" if oracle else line_weights, balance_series)
        fit = fit_plane_robust(lines, reference=reference,
                               min_spread_mm=min_spread_mm,
                               max_residual_rms_mm=max_residual_rms_mm,
                               outlier_rms_mm=outlier_rms_mm)
        support_check(fit, images, min_support, tolerance_deg)
        if not fit.ok and fit.n_lines < 2:
            why = sorted({r.reason for r in records if r.reason})
            if why:
                fit.reason += " (other images: " + "; ".join(why[:3]) + ")"
        res = TargetResult(view, fit, records, weighting=weighting, acquired_name=acq_name)
        if acq is not None:
            res.acquired_series, res.acquired_plane = acq
            if fit.ok:
                res.angle_deg, res.distance_mm = plane_errors(fit, acq[1])
        result.targets.append(res)
    return result


# ----------------------------------------------------------------------------- output
def _vec(v: Sequence[float]) -> str:
    return "\\".join(f"{x:.6g}" for x in v)


def _dropped_lines(fit: PlaneFit) -> list[str]:
    """Report lines of the outlier lines a fit dropped."""
    return [f"  dropped the line on {name} as an outlier ({r:.1f} mm rms from the plane)"
            for name, r in zip(fit.dropped, fit.dropped_residual_mm)]


def format_result(result: PlanResult) -> str:
    """The text report of ``planessl plan``."""
    out = [f"study {result.study} ({result.source})",
           f"inputs ({result.inputs_reason}): " + ", ".join(
               f"{d['series']} (view {d['view']}, {d['slices']} slice"
               f"{'s' if d['slices'] != 1 else ''}, frame {d['frame']})" for d in result.inputs),
           f"lines: {result.lines_from}"]
    for t in result.targets:
        out.append("")
        n_img = len(t.lines)
        if not t.fit.ok:
            out.append(f"{t.label}: not planned: {t.fit.reason}")
            out += _dropped_lines(t.fit)
            if t.acquired_plane is not None:
                out.append(f"  (acquired {t.label}: series {t.acquired_series})")
            continue
        f = t.fit
        out.append(f"{t.label}: plane fitted to {f.n_lines} of {n_img} lines (residual "
                   f"{f.residual_rms_mm:.3f} mm rms, max {f.max_residual_mm:.3f} mm; spread "
                   f"{f.spread_mm:.1f} mm; largest angle between lines "
                   f"{f.max_line_angle_deg:.1f} deg)")
        out.append(f"  line weights: {t.weighting}")
        out += _dropped_lines(f)
        out.append(f"  ImagePositionPatient    {_vec(f.image_position)}")
        out.append(f"  ImageOrientationPatient {_vec(f.image_orientation)}")
        out.append(f"  (centre {_vec(f.centre)}; normal {_vec(f.normal)}; "
                   f"{f.plane.shape[0]} x {f.plane.shape[1]} px of "
                   f"{f.plane.spacing[0]:.4g} x {f.plane.spacing[1]:.4g} mm)")
        if t.acquired_plane is not None:
            out.append(f"  vs acquired {t.label} (series {t.acquired_series}): angle "
                       f"{t.angle_deg:.3f} deg, distance {t.distance_mm:.3f} mm")
        else:
            out.append(f"  (the study holds no acquired {t.view} plane to compare with)")
        skipped = [r for r in t.lines if r.abc is None]
        if skipped:
            why = {}
            for r in skipped:
                why.setdefault(r.reason, []).append(r.image)
            for reason, names in why.items():
                out.append(f"  no line on {', '.join(names)}: {reason}")
    return "\n".join(out)


def plot_plan(result: PlanResult, out: str | Path, max_panels: int = 30) -> None:
    """PNG: each input image with each target's proposed line (solid), the line used for the
    fit (dotted) and the acquired plane's line (dashed)."""
    from planessl.linereport import describe_line
    from planessl.plotting import _pyplot, draw_image, save_figure

    plt = _pyplot()
    images = result.images[:max_panels]
    n = max(1, len(images))
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    colors = plt.get_cmap("tab10").colors
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.5 * rows + 0.7), squeeze=False)
    for k, img in enumerate(images):
        ax = axes[k // cols][k % cols]
        draw_image(ax, img.pixels, img.plane)
        for t_idx, t in enumerate(result.targets):
            color = colors[t_idx % len(colors)]
            rec = next((r for r in t.lines if r.image == img.name), None)
            if rec is not None and rec.line3d is not None:
                (i0, j0, _), (i1, j1, _) = (img.plane.world_to_pixel(e)
                                            for e in rec.line3d.segment)
                ax.plot([j0, j1], [i0, i1], color=color, linewidth=1.0, linestyle=":")
            proposed = t.fit.plane if t.fit.ok else None
            for plane, style, width in ((proposed, "-", 1.6), (t.acquired_plane, "--", 1.0)):
                if plane is None:
                    continue
                rep = describe_line(img.plane, plane)
                if rep.endpoints is not None:
                    (i0, j0), (i1, j1) = rep.endpoints
                    ax.plot([j0, j1], [i0, i1], color=color, linewidth=width, linestyle=style)
        ax.set_title(img.name, fontsize=8)
    for k in range(len(images), rows * cols):
        axes[k // cols][k % cols].axis("off")
    handles = [plt.Line2D([], [], color=colors[k % len(colors)], linewidth=2,
                          label=t.label + ("" if t.fit.ok else " (not planned)"))
               for k, t in enumerate(result.targets)]
    styles = (("-", "proposed plane"), (":", "line used"), ("--", "acquired plane"))
    handles += [plt.Line2D([], [], color="0.35", linestyle=s, label=lab) for s, lab in styles]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 7), fontsize=7,
               frameon=False)
    extra = ("" if len(result.images) <= max_panels
             else f" (first {max_panels} of {len(result.images)} images)")
    fig.suptitle(f"plan: {result.lines_from}{extra}", fontsize=9)
    fig.tight_layout(rect=(0, 0.6 / (3.5 * rows + 0.7), 1, 0.97), h_pad=1.6)
    save_figure(fig, out)
