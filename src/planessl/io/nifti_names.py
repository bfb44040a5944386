"""What the names of files in an arbitrary NIfTI folder say (names only; no file is read).

A name such as ``001_SA_ED_gt.nii.gz`` is split into words (at ``_``, ``-``, ``.``, spaces):

* label markers (``gt``, ``seg``, ``seg4``, ``label``, ``labels``, ``mask``, ...) anywhere,
  e.g. ``_gt``, ``_seg``, ``seg_``, ``_label``, ``_mask``: the file is a label volume;
* phase words: ``ED``, ``ES``, ``frameNN`` / ``frame_NN``;
* cine words (``cine``, ``4d``, ``image``, ``img``): say nothing beyond "the image";
* knee plane words (``sag``, ``sagittal``, ``cor``, ``ax``, ...) and sequence words (``PD``,
  ``T2``, ``FS``, ``TSE``, ...): series words, like the cardiac view words, so that
  ``001_PD_sag.nii.gz`` is subject ``001``, series ``pd sag``;
* the **subject prefix**: the leading words before the first view, phase or cine word
  (``001`` here; empty for UK Biobank-like ``sa_ED``, whose subject is then its folder);
* the **series words**: the rest (``sa``), which name the view where they can.

Files of one subject share a folder and a prefix. A label volume belongs to the image
whose name is the same without its label marker (same prefix, series words and phase).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

LABEL_WORDS = frozenset({"gt", "seg", "seg4", "segmentation", "segmentations", "label",
                         "labels", "mask", "masks", "manual", "annotation"})
CINE_WORDS = frozenset({"cine", "4d", "image", "images", "img"})
VIEW_WORDS = frozenset({"sa", "sax", "la", "lax", "2ch", "3ch", "4ch", "ch2", "ch3", "ch4",
                        "lvot", "short", "long", "axis", "shortaxis", "longaxis", "stack",
                        "vla", "hla"})
#: Knee plane words (``sag``, ``PD_sag``, ``cor_T1``, ``ax``) and MR sequence words that
#: name a series rather than a subject (``PD``, ``T2``, ``FS``, ``TSE``, ...).
KNEE_PLANE_WORDS = frozenset({"sag", "sagittal", "cor", "coronal", "ax", "axial", "tra",
                              "transverse", "transversal"})
SEQUENCE_WORDS = frozenset({"pd", "pdw", "pdfs", "t1", "t1w", "t2", "t2w", "t2fs", "t1fs",
                            "fs", "fatsat", "fat", "sat", "stir", "tse", "fse", "frfse",
                            "dess", "space", "cube", "mpr", "mprage", "vibe", "flash", "gre",
                            "spgr", "propeller", "blade", "water", "we", "3d", "2d", "hr"})
_PHASE = re.compile(r"^(ed|es|frame\d+)$", re.IGNORECASE)
_SPLIT = re.compile(r"[_\-. ]+")


def is_nifti(path: Path) -> bool:
    """``.nii`` or ``.nii.gz`` (case-insensitive), not a hidden file."""
    n = path.name.lower()
    return not n.startswith(".") and (n.endswith(".nii") or n.endswith(".nii.gz"))


def nifti_stem(path: Path) -> str:
    """The name without ``.nii`` / ``.nii.gz``."""
    n = path.name
    return n[: -len(".nii.gz")] if n.lower().endswith(".nii.gz") else n[: -len(".nii")]


def _words(stem: str) -> list[str]:
    words = [w for w in _SPLIT.split(stem) if w]
    out: list[str] = []
    for w in words:  # "frame_01" -> "frame01"
        if out and out[-1].lower() == "frame" and w.isdigit():
            out[-1] = f"frame{w}"
        else:
            out.append(w)
    return out


def phase_key(phase: str | None) -> tuple:
    """Sort key of phases: ED, ES, then frameNN by number, then none."""
    if phase is None:
        return (2, 0)
    if phase in ("ED", "ES"):
        return (0, 0 if phase == "ED" else 1)
    return (1, int(phase[5:]))


@dataclass(frozen=True)
class NiftiName:
    """The parts of one NIfTI file name.

    Attributes:
        path: the file.
        prefix: subject prefix (lower case; ``""`` when the name starts with a known word).
        series: series words joined by spaces (lower case), e.g. ``"sa"``, ``"la 4ch"``.
        phase: ``"ED"``, ``"ES"``, ``"frameNN"`` (NN as written) or ``None``.
        label: a label volume (a label marker was found).
        image_stem: for a label, the stem its image would have (marker removed).
    """

    path: Path
    prefix: str
    series: str
    phase: str | None
    label: bool
    image_stem: str

    @property
    def base(self) -> tuple[str, str, str | None]:
        """What a label and its image have in common."""
        return self.prefix, self.series, self.phase


def parse_name(path: Path) -> NiftiName:
    """Split a NIfTI file name into subject prefix, series words, phase and label marker."""
    words = _words(nifti_stem(path))
    kept = [w for w in words if w.lower() not in LABEL_WORDS]
    label = len(kept) < len(words)
    prefix: list[str] = []
    series: list[str] = []
    phase = None
    known = False
    for w in kept:
        lw = w.lower()
        if _PHASE.match(lw):
            phase, known = (lw.upper() if lw in ("ed", "es") else lw), True
        elif lw in CINE_WORDS:
            known = True
        elif lw in VIEW_WORDS or lw in KNEE_PLANE_WORDS or lw in SEQUENCE_WORDS or known:
            series.append(lw)
            known = True
        else:
            prefix.append(lw)
    if phase is not None and phase.startswith("frame"):
        phase = f"frame{int(phase[5:]):02d}"
    return NiftiName(path=path, prefix="_".join(prefix), series=" ".join(series), phase=phase,
                     label=label, image_stem="_".join(kept))


def subject_key(name: NiftiName) -> tuple[Path, str]:
    """Files of one subject: same folder and same prefix."""
    return name.path.parent, name.prefix
