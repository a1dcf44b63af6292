"""The per-run QSM chain.

[coil combination] -> stack echoes -> brain mask -> [phase offset] -> unwrap -> echo field fit (+ R2*/T2*)
-> background removal -> dipole inversion; total-field methods (TFI, prior-preconditioned)
take the total field and replace the last two stages.
"""

from __future__ import annotations

import numpy as np
from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from .. import methods as registry
from ..config import PipelineSettings
from ..methods import node_inputs
from ..interfaces._nifti import mem_gb_for
from ..interfaces.background import RemoveBackground
from ..interfaces.fieldmap import FitField, UnwrapPhase
from ..interfaces.inversion import InvertDipole
from ..interfaces.masking import NativeBrainMask
from ..interfaces.phase import RemovePhaseOffset, StackEchoes
from ..interfaces.r2star import R2StarMap

OUTPUT_FIELDS = ["magnitude", "mask", "total_field", "local_field", "chi_mask", "chi",
                 "r2star", "t2star", "input_parameters", "coil_parameters", "mask_parameters",
                 "unwrap_parameters", "background_parameters", "inversion_parameters",
                 "r2star_parameters"]


def r2star_method_for(echo_times, preferred="arlo"):
    """The R2* method that can run on these echoes (ARLO: >= 3 equally spaced), or None."""
    te = np.sort(np.asarray(echo_times, float))
    if te.size < 2:
        return None
    spacing = np.diff(te)
    even = te.size >= 3 and np.max(np.abs(spacing - spacing.mean())) <= 0.01 * spacing.mean()
    return "arlo" if preferred == "arlo" and even else "loglinear"


