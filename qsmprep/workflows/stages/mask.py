"""Brain mask: a registry method (native BET by default) or the user's own mask."""

from __future__ import annotations

from nipype.pipeline import engine as pe

from ... import methods as registry
from ...methods import node_inputs
from ._base import stage_workflow


def init_mask_wf(*, method, params, user_mask=None, mem_gb=1.0, name="mask_wf"):
    """Brain mask of the run (``method`` of the registry's mask stage; ``user_mask``: the
    user's mask file on the run's grid, which replaces the method).

    inputnode: ``magnitude`` (4-D, echoes last), ``phase`` (4-D wrapped, radians).
    outputnode: ``mask``, ``parameters``.
    """
    from ...interfaces.masking import NativeBrainMask

    wf, inputnode, outputnode = stage_workflow(name, ["magnitude", "phase"],
                                               ["mask", "parameters"])
    if user_mask:
        node = pe.Node(NativeBrainMask(user_mask=str(user_mask), erode_mm=params.erode_mm),
                       name="brain_mask", mem_gb=mem_gb)
    elif method == "fsl_bet":
        from ...interfaces.fsl import BetBrainMask

        node = pe.Node(BetBrainMask(**node_inputs(params)), name="brain_mask", mem_gb=mem_gb)
    else:
        node = pe.Node(NativeBrainMask(method=method, **node_inputs(params)), name="brain_mask",
                       mem_gb=mem_gb)
    wf.connect(inputnode, "magnitude", node, "magnitude")
    if not user_mask and "phase" in registry.method("mask", method).needs:
        wf.connect(inputnode, "phase", node, "phase")
    wf.connect([(node, outputnode, [("mask", "mask"), ("parameters", "parameters")])])
    return wf
