"""Native brain mask node."""

from __future__ import annotations

import numpy as np
from nipype.interfaces.base import BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec, traits

from ..algorithms.masking import magnitude_mask
from ._nifti import geometry, load, save_like


class _MaskInputSpec(BaseInterfaceInputSpec):
    magnitude = File(exists=True, mandatory=True, desc="3-D or 4-D (echoes last) magnitude")
    open_mm = traits.Float(4.0, usedefault=True, desc="opening radius (mm)")
    erode_mm = traits.Float(0.0, usedefault=True, desc="final erosion (mm)")


class _MaskOutputSpec(TraitedSpec):
    mask = File(exists=True, desc="brain mask (uint8)")


class NativeBrainMask(SimpleInterface):
    """Brain mask from magnitude: Otsu threshold, opening, largest component, hole filling."""

    input_spec = _MaskInputSpec
    output_spec = _MaskOutputSpec

    def _run_interface(self, runtime):
        mag, img = load(self.inputs.magnitude)
        vs, _ = geometry(img)
        mask = magnitude_mask(mag, vs, open_mm=self.inputs.open_mm, erode_mm=self.inputs.erode_mm)
        if mask.sum() < 100:
            raise RuntimeError(f"brain mask of {self.inputs.magnitude} is (nearly) empty")
        self._results["mask"] = save_like(mask, img, "mask.nii.gz", dtype=np.uint8)
        return runtime
