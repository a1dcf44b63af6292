"""``qsmprep evaluate``: truth found in a simulated truth folder or given explicitly, JSON out."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from qsmprep.cli import main as cli_main
from qsmprep.cli.evaluate import find_truth_files, main
from qsmprep.errors import UserInputError
from qsmprep.evaluation import read_label_names
from qsmprep.simulation.dataset import SimulationSpec, write_simulated_dataset
from qsmprep.simulation.phantom import head_phantom

REPO = Path(__file__).resolve().parents[2]


def _save(path, data, affine):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data), affine), str(path))
    return path


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A truth folder laid out as ``qsmprep simulate`` writes it (derivatives/qsmprep-truth),
    built here from the head phantom so these tests do not depend on the acquisition
    simulator, and a 'reconstruction' at half the contrast plus an offset."""
    root = tmp_path_factory.mktemp("evaluate")
    ph = head_phantom((40, 48, 40), (4.0, 4.0, 4.0), scale=0.8)
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    anat = root / "bids" / "derivatives" / "qsmprep-truth" / "sub-01" / "anat"
    truth = {"chi": _save(anat / "sub-01_Chimap.nii.gz", ph.chi_brain, affine),
             "mask": _save(anat / "sub-01_desc-brain_mask.nii.gz",
                           ph.brain_mask.astype(np.uint8), affine),
             "labels": _save(anat / "sub-01_dseg.nii.gz", ph.labels.astype(np.int16), affine)}
    (anat / "sub-01_dseg.tsv").write_text(
        "index\tname\n" + "".join(f"{k}\tregion{k}\n" for k in np.unique(ph.labels)))
    chi = ph.chi_brain.astype(np.float64)
    # 0.0137 ppm keeps every brain voxel non-zero (the scorer skips zeros as "not reconstructed")
    recon = np.where(ph.brain_mask, 0.5 * chi + 0.0137, 0.0).astype(np.float32)
    out = _save(root / "out" / "sub-01" / "anat" / "sub-01_Chimap.nii.gz", recon, affine)
    return root, truth, out


def test_truth_dir_reads_what_the_simulator_writes(tmp_path):
    truth = write_simulated_dataset(tmp_path / "bids", SimulationSpec(
        shape=(40, 48, 40), voxel_size=(4.0, 4.0, 4.0), scale=0.8, echo_times=(0.004, 0.008)))
    chimap = tmp_path / "out" / "sub-01" / "anat" / "sub-01_Chimap.nii.gz"
    chimap.parent.mkdir(parents=True)
    chimap.write_bytes(truth["chi"].read_bytes())  # the truth scored against itself
    found = find_truth_files(tmp_path / "bids" / "derivatives" / "qsmprep-truth", chimap)
    assert found["truth"] == truth["chi"] and found["mask"] == truth["mask"]
    assert found["labels"] == truth["labels"] and found["label_names"].is_file()
    buf = io.StringIO()
    assert main([str(chimap), "--truth-dir", str(tmp_path / "bids" / "derivatives" /
                                                 "qsmprep-truth"), "--json", "-"], out=buf) == 0
    s = json.loads(buf.getvalue())
    assert s["demeaned_nrmse_percent"] == 0.0 and s["xsim"] == 1.0
    assert set(s["label_means"]) <= set(read_label_names(found["label_names"]).values())


