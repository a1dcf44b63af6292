"""What every stage workflow shares: its input and output nodes."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe


def stage_workflow(name, inputs, outputs):
    """``(workflow, inputnode, outputnode)`` with the given fields."""
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=list(inputs)), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=list(outputs)), name="outputnode")
    return wf, inputnode, outputnode


def connect_needs(wf, inputnode, node, needs, available):
    """Connect ``inputnode.<field>`` to ``node.<input>`` for each ``(need, field, input)`` of
    ``available`` whose need the method lists."""
    for need, field, name in available:
        if need in needs:
            wf.connect(inputnode, field, node, name)