def init_qsm_wf(*, shape, voxel_size, echo_times, pipeline: PipelineSettings, n_channels=1,
                has_body_coil=False, user_mask=None, omp_nthreads=1, device="cpu",
                phase_units="auto", name="qsm_wf"):
    """Build the QSM chain for one run.

    ``shape``/``voxel_size``/``echo_times`` size the memory estimates and decide what can run (R2* needs
    two echoes, ARLO three equally spaced); ``pipeline`` is the frozen
    :class:`qsmprep.config.PipelineSettings` whose FSL methods were already resolved;
    ``n_channels > 1`` adds the coil-combination node (``has_body_coil``: a body-coil
    reference is connected); ``user_mask``: the user's own brain mask file, which replaces
    the mask method; ``phase_units``: units of the raw phase (``--phase-units``, ``auto``
    identifies them). One node per stage, each a thin interface over
    :mod:`qsmprep.algorithms`.

    inputnode: ``magnitude``, ``phase`` (per-echo files), ``echo_times`` (s),
    ``field_strength`` (T), ``body_magnitude``/``body_phase`` (body-coil files, optional).
    outputnode: ``magnitude`` (4-D), ``mask``, ``total_field``, ``local_field`` (ppm; unset for
    total-field methods), ``chi_mask``, ``chi`` (ppm), ``r2star`` (1/s), ``t2star`` (s) (unset
    with one echo) and ``*_parameters`` dicts for the sidecars (``input_parameters``: phase
    scaling and input QC), each with its ``QCWarnings`` list.
    """
    p = pipeline
    n_echoes = len(echo_times)
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(
        fields=["magnitude", "phase", "echo_times", "field_strength", "body_magnitude",
                "body_phase"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=OUTPUT_FIELDS), name="outputnode")
    vol_gb = mem_gb_for(shape, 1)
    echo_gb = mem_gb_for(shape, n_echoes, factor=4)
    # combined channels come out of coil combination in radians
    stack = pe.Node(StackEchoes(phase_units=phase_units if n_channels == 1 else "radians"),
                    name="stack_echoes", mem_gb=echo_gb)
    wf.connect(stack, "parameters", outputnode, "input_parameters")

    if n_channels > 1:
        from ..interfaces.coils import CombineCoils

        combine = pe.Node(CombineCoils(method=p.method("coils"),
                                       **node_inputs(p.params_of("coils")),
                                       n_threads=omp_nthreads, phase_units=phase_units),
                          name="coil_combination", n_procs=omp_nthreads,
                          mem_gb=mem_gb_for(shape, n_echoes * n_channels, factor=3))
        wf.connect([(inputnode, combine, [("magnitude", "magnitude"), ("phase", "phase"),
                                          ("echo_times", "echo_times")]),
                    (combine, stack, [("magnitude", "magnitude"), ("phase", "phase")]),
                    (combine, outputnode, [("parameters", "coil_parameters")])])
        if has_body_coil:
            wf.connect(inputnode, "body_magnitude", combine, "body_magnitude")
            wf.connect(inputnode, "body_phase", combine, "body_phase")
    else:
        wf.connect(inputnode, "magnitude", stack, "magnitude")
        wf.connect(inputnode, "phase", stack, "phase")

    mask = _mask_node(p, echo_gb, user_mask)
    wf.connect(stack, "magnitude", mask, "magnitude")
    if "phase" in registry.method("mask", p.method("mask")).needs and not user_mask:
        wf.connect(stack, "phase", mask, "phase")

    unwrap = _unwrap_node(p, echo_gb + vol_gb, omp_nthreads)
    wf.connect([(stack, unwrap, [("magnitude", "magnitude")]),
                (inputnode, unwrap, [("echo_times", "echo_times")])])
    if p.method("phase_offset") == "mcpc3ds":
        offset = pe.Node(RemovePhaseOffset(n_threads=omp_nthreads), name="phase_offset",
                         mem_gb=echo_gb, n_procs=omp_nthreads)
        wf.connect([(stack, offset, [("phase", "phase"), ("magnitude", "magnitude")]),
                    (inputnode, offset, [("echo_times", "echo_times")]),
                    (offset, unwrap, [("phase", "phase")])])
    else:
        wf.connect(stack, "phase", unwrap, "phase")
    if "mask" in registry.method("unwrap", p.method("unwrap")).needs:
        wf.connect(mask, "mask", unwrap, "mask")

    fit = pe.Node(FitField(unwrap_method=p.method("unwrap"), fit=p.method("echoes"),
                           **node_inputs(p.params_of("echoes"))), name="field_fit",
                  mem_gb=echo_gb)
    wf.connect([
        (unwrap, fit, [("unwrapped", "unwrapped")]),
        (stack, fit, [("magnitude", "magnitude")]),
        (mask, fit, [("mask", "mask")]),
        (inputnode, fit, [("echo_times", "echo_times"), ("field_strength", "field_strength")]),
        (stack, outputnode, [("magnitude", "magnitude")]),
        (mask, outputnode, [("mask", "mask"), ("parameters", "mask_parameters")]),
        (fit, outputnode, [("total_field", "total_field"), ("parameters", "unwrap_parameters")]),
    ])

    r2_method = r2star_method_for(echo_times, p.method("r2star"))
    if r2_method:
        r2 = pe.Node(R2StarMap(method=r2_method), name="r2star", mem_gb=echo_gb)
        wf.connect([(stack, r2, [("magnitude", "magnitude")]), (mask, r2, [("mask", "mask")]),
                    (inputnode, r2, [("echo_times", "echo_times")]),
                    (r2, outputnode, [("r2star", "r2star"), ("t2star", "t2star"),
                                      ("parameters", "r2star_parameters")])])

    if p.uses_background_step:
        _local_field_inversion(wf, p, stack, fit, outputnode, vol_gb, omp_nthreads, device,
                               deep_gb=(shape, voxel_size))
    else:
        _total_field_inversion(wf, p, inputnode, stack, fit, outputnode, vol_gb, echo_gb,
                               omp_nthreads)
    return wf


