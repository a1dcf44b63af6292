"""``qsmprep BIDS OUT group`` on 2 participants x 2 sessions of the simulated head: the
tables against statistics recomputed here, the QC table against the sidecars, a T1w-space
segmentation registered back onto the truth, user errors, and the report in Chromium."""

import csv
import json
import re

import nibabel as nib
import numpy as np
import pytest

from cli._support import run_cli

from _chromium import find_chromium, render
from ._t1w import make_t1w_space
from .conftest import RUNS, _snapshot

DEEP_GREY = (4, 5, 6, 7)   # caudate, putamen, globus pallidus, thalamus


def _read_tsv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _num(cell):
    return float("nan") if cell == "n/a" else float(cell)


def _prefix(subject, session):
    return f"sub-{subject}_ses-{session}"


def _truth(bids, subject, session, what):
    return (bids / "derivatives" / "qsmprep-truth" / f"sub-{subject}" / f"ses-{session}"
            / "anat" / f"{_prefix(subject, session)}_{what}")


def _anat(out, subject, session, suffix):
    return out / f"sub-{subject}" / f"ses-{session}" / "anat" / f"{_prefix(subject, session)}_{suffix}"


@pytest.fixture(scope="module")
def grouped(processed):
    bids, out, before = processed
    res = run_cli(bids, out, "group")
    assert res.returncode == 0, res.stderr + res.stdout
    assert "simulator's truth labels" in res.stdout
    return bids, out, before


def test_region_table_equals_recomputed_means(grouped):
    bids, out, _ = grouped
    rows = _read_tsv(out / "group" / "desc-regions_stats.tsv")
    sidecar = json.loads((out / "group" / "desc-regions_stats.json").read_text())
    assert set(rows[0]) <= set(sidecar) and all("Description" in sidecar[c] for c in rows[0])
    checked = 0
    for subject, session, _seed in RUNS:
        chi = nib.load(_anat(out, subject, session, "Chimap.nii.gz")).get_fdata()
        r2 = nib.load(_anat(out, subject, session, "R2starmap.nii.gz")).get_fdata()
        mask = nib.load(_anat(out, subject, session, "desc-brain_mask.nii.gz")).get_fdata() > 0
        labels = np.asarray(nib.load(_truth(bids, subject, session, "dseg.nii.gz")).dataobj)
        mine = {(r["atlas"], int(r["index"])): r for r in rows
                if r["participant_id"] == f"sub-{subject}" and r["session_id"] == f"ses-{session}"}
        assert mine[("mask", 1)]["chi_n_voxels"] == str(mask.sum())
        for index in DEEP_GREY + (2, 3, 8, 10):
            sel = (labels == index) & mask
            row = mine[("truth", index)]
            assert int(row["chi_n_voxels"]) == sel.sum() > 0
            for col, value in (("chi_mean", chi[sel].mean()), ("chi_median", np.median(chi[sel])),
                               ("chi_std", chi[sel].std()), ("r2star_mean", r2[sel].mean())):
                assert _num(row[col]) == pytest.approx(value, rel=2e-5, abs=1e-9), (row, col)
            checked += 1
    assert checked == 4 * 8
    # the simulator's truth: the deep grey nuclei come out in the right order of magnitude
    gp = [_num(r["chi_mean"]) for r in rows if r["region"] == "globus_pallidus"]
    wm = [_num(r["chi_mean"]) for r in rows if r["region"] == "white_matter"]
    assert min(gp) > 0.01 > 0 > max(wm)


def test_qc_table_matches_sidecars(grouped):
    bids, out, before = grouped
    rows = _read_tsv(out / "group" / "desc-qc_stats.tsv")
    sidecar = json.loads((out / "group" / "desc-qc_stats.json").read_text())
    assert set(rows[0]) <= set(sidecar)
    assert [(r["participant_id"], r["session_id"]) for r in rows] == [
        (f"sub-{s}", f"ses-{t}") for s, t, _ in RUNS]
    for row, (subject, session, _seed) in zip(rows, RUNS):
        side = json.loads(_anat(out, subject, session, "Chimap.json").read_text())
        mask = nib.load(_anat(out, subject, session, "desc-brain_mask.nii.gz"))
        vox = np.prod(mask.header.get_zooms()[:3])
        assert _num(row["mask_volume_ml"]) == pytest.approx(
            (mask.get_fdata() > 0).sum() * vox / 1000, rel=1e-5)
        assert _num(row["lambda"]) == pytest.approx(side["DipoleInversion"]["Lambda"], rel=1e-5)
        assert int(row["n_qc_warnings"]) == len(side["QCWarnings"]) >= 1   # the small-head mask
        for warning in side["QCWarnings"]:
            assert warning in row["qc_warnings"]
        assert _num(row["consistency_removed_voxels"]) == \
            side["PhaseUnwrapping"]["VoxelsRemovedByConsistencyCheck"]
        assert 0.05 < _num(row["residual_field_norm"]) < 1.0
    # nothing was written into the input dataset
    assert _snapshot(bids) == before


def test_report_renders_in_chromium(grouped):
    _, out, _ = grouped
    page = out / "group" / "group.html"
    text = page.read_text()
    for src in re.findall(r'src="([^"]+)"', text):
        assert (page.parent / src).is_file(), src
    assert 'href="../sub-01.html"' in text and 'href="../sub-02.html"' in text
    assert "http://" not in text and "https://" not in text
    assert "too small for a whole brain" in text                 # the runs' QC warnings
    if find_chromium() is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    shot = render(page, out / "group" / "screenshot.png")
    assert shot.requested and shot.missing == [] and shot.remote == []
    assert shot.png.stat().st_size > 20000


