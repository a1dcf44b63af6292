"""Write one run's BIDS derivatives (NIfTI + JSON sidecars) into the output dataset."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, Directory, File, InputMultiObject,
                                    SimpleInterface, TraitedSpec, isdefined, traits)

from .. import __version__
from ..algorithms.magnitude import rss as root_sum_of_squares
from ..algorithms.phase import ppm_to_hz
from ..bids.derivatives import atomic_copy, prefixed_derivative_path, write_sidecar
from ..qc import QC_KEY, run_warnings, warnings_of
from ._nifti import load, save_like


class _DerivInputSpec(BaseInterfaceInputSpec):
    output_dir = Directory(mandatory=True, desc="derivatives dataset root")
    bids_dir = Directory(mandatory=True, desc="input dataset root (for relative source names)")
    subject = traits.Str(mandatory=True)
    session = traits.Str("", usedefault=True)
    prefix = traits.Str(mandatory=True, desc="BIDS entity prefix of the run")
    source_files = InputMultiObject(File(exists=True), mandatory=True)
    field_strength = traits.Float(mandatory=True, desc="B0 (T)")
    field_strength_source = traits.Str("MagneticFieldStrength", usedefault=True,
                                       desc="sidecar key B0 came from (ImagingFrequency/42.577478 "
                                            "or MagneticFieldStrength)")
    pipeline = traits.Str(mandatory=True, desc="preset name")
    chi = File(exists=True, mandatory=True)
    mask = File(exists=True, mandatory=True, desc="brain mask")
    chi_mask = File(exists=True, mandatory=True, desc="mask where chi is defined")
    total_field = File(exists=True, mandatory=True)
    local_field = File(exists=True, desc="local field (unset for total-field inversions)")
    magnitude = File(exists=True, mandatory=True, desc="4-D magnitude")
    r2star = File(exists=True, desc="R2* (1/s)")
    t2star = File(exists=True, desc="T2* (s)")
    input_parameters = traits.Dict(desc="phase scaling and input QC (StackEchoes)")
    r2star_parameters = traits.Dict()
    coil_parameters = traits.Dict(desc="coil combination (uncombined inputs only)")
    mask_parameters = traits.Dict()
    unwrap_parameters = traits.Dict()
    background_parameters = traits.Dict()
    inversion_parameters = traits.Dict()


class _DerivOutputSpec(TraitedSpec):
    out_files = traits.List(File(exists=True), desc="written files")


class WriteDerivatives(SimpleInterface):
    """Copy results into ``OUTPUT_DIR`` with BIDS names and sidecars (always re-run).

    Every sidecar has ``QCWarnings``: the warnings of the stage that made that file (see
    :mod:`qsmprep.qc`); the ``_Chimap.json`` one holds all warnings of the run, each
    prefixed with its stage (the run-level record).
    """

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
        stages = [(stage, dict(getattr(i, name)) if isdefined(getattr(i, name)) else {})
                  for stage, name in _QC_STAGES]
        run_qc = run_warnings(stages)
        params = {name: _without_qc(p) for (_, name), (_, p) in zip(_QC_STAGES, stages)}
        qc = {name: warnings_of(p) for (_, name), (_, p) in zip(_QC_STAGES, stages)}
        sources = [_bids_uri(f, i.bids_dir) for f in i.source_files]
        common = {"Sources": sources, "SkullStripped": True,
                  "GeneratedBy": {"Name": "qsmprep", "Version": __version__, "Pipeline": i.pipeline},
                  "MagneticFieldStrength": i.field_strength,
                  "MagneticFieldStrengthSource": i.field_strength_source}
        if params["coil_parameters"]:
            common["CoilCombination"] = params["coil_parameters"]
        if params["input_parameters"]:
            common["InputData"] = params["input_parameters"]
        written = []
        ref = nib.load(i.chi)  # every output shares the chi grid; header read once

        def put(src, dst, meta, data=None, dtype=np.float32):
            dst = str(dst)
            if data is None:
                atomic_copy(src, dst)
            else:
                tmp = save_like(data, ref, os.path.basename(dst), dtype=dtype)
                atomic_copy(tmp, dst)
                os.remove(tmp)
            written.append(dst)
            written.append(str(write_sidecar(dst, {**common, **meta})))

        put(i.chi, self._path("Chimap"), {
            "Units": "ppm", "Description": "Magnetic susceptibility, referenced to the mean "
            "inside the mask", "DipoleInversion": params["inversion_parameters"],
            "BackgroundFieldRemoval": params["background_parameters"] if isdefined(
                i.local_field) else "none (total-field inversion)",
            "PhaseUnwrapping": params["unwrap_parameters"], "BrainMask": params["mask_parameters"],
            QC_KEY: run_qc})
        put(i.mask, self._path("mask", desc="brain"), {
            "Type": "Brain", "Description": "Brain mask used for the field fit and background "
            "removal", **params["mask_parameters"], QC_KEY: qc["mask_parameters"]},
            data=load(i.mask)[0] > 0, dtype=np.uint8)
        mag = load(i.magnitude)[0]
        rss = root_sum_of_squares(mag) if mag.ndim == 4 else mag
        brain = load(i.chi_mask)[0] > 0
        if isdefined(i.r2star):
            r2meta = {k: v for k, v in params["r2star_parameters"].items() if k != "Units"}
            r2meta[QC_KEY] = qc["r2star_parameters"]
            put(i.r2star, self._path("R2starmap"), {"Units": "1/s", "Description":
                "Apparent transverse relaxation rate R2* from the multi-echo magnitude", **r2meta})
            put(i.t2star, self._path("T2starmap"), {"Units": "s", "Description":
                "Apparent transverse relaxation time T2* = 1/R2* (capped)", **r2meta})
        fields = [("total", i.total_field, {"Description": "Total field from the multi-echo fit "
                   "(phase offset removed)", **params["unwrap_parameters"]}, rss,
                   qc["input_parameters"] + qc["unwrap_parameters"])]
        if isdefined(i.local_field):
            fields.append(("local", i.local_field, {"Description": "Local field after background "
                           "removal", **params["background_parameters"]}, rss * brain,
                           qc["background_parameters"]))
        for desc, src, meta, magn, warnings in fields:
            ppm, _ = load(src)
            put(src, self._path("fieldmap", desc=desc, datatype="fmap"),
                {"Units": "Hz", "Description": meta.pop("Description"), "Parameters": meta,
                 "PpmToHz": float(ppm_to_hz(1.0, i.field_strength)), QC_KEY: warnings},
                data=ppm_to_hz(ppm, i.field_strength))
            put(i.magnitude, self._path("magnitude", desc=desc, datatype="fmap"),
                {"Description": "Root-sum-of-squares magnitude over echoes",
                 QC_KEY: qc["input_parameters"]}, data=magn)
        self._remove_stale(written)
        self._results["out_files"] = written
        return runtime

    def _remove_stale(self, written):
        """Delete this run's qsmprep outputs that this run did not write (a re-run with
        another pipeline: no local field map left beside a TFI chi map)."""
        keep = {os.path.abspath(f) for f in written}
        for datatype in ("anat", "fmap"):
            folder = Path(self._path("Chimap", datatype=datatype)).parent
            for f in folder.glob(f"{self.inputs.prefix}_*"):
                rest = f.name[len(self.inputs.prefix) + 1:]
                if os.path.abspath(f) not in keep and _STALE.match(rest):
                    f.unlink()


# (stage label as on the console, input holding its parameters), in pipeline order
_QC_STAGES = (("read echoes", "input_parameters"), ("coil combination", "coil_parameters"),
              ("brain mask", "mask_parameters"), ("echo field fit", "unwrap_parameters"),
              ("R2*/T2* maps", "r2star_parameters"),
              ("background removal", "background_parameters"),
              ("dipole inversion", "inversion_parameters"))


# the names qsmprep writes for a run, after the run's prefix and "_" (another run's files
# carry more entities there and never match)
_STALE = re.compile(r"^(?:Chimap|R2starmap|T2starmap|desc-brain_mask|desc-[a-z]+_fieldmap|"
                    r"desc-[a-z]+_magnitude)\.(?:nii\.gz|json)$")


def _without_qc(parameters: dict) -> dict:
    """``parameters`` without its QCWarnings (listed once, at the top of each sidecar)."""
    return {k: v for k, v in parameters.items() if k != QC_KEY}


def _bids_uri(path, bids_dir) -> str:
    try:
        return "bids:raw:" + Path(path).resolve().relative_to(Path(bids_dir).resolve()).as_posix()
    except ValueError:
        return Path(path).resolve().as_uri()
