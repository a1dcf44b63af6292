"""``qsmprep simulate``: writes a BIDS dataset with truth; refuses non-empty folders."""

import json

import nibabel as nib
import pytest
import numpy as np

from qsmprep.cli.main import main as qsmprep_main
from qsmprep.cli.simulate import main

ARGS = ["--voxel-size", "4", "4", "5", "--matrix", "40", "48", "32", "--scale", "0.85",
        "--echo-times", "0.005", "0.015", "--snr", "50", "--b0-tilt", "15"]


def test_simulate_writes_bids_and_truth(tmp_path, capsys):
    out = tmp_path / "sim"
    assert main([str(out), *ARGS, "--phase-scaling", "int12", "--subject", "x1"]) == 0
    anat = out / "sub-x1" / "anat"
    for n in (1, 2):
        mag = anat / f"sub-x1_echo-{n}_part-mag_MEGRE.nii.gz"
        img = nib.load(mag)
        assert img.shape == (40, 48, 32)
        np.testing.assert_allclose(np.linalg.norm(img.affine[:3, :3], axis=0), (4, 4, 5))
        meta = json.loads(mag.with_name(mag.name.replace(".nii.gz", ".json")).read_text())
        assert meta["EchoTime"] == [0.005, 0.015][n - 1]
        assert meta["MagneticFieldStrength"] == 3.0 and meta["FlipAngle"] == 15.0
        assert meta["RepetitionTime"] == 0.035
        ph = np.asarray(nib.load(anat / f"sub-x1_echo-{n}_part-phase_MEGRE.nii.gz").dataobj)
        assert ph.min() >= 0 and ph.max() <= 4095
    truth = out / "derivatives" / "qsmprep-truth" / "sub-x1" / "anat"
    for suffix in ("Chimap", "desc-brain_mask", "desc-local_fieldmap", "desc-total_fieldmap",
                   "dseg", "R2starmap"):
        assert (truth / f"sub-x1_{suffix}.nii.gz").is_file(), suffix
    assert "globus_pallidus" in (truth / "sub-x1_dseg.tsv").read_text()
    assert "simulate:" in capsys.readouterr().out


def test_simulate_refuses_non_empty_folder(tmp_path, capsys):
    out = tmp_path / "sim"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    status = qsmprep_main(["simulate", str(out), *ARGS])
    assert status == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and str(out) in err.replace("\n", "").replace("   ", " ")
    assert main([str(out), *ARGS, "--overwrite"]) == 0
    assert (out / "keep.txt").is_file()


def test_simulate_uncombined_coils_and_body_coil(tmp_path):
    out = tmp_path / "sim"
    assert main([str(out), "--voxel-size", "5", "--matrix", "32", "40", "32", "--scale", "0.8",
                 "--echo-times", "0.005", "0.015", "--coils", "4", "--body-coil"]) == 0
    anat = out / "sub-01" / "anat"
    mag = nib.load(anat / "sub-01_echo-1_part-mag_MEGRE.nii.gz")
    assert mag.shape == (32, 40, 32, 4)  # channels along axis 4 (docs/coil-combination.md)
    body = nib.load(anat / "sub-01_acq-body_echo-2_part-phase_MEGRE.nii.gz")
    assert body.shape == (32, 40, 32)


def _validator_errors(root):
    import shutil
    import subprocess

    exe = shutil.which("bids-validator-deno")
    if exe is None:
        return None
    res = subprocess.run([exe, str(root), "--ignoreWarnings", "--format", "json"],
                         capture_output=True, text=True, timeout=300)
    report = json.loads(res.stdout)
    return [i for i in report["issues"]["issues"] if i.get("severity") == "error"]


def test_phase_sidecars_have_units_and_pass_the_validator(tmp_path):
    for scaling, units in (("radians", "rad"), ("int12", "arbitrary")):
        out = tmp_path / scaling
        assert main([str(out), *ARGS, "--phase-scaling", scaling]) == 0
        meta = json.loads((out / "sub-01" / "anat" / "sub-01_echo-1_part-phase_MEGRE.json")
                          .read_text())
        assert meta["Units"] == units
    errors = _validator_errors(tmp_path / "int12")
    if errors is None:
        pytest.skip("bids-validator-deno not installed (pip install bids-validator-deno)")
    assert not errors, errors[:5]


def test_session_layout(tmp_path):
    out = tmp_path / "sim"
    assert main([str(out), *ARGS, "--subject", "02", "--session", "pre"]) == 0
    anat = out / "sub-02" / "ses-pre" / "anat"
    assert (anat / "sub-02_ses-pre_echo-2_part-phase_MEGRE.nii.gz").is_file()
    truth = out / "derivatives" / "qsmprep-truth" / "sub-02" / "ses-pre" / "anat"
    assert (truth / "sub-02_ses-pre_Chimap.nii.gz").is_file()
    assert (truth / "sub-02_ses-pre_desc-brain_mask.nii.gz").is_file()
    # a second session of the same subject: one participants.tsv row
    assert main([str(out), *ARGS, "--subject", "02", "--session", "post"]) == 0
    assert (out / "sub-02" / "ses-post" / "anat" / "sub-02_ses-post_echo-1_part-mag_MEGRE.nii.gz"
            ).is_file()
    assert (out / "participants.tsv").read_text() == "participant_id\nsub-02\n"
    errors = _validator_errors(out)
    assert not errors, (errors or [])[:5]


def test_adding_a_subject_leaves_the_others_untouched(tmp_path, capsys):
    out = tmp_path / "sim"
    assert main([str(out), *ARGS, "--phantom", "simple"]) == 0
    # a user's participants.tsv with an extra column
    (out / "participants.tsv").write_text("participant_id\tage\nsub-01\t30\n")
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}
    assert main([str(out), *ARGS, "--subject", "03"]) == 0
    for p, (data, mtime) in before.items():
        if p.name == "participants.tsv":
            continue
        assert p.read_bytes() == data and p.stat().st_mtime_ns == mtime, p
    assert ((out / "participants.tsv").read_text()
            == "participant_id\tage\nsub-01\t30\nsub-03\tn/a\n")
    assert (out / "sub-03" / "anat" / "sub-03_echo-1_part-mag_MEGRE.nii.gz").is_file()
    meta = json.loads((out / "derivatives" / "qsmprep-truth" / "sub-03" / "anat"
                       / "sub-03_Chimap.json").read_text())
    assert meta["SimulationSpec"]["subject"] == "03"
    assert meta["SimulationSpec"]["phantom"] == "realistic"
    # the same subject again is refused without --overwrite
    capsys.readouterr()
    assert qsmprep_main(["simulate", str(out), *ARGS, "--subject", "03"]) == 2
    assert "sub-03" in capsys.readouterr().err
