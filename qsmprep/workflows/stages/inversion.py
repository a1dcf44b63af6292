"""Dipole inversion: from the local field (or the total field, for TFI and the
prior-preconditioned method) to susceptibility."""

from __future__ import annotations

from nipype.pipeline import engine as pe

from ... import methods as registry
from ...methods import node_inputs
from ._base import connect_needs, stage_workflow

_EXTRA = [("magnitude", "magnitude", "magnitude"), ("noise", "noise", "noise")]


def init_inversion_wf(*, method, params, background="pdf", device="cpu", mem_gb=1.0,
                      omp_nthreads=1, name="inversion_wf"):
    """Susceptibility (ppm, referenced to the mask mean) with ``method`` of the registry.

    inputnode: ``field`` (the local field in ppm; the total field for methods that consume
    it), ``mask``, ``magnitude`` (4-D), ``noise`` (ppm), ``echo_times`` (s),
    ``field_strength`` (T). outputnode: ``chi``, ``mask`` (where chi is defined),
    ``parameters``. ``background``: the background method the preconditioned method runs
    inside (vsharp or pdf).
    """
    m = registry.method("inversion", method)
    wf, inputnode, outputnode = stage_workflow(
        name, ["field", "mask", "magnitude", "noise", "echo_times", "field_strength"],
        ["chi", "mask", "parameters"])
    inputs = node_inputs(params)
    if method == "deepqsm":
        from ...interfaces.deepqsm import DeepQSM

        inv = pe.Node(DeepQSM(device=device, n_threads=omp_nthreads), name="inversion",
                      n_procs=omp_nthreads, mem_gb=mem_gb)
    elif method == "tfi":
        from ...interfaces.totalfield import TotalFieldInversion

        inv = pe.Node(TotalFieldInversion(**inputs, n_threads=omp_nthreads), name="inversion",
                      mem_gb=mem_gb, n_procs=omp_nthreads)
    elif method == "preconditioned":
        from ...interfaces.preconditioned import PreconditionedQSM

        inv = pe.Node(PreconditionedQSM(
            background=background if background in ("vsharp", "pdf") else "vsharp", **inputs),
            name="inversion", mem_gb=mem_gb)
        wf.connect([(inputnode, inv, [("magnitude", "magnitudes"), ("echo_times", "echo_times"),
                                      ("field_strength", "b0_tesla")])])
    else:
        from ...interfaces.inversion import InvertDipole

        inv = pe.Node(InvertDipole(method=method, **inputs, n_threads=omp_nthreads),
                      name="inversion", mem_gb=mem_gb, n_procs=omp_nthreads)
    field_input = "total_field" if m.consumes == "total_field" else "local_field"
    wf.connect([(inputnode, inv, [("field", field_input), ("mask", "mask")]),
                (inv, outputnode, [("chi", "chi"), ("parameters", "parameters")])])
    if method != "preconditioned":
        connect_needs(wf, inputnode, inv, m.needs, _EXTRA)
    else:
        wf.connect(inputnode, "noise", inv, "noise")
    if "mask" in inv.outputs.copyable_trait_names():
        wf.connect(inv, "mask", outputnode, "mask")
    else:  # chi is defined where the local field was
        wf.connect(inputnode, "mask", outputnode, "mask")
    return wf
