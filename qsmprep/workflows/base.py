"""Participant-level workflow: one QSM chain and one derivatives writer per run."""

from __future__ import annotations

from pathlib import Path

from nipype.pipeline import engine as pe

from ..errors import UserInputError
from .outputs import init_derivatives_wf
from .qsm import init_qsm_wf, r2star_method_for


def init_participant_wf(*, runs, geometries, bids_dir, output_dir, work_dir, pipeline,
                        omp_nthreads=1, device="cpu", user_mask=None, phase_units="auto",
                        name="qsmprep_participant_wf"):
    """Build the participant-level graph.

    ``runs``: :class:`qsmprep.bids.Run` list; ``geometries``: their
    :class:`qsmprep.bids.RunGeometry` (sizes the memory estimates); ``pipeline``:
    :class:`qsmprep.config.PipelineSettings` (FSL methods already resolved); ``device``:
    torch device for DeepQSM; ``user_mask``: a path pattern of the user's brain masks
    (see :func:`user_mask_for`); ``phase_units``: the ``--phase-units`` of the inputs. Each
    run gets its own sub-workflow
    ``run_<node_id>`` so a re-run in the same ``work_dir`` reuses cached nodes.
    Has no inputs: the runs are fixed at build time. Its outputnode-free shape is
    deliberate: the derivatives nodes write into ``output_dir``.
    """
    wf = pe.Workflow(name=name, base_dir=str(work_dir))
    p = pipeline
    for run, geom in zip(runs, geometries):
        qsm = init_qsm_wf(
            shape=geom.shape, voxel_size=geom.voxel_size, echo_times=run.echo_times, pipeline=p,
            n_channels=run.n_channels, has_body_coil=bool(run.body_magnitude),
            user_mask=user_mask_for(user_mask, run) if user_mask else None, omp_nthreads=omp_nthreads, device=device,
            phase_units=phase_units, name=f"run_{run.node_id}")
        qsm.inputs.inputnode.magnitude = list(run.magnitude)
        qsm.inputs.inputnode.phase = list(run.phase)
        qsm.inputs.inputnode.echo_times = list(run.echo_times)
        qsm.inputs.inputnode.field_strength = run.field_strength
        if run.body_magnitude:
            qsm.inputs.inputnode.body_magnitude = list(run.body_magnitude)
            qsm.inputs.inputnode.body_phase = list(run.body_phase)
        ds = init_derivatives_wf(
            output_dir=output_dir, bids_dir=bids_dir, subject=run.subject, session=run.session,
            prefix=run.prefix, source_files=list(run.magnitude) + list(run.phase)
            + list(run.body_magnitude) + list(run.body_phase),
            field_strength=run.field_strength, field_strength_source=run.field_strength_source,
            pipeline=p.name, has_local_field=p.uses_background_step,
            has_r2star=bool(r2star_method_for(run.echo_times, p.method("r2star"))),
            has_coils=run.uncombined, name=f"derivatives_{run.node_id}")
        fields = ds.get_node("inputnode").inputs.copyable_trait_names()
        wf.connect([(qsm, ds, [(f"outputnode.{f}", f"inputnode.{f}") for f in fields])])
    return wf


def user_mask_for(pattern, run) -> Path:
    """The user's mask for ``run``: ``pattern`` with ``{subject}``, ``{session}``,
    ``{acquisition}`` and ``{run}`` filled in (labels without their ``sub-``-style keys)."""
    values = {"subject": run.subject, "session": run.session or "",
              "acquisition": run.acquisition or "", "run": run.run or ""}
    try:
        path = Path(str(pattern).format(**values)).expanduser()
    except (KeyError, IndexError, ValueError) as exc:
        raise UserInputError(
            f"--mask {pattern!r} is not a valid pattern ({exc}): use only {{subject}}, "
            "{session}, {acquisition} and {run} as placeholders.") from None
    if not path.is_file():
        raise UserInputError(
            f"--mask: the brain mask {path} for {run.prefix} does not exist. Give a pattern "
            "that names one mask file per run, e.g. /masks/sub-{subject}_mask.nii.gz, on the "
            "grid of the run's magnitude images.")
    return path.resolve()