def test_gre_labels_pattern(grouped, tmp_path):
    """(a) a label image on the GRE grid from a pattern, with its TSV of names."""
    bids, out, _ = grouped
    for subject, session, _seed in RUNS:
        src = _truth(bids, subject, session, "dseg.nii.gz")
        dst = tmp_path / f"sub-{subject}_ses-{session}_dseg.nii.gz"
        img = nib.load(src)
        nib.save(nib.Nifti1Image(np.isin(np.asarray(img.dataobj), DEEP_GREY).astype(np.uint8)
                                 * 7, img.affine), dst)
        dst.with_name(dst.name.replace(".nii.gz", ".tsv")).write_text(
            "index\tname\n7\tdeep_grey\n")
    res = run_cli(bids, out, "group", "--participant-label", "sub-01", "--labels",
                  str(tmp_path / "sub-{subject}_ses-{session}_dseg.nii.gz"))
    assert res.returncode == 0, res.stderr
    rows = _read_tsv(out / "group" / "desc-regions_stats.tsv")
    assert {r["participant_id"] for r in rows} == {"sub-01"}
    assert {r["atlas"] for r in rows} == {"mask", "labels"}     # no truth unless asked
    for r in rows:
        if r["atlas"] == "labels":
            chi = nib.load(_anat(out, "01", r["session_id"][4:], "Chimap.nii.gz")).get_fdata()
            mask = nib.load(_anat(out, "01", r["session_id"][4:],
                                  "desc-brain_mask.nii.gz")).get_fdata() > 0
            lab = nib.load(tmp_path / f"sub-01_{r['session_id']}_dseg.nii.gz").get_fdata()
            assert r["region"] == "deep_grey"
            assert _num(r["chi_mean"]) == pytest.approx(chi[(lab == 7) & mask].mean(), rel=2e-5)


def test_t1w_segmentation_registered_onto_truth(grouped, tmp_path):
    """(b) a T1w image and segmentation in another space (the truth moved by a known rigid
    transform onto a 2 mm grid) are registered back: the deep grey nuclei land on the truth."""
    bids, out, _ = grouped
    subject, session = "02", "2"
    truth = nib.load(_truth(bids, subject, session, "dseg.nii.gz"))
    labels = np.asarray(truth.dataobj).astype(np.int16)
    t1w, t1_labels, t1_aff, _world = make_t1w_space(labels, truth.affine)
    nib.save(nib.Nifti1Image(t1w, t1_aff), tmp_path / f"sub-{subject}_T1w.nii.gz")
    nib.save(nib.Nifti1Image(t1_labels, t1_aff), tmp_path / f"sub-{subject}_dseg.nii.gz")
    (tmp_path / f"sub-{subject}_dseg.tsv").write_text(
        _truth(bids, subject, session, "dseg.tsv").read_text())
    res = run_cli(bids, out, "group", "--participant-label", subject, "--session-label", session,
                  "--t1w", str(tmp_path / "sub-{subject}_T1w.nii.gz"),
                  "--t1w-labels", str(tmp_path / "sub-{subject}_dseg.nii.gz"))
    assert res.returncode == 0, res.stderr + res.stdout
    group = out / "group"
    moved = np.asarray(nib.load(
        group / "registration" / f"{_prefix(subject, session)}_desc-t1wlabels_dseg.nii.gz").dataobj)
    from qsmprep.group.register import dice

    both = dice(np.isin(moved, DEEP_GREY), np.isin(labels, DEEP_GREY))
    each = {k: dice(moved == k, labels == k) for k in DEEP_GREY}
    print(f"Dice deep grey {both:.3f}; per nucleus {each}")
    # measured 0.967 (caudate 1.0, putamen 0.955, pallidus 0.923, thalamus 0.969) at 4 mm
    assert both > 0.9 and min(each.values()) > 0.8
    assert (group / "figures" / f"{_prefix(subject, session)}_desc-registration.png").is_file()
    rows = _read_tsv(group / "desc-regions_stats.tsv")
    assert {r["atlas"] for r in rows} == {"mask", "t1w"}
    qc = _read_tsv(group / "desc-qc_stats.tsv")
    assert np.isfinite(_num(qc[0]["registration_metric"]))
    assert "T1w to GRE registration" in (group / "group.html").read_text()


@pytest.mark.parametrize("case", ["no_outputs", "missing_labels", "t1w_alone", "wrong_grid",
                                  "group_flag_at_participant_level"])
def test_user_errors_are_one_paragraph(case, grouped, tmp_path, capsys):
    from qsmprep.cli.main import main

    bids, out, _ = grouped
    if case == "no_outputs":
        args, expect = (bids, tmp_path / "empty", "group"), "participant"
        (tmp_path / "empty").mkdir()
    elif case == "missing_labels":
        args = (bids, out, "group", "--labels", str(tmp_path / "sub-{subject}_dseg.nii.gz"))
        expect = "sub-01_dseg.nii.gz"
    elif case == "t1w_alone":
        args, expect = (bids, out, "group", "--t1w", str(tmp_path / "x.nii.gz")), "--t1w-labels"
    elif case == "wrong_grid":
        img = nib.Nifti1Image(np.ones((10, 10, 10), np.uint8), np.eye(4))
        nib.save(img, tmp_path / "small.nii.gz")
        args, expect = (bids, out, "group", "--labels", str(tmp_path / "small.nii.gz")), "grid"
    else:
        args = (bids, tmp_path / "o", "participant", "--labels", "x.nii.gz")
        expect = "group level"
    assert main([str(a) for a in args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and expect in err.replace("\n  ", " ")
    assert err.count("qsmprep: error:") == 1
