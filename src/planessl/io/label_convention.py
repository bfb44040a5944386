"""Which cardiac label convention a label map follows: ACDC (1 RV, 3 LV) or LV-first (1 LV, 3 RV).

Both put the myocardium at 2. ACDC (and planessl) number the right ventricle 1 and the left
ventricle 3; M&Ms, M&Ms-2 and UK Biobank number the left ventricle 1 and the right ventricle
3. Names do not say which, anatomy does: the LV cavity is enclosed by the myocardium, the
RV cavity touches it only along the septum. For each of labels 1 and 3 we measure the
fraction of its in-plane border pixels that touch label 2.
"""

from __future__ import annotations

import numpy as np

#: Label 1 is read as the LV when its border touches the myocardium this much more often
#: than label 3's border does (fraction of border pixels, 0..1).
MIN_CONTACT_MARGIN = 0.2


def myocardium_contact(labels: np.ndarray, value: int, myo: int = 2) -> tuple[int, int]:
    """``(border pixels of value, of which touching myo)`` over in-plane 4-neighbours of
    label maps ``(..., H, W)``."""
    lab = np.asarray(labels)
    inside = lab == value
    border = np.zeros_like(inside)
    touch = np.zeros_like(inside)
    for axis in (-2, -1):
        for shift in (1, -1):
            nb = np.roll(lab, shift, axis=axis)
            border |= inside & (nb != value)
            touch |= inside & (nb == myo)
    return int(border.sum()), int(touch.sum())


def lv_first(label_maps: list[np.ndarray]) -> tuple[bool | None, str]:
    """Whether label maps use the LV-first convention (1 LV, 3 RV): ``True``, ``False``, or
    ``None`` when they cannot tell (labels 1, 2 and 3 not all present); and why."""
    sums = {1: [0, 0], 3: [0, 0]}
    for lab in label_maps:
        for v in (1, 3):
            b, t = myocardium_contact(lab, v)
            sums[v][0] += b
            sums[v][1] += t
    if sums[1][0] == 0 or sums[3][0] == 0 or (sums[1][1] == 0 and sums[3][1] == 0):
        return None, "labels 1, 2 and 3 not all present: convention not checked"
    r1, r3 = sums[1][1] / sums[1][0], sums[3][1] / sums[3][0]
    what = (f"myocardium (2) borders {100 * r1:.0f}% of label 1's edge and "
            f"{100 * r3:.0f}% of label 3's")
    if r1 > r3 + MIN_CONTACT_MARGIN:
        return True, what + ": label 1 is the LV"
    if r3 > r1 + MIN_CONTACT_MARGIN:
        return False, what + ": label 3 is the LV"
    return None, what + ": too close to tell"


def swap_lv_rv(labels: np.ndarray) -> np.ndarray:
    """1 <-> 3 (other values kept)."""
    out = labels.copy()
    out[labels == 1] = 3
    out[labels == 3] = 1
    return out
