"""The run record: what a participant run was asked to do, kept for its report.

``OUTPUT_DIR/logs/sub-<label>_qsmprep-run.json`` holds the exact command line, the
pipeline that ran (every stage's method and that method's parameters), the execution
settings, the software versions and, per run, the summary the console printed (files,
echo times, field strength and its source, matrix, voxel size, B0 direction and angle,
channels). It is written before the workflow starts, so that a run that fails, and
``--reports-only`` later, still have it. Plain JSON in, dicts out: no nipype.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from dataclasses import asdict, is_dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from .. import __version__

__all__ = ["record_path", "build_run_record", "write_run_records", "read_run_record",
           "software_versions", "recorded_subjects"]

_PACKAGES = ("numpy", "scipy", "nibabel", "nipype", "pybids", "matplotlib", "torch")


def record_path(output_dir, subject) -> Path:
    return Path(output_dir) / "logs" / f"sub-{subject}_qsmprep-run.json"


def software_versions() -> dict:
    """Python and the versions of the packages qsmprep's results depend on (installed ones)."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _plain(value):
    if is_dataclass(value):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _pipeline(settings) -> dict:
    from .. import methods as reg

    stages = {}
    for st in reg.STAGES:
        name = settings.method(st.name)
        stages[st.name] = {"method": name, "params": _plain(settings.params_of(st.name))}
    return {"name": settings.name, "description": settings.description, "stages": stages,
            "uses_background_step": settings.uses_background_step}


def _run_info(run, geom) -> dict:
    return {
        "prefix": run.prefix, "node_id": run.node_id, "subject": run.subject,
        "session": run.session, "suffix": run.suffix,
        "magnitude": list(run.magnitude), "phase": list(run.phase),
        "body_magnitude": list(run.body_magnitude), "body_phase": list(run.body_phase),
        "echo_times": list(run.echo_times), "field_strength": run.field_strength,
        "field_strength_source": run.field_strength_source, "n_channels": run.n_channels,
        "shape": list(geom.shape), "voxel_size": list(geom.voxel_size),
        "b0_direction": list(geom.b0_direction), "b0_angle_deg": geom.b0_angle_deg,
    }


def build_run_record(cfg, runs, geometries, argv=None) -> dict:
    """One record per subject: ``{subject: record}`` for the runs about to be processed."""
    argv = list(sys.argv if argv is None else argv)
    common = {
        "QsmprepVersion": __version__,
        "Started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "CommandLine": " ".join(shlex.quote(a) for a in argv),
        "WorkingDirectory": os.getcwd(),
        "Software": software_versions(),
        "Container": os.environ.get("QSMPREP_CONTAINER") or None,
        "Pipeline": _pipeline(cfg.pipeline),
        "PipelineNotes": list(cfg.pipeline_notes),
        "Settings": {
            "bids_dir": str(cfg.bids_dir), "output_dir": str(cfg.output_dir),
            "work_dir": str(cfg.work_dir), "participant_labels": list(cfg.participant_labels),
            "session_labels": list(cfg.session_labels), "bids_filters": _plain(cfg.bids_filters),
            "nprocs": cfg.nprocs, "omp_nthreads": cfg.omp_nthreads, "mem_gb": cfg.mem_gb,
            "plugin": cfg.plugin, "fsl": cfg.fsl, "device": cfg.device,
            "user_mask": cfg.user_mask, "phase_units": cfg.phase_units},
    }
    out = {}
    for run, geom in zip(runs, geometries):
        rec = out.setdefault(run.subject, {**common, "Subject": run.subject, "Runs": []})
        rec["Runs"].append(_run_info(run, geom))
    return out


def write_run_records(output_dir, records: dict) -> list[Path]:
    """Write each subject's record (atomically); returns the paths."""
    from ..bids.derivatives import _write_json

    return [_write_json(record_path(output_dir, sub), rec) for sub, rec in records.items()]


def read_run_record(output_dir, subject) -> dict | None:
    """The subject's record, or None when there is none (or it is unreadable)."""
    try:
        return json.loads(record_path(output_dir, subject).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def recorded_subjects(output_dir) -> list[str]:
    """The subjects with a run record in ``OUTPUT_DIR/logs``, sorted."""
    folder = Path(output_dir) / "logs"
    suffix = "_qsmprep-run.json"
    return sorted(p.name[len("sub-"):-len(suffix)] for p in folder.glob(f"sub-*{suffix}"))
