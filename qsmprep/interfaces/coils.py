"""Coil-combination node: uncombined 4-D channel images per echo -> combined 3-D images.

Runs before masking, and only for uncombined data (see docs/coil-combination.md). The
math is :func:`qsmprep.algorithms.coils.combine.combine_coils`; echoes are loaded one at a time
(at most two are held) so 32 channels of a large matrix fit in a few GB.
"""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, InputMultiObject,
                                    OutputMultiObject, SimpleInterface, TraitedSpec, isdefined,
                                    traits)

from ..algorithms.coils.combine import METHODS, combine_coils
from ..algorithms.phase import PHASE_UNITS, wrap
from ..algorithms.echoes.phase_offset import DEFAULT_SIGMA_MM
from ..errors import UserInputError
from ..qc.inputs import check_volumes_are_channels, convert_run_phase
from ._nifti import geometry, save_like

LOG = logging.getLogger("qsmprep")

__all__ = ["CombineCoils", "ChannelEchoes", "coil_mem_gb"]


def coil_mem_gb(shape, n_channels) -> float:
    """Memory estimate (GB) of :class:`CombineCoils`: about 5 complex64 copies of one echo's
    channels (two echoes held, the offsets or sensitivities, temporaries)."""
    return max(0.5, float(np.prod(shape)) * int(n_channels) * 8 * 5 / 1e9)


class ChannelEchoes:
    """Lazy sequence of per-echo complex ``(C, x, y, z)`` arrays read from 4-D NIfTI pairs."""

    def __init__(self, magnitudes, phases, phase_units="auto"):
        if len(magnitudes) != len(phases):
            raise UserInputError(
                f"{len(magnitudes)} magnitude but {len(phases)} phase files were given for coil "
                f"combination ({magnitudes[0] if magnitudes else phases[0]}). Give one 4-D "
                "magnitude and one 4-D phase image per echo.")
        self.magnitudes, self.phases = list(magnitudes), list(phases)
        self.phase_units = phase_units
        self.notes = set()
        img = nib.load(str(self.magnitudes[0]))
        self.ref = img
        self.shape = tuple(int(n) for n in img.shape)
        for path in self.magnitudes + self.phases:
            shp = tuple(int(n) for n in nib.load(str(path)).shape)
            if len(shp) != 4 or shp != self.shape:
                raise UserInputError(
                    f"{path} has shape {shp}, but coil combination needs 4-D images with the "
                    f"channels along the 4th axis, all of shape {self.shape} (as "
                    f"{self.magnitudes[0]}). Export every echo's magnitude and phase with all "
                    "channels, or give combined 3-D images instead (then no combination runs).")

    def __len__(self):
        return len(self.magnitudes)

    def __getitem__(self, j):
        mag = np.asanyarray(nib.load(str(self.magnitudes[j])).dataobj).astype(np.float32)
        pha = np.asanyarray(nib.load(str(self.phases[j])).dataobj)
        [rad], note = convert_run_phase([pha], [self.phases[j]], self.phase_units)
        self.notes.add(note)
        del pha
        out = np.empty((mag.shape[-1],) + mag.shape[:3], np.complex64)
        for c in range(mag.shape[-1]):
            out[c] = np.abs(mag[..., c]) * np.exp(1j * rad[..., c])
        return out


def _body_images(mags, phases, shape3, phase_units="auto"):
    out = []
    for m, p in zip(mags, phases):
        mag = np.asanyarray(nib.load(str(m)).dataobj).astype(np.float32)
        [rad], _ = convert_run_phase([np.asanyarray(nib.load(str(p)).dataobj)], [p], phase_units)
        mag, rad = np.squeeze(mag), np.squeeze(rad)
        if mag.shape != tuple(shape3) or rad.shape != tuple(shape3):
            raise UserInputError(
                f"The body-coil images {m} / {p} have shape {mag.shape} / {rad.shape}, not the "
                f"channel images' grid {tuple(shape3)}. Acquire/export the body-coil reference "
                "on the same matrix and field of view, or leave it out (MCPC-3D-S is used).")
        out.append((mag * np.exp(1j * rad)).astype(np.complex64))
    return out


