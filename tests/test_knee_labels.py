"""Knee exams with their labels: `ingest --labels` (rows keyed by folder, PatientID,
AccessionNumber, source key), NIfTI knee files named by plane, the labels table a knee
phantom writes, and `finetune --task classification` choosing its views, pooling and targets
from the cache, through `predict` and `evaluate` (ROC AUC per label)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from planessl.cache import Cache, write_cache
from planessl.cli import main
from planessl.errors import PlaneSSLError
from planessl.geometry import affine_from_planes
from planessl.io.label_table import read_label_table
from planessl.io.nifti_names import parse_name

TARGETS = ["abnormal", "acl", "meniscus", "effusion"]
#: Only what makes the test fast: no view, pooling or target settings.
FAST = ["model.preset=tiny", "data.image_size=32", "data.spacing_mm=6.0", "data.batch_size=2",
        "finetune.slices_per_view=2", "finetune.steps=2", "finetune.val_every_n_steps=2",
        "trainer.accelerator=cpu", "trainer.progress_bar=false", "trainer.threads=1",
        "split.val_size=1", "split.test_fraction=0.4"]


@pytest.fixture(scope="module")
def knee_dicom(tmp_path_factory) -> Path:
    """Five knee phantom exams as DICOM with the labels table the phantom writes."""
    out = tmp_path_factory.mktemp("knee") / "dicom"
    assert main(["phantom", "--anatomy", "knee", "--format", "dicom", "--subjects", "5",
                 "--out", str(out), "--seed", "3"]) == 0
    return out


def _manifest_targets(cache: Path) -> list[dict]:
    return [e["targets"] for e in Cache(cache).entries]


def test_phantom_writes_labels_table(knee_dicom, capsys):
    rows = list(csv.DictReader(open(knee_dicom / "labels.csv")))
    assert [r["folder"] for r in rows] == sorted(p.name for p in knee_dicom.iterdir()
                                                 if p.is_dir())
    for r in rows:
        meta = json.loads((knee_dicom / r["folder"] / "phantom.json").read_text())
        assert {t: int(r[t]) for t in TARGETS} == {t: meta["targets"][t] for t in TARGETS}
        assert r["laterality"] == meta["laterality"]
    # the same command completes an earlier run: the table is no foreign file
    assert main(["phantom", "--anatomy", "knee", "--format", "dicom", "--subjects", "5",
                 "--out", str(knee_dicom), "--seed", "3"]) == 0
    assert "0 subjects written, 5 already present" in capsys.readouterr().out


def test_ingest_labels_by_folder_lists_unmatched(knee_dicom, tmp_path, capsys):
    rows = list(csv.DictReader(open(knee_dicom / "labels.csv")))
    table = tmp_path / "labels.csv"
    with open(table, "w") as fh:  # one exam without a row, one row of no exam, one ambiguous
        fh.write("folder,abnormal,acl,meniscus,comment\n")
        for r in rows[1:]:
            fh.write(f"{r['folder']},{r['abnormal']},{'yes' if r['acl'] == '1' else 'no'},"
                     f"{r['meniscus']},seen\n")
        fh.write("knee-9-99999,1,1,1,\nstudy,0,0,0,\n")
    assert main(["ingest", str(knee_dicom), "--out", str(tmp_path / "cache"), "--labels",
                 str(table), "--workers", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "4 matched an exam by 'folder'" in out
    assert "column 'comment' ignored: not a target: row 2 holds 'seen'" in out
    assert "rows matching no exam: 2" in out
    assert "row 6 (folder 'knee-9-99999'): no exam has this identifier" in out
    assert "row 7 (folder 'study'): matches 5 exams" in out
    assert "cached exams without a row: 1" in out
    assert f"{knee_dicom / rows[0]['folder']}" in out.split("cached exams without a row")[1]
    cache = Cache(tmp_path / "cache")
    by_truth = {}
    for r in rows[1:]:
        meta = json.loads((knee_dicom / r["folder"] / "phantom.json").read_text())
        by_truth[tuple(meta["targets"][t] for t in ("abnormal", "acl", "meniscus"))] = True
    got = [e["targets"] for e in cache.entries if e["targets"]]
    assert len(got) == 4 and all(set(t) == {"abnormal", "acl", "meniscus"} for t in got)
    assert all(tuple(t[k] for k in ("abnormal", "acl", "meniscus")) in by_truth for t in got)
    # nothing of the table but the targets reaches the cache
    text = "".join(p.read_text() for p in (tmp_path / "cache").rglob("*.json"))
    assert "knee-9-99999" not in text and "seen" not in text


def test_ingest_labels_by_patient_accession_and_source_key(knee_dicom, tmp_path, capsys):
    # PatientID (the phantom writes the exam id in upper case), AccessionNumber (added here)
    exams = sorted(p for p in knee_dicom.iterdir() if p.is_dir())
    patient = {}
    for k, exam in enumerate(exams):
        for f in exam.rglob("*.dcm"):
            ds = pydicom.dcmread(f)
            ds.AccessionNumber = f"ACC{k:03d}"
            ds.save_as(f)
            patient[exam.name] = ds.PatientID
    src = knee_dicom
    keys = tmp_path / "keys.csv"
    (tmp_path / "by_patient.csv").write_text(
        "PatientID;acl\n" + "".join(f"{patient[e.name]};{k % 2}\n" for k, e in enumerate(exams)))
    assert main(["ingest", str(src), "--out", str(tmp_path / "c1"), "--labels",
                 str(tmp_path / "by_patient.csv"), "--keys", str(keys), "--workers", "1",
                 "--no-progress"]) == 0
    assert "5 matched an exam by 'PatientID' (patient_id)" in capsys.readouterr().out
    assert sorted(t["acl"] for t in _manifest_targets(tmp_path / "c1")) == [0, 0, 0, 1, 1]

    (tmp_path / "by_accession.csv").write_text(
        "AccessionNumber\tmeniscus\n" + "".join(f"ACC{k:03d}\t{k}\n" for k in range(5)))
    assert main(["ingest", str(src), "--out", str(tmp_path / "c2"), "--labels",
                 str(tmp_path / "by_accession.csv"), "--workers", "1", "--no-progress"]) == 0
    assert "5 matched an exam by 'AccessionNumber'" in capsys.readouterr().out
    assert sorted(t["meniscus"] for t in _manifest_targets(tmp_path / "c2")) == [0, 1, 2, 3, 4]

    # the source keys of the --keys table, under a column name that says nothing: the first
    # column is compared with every identifier
    key_rows = list(csv.DictReader(open(keys)))
    (tmp_path / "by_key.csv").write_text(
        "exam id,abnormal\n" + "".join(f"{r['source_key']},1\n" for r in key_rows[:3]))
    assert main(["ingest", str(src), "--out", str(tmp_path / "c1"), "--labels",
                 str(tmp_path / "by_key.csv"), "--workers", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "3 matched an exam by 'exam id' (any identifier)" in out
    assert "cached exams without a row: 2" in out
    # a changed table rewrites the studies whose targets changed, without --force
    assert "5 written" in out
    targets = _manifest_targets(tmp_path / "c1")
    assert sorted(json.dumps(t) for t in targets) == sorted(
        [json.dumps({"abnormal": 1})] * 3 + ["{}"] * 2)


def test_label_table_rules(tmp_path):
    p = tmp_path / "t.csv"
    # a spreadsheet export: legacy code page, a blank line, a free-text column
    p.write_bytes("name,PatientID,abnormal,acl,side,grade,notes\n"
                  "a,P1,1,TRUE,L,2.0,\n\nb,P2,0,,right,NA,épanchement\n\n".encode("latin-1"))
    t = read_label_table(p)
    assert t.key_column == "PatientID" and t.key_kind == "patient_id"
    assert t.targets == ["abnormal", "acl", "grade"]
    assert set(t.ignored) == {"name", "notes"}
    assert "row 4 holds 'épanchement'" in t.ignored["notes"]  # line numbers of the file
    assert t.rows == [(2, "P1", {"abnormal": 1, "acl": 1, "grade": 2}, "left"),
                      (4, "P2", {"abnormal": 0}, "right")]
    p.write_text("folder,notes\na,x\n")
    with pytest.raises(PlaneSSLError, match="no target column"):
        read_label_table(p)
    with pytest.raises(PlaneSSLError, match="not found"):
        read_label_table(tmp_path / "missing.csv")


def test_bad_labels_file_is_one_line_before_reading(knee_dicom, tmp_path, capsys):
    (tmp_path / "t.csv").write_text("folder\n")
    assert main(["ingest", str(knee_dicom), "--out", str(tmp_path / "c"), "--labels",
                 str(tmp_path / "t.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "t.csv" in err
    assert not (tmp_path / "c").exists()


# ----------------------------------------------------------------------------- NIfTI
def test_knee_nifti_names_parse():
    for name, prefix, series in [("sag.nii.gz", "", "sag"), ("PD_sag.nii.gz", "", "pd sag"),
                                 ("001_PD_FS_sag.nii.gz", "001", "pd fs sag"),
                                 ("case7-cor-T1.nii", "case7", "cor t1"),
                                 ("sagittal.nii.gz", "", "sagittal"),
                                 ("knee12_ax_t2.nii.gz", "knee12", "ax t2")]:
        n = parse_name(Path(name))
        assert (n.prefix, n.series, n.label) == (prefix, series, False), name
    assert parse_name(Path("001_SA_ED_gt.nii.gz")).series == "sa"  # cardiac names as before


def test_knee_nifti_files_named_by_plane(tmp_path, capsys):
    from planessl.phantom.knee import make_knee_study

    study = make_knee_study(5, 0)
    names = {"sagittal": "PD_FS_sag", "coronal": "cor_T1", "axial": "t2_ax"}
    folder = tmp_path / "src" / "exam_left"
    folder.mkdir(parents=True)
    for s in study.series:
        data = np.ascontiguousarray(np.asarray(s.pixels[:, 0]).transpose(1, 2, 0))
        img = nib.Nifti1Image(data.astype(np.float32), affine_from_planes(s.planes, ras=True))
        img.header.set_sform(img.affine, code=1)
        nib.save(img, str(folder / f"{names[s.view]}.nii.gz"))
    # a plane the name does not say is read from its geometry
    s = study.views("axial")[0]
    img = nib.Nifti1Image(np.ascontiguousarray(np.asarray(s.pixels[:, 0]).transpose(1, 2, 0)),
                          affine_from_planes(s.planes, ras=True))
    img.header.set_sform(img.affine, code=1)
    (tmp_path / "src" / "exam2_knee").mkdir()
    nib.save(img, str(tmp_path / "src" / "exam2_knee" / "series5.nii.gz"))
    (tmp_path / "labels.csv").write_text("folder,abnormal\nexam_left,1\nexam2_knee,0\n")
    assert main(["ingest", str(tmp_path / "src"), "--out", str(tmp_path / "cache"),
                 "--labels", str(tmp_path / "labels.csv"), "--workers", "1",
                 "--no-progress"]) == 0
    capsys.readouterr()
    cache = Cache(tmp_path / "cache")
    by_target = {e["targets"]["abnormal"]: e for e in cache.entries}
    full = cache.load(by_target[1]["id"])
    assert full.group == "knee" and full.laterality == "left"
    assert sorted(s.view for s in full.series) == ["axial", "coronal", "sagittal"]
    assert all("file name says" in s.view_reason for s in full.series)
    for s in full.series:  # same planes as the phantom's (order along the normal aside)
        truth = study.views(s.view)[0]
        assert {tuple(np.round(p.origin, 3)) for p in s.planes} == \
            {tuple(np.round(p.origin, 3)) for p in truth.planes}
    other = cache.load(by_target[0]["id"])
    assert other.group == "knee" and [s.view for s in other.series] == ["axial"]
    assert "no plane in the name" in other.series[0].view_reason


# ----------------------------------------------------------------------------- fine-tuning
def test_knee_dicom_with_table_finetunes_with_no_view_pooling_or_target_setting(
        knee_dicom, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert main(["ingest", str(knee_dicom), "--out", str(cache), "--labels",
                 str(knee_dicom / "labels.csv"), "--workers", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "5 matched an exam" in out and "cached exams without a row: 0" in out
    assert "labels.csv: not a DICOM file" not in out  # the table in the source: no skipped file
    run = tmp_path / "run"
    assert main(["finetune", "--task", "classification", "--data", str(cache), "--labelled", "2",
                 "--init", "scratch", "--out", str(run)] + FAST) == 0
    out = capsys.readouterr().out
    assert "from the cache: finetune.target_keys=[abnormal,acl,meniscus,effusion]" in out
    assert "from the cache: finetune.pooling=max (exam-level: knee exams)" in out
    assert "from the cache: data.input_views=[sagittal,coronal,axial]" in out
    model = json.loads((run / "model.json").read_text())
    assert model["pooling"] == "max" and model["multilabel"]
    assert model["target_keys"] == TARGETS
    assert model["grid"]["input_views"] == ["sagittal", "coronal", "axial"]
    pred = tmp_path / "pred"
    assert main(["predict", "--model", str(run), "--data", str(cache), "--out", str(pred)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--pred", str(pred), "--truth", str(cache)]) == 0
    out = capsys.readouterr().out
    summary = json.loads((pred / "evaluation.json").read_text())
    assert list(summary["labels"]) == TARGETS
    for name, m in summary["labels"].items():  # one printed row per label, with its AUC
        row = next(ln for ln in out.splitlines() if ln.startswith(f"| {name} |"))
        auc = "undefined (one class)" if m["auc"] != m["auc"] else f"{m['auc']:.3f}"
        assert row.endswith(f"| {auc} |") and f"| {m['n_positive']} |" in row


def test_classification_defaults_follow_the_cache(tmp_path):
    from planessl.finetune import FinetuneConfig
    from planessl.finetune_defaults import classification_defaults
    from planessl.phantom.knee import make_knee_study

    studies = [make_knee_study(0, i) for i in range(3)]
    studies[1].series = [s for s in studies[1].series if s.view != "axial"]
    cache = write_cache(tmp_path / "knee", studies)
    cfg = FinetuneConfig()
    classification_defaults(cfg, cache, set())
    assert cfg.data.input_views == ["sagittal", "coronal"]  # the planes every exam has
    assert cfg.finetune.pooling == "max" and cfg.finetune.target_keys == TARGETS
    # what the user sets stays
    cfg = FinetuneConfig()
    cfg.finetune.target_keys, cfg.data.input_views = ["acl"], ["sagittal"]
    classification_defaults(cfg, cache, {"finetune.target_keys", "data.input_views"})
    assert cfg.finetune.target_keys == ["acl"] and cfg.data.input_views == ["sagittal"]
    assert cfg.finetune.pooling == "max"
    # a cardiac cache with one class target keeps the image classifier on its SAX images
    from planessl.phantom import make_study

    cardiac = [make_study(0, i, frames=2) for i in range(2)]
    for k, s in enumerate(cardiac):
        s.targets = {"class": k + 2}
    cache = write_cache(tmp_path / "cardiac", cardiac)
    cfg = FinetuneConfig()
    classification_defaults(cfg, cache, set())
    assert (cfg.finetune.target_key, cfg.finetune.target_keys, cfg.finetune.pooling,
            cfg.data.input_views) == ("class", [], "image", ["sax"])
    # several targets, not all 0/1, and no 'class': the user must choose
    for k, s in enumerate(cardiac):
        s.targets = {"grade": k + 2, "acl": 1}
    cache = write_cache(tmp_path / "cardiac2", cardiac)
    with pytest.raises(PlaneSSLError, match="finetune.target_key=KEY"):
        classification_defaults(FinetuneConfig(), cache, set())
