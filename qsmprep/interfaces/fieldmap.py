"""Unwrapping and multi-echo field fit nodes."""

from __future__ import annotations

import numpy as np
from nipype.interfaces.base import BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec, traits

from ..algorithms.echofit import fit_field, quality_mask
from ..algorithms.unwrap import laplacian_unwrap, make_congruent, temporal_unwrap
from ._nifti import geometry, load, save_like


class _UnwrapInputSpec(BaseInterfaceInputSpec):
    phase = File(exists=True, mandatory=True, desc="4-D wrapped phase (radians)")
    magnitude = File(exists=True, mandatory=True, desc="4-D magnitude")
    echo_times = traits.List(traits.Float, mandatory=True, desc="echo times (s)")
    method = traits.Enum("temporal", "laplacian", usedefault=True,
                         desc="temporal: echo-difference; laplacian: each echo spatially")
    n_threads = traits.Int(1, usedefault=True, desc="FFT threads")


class _UnwrapOutputSpec(TraitedSpec):
    unwrapped = File(exists=True, desc="4-D unwrapped phase (radians)")


class UnwrapPhase(SimpleInterface):
    """Unwrap multi-echo phase (temporal echo-difference or per-echo Laplacian)."""

    input_spec = _UnwrapInputSpec
    output_spec = _UnwrapOutputSpec

    def _run_interface(self, runtime):
        phase, img = load(self.inputs.phase)
        mag, _ = load(self.inputs.magnitude)
        if phase.ndim == 3:
            phase, mag = phase[..., None], mag[..., None]
        vs, _ = geometry(img)
        w = self.inputs.n_threads
        if self.inputs.method == "temporal":
            out = temporal_unwrap(phase, self.inputs.echo_times, vs, magnitudes=mag, workers=w)
        else:
            out = np.stack([make_congruent(phase[..., j], laplacian_unwrap(phase[..., j], vs, workers=w))
                            for j in range(phase.shape[-1])], -1)
        self._results["unwrapped"] = save_like(out, img, "unwrapped.nii.gz")
        return runtime


class _FitInputSpec(BaseInterfaceInputSpec):
    unwrapped = File(exists=True, mandatory=True, desc="4-D unwrapped phase (radians)")
    magnitude = File(exists=True, mandatory=True, desc="4-D magnitude")
    mask = File(exists=True, mandatory=True, desc="brain mask")
    echo_times = traits.List(traits.Float, mandatory=True, desc="echo times (s)")
    field_strength = traits.Float(mandatory=True, desc="B0 (T)")
    unwrap_method = traits.Str("temporal", usedefault=True, desc="recorded in the parameters")


class _FitOutputSpec(TraitedSpec):
    total_field = File(exists=True, desc="total field (ppm)")
    noise = File(exists=True, desc="field standard deviation (ppm)")
    phase_offset = File(exists=True, desc="phase offset (radians)")
    quality_mask = File(exists=True, desc="brain mask without unwrapping-inconsistent voxels")
    parameters = traits.Dict(desc="for the sidecars")


class FitField(SimpleInterface):
    """Magnitude-weighted linear fit of phase vs TE; removes the phase offset."""

    input_spec = _FitInputSpec
    output_spec = _FitOutputSpec

    def _run_interface(self, runtime):
        phase, img = load(self.inputs.unwrapped)
        mag, _ = load(self.inputs.magnitude)
        mask = load(self.inputs.mask)[0] > 0
        if phase.ndim == 3:
            phase, mag = phase[..., None], mag[..., None]
        fit = fit_field(phase, mag, self.inputs.echo_times, self.inputs.field_strength, mask)
        self._results["total_field"] = save_like(fit.field_ppm * mask, img, "total_field.nii.gz")
        self._results["noise"] = save_like(fit.noise_ppm, img, "noise.nii.gz")
        self._results["phase_offset"] = save_like(fit.phase_offset, img, "phase_offset.nii.gz")
        te = list(self.inputs.echo_times)
        spacing = te[1] - te[0] if len(te) > 1 else te[0]
        qmask = quality_mask(mask, fit.field_ppm, self.inputs.field_strength, spacing)
        if qmask.sum() < 0.5 * mask.sum():
            raise RuntimeError(
                f"over half of the brain mask has spatially inconsistent phase "
                f"({self.inputs.unwrapped}): check the echo times and phase scaling")
        self._results["quality_mask"] = save_like(qmask, img, "quality_mask.nii.gz", dtype=np.uint8)
        self._results["parameters"] = {
            "Unwrapping": self.inputs.unwrap_method,
            "EchoFit": "magnitude-weighted linear fit with phase offset",
            "VoxelsRemovedByConsistencyCheck": int(mask.sum() - qmask.sum())}
        return runtime
