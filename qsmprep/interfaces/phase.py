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
