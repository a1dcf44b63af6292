"""The DeepQSM node: NIfTI in, chi NIfTI out, with the plumbing checked exactly.

A residual network whose output layer is zero (as initialised) returns its TKD input
channel unchanged, so the node must reproduce TKD of the masked field: this checks the
crop, regridding, scaling, tiling, masking and referencing without depending on training.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from qsmprep.algorithms.deepqsm.unet import UNet3d  # noqa: E402
from qsmprep.algorithms.dipole import forward_field  # noqa: E402
from qsmprep.algorithms.fft import mask_bounding_box  # noqa: E402
from qsmprep.algorithms.inversion.direct import tkd  # noqa: E402
from qsmprep.algorithms.metrics import nrmse  # noqa: E402
from qsmprep.algorithms.reference import reference_to_mask_mean  # noqa: E402
from qsmprep.interfaces.deepqsm import DeepQSM, deepqsm_mem_gb  # noqa: E402
from qsmprep.training.deepqsm import export_weights  # noqa: E402


@pytest.fixture
def identity_weights(tmp_path):
    torch.manual_seed(0)
    net = UNet3d(base=2, depth=4, dropout=0.0, residual=True)
    ck = {"model": net.state_dict(), "config": {"scale": 10.0}, "step": 0, "history": [],
          "arch": {"base": 2, "depth": 4, "dropout": 0.0, "residual": True}}
    return export_weights(ck, tmp_path / "w" / "deepqsm.pt")


def _case(tmp_path, affine):
    n = 36
    ax = np.arange(n) - (n - 1) / 2
    x, y, z = np.meshgrid(ax, ax, ax, indexing="ij")
    mask = (x**2 + y**2 + z**2) <= 15**2
    chi = np.where(mask, 0.02 * np.sin(x / 3) * np.cos(y / 4), 0).astype(np.float32)
    chi[(x - 4) ** 2 + y**2 + (z + 2) ** 2 <= 9] = 0.3
    vs = tuple(np.linalg.norm(affine[:3, :3], axis=0))
    b0 = nib.affines.to_matvec(affine)[0].T @ np.array([0, 0, 1.0])
    b0 = b0 / np.linalg.norm(b0)
    field = np.where(mask, forward_field(chi, vs, b0 / np.linalg.norm(b0) * 1.0), 0)
    paths = []
    for name, data in (("field", field), ("mask", mask.astype(np.uint8))):
        p = tmp_path / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(np.asarray(data), affine), p)
        paths.append(str(p))
    return paths, field.astype(np.float32), mask, vs


def test_node_with_identity_network_reproduces_tkd(tmp_path, identity_weights, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (field_p, mask_p), field, mask, vs = _case(tmp_path, np.eye(4))
    res = DeepQSM(local_field=field_p, mask=mask_p, weights=str(identity_weights),
                  max_tile_voxels=12_000, overlap=8, n_threads=1).run()
    img = nib.load(res.outputs.chi)
    chi = np.asarray(img.dataobj)
    assert chi.shape == field.shape and np.allclose(img.affine, np.eye(4))
    assert np.all(chi[~mask] == 0) and abs(chi[mask].mean()) < 1e-6
    # the node crops to the mask's box + 8 voxels and pads the TKD FFT by 16: do the same
    box = mask_bounding_box(mask, (8, 8, 8))
    ref = np.zeros_like(field)
    ref[box] = tkd(field[box], vs, (0, 0, 1), mask=mask[box], pad=16)
    ref = reference_to_mask_mean(ref, mask)
    assert nrmse(chi, ref, mask) < 1e-3  # measured 3.6e-6 (float32 round-off, 12 tiles)
    p = res.outputs.parameters
    assert p["Residual"] is True and p["TrainingSteps"] == 0 and "DeepQSM" in p["Method"]


def test_node_handles_oblique_anisotropic_affine(tmp_path, identity_weights, monkeypatch):
    monkeypatch.chdir(tmp_path)
    t = np.deg2rad(15)
    rot = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([1.0, 1.0, 1.5])
    (field_p, mask_p), field, mask, vs = _case(tmp_path, affine)
    res = DeepQSM(local_field=field_p, mask=mask_p, weights=str(identity_weights),
                  n_threads=1).run()
    chi = np.asarray(nib.load(res.outputs.chi).dataobj)
    b0 = rot.T @ np.array([0, 0, 1.0])
    ref = reference_to_mask_mean(tkd(field, vs, b0, mask=mask), mask)
    # TKD on the rotated 1 mm grid vs TKD on the input grid: interpolation error only
    wrong = reference_to_mask_mean(tkd(field, vs, (0, 0, 1), mask=mask), mask)
    # two cubic-spline regriddings of a sharp 0.3 ppm sphere: measured 8.9%
    assert nrmse(chi, ref, mask) < 15.0
    # ...and far from TKD that ignores the tilt (a wrong rotation): measured 28.7 (x3.2)
    assert nrmse(chi, wrong, mask) > 2.0 * nrmse(chi, ref, mask)
    assert deepqsm_mem_gb((256, 256, 128)) < 6.0
