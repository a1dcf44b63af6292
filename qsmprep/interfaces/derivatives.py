"""Derivative sinks: the sidecars of a run, one sink per output, the run's completion record.

Names come from :func:`qsmprep.bids.derivatives.prefixed_derivative_path`, writes are atomic
(temp file in the output folder + rename), and nothing is written under the input dataset
(a symbolic link in OUTPUT_DIR that leads into it stops the sink).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, Directory, File, InputMultiObject,
                                    SimpleInterface, TraitedSpec, isdefined, traits)

from ..algorithms.magnitude import rss as root_sum_of_squares
from ..algorithms.phase import ppm_to_hz
from ..bids.derivatives import (RUN_OUTPUTS, atomic_copy, completion_record_path, prefixed_derivative_path,
                                refuse_inside_input, remove_stale_outputs, write_completion_record,
                                write_sidecar)
from ..bids.sidecars import STAGE_PARAMETERS, bids_uri, output_metadata
from ._nifti import load, save_like

_RECORDS = [name for _, name in STAGE_PARAMETERS]
OUTPUT_KEYS = tuple(RUN_OUTPUTS)  # one sidecar output of RunMetadata per run output


class _MetaInputSpec(BaseInterfaceInputSpec):
    bids_dir = Directory(mandatory=True, desc="input dataset root (for bids:raw: sources)")
    source_files = InputMultiObject(File(exists=True), mandatory=True)
    field_strength = traits.Float(mandatory=True, desc="B0 (T)")
    field_strength_source = traits.Str("MagneticFieldStrength", usedefault=True,
                                       desc="sidecar key B0 came from (ImagingFrequency/42.577478 "
                                            "or MagneticFieldStrength)")
    pipeline = traits.Str(mandatory=True, desc="pipeline name (with its overrides)")
    has_local_field = traits.Bool(True, usedefault=True)


for _name in _RECORDS:
    _MetaInputSpec.add_class_trait(_name, traits.Dict(desc=f"{_name} of the stage"))


class _MetaOutputSpec(TraitedSpec):
    pass


for _key in OUTPUT_KEYS:
    _MetaOutputSpec.add_class_trait(_key, traits.Dict(desc=f"sidecar of the {_key} output"))


class RunMetadata(SimpleInterface):
    """The sidecar of every output of a run (:func:`qsmprep.bids.sidecars.output_metadata`)."""

    input_spec = _MetaInputSpec
    output_spec = _MetaOutputSpec

    def _run_interface(self, runtime):
        i = self.inputs
        records = {n: dict(getattr(i, n)) for n in _RECORDS if isdefined(getattr(i, n))}
        meta = output_metadata(records, sources=[bids_uri(f, i.bids_dir) for f in i.source_files],
                               pipeline=i.pipeline, field_strength=i.field_strength,
                               field_strength_source=i.field_strength_source,
                               has_local_field=i.has_local_field)
        self._results.update(meta)
        return runtime


class _RunNames(BaseInterfaceInputSpec):
    output_dir = Directory(mandatory=True, desc="derivatives dataset root")
    bids_dir = Directory(mandatory=True, desc="input dataset root (never written)")
    subject = traits.Str(mandatory=True)
    session = traits.Str("", usedefault=True)
    prefix = traits.Str(mandatory=True, desc="BIDS entity prefix of the run")


class _SinkInputSpec(_RunNames):
    in_file = File(exists=True, mandatory=True)
    metadata = traits.Dict(mandatory=True, desc="the sidecar")
    suffix = traits.Str(mandatory=True)
    desc = traits.Str("", usedefault=True)
    datatype = traits.Enum("anat", "fmap", usedefault=True)
    convert = traits.Enum("copy", "mask", "hz", "rss", usedefault=True,
                          desc="copy; mask: uint8 of > 0; hz: ppm -> Hz (field_strength); rss: "
                               "root-sum-of-squares over the 4th axis (times `within`)")
    field_strength = traits.Float(desc="B0 (T), for convert='hz'")
    within = File(exists=True, desc="mask multiplied into an rss magnitude")


class _SinkOutputSpec(TraitedSpec):
    out_files = traits.List(File(exists=True), desc="the image and its sidecar")


class DerivativesSink(SimpleInterface):
    """Write one derivative (image + JSON sidecar) under its BIDS name, atomically; always
    re-run. Invalidates the run's completion record first (it is rewritten by
    :class:`RecordOutputs` once every sink of the run has finished)."""

    input_spec = _SinkInputSpec
    output_spec = _SinkOutputSpec
    always_run = True

    def _run_interface(self, runtime):
        i = self.inputs
        dst = prefixed_derivative_path(i.output_dir, i.subject, i.session or None, i.prefix,
                                       i.suffix, desc=i.desc or None, datatype=i.datatype)
        refuse_inside_input(dst, i.bids_dir)
        completion_record_path(i.output_dir, i.prefix).unlink(missing_ok=True)
        if i.convert == "copy":
            atomic_copy(i.in_file, dst)
        else:
            data, img = load(i.in_file)
            dtype = np.float32
            if i.convert == "mask":
                data, dtype = data > 0, np.uint8
            elif i.convert == "hz":
                data = ppm_to_hz(data, i.field_strength)
            elif i.convert == "rss":
                data = root_sum_of_squares(data) if data.ndim == 4 else data
                if isdefined(i.within):
                    data = data * (load(i.within)[0] > 0)
            tmp = save_like(data, img, os.path.basename(dst), dtype=dtype)
            atomic_copy(tmp, dst)
            os.remove(tmp)
        self._results["out_files"] = [str(dst), str(write_sidecar(dst, i.metadata))]
        return runtime


class _RecordInputSpec(_RunNames):
    written = InputMultiObject(File(exists=True), mandatory=True, desc="every file the sinks wrote")
    pipeline = traits.Str(mandatory=True)


class _RecordOutputSpec(TraitedSpec):
    record = File(exists=True, desc="the run's completion record")


class RecordOutputs(SimpleInterface):
    """After every sink of a run: delete the run's qsmprep outputs it did not write (a
    re-run with another pipeline leaves no local field beside a TFI chi map), then write
    the completion record (file sizes and SHA-256), last. Always re-run."""

    input_spec = _RecordInputSpec
    output_spec = _RecordOutputSpec
    always_run = True

    def _run_interface(self, runtime):
        i = self.inputs
        folder = Path(prefixed_derivative_path(i.output_dir, i.subject, i.session or None,
                                               i.prefix, "Chimap")).parent.parent
        remove_stale_outputs(folder, i.prefix, i.written)
        self._results["record"] = str(write_completion_record(i.output_dir, i.prefix, i.written,
                                                              pipeline=i.pipeline))
        return runtime
