"""CLI method options: every stage's flag, --fsl auto|require|never, --mask, and the
R2*/T2* and uncombined-coil paths through a real (tiny) participant run."""

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from qsmprep.cli.main import build_config
from qsmprep.cli.parser import build_parser
from qsmprep import methods
from qsmprep.config import load_pipeline, resolve_fsl_methods
from qsmprep.errors import UserInputError
from qsmprep.simulation.dataset import SimulationSpec, write_simulated_dataset

from ._support import TINY
from ._support import run_cli as _cli


def _no_fsl(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("FSLDIR", raising=False)


@pytest.mark.parametrize("stage", methods.STAGES, ids=lambda s: s.name)
def test_every_stage_flag_overrides_the_preset(tmp_path, stage, monkeypatch):
    _no_fsl(monkeypatch, tmp_path)
    for m in methods.methods_of(stage.name):
        args = build_parser().parse_args([str(tmp_path), str(tmp_path / "o"), "participant",
                                          stage.flag, m.name, "--fsl", "auto"])
        # FSL's methods fall back to their native method where FSL is missing (here)
        assert build_config(args).pipeline.method(stage.name) == (m.fallback or m.name)


def test_fsl_auto_falls_back_and_require_stops(monkeypatch, tmp_path):
    _no_fsl(monkeypatch, tmp_path)
    asked = load_pipeline("default").with_method("mask", "fsl_bet").with_method("unwrap",
                                                                                "prelude")
    settings, notes = resolve_fsl_methods(asked, "auto")
    assert (settings.method("mask"), settings.method("unwrap")) == ("bet", "romeo")
    assert len(notes) == 2 and "FSL is not installed" in notes[0]
    settings, _ = resolve_fsl_methods(asked, "never")
    assert settings.method("unwrap") == "romeo"
    with pytest.raises(UserInputError, match="FSLDIR"):
        resolve_fsl_methods(load_pipeline("default"), "require")


def test_fsl_require_uses_bet_and_prelude_when_installed(monkeypatch, tmp_path):
    fsl = tmp_path / "fsl"
    (fsl / "bin").mkdir(parents=True)
    for prog in ("bet", "prelude"):
        (fsl / "bin" / prog).write_text("#!/bin/sh\nexit 0\n")
        (fsl / "bin" / prog).chmod(0o755)
    monkeypatch.setenv("FSLDIR", str(fsl))
    monkeypatch.setenv("PATH", str(fsl / "bin"))
    settings, notes = resolve_fsl_methods(load_pipeline("default"), "require")
    assert (settings.method("mask"), settings.method("unwrap")) == ("fsl_bet", "prelude")
    assert not notes


@pytest.fixture(scope="module")
def tiny_bids(tmp_path_factory):
    bids = tmp_path_factory.mktemp("opts") / "bids"
    write_simulated_dataset(bids, SimulationSpec(**TINY))
    return bids


def test_require_fsl_without_fsl_is_a_clear_error(tiny_bids, tmp_path):
    env_path = "/usr/bin:/bin"  # python found via sys.executable; no bet/prelude here
    res = subprocess.run([sys.executable, "-m", "qsmprep.cli.main", str(tiny_bids),
                          str(tmp_path / "o"), "participant", "--fsl", "require"],
                         capture_output=True, text=True, timeout=300,
                         env={"PATH": env_path, "NIPYPE_NO_ET": "1", "HOME": str(tmp_path)})
    assert res.returncode == 2
    assert "--fsl require" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "o" / "sub-01").exists()


def test_user_mask_pattern(tiny_bids, tmp_path):
    missing = _cli(tiny_bids, tmp_path / "o", "participant", "-w", tmp_path / "w",
                   "--mask", tmp_path / "masks" / "sub-{subject}_mask.nii.gz")
    assert missing.returncode == 2 and "sub-01_mask.nii.gz" in missing.stderr
    assert "Traceback" not in missing.stderr
    ref = nib.load(next((tiny_bids / "sub-01" / "anat").glob("*echo-1_part-mag*.nii.gz")))
    mask = np.zeros(ref.shape, np.uint8)
    mask[12:28, 14:34, 12:28] = 1
    (tmp_path / "masks").mkdir()
    nib.save(nib.Nifti1Image(mask, ref.affine), tmp_path / "masks" / "sub-01_mask.nii.gz")
    res = _cli(tiny_bids, tmp_path / "o", "participant", "-w", tmp_path / "w", "--mask",
               tmp_path / "masks" / "sub-{subject}_mask.nii.gz", "--pipeline", "fast")
    assert res.returncode == 0, res.stdout + res.stderr
    out = nib.load(tmp_path / "o" / "sub-01" / "anat" / "sub-01_desc-brain_mask.nii.gz")
    assert np.array_equal(np.asarray(out.dataobj) > 0, mask > 0)


