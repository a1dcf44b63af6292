"""Participant-level execution: discovery, summary, graph, nipype run, progress on the console."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

from ..bids import check_output_dir, find_runs, run_geometry, write_dataset_description
from ..config import Config, describe_methods
from ..qc.inputs import check_input_images
from ..workflows.labels import NODE_LABELS, step_label
from .guard import (check_disk_space, check_memory_budget, disk_needs, lock_participants,
                    stop_cleanly_on_signals, watch_disk_space)
from .messages import fill_message
from .summary import format_run_summary

LOG = logging.getLogger("qsmprep")


class Progress:
    """nipype ``status_callback``: one concise console line per stage and run, each QC
    warning of a finished node (its ``parameters["QCWarnings"]``, see :mod:`qsmprep.qc`) as
    it finishes, and the errors of failed nodes that the CLI reports as one paragraph."""

    def __init__(self, runs, out=sys.stdout):
        self.labels = {f"run_{r.node_id}": r.prefix for r in runs}
        self.labels.update({f"derivatives_{r.node_id}": r.prefix for r in runs})
        self.started = {}
        self.failed = []
        self.warnings = []  # (run, stage, sentence)
        self.errors = []    # (run, "UserInputError" | "QCError", message)
        self.out = out

    def _describe(self, node):
        parts = node.fullname.split(".")
        run = next((self.labels[p] for p in parts if p in self.labels), "?")
        stage = NODE_LABELS.get(node.name)
        return run, stage

    def __call__(self, node, status):
        run, stage = self._describe(node)
        if stage is None and status == "exception":
            stage = step_label(node.name)  # a sink is reported only when it fails
        if stage is None:
            return
        stamp = datetime.now().strftime("%H:%M:%S")
        key = node.fullname
        if status == "start":
            self.started[key] = time.monotonic()
            return
        start = self.started.pop(key, None)
        took = f" ({time.monotonic() - start:.1f} s)" if start is not None else ""
        if status == "end":
            note = ""
            if node.name == "stack_echoes":
                note = _phase_note(node)
            print(f"[{stamp}] {run}: {stage} done{took}{note}", file=self.out, flush=True)
            for warning in _node_warnings(node):
                self.warnings.append((run, stage, warning))
                LOG.warning("%s: %s: %s", run, stage, warning)
                print(f"[{stamp}] {run}: WARNING ({stage}): {warning}", file=self.out,
                      flush=True)
        elif status == "exception":
            self.failed.append((run, stage, node))
            error = _node_error(node)
            if error:
                self.errors.append((run, *error))
            print(f"[{stamp}] {run}: {stage} FAILED{took}", file=self.out, flush=True)

    def summary(self) -> str:
        """The run's QC warnings again, for the end of the console output ('' if none)."""
        if not self.warnings:
            return ""
        lines = [f"qsmprep: {len(self.warnings)} QC warning(s), also in the QCWarnings of the "
                 "sidecars (each run's full list in its _Chimap.json):"]
        lines += [f"  {run}: {stage}: {w}" for run, stage, w in self.warnings]
        return "\n".join(lines)


def _phase_note(node) -> str:
    try:
        note = node.result.outputs.phase_scaling
    except Exception:  # result not loadable: nothing to add
        return ""
    return f"; {note}" if note else ""


def _node_warnings(node) -> list:
    """The QCWarnings of a finished node's ``parameters`` output (none if it has none)."""
    from ..qc import warnings_of

    try:
        params = getattr(node.result.outputs, "parameters", None)
    except Exception:  # result not loadable: nothing to add
        return []
    return warnings_of(params)


_REPORTED_ERRORS = ("UserInputError", "QCError")


def _traceback_lines(node) -> list[str]:
    """The non-empty lines of the traceback nipype saved in a failed node's result file."""
    try:
        tb = node.result.runtime.traceback
    except Exception:
        return []
    if isinstance(tb, (list, tuple)):
        tb = "".join(tb)
    return [ln.strip() for ln in str(tb or "").strip().splitlines() if ln.strip()]


def _node_error(node):
    """``(kind, message)`` when a failed node raised a :class:`~qsmprep.errors.UserInputError`
    or :class:`~qsmprep.errors.QCError` (read from the traceback nipype saved in its result
    file), else None."""
    for line in reversed(_traceback_lines(node)):
        for kind in _REPORTED_ERRORS:
            marker = f"qsmprep.errors.{kind}: "
            if line.startswith(marker):
                return kind, line[len(marker):].strip()
    return None