class _CombineCoilsInputSpec(BaseInterfaceInputSpec):
    magnitude = InputMultiObject(File(exists=True), mandatory=True,
                                 desc="per echo, 4-D magnitude with channels on the 4th axis")
    phase = InputMultiObject(File(exists=True), mandatory=True,
                             desc="per echo, 4-D phase (any scaling) with channels on the 4th axis")
    echo_times = traits.List(traits.Float, mandatory=True, desc="echo times (s)")
    body_magnitude = InputMultiObject(File(exists=True), desc="body-coil magnitude (3-D), per echo "
                                      "or the first echo only")
    body_phase = InputMultiObject(File(exists=True), desc="body-coil phase (3-D), as body_magnitude")
    method = traits.Enum(*METHODS, usedefault=True, desc="auto: bodycoil if a body-coil image is "
                         "given, else mcpc3ds for >= 2 echoes, else adaptive")
    poly_order = traits.Range(low=0, high=6, value=2, usedefault=True,
                              desc="order of the body-coil sensitivity magnitude polynomial")
    sigma_mm = traits.Float(DEFAULT_SIGMA_MM, usedefault=True,
                            desc="Gaussian width (mm) smoothing sensitivity phases / offsets")
    n_threads = traits.Int(1, usedefault=True, nohash=True,
                           desc="FFT threads; not hashed, so other thread counts reuse the cache")
    phase_units = traits.Enum(*PHASE_UNITS, usedefault=True,
                              desc="units of the raw phase (--phase-units; auto identifies them)")


class _CombineCoilsOutputSpec(TraitedSpec):
    magnitude = OutputMultiObject(File(exists=True), desc="combined magnitude, one 3-D per echo")
    phase = OutputMultiObject(File(exists=True), desc="combined phase (radians), one 3-D per echo")
    parameters = traits.Dict(desc="method and settings, for the sidecars and the report")


class CombineCoils(SimpleInterface):
    """Combine uncombined channel images (4-D per echo) into 3-D magnitude/phase per echo."""

    input_spec = _CombineCoilsInputSpec
    output_spec = _CombineCoilsOutputSpec

    def _run_interface(self, runtime):
        echoes = ChannelEchoes(self.inputs.magnitude, self.inputs.phase, self.inputs.phase_units)
        if len(echoes) == 1:  # one 4-D file: channels, or all echoes merged into one image?
            first = self.inputs.magnitude[0]
            check_volumes_are_channels(np.asanyarray(nib.load(str(first)).dataobj), first)
        te = list(self.inputs.echo_times)
        if len(te) != len(echoes):
            raise UserInputError(
                f"{len(te)} echo times for {len(echoes)} echoes of {self.inputs.magnitude[0]}. "
                "Check the EchoTime sidecars of the channel images.")
        body = None
        bm = self.inputs.body_magnitude if isdefined(self.inputs.body_magnitude) else []
        bp = self.inputs.body_phase if isdefined(self.inputs.body_phase) else []
        if bm or bp:
            if len(bm) != len(bp):
                raise UserInputError(
                    f"Body-coil reference: {len(bm)} magnitude but {len(bp)} phase images "
                    f"({(list(bm) + list(bp))[0]}). Give matching part-mag and part-phase files.")
            body = _body_images(bm, bp, echoes.shape[:3], self.inputs.phase_units)
        vs, _ = geometry(echoes.ref)
        method = self.inputs.method
        try:
            res = combine_coils(echoes, te, tuple(float(v) for v in vs), body=body, method=method,
                                poly_order=self.inputs.poly_order, sigma_mm=self.inputs.sigma_mm,
                                workers=self.inputs.n_threads)
        except ValueError as err:
            raise UserInputError(
                f"Coil combination of {self.inputs.magnitude[0]} failed: {err}. Choose another "
                "--coil-combination method (auto picks one that fits the data).") from None
        ref3 = nib.Nifti1Image(np.zeros(echoes.shape[:3], np.float32), echoes.ref.affine,
                               echoes.ref.header)
        mags, phases = [], []
        for j, img in enumerate(res.combined):
            mags.append(save_like(np.abs(img), ref3, f"combined_echo-{j + 1}_mag.nii.gz"))
            phases.append(save_like(wrap(np.angle(img)), ref3, f"combined_echo-{j + 1}_phase.nii.gz"))
        params = dict(res.parameters)
        params["PhaseScaling"] = "; ".join(sorted(echoes.notes))
        if body is not None:
            params["BodyCoilReference"] = [str(p) for p in bm]
        LOG.info("coil combination of %s: %s (%d channels)", self.inputs.magnitude[0], res.method,
                 params["NumberOfChannels"])
        self._results["magnitude"] = mags
        self._results["phase"] = phases
        self._results["parameters"] = params
        return runtime
