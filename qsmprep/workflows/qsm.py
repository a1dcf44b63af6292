"""The per-run QSM chain, composed of the stage workflows (``workflows/stages``).

[coil combination] -> read echoes -> brain mask -> total field ([phase offset], unwrapping,
echo fit) (+ R2*/T2*) -> background removal -> dipole inversion; total-field inversions
(TFI, prior-preconditioned) take the total field and skip background removal.
"""

from __future__ import annotations

import numpy as np
from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from ..config import PipelineSettings
from ..interfaces.phase import StackEchoes
from .resources import Sizes
from .stages import (init_background_wf, init_coils_wf, init_fieldmap_wf, init_inversion_wf,
                     init_mask_wf, init_r2star_wf)

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
    identifies them). One workflow per stage (:mod:`qsmprep.workflows.stages`), each node
    a thin interface over :mod:`qsmprep.algorithms`; memory estimates from
    :mod:`qsmprep.workflows.resources`.

    inputnode: ``magnitude``, ``phase`` (per-echo files), ``echo_times`` (s),
    ``field_strength`` (T), ``body_magnitude``/``body_phase`` (body-coil files, optional).
    outputnode: ``magnitude`` (4-D), ``mask``, ``total_field``, ``local_field`` (ppm; unset for
    total-field methods), ``chi_mask``, ``chi`` (ppm), ``r2star`` (1/s), ``t2star`` (s) (unset
    with one echo) and ``*_parameters`` dicts for the sidecars (``input_parameters``: phase
    scaling and input QC), each with its ``QCWarnings`` list.
    """
    p = pipeline
    sizes = Sizes(shape, voxel_size, len(echo_times), n_channels)
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(
        fields=["magnitude", "phase", "echo_times", "field_strength", "body_magnitude",
                "body_phase"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=OUTPUT_FIELDS), name="outputnode")
    # read the echoes (combined channels come out of coil combination in radians)
    stack = pe.Node(StackEchoes(phase_units=phase_units if n_channels == 1 else "radians"),
                    name="stack_echoes", mem_gb=sizes.stage("read"))
    wf.connect(stack, "parameters", outputnode, "input_parameters")
    if n_channels > 1:
        coils = init_coils_wf(method=p.method("coils"), params=p.params_of("coils"),
                              has_body_coil=has_body_coil, phase_units=phase_units,
                              mem_gb=sizes.stage("coils"), omp_nthreads=omp_nthreads)
        wf.connect([(inputnode, coils, [(f, f"inputnode.{f}") for f in
                                        ("magnitude", "phase", "echo_times", "body_magnitude",
                                         "body_phase")]),
                    (coils, stack, [("outputnode.magnitude", "magnitude"),
                                    ("outputnode.phase", "phase")]),
                    (coils, outputnode, [("outputnode.parameters", "coil_parameters")])])
    else:
        wf.connect([(inputnode, stack, [("magnitude", "magnitude"), ("phase", "phase")])])

    # brain mask
    mask = init_mask_wf(method=p.method("mask"), params=p.params_of("mask"),
                        user_mask=user_mask, mem_gb=sizes.stage("mask"))
    wf.connect([(stack, mask, [("magnitude", "inputnode.magnitude"),
                               ("phase", "inputnode.phase")]),
                (stack, outputnode, [("magnitude", "magnitude")]),
                (mask, outputnode, [("outputnode.mask", "mask"),
                                    ("outputnode.parameters", "mask_parameters")])])

    # total field: phase offset, unwrapping, echo fit
    fieldmap = init_fieldmap_wf(
        unwrap_method=p.method("unwrap"), unwrap_params=p.params_of("unwrap"),
        offset_method=p.method("phase_offset"), fit_method=p.method("echoes"),
        fit_params=p.params_of("echoes"), mem_gb_echoes=sizes.stage("echoes"),
        mem_gb_unwrap=sizes.stage("unwrap"), omp_nthreads=omp_nthreads)
    wf.connect([(stack, fieldmap, [("magnitude", "inputnode.magnitude"),
                                   ("phase", "inputnode.phase")]),
                (mask, fieldmap, [("outputnode.mask", "inputnode.mask")]),
                (inputnode, fieldmap, [("echo_times", "inputnode.echo_times"),
                                       ("field_strength", "inputnode.field_strength")]),
                (fieldmap, outputnode, [("outputnode.total_field", "total_field"),
                                        ("outputnode.parameters", "unwrap_parameters")])])

    # R2*/T2* (two echoes or more)
    r2_method = r2star_method_for(echo_times, p.method("r2star"))
    if r2_method:
        r2 = init_r2star_wf(method=r2_method, mem_gb=sizes.stage("r2star"))
        wf.connect([(stack, r2, [("magnitude", "inputnode.magnitude")]),
                    (mask, r2, [("outputnode.mask", "inputnode.mask")]),
                    (inputnode, r2, [("echo_times", "inputnode.echo_times")]),
                    (r2, outputnode, [("outputnode.r2star", "r2star"),
                                      ("outputnode.t2star", "t2star"),
                                      ("outputnode.parameters", "r2star_parameters")])])

    # background removal (local-field inversions), then the dipole inversion
    method = p.method("inversion")
    inversion = init_inversion_wf(method=method, params=p.params_of("inversion"),
                                  background=p.method("background"), device=device,
                                  mem_gb=sizes.stage("inversion", method),
                                  omp_nthreads=omp_nthreads)
    wf.connect([(stack, inversion, [("magnitude", "inputnode.magnitude")]),
                (fieldmap, inversion, [("outputnode.noise", "inputnode.noise")]),
                (inputnode, inversion, [("echo_times", "inputnode.echo_times"),
                                        ("field_strength", "inputnode.field_strength")]),
                (inversion, outputnode, [("outputnode.chi", "chi"),
                                         ("outputnode.mask", "chi_mask"),
                                         ("outputnode.parameters", "inversion_parameters")])])
    if p.uses_background_step:
        background = init_background_wf(method=p.method("background"),
                                        params=p.params_of("background"),
                                        mem_gb=sizes.stage("background"),
                                        omp_nthreads=omp_nthreads)
        wf.connect([(fieldmap, background, [("outputnode.total_field", "inputnode.total_field"),
                                            ("outputnode.noise", "inputnode.noise"),
                                            ("outputnode.quality_mask", "inputnode.mask")]),
                    (background, inversion, [("outputnode.local_field", "inputnode.field"),
                                             ("outputnode.mask", "inputnode.mask")]),
                    (background, outputnode, [("outputnode.local_field", "local_field"),
                                              ("outputnode.parameters",
                                               "background_parameters")])])
    else:
        wf.connect([(fieldmap, inversion, [("outputnode.total_field", "inputnode.field"),
                                           ("outputnode.quality_mask", "inputnode.mask")])])
    return wf
