"""How far a line model's lines lie from the true target planes, per (target view, input
view): the weights of the plane fit.

A line model is not equally good on every input: on the phantom's held-out exams, the shipped
model's 2CH line on the 4CH localizer lies a few mm from the true plane, its 2CH lines on the
SAX localizer's slices about three times farther (and they err together, exam by exam). A plain
least-squares fit lets the many SAX lines outvote the one good line. Weighting each line by
``1 / sigma^2``, with ``sigma`` the typical distance (rms over the segment, mm) of that kind of
line from the true plane on studies whose target views were acquired, is the inverse-variance
fit; it needs those studies, so it is measured once per model (``planessl plan-calibrate``)
and kept beside the weights (:data:`CALIBRATION_FILE`).

``sigma`` is robust: ``1.4826 x`` the median distance (a normal error of sd ``sigma`` has median
absolute value ``0.6745 sigma``), so a few lines far off do not set it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from planessl.errors import PlaneSSLError

#: The calibration's file in a run folder (or the shipped model's folder).
CALIBRATION_FILE = "line_calibration.json"
#: ``sigma = MAD_TO_SD x median distance`` (normal errors).
MAD_TO_SD = 1.4826
#: Fewer lines than this of a (target, input view) pair give it no sigma.
MIN_LINES = 5


@dataclass
class LineCalibration:
    """Typical distance (mm, rms over the line's segment in the image) of a model's line from
    the true target plane, per target view and input view.

    Attributes:
        sigma_mm: ``{target view: {input view: sigma (mm)}}``.
        n_lines: ``{target view: {input view: lines measured}}``.
        studies: how many studies were measured; ``source``: where they came from.
    """

    sigma_mm: dict[str, dict[str, float]]
    n_lines: dict[str, dict[str, int]] = field(default_factory=dict)
    studies: int = 0
    source: str = ""

    def weight(self, target: str, input_view: str) -> float | None:
        """``1 / sigma^2`` (1/mm^2) of a line of ``target`` on an ``input_view`` image, or
        ``None`` when the calibration has no sigma for that pair."""
        s = self.sigma_mm.get(target, {}).get(input_view)
        return None if s is None else 1.0 / max(float(s), 1e-3) ** 2

    def to_dict(self) -> dict:
        return {"sigma_mm": self.sigma_mm, "n_lines": self.n_lines, "studies": self.studies,
                "source": self.source, "method": f"sigma = {MAD_TO_SD} x median rms distance "
                                                 f"of the lines from the true target plane"}

    def save(self, folder: str | Path) -> Path:
        """Write :data:`CALIBRATION_FILE` into ``folder`` (temporary name, then rename)."""
        from planessl.runinfo import write_text_atomic

        path = Path(folder) / CALIBRATION_FILE
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> "LineCalibration | None":
        """The calibration in ``folder``, or ``None`` when it has none."""
        path = Path(folder) / CALIBRATION_FILE
        if not path.is_file():
            return None
        try:
            d = json.loads(path.read_text())
            sigma = {str(t): {str(v): float(s) for v, s in by.items()}
                     for t, by in d["sigma_mm"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PlaneSSLError(f"{path}: not a line calibration ({exc})") from None
        bad = [f"{t}/{v}" for t, by in sigma.items() for v, s in by.items()
               if not (math.isfinite(s) and s > 0)]
        if bad:
            raise PlaneSSLError(f"{path}: sigma must be a positive number of mm "
                                f"({', '.join(bad)})")
        return cls(sigma, d.get("n_lines", {}), int(d.get("studies", 0)), str(d.get("source", "")))


def sigma_from_distances(distances: Iterable[float]) -> float:
    """Robust sigma (mm) of line distances from the true plane: ``MAD_TO_SD x median``."""
    d = np.asarray(list(distances), dtype=np.float64)
    if d.size == 0:
        raise ValueError("no distances")
    return float(MAD_TO_SD * np.median(np.abs(d)))


def calibrate(results: Iterable, source: str = "") -> LineCalibration:
    """The calibration measured on planning results (:class:`~planessl.planning.plan.PlanResult`
    of a model on studies that hold the acquired target views; targets without an acquired
    plane are skipped). Each predicted line's distance is its rms distance over its segment
    from the acquired target plane (for a SAX target, the stack's middle slice)."""
    from planessl.planning.fit import line_residual_mm

    dist: dict[str, dict[str, list[float]]] = {}
    n_studies = 0
    for res in results:
        n_studies += 1
        view_of = {img.name: img.view for img in res.images}
        for t in res.targets:
            acq = t.acquired_plane
            if acq is None:
                continue
            point = np.asarray(acq.centre_world(), dtype=np.float64)
            normal = np.asarray(acq.normal, dtype=np.float64)
            for rec in t.lines:
                if rec.line3d is None:
                    continue
                dist.setdefault(t.view, {}).setdefault(view_of[rec.image], []).append(
                    line_residual_mm(rec.line3d, point, normal))
    sigma = {t: {v: sigma_from_distances(d) for v, d in by.items() if len(d) >= MIN_LINES}
             for t, by in dist.items()}
    sigma = {t: by for t, by in sigma.items() if by}
    if not sigma:
        raise PlaneSSLError(f"no target view had {MIN_LINES} predicted lines on images of one "
                            f"input view with the acquired target plane to compare with "
                            f"({n_studies} studies{': ' + source if source else ''})")
    counts = {t: {v: len(d) for v, d in by.items()} for t, by in dist.items()}
    return LineCalibration(sigma, counts, n_studies, source)
