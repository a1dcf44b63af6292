"""CombineCoils node on small 4-D channel NIfTI files."""

from __future__ import annotations


import nibabel as nib
import numpy as np
import pytest


from qsmprep.errors import UserInputError  # noqa: E402
from qsmprep.interfaces.coils import CombineCoils, coil_mem_gb  # noqa: E402
from qsmprep.simulation.coils import body_coil_sensitivity, coil_sensitivities  # noqa: E402

SHAPE = (32, 36, 20)
VOXEL = (3.0, 3.0, 4.0)
TE = (0.004, 0.008)
AFF = np.diag(list(VOXEL) + [1.0])


def _save(path, data):
    nib.Nifti1Image(np.asarray(data, np.float32), AFF).to_filename(str(path))
    return str(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("coils")
    axes = [(np.arange(n) - (n - 1) / 2) * h for n, h in zip(SHAPE, VOXEL)]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    obj = ((x / 40) ** 2 + (y / 45) ** 2 + (z / 32) ** 2 <= 1).astype(np.float32)
    omega = (2 * np.pi * 3.0 * (x + 0.5 * y)).astype(np.float32)   # rad/s
    sens = coil_sensitivities(SHAPE, VOXEL, 4, seed=1)
    body = body_coil_sensitivity(SHAPE, VOXEL)
    rng = np.random.default_rng(0)
    files = {"mag": [], "phase": [], "bmag": [], "bphase": []}
    for j, te in enumerate(TE):
        rho = obj * np.exp(1j * (0.5 + omega * te))
        ch = np.moveaxis(sens * rho, 0, -1)
        ch = ch + 0.005 * (rng.standard_normal(ch.shape) + 1j * rng.standard_normal(ch.shape))
        files["mag"].append(_save(d / f"e{j}_mag.nii.gz", np.abs(ch)))
        # phase scaled like Siemens 0..4095
        files["phase"].append(_save(d / f"e{j}_phase.nii.gz",
                                    (np.angle(ch) + np.pi) / (2 * np.pi) * 4095))
        b = body * rho
        files["bmag"].append(_save(d / f"b{j}_mag.nii.gz", np.abs(b)))
        files["bphase"].append(_save(d / f"b{j}_phase.nii.gz", np.angle(b)))
    return dict(files=files, obj=obj > 0, omega=omega, body=body, dir=d)


def _wrapped_rms(a, b, mask):
    d = np.angle(np.exp(1j * (a - b)))[mask]
    d = np.angle(np.exp(1j * (d - np.angle(np.mean(np.exp(1j * d))))))
    return float(np.sqrt(np.mean(d * d)))


def test_mcpc3ds_auto(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    f = data["files"]
    res = CombineCoils(magnitude=f["mag"], phase=f["phase"], echo_times=list(TE)).run()
    out = res.outputs
    assert out.parameters["CoilCombination"] == "mcpc3ds"
    assert out.parameters["NumberOfChannels"] == 4
    assert "rescaled" in out.parameters["PhaseScaling"]
    assert len(out.magnitude) == len(out.phase) == 2
    inner = data["obj"].copy()
    inner[:4] = inner[-4:] = False
    for j, te in enumerate(TE):
        img = nib.load(out.phase[j])
        assert img.shape == SHAPE and img.get_data_dtype() == np.float32
        assert np.allclose(img.affine, AFF)
        ph = img.get_fdata()
        assert ph.min() >= -np.pi - 1e-5 and ph.max() < np.pi + 1e-5
        assert _wrapped_rms(ph, data["omega"] * te, inner) < 0.05   # measured 0.006
        assert nib.load(out.magnitude[j]).shape == SHAPE


def test_bodycoil_and_errors(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    f = data["files"]
    res = CombineCoils(magnitude=f["mag"], phase=f["phase"], echo_times=list(TE),
                       body_magnitude=f["bmag"][:1], body_phase=f["bphase"][:1], poly_order=3).run()
    p = res.outputs.parameters
    assert p["CoilCombination"] == "bodycoil" and p["SensitivityMagnitudeModel"].endswith("3")
    ph = nib.load(res.outputs.phase[1]).get_fdata()
    truth = data["omega"] * TE[1] + 0.5 + np.angle(data["body"])
    assert _wrapped_rms(ph, truth, data["obj"]) < 0.05   # measured 0.018
    with pytest.raises(UserInputError, match="4th axis"):
        CombineCoils(magnitude=f["bmag"], phase=f["bphase"], echo_times=list(TE)).run()
    with pytest.raises(UserInputError, match="echo times"):
        CombineCoils(magnitude=f["mag"], phase=f["phase"], echo_times=[0.004]).run()
    with pytest.raises(UserInputError, match="MCPC-3D-S needs"):
        CombineCoils(magnitude=f["mag"][:1], phase=f["phase"][:1], echo_times=[0.004],
                     method="mcpc3ds").run()
    assert coil_mem_gb((256, 256, 64), 32) > 4
