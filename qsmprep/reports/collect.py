"""Gather what a participant report shows for one run, from the output folder and the
work directory: the derivatives and their sidecars, and each nipype node's result file
(run time, peak memory, outputs, the error of a failed step).

The derivatives are preferred (they are what the user gets); a run that stopped before
writing them is shown from the work directory's intermediate files, as far as it got.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..qc import QC_KEY, run_warnings, warnings_of
from ..workflows.labels import step_label

__all__ = ["StepRecord", "RunData", "collect_run", "node_results", "error_of_traceback",
           "WORKFLOW_NAME"]

WORKFLOW_NAME = "qsmprep_participant_wf"

# what each image of the report is, in the derivatives (suffix, desc, datatype) and in the
# work directory (node, output); fields are in Hz in the derivatives and ppm in the work dir
# the report's images -> the run outputs (qsmprep.bids.derivatives.RUN_OUTPUTS) they are
_DERIVATIVES = {"chi": "chi", "mask": "mask", "magnitude": "total_magnitude",
                "total_field": "total_field", "local_field": "local_field", "r2star": "r2star"}
_WORK = {"chi": ("inversion", "chi"), "mask": ("brain_mask", "mask"),
         "magnitude": ("stack_echoes", "magnitude"), "total_field": ("field_fit", "total_field"),
         "local_field": ("background", "local_field"), "r2star": ("r2star", "r2star")}


@dataclass
class StepRecord:
    """One nipype node of the run, from its result file."""

    node: str                  # node name (e.g. brain_mask)
    label: str                 # stage as the console names it
    failed: bool
    duration_s: float | None
    mem_peak_gb: float | None  # nipype resource monitor (None when it was off)
    start: str = ""
    error: str = ""
    outputs: dict = field(default_factory=dict)


@dataclass
class RunData:
    """Everything the report shows for one run."""

    info: dict                              # the run record's entry (see record.py)
    steps: list = field(default_factory=list)        # StepRecord, in start order
    images: dict = field(default_factory=dict)       # kind -> (path, units)
    sidecars: dict = field(default_factory=dict)     # kind -> JSON of the derivative
    qc_warnings: list = field(default_factory=list)  # "stage: sentence"
    errors: list = field(default_factory=list)       # "stage: message" of failed steps
    derivatives_written: bool = False

    @property
    def prefix(self) -> str:
        return self.info["prefix"]

    @property
    def inversion(self) -> dict:
        """The dipole inversion's parameters (sidecar, else the node's output)."""
        chi = self.sidecars.get("chi") or {}
        if isinstance(chi.get("DipoleInversion"), dict):
            return chi["DipoleInversion"]
        for step in self.steps:
            if step.node == "inversion" and isinstance(step.outputs.get("parameters"), dict):
                return step.outputs["parameters"]
        return {}


def error_of_traceback(traceback: str) -> str:
    """The message a failed step stopped with: a qsmprep UserInputError/QCError's text, else
    the traceback's last line."""
    lines = [ln.strip() for ln in str(traceback or "").splitlines() if ln.strip()]
    for line in reversed(lines):
        m = re.match(r"^qsmprep\.errors\.(?:UserInputError|QCError): (.*)$", line)
        if m:
            return m.group(1)
    return lines[-1] if lines else ""




def node_results(work_dir, node_id) -> list[StepRecord]:
    """Every node of run ``node_id`` that has a result file under the work directory
    (finished or failed), in start order. Nodes that never started have none."""
    from nipype.utils.filemanip import loadpkl

    root = Path(work_dir) / WORKFLOW_NAME
    folders = [p for p in root.glob("*") if p.is_dir()
               and re.fullmatch(rf"[A-Za-z]+_{re.escape(node_id)}", p.name)]
    steps = []
    for folder in folders:
        for res in sorted(folder.rglob("result_*.pklz")):
            try:
                result = loadpkl(res)
            except Exception:  # an unreadable result file: that step is unknown
                continue
            rt = result.runtime
            name = res.name[len("result_"):-len(".pklz")]
            tb = getattr(rt, "traceback", None)
            outputs = {}
            if result.outputs is not None:
                try:
                    outputs = dict(result.outputs.get())
                except Exception:
                    outputs = {}
            label = step_label(name) or name.replace("_", " ")  # the console's names
            steps.append(StepRecord(
                node=name, label=label, failed=result.outputs is None and bool(tb),
                duration_s=_float(getattr(rt, "duration", None)),
                mem_peak_gb=_float(getattr(rt, "mem_peak_gb", None)),
                start=str(getattr(rt, "startTime", "") or ""),
                error=error_of_traceback(tb) if tb else "", outputs=outputs))
    steps.sort(key=lambda s: _when(s.start))
    return steps


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _when(stamp):
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except (TypeError, ValueError):
        return float("inf")


def _derivative(output_dir, info, kind) -> Path:
    from ..bids.derivatives import RUN_OUTPUTS, prefixed_derivative_path

    suffix, desc, datatype = RUN_OUTPUTS[_DERIVATIVES[kind]]
    return prefixed_derivative_path(output_dir, info["subject"], info.get("session"),
                                    info["prefix"], suffix, desc=desc, datatype=datatype)


def collect_run(output_dir, work_dir, info: dict) -> RunData:
    """What the report shows for the run ``info`` (an entry of a run record's ``Runs``)."""
    data = RunData(info=info)
    if work_dir is not None and Path(work_dir).is_dir():
        data.steps = node_results(work_dir, info["node_id"])
    for kind in _DERIVATIVES:
        path = _derivative(output_dir, info, kind)
        if path.is_file():
            units = "Hz" if kind.endswith("field") else None
            data.images[kind] = (path, units)
            sidecar = Path(str(path)[:-len(".nii.gz")] + ".json")
            try:
                data.sidecars[kind] = json.loads(sidecar.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                pass
    data.derivatives_written = "chi" in data.images
    by_node = {s.node: s for s in data.steps if not s.failed}
    if not data.derivatives_written:  # show how far the run got, from the work directory
        for kind, (node, output) in _WORK.items():
            src = by_node.get(node)
            value = src.outputs.get(output) if src else None
            if kind not in data.images and isinstance(value, str) and Path(value).is_file():
                data.images[kind] = (Path(value), "ppm" if kind.endswith("field") else None)
    if "chi" in data.sidecars:
        data.qc_warnings = warnings_of(data.sidecars["chi"])
    else:
        data.qc_warnings = run_warnings(
            [(s.label, s.outputs.get("parameters")) for s in data.steps
             if isinstance(s.outputs.get("parameters"), dict) and s.outputs["parameters"].get(QC_KEY)])
    data.errors = [f"{s.label}: {s.error}" for s in data.steps if s.failed]
    return data
