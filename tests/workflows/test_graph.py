"""Every method the registry offers builds into a workflow whose nodes have all their
mandatory inputs, without running anything.

Combinations: each method of each stage on the default pipeline, every background x
inversion and mask x unwrap pair, with one echo and three, combined and uncombined
(with and without a body coil) channels, and a user mask.
"""

import itertools

import pytest
from nipype.interfaces.base import isdefined

from qsmprep import methods
from qsmprep.config import PipelineSettings
from qsmprep.workflows.qsm import init_qsm_wf


def _combinations():
    base = PipelineSettings()
    out = {}
    for stage in methods.STAGES:
        for m in methods.methods_of(stage.name):
            p = base.with_method(stage.name, m.name)
            out[f"{stage.name}={m.name}"] = p
    for (a, b) in (("background", "inversion"), ("mask", "unwrap")):
        for ma, mb in itertools.product(methods.names(a), methods.names(b)):
            out[f"{a}={ma},{b}={mb}"] = base.with_method(a, ma).with_method(b, mb)
    return sorted(out.items())


def _unconnected(wf):
    flat = wf._create_flat_graph()
    connected = {}
    for _, dst, data in flat.edges(data=True):
        for _, dst_in in data["connect"]:
            connected.setdefault(dst, set()).add(dst_in if isinstance(dst_in, str) else dst_in[0])
    missing = []
    for node in flat.nodes():
        for name in node.inputs.traits(mandatory=True):
            if not isdefined(getattr(node.inputs, name)) and name not in connected.get(node, ()):
                missing.append(f"{node.fullname}.{name}")
    return missing


def _build(pipeline, echo_times=(0.004, 0.008, 0.012), n_channels=1, body=False,
           user_mask=None):
    wf = init_qsm_wf(shape=(32, 32, 32), voxel_size=(2.0, 2.0, 2.0), echo_times=echo_times,
                     pipeline=pipeline, n_channels=n_channels, has_body_coil=body,
                     user_mask=user_mask)
    inputs = wf.get_node("inputnode").inputs
    inputs.magnitude = ["m.nii.gz"] * len(echo_times)
    inputs.phase = ["p.nii.gz"] * len(echo_times)
    inputs.echo_times = list(echo_times)
    inputs.field_strength = 3.0
    if body:
        inputs.body_magnitude, inputs.body_phase = ["bm.nii.gz"], ["bp.nii.gz"]
    return wf


@pytest.mark.parametrize("label,pipeline", _combinations(), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_every_combination_is_fully_connected(label, pipeline):
    assert _unconnected(_build(pipeline)) == []
    # the chi output is always produced
    flat = _build(pipeline)._create_flat_graph()
    assert any(n.name == "inversion" for n in flat.nodes())


@pytest.mark.parametrize("case", ["one_echo", "uncombined", "body_coil", "user_mask"])
def test_input_variants_are_fully_connected(case, tmp_path):
    (tmp_path / "mask.nii.gz").write_bytes(b"")
    kw = {"one_echo": dict(echo_times=(0.01,)), "uncombined": dict(n_channels=4),
          "body_coil": dict(n_channels=4, body=True),
          "user_mask": dict(user_mask=tmp_path / "mask.nii.gz")}[case]
    assert _unconnected(_build(PipelineSettings(), **kw)) == []


def test_an_unconnected_input_is_found():
    """The check itself can fail: a node whose mandatory input is cut is reported."""
    wf = _build(PipelineSettings())
    stage = wf.get_node("inversion_wf")
    inv = stage.get_node("inversion")
    for src, dst, data in list(stage._graph.in_edges(inv, data=True)):
        data["connect"] = [c for c in data["connect"] if c[1] != "local_field"]
    assert any(m.endswith("inversion.local_field") for m in _unconnected(wf))
