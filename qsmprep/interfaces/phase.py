"""Stack echoes into 4-D magnitude/phase images, rescaling phase to radians."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, InputMultiObject, SimpleInterface,
                                    TraitedSpec, traits)

from ..algorithms.phase import PHASE_UNITS
from ..qc import add_warnings
from ..qc.inputs import (check_magnitude_signal, convert_run_phase, count_nonfinite,
                         nonfinite_warning, zero_nonfinite)
from ._nifti import load, save_like

LOG = logging.getLogger("qsmprep")


class _StackEchoesInputSpec(BaseInterfaceInputSpec):
    magnitude = InputMultiObject(File(exists=True), mandatory=True, desc="magnitude, one per echo")
    phase = InputMultiObject(File(exists=True), mandatory=True, desc="phase, one per echo")
    phase_units = traits.Enum(*PHASE_UNITS, usedefault=True,
                              desc="units of the raw phase (--phase-units): auto identifies "
                                   "radians, degrees or power-of-two integer ranges")


class _StackEchoesOutputSpec(TraitedSpec):
    magnitude = File(exists=True, desc="4-D magnitude (echoes last), float32")
    phase = File(exists=True, desc="4-D phase in radians [-pi, pi), float32")
    phase_scaling = traits.Str(desc="what was done to the phase values")
    parameters = traits.Dict(desc="for the sidecars: PhaseScaling, NonFiniteVoxels, QCWarnings")


class StackEchoes(SimpleInterface):
    """Read per-echo magnitude/phase, convert phase to radians (one decision for all echoes,
    :func:`qsmprep.qc.inputs.convert_run_phase`), zero non-finite voxels, write 4-D float32
    images. An all-zero magnitude or an unidentifiable phase range stops with a
    :class:`~qsmprep.errors.UserInputError` naming the file."""

    input_spec = _StackEchoesInputSpec
    output_spec = _StackEchoesOutputSpec

    def _run_interface(self, runtime):
        i = self.inputs
        raw, ref, counts, finite = [], None, {}, {}
        for ppath in i.phase:
            p, img = load(ppath, dtype=None)
            counts[ppath] = count_nonfinite(p)
            if counts[ppath]:  # kept to zero the magnitude there (the converted phase is 0)
                finite[ppath] = np.isfinite(p)
            raw.append(p)
        phases, note = convert_run_phase(raw, i.phase, i.phase_units)
        del raw
        mags = []
        for j, mpath in enumerate(i.magnitude):
            m, img = load(mpath)
            check_magnitude_signal(m, mpath)
            if i.phase[j] in finite:  # converted phase holds 0 there: zero the magnitude too
                m = np.where(finite[i.phase[j]], m, np.float32(0))
            m, phases[j], counts[mpath], _ = zero_nonfinite(np.abs(m), phases[j])
            mags.append(m)
            ref = ref or img
        LOG.info("%s: %s", i.phase[0], note)
        count = sum(counts.values())
        warning = nonfinite_warning({f: counts[f] for f in list(i.magnitude) + list(i.phase)},
                                    mags[0].size)
        if warning:
            LOG.warning("%s: %s", i.magnitude[0], warning)
        ref4 = nib.Nifti1Image(np.zeros((1, 1, 1, 1), np.float32), ref.affine, ref.header)
        self._results["magnitude"] = save_like(np.stack(mags, -1), ref4, "magnitude.nii.gz")
        self._results["phase"] = save_like(np.stack(phases, -1), ref4, "phase.nii.gz")
        self._results["phase_scaling"] = note
        self._results["parameters"] = add_warnings(
            {"PhaseScaling": note, "PhaseUnits": i.phase_units, "NonFiniteVoxels": count},
            [warning])
        return runtime


class _OffsetInputSpec(BaseInterfaceInputSpec):
    phase = File(exists=True, mandatory=True, desc="4-D phase (radians), echoes last")
    magnitude = File(exists=True, mandatory=True, desc="4-D magnitude, same grid")
    echo_times = traits.List(traits.Float, mandatory=True, desc="echo times (s)")
    n_threads = traits.Int(1, usedefault=True, nohash=True,
                           desc="FFT threads; not hashed, so other thread counts reuse the cache")


class _OffsetOutputSpec(TraitedSpec):
    phase = File(exists=True, desc="4-D phase (radians) with the phase offset removed")
    offset = File(exists=True, desc="the estimated phase offset (radians)")
    parameters = traits.Dict(desc="for the sidecars")


class RemovePhaseOffset(SimpleInterface):
    """MCPC-3D-S phase-offset removal before unwrapping
    (:func:`qsmprep.algorithms.echoes.phase_offset.estimate_phase_offset`): from the first two
    echoes for multi-echo data, a smoothed phase for a single echo."""

    input_spec = _OffsetInputSpec
    output_spec = _OffsetOutputSpec

    def _run_interface(self, runtime):
        from ..algorithms.echoes.phase_offset import estimate_phase_offset, remove_phase_offset
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
