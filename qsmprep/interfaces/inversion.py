"""Dipole inversion node: closed-form L2 with automatic lambda, or TKD."""

from __future__ import annotations

from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    isdefined, traits)

from ..algorithms.inversion import KSpaceProblem, closed_form_l2, tkd
from ..algorithms.lambda_selection import DEFAULT_LAMBDAS, select_lambda, sweep_l2
from ..algorithms.reference import reference_to_mask_mean
from ._nifti import geometry, load, save_like


class _InvInputSpec(BaseInterfaceInputSpec):
    local_field = File(exists=True, mandatory=True, desc="local field (ppm)")
    mask = File(exists=True, mandatory=True, desc="mask of the local field")
    method = traits.Enum("l2", "tkd", usedefault=True, desc="inversion method")
    lam = traits.Float(desc="L2 lambda (weight of ||grad chi||^2, 1/mm gradients); auto if unset")
    lambda_rule = traits.Enum("gcv", "lcurve", usedefault=True, desc="automatic lambda rule")
    tkd_threshold = traits.Float(0.19, usedefault=True, desc="TKD kernel truncation")
    n_threads = traits.Int(1, usedefault=True, desc="FFT threads")


class _InvOutputSpec(TraitedSpec):
    chi = File(exists=True, desc="susceptibility (ppm), referenced to the mask mean")
    parameters = traits.Dict(desc="method parameters for the sidecar")


class InvertDipole(SimpleInterface):
    """Invert the local field to susceptibility (ppm), referenced to the mask mean."""

    input_spec = _InvInputSpec
    output_spec = _InvOutputSpec

    def _run_interface(self, runtime):
        field, img = load(self.inputs.local_field)
        mask = load(self.inputs.mask)[0] > 0
        vs, b0 = geometry(img)
        w = self.inputs.n_threads
        if self.inputs.method == "tkd":
            chi = tkd(field, vs, b0, threshold=self.inputs.tkd_threshold, mask=mask, workers=w)
            params = {"Method": "TKD", "Threshold": self.inputs.tkd_threshold}
        else:
            prob = KSpaceProblem(field, vs, b0, mask=mask, workers=w)
            params = {"Method": "closed-form L2 with gradient regularisation",
                      "LambdaConvention": "weight of sum_i ||G_i chi||^2, G_i forward difference / "
                                          "voxel size (1/mm)"}
            if isdefined(self.inputs.lam):
                lam = float(self.inputs.lam)
                params["LambdaSelection"] = "fixed"
            else:
                sweep = sweep_l2(prob.spectrum, prob.d, prob.e2, DEFAULT_LAMBDAS)
                lam = select_lambda(sweep, self.inputs.lambda_rule)
                params["LambdaSelection"] = self.inputs.lambda_rule
                params["LambdaSweep"] = [float(v) for v in sweep.lambdas]
                params["LCurveCornerLambda"] = select_lambda(sweep, "lcurve")
            params["Lambda"] = lam
            chi = closed_form_l2(field, vs, b0, lam, mask=mask, problem=prob)
        chi = reference_to_mask_mean(chi, mask)
        params["Reference"] = "mean inside the mask"
        self._results["chi"] = save_like(chi, img, "chi.nii.gz")
        self._results["parameters"] = params
        return runtime
