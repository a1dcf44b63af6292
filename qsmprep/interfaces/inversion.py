"""Dipole inversion node: closed-form L2 (automatic lambda), TKD, weighted CG, FOCUSS-QSM,
magnitude-weighted TV (MEDI-like, ADMM)."""

from __future__ import annotations

from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    isdefined, traits)

from ..algorithms.cg import cg_l2
from ..algorithms.focuss import focuss_qsm
from ..algorithms.inversion import KSpaceProblem, closed_form_l2, tkd
from ..algorithms.lambda_selection import choose_l2_lambda, select_lambda
from ..algorithms.reference import reference_to_mask_mean
from ..algorithms.tv import TV_LAMBDA_FACTOR, tv_admm
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
        method = self.inputs.method
        if method == "tv":
            chi, params = self._tv(field, img, mask, vs, b0, w)
        elif method in ("cg", "focuss"):
            chi, params = self._iterative(field, img, mask, vs, b0, w)
        elif method == "tkd":
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
                lam, sweep = choose_l2_lambda(prob, self.inputs.lambda_rule)
                params["LambdaSelection"] = self.inputs.lambda_rule
                params["LambdaSweep"] = [float(v) for v in sweep.lambdas]
                params["LCurveCornerLambda"] = select_lambda(sweep, "lcurve")
            params["Lambda"] = lam
            chi = closed_form_l2(field, vs, b0, lam, mask=mask, problem=prob)
        chi = reference_to_mask_mean(chi, mask)
        check_chimap(chi, mask, self.inputs.local_field)
        params["Reference"] = "mean inside the mask"
        self._results["chi"] = save_like(chi, img, "chi.nii.gz")
        self._results["parameters"] = params
        return runtime

    def _auto_lambda(self, field, mask, vs, b0, w):
        if isdefined(self.inputs.lam):
            return float(self.inputs.lam), "fixed"
        prob = KSpaceProblem(field, vs, b0, mask=mask, workers=w)
        return choose_l2_lambda(prob, self.inputs.lambda_rule)[0], self.inputs.lambda_rule

    def _iterative(self, field, img, mask, vs, b0, w):
        convention = ("weight of sum_i ||G_i chi||^2, G_i forward difference / voxel size "
                      "(1/mm)")
        lam, rule = self._auto_lambda(field, mask, vs, b0, w)
        if self.inputs.method == "cg":
            noise = (load_matching(self.inputs.noise, img, "noise")
                     if isdefined(self.inputs.noise) else None)
            res = cg_l2(field, vs, b0, lam, mask=mask, noise=noise,
                        max_iter=self.inputs.max_iter, workers=w)
            return res.chi, {"Method": "weighted L2 by preconditioned conjugate gradients",
                             "LambdaConvention": convention, "Lambda": lam,
                             "LambdaSelection": rule, "Iterations": res.iterations,
                             "NoiseWeighted": noise is not None}
        if not isdefined(self.inputs.magnitude):
            raise UserInputError(
                "FOCUSS-QSM needs a magnitude image (its edges are the prior), but none was "
                f"given for the local field {self.inputs.local_field}. Provide the magnitude "
                "(connect 'magnitude') or choose another inversion method (l2, cg, tkd).")
        mag = load_matching(self.inputs.magnitude, img, "magnitude")
        res = focuss_qsm(field, mag, mask, vs, b0, lam=lam, workers=w)
        return res.chi, {"Method": "FOCUSS-QSM with magnitude prior",
                         "LambdaConvention": "final fit: weight of sum_i ||G_i chi - g_i||^2 "
                                             "(1/mm gradients); FOCUSS beta: weight of ||q||^2",
                         "Lambda": lam, "LambdaSelection": rule, "Beta": res.beta,
                         "BetaSelection": "gcv of the unweighted gradient-domain problem"}

    def _tv(self, field, img, mask, vs, b0, w):
        if not isdefined(self.inputs.magnitude):
            raise UserInputError(
                "TV inversion (MEDI-like) needs a magnitude image (its edges are not "
                f"penalised), but none was given for the local field {self.inputs.local_field}. "
                "Provide the magnitude (connect 'magnitude') or choose another inversion "
                "method (l2, cg, tkd).")
        mag = load_matching(self.inputs.magnitude, img, "magnitude")
        noise = (load_matching(self.inputs.noise, img, "noise")
                 if isdefined(self.inputs.noise) else None)
        lam = float(self.inputs.tv_lam) if isdefined(self.inputs.tv_lam) else None
        res = tv_admm(field, mask, vs, b0, magnitude=mag, lam=lam, noise=noise, workers=w)
        return res.chi, {"Method": "magnitude-weighted total variation by ADMM (MEDI-like)",
                         "LambdaConvention": "weight of sum_i ||M_i G_i chi||_1, G_i forward "
                                             "difference / voxel size (1/mm), M_i = 0 on the "
                                             "30% largest magnitude gradients",
                         "Lambda": res.lam,
                         "LambdaSelection": "fixed" if lam is not None else
                         f"{TV_LAMBDA_FACTOR:g} x 2 x GCV L2 lambda x RMS gradient of the L2 solution",
                         "Rho": res.rho, "Iterations": res.iterations,
                         "NoiseWeighted": noise is not None}
