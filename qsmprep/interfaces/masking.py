"""Native brain mask node: magnitude threshold, magnitude + phase quality, or a user mask."""

from __future__ import annotations

import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    isdefined, traits)

from ..algorithms.masking import clean_mask, magnitude_mask, phase_quality_mask
from ..errors import UserInputError
from ._nifti import geometry, load, save_like


class _MaskInputSpec(BaseInterfaceInputSpec):
    magnitude = File(exists=True, mandatory=True, desc="3-D or 4-D (echoes last) magnitude")
    phase = File(exists=True, desc="wrapped phase (radians), same grid; for phase_quality")
    method = traits.Enum("magnitude", "phase_quality", usedefault=True,
                         desc="magnitude: Otsu threshold + opening; phase_quality: also drop "
                              "voxels of incoherent phase")
    user_mask = File(exists=True, desc="a mask given by the user (NIfTI on the magnitude's grid); "
                                       "replaces the computed one")
    open_mm = traits.Float(4.0, usedefault=True, desc="opening radius (mm)")
    erode_mm = traits.Float(0.0, usedefault=True, desc="final erosion (mm)")
    quality_threshold = traits.Range(0.0, 1.0, 0.9, usedefault=True,
                                     desc="phase-quality threshold (phase_quality method)")


class _MaskOutputSpec(TraitedSpec):
    mask = File(exists=True, desc="brain mask (uint8)")
    parameters = traits.Dict(desc="for the sidecar")


def _same_grid(img, ref_img, atol=1e-3) -> bool:
    return (tuple(img.shape[:3]) == tuple(ref_img.shape[:3])
            and np.allclose(img.affine, ref_img.affine, atol=atol))


class NativeBrainMask(SimpleInterface):
    """Brain mask: magnitude threshold (default), magnitude + phase quality, or a user mask.

    A ``user_mask`` must lie on the magnitude's voxel grid (same shape and affine);
    it is binarised (> 0), reduced to its largest component, hole-filled and eroded by
    ``erode_mm``.
    """

    input_spec = _MaskInputSpec
    output_spec = _MaskOutputSpec

    def _run_interface(self, runtime):
        mag, img = load(self.inputs.magnitude)
        vs, _ = geometry(img)
        i = self.inputs
        if isdefined(i.user_mask):
            data, mimg = load(i.user_mask)
            if data.ndim == 4 and data.shape[3] == 1:
                data = data[..., 0]
            if data.ndim != 3 or not _same_grid(mimg, img):
                raise UserInputError(
                    f"the brain mask {i.user_mask} (shape {tuple(mimg.shape)}) is not on the grid "
                    f"of the magnitude image {i.magnitude} (shape {tuple(img.shape[:3])}, same "
                    "affine required): resample the mask to the gradient-echo images, e.g. "
                    "`antsApplyTransforms -n NearestNeighbor -r <first-echo magnitude>` or "
                    "`flirt -applyxfm -usesqform -interp nearestneighbour -ref <magnitude>`, or "
                    "leave out the mask option to compute one.")
            mask = clean_mask(data > 0, vs, erode_mm=i.erode_mm)
            params = {"Method": "user-supplied mask", "Source": str(i.user_mask),
                      "ErosionMm": i.erode_mm}
        elif i.method == "phase_quality":
            if not isdefined(i.phase):
                raise ValueError("the phase_quality mask needs the phase input")
            phase, pimg = load(i.phase)
            if phase.shape != mag.shape:
                raise UserInputError(
                    f"phase {i.phase} {phase.shape} and magnitude {i.magnitude} {mag.shape} "
                    "differ in shape: give the magnitude and phase of the same run.")
            mask = phase_quality_mask(mag, phase, vs, quality_threshold=i.quality_threshold,
                                      open_mm=i.open_mm, erode_mm=i.erode_mm)
            params = {"Method": "magnitude threshold (Otsu) and phase quality (neighbour "
                                "coherence) + opening", "QualityThreshold": i.quality_threshold,
                      "OpeningMm": i.open_mm, "ErosionMm": i.erode_mm}
        else:
            mask = magnitude_mask(mag, vs, open_mm=i.open_mm, erode_mm=i.erode_mm)
            params = {"Method": "native magnitude threshold (Otsu) + opening",
                      "OpeningMm": i.open_mm, "ErosionMm": i.erode_mm}
        if mask.sum() < 100:
            src = i.user_mask if isdefined(i.user_mask) else i.magnitude
            raise RuntimeError(f"brain mask from {src} is (nearly) empty")
        self._results["mask"] = save_like(mask, img, "mask.nii.gz", dtype=np.uint8)
        self._results["parameters"] = params
        return runtime
