"""RemoveBackground node: each method on a sphere-in-air phantom, parameters, grid check."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from qsmprep.algorithms.dipole import forward_field
from qsmprep.algorithms.metrics import demeaned_nrmse
from qsmprep.errors import UserInputError
from qsmprep.interfaces.background import RemoveBackground

VS = (2.0, 2.0, 2.0)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """A 'brain' ball with two inclusions (local sources) next to an air block (background)."""
    d = tmp_path_factory.mktemp("bg")
    shape = (48, 48, 40)
    x, y, z = np.meshgrid(*[np.arange(n) - n / 2 for n in shape], indexing="ij")
    mask = x ** 2 + y ** 2 + z ** 2 <= 14 ** 2
    chi_local = (0.1 * ((x - 5) ** 2 + y ** 2 + z ** 2 <= 9)
                 - 0.05 * ((x + 5) ** 2 + (y - 3) ** 2 + z ** 2 <= 9)).astype(np.float32)
    chi_bg = 9.4 * ((np.abs(x) <= 6) & (np.abs(y) <= 6) & (z >= 16)).astype(np.float32)
    local = forward_field(chi_local, VS, (0, 0, 1))
    total = forward_field(chi_local + chi_bg, VS, (0, 0, 1))
    aff = np.diag(list(VS) + [1.0])
    tf, mf = str(d / "total.nii.gz"), str(d / "mask.nii.gz")
    nib.save(nib.Nifti1Image(total.astype(np.float32), aff), tf)
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), aff), mf)
    return tf, mf, local, mask


# measured demeaned NRMSE (%): PDF 37.9 (in the whole mask, including the rim next to the
# air block), SHARP 9.8 and V-SHARP 7.8 (in their eroded masks)
@pytest.mark.parametrize("method,max_err", [("pdf", 42.0), ("sharp", 12.0), ("vsharp", 10.0)])
def test_methods(case, tmp_path, monkeypatch, method, max_err):
    monkeypatch.chdir(tmp_path)
    tf, mf, local, mask = case
    res = RemoveBackground(total_field=tf, mask=mf, method=method, sharp_radius_mm=6.0,
                           vsharp_radii_mm=[8.0, 6.0, 4.0]).run()
    out = np.asanyarray(nib.load(res.outputs.local_field).dataobj)
    omask = np.asanyarray(nib.load(res.outputs.mask).dataobj) > 0
    assert not (omask & ~mask).any()
    err = demeaned_nrmse(out, local, omask)
    assert err < max_err, err
    assert res.outputs.parameters["Method"] == {"pdf": "PDF", "sharp": "SHARP",
                                                "vsharp": "V-SHARP"}[method]


def test_mask_grid_mismatch(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tf, _, _, mask = case
    bad = str(tmp_path / "bad.nii.gz")
    nib.save(nib.Nifti1Image(mask[:-1].astype(np.uint8), np.eye(4)), bad)
    with pytest.raises(UserInputError, match="bad.nii.gz"):
        RemoveBackground(total_field=tf, mask=bad).run()
