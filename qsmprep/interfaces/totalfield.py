"""Total field inversion node (TFI, Liu et al. MRM 2017): chi from the total field, in place
of background removal + dipole inversion."""

from __future__ import annotations

import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    isdefined, traits)

from ..algorithms.inversion.tfi import TFI_LAMBDA_FACTOR, tfi
from ..errors import UserInputError
from ..qc.results import check_chimap
from ._nifti import geometry, load, load_matching, save_like


class _TFIInputSpec(BaseInterfaceInputSpec):
    total_field = File(exists=True, mandatory=True, desc="total (unwrapped) field, ppm")
    mask = File(exists=True, mandatory=True, desc="brain mask: where the field is trusted")
    magnitude = File(exists=True, desc="magnitude (3-D or 4-D echoes); only checked for "
                                       "grid agreement and recorded (not used by the L2 TFI)")
    noise = File(exists=True, desc="field noise map (ppm); weights the data by 1/noise")
    lam = traits.Float(desc="weight of sum_i ||M_i G_i chi||^2 inside the mask (ppm^2/mm^2); "
                            "automatic (GCV on a V-SHARP local field) if unset")
    p_out = traits.Float(30.0, usedefault=True, desc="preconditioner value outside the mask")
    max_iter = traits.Int(300, usedefault=True, desc="CG iterations (the background's "
                                                     "regulariser: do not raise blindly)")
    n_threads = traits.Int(1, usedefault=True, nohash=True,
                           desc="FFT threads; not hashed, so other thread counts reuse the cache")


class _TFIOutputSpec(TraitedSpec):
    chi = File(exists=True, desc="susceptibility (ppm), referenced to the mask mean")
    mask = File(exists=True, desc="the mask chi is valid in (the input mask)")
    parameters = traits.Dict(desc="method parameters for the sidecar")


class TotalFieldInversion(SimpleInterface):
    """Invert the total field for chi inside the mask (ppm) with background sources outside."""

    input_spec = _TFIInputSpec
    output_spec = _TFIOutputSpec

    def _run_interface(self, runtime):
        field, img = load(self.inputs.total_field)
        if field.ndim != 3:
            raise UserInputError(
                f"The total field {self.inputs.total_field} has {field.ndim} dimensions; total "
                "field inversion needs one 3-D field map (ppm). Fit the echoes into one field "
                "map first (the FitField node) and pass that.")
        mask = load_matching(self.inputs.mask, img, "mask") > 0
        if not mask.any():
            raise UserInputError(
                f"The mask {self.inputs.mask} is empty, so there is no region where the field "
                f"{self.inputs.total_field} can be inverted. Check the brain-masking step.")
        noise = (load_matching(self.inputs.noise, img, "noise")
                 if isdefined(self.inputs.noise) else None)
        if isdefined(self.inputs.magnitude):
            load_matching(self.inputs.magnitude, img, "magnitude")
        vs, b0 = geometry(img)
        lam = float(self.inputs.lam) if isdefined(self.inputs.lam) else None
        res = tfi(field, mask, vs, b0, noise=noise, lam=lam, p_out=self.inputs.p_out,
                  max_iter=self.inputs.max_iter, tol=0.0, workers=self.inputs.n_threads)
        check_chimap(res.chi, mask, self.inputs.total_field)
        self._results["chi"] = save_like(res.chi, img, "chi.nii.gz")
        self._results["mask"] = save_like(mask.astype(np.uint8), img, "mask.nii.gz",
                                          dtype=np.uint8)
        self._results["parameters"] = {
            "Method": "preconditioned total field inversion (Liu et al. 2017), L2 gradient "
                      "regulariser inside the mask, solved by conjugate gradients",
            "LambdaConvention": "weight of sum_i ||M_i G_i chi||^2 inside the mask, G_i forward "
                                "difference / voxel size (1/mm)",
            "Lambda": res.lam,
            "LambdaSelection": "fixed" if lam is not None else
            f"{TFI_LAMBDA_FACTOR} x GCV lambda of closed-form L2 on a V-SHARP local field",
            "PreconditionerOutside": float(self.inputs.p_out),
            "Iterations": res.iterations,
            "NoiseWeighted": noise is not None,
            "Reference": "mean inside the mask",
        }
        return runtime
