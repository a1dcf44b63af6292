"""R2*/T2* map node (log-linear or ARLO fit of the multi-echo magnitude)."""

from __future__ import annotations

import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    isdefined, traits)

from ..algorithms.echoes.r2star import R2STAR_METHODS, r2star_map
from ..errors import UserInputError
from ._nifti import load, save_like


class _R2StarInputSpec(BaseInterfaceInputSpec):
    magnitude = File(exists=True, mandatory=True, desc="4-D multi-echo magnitude")
    echo_times = traits.List(traits.Float, mandatory=True, desc="echo times (s)")
    method = traits.Enum(*R2STAR_METHODS, usedefault=True,
                         desc="arlo (equally spaced echoes, >= 3) or loglinear (>= 2)")
    mask = File(exists=True, desc="voxels to fit (default: all with signal)")
    r2star_max = traits.Float(1000.0, usedefault=True, desc="R2* clip (1/s)")
    t2star_max = traits.Float(1.0, usedefault=True, desc="T2* cap (s)")


class _R2StarOutputSpec(TraitedSpec):
    r2star = File(exists=True, desc="R2* (1/s)")
    t2star = File(exists=True, desc="T2* (s)")
    parameters = traits.Dict(desc="for the sidecars")


class R2StarMap(SimpleInterface):
    """R2* and T2* maps from multi-echo magnitude (:mod:`qsmprep.algorithms.echoes.r2star`)."""

    input_spec = _R2StarInputSpec
    output_spec = _R2StarOutputSpec

    def _run_interface(self, runtime):
        mag, img = load(self.inputs.magnitude)
        te = list(self.inputs.echo_times)
        method = self.inputs.method
        if mag.ndim != 4 or mag.shape[-1] != len(te):
            n = mag.shape[-1] if mag.ndim == 4 else 1
            raise UserInputError(
                f"{self.inputs.magnitude} has {n} echoes but {len(te)} echo times were given; "
                "R2*/T2* maps need a 4-D multi-echo magnitude with one EchoTime per echo: "
                "check the echo sidecars, or switch the R2* map off for single-echo data.")
        min_echoes = 3 if method == "arlo" else 2
        if len(te) < min_echoes:
            raise UserInputError(
                f"{self.inputs.magnitude} has {len(te)} echoes; the {method} R2* fit needs at "
                f"least {min_echoes}: choose the loglinear method (2 echoes) or switch R2* off.")
        if method == "arlo":
            sp = np.diff(np.sort(te))
            if np.max(np.abs(sp - sp.mean())) > 0.01 * sp.mean():
                raise UserInputError(
                    f"the echoes of {self.inputs.magnitude} are not equally spaced "
                    f"(echo times {te} s), which ARLO requires: choose the loglinear R2* method.")
        mask = load(self.inputs.mask)[0] > 0 if isdefined(self.inputs.mask) else None
        fit = r2star_map(mag, te, method=method, mask=mask, r2star_max=self.inputs.r2star_max,
                         t2star_max=self.inputs.t2star_max)
        self._results["r2star"] = save_like(fit.r2star, img, "r2star.nii.gz")
        self._results["t2star"] = save_like(fit.t2star, img, "t2star.nii.gz")
        self._results["parameters"] = {
            "Method": "ARLO (Pei et al. 2015)" if method == "arlo"
            else "magnitude^2-weighted log-linear fit",
            "EchoTime": te, "R2starMax": self.inputs.r2star_max, "T2starMax": self.inputs.t2star_max,
            "Units": {"R2star": "1/s", "T2star": "s"}}
        return runtime
