"""QC in the nodes: StackEchoes (phase units, non-finite and empty inputs) and FitField (voxels
removed by the echo consistency check, voxels without signal) report QCWarnings or stop."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from qsmprep.algorithms.phase import GAMMA_BAR_HZ_PER_T
from qsmprep.errors import UserInputError
from qsmprep.interfaces.fieldmap import FitField
from qsmprep.interfaces.phase import StackEchoes

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
TE = [4e-3, 8e-3, 12e-3]


def _save(path, data, dtype=np.float32):
    nib.save(nib.Nifti1Image(np.asarray(data, dtype), AFFINE), str(path))
    return str(path)


@pytest.fixture
def echoes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    shape = (24, 24, 16)
    rad = rng.uniform(-np.pi, np.pi, (len(TE),) + shape)
    mag = rng.uniform(0.5, 1.0, (len(TE),) + shape)
    return tmp_path, rad, mag


def _stack(tmp_path, rad, mag, encode=lambda r: r, units="auto"):
    mags = [_save(tmp_path / f"m{j}.nii.gz", m) for j, m in enumerate(mag)]
    phs = [_save(tmp_path / f"p{j}.nii.gz", encode(r)) for j, r in enumerate(rad)]
    return StackEchoes(magnitude=mags, phase=phs, phase_units=units).run().outputs


def test_stack_echoes_converts_degrees(echoes):
    tmp_path, rad, mag = echoes
    out = _stack(tmp_path, rad, mag, np.rad2deg)
    assert "degrees" in out.phase_scaling and out.parameters["PhaseScaling"] == out.phase_scaling
    ph = np.asanyarray(nib.load(out.phase).dataobj)
    d = np.abs((ph - np.moveaxis(rad, 0, -1) + np.pi) % (2 * np.pi) - np.pi)
    assert d.max() < 1e-5 and out.parameters["QCWarnings"] == []


def test_stack_echoes_refuses_unknown_units_and_empty_magnitude(echoes):
    tmp_path, rad, mag = echoes
    with pytest.raises(UserInputError, match="--phase-units"):
        _stack(tmp_path, rad, mag, lambda r: r * 1e-3)
    out = _stack(tmp_path, rad, mag, lambda r: r * 1e-3, units="radians")
    assert "radians" in out.phase_scaling
    mag = mag.copy()
    mag[1] = 0
    with pytest.raises(UserInputError, match="m1.nii.gz holds only zeros"):
        _stack(tmp_path, rad, mag)


def test_stack_echoes_zeroes_nonfinite(echoes):
    tmp_path, rad, mag = echoes
    mag, rad = mag.copy(), rad.copy()
    mag[0, 3, 3, 3] = np.nan
    rad[2, 4, 4, 4] = np.inf
    out = _stack(tmp_path, rad, mag)
    m = np.asanyarray(nib.load(out.magnitude).dataobj)
    p = np.asanyarray(nib.load(out.phase).dataobj)
    assert np.isfinite(m).all() and np.isfinite(p).all()
    assert m[3, 3, 3, 0] == 0 and m[4, 4, 4, 2] == 0 and p[4, 4, 4, 2] == 0
    assert out.parameters["NonFiniteVoxels"] == 2
    (warning,) = out.parameters["QCWarnings"]
    assert "1 in " in warning and "m0.nii.gz" in warning and "p2.nii.gz" in warning


def test_fit_field_warns_when_consistency_check_removes_over_1_percent(tmp_path, monkeypatch):
    """An island off by one wrap step (an unwrapping error) is removed by the consistency
    check; above 1% of the mask that is a QC warning. A voxel without signal leaves the mask."""
    monkeypatch.chdir(tmp_path)
    shape = (32, 32, 20)
    mask = np.zeros(shape, bool)
    mask[4:28, 4:28, 3:17] = True
    field = np.zeros(shape)  # ppm
    te = np.array(TE)
    omega = 2 * np.pi * GAMMA_BAR_HZ_PER_T * 3.0 * 1e-6 * field
    phase = 0.3 + omega[..., None] * te
    island = np.zeros(shape, bool)
    island[10:16, 10:16, 6:12] = True  # 216 voxels, 2.7% of the 8064-voxel mask
    phase[island, 1:] += 2 * np.pi * np.arange(1, len(te))  # echo difference off by 2 pi
    mag = np.where(mask[..., None], np.exp(-20 * te), 0.01)
    mag[20, 20, 10] = 0  # no signal in any echo
    files = dict(unwrapped=_save(tmp_path / "u.nii.gz", phase),
                 magnitude=_save(tmp_path / "m.nii.gz", mag),
                 mask=_save(tmp_path / "mask.nii.gz", mask))
    out = FitField(echo_times=TE, field_strength=3.0, **files).run().outputs
    params = out.parameters
    assert params["VoxelsRemovedByConsistencyCheck"] >= island.sum()
    assert params["MaskVoxelsWithoutSignal"] == 1
    warnings = params["QCWarnings"]
    assert any("1 brain-mask voxel(s) have no signal" in w for w in warnings)
    assert any("consistency check removed" in w and "% of the brain mask" in w for w in warnings)
    qmask = np.asanyarray(nib.load(out.quality_mask).dataobj) > 0
    assert not qmask[island].any() and not qmask[20, 20, 10]
    # the same data without the island: nothing to warn about
    phase[island, 1:] -= 2 * np.pi * np.arange(1, len(te))
    mag[20, 20, 10] = mag[20, 20, 9]
    files["unwrapped"] = _save(tmp_path / "u.nii.gz", phase)
    files["magnitude"] = _save(tmp_path / "m.nii.gz", mag)
    assert FitField(echo_times=TE, field_strength=3.0, **files).run().outputs.parameters[
        "QCWarnings"] == []
