"""Which series of a cardiac exam are localizers (scouts), and why.

A technologist plans the cine views on a few quick single-frame images acquired first:
pseudo-2CH and pseudo-4CH slices and a short-axis stack (Siemens ``trufi_2-chamber``,
``localizer``, ``haste``; GE ``3-plane loc``, ``FIESTA``; Philips ``Survey``, ``SBTFE``).
They resemble the cines of their view, so the view type alone cannot tell them apart.

The rule (:func:`localizer_evidence`), in this order:

1. ImageType ``LOCALIZER``, or a name (SeriesDescription, ProtocolName, series folder) with
   a localizer word (``loc``, ``localizer``, ``scout``, ``survey``, ``pilot``,
   ``3-plane``, ...): a localizer, whatever its frames. (``TI scout``, the inversion-time
   search before late enhancement, is not one.)
2. Otherwise only a single-frame series in an exam that has cines can be a localizer; a cine
   never is, and an exam without cines has no unnamed localizers.
3. Not a localizer: a derived image (ImageType ``DERIVED``/``SECONDARY``: maps, reformats),
   a name of a late or parametric acquisition (``LGE``, ``PSIR``, ``MOLLI``, ``T1 map``,
   ``perfusion``, ...), or a series acquired after every cine (late gadolinium enhancement
   and T1 maps are single-frame SAX stacks acquired after the cines).
4. A localizer: a series acquired before every cine; a single-shot sequence as scouts use
   (SequenceName or name ``haste``/``*h2d``, ``ssfse``); a cine of the view its name states
   is in the exam (the localizer it was planned from).
5. Thicker slices than the cines' (by :data:`LOCALIZER_THICKER_MM`) decide only when the
   acquisition order is unknown: thickness is weak evidence (a Siemens exam's trufi
   localizers are 6 mm, thinner than its 7 mm cines).

Acquisition order compares AcquisitionTime (else SeriesTime) where both series have one,
else SeriesNumber where both have one; "before/after the cines" means before/after every
cine series' start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from planessl.io.views import normalise_name, view_from_name
from planessl.study import CARDIAC_VIEWS

#: A single-frame series whose slices are at least this much thicker than the exam's cines'
#: is a localizer, when nothing tells its acquisition order (mm).
LOCALIZER_THICKER_MM = 1.0

_LOCALIZER = re.compile(r"\b(loc|localizer|localiser|localizers|scout|survey|pilot|tri ?pilot|"
                        r"3 ?plane|3 ?pl|triplane|three ?plane|planscan)\b")
#: Named so, a series is not a localizer even with a localizer word or before the cines.
_NOT_LOCALIZER = re.compile(r"\b(ti ?scout|tiscout|ti ?scouting|lge|psir|de|delayed|late|"
                            r"molli|shmolli|t1 ?map|t2 ?map|t2 ?star|map|maps|mapping|"
                            r"perfusion|perf|flow|pc|tagging|tag)\b")
#: Single-shot sequences that scouts use (name or SequenceName).
_SCOUT_SEQUENCE = re.compile(r"\b(haste|h2d\d*|ssfse|single ?shot)\b")


def localizer_word(text: str) -> str:
    """The word of a series name that says localizer (``""`` if none)."""
    name = normalise_name(text)
    if _NOT_LOCALIZER.search(name):
        return ""
    m = _LOCALIZER.search(name)
    return m.group(0) if m else ""


def is_localizer_name(text: str) -> bool:
    """Whether a series name says localizer (see :func:`localizer_word`)."""
    return bool(localizer_word(text))


@dataclass(frozen=True)
class SeriesFacts:
    """What the localizer rule reads of one series.

    Attributes:
        text: its name (SeriesDescription, ProtocolName, series folder name).
        image_type: ImageType values, upper case, joined by ``\\``.
        sequence_name: SequenceName.
        n_frames: frames per slice position.
        thickness: slice thickness (mm), or ``None``.
        series_number: SeriesNumber (0: unknown).
        acquisition_time: seconds after midnight of its first image, or ``None``.
    """

    text: str
    image_type: str = ""
    sequence_name: str = ""
    n_frames: int = 1
    thickness: float | None = None
    series_number: int = 0
    acquisition_time: float | None = None

    @property
    def image_type_localizer(self) -> bool:
        return "LOCALIZER" in self.image_type.split("\\")

    @property
    def derived(self) -> bool:
        return bool({"DERIVED", "SECONDARY"} & set(self.image_type.split("\\")))

    def order(self) -> str:
        """How it is placed in the acquisition order (for reasons)."""
        parts = []
        if self.series_number:
            parts.append(f"series {self.series_number}")
        if self.acquisition_time is not None:
            t = int(self.acquisition_time)
            parts.append(f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}")
        return ", ".join(parts) or "unknown"


def named_localizer(s: SeriesFacts) -> bool:
    """Step 1 of the rule: ImageType or name says localizer."""
    return s.image_type_localizer or bool(localizer_word(s.text))


def _before(a: SeriesFacts, b: SeriesFacts) -> bool | None:
    """Whether ``a`` was acquired before ``b`` (``None``: cannot tell)."""
    if a.acquisition_time is not None and b.acquisition_time is not None \
            and a.acquisition_time != b.acquisition_time:
        return a.acquisition_time < b.acquisition_time
    if a.series_number and b.series_number and a.series_number != b.series_number:
        return a.series_number < b.series_number
    return None


def acquisition_order(s: SeriesFacts, cines: list[SeriesFacts]) -> str:
    """``"before"`` every cine, ``"after"`` every cine, ``"between"``, or ``"unknown"``."""
    order = [_before(s, c) for c in cines]
    if not order or any(o is None for o in order):
        return "unknown"
    if all(order):
        return "before"
    if not any(order):
        return "after"
    return "between"


def localizer_evidence(series: SeriesFacts, cines: list[SeriesFacts]) -> tuple[bool, str]:
    """Whether a series is a localizer rather than a (cine or late) view, and why.

    Args:
        series: the series.
        cines: the exam's cines (series with several frames that are not named localizers).

    Returns:
        ``(is_localizer, reason)``; the reason is ``""`` when nothing speaks for a localizer
        (a cine, or a single-frame series of an exam without cines).
    """
    named = []
    if series.image_type_localizer:
        named.append("ImageType says LOCALIZER")
    word = localizer_word(series.text)
    if word:
        named.append(f"series name says '{word}'")
    cine_frames = max((c.n_frames for c in cines), default=1)
    single = series.n_frames == 1 and cine_frames > 1
    if named:
        facts = [f"single frame (the exam's cines have {cine_frames})"] if single else []
        return True, "localizer: " + "; ".join(named + facts)
    if not single:
        return False, ""
    facts = [f"single frame (the exam's cines have {cine_frames})"]
    order = acquisition_order(series, cines)
    first = min(cines, key=lambda c: (c.acquisition_time is None, c.acquisition_time or 0,
                                      c.series_number))
    last = max(cines, key=lambda c: (c.acquisition_time is not None, c.acquisition_time or 0,
                                     c.series_number))
    name = normalise_name(series.text)
    late = _NOT_LOCALIZER.search(name)
    if series.derived:
        return False, ("not a localizer: " + facts[0] + f"; a derived image (ImageType "
                       f"{series.image_type}): a map or reformat")
    if late:
        return False, (f"not a localizer: {facts[0]}; series name says '{late.group(0)}' "
                       f"(a late or parametric acquisition)")
    if order == "after":
        return False, (f"not a localizer: {facts[0]}; acquired after the cines ("
                       f"{series.order()}; last cine {last.order()}), as late enhancement "
                       f"or maps are")
    if order == "before":
        facts.append(f"acquired before the cines ({series.order()}; first cine "
                     f"{first.order()})")
    elif order == "between":
        facts.append(f"acquired between the cines ({series.order()})")
    seq = _SCOUT_SEQUENCE.search(f"{name} {normalise_name(series.sequence_name)}")
    if seq:
        facts.append(f"single-shot sequence '{seq.group(0)}' as scouts use")
    view = view_from_name(series.text)[0]
    cine_views = {view_from_name(c.text)[0] for c in cines}
    same_view = view in CARDIAC_VIEWS and view in cine_views
    if same_view:
        facts.append(f"a {view} cine is in the exam")
    cine_thick = sorted(c.thickness for c in cines if c.thickness is not None)
    cine_thickness = cine_thick[len(cine_thick) // 2] if cine_thick else None
    thicker = (series.thickness is not None and cine_thickness is not None
               and series.thickness >= cine_thickness + LOCALIZER_THICKER_MM)
    if series.thickness is not None and cine_thickness is not None \
            and abs(series.thickness - cine_thickness) >= 0.05:
        facts.append(f"{series.thickness:.1f} mm slices (cines {cine_thickness:.1f} mm)")
    if order == "before" or seq or same_view or (thicker and order == "unknown"):
        return True, "localizer: " + "; ".join(facts)
    return False, ("not a localizer: " + "; ".join(facts) + "; neither named a localizer nor "
                   "acquired before the cines nor a single-shot scout nor beside a cine of "
                   "its view")
