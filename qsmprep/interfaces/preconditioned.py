"""Prior-preconditioned rQSM node (seed 002): R2* prior from the echoes, residual inversion.

Takes the TOTAL field (it does its own background removal after subtracting the
prior's field), the object mask, the multi-echo magnitude (4-D) and the echo times.
"""

from __future__ import annotations

from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    isdefined, traits)

from ..algorithms.inversion.preconditioned import (preconditioned_qsm, prior_chi_estimate,
                                         r2star_loglinear)
from ..errors import UserInputError
from ..qc.results import check_chimap
from ._nifti import geometry, load, save_like


class _PreInputSpec(BaseInterfaceInputSpec):
    total_field = File(exists=True, mandatory=True, desc="total field (ppm of B0)")
    mask = File(exists=True, mandatory=True, desc="object (brain) mask")
    magnitudes = File(exists=True, mandatory=True, desc="4-D multi-echo magnitude")
    echo_times = traits.List(traits.Float, mandatory=True, desc="echo times (s)")
    b0_tesla = traits.Float(mandatory=True, desc="field strength (T)")
    noise = File(exists=True, desc="field noise map (ppm), for PDF weights")
    background = traits.Enum("vsharp", "pdf", usedefault=True, desc="background removal")
    lam = traits.Float(desc="L2 lambda of the residual inversion (weight of ||grad chi||^2, "
                            "1/mm gradients); GCV if unset")
    r2prime_threshold = traits.Float(5.0, usedefault=True,
                                     desc="R2' (1/s) above which voxels form compartments")
    chi_outside = traits.Float(9.4, usedefault=True, desc="prior chi outside the mask (ppm)")


class _PreOutputSpec(TraitedSpec):
    chi = File(exists=True, desc="susceptibility (ppm) relative to the compartment-free tissue")
    chi_prior = File(exists=True, desc="the R2*-based prior chi (ppm)")
    r2star = File(exists=True, desc="R2* map (1/s) from the log-linear fit")
    mask = File(exists=True, desc="mask after background removal")
    parameters = traits.Dict(desc="method parameters for the sidecar")


class PreconditionedQSM(SimpleInterface):
    """Seed-002 prior-preconditioned regularised QSM (see the algorithm module)."""

    input_spec = _PreInputSpec
    output_spec = _PreOutputSpec

    def _run_interface(self, runtime):
        field, img = load(self.inputs.total_field)
        mask = load(self.inputs.mask)[0] > 0
        mags = load(self.inputs.magnitudes)[0]
        te = list(self.inputs.echo_times)
        if mags.ndim != 4 or mags.shape[:3] != field.shape or mags.shape[3] != len(te) \
                or len(te) < 2:
            raise UserInputError(
                f"Prior-preconditioned QSM needs a 4-D magnitude with one volume per echo on "
                f"the field's grid: {self.inputs.magnitudes} has shape {mags.shape}, the field "
                f"{self.inputs.total_field} has {field.shape} and {len(te)} echo times were "
                "given. Pass the multi-echo magnitude (at least two echoes) matching the field.")
        vs, b0 = geometry(img)
        noise = load(self.inputs.noise)[0] if isdefined(self.inputs.noise) else None
        r2s = r2star_loglinear(mags, te, mask)
        chi0 = prior_chi_estimate(r2s, mask, self.inputs.b0_tesla,
                                  r2prime_threshold=self.inputs.r2prime_threshold,
                                  chi_outside=self.inputs.chi_outside)
        lam = float(self.inputs.lam) if isdefined(self.inputs.lam) else None
        res = preconditioned_qsm(field, chi0, mask, vs, b0, background=self.inputs.background,
                                 noise=noise, lam=lam)
        check_chimap(res.chi, res.mask, self.inputs.total_field)
        self._results["chi"] = save_like(res.chi, img, "chi.nii.gz")
        self._results["chi_prior"] = save_like(chi0 * mask, img, "chi_prior.nii.gz")
        self._results["r2star"] = save_like(r2s, img, "r2star.nii.gz")
        self._results["mask"] = save_like(res.mask, img, "mask.nii.gz", dtype="uint8")
        self._results["parameters"] = {
            "Method": "prior-preconditioned regularised QSM (R2' prior, residual L2)",
            "Background": self.inputs.background, "Lambda": res.lam,
            "LambdaSelection": "fixed" if lam is not None else "gcv",
            "LambdaConvention": "weight of sum_i ||G_i chi||^2 (1/mm gradients)",
            "R2PrimeThreshold": self.inputs.r2prime_threshold,
            "Reference": "tissue outside the R2' compartments"}
        return runtime