def _node_cause(node) -> str:
    """The last line of a failed node's exception (its cause), or "" when none was saved."""
    lines = _traceback_lines(node)
    return lines[-1] if lines else ""


def configure_logging(work_dir: Path) -> Path:
    """Send nipype's messages to a log file in the work directory, not the console."""
    log_dir = work_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"qsmprep_{datetime.now():%Y%m%d-%H%M%S}_{os.getpid()}.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    # concurrent.futures logs a failed MultiProc callback (e.g. a full disk) as a raw
    # traceback on stderr: into the log file with the rest
    for name in ("nipype", "qsmprep", "concurrent.futures"):
        lg = logging.getLogger(name)
        for h in list(lg.handlers):
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                lg.removeHandler(h)
        lg.addHandler(handler)
        lg.propagate = False
    logging.getLogger("nipype.workflow").setLevel(logging.INFO)
    logging.getLogger("qsmprep").setLevel(logging.INFO)
    # a log write that fails (the work dir's disk is full) must not print "--- Logging
    # error ---" blocks: the disk watch says what happened (guard.watch_disk_space)
    logging.raiseExceptions = False
    return log_file


def configure_nipype(work_dir: Path) -> Path:
    from nipype import config as ncfg

    crash_dir = work_dir / "crash"
    crash_dir.mkdir(parents=True, exist_ok=True)
    ncfg.update_config({
        "execution": {
            "crashdump_dir": str(crash_dir),
            "crashfile_format": "txt",
            "poll_sleep_duration": 0.05,
            "stop_on_first_crash": "false",
            "remove_unnecessary_outputs": "false",
            "check_version": "false",
            "parameterize_dirs": "false",
        },
        # per-step peak memory for the report (psutil samples the step's process)
        "monitoring": {"enabled": str(_have_psutil()).lower(), "sample_frequency": "0.5"},
    })
    ncfg.resource_monitor = _have_psutil()  # the property caches; update_config does not reset it
    return crash_dir


def _have_psutil() -> bool:
    import importlib.util

    return importlib.util.find_spec("psutil") is not None


def _write_reports(cfg: Config, runs, out) -> None:
    """The participant reports and CITATION files; a report that cannot be made is a note
    on the console, never a change of the exit status."""
    from ..reports.participant import write_reports

    try:
        paths = write_reports(cfg.output_dir, sorted({r.subject for r in runs}), cfg.work_dir)
    except Exception as exc:  # noqa: BLE001 - the report must not hide the run's own result
        print(f"qsmprep: note: the report could not be written ({type(exc).__name__}: {exc}); "
              f"rebuild it with --reports-only.", file=out, flush=True)
        return
    html = [p for p in paths if p.suffix == ".html" and p.parent == cfg.output_dir]
    if html:
        print(f"report: {', '.join(str(p) for p in html)}", file=out, flush=True)


