"""Native brain mask node: BET surface (default), magnitude threshold, magnitude + phase
quality, or a user mask; the mask's plausibility warnings go to ``QCWarnings``."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    isdefined, traits)

from ..algorithms.mask.bet import brain_extraction
from ..algorithms.mask.masking import (ball, clean_mask, magnitude_mask, opened_within, phase_quality,
                                  phase_quality_mask)
from ..errors import UserInputError
from ..methods import names
from ..qc import add_warnings
from ..qc.mask import mask_volume_l, mask_warnings
from ._nifti import geometry, load, save_like


class _MaskInputSpec(BaseInterfaceInputSpec):
    magnitude = File(exists=True, mandatory=True, desc="3-D or 4-D (echoes last) magnitude")
    phase = File(exists=True, desc="wrapped phase (radians), same grid; for phase_quality, "
                                   "and refines the bet mask")
    method = traits.Enum(*names("mask", "masking.NativeBrainMask"), usedefault=True,
                         desc="bet: native BET surface (Smith 2002); magnitude: Otsu threshold "
                              "+ opening; phase_quality: also drop voxels of incoherent phase")
    user_mask = File(exists=True, desc="a mask given by the user (NIfTI on the magnitude's grid); "
                                       "replaces the computed one")
    open_mm = traits.Float(4.0, usedefault=True, desc="opening radius (mm)")
    erode_mm = traits.Float(0.0, usedefault=True, desc="final erosion (mm)")
    quality_threshold = traits.Range(0.0, 1.0, 0.9, usedefault=True,
                                     desc="phase-quality threshold (phase_quality method; "
                                          "bet refinement when the phase is given)")
    frac = traits.Range(0.0, 1.0, 0.5, usedefault=True,
                            desc="BET fractional intensity threshold; smaller: larger mask")
    d1_mm = traits.Float(20.0, usedefault=True, desc="BET minimum-intensity search depth (mm)")
    d2_mm = traits.Float(10.0, usedefault=True, desc="BET maximum-intensity search depth (mm)")
    iterations = traits.Int(1000, usedefault=True, desc="BET surface iterations")


class _MaskOutputSpec(TraitedSpec):
    mask = File(exists=True, desc="brain mask (uint8)")
    parameters = traits.Dict(desc="for the sidecar")


def _same_grid(img, ref_img, atol=1e-3) -> bool:
    return (tuple(img.shape[:3]) == tuple(ref_img.shape[:3])
            and np.allclose(img.affine, ref_img.affine, atol=atol))


class NativeBrainMask(SimpleInterface):
    """Brain mask: native BET (default), magnitude threshold, magnitude + phase quality, or a
    user mask.

    A ``user_mask`` must lie on the magnitude's voxel grid (same shape and affine);
    it is binarised (> 0), reduced to its largest component, hole-filled and eroded by
    ``erode_mm``. ``parameters`` carries ``SkullStripped`` (true for a brain extraction:
    bet's surface or a pre-stripped input, or a user's brain mask) and ``QCWarnings``
    (:func:`qsmprep.qc.mask.mask_warnings`, and bet's field-of-view-inside-the-brain note).
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
                      "ErosionMm": i.erode_mm, "SkullStripped": True}
        elif i.method == "bet":
            mask, params = self._bet(mag, vs)
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
                      "OpeningMm": i.open_mm, "ErosionMm": i.erode_mm, "SkullStripped": False}
        else:
            mask = magnitude_mask(mag, vs, open_mm=i.open_mm, erode_mm=i.erode_mm)
            params = {"Method": "native magnitude threshold (Otsu) + opening",
                      "OpeningMm": i.open_mm, "ErosionMm": i.erode_mm, "SkullStripped": False}
        if mask.sum() < 100:
            src = i.user_mask if isdefined(i.user_mask) else i.magnitude
            raise RuntimeError(f"brain mask from {src} is (nearly) empty")
        params["VolumeL"] = round(mask_volume_l(mask, vs), 4)
        notes = params.pop("_notes", [])
        qc = mask_warnings(mask, vs, fov_inside_brain=params.get("Mode") == "fov_inside_brain")
        self._results["mask"] = save_like(mask, img, "mask.nii.gz", dtype=np.uint8)
        self._results["parameters"] = add_warnings(params, notes + qc)
        return runtime

    def _bet(self, mag, vs):
        """Native BET; a field of view inside the brain is noted for the warnings. With the
        phase, voxels of phase quality at or below ``quality_threshold`` are dropped and the
        rest opened by ``open_mm`` as in the phase-quality mask (:func:`opened_within`; a bare
        threshold left dephased rim voxels: demo phantom 62.6% -> 51.0% NRMSE with the
        opening)."""
        i = self.inputs
        res = brain_extraction(mag, vs, frac=i.frac, d1_mm=i.d1_mm, d2_mm=i.d2_mm,
                               iterations=i.iterations)
        mask = res.mask
        params = {"Method": "native BET (Smith, Hum Brain Mapp 2002) on the root-sum-of-squares "
                            "magnitude", "Mode": res.mode, "FractionalIntensity": i.frac,
                  "SearchDepthsMm": [i.d1_mm, i.d2_mm], "Iterations": i.iterations,
                  "SelfIntersectionRestarts": res.restarts,
                  "SkullStripped": res.mode != "fov_inside_brain", "_notes": list(res.notes)}
        if res.mode == "fov_inside_brain":  # the coverage warning of mask_warnings says it;
            params["FieldOfViewInsideBrain"] = params.pop("_notes")  # the why goes in the sidecar
            params["_notes"] = []
        if res.self_intersecting:
            params["_notes"].append("the brain surface still intersects itself after "
                                    f"{res.restarts} smoother restarts: look at the mask")
        if isdefined(i.phase) and res.mode != "premasked":
            phase = self._phase(mag)
            refined = opened_within(mask & (phase_quality(mag, phase) > i.quality_threshold),
                                    vs, i.open_mm)
            if refined.sum() >= 0.5 * mask.sum():
                params["PhaseQualityThreshold"] = i.quality_threshold
                params["PhaseQualityRemovedVoxels"] = int(mask.sum() - refined.sum())
                mask = refined
        if i.erode_mm > 0:
            mask = ndimage.binary_erosion(mask, structure=ball(i.erode_mm, vs))
        params["ErosionMm"] = i.erode_mm
        return mask, params

    def _phase(self, mag):
        i = self.inputs
        phase, _ = load(i.phase)
        if phase.shape != mag.shape:
            raise UserInputError(
                f"phase {i.phase} {phase.shape} and magnitude {i.magnitude} {mag.shape} "
                "differ in shape: give the magnitude and phase of the same run.")
        return phase