def test_truth_dir_finds_the_simulator_files_and_scores_in_closed_form(scored):
    root, truth, chimap = scored
    tdir = root / "bids" / "derivatives" / "qsmprep-truth"
    found = find_truth_files(tdir, chimap)
    assert found["truth"] == truth["chi"] and found["mask"] == truth["mask"]
    assert found["labels"] == truth["labels"]
    assert found["label_names"].name == "sub-01_dseg.tsv"
    buf = io.StringIO()
    assert main([str(chimap), "--truth-dir", str(tdir), "--json", str(root / "s.json")],
                out=buf) == 0
    s = json.loads((root / "s.json").read_text())
    # recon = 0.5 truth + c on the brain: every linear metric is known exactly
    # (tolerances cover the float32 files)
    assert s["demeaned_nrmse_percent"] == pytest.approx(50.0, abs=1e-3)
    assert s["detrended_nrmse_percent"] == pytest.approx(0.0, abs=1e-3)
    assert s["hfen_percent"] == pytest.approx(50.0, abs=1e-3)
    assert s["correlation"] == pytest.approx(1.0, abs=1e-6)
    assert s["mask_coverage"] == 1.0
    assert s["label_regression"]["slope"] == pytest.approx(0.5, abs=1e-5)
    assert s["label_regression"]["r"] == pytest.approx(1.0, abs=1e-6)
    # region names come from the truth's dseg TSV
    names = set(read_label_names(found["label_names"]).values())
    assert s["label_means"] and set(s["label_means"]) <= names
    text = buf.getvalue()
    assert "demeaned NRMSE (%)" in text and "region means: recon = 0.500 x truth" in text
    assert f"scores written to {root / 's.json'}" in text


def test_explicit_flags_match_truth_dir(scored, tmp_path):
    root, truth, chimap = scored
    tdir = root / "bids" / "derivatives" / "qsmprep-truth"
    main([str(chimap), "--truth-dir", str(tdir), "--json", str(tmp_path / "a.json")],
         out=io.StringIO())
    tsv = truth["labels"].with_name("sub-01_dseg.tsv")
    main([str(chimap), "--truth", str(truth["chi"]), "--mask", str(truth["mask"]),
          "--labels", str(truth["labels"]), "--label-names", str(tsv),
          "--json", str(tmp_path / "b.json")], out=io.StringIO())
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    a["inputs"].pop("label_names", None)
    b["inputs"].pop("label_names", None)
    assert a == b


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data, np.float32), np.eye(4)), str(path))


def test_truth_dir_picks_subject_and_session_from_the_name(tmp_path):
    rng = np.random.default_rng(0)
    tdir = tmp_path / "truth"
    for sub in ("01", "02"):
        anat = tdir / f"sub-{sub}" / "ses-1" / "anat"
        _write(anat / f"sub-{sub}_ses-1_Chimap.nii.gz", rng.standard_normal((8, 8, 8)))
        _write(anat / f"sub-{sub}_ses-1_desc-brain_mask.nii.gz", np.ones((8, 8, 8)))
    chimap = tmp_path / "sub-02_ses-1_acq-fast_Chimap.nii.gz"
    found = find_truth_files(tdir, chimap)
    assert found["truth"].name == "sub-02_ses-1_Chimap.nii.gz"
    assert found["mask"].name == "sub-02_ses-1_desc-brain_mask.nii.gz"
    assert found["labels"] is None and found["label_names"] is None
    with pytest.raises(UserInputError, match="2 subjects"):
        find_truth_files(tdir, tmp_path / "chi.nii.gz")  # no sub- entity, two subjects
    (tdir / "sub-02" / "ses-1" / "anat" / "sub-02_ses-1_desc-brain_mask.nii.gz").unlink()
    with pytest.raises(UserInputError, match="--mask"):
        find_truth_files(tdir, chimap)
    with pytest.raises(UserInputError, match="does not exist"):
        find_truth_files(tmp_path / "nowhere", chimap)


def test_user_errors_exit_2_with_one_paragraph(scored, capsys):
    root, truth, chimap = scored
    assert cli_main.main(["evaluate", str(chimap)]) == 2
    err = capsys.readouterr().err
    assert "--truth-dir" in err and "Traceback" not in err
    assert cli_main.main(["evaluate", str(chimap), "--truth", str(truth["chi"]), "--mask",
                          str(truth["mask"]), "--label-names", "x.tsv"]) == 2
    assert "--labels DSEG" in capsys.readouterr().err


def test_console_dispatch_and_json_to_stdout(scored):
    root, truth, chimap = scored
    env = dict(os.environ, NIPYPE_NO_ET="1",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run([sys.executable, "-m", "qsmprep.cli.main", "evaluate", str(chimap),
                          "--truth-dir", str(root / "bids" / "derivatives" / "qsmprep-truth"),
                          "--json", "-"], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["demeaned_nrmse_percent"] == pytest.approx(50.0, abs=1e-3)
