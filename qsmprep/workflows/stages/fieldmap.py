"""Phase offset, unwrapping and the multi-echo field fit: the total field and its noise."""

from __future__ import annotations

from nipype.pipeline import engine as pe

from ... import methods as registry
from ...methods import node_inputs
from ._base import stage_workflow


def init_fieldmap_wf(*, unwrap_method, unwrap_params, offset_method, fit_method, fit_params,
                     mem_gb_echoes=1.0, mem_gb_unwrap=1.0, omp_nthreads=1, name="fieldmap_wf"):
    """[MCPC-3D-S phase offset] -> unwrapping -> weighted echo fit with its consistency check.

    inputnode: ``magnitude``, ``phase`` (4-D), ``mask``, ``echo_times`` (s),
    ``field_strength`` (T). outputnode: ``total_field`` (ppm), ``noise`` (ppm),
    ``quality_mask`` (the mask without unwrapping-inconsistent voxels), ``parameters``.
    """
    from ...interfaces.fieldmap import FitField, UnwrapPhase
    from ...interfaces.phase import RemovePhaseOffset

    wf, inputnode, outputnode = stage_workflow(
        name, ["magnitude", "phase", "mask", "echo_times", "field_strength"],
        ["total_field", "noise", "quality_mask", "parameters"])
    if unwrap_method == "prelude":
        from ...interfaces.fsl import PreludeUnwrap

        unwrap = pe.Node(PreludeUnwrap(), name="unwrap", mem_gb=mem_gb_unwrap)
    else:
        unwrap = pe.Node(UnwrapPhase(method=unwrap_method, **node_inputs(unwrap_params),
                                     n_threads=omp_nthreads),
                         name="unwrap", mem_gb=mem_gb_unwrap, n_procs=omp_nthreads)
    wf.connect(inputnode, "magnitude", unwrap, "magnitude")
    if "echo_times" in registry.method("unwrap", unwrap_method).needs:
        wf.connect(inputnode, "echo_times", unwrap, "echo_times")
    if "mask" in registry.method("unwrap", unwrap_method).needs:
        wf.connect(inputnode, "mask", unwrap, "mask")
    if offset_method == "mcpc3ds":
        offset = pe.Node(RemovePhaseOffset(n_threads=omp_nthreads), name="phase_offset",
                         mem_gb=mem_gb_echoes, n_procs=omp_nthreads)
        wf.connect([(inputnode, offset, [("phase", "phase"), ("magnitude", "magnitude"),
                                         ("echo_times", "echo_times")]),
                    (offset, unwrap, [("phase", "phase")])])
    else:
        wf.connect(inputnode, "phase", unwrap, "phase")
    fit = pe.Node(FitField(unwrap_method=unwrap_method, fit=fit_method,
                           **node_inputs(fit_params)), name="field_fit", mem_gb=mem_gb_echoes)
    wf.connect([(unwrap, fit, [("unwrapped", "unwrapped")]),
                (inputnode, fit, [("magnitude", "magnitude"), ("mask", "mask"),
                                  ("echo_times", "echo_times"),
                                  ("field_strength", "field_strength")]),
                (fit, outputnode, [("total_field", "total_field"), ("noise", "noise"),
                                   ("quality_mask", "quality_mask"),
                                   ("parameters", "parameters")])])
    return wf