def _mask_node(p, mem_gb, user_mask):
    method, params = p.method("mask"), p.params_of("mask")
    if user_mask:
        return pe.Node(NativeBrainMask(user_mask=str(user_mask), erode_mm=params.erode_mm),
                       name="brain_mask", mem_gb=mem_gb)
    if method == "fsl_bet":
        from ..interfaces.fsl import BetBrainMask

        return pe.Node(BetBrainMask(**node_inputs(params)), name="brain_mask", mem_gb=mem_gb)
    return pe.Node(NativeBrainMask(method=method, **node_inputs(params)), name="brain_mask",
                   mem_gb=mem_gb)


def _unwrap_node(p, mem_gb, omp_nthreads):
    if p.method("unwrap") == "prelude":
        from ..interfaces.fsl import PreludeUnwrap

        return pe.Node(PreludeUnwrap(), name="unwrap", mem_gb=mem_gb)
    return pe.Node(UnwrapPhase(method=p.method("unwrap"), **node_inputs(p.params_of("unwrap")),
                               n_threads=omp_nthreads),
                   name="unwrap", mem_gb=mem_gb, n_procs=omp_nthreads)


def _local_field_inversion(wf, p, stack, fit, outputnode, vol_gb, omp_nthreads, device, deep_gb):
    """Background removal, then an inversion of the local field."""
    bg = pe.Node(RemoveBackground(method=p.method("background"),
                                  **node_inputs(p.params_of("background")),
                                  n_threads=omp_nthreads),
                 name="background", mem_gb=vol_gb * 2, n_procs=omp_nthreads)
    wf.connect([(fit, bg, [("total_field", "total_field"), ("noise", "noise"),
                           ("quality_mask", "mask")]),
                (bg, outputnode, [("local_field", "local_field"), ("mask", "chi_mask"),
                                  ("parameters", "background_parameters")])])
    method = p.method("inversion")
    needs = registry.method("inversion", method).needs
    if method == "deepqsm":
        from ..interfaces.deepqsm import DeepQSM, deepqsm_mem_gb

        inv = pe.Node(DeepQSM(device=device, n_threads=omp_nthreads), name="inversion",
                      n_procs=omp_nthreads, mem_gb=deepqsm_mem_gb(*deep_gb))
    else:
        inv = pe.Node(InvertDipole(method=method, **node_inputs(p.params_of("inversion")),
                                   n_threads=omp_nthreads),
                      name="inversion", mem_gb=vol_gb * 4, n_procs=omp_nthreads)
        if "magnitude" in needs:
            wf.connect(stack, "magnitude", inv, "magnitude")
        if "noise" in needs:
            wf.connect(fit, "noise", inv, "noise")
    wf.connect([(bg, inv, [("local_field", "local_field"), ("mask", "mask")]),
                (inv, outputnode, [("chi", "chi"), ("parameters", "inversion_parameters")])])


def _total_field_inversion(wf, p, inputnode, stack, fit, outputnode, vol_gb, echo_gb,
                           omp_nthreads):
    """TFI or prior-preconditioned QSM: one node from the total field to chi."""
    params = node_inputs(p.params_of("inversion"))
    if p.method("inversion") == "tfi":
        from ..interfaces.totalfield import TotalFieldInversion

        inv = pe.Node(TotalFieldInversion(**params, n_threads=omp_nthreads), name="inversion",
                      mem_gb=vol_gb * 6, n_procs=omp_nthreads)
        wf.connect(stack, "magnitude", inv, "magnitude")
    else:
        from ..interfaces.preconditioned import PreconditionedQSM

        background = p.method("background")
        inv = pe.Node(PreconditionedQSM(
            background=background if background in ("vsharp", "pdf") else "vsharp", **params),
            name="inversion", mem_gb=echo_gb + vol_gb * 4)
        wf.connect([(stack, inv, [("magnitude", "magnitudes")]),
                    (inputnode, inv, [("echo_times", "echo_times"),
                                      ("field_strength", "b0_tesla")])])
    wf.connect([(fit, inv, [("total_field", "total_field"), ("noise", "noise"),
                            ("quality_mask", "mask")]),
                (inv, outputnode, [("chi", "chi"), ("mask", "chi_mask"),
                                   ("parameters", "inversion_parameters")])])
