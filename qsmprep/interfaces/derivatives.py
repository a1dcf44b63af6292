"""Write one run's BIDS derivatives (NIfTI + JSON sidecars) into the output dataset."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, Directory, File, InputMultiObject,
                                    SimpleInterface, TraitedSpec, isdefined, traits)

from .. import __version__
from ..algorithms.phase import ppm_to_hz
from ..bids import prefixed_derivative_path, write_sidecar
from ._nifti import load, save_like


class _DerivInputSpec(BaseInterfaceInputSpec):
    output_dir = Directory(mandatory=True, desc="derivatives dataset root")
    bids_dir = Directory(mandatory=True, desc="input dataset root (for relative source names)")
    subject = traits.Str(mandatory=True)
    session = traits.Str("", usedefault=True)
    prefix = traits.Str(mandatory=True, desc="BIDS entity prefix of the run")
    source_files = InputMultiObject(File(exists=True), mandatory=True)
    field_strength = traits.Float(mandatory=True, desc="B0 (T)")
    pipeline = traits.Str(mandatory=True, desc="preset name")
    chi = File(exists=True, mandatory=True)
    mask = File(exists=True, mandatory=True, desc="brain mask")
    chi_mask = File(exists=True, mandatory=True, desc="mask where chi is defined")
    total_field = File(exists=True, mandatory=True)
    local_field = File(exists=True, desc="local field (unset for total-field inversions)")
    magnitude = File(exists=True, mandatory=True, desc="4-D magnitude")
    r2star = File(exists=True, desc="R2* (1/s)")
    t2star = File(exists=True, desc="T2* (s)")
    r2star_parameters = traits.Dict()
    coil_parameters = traits.Dict(desc="coil combination (uncombined inputs only)")
    mask_parameters = traits.Dict()
    unwrap_parameters = traits.Dict()
    background_parameters = traits.Dict()
    inversion_parameters = traits.Dict()


class _DerivOutputSpec(TraitedSpec):
    out_files = traits.List(File(exists=True), desc="written files")


class WriteDerivatives(SimpleInterface):
    """Copy results into ``OUTPUT_DIR`` with BIDS names and sidecars (always re-run)."""

    input_spec = _DerivInputSpec
    output_spec = _DerivOutputSpec
    always_run = True

    def _path(self, suffix, desc=None, datatype="anat"):
        i = self.inputs
        p = prefixed_derivative_path(i.output_dir, i.subject, i.session or None, i.prefix, suffix,
                                     desc=desc, datatype=datatype)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def _run_interface(self, runtime):
        i = self.inputs
        sources = [_bids_uri(f, i.bids_dir) for f in i.source_files]
        common = {"Sources": sources, "SkullStripped": True,
                  "GeneratedBy": {"Name": "qsmprep", "Version": __version__, "Pipeline": i.pipeline},
                  "MagneticFieldStrength": i.field_strength}
        if isdefined(i.coil_parameters) and i.coil_parameters:
            common["CoilCombination"] = dict(i.coil_parameters)
        written = []
        ref = nib.load(i.chi)  # every output shares the chi grid; header read once

        def put(src, dst, meta, data=None, dtype=np.float32):
            dst = str(dst)
            if data is None:
                shutil.copyfile(src, dst)
            else:
                tmp = save_like(data, ref, os.path.basename(dst), dtype=dtype)
                shutil.move(tmp, dst)
            written.append(dst)
            written.append(str(write_sidecar(dst, {**common, **meta})))

        put(i.chi, self._path("Chimap"), {
            "Units": "ppm", "Description": "Magnetic susceptibility, referenced to the mean "
            "inside the mask", "DipoleInversion": dict(i.inversion_parameters),
            "BackgroundFieldRemoval": dict(i.background_parameters) if isdefined(
                i.local_field) else "none (total-field inversion)",
            "PhaseUnwrapping": dict(i.unwrap_parameters), "BrainMask": dict(i.mask_parameters)})
        put(i.mask, self._path("mask", desc="brain"), {
            "Type": "Brain", "Description": "Brain mask used for the field fit and background "
            "removal", **dict(i.mask_parameters)}, data=load(i.mask)[0] > 0, dtype=np.uint8)
        mag = load(i.magnitude)[0]
        rss = np.sqrt(np.sum(mag * mag, axis=-1)) if mag.ndim == 4 else mag
        brain = load(i.chi_mask)[0] > 0
        if isdefined(i.r2star):
            r2meta = {k: v for k, v in dict(i.r2star_parameters).items() if k != "Units"}
            put(i.r2star, self._path("R2starmap"), {"Units": "1/s", "Description":
                "Apparent transverse relaxation rate R2* from the multi-echo magnitude", **r2meta})
            put(i.t2star, self._path("T2starmap"), {"Units": "s", "Description":
                "Apparent transverse relaxation time T2* = 1/R2* (capped)", **r2meta})
        fields = [("total", i.total_field, {"Description": "Total field from the multi-echo fit "
                   "(phase offset removed)", **dict(i.unwrap_parameters)}, rss)]
        if isdefined(i.local_field):
            fields.append(("local", i.local_field, {"Description": "Local field after background "
                           "removal", **dict(i.background_parameters)}, rss * brain))
        for desc, src, meta, magn in fields:
            ppm, _ = load(src)
            put(src, self._path("fieldmap", desc=desc, datatype="fmap"),
                {"Units": "Hz", "Description": meta.pop("Description"), "Parameters": meta,
                 "PpmToHz": float(ppm_to_hz(1.0, i.field_strength))},
                data=ppm_to_hz(ppm, i.field_strength))
            put(i.magnitude, self._path("magnitude", desc=desc, datatype="fmap"),
                {"Description": "Root-sum-of-squares magnitude over echoes"}, data=magn)
        self._results["out_files"] = written
        return runtime


def _bids_uri(path, bids_dir) -> str:
    try:
        return "bids:raw:" + Path(path).resolve().relative_to(Path(bids_dir).resolve()).as_posix()
    except ValueError:
        return Path(path).resolve().as_uri()
