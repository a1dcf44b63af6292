"""What the console and the reports call each step: node name -> stage label (the node
names are those of :mod:`qsmprep.workflows.stages` and :mod:`qsmprep.workflows.outputs`)."""

from __future__ import annotations

NODE_LABELS = {
    "coil_combination": "coil combination",
    "stack_echoes": "read echoes",
    "brain_mask": "brain mask",
    "phase_offset": "phase offset (MCPC-3D-S)",
    "unwrap": "phase unwrapping",
    "field_fit": "echo field fit",
    "r2star": "R2*/T2* maps",
    "background": "background removal",
    "inversion": "dipole inversion",
    "record_outputs": "write derivatives",
}


def step_label(node_name: str) -> str | None:
    """The stage label of a node: :data:`NODE_LABELS`, and "write derivatives" for the
    derivative sinks (``ds_<output>``); None for the helper nodes."""
    if node_name in NODE_LABELS:
        return NODE_LABELS[node_name]
    return "write derivatives" if node_name.startswith("ds_") else None
