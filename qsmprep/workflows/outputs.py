"""The derivatives of one run: one sink node per output, fed by the QSM chain's outputnode.

:data:`OUTPUTS` is what a run writes (its key, named by
:data:`qsmprep.bids.derivatives.RUN_OUTPUTS`, how the data are converted, which chain output
it comes from); :func:`init_derivatives_wf` builds the
sidecars once (:class:`~qsmprep.interfaces.derivatives.RunMetadata`), a
:class:`~qsmprep.interfaces.derivatives.DerivativesSink` per output present in the run, and
the completion record after all of them
(:class:`~qsmprep.interfaces.derivatives.RecordOutputs`).
"""

from __future__ import annotations

from typing import NamedTuple

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from ..bids.derivatives import RUN_OUTPUTS
from ..interfaces.derivatives import DerivativesSink, RecordOutputs, RunMetadata
from .stages._base import stage_workflow


class Output(NamedTuple):
    key: str          # RUN_OUTPUTS key (its BIDS name), RunMetadata's sidecar, node ds_<key>
    source: str       # the QSM chain's outputnode field with the image
    convert: str = "copy"
    within: str = ""  # outputnode field of a mask multiplied into an rss magnitude


OUTPUTS = (
    Output("chi", "chi"),
    Output("mask", "mask", convert="mask"),
    Output("r2star", "r2star"),
    Output("t2star", "t2star"),
    Output("total_field", "total_field", convert="hz"),
    Output("total_magnitude", "magnitude", convert="rss"),
    Output("local_field", "local_field", convert="hz"),
    Output("local_magnitude", "magnitude", convert="rss", within="chi_mask"),
)

#: the parameter records of the chain (each stage's sidecar facts and QC warnings)
RECORDS = ("input_parameters", "coil_parameters", "mask_parameters", "unwrap_parameters",
           "r2star_parameters", "background_parameters", "inversion_parameters")


def init_derivatives_wf(*, output_dir, bids_dir, subject, session, prefix, source_files,
                        field_strength, field_strength_source, pipeline, has_local_field,
                        has_r2star, has_coils, name="derivatives_wf"):
    """Sinks for one run's outputs into ``output_dir`` (BIDS derivatives).

    ``has_local_field`` (a background-removal step ran), ``has_r2star`` (R2*/T2* maps
    exist) and ``has_coils`` (uncombined input) decide which outputs and records are
    connected. inputnode: the QSM chain's output fields (images and ``*_parameters``
    records). outputnode: ``record``, the run's completion record, written after every sink.
    """
    outputs = [o for o in OUTPUTS
               if (has_local_field or not o.key.startswith("local"))
               and (has_r2star or o.key not in ("r2star", "t2star"))]
    records = [r for r in RECORDS
               if (has_local_field or r != "background_parameters")
               and (has_r2star or r != "r2star_parameters") and (has_coils or r != "coil_parameters")]
    fields = sorted({o.source for o in outputs} | {o.within for o in outputs if o.within}
                    | set(records))
    wf, inputnode, outputnode = stage_workflow(name, fields, ["record"])
    names = dict(output_dir=str(output_dir), bids_dir=str(bids_dir), subject=subject,
                 session=session or "", prefix=prefix)
    meta = pe.Node(RunMetadata(bids_dir=str(bids_dir), source_files=list(source_files),
                               field_strength=field_strength,
                               field_strength_source=field_strength_source, pipeline=pipeline,
                               has_local_field=has_local_field),
                   name="run_metadata", run_without_submitting=True)
    wf.connect([(inputnode, meta, [(r, r) for r in records])])
    collect = pe.Node(niu.Merge(len(outputs), ravel_inputs=True), name="collect",
                      run_without_submitting=True)
    for n, o in enumerate(outputs, start=1):
        suffix, desc, datatype = RUN_OUTPUTS[o.key]
        sink = pe.Node(DerivativesSink(suffix=suffix, desc=desc or "", datatype=datatype,
                                       convert=o.convert, **names),
                       name=f"ds_{o.key}", run_without_submitting=True, mem_gb=0.5)
        if o.convert == "hz":
            sink.inputs.field_strength = field_strength
        wf.connect([(inputnode, sink, [(o.source, "in_file")]),
                    (meta, sink, [(o.key, "metadata")]),
                    (sink, collect, [("out_files", f"in{n}")])])
        if o.within:
            wf.connect(inputnode, o.within, sink, "within")
    record = pe.Node(RecordOutputs(pipeline=pipeline, **names), name="record_outputs",
                     run_without_submitting=True)
    wf.connect([(collect, record, [("out", "written")]),
                (record, outputnode, [("record", "record")])])
    return wf
