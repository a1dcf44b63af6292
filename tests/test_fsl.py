"""FSL paths: availability, --fsl auto|require|never, nipype command lines, and the BET /
PRELUDE nodes run end to end against small stand-in `bet` / `prelude` programs (FSL itself
is not installed in the test environment; the container image has it)."""

from __future__ import annotations

import os
import stat
import sys
import textwrap

import nibabel as nib
import numpy as np
import pytest

from qsmprep.errors import UserInputError
from qsmprep.fsl import fsl_available, missing_fsl, resolve_fsl
from qsmprep.interfaces.fsl import BetBrainMask, PreludeUnwrap, bet_interface, prelude_interface

AFFINE = np.diag([1.5, 1.5, 2.0, 1.0])


def _exe(path, body):
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def no_fsl(monkeypatch, tmp_path):
    monkeypatch.delenv("FSLDIR", raising=False)
    empty = tmp_path / "emptybin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@pytest.fixture
def fake_fsl(monkeypatch, tmp_path):
    """FSLDIR plus stand-in `bet` and `prelude` on PATH.

    bet: mask = voxels above half the maximum, with a hole punched in the middle.
    prelude: returns the wrapped phase plus 2 pi times (echo number - 2), the arbitrary
    per-echo multiple a real spatial unwrapper may add.
    """
    fsldir = tmp_path / "fsl"
    (fsldir / "bin").mkdir(parents=True)
    _exe(fsldir / "bin" / "bet", """
        import sys, numpy as np, nibabel as nib
        inp, out = sys.argv[1], sys.argv[2]
        assert "-m" in sys.argv and "-n" in sys.argv
        img = nib.load(inp); d = np.asanyarray(img.dataobj)
        m = (d > 0.5 * d.max()).astype(np.uint8)
        c = [n // 2 for n in m.shape]; m[c[0], c[1], c[2]] = 0
        base = out[:-7] if out.endswith(".nii.gz") else out
        nib.save(nib.Nifti1Image(m, img.affine), base + "_mask.nii.gz")
    """)
    _exe(fsldir / "bin" / "prelude", """
        import re, sys, numpy as np, nibabel as nib
        a = dict(x[2:].split("=", 1) for x in sys.argv[1:])
        img = nib.load(a["phase"]); p = np.asanyarray(img.dataobj).astype(np.float32)
        n = int(re.search(r"echo-(\\d+)", a["phase"]).group(1))
        if "mask" in a:
            p = p * (np.asanyarray(nib.load(a["mask"]).dataobj) > 0)
        nib.save(nib.Nifti1Image(p + 2 * np.pi * (n - 2), img.affine), a["unwrap"])
    """)
    monkeypatch.setenv("FSLDIR", str(fsldir))
    monkeypatch.setenv("FSLOUTPUTTYPE", "NIFTI_GZ")
    monkeypatch.setenv("PATH", str(fsldir / "bin") + os.pathsep + os.environ["PATH"])
    return fsldir


def test_selection_without_fsl(no_fsl):
    assert not fsl_available()
    assert set(missing_fsl()) == {"FSLDIR", "bet", "prelude"}
    assert resolve_fsl("auto", "bet") is False
    assert resolve_fsl("never", "prelude") is False
    with pytest.raises(UserInputError) as err:
        resolve_fsl("require", "prelude")
    msg = str(err.value)
    assert "prelude" in msg and "FSLDIR" in msg and "apptainer" in msg and "--fsl auto" in msg


def test_selection_with_fsl(fake_fsl):
    assert fsl_available()
    assert resolve_fsl("auto", "mask") is True
    assert resolve_fsl("require", "unwrap") is True
    assert resolve_fsl("never", "bet") is False


def test_selection_program_missing(fake_fsl):
    (fake_fsl / "bin" / "prelude").unlink()
    assert not fsl_available() and fsl_available(("bet",))
    assert resolve_fsl("auto", "bet") is True and resolve_fsl("auto", "prelude") is False
    with pytest.raises(UserInputError, match="`prelude` is not on PATH"):
        resolve_fsl("require", "prelude")


def test_selection_rejects_bad_arguments(fake_fsl):
    with pytest.raises(UserInputError, match="not a valid choice"):
        resolve_fsl("always", "bet")
    with pytest.raises(UserInputError, match="no FSL program"):
        resolve_fsl("auto", "pdf")


def _write(path, data, affine=AFFINE):
    nib.save(nib.Nifti1Image(np.asarray(data), affine), str(path))
    return str(path)


