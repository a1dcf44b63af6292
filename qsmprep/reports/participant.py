"""The participant report: ``OUTPUT_DIR/sub-<label>.html`` with its figures under
``OUTPUT_DIR/sub-<label>/figures/``, one section per run (summary, errors, QC warnings,
mosaics, lambda curve, step times and memory), then the command line, the pipeline
settings and the methods paragraph. Built from the run record, the derivatives and the
work directory, so it is written after a failed run too, and ``--reports-only`` rebuilds
it from what is on disk.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from .. import __version__
from ..algorithms.phase import ppm_to_hz
from . import html as H
from .boilerplate import methods_html, methods_paragraph, write_citation_files
from .collect import collect_run
from .figures import CHI_WINDOW_PPM, lambda_curve_figure, mosaic, robust_window
from .record import read_run_record, recorded_subjects

__all__ = ["write_participant_report", "write_reports", "report_path", "reports_only"]


def report_path(output_dir, subject) -> Path:
    return Path(output_dir) / f"sub-{subject}.html"


def _load(path):
    img = nib.load(str(path))
    return np.asanyarray(img.dataobj).astype(np.float32), img.header.get_zooms()[:3]


def _figures(data, fig_dir, rel_dir) -> list[tuple[str, str, str]]:
    """Draw the run's mosaics and lambda curve; ``[(relative src, caption, alt)]``."""
    out = []
    prefix, info = data.prefix, data.info
    mask = None
    if "mask" in data.images:
        mask = _load(data.images["mask"][0])[0] > 0

    def add(name, caption, alt, draw):
        path = fig_dir / f"{prefix}_{name}.png"
        draw(path)
        out.append((f"{rel_dir}/{path.name}", caption, alt))

    if "magnitude" in data.images:
        mag, vs = _load(data.images["magnitude"][0])
        add("magnitude", "Magnitude (root-sum-of-squares over echoes) with the brain mask "
            "outline (red)" if mask is not None else "Magnitude (no brain mask was made)",
            "magnitude with brain mask", lambda p: mosaic(
                mag, p, window=robust_window(np.sqrt((mag ** 2).sum(-1)) if mag.ndim == 4
                                             else mag, None, 99.5), outline=mask,
                voxel_size=vs))
    for kind, label in (("total_field", "Total field"), ("local_field", "Local field")):
        if kind not in data.images:
            continue
        path, units = data.images[kind]
        vol, vs = _load(path)
        if units == "ppm":  # from the work directory: shown in Hz as the derivatives are
            vol = ppm_to_hz(vol, info["field_strength"])
        shown = mask if kind == "total_field" else (vol != 0) & (mask if mask is not None
                                                                 else True)
        win = robust_window(vol, shown, 99.0, symmetric=True)
        add(kind.replace("_", ""), f"{label} (Hz), window +-{win[1]:.3g} Hz (99th percentile "
            "of |field| in the mask)", label.lower(), lambda p, v=vol, s=shown, w=win: mosaic(
                v, p, window=w, cmap="RdBu_r", mask=s, voxel_size=vs, colorbar="Hz"))
    if "chi" in data.images:
        chi, vs = _load(data.images["chi"][0])
        shown = (chi != 0) if mask is None else mask & (chi != 0)
        add("chimap", f"Susceptibility (ppm) at the fixed window {CHI_WINDOW_PPM[0]:g} to "
            f"{CHI_WINDOW_PPM[1]:g} ppm", "susceptibility map", lambda p: mosaic(
                chi, p, window=CHI_WINDOW_PPM, mask=shown, voxel_size=vs, colorbar="ppm"))
    if "r2star" in data.images:
        r2, vs = _load(data.images["r2star"][0])
        win = (0.0, max(robust_window(r2, mask, 99.0)[1], 1.0))
        add("r2starmap", f"R2* (1/s), window 0 to {win[1]:.3g} 1/s", "R2* map", lambda p: mosaic(
            r2, p, window=win, cmap="magma", mask=mask, voxel_size=vs, colorbar="1/s"))
    inv = data.inversion
    curve = inv.get("LambdaCurve")
    if isinstance(curve, dict) and curve.get("Lambdas"):
        derived = inv.get("Lambda") if abs(float(inv.get("Lambda", curve["Chosen"]))
                                           - float(curve["Chosen"])) > 1e-12 else None
        add("lambda", f"Lambda selection ({curve.get('Rule', '').upper()} over "
            f"{len(curve['Lambdas'])} values): chosen {curve['Chosen']:.4g}"
            + (f"; the inversion's lambda {float(derived):.4g} is derived from it"
               if derived is not None else ""), "lambda selection curve",
            lambda p: lambda_curve_figure(curve, p, final_lambda=derived,
                                          title="closed-form L2 sweep"))
    return out


