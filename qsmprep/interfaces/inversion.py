"""Dipole inversion node (closed-form L2, TKD, weighted CG, FOCUSS-QSM, magnitude-weighted TV):
loads, calls :func:`qsmprep.algorithms.inversion.invert.invert_dipole`, checks the map, saves."""

from __future__ import annotations

from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    isdefined, traits)

from ..algorithms.inversion.invert import NEEDS_MAGNITUDE, invert_dipole
from ..errors import UserInputError
from ..methods import names
from ..qc.results import check_chimap
from ._nifti import geometry, load, load_matching, save_like


class _InvInputSpec(BaseInterfaceInputSpec):
    local_field = File(exists=True, mandatory=True, desc="local field (ppm)")
    mask = File(exists=True, mandatory=True, desc="mask of the local field")
    method = traits.Enum(*names("inversion", "inversion.InvertDipole"), usedefault=True,
                         desc="inversion method: closed-form L2, TKD, weighted L2 by "
                              "preconditioned CG, FOCUSS-QSM with magnitude prior, "
                              "magnitude-weighted TV by ADMM (MEDI-like)")
    magnitude = File(exists=True, desc="magnitude image (3-D, or 4-D echoes: their mean is "
                                       "used); required by 'focuss' and 'tv'")
    noise = File(exists=True, desc="field noise map (ppm); 'cg' and 'tv' weight the data by 1/noise")
    max_iter = traits.Int(80, usedefault=True, desc="'cg': maximum CG iterations")
    lam = traits.Float(desc="L2 lambda (weight of ||grad chi||^2, 1/mm gradients); auto if unset")
    tv_lam = traits.Float(desc="'tv': weight of the magnitude-masked TV ||M grad chi||_1 "
                               "(ppm/mm); automatic if unset")
    lambda_rule = traits.Enum("upre", "gcv", "lcurve", usedefault=True,
                              desc="automatic lambda rule (upre: predictive risk with the "
                                   "null-cone noise spectrum; gcv; lcurve)")
    tkd_threshold = traits.Float(0.19, usedefault=True, desc="TKD kernel truncation")
    n_threads = traits.Int(1, usedefault=True, nohash=True,
                           desc="FFT threads; not hashed, so other thread counts reuse the cache")


class _InvOutputSpec(TraitedSpec):
    chi = File(exists=True, desc="susceptibility (ppm), referenced to the mask mean")
    parameters = traits.Dict(desc="method parameters for the sidecar")


class InvertDipole(SimpleInterface):
    """Invert the local field to susceptibility (ppm), referenced to the mask mean."""

    input_spec = _InvInputSpec
    output_spec = _InvOutputSpec

    def _run_interface(self, runtime):
        i = self.inputs
        field, img = load(i.local_field)
        mask = load(i.mask)[0] > 0
        vs, b0 = geometry(img)
        if i.method in NEEDS_MAGNITUDE and not isdefined(i.magnitude):
            raise UserInputError(
                f"The {i.method} inversion needs a magnitude image (its edges are the prior), "
                f"but none was given for the local field {i.local_field}. Provide the "
                "magnitude (connect 'magnitude') or choose another inversion method (l2, cg, "
                "tkd).")
        magnitude = (load_matching(i.magnitude, img, "magnitude")
                     if i.method in NEEDS_MAGNITUDE else None)
        noise = (load_matching(i.noise, img, "noise")
                 if isdefined(i.noise) and i.method in ("cg", "tv") else None)
        chi, params = invert_dipole(
            i.method, field, mask, vs, b0, magnitude=magnitude, noise=noise,
            lam=float(i.lam) if isdefined(i.lam) else None,
            tv_lam=float(i.tv_lam) if isdefined(i.tv_lam) else None,
            lambda_rule=i.lambda_rule, tkd_threshold=i.tkd_threshold, max_iter=i.max_iter,
            workers=i.n_threads)
        check_chimap(chi, mask, i.local_field)
        self._results["chi"] = save_like(chi, img, "chi.nii.gz")
        self._results["parameters"] = params
        return runtime