def test_command_lines(tmp_path, monkeypatch):
    monkeypatch.setenv("FSLOUTPUTTYPE", "NIFTI_GZ")
    monkeypatch.chdir(tmp_path)
    mag = _write(tmp_path / "mag.nii.gz", np.ones((4, 4, 4), np.float32))
    bet = bet_interface(mag, tmp_path / "brain.nii.gz", frac=0.3, robust=True)
    # nipype's BET writes the input relative to the working directory
    assert bet.cmdline == f"bet mag.nii.gz {tmp_path}/brain.nii.gz -f 0.30 -m -n -R"
    assert bet._list_outputs()["mask_file"] == f"{tmp_path}/brain_mask.nii.gz"
    assert "-R" not in bet_interface(mag, "b.nii.gz", robust=False).cmdline.split()
    pre = prelude_interface(mag, mag, tmp_path / "unw.nii.gz", mask_file=mag)
    assert pre.cmdline.split() == ["prelude", f"--abs={mag}", f"--mask={mag}", f"--phase={mag}",
                                   f"--unwrap={tmp_path}/unw.nii.gz"]
    assert "--mask" not in prelude_interface(mag, mag, "u.nii.gz").cmdline


def _blob(shape=(24, 24, 20)):
    x, y, z = np.meshgrid(*[np.arange(n) - n / 2 for n in shape], indexing="ij")
    return ((x / 9) ** 2 + (y / 9) ** 2 + (z / 7) ** 2 <= 1).astype(np.float32)


def test_bet_node_binarises_and_fills(fake_fsl, tmp_path, monkeypatch):
    blob = _blob()
    mag4 = np.stack([blob * 100 + 1, blob * 50 + 1], -1)
    f = _write(tmp_path / "mag4.nii.gz", mag4)
    monkeypatch.chdir(tmp_path)
    res = BetBrainMask(magnitude=f, frac=0.4, erode_mm=0.0).run()
    mask = np.asanyarray(nib.load(res.outputs.mask).dataobj)
    assert mask.dtype == np.uint8 and mask.shape == blob.shape
    assert np.array_equal(mask > 0, blob > 0)  # the punched hole is filled
    assert res.outputs.parameters["CommandLine"].startswith("bet ")
    assert "-f 0.40" in res.outputs.parameters["CommandLine"]
    eroded = BetBrainMask(magnitude=f, erode_mm=3.0).run()
    assert np.asanyarray(nib.load(eroded.outputs.mask).dataobj).sum() < mask.sum()


def test_prelude_node_makes_echoes_consistent(fake_fsl, tmp_path, monkeypatch):
    blob = _blob() > 0
    rng = np.random.default_rng(0)
    field = rng.uniform(-1, 1) + 0.1 * np.linspace(-1, 1, blob.shape[0])[:, None, None]
    field = np.broadcast_to(field, blob.shape)
    phase = np.stack([np.angle(np.exp(1j * field * n)) for n in (1, 2, 3)], -1).astype(np.float32)
    mag = np.repeat(blob[..., None].astype(np.float32), 3, -1)
    pf = _write(tmp_path / "phase.nii.gz", phase)
    mf = _write(tmp_path / "mag.nii.gz", mag)
    kf = _write(tmp_path / "mask.nii.gz", blob.astype(np.uint8))
    monkeypatch.chdir(tmp_path)
    res = PreludeUnwrap(phase=pf, magnitude=mf, mask=kf, echo_times=[0.005, 0.01, 0.015]).run()
    unw = np.asanyarray(nib.load(res.outputs.unwrapped).dataobj)
    assert unw.shape == phase.shape and unw.dtype == np.float32
    # the stand-in added 2 pi (n - 2) per echo; the node removes it: field * n is recovered
    expected = np.where(blob[..., None], field[..., None] * np.array([1, 2, 3]), 0)
    np.testing.assert_allclose(unw, expected, atol=1e-4)
    assert res.outputs.parameters["TwoPiMultiplesAdded"] == [1, 0, -1]
    assert len(res.outputs.parameters["CommandLines"]) == 3


def test_prelude_node_rejects_mismatched_inputs(fake_fsl, tmp_path, monkeypatch):
    pf = _write(tmp_path / "phase.nii.gz", np.zeros((8, 8, 8, 2), np.float32))
    mf = _write(tmp_path / "mag.nii.gz", np.ones((8, 8, 8, 3), np.float32))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserInputError, match="differ in shape"):
        PreludeUnwrap(phase=pf, magnitude=mf).run()
