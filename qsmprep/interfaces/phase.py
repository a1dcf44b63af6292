"""Stack echoes into 4-D magnitude/phase images, rescaling phase to radians."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, InputMultiObject, SimpleInterface,
                                    TraitedSpec, traits)

from ..algorithms.phase import rescale_phase
from ._nifti import load, save_like

LOG = logging.getLogger("qsmprep")


class _StackEchoesInputSpec(BaseInterfaceInputSpec):
    magnitude = InputMultiObject(File(exists=True), mandatory=True, desc="magnitude, one per echo")
    phase = InputMultiObject(File(exists=True), mandatory=True, desc="phase, one per echo")


class _StackEchoesOutputSpec(TraitedSpec):
    magnitude = File(exists=True, desc="4-D magnitude (echoes last), float32")
    phase = File(exists=True, desc="4-D phase in radians [-pi, pi), float32")
    phase_scaling = traits.Str(desc="what was done to the phase values")


class StackEchoes(SimpleInterface):
    """Read per-echo magnitude/phase, rescale phase to radians, write 4-D float32 images."""

    input_spec = _StackEchoesInputSpec
    output_spec = _StackEchoesOutputSpec

    def _run_interface(self, runtime):
        mags, phases, notes = [], [], set()
        ref = None
        for mpath, ppath in zip(self.inputs.magnitude, self.inputs.phase):
            m, img = load(mpath)
            p, _ = load(ppath, dtype=None)
            rad, note = rescale_phase(p)
            notes.add(note)
            mags.append(np.abs(m))
            phases.append(rad)
            ref = ref or img
        note = "; ".join(sorted(notes))
        if note != "phase already in radians":
            LOG.info("%s: %s", self.inputs.phase[0], note)
        ref4 = nib.Nifti1Image(np.zeros((1, 1, 1, 1), np.float32), ref.affine, ref.header)
        self._results["magnitude"] = save_like(np.stack(mags, -1), ref4, "magnitude.nii.gz")
        self._results["phase"] = save_like(np.stack(phases, -1), ref4, "phase.nii.gz")
        self._results["phase_scaling"] = note
        return runtime


class _OffsetInputSpec(BaseInterfaceInputSpec):
    phase = File(exists=True, mandatory=True, desc="4-D phase (radians), echoes last")
    magnitude = File(exists=True, mandatory=True, desc="4-D magnitude, same grid")
    echo_times = traits.List(traits.Float, mandatory=True, desc="echo times (s)")
    n_threads = traits.Int(1, usedefault=True, desc="FFT threads")


class _OffsetOutputSpec(TraitedSpec):
    phase = File(exists=True, desc="4-D phase (radians) with the phase offset removed")
    offset = File(exists=True, desc="the estimated phase offset (radians)")
    parameters = traits.Dict(desc="for the sidecars")


class RemovePhaseOffset(SimpleInterface):
    """MCPC-3D-S phase-offset removal before unwrapping
    (:func:`qsmprep.algorithms.phase_offset.estimate_phase_offset`): from the first two
    echoes for multi-echo data, a smoothed phase for a single echo."""

    input_spec = _OffsetInputSpec
    output_spec = _OffsetOutputSpec

    def _run_interface(self, runtime):
        from ..algorithms.phase_offset import estimate_phase_offset, remove_phase_offset
        from ._nifti import geometry

        phase, img = load(self.inputs.phase)
        mag = load(self.inputs.magnitude)[0]
        vs, _ = geometry(img)
        te = list(self.inputs.echo_times)
        off = estimate_phase_offset(phase, te, vs, magnitude=mag, workers=self.inputs.n_threads)
        self._results["phase"] = save_like(remove_phase_offset(phase, off), img, "phase.nii.gz")
        self._results["offset"] = save_like(off, img, "offset.nii.gz")
        self._results["parameters"] = {
            "PhaseOffset": "MCPC-3D-S (Eckstein et al. 2018) from echoes 1-2" if len(te) > 1
            else "single echo: magnitude-weighted smoothed phase (removes the smooth field too)"}
        return runtime
