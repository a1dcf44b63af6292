"""Background field removal node: loads, calls :func:`remove_background`, saves."""

from __future__ import annotations

import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    isdefined, traits)

from ..algorithms.background.sharp import SHARP_RADIUS_MM
from ..algorithms.background.remove import remove_background
from ..errors import QCError, UserInputError
from ..methods import names
from ..qc import add_warnings
from ..qc.results import drop_nonfinite
from ._nifti import geometry, load, save_like


class _BgInputSpec(BaseInterfaceInputSpec):
    total_field = File(exists=True, mandatory=True, desc="total field (ppm)")
    mask = File(exists=True, mandatory=True, desc="brain mask")
    noise = File(exists=True, desc="field noise map (ppm), weights PDF")
    method = traits.Enum(*names("background"), usedefault=True,
                         desc="background removal method")
    vsharp_radii_mm = traits.List(traits.Float, desc="V-SHARP radii (mm); default 9 mm down to 2 voxels")
    vsharp_threshold = traits.Float(0.05, usedefault=True,
                                    desc="(V-)SHARP deconvolution truncation (TSVD threshold)")
    sharp_radius_mm = traits.Float(SHARP_RADIUS_MM, usedefault=True, desc="SHARP radius (mm)")
    pdf_max_iter = traits.Int(50, usedefault=True, desc="PDF conjugate-gradient iterations")
    pdf_margin_mm = traits.Float(10.0, usedefault=True,
                                 desc="PDF source shell around the mask's bounding box (mm)")
    lbv_peel = traits.Int(1, usedefault=True, desc="LBV: layers peeled off the mask (voxels)")
    n_threads = traits.Int(1, usedefault=True, nohash=True,
                           desc="FFT threads; not hashed, so other thread counts reuse the cache")


class _BgOutputSpec(TraitedSpec):
    local_field = File(exists=True, desc="local field (ppm)")
    mask = File(exists=True, desc="mask where the local field is valid")
    parameters = traits.Dict(desc="method parameters for the sidecar")


class RemoveBackground(SimpleInterface):
    """Remove the background field: PDF (dipole fitting), SHARP, V-SHARP or LBV."""

    input_spec = _BgInputSpec
    output_spec = _BgOutputSpec

    def _run_interface(self, runtime):
        field, img = load(self.inputs.total_field)
        mask_data, mask_img = load(self.inputs.mask)
        if mask_data.shape[:3] != field.shape[:3]:
            raise UserInputError(
                f"the mask {self.inputs.mask} {mask_data.shape} is not on the grid of the field "
                f"{self.inputs.total_field} {field.shape}: give a mask on the same grid.")
        mask = mask_data > 0
        vs, b0 = geometry(img)
        i = self.inputs
        noise = load(i.noise)[0] if isdefined(i.noise) else None
        local, out_mask, params = remove_background(
            i.method, field, mask, vs, b0, noise=noise,
            radii_mm=list(i.vsharp_radii_mm) if isdefined(i.vsharp_radii_mm) else None,
            threshold=i.vsharp_threshold, radius_mm=i.sharp_radius_mm, max_iter=i.pdf_max_iter,
            margin_mm=i.pdf_margin_mm, peel=i.lbv_peel, workers=i.n_threads)
        local, out_mask, warning = drop_nonfinite(local, out_mask, "local field")
        if warning and out_mask.sum() < 100:
            raise QCError(f"Background removal ({params['Method']}) of {self.inputs.total_field} "
                          f"gave a local field that is not finite in (nearly) the whole mask: "
                          f"{warning} Check the total field and noise map in the work "
                          "directory, or choose another --background method.")
        if out_mask.sum() < 100:
            raise RuntimeError("background removal left (nearly) no voxels in the mask: "
                               "use a larger brain mask or smaller (V-)SHARP radii")
        self._results["local_field"] = save_like(local, img, "local_field.nii.gz")
        self._results["mask"] = save_like(out_mask, img, "local_mask.nii.gz", dtype=np.uint8)
        self._results["parameters"] = add_warnings(params, [warning])
        return runtime
