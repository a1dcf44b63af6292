"""The per-run QSM chain: stack echoes -> mask -> unwrap -> field fit -> background -> inversion."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from ..interfaces._nifti import mem_gb_for
from ..interfaces.background import RemoveBackground
from ..interfaces.fieldmap import FitField, UnwrapPhase
from ..interfaces.inversion import InvertDipole
from ..interfaces.masking import NativeBrainMask
from ..interfaces.phase import StackEchoes


def init_qsm_wf(*, shape, n_echoes, mask_open_mm=4.0, mask_erode_mm=0.0,
                unwrap_method="temporal", background_method="pdf", vsharp_radii_mm=(),
                vsharp_threshold=0.05, pdf_max_iter=40, inversion_method="l2", l2_lambda=None,
                lambda_rule="gcv", tkd_threshold=0.19, omp_nthreads=1, name="qsm_wf"):
    """Build the QSM chain for one run.

    One node per stage, each a thin interface over :mod:`qsmprep.algorithms`.
    ``shape``/``n_echoes`` size the memory estimates.

    inputnode: ``magnitude``, ``phase`` (lists of per-echo files), ``echo_times`` (s),
    ``field_strength`` (T).
    outputnode: ``magnitude`` (4-D), ``mask``, ``total_field``, ``local_field`` (ppm),
    ``chi_mask``, ``chi`` (ppm), and ``*_parameters`` dicts for the sidecars.
    """
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(
        fields=["magnitude", "phase", "echo_times", "field_strength"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(
        fields=["magnitude", "mask", "total_field", "local_field", "chi_mask", "chi",
                "mask_parameters", "unwrap_parameters", "background_parameters",
                "inversion_parameters"]), name="outputnode")
    vol_gb = mem_gb_for(shape, 1)
    echo_gb = mem_gb_for(shape, n_echoes, factor=4)

    stack = pe.Node(StackEchoes(), name="stack_echoes", mem_gb=echo_gb)
    mask = pe.Node(NativeBrainMask(open_mm=mask_open_mm, erode_mm=mask_erode_mm), name="brain_mask",
                   mem_gb=echo_gb)
    unwrap = pe.Node(UnwrapPhase(method=unwrap_method, n_threads=omp_nthreads), name="unwrap",
                     mem_gb=echo_gb + vol_gb, n_procs=omp_nthreads)
    fit = pe.Node(FitField(unwrap_method=unwrap_method), name="field_fit", mem_gb=echo_gb)
    bg = pe.Node(RemoveBackground(method=background_method, vsharp_threshold=vsharp_threshold,
                                  pdf_max_iter=pdf_max_iter, n_threads=omp_nthreads),
                 name="background", mem_gb=vol_gb * 2, n_procs=omp_nthreads)
    if vsharp_radii_mm:
        bg.inputs.vsharp_radii_mm = list(vsharp_radii_mm)
    inv = pe.Node(InvertDipole(method=inversion_method, lambda_rule=lambda_rule,
                               tkd_threshold=tkd_threshold, n_threads=omp_nthreads),
                  name="inversion", mem_gb=vol_gb, n_procs=omp_nthreads)
    if l2_lambda is not None:
        inv.inputs.lam = float(l2_lambda)
    params = pe.Node(niu.IdentityInterface(fields=["mask_parameters"]), name="parameters")
    params.inputs.mask_parameters = {"Method": "native magnitude threshold (Otsu) + opening",
                                     "OpeningMm": mask_open_mm, "ErosionMm": mask_erode_mm}

    wf.connect([
        (inputnode, stack, [("magnitude", "magnitude"), ("phase", "phase")]),
        (stack, mask, [("magnitude", "magnitude")]),
        (stack, unwrap, [("phase", "phase"), ("magnitude", "magnitude")]),
        (inputnode, unwrap, [("echo_times", "echo_times")]),
        (unwrap, fit, [("unwrapped", "unwrapped")]),
        (stack, fit, [("magnitude", "magnitude")]),
        (mask, fit, [("mask", "mask")]),
        (inputnode, fit, [("echo_times", "echo_times"), ("field_strength", "field_strength")]),
        (fit, bg, [("total_field", "total_field"), ("noise", "noise"), ("quality_mask", "mask")]),
        (bg, inv, [("local_field", "local_field"), ("mask", "mask")]),
        (stack, outputnode, [("magnitude", "magnitude")]),
        (mask, outputnode, [("mask", "mask")]),
        (fit, outputnode, [("total_field", "total_field")]),
        (bg, outputnode, [("local_field", "local_field"), ("mask", "chi_mask"),
                          ("parameters", "background_parameters")]),
        (inv, outputnode, [("chi", "chi"), ("parameters", "inversion_parameters")]),
        (params, outputnode, [("mask_parameters", "mask_parameters")]),
        (fit, outputnode, [("parameters", "unwrap_parameters")]),
    ])
    return wf
