"""Background field removal: the local field and the mask where it is defined."""

from __future__ import annotations

from nipype.pipeline import engine as pe

from ... import methods as registry
from ...methods import node_inputs
from ._base import connect_needs, stage_workflow


def init_background_wf(*, method, params, mem_gb=1.0, omp_nthreads=1, name="background_wf"):
    """Remove the background field (``method``: pdf, vsharp, sharp, lbv).

    inputnode: ``total_field`` (ppm), ``noise`` (ppm), ``mask``.
    outputnode: ``local_field`` (ppm), ``mask`` (where it is defined), ``parameters``.
    """
    from ...interfaces.background import RemoveBackground

    wf, inputnode, outputnode = stage_workflow(name, ["total_field", "noise", "mask"],
                                               ["local_field", "mask", "parameters"])
    bg = pe.Node(RemoveBackground(method=method, **node_inputs(params), n_threads=omp_nthreads),
                 name="background", mem_gb=mem_gb, n_procs=omp_nthreads)
    wf.connect(inputnode, "total_field", bg, "total_field")
    wf.connect(inputnode, "mask", bg, "mask")
    connect_needs(wf, inputnode, bg, registry.method("background", method).needs,
                  [("noise", "noise", "noise")])
    wf.connect([(bg, outputnode, [("local_field", "local_field"), ("mask", "mask"),
                                  ("parameters", "parameters")])])
    return wf