def _summary_rows(data) -> list:
    info = data.info
    chi = data.sidecars.get("chi") or {}
    step_params = {s.node: s.outputs.get("parameters") for s in data.steps}
    inputs = chi.get("InputData") or step_params.get("stack_echoes") or {}
    coils = chi.get("CoilCombination") or step_params.get("coil_combination")
    rows = [("run", info["prefix"]),
            ("status", "complete: derivatives written" if data.derivatives_written
             else "INCOMPLETE: " + ("; ".join(data.errors) or "no derivatives were written")),
            ("magnitude files", "\n".join(Path(f).name for f in info["magnitude"])),
            ("phase files", "\n".join(Path(f).name for f in info["phase"])),
            ("echo times (ms)", ", ".join(f"{t * 1000:.4g}" for t in info["echo_times"])),
            ("field strength (T)", f"{info['field_strength']:.4g} (from "
             f"{info['field_strength_source']})"),
            ("matrix", " x ".join(map(str, info["shape"]))),
            ("voxel size (mm)", " x ".join(f"{v:.3g}" for v in info["voxel_size"])),
            ("B0 direction (voxel axes)", "(" + ", ".join(f"{v:.3f}" for v in
                                                          info["b0_direction"]) + ")"),
            ("B0 angle to the slice axis", f"{info['b0_angle_deg']:.1f} deg"),
            ("phase scaling", inputs.get("PhaseScaling") or "none (phase in radians)"),
            ("coil combination", json.dumps(coils) if coils else
             ("uncombined channels" if info.get("n_channels", 1) > 1
              else "not needed (combined images)"))]
    inv = data.inversion
    if "Lambda" in inv:
        rows.append(("dipole inversion lambda", f"{inv['Lambda']:.4g} "
                     f"({inv.get('LambdaSelection', '')})"))
    return rows


def _run_section(data, fig_dir, rel_dir) -> str:
    parts = [H.table(_summary_rows(data))]
    if data.errors:
        parts.append("<h3>Errors</h3>" + "".join(f'<div class="error">{H.esc(e)}</div>'
                                                  for e in data.errors))
    parts.append(f"<h3>Quality-control warnings ({len(data.qc_warnings)})</h3>")
    parts.append("".join(f'<div class="warn">{H.esc(w)}</div>' for w in data.qc_warnings)
                 or '<p class="ok">none</p>')
    figs = _figures(data, fig_dir, rel_dir)
    parts.append("<h3>Images</h3>" + "".join(H.figure(*f) for f in figs) if figs else
                 "<p>No images: the run stopped before any was made.</p>")
    rows = [(s.label, s.node, "FAILED" if s.failed else "done",
             f"{s.duration_s:.2f}" if s.duration_s is not None else "-",
             f"{s.mem_peak_gb:.3f}" if s.mem_peak_gb is not None else "not monitored")
            for s in data.steps]
    parts.append("<h3>Steps: run time and peak memory</h3>" + (H.table(
        rows, ("stage", "node", "status", "time (s)", "peak RSS (GB)"), numeric=(3, 4))
        if rows else "<p>No step records (the work directory is gone).</p>")
        + "<p>Peak RSS: nipype's resource monitor (psutil, sampled every "
        "0.5 s) of the process running the step; steps reused from the cache show the time of "
        "the run that computed them.</p>")
    return H.section(data.prefix, "\n".join(parts), anchor=data.info["node_id"])