def test_r2star_t2star_outputs(tiny_bids, tmp_path):
    res = _cli(tiny_bids, tmp_path / "o", "participant", "-w", tmp_path / "w",
               "--pipeline", "fast", "--r2star", "loglinear")
    assert res.returncode == 0, res.stdout + res.stderr
    anat = tmp_path / "o" / "sub-01" / "anat"
    r2 = np.asarray(nib.load(anat / "sub-01_R2starmap.nii.gz").dataobj)
    t2 = np.asarray(nib.load(anat / "sub-01_T2starmap.nii.gz").dataobj)
    assert json.loads((anat / "sub-01_R2starmap.json").read_text())["Units"] == "1/s"
    assert json.loads((anat / "sub-01_T2starmap.json").read_text())["Units"] == "s"
    brain = np.asarray(nib.load(anat / "sub-01_desc-brain_mask.nii.gz").dataobj) > 0
    # the simulator's tissue R2* at 3 T is 15-40 1/s; T2* is its reciprocal
    assert 10 < np.median(r2[brain]) < 60
    np.testing.assert_allclose(t2[brain & (r2 > 1)] * r2[brain & (r2 > 1)], 1.0, rtol=1e-3)


def test_uncombined_channels_are_combined_first(tmp_path):
    bids = tmp_path / "bids"
    write_simulated_dataset(bids, SimulationSpec(**TINY, coils=4, body_coil=True))
    res = _cli(bids, tmp_path / "o", "participant", "-w", tmp_path / "w", "--pipeline", "fast")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "coil combination done" in res.stdout
    side = json.loads((tmp_path / "o" / "sub-01" / "anat" / "sub-01_Chimap.json").read_text())
    assert "body" in json.dumps(side["CoilCombination"]).lower()
    assert any("acq-body" in s for s in side["Sources"])


def test_a_failed_step_shows_its_cause(tiny_bids, tmp_path):
    """A step that fails with an error the user did not cause shows the exception's last
    line on the console, not only the crash-file path."""
    ref = nib.load(next((tiny_bids / "sub-01" / "anat").glob("*echo-1_part-mag*.nii.gz")))
    mask = np.zeros(ref.shape, np.uint8)
    mask[20:22, 20:22, 20:22] = 1  # 8 voxels: the mask node refuses a (nearly) empty mask
    nib.save(nib.Nifti1Image(mask, ref.affine), tmp_path / "tiny_mask.nii.gz")
    res = _cli(tiny_bids, tmp_path / "o", "participant", "-w", tmp_path / "w",
               "--mask", tmp_path / "tiny_mask.nii.gz", "--nprocs", "1")
    assert res.returncode == 1, res.stdout + res.stderr
    err = " ".join(res.stderr.split())
    assert "brain mask failed: RuntimeError:" in err and "(nearly) empty" in err
    assert "crash" in res.stdout


def test_rerun_with_another_pipeline_leaves_no_stale_outputs(tiny_bids, tmp_path):
    """V-SHARP + L2, then TFI into the same output: the local field map of the first run is
    gone (TFI has none), another run's files stay, and the sidecar names the override."""
    out = tmp_path / "o"
    assert _cli(tiny_bids, out, "participant", "-w", tmp_path / "w", "--pipeline",
                "fast").returncode == 0
    fmap = out / "sub-01" / "fmap"
    assert (fmap / "sub-01_desc-local_fieldmap.nii.gz").is_file()
    other = out / "sub-01" / "anat" / "sub-01_acq-other_Chimap.nii.gz"
    other.write_bytes(b"another run's output")
    res = _cli(tiny_bids, out, "participant", "-w", tmp_path / "w", "--pipeline", "fast",
               "--inversion", "tfi")
    assert res.returncode == 0, res.stdout + res.stderr
    assert not list(fmap.glob("sub-01_desc-local_*"))
    assert (fmap / "sub-01_desc-total_fieldmap.nii.gz").is_file() and other.is_file()
    side = json.loads((out / "sub-01" / "anat" / "sub-01_Chimap.json").read_text())
    assert side["GeneratedBy"]["Pipeline"] == "fast+inversion=tfi"
