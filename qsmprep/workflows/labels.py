"""What the console and the reports call each step: node name -> stage label (the node
names are those of :mod:`qsmprep.workflows.stages` and :mod:`qsmprep.workflows.outputs`)."""

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
