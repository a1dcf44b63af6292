"""Participant-level workflow: one QSM chain and one derivatives writer per run."""

from __future__ import annotations

from nipype.pipeline import engine as pe

from ..interfaces.derivatives import WriteDerivatives
from .qsm import init_qsm_wf


def init_participant_wf(*, runs, geometries, bids_dir, output_dir, work_dir, pipeline,
                        omp_nthreads=1, name="qsmprep_participant_wf"):
    """Build the participant-level graph.

    ``runs``: :class:`qsmprep.bids.Run` list; ``geometries``: their
    :class:`qsmprep.bids.RunGeometry` (sizes the memory estimates); ``pipeline``:
    :class:`qsmprep.config.PipelineSettings`. Each run gets its own sub-workflow
    ``run_<node_id>`` so a re-run in the same ``work_dir`` reuses cached nodes.
    Has no inputs: the runs are fixed at build time. Its outputnode-free shape is
    deliberate: the derivatives nodes write into ``output_dir``.
    """
    wf = pe.Workflow(name=name, base_dir=str(work_dir))
    p = pipeline
    for run, geom in zip(runs, geometries):
        qsm = init_qsm_wf(
            shape=geom.shape, n_echoes=run.n_echoes, mask_open_mm=p.mask_open_mm,
            mask_erode_mm=p.mask_erode_mm, unwrap_method=p.unwrap_method,
            background_method=p.background_method, vsharp_radii_mm=p.vsharp_radii_mm,
            vsharp_threshold=p.vsharp_threshold, pdf_max_iter=p.pdf_max_iter,
            inversion_method=p.inversion_method, l2_lambda=p.l2_lambda,
            lambda_rule=p.lambda_rule, tkd_threshold=p.tkd_threshold,
            omp_nthreads=omp_nthreads, name=f"run_{run.node_id}")
        qsm.inputs.inputnode.magnitude = list(run.magnitude)
        qsm.inputs.inputnode.phase = list(run.phase)
        qsm.inputs.inputnode.echo_times = list(run.echo_times)
        qsm.inputs.inputnode.field_strength = run.field_strength
        ds = pe.Node(WriteDerivatives(
            output_dir=str(output_dir), bids_dir=str(bids_dir), subject=run.subject,
            session=run.session or "", prefix=run.prefix,
            source_files=list(run.magnitude) + list(run.phase),
            field_strength=run.field_strength, pipeline=p.name),
            name=f"derivatives_{run.node_id}", run_without_submitting=True, mem_gb=0.5)
        wf.connect([(qsm, ds, [
            ("outputnode.chi", "chi"), ("outputnode.mask", "mask"),
            ("outputnode.chi_mask", "chi_mask"), ("outputnode.total_field", "total_field"),
            ("outputnode.local_field", "local_field"), ("outputnode.magnitude", "magnitude"),
            ("outputnode.mask_parameters", "mask_parameters"),
            ("outputnode.unwrap_parameters", "unwrap_parameters"),
            ("outputnode.background_parameters", "background_parameters"),
            ("outputnode.inversion_parameters", "inversion_parameters")])])
    return wf