def _settings_section(record) -> str:
    rows = []
    for stage, entry in record["Pipeline"]["stages"].items():
        params = ", ".join(f"{k}={v}" for k, v in (entry.get("params") or {}).items())
        rows.append((stage, entry["method"], params or "-"))
    settings = [(k, json.dumps(v)) for k, v in record["Settings"].items()]
    software = [(k, v) for k, v in record.get("Software", {}).items()]
    body = (f"<h3>Command line</h3><pre>{H.esc(record.get('CommandLine', ''))}</pre>"
            f"<h3>Pipeline: {H.esc(record['Pipeline']['name'])}</h3><p>"
            f"{H.esc(record['Pipeline'].get('description', ''))}</p>"
            + H.table(rows, ("stage", "method", "parameters"))
            + "".join(f"<p>note: {H.esc(n)}</p>" for n in record.get("PipelineNotes", []))
            + "<h3>Execution settings</h3>" + H.table(settings, ("setting", "value"))
            + "<h3>Software</h3>" + H.table(software, ("package", "version"))
            + f"<p>Container: {H.esc(record.get('Container') or 'none')}; started "
            f"{H.esc(record.get('Started', ''))}.</p>")
    return H.section("Command line and settings", body, anchor="settings")


def write_participant_report(output_dir, subject, work_dir=None) -> Path | None:
    """Write ``sub-<subject>.html`` from its run record (None when there is no record)."""
    output_dir = Path(output_dir)
    record = read_run_record(output_dir, subject)
    if record is None:
        return None
    work_dir = work_dir or record["Settings"].get("work_dir")
    rel_dir = f"sub-{subject}/figures"
    fig_dir = output_dir / rel_dir
    fig_dir.mkdir(parents=True, exist_ok=True)
    runs = [collect_run(output_dir, work_dir, info) for info in record["Runs"]]
    sections = [_run_section(d, fig_dir, rel_dir) for d in runs]
    paragraphs, refs = methods_paragraph(record)
    sections.append(H.section("Methods", methods_html(paragraphs, refs)[len("<h2>Methods</h2>"):]
                              + '<p>Also in <a href="logs/CITATION.md">logs/CITATION.md</a>, '
                              '<a href="logs/CITATION.bib">CITATION.bib</a>.</p>',
                              anchor="methods"))
    sections.append(_settings_section(record))
    failed = sum(not d.derivatives_written for d in runs)
    subtitle = (f"qsmprep {__version__} - {len(runs)} run(s), "
                + (f"{failed} incomplete" if failed else "all complete")
                + f" - pipeline {record['Pipeline']['name']}")
    nav = [(d.info["node_id"], d.prefix) for d in runs] + [("methods", "Methods"),
                                                           ("settings", "Settings")]
    text = H.page(f"qsmprep report: sub-{subject}", subtitle, nav, sections)
    from ..bids.derivatives import _write_atomically

    return _write_atomically(report_path(output_dir, subject),
                             lambda t: t.write_text(text, encoding="utf-8"))


def write_reports(output_dir, subjects=None, work_dir=None) -> list[Path]:
    """Every recorded subject's report (or those in ``subjects``) and the CITATION files of
    the pipeline they ran; returns the written paths."""
    subjects = list(subjects) if subjects else recorded_subjects(output_dir)
    written, records = [], []
    for sub in subjects:
        path = write_participant_report(output_dir, sub, work_dir)
        if path is not None:
            written.append(path)
            records.append(read_run_record(output_dir, sub))
    if records:
        merged = {**records[-1], "Runs": [r for rec in records for r in rec["Runs"]]}
        written += write_citation_files(output_dir, merged)
    return written


def reports_only(output_dir, participant_labels=(), work_dir=None, out=None) -> int:
    """``--reports-only``: rebuild the reports of the recorded subjects (those labelled, if
    any) from what is on disk; exit status 0, or a UserInputError naming what is missing."""
    import sys

    from ..errors import UserInputError

    out = sys.stdout if out is None else out
    output_dir = Path(output_dir).expanduser().resolve()
    recorded = recorded_subjects(output_dir)
    wanted = [str(s).removeprefix("sub-") for s in participant_labels or ()] or recorded
    missing = [s for s in wanted if s not in recorded]
    if not recorded or missing:
        raise UserInputError(
            f"--reports-only: no qsmprep run record for "
            f"{', '.join('sub-' + s for s in missing) or 'any participant'} in "
            f"{output_dir / 'logs'} (sub-<label>_qsmprep-run.json, written when a participant "
            "run starts). Run the participant level into this OUTPUT_DIR first, or point "
            "OUTPUT_DIR at the folder that holds its outputs.")
    paths = write_reports(output_dir, wanted, Path(work_dir).resolve() if work_dir else None)
    for p in paths:
        print(f"report: {p}", file=out)
    return 0
