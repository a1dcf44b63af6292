"""Coil combination of uncombined receive channels (4-D, one volume per channel)."""

from __future__ import annotations

from nipype.pipeline import engine as pe

from ...methods import node_inputs
from ._base import stage_workflow


def init_coils_wf(*, method, params, has_body_coil=False, phase_units="auto", mem_gb=1.0,
                  omp_nthreads=1, name="coils_wf"):
    """Combine the channels of every echo (``method``: auto, bodycoil, mcpc3ds, adaptive).

    inputnode: ``magnitude``, ``phase`` (per-echo 4-D files), ``echo_times`` (s),
    ``body_magnitude``/``body_phase`` (body-coil reference, with ``has_body_coil``).
    outputnode: ``magnitude``, ``phase`` (per-echo combined files, phase in radians),
    ``parameters`` (for the sidecars).
    """
    from ...interfaces.coils import CombineCoils

    wf, inputnode, outputnode = stage_workflow(
        name, ["magnitude", "phase", "echo_times", "body_magnitude", "body_phase"],
        ["magnitude", "phase", "parameters"])
    combine = pe.Node(CombineCoils(method=method, **node_inputs(params), n_threads=omp_nthreads,
                                   phase_units=phase_units),
                      name="coil_combination", n_procs=omp_nthreads, mem_gb=mem_gb)
    wf.connect([(inputnode, combine, [("magnitude", "magnitude"), ("phase", "phase"),
                                      ("echo_times", "echo_times")]),
                (combine, outputnode, [("magnitude", "magnitude"), ("phase", "phase"),
                                       ("parameters", "parameters")])])
    if has_body_coil:
        wf.connect([(inputnode, combine, [("body_magnitude", "body_magnitude"),
                                          ("body_phase", "body_phase")])])
    return wf
