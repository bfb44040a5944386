"""Synthetic multi-view cine cardiac MR subjects with exact geometry and labels.

``make_study(seed, index)`` returns a :class:`planessl.study.Study`; the writers in
:mod:`planessl.phantom.writers` store studies as DICOM (Kaggle DSB layout), NIfTI (UK Biobank
layout) or ACDC folders.
"""

from planessl.phantom.anatomy import CLASS_NAMES
from planessl.phantom.knee import KNEE_TARGETS, make_knee_study
from planessl.phantom.subject import PRESETS, make_anatomy, make_study, study_id

__all__ = ["KNEE_TARGETS", "make_knee_study", "CLASS_NAMES", "PRESETS", "make_anatomy", "make_study", "study_id"]
