"""UnwrapPhase (temporal / laplacian / romeo) and FitField (linear / nonlinear) nodes, and
the R2StarMap node, on a small multi-echo phantom written to NIfTI."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from qsmprep.algorithms.phase import GAMMA_BAR_HZ_PER_T
from qsmprep.errors import UserInputError
from qsmprep.interfaces.fieldmap import FitField, UnwrapPhase
from qsmprep.interfaces.r2star import R2StarMap

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
TE = [4e-3, 9e-3, 14e-3, 19e-3]
B0 = 3.0
R2S = 30.0


def _save(path, data):
    nib.save(nib.Nifti1Image(np.asarray(data, np.float32), AFFINE), str(path))
    return str(path)


def _load(path):
    return np.asanyarray(nib.load(path).dataobj)


@pytest.fixture
def data(tmp_path, monkeypatch):
    """Ellipsoid 'brain' with a steep field bump (echo 4 aliases spatially), a phase offset,
    R2* 30 1/s, SNR 100; noise-only background."""
    monkeypatch.chdir(tmp_path)
    shape = (36, 36, 24)
    x, y, z = np.meshgrid(*[2.0 * (np.arange(n) - (n - 1) / 2) for n in shape], indexing="ij")
    mask = (x / 30) ** 2 + (y / 30) ** 2 + (z / 20) ** 2 <= 1
    field = 2.0 * np.exp(-(x * x + y * y + z * z) / (2 * 10.0**2)) + 0.005 * y  # ppm
    omega = 2 * np.pi * GAMMA_BAR_HZ_PER_T * B0 * 1e-6 * field
    offset = 0.8 + 0.5 * np.sin(x / 20.0)
    te = np.array(TE)
    sig = np.where(mask[..., None], np.exp(-R2S * te), 0) * np.exp(1j * (offset[..., None] + omega[..., None] * te))
    rng = np.random.default_rng(0)
    sig = sig + 0.01 * (rng.standard_normal(sig.shape) + 1j * rng.standard_normal(sig.shape))
    truth = offset[..., None] + omega[..., None] * te
    return dict(mask=mask, field=field, truth=truth,
                phase=_save(tmp_path / "phase.nii.gz", np.angle(sig)),
                mag=_save(tmp_path / "mag.nii.gz", np.abs(sig)),
                mask_file=_save(tmp_path / "mask.nii.gz", mask.astype(np.float32)))


@pytest.mark.parametrize("method", ["romeo", "temporal"])
def test_unwrap_and_fit(data, method):
    res = UnwrapPhase(phase=data["phase"], magnitude=data["mag"], echo_times=TE, method=method,
                      mask=data["mask_file"]).run()
    u = _load(res.outputs.unwrapped)
    k = np.round((u - data["truth"])[data["mask"]] / (2 * np.pi))
    assert np.mean(k != 0) < 1e-3, np.mean(k != 0)  # measured 0.0 for both
    for fit in ("linear", "nonlinear"):
        out = FitField(unwrapped=res.outputs.unwrapped, magnitude=data["mag"], mask=data["mask_file"],
                       echo_times=TE, field_strength=B0, unwrap_method=method, fit=fit,
                       apply_quality_mask=False).run().outputs
        f = _load(out.total_field)
        err = np.abs(f - data["field"])[data["mask"]]
        assert np.median(err) < 5e-3, (fit, np.median(err))  # measured 1.06e-3 ppm (both fits)
        assert out.parameters["ConsistencyCheckApplied"] is False
        assert out.parameters["VoxelsFlaggedByConsistencyCheck"] == 0
        np.testing.assert_array_equal(_load(out.quality_mask) > 0, data["mask"])


def test_unwrap_echo_count_mismatch_is_a_user_error(data):
    with pytest.raises(UserInputError, match="echo times"):
        UnwrapPhase(phase=data["phase"], magnitude=data["mag"], echo_times=TE[:3],
                    method="romeo").run()


def test_r2star_node(data):
    for method in ("arlo", "loglinear"):
        out = R2StarMap(magnitude=data["mag"], echo_times=TE, method=method,
                        mask=data["mask_file"]).run().outputs
        r2 = _load(out.r2star)
        t2 = _load(out.t2star)
        # SNR 100 at TE = 0, 4 echoes: measured median 30.0 (both), 1/s
        assert np.median(r2[data["mask"]]) == pytest.approx(R2S, rel=0.05)
        np.testing.assert_allclose(t2[data["mask"]], 1 / np.maximum(r2[data["mask"]], 1.0), rtol=1e-5)
        assert not r2[~data["mask"]].any()
        assert out.parameters["Units"] == {"R2star": "1/s", "T2star": "s"}


def test_r2star_node_user_errors(data, tmp_path):
    with pytest.raises(UserInputError, match="not equally spaced"):
        R2StarMap(magnitude=data["mag"], echo_times=[4e-3, 9e-3, 14e-3, 25e-3], method="arlo").run()
    with pytest.raises(UserInputError, match="echo times"):
        R2StarMap(magnitude=data["mag"], echo_times=TE[:2], method="loglinear").run()
