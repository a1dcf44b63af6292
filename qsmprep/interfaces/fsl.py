"""FSL-backed nodes: BET brain mask and PRELUDE phase unwrapping.

Drop-in replacements for the native nodes with the same inputs and outputs:
:class:`BetBrainMask` for :class:`~qsmprep.interfaces.masking.NativeBrainMask`
(``magnitude`` -> ``mask``) and :class:`PreludeUnwrap` for
:class:`~qsmprep.interfaces.fieldmap.UnwrapPhase` (``phase``, ``magnitude``,
``echo_times`` [+ ``mask``] -> ``unwrapped``). Each runs nipype's FSL interface
(``nipype.interfaces.fsl.BET`` / ``PRELUDE``) inside its own working directory and
converts the result to the pipeline's conventions:

* BET (Smith, Hum. Brain Mapp. 2002) runs on the first-echo magnitude (best SNR,
  least dephasing); its mask is binarised, reduced to its largest component,
  hole-filled and optionally eroded by ``erode_mm``, and saved as uint8 on the
  input grid.
* PRELUDE (Jenkinson, MRM 2003) unwraps each echo (3-D) from magnitude + phase
  within the brain mask; outputs are radians, but each echo carries its own global
  multiple of 2 pi, which :func:`~qsmprep.algorithms.unwrap.echo_alignment.align_echo_multiples`
  makes consistent across echoes before the 4-D float32 result is written.

Use :func:`qsmprep.fsl.resolve_fsl` to decide whether to build these nodes.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from nipype.interfaces import fsl
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    isdefined, traits)

from ..algorithms.unwrap.echo_alignment import align_echo_multiples
from ..algorithms.mask.masking import clean_mask
from ..errors import UserInputError
from ._nifti import geometry, load, save_like

__all__ = ["bet_interface", "prelude_interface", "BetBrainMask", "PreludeUnwrap"]


def bet_interface(in_file, out_file="bet_brain.nii.gz", frac: float = 0.5,
                  robust: bool = True) -> fsl.BET:
    """nipype BET writing only the mask (``<out>_mask.nii.gz``): ``bet in out -f F -m -n [-R]``."""
    return fsl.BET(in_file=str(in_file), out_file=str(out_file), frac=float(frac),
                   robust=bool(robust), mask=True, no_output=True, output_type="NIFTI_GZ")


def prelude_interface(phase_file, magnitude_file, out_file, mask_file=None) -> fsl.PRELUDE:
    """nipype PRELUDE on one 3-D echo: ``prelude --abs=M --phase=P [--mask=K] --unwrap=O``."""
    with warnings.catch_warnings():  # nipype warns that its PRELUDE wrapper is "not fully tested"
        warnings.simplefilter("ignore", UserWarning)
        node = fsl.PRELUDE(phase_file=str(phase_file), magnitude_file=str(magnitude_file),
                           unwrapped_phase_file=str(out_file), output_type="NIFTI_GZ")
    if mask_file is not None:
        node.inputs.mask_file = str(mask_file)
    return node


def _run(interface, what, cwd):
    try:
        return interface.run(cwd=cwd)
    except Exception as exc:  # FSL failed: keep the command line in the message
        raise RuntimeError(f"FSL {what} failed: {interface.cmdline}\n{exc}") from exc


class _BetInputSpec(BaseInterfaceInputSpec):
    magnitude = File(exists=True, mandatory=True, desc="3-D or 4-D (echoes last) magnitude")
    frac = traits.Range(0.0, 1.0, 0.5, usedefault=True,
                        desc="BET fractional intensity threshold (-f); smaller: larger mask")
    robust = traits.Bool(True, usedefault=True, desc="BET robust centre estimation (-R)")
    erode_mm = traits.Float(0.0, usedefault=True, desc="erosion of BET's mask (mm)")


class _BetOutputSpec(TraitedSpec):
    mask = File(exists=True, desc="brain mask (uint8)")
    parameters = traits.Dict(desc="for the sidecar")


class BetBrainMask(SimpleInterface):
    """FSL BET on the first-echo magnitude; binarised, filled, optionally eroded mask."""

    input_spec = _BetInputSpec
    output_spec = _BetOutputSpec

    def _run_interface(self, runtime):
        mag, img = load(self.inputs.magnitude)
        first = mag[..., 0] if mag.ndim == 4 else mag
        in_file = save_like(first, img, "first_echo_magnitude.nii.gz")
        bet = bet_interface(in_file, os.path.abspath("bet_brain.nii.gz"), frac=self.inputs.frac,
                            robust=self.inputs.robust)
        res = _run(bet, "BET", runtime.cwd)
        raw, raw_img = load(res.outputs.mask_file)
        if raw.shape[:3] != first.shape or not np.allclose(raw_img.affine, img.affine, atol=1e-3):
            raise RuntimeError(f"BET's mask {res.outputs.mask_file} is not on the input grid")
        vs, _ = geometry(img)
        mask = clean_mask(raw > 0, vs, erode_mm=self.inputs.erode_mm)
        if mask.sum() < 100:
            raise RuntimeError(f"BET found (nearly) no brain in {self.inputs.magnitude}: try a "
                               "smaller fractional intensity ([mask.fsl_bet] frac in the pipeline "
                               "TOML) or the native mask (--mask-method bet)")
        self._results["mask"] = save_like(mask, img, "mask.nii.gz", dtype=np.uint8)
        self._results["parameters"] = {
            "Method": "FSL BET", "FractionalIntensity": self.inputs.frac,
            "Robust": bool(self.inputs.robust), "ErosionMm": self.inputs.erode_mm,
            "CommandLine": bet.cmdline, "SkullStripped": True}
        return runtime


class _PreludeInputSpec(BaseInterfaceInputSpec):
    phase = File(exists=True, mandatory=True, desc="4-D (or 3-D) wrapped phase (radians)")
    magnitude = File(exists=True, mandatory=True, desc="magnitude, same grid")
    mask = File(exists=True, desc="brain mask (PRELUDE unwraps inside it)")
    echo_times = traits.List(traits.Float, desc="echo times (s); only recorded")


class _PreludeOutputSpec(TraitedSpec):
    unwrapped = File(exists=True, desc="4-D unwrapped phase (radians), echoes consistent")
    parameters = traits.Dict(desc="for the sidecar")


class PreludeUnwrap(SimpleInterface):
    """FSL PRELUDE on each echo, then one consistent 2 pi multiple per echo (see module doc)."""

    input_spec = _PreludeInputSpec
    output_spec = _PreludeOutputSpec

    def _run_interface(self, runtime):
        phase, img = load(self.inputs.phase)
        mag, _ = load(self.inputs.magnitude)
        if phase.ndim == 3:
            phase = phase[..., None]
        if mag.ndim == 3:
            mag = mag[..., None]
        if phase.shape != mag.shape:
            raise UserInputError(
                f"phase {self.inputs.phase} {phase.shape} and magnitude {self.inputs.magnitude} "
                f"{mag.shape} differ in shape: give the magnitude and phase of the same run.")
        mask_file = self.inputs.mask if isdefined(self.inputs.mask) else None
        mask = (load(mask_file)[0] > 0) if mask_file else np.ones(phase.shape[:3], bool)
        out, cmds = [], []
        for n in range(phase.shape[-1]):
            p = save_like(phase[..., n], img, f"phase_echo-{n + 1}.nii.gz")
            m = save_like(mag[..., n], img, f"magnitude_echo-{n + 1}.nii.gz")
            node = prelude_interface(p, m, os.path.abspath(f"unwrapped_echo-{n + 1}.nii.gz"),
                                     mask_file=mask_file)
            res = _run(node, "PRELUDE", runtime.cwd)
            out.append(load(res.outputs.unwrapped_phase_file)[0])
            cmds.append(node.cmdline)
        unw, ks = align_echo_multiples(np.stack(out, -1), phase, mask)
        unw[~mask] = 0
        self._results["unwrapped"] = save_like(unw, img, "unwrapped.nii.gz")
        self._results["parameters"] = {"Unwrapping": "FSL PRELUDE per echo",
                                       "TwoPiMultiplesAdded": ks, "CommandLines": cmds}
        return runtime
