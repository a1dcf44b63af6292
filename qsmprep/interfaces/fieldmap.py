"""Unwrapping and multi-echo field fit nodes."""

from __future__ import annotations

import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    isdefined, traits)

from ..algorithms.echoes.echofit import echo_inconsistency, fit_field, fit_field_nonlinear, quality_mask
from ..algorithms.unwrap.romeo import romeo_unwrap
from ..algorithms.unwrap.laplacian import laplacian_unwrap, make_congruent, temporal_unwrap
from ..errors import UserInputError
from ..methods import names
from ..qc.results import consistency_warning, drop_nonfinite
from ._nifti import geometry, load, save_like


class _UnwrapInputSpec(BaseInterfaceInputSpec):
    phase = File(exists=True, mandatory=True, desc="4-D wrapped phase (radians)")
    magnitude = File(exists=True, mandatory=True, desc="4-D magnitude")
    echo_times = traits.List(traits.Float, mandatory=True, desc="echo times (s)")
    method = traits.Enum(*names("unwrap", "fieldmap.UnwrapPhase"), usedefault=True,
                         desc="temporal: echo-difference; laplacian: each echo spatially; "
                              "romeo: quality-guided region growing (template echo spatially, "
                              "the others temporally)")
    mask = File(exists=True, desc="voxels to unwrap (romeo; temporal: the echo difference's "
                                  "quality-guided tree; default all)")
    template_echo = traits.Int(2, usedefault=True,
                               desc="romeo: 1-based echo unwrapped spatially (ROMEO's default 2)")
    n_threads = traits.Int(1, usedefault=True, nohash=True,
                           desc="FFT threads; not hashed, so other thread counts reuse the cache")


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
        te = list(self.inputs.echo_times)
        if len(te) != phase.shape[-1]:
            raise UserInputError(
                f"{self.inputs.phase} has {phase.shape[-1]} echoes but {len(te)} echo times were "
                "given: check the EchoTime fields of the echo sidecars.")
        if self.inputs.method == "romeo":
            mask = load(self.inputs.mask)[0] > 0 if isdefined(self.inputs.mask) else None
            n = phase.shape[-1]
            t = min(max(self.inputs.template_echo, 1), n) - 1
            r = 0 if t != 0 else min(1, n - 1)
            out = romeo_unwrap(phase, te if n > 1 else None, mag, mask, template=t,
                               reference=r if n > 1 else 0)
        elif self.inputs.method == "temporal":
            mask = load(self.inputs.mask)[0] > 0 if isdefined(self.inputs.mask) else None
            out = temporal_unwrap(phase, te, vs, magnitudes=mag, mask=mask, workers=w)
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
    fit = traits.Enum(*names("echoes"), usedefault=True,
                      desc="linear: magnitude-weighted line fit; nonlinear: complex Gauss-Newton fit "
                           "(Liu 2013) started from it")
    apply_quality_mask = traits.Bool(True, usedefault=True,
                                     desc="drop voxels with > 0.3 wrap-step jumps from the output mask "
                                          "(False: quality_mask output is the brain mask)")


class _FitOutputSpec(TraitedSpec):
    total_field = File(exists=True, desc="total field (ppm)")
    noise = File(exists=True, desc="field standard deviation (ppm)")
    phase_offset = File(exists=True, desc="phase offset (radians)")
    quality_mask = File(exists=True, desc="brain mask without unwrapping-inconsistent voxels")
    parameters = traits.Dict(desc="for the sidecars")


class FitField(SimpleInterface):
    """Multi-echo field fit (linear or nonlinear complex); removes the phase offset."""

    input_spec = _FitInputSpec
    output_spec = _FitOutputSpec

    def _run_interface(self, runtime):
        phase, img = load(self.inputs.unwrapped)
        mag, _ = load(self.inputs.magnitude)
        mask = load(self.inputs.mask)[0] > 0
        if phase.ndim == 3:
            phase, mag = phase[..., None], mag[..., None]
        fitter = fit_field_nonlinear if self.inputs.fit == "nonlinear" else fit_field
        fit = fitter(phase, mag, self.inputs.echo_times, self.inputs.field_strength, mask)
        # voxels without signal in any echo (e.g. NaN inputs zeroed) carry no field
        no_signal = mask & ~(mag > 0).any(-1)
        mask = mask & ~no_signal
        field, mask, nonfinite = drop_nonfinite(fit.field_ppm, mask, "total field")
        self._results["total_field"] = save_like(field * mask, img, "total_field.nii.gz")
        self._results["noise"] = save_like(fit.noise_ppm, img, "noise.nii.gz")
        self._results["phase_offset"] = save_like(fit.phase_offset, img, "phase_offset.nii.gz")
        te = list(self.inputs.echo_times)
        spacing = te[1] - te[0] if len(te) > 1 else te[0]
        # a field jump counts only where the echoes disagree with the fit or the phase
        # offset jumps (three echoes or more); with two echoes every jump counts
        inconsistent = echo_inconsistency(phase, mag, self.inputs.echo_times, fit,
                                          self.inputs.field_strength, mask)
        qmask = quality_mask(mask, field, self.inputs.field_strength, spacing,
                             inconsistent=inconsistent,
                             phase_offset=fit.phase_offset if inconsistent is not None else None)
        removed = int(mask.sum() - qmask.sum())
        warnings = [nonfinite, consistency_warning(removed, int(mask.sum()),
                                                   bool(self.inputs.apply_quality_mask))]
        if no_signal.any():
            warnings.insert(0, f"{int(no_signal.sum())} brain-mask voxel(s) have no signal in "
                               "any echo (zero or non-finite magnitude); they were left out "
                               "of the mask.")
        if not self.inputs.apply_quality_mask:
            qmask = mask
        if self.inputs.apply_quality_mask and qmask.sum() < 0.5 * mask.sum():
            raise RuntimeError(
                f"over half of the brain mask has spatially inconsistent phase "
                f"({self.inputs.unwrapped}): check the echo times and phase scaling")
        self._results["quality_mask"] = save_like(qmask, img, "quality_mask.nii.gz", dtype=np.uint8)
        self._results["parameters"] = {
            "Unwrapping": self.inputs.unwrap_method,
            "EchoFit": ("magnitude-weighted linear fit with phase offset" if self.inputs.fit == "linear"
                        else "nonlinear complex fit (Gauss-Newton) with phase offset"),
            "VoxelsRemovedByConsistencyCheck": removed if self.inputs.apply_quality_mask else 0,
            "VoxelsFlaggedByConsistencyCheck": removed,
            "ConsistencyCheckApplied": bool(self.inputs.apply_quality_mask),
            "ConsistencyCriterion": ("field jumps > 0.3 wrap steps where the echoes disagree "
                                     "with the fit or the phase offset jumps"
                                     if inconsistent is not None else
                                     "field jumps > 0.3 wrap steps (two echoes)"),
            "MaskVoxelsWithoutSignal": int(no_signal.sum()),
            "QCWarnings": [w for w in warnings if w]}
        return runtime
