"""qsmprep.evaluation: the scorer's Python API on maps whose scores are known by construction."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from qsmprep.errors import UserInputError
from qsmprep.evaluation import evaluate_chimap, format_scores, read_label_names, scores_to_json

SHAPE = (16, 14, 12)
VALUES = {1: -0.02, 2: 0.01, 3: 0.12, 4: 0.4}  # label -> truth ppm
NAMES = {1: "white_matter", 2: "grey_matter", 3: "globus_pallidus", 4: "vein"}


def _layout():
    """Truth made of four labelled blocks inside a box mask; label 4 is 2x2x2 voxels."""
    labels = np.zeros(SHAPE, np.int16)
    labels[2:14, 2:12, 2:6] = 1
    labels[2:14, 2:12, 6:10] = 2
    labels[5:9, 4:8, 4:8] = 3
    labels[10:12, 8:10, 7:9] = 4
    mask = labels > 0
    truth = np.zeros(SHAPE)
    for k, v in VALUES.items():
        truth[labels == k] = v
    # zero-mean checkerboard inside every label (all labels hold an even number of voxels
    # per row along axis 2), so region means stay exactly as constructed
    checker = np.where(np.indices(SHAPE).sum(axis=0) % 2 == 0, 1.0, -1.0)
    return truth, mask, labels, checker


def test_scaled_map_scores_in_closed_form():
    truth, mask, labels, _ = _layout()
    recon = np.where(mask, 0.5 * truth + 0.0137, 0.0)  # offset keeps every voxel non-zero
    s = evaluate_chimap(recon, truth, mask, labels, NAMES)
    assert s["demeaned_nrmse_percent"] == pytest.approx(50.0)  # (0.5 - 1) of the truth
    assert s["detrended_nrmse_percent"] == pytest.approx(0.0, abs=1e-9)
    assert s["hfen_percent"] == pytest.approx(50.0)  # the LoG is linear
    assert s["correlation"] == pytest.approx(1.0)
    assert 0.6 < s["xsim"] < 0.85  # measured 0.722: contrast halved
    assert s["mask_coverage"] == 1.0 and s["n_voxels"] == int(mask.sum())
    reg = s["label_regression"]
    assert reg["slope"] == pytest.approx(0.5) and reg["r"] == pytest.approx(1.0)
    assert reg["intercept"] == pytest.approx(0.0, abs=1e-12) and reg["n_labels"] == 4


def test_label_table_is_exactly_as_constructed():
    truth, mask, labels, checker = _layout()
    recon = np.where(mask, 0.8 * truth + 0.03 + 0.01 * checker, 0.0)
    s = evaluate_chimap(recon, truth, mask, labels, NAMES)
    tmean = truth[mask].mean()
    rmean = recon[mask].mean()
    rows = {row["name"]: row for row in s["labels"]}
    assert list(rows) == [NAMES[k] for k in sorted(NAMES)]
    for k, name in NAMES.items():
        n = int((labels == k).sum())
        assert rows[name]["index"] == k and rows[name]["n_voxels"] == n
        assert rows[name]["truth_ppm"] == pytest.approx(VALUES[k] - tmean, abs=1e-12)
        # the checkerboard averages to zero in each label: recon means are 0.8 x truth means
        assert rows[name]["recon_ppm"] == pytest.approx(0.8 * VALUES[k] + 0.03 - rmean, abs=1e-12)
        assert s["label_means"][name] == pytest.approx(
            (rows[name]["recon_ppm"], rows[name]["truth_ppm"]))
    reg = s["label_regression"]
    assert reg["slope"] == pytest.approx(0.8) and reg["r"] == pytest.approx(1.0)
    # voxel-wise the checkerboard is error, so the detrended NRMSE is not zero
    assert s["detrended_nrmse_percent"] > 15  # measured 25.1
    # regression restricted to two named regions, minimum region size honoured
    s2 = evaluate_chimap(recon, truth, mask, labels, NAMES, min_label_voxels=9,
                         regression_labels=["white_matter", "globus_pallidus"])
    assert "vein" not in s2["label_means"]  # 8 voxels < 9
    assert s2["label_regression"]["n_labels"] == 2
    assert s2["label_regression"]["slope"] == pytest.approx(0.8)
    with pytest.raises(UserInputError, match="vein"):
        evaluate_chimap(recon, truth, mask, labels, NAMES, min_label_voxels=9,
                        regression_labels=["vein"])


def test_evaluation_mask_excludes_voxels_the_recon_does_not_cover():
    truth, mask, labels, _ = _layout()
    recon = np.where(mask, truth + 0.05, 0.0)
    recon[2:5] = 0.0  # part of the brain not reconstructed
    recon[6, 6, 6] = np.nan
    s = evaluate_chimap(recon, truth, mask)
    covered = mask & (np.arange(SHAPE[0]) >= 5)[:, None, None]
    covered[6, 6, 6] = False
    assert s["n_voxels"] == int(covered.sum())
    assert s["mask_coverage"] == pytest.approx(covered.sum() / mask.sum())
    assert s["demeaned_nrmse_percent"] == pytest.approx(0.0, abs=1e-9)
    assert s["xsim"] == pytest.approx(1.0)
    assert s["labels"] == [] and s["label_regression"] is None


def _save(data, path, affine=None):
    nib.save(nib.Nifti1Image(np.asarray(data, np.float32), np.eye(4) if affine is None else affine),
             str(path))
    return path


def test_files_with_sibling_tsv_and_json(tmp_path):
    truth, mask, labels, _ = _layout()
    recon = np.where(mask, 0.5 * truth + 0.0137, 0.0)
    paths = {"chi": _save(recon, tmp_path / "sub-01_Chimap.nii.gz"),
             "truth": _save(truth, tmp_path / "truth.nii.gz"),
             "mask": _save(mask, tmp_path / "mask.nii.gz"),
             "labels": _save(labels, tmp_path / "sub-01_dseg.nii.gz")}
    (tmp_path / "sub-01_dseg.tsv").write_text(
        "index\tname\n" + "".join(f"{k}\t{v}\n" for k, v in NAMES.items()))
    s = evaluate_chimap(paths["chi"], paths["truth"], paths["mask"], paths["labels"])
    assert set(s["label_means"]) == set(NAMES.values())  # names from the sibling TSV
    assert s["demeaned_nrmse_percent"] == pytest.approx(50.0, rel=1e-5)  # float32 files
    assert s["inputs"]["chimap"] == str(paths["chi"])
    loaded = json.loads(scores_to_json(s, tmp_path / "o" / "scores.json"))
    assert loaded == json.loads((tmp_path / "o" / "scores.json").read_text())
    assert loaded["label_regression"]["slope"] == pytest.approx(0.5, rel=1e-5)
    assert loaded["label_means"]["vein"] == pytest.approx(list(s["label_means"]["vein"]))
    text = format_scores(s)
    for needle in ("demeaned NRMSE (%)", "detrended NRMSE (%)", "HFEN (%)", "XSIM",
                   "correlation", "globus_pallidus", "region means: recon = 0.500 x truth"):
        assert needle in text
    # without names, labels are reported by index
    s_plain = evaluate_chimap(paths["chi"], paths["truth"], paths["mask"], labels)
    assert set(s_plain["label_means"]) == {f"label-{k}" for k in NAMES}


def test_undefined_values_become_null_and_n_a():
    truth, mask, labels, _ = _layout()
    one_label = np.where(labels > 0, 1, 0)  # one region: no line through one point
    s = evaluate_chimap(np.where(mask, truth + 0.1, 0), truth, mask, one_label, {1: "brain"})
    assert s["label_regression"] == {"slope": None, "intercept": None, "r": None, "n_labels": 1}
    assert json.loads(scores_to_json(s))["label_regression"]["slope"] is None
    assert "recon = n/a x truth" in format_scores(s)


def test_grid_mismatches_name_the_file(tmp_path):
    truth, mask, labels, _ = _layout()
    t = _save(truth, tmp_path / "truth.nii.gz")
    m = _save(mask, tmp_path / "mask.nii.gz")
    shifted = np.eye(4)
    shifted[:3, 3] = 2.0
    moved = _save(truth, tmp_path / "moved_Chimap.nii.gz", affine=shifted)
    with pytest.raises(UserInputError, match="moved_Chimap.nii.gz.*resample"):
        evaluate_chimap(moved, t, m)
    small = _save(truth[:-1], tmp_path / "small_Chimap.nii.gz")
    with pytest.raises(UserInputError, match="small_Chimap.nii.gz"):
        evaluate_chimap(small, t, m)
    with pytest.raises(UserInputError, match="mask array"):
        evaluate_chimap(truth, truth, mask[:, :, :-1])
    with pytest.raises(UserInputError, match="does not exist"):
        evaluate_chimap(tmp_path / "missing.nii.gz", t, m)
    with pytest.raises(UserInputError, match="empty"):
        evaluate_chimap(truth, truth, np.zeros(SHAPE))
    with pytest.raises(UserInputError, match="nothing to score"):
        evaluate_chimap(np.zeros(SHAPE), truth, mask)
    with pytest.raises(UserInputError, match="3-D"):
        evaluate_chimap(np.stack([truth, truth], -1), truth, mask)
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\tlabel\n1\twm\n")
    with pytest.raises(UserInputError, match="bad.tsv.*'index' and 'name'"):
        read_label_names(bad)
    with pytest.raises(UserInputError, match="not a label image"):
        evaluate_chimap(truth, truth, mask, labels + 0.5)
