"""InvertDipole (cg, focuss) and PreconditionedQSM nodes on small phantoms written to NIfTI."""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np
import pytest


from qsmprep.algorithms.metrics import demeaned_nrmse  # noqa: E402
from qsmprep.errors import UserInputError  # noqa: E402
from qsmprep.interfaces.inversion import InvertDipole  # noqa: E402
from qsmprep.interfaces.preconditioned import PreconditionedQSM  # noqa: E402
from qsmprep.simulation.cylinders import cylinder_phantom  # noqa: E402
from qsmprep.simulation.vessel import magic_angle_vessel_phantom  # noqa: E402


def _save(arr, path):
    nib.save(nib.Nifti1Image(np.asarray(arr, np.float32), np.eye(4)), str(path))
    return str(path)


@pytest.fixture(scope="module")
def vessel_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("vessel")
    ph = magic_angle_vessel_phantom(shape=(48, 48, 48), vessel_radius_mm=1.5,
                                    field_noise_ppm=0.003)
    return ph, {"local_field": _save(ph.field, d / "f.nii"), "mask": _save(ph.mask, d / "m.nii"),
                "magnitude": _save(ph.magnitude, d / "mag.nii")}


@pytest.mark.parametrize("method", ["cg", "focuss", "l2"])
def test_invert_dipole_methods(vessel_files, tmp_path, method):
    ph, files = vessel_files
    os.chdir(tmp_path)
    kw = dict(local_field=files["local_field"], mask=files["mask"], method=method)
    if method == "focuss":
        kw["magnitude"] = files["magnitude"]
    res = InvertDipole(**kw).run()
    chi = nib.load(res.outputs.chi).get_fdata()
    err = demeaned_nrmse(chi, ph.chi, ph.mask)
    # measured (48^3 vessel phantom, sphere clipped by the grid): l2 45.2%, cg 50.1% (mask
    # weights: the field outside the mask is unknown rather than zero), focuss 32.1%
    limits = {"l2": 50.0, "cg": 55.0, "focuss": 37.0}
    assert err < limits[method], (method, err)
    assert res.outputs.parameters["Lambda"] > 0


def test_focuss_without_magnitude_is_a_user_error(vessel_files, tmp_path):
    _, files = vessel_files
    os.chdir(tmp_path)
    with pytest.raises(Exception) as exc:
        InvertDipole(local_field=files["local_field"], mask=files["mask"], method="focuss").run()
    assert "magnitude" in str(exc.value)
    node = InvertDipole(local_field=files["local_field"], mask=files["mask"], method="focuss")
    with pytest.raises(UserInputError):
        node._run_interface(None)


def test_preconditioned_node(tmp_path):
    ph = cylinder_phantom(shape=(96, 96, 48), field_noise_ppm=0.005)
    os.chdir(tmp_path)
    mags = nib.Nifti1Image(ph.magnitudes, np.eye(4))
    nib.save(mags, str(tmp_path / "mags.nii"))
    res = PreconditionedQSM(total_field=_save(ph.total_field, tmp_path / "f.nii"),
                            mask=_save(ph.object_mask, tmp_path / "m.nii"),
                            magnitudes=str(tmp_path / "mags.nii"),
                            echo_times=list(ph.echo_times), b0_tesla=3.0).run()
    chi = nib.load(res.outputs.chi).get_fdata()
    for core, dc in zip(ph.cores, ph.delta_chi):
        # within 5% of the largest delta-chi (measured within 0.01 ppm)
        assert abs(chi[core].mean() - dc) < 0.05 * 1.5, (dc, chi[core].mean())
    with pytest.raises(Exception):
        PreconditionedQSM(total_field=_save(ph.total_field, tmp_path / "f.nii"),
                          mask=_save(ph.object_mask, tmp_path / "m.nii"),
                          magnitudes=str(tmp_path / "mags.nii"),
                          echo_times=[0.004, 0.008], b0_tesla=3.0).run()
