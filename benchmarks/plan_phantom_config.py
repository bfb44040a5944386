"""Constants of the ``plan_phantom.py`` benchmark: paths, target views and the goal,
the training overrides, the candidate configurations and the method names of the
held-out table (shared by the script, its error computations and its report)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "plan_phantom"
EXPORT = ROOT / "src" / "planessl" / "planning" / "default_model"
TARGETS = ("2ch", "3ch", "4ch", "sax")
GOAL_VIEWS = ("2ch", "4ch", "sax")
GOAL_ANGLE, GOAL_DIST = 5.0, 3.0

BASE = ["task.name=lines", "data.input_views=[loc_2ch,loc_4ch,loc_sax,sax]",
        "task.line_channels=[2ch,3ch,4ch,sax]", "task.stack_line=mid",
        "trainer.max_epochs=-1", "trainer.progress_bar=false", "trainer.threads=1",
        "trainer.log_every_n_steps=20"]
#: The second final model (``--localizer-only``): inputs the localizers only, no SAX cine.
LOC_ONLY = ["data.input_views=[loc_2ch,loc_4ch,loc_sax]"]
#: The longer-trained localizer-only model (``--long-minutes``): learning-rate schedule.
LONG = ["optim.schedule=cosine", "optim.warmup_steps=100"]
#: Planning as before outlier rejection, test-time augmentation and line weights (``plan``
#: keyword args).
PLAIN = {"outlier_rms_mm": None, "tta": False, "line_weights": "equal"}
#: Method names of the held-out table's model rows.
M_COMBINED, M_LOC, M_LONG = "model", "model, localizer inputs only", \
    "model, localizer inputs only, long"
M_MORE = "model, localizer inputs only, more exams"
M_MORE2 = "model, localizer inputs only, even more exams"
#: Other networks trained on the data and schedule of ``more exams``: final-model key ->
#: (configuration in :data:`CANDIDATES`, held-out method name, what differs). Weights <= 5 MB.
NET_VARIANTS = {
    "more-data-wide": ("f12-128px", "model, localizer inputs only, more exams, wider",
                       "the wider network"),
    "more-data-fine": ("f8-176px", "model, localizer inputs only, more exams, finer grid",
                       "a finer grid (1.5 mm pixels, 176 px)"),
}
M_BEFORE = "before: model, localizer inputs only, plain fit"
#: The shipped model planned with the other line weightings (``plan`` keyword args); the
#: default, lines weighted by the model's calibration, is the model's own row.
WEIGHTINGS = {"shipped model, lines weighted equally": {"line_weights": "equal"},
              "shipped model, equal weights, each series once":
                  {"line_weights": "equal", "balance_series": True},
              "shipped model, calibrated, each series once": {"balance_series": True}}
M_CALIBRATED = "shipped model, calibrated (plan's default)"
METHODS = [M_COMBINED, M_LOC, M_LONG, M_MORE, M_MORE2,
           *(m for _, m, _ in NET_VARIANTS.values()), M_BEFORE, *WEIGHTINGS, "baseline", "oracle"]
#: Candidate configurations (name -> overrides on top of BASE); all <= 5 MB of weights.
CANDIDATES = {
    "f8-128px": ["model.features=[8,16,32,64,128]", "data.image_size=128",
                 "data.spacing_mm=2.0", "data.batch_size=16"],
    "f8-96px": ["model.features=[8,16,32,64,128]", "data.image_size=96",
                "data.spacing_mm=2.67", "data.batch_size=16"],
    "f12-128px": ["model.features=[12,24,48,96,192]", "data.image_size=128",
                  "data.spacing_mm=2.0", "data.batch_size=16"],
    "f8-176px": ["model.features=[8,16,32,64,128]", "data.image_size=176",
                 "data.spacing_mm=1.5", "data.batch_size=16"],
}
