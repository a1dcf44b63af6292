"""R2* and T2* maps from the echo magnitudes."""

from __future__ import annotations

from nipype.pipeline import engine as pe

from ._base import stage_workflow


def init_r2star_wf(*, method, mem_gb=1.0, name="r2star_wf"):
    """R2* (1/s) and T2* (s) inside the mask (``method``: arlo or loglinear).

    inputnode: ``magnitude`` (4-D), ``mask``, ``echo_times`` (s).
    outputnode: ``r2star``, ``t2star``, ``parameters``.
    """
    from ...interfaces.r2star import R2StarMap

    wf, inputnode, outputnode = stage_workflow(name, ["magnitude", "mask", "echo_times"],
                                               ["r2star", "t2star", "parameters"])
    r2 = pe.Node(R2StarMap(method=method), name="r2star", mem_gb=mem_gb)
    wf.connect([(inputnode, r2, [("magnitude", "magnitude"), ("mask", "mask"),
                                 ("echo_times", "echo_times")]),
                (r2, outputnode, [("r2star", "r2star"), ("t2star", "t2star"),
                                  ("parameters", "parameters")])])
    return wf