def run_participant(cfg: Config, out=None, err=None) -> int:
    """Process every selected run; return the exit status (0 ok, 1 some run failed, 2 a run
    stopped on an input the user must fix). QC warnings are printed as each node finishes
    and again at the end; a node stopped by a UserInputError or QCError is reported as one
    paragraph on ``err``."""
    out = sys.stdout if out is None else out  # the streams of the call, not of the import
    err = sys.stderr if err is None else err
    t0 = time.monotonic()
    check_output_dir(cfg.bids_dir, cfg.output_dir, cfg.work_dir)
    runs = find_runs(cfg.bids_dir, list(cfg.participant_labels) or None,
                     list(cfg.session_labels) or None, cfg.bids_filters or None)
    geoms = [run_geometry(r) for r in runs]
    check_input_images(runs)  # every input's data, before anything runs
    pipeline, notes = cfg.pipeline, cfg.pipeline_notes
    print(format_run_summary(runs, geoms), file=out)
    print(f"pipeline: {pipeline.name} ({pipeline.description})", file=out, flush=True)
    print(f"methods: {describe_methods(pipeline)}", file=out, flush=True)
    for note in notes:
        print(f"note: {note}", file=out, flush=True)

    cfg.work_dir.mkdir(parents=True, exist_ok=True)
    lock_participants(cfg.work_dir, [r.subject for r in runs])  # one run per participant
    cfg.output_dir.mkdir(parents=True, exist_ok=True)
    stop_cleanly_on_signals(cfg.work_dir, cfg.output_dir, out)
    log_file = configure_logging(cfg.work_dir)
    crash_dir = configure_nipype(cfg.work_dir)
    write_dataset_description(cfg.output_dir, cfg.bids_dir,
                              container=os.environ.get("QSMPREP_CONTAINER"))
    from ..reports.record import build_run_record, write_run_records

    write_run_records(cfg.output_dir, build_run_record(cfg, runs, geoms))

    from ..workflows.base import init_participant_wf

    wf = init_participant_wf(runs=runs, geometries=geoms, bids_dir=cfg.bids_dir,
                             output_dir=cfg.output_dir, work_dir=cfg.work_dir,
                             pipeline=pipeline, omp_nthreads=cfg.omp_nthreads, device=cfg.device,
                             user_mask=cfg.user_mask, phase_units=cfg.phase_units)
    check_memory_budget(wf, cfg.mem_gb)
    work_bytes, out_bytes = disk_needs(runs, geoms)
    check_disk_space({(cfg.work_dir, "--work-dir"): work_bytes,
                      (cfg.output_dir, "OUTPUT_DIR"): out_bytes})
    progress = Progress(runs, out)
    from .plugins import plugin_settings, set_node_resources

    set_node_resources(wf, cfg.plugin)  # per-node memory/CPUs for the batch schedulers
    plugin_args = plugin_settings(cfg.plugin, dict(cfg.plugin_args), nprocs=cfg.nprocs,
                                  mem_gb=cfg.mem_gb, status_callback=progress)
    print(f"log: {log_file}", file=out, flush=True)
    # nipype's resource monitor writes a .proc-* file into the current directory of every
    # process for every step: run from a folder of the work dir and remove it afterwards
    monitor_dir = cfg.work_dir / "monitor"
    monitor_dir.mkdir(exist_ok=True)
    previous_cwd = os.getcwd()
    os.chdir(monitor_dir)
    watch_disk_space([cfg.work_dir, cfg.output_dir], out)
    try:
        wf.run(plugin=cfg.plugin, plugin_args=plugin_args)
        failed = False
    except RuntimeError:
        failed = True
    finally:
        os.chdir(previous_cwd)
        shutil.rmtree(monitor_dir, ignore_errors=True)
        from nipype import config as ncfg

        ncfg.resource_monitor = False  # later interface runs in this process: no .proc-* files
    took = time.monotonic() - t0
    if cfg.plugin == "SLURMGraph" and not failed:
        print(f"qsmprep: submitted the whole graph to Slurm in {took:.0f} s; qsmprep does not "
              f"wait for these jobs. Derivatives appear in {cfg.output_dir} as they finish "
              f"(squeue -u $USER); run the same command with --plugin SLURM or MultiProc and "
              f"the same -w afterwards to check the result and reuse every finished step.",
              file=out, flush=True)
        return 0
    _write_reports(cfg, runs, out)
    summary = progress.summary()
    if summary:
        print(summary, file=out, flush=True)
    for run, _, message in progress.errors:
        print("qsmprep: error: " + fill_message(f"{run}: {message}"), file=err, flush=True)
    if progress.errors and len(progress.errors) == len(progress.failed):
        status = 2 if any(kind == "UserInputError" for _, kind, _ in progress.errors) else 1
        print(f"qsmprep: {len(progress.errors)} run(s) stopped after {took:.0f} s (see above); "
              f"runs that finished were written to {cfg.output_dir}.", file=out, flush=True)
        return status
    if failed or progress.failed:
        for run, stage, node in progress.failed:
            cause = _node_cause(node)
            if cause:
                print("qsmprep: error: " + fill_message(f"{run}: {stage or node.name} failed: "
                                                         f"{cause}"), file=err, flush=True)
        crashes = sorted(crash_dir.glob("crash-*"), key=lambda p: p.stat().st_mtime)
        print(f"qsmprep: {len(progress.failed) or 'some'} step(s) failed after {took:.0f} s. "
              f"Details: {crashes[-1] if crashes else crash_dir} (all crash files in {crash_dir}; "
              f"log {log_file}). Runs that finished were written to {cfg.output_dir}.",
              file=out, flush=True)
        return 1
    print(f"qsmprep: {len(runs)} run(s) done in {took:.1f} s; derivatives in {cfg.output_dir}",
          file=out, flush=True)
    return 0
