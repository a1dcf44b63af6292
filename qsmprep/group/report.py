"""The group HTML report, ``OUTPUT_DIR/group/group.html``: one self-contained page (inline
CSS, figures as relative links under ``group/figures/``, nothing fetched from a network)
with the whole-brain QC of every run, the outliers, the per-region distributions and the
registration checks, linking each participant's report (``OUTPUT_DIR/sub-<label>.html``)."""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np

from .. import __version__
from ..bids.derivatives import _write_atomically
from .figures import qc_figure, region_figure

__all__ = ["write_group_report"]

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right;vertical-align:top}
th{background:#f2f2f2}td.t{text-align:left;max-width:34em}
tr.bad td{background:#fde8e8}.warn{color:#a15c00}.out{color:#c00;font-weight:bold}
img{max-width:100%;border:1px solid #eee;margin:.3em 0}.note{color:#555;font-size:.9em}
"""


def _e(x) -> str:
    return html.escape(str(x))


def _fmt(x, digits=4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return _e(x)


def _participant_link(subject_id: str) -> str:
    # the participant report sits at the output root, one level above group/
    return f'<a href="../{_e(subject_id)}.html">{_e(subject_id)}</a>'


def _qc_table(qc_rows) -> str:
    head = ("<tr><th>participant</th><th>run</th><th>mask (mL)</th><th>lambda</th>"
            "<th>residual field norm</th><th>removed voxels (consistency / phase quality)</th>"
            "<th>T1w registration MI</th><th>QC warnings</th><th>outliers</th></tr>")
    body = []
    for q in qc_rows:
        warnings = q["qc_warnings"].split(" | ") if q["qc_warnings"] else []
        warn = ("<br>".join(f'<span class="warn">{_e(w)}</span>' for w in warnings)
                if warnings else "none")
        body.append(
            f'<tr class="{"bad" if q["outliers"] else ""}"><td class="t">'
            f'{_participant_link(q["participant_id"])}</td><td class="t">{_e(q["_prefix"])}</td>'
            f'<td>{_fmt(q["mask_volume_ml"])}</td><td>{_fmt(q["lambda"])}</td>'
            f'<td>{_fmt(q["residual_field_norm"])}</td>'
            f'<td>{_fmt(q["consistency_removed_voxels"])} / '
            f'{_fmt(q["phase_quality_removed_voxels"])}</td>'
            f'<td>{_fmt(q.get("registration_metric"))}</td><td class="t">{warn}</td>'
            f'<td class="t out">{_e(q["outliers"]) or ""}</td></tr>')
    return f"<table>{head}{''.join(body)}</table>"


def _region_summary(region_rows, atlas) -> str:
    groups = {}
    for r in region_rows:
        if r["atlas"] == atlas:
            groups.setdefault((r["index"], r["region"]), []).append(r)
    head = ("<tr><th>region</th><th>runs</th><th>voxels (median)</th>"
            "<th>chi mean: median (ppm)</th><th>min</th><th>max</th>"
            "<th>R2* mean: median (1/s)</th><th>outlier runs</th></tr>")
    body = []
    for (index, name), rs in sorted(groups.items()):
        chi = np.array([r["chi_mean"] for r in rs], float)
        r2 = np.array([r.get("r2star_mean", np.nan) for r in rs], float)
        nv = np.array([r["chi_n_voxels"] for r in rs], float)
        if not np.isfinite(chi).any():
            continue
        outl = ", ".join(r["_prefix"] for r in rs if r["outlier"])
        body.append(
            f'<tr><td class="t">{_e(name)} ({index})</td><td>{len(rs)}</td>'
            f'<td>{_fmt(float(np.median(nv)))}</td><td>{_fmt(float(np.nanmedian(chi)))}</td>'
            f'<td>{_fmt(float(np.nanmin(chi)))}</td><td>{_fmt(float(np.nanmax(chi)))}</td>'
            f'<td>{_fmt(float(np.nanmedian(r2)) if np.isfinite(r2).any() else None)}</td>'
            f'<td class="t out">{_e(outl)}</td></tr>')
    return f"<table>{head}{''.join(body)}</table>"


def write_group_report(group_dir: Path, runs, region_rows, qc_rows, reg_figs: dict,
                       notes) -> Path:
    """Write the figures and ``group_dir/group.html``; return the report's path."""
    figures = group_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    subjects = sorted({q["participant_id"] for q in qc_rows})
    sessions = sorted({q["session_id"] for q in qc_rows if q["session_id"]})
    parts = [f"<h1>qsmprep group report</h1><p>{len(qc_rows)} run(s) of {len(subjects)} "
             f"participant(s)" + (f" in {len(sessions)} session(s)" if sessions else "")
             + f"; qsmprep {_e(__version__)}. Tables: <a href=\"desc-regions_stats.tsv\">"
             "desc-regions_stats.tsv</a>, <a href=\"desc-qc_stats.tsv\">desc-qc_stats.tsv</a>"
             " (columns described in their .json sidecars).</p>",
             "<h2>Participant reports</h2><p>" + " &middot; ".join(
                 _participant_link(s) for s in subjects) + "</p>"]
    if notes:
        parts.append("<ul class=\"note\">" + "".join(f"<li>{_e(n)}</li>" for n in notes)
                     + "</ul>")
    outliers = [q for q in qc_rows if q["outliers"]]
    parts.append("<h2>Outliers</h2>" + (
        "<p>Runs with a measure whose robust z-score ((x - median) / (1.4826 MAD) across "
        "runs) is beyond 3:</p><ul>" + "".join(
            f'<li class="out">{_e(q["_prefix"])}: {_e(q["outliers"])}</li>' for q in outliers)
        + "</ul>" if outliers else "<p>No run has a measure with a robust z-score beyond 3"
        + (" (with fewer than 5 runs none is called: the spread of so few is no yardstick)."
           if len(qc_rows) < 5 else ".")
        + "</p>"))
    qc_png = qc_figure(qc_rows, figures / "desc-qc_bars.png")
    parts.append("<h2>Whole-brain quality control</h2>" + _qc_table(qc_rows)
                 + f'<img src="figures/{qc_png.name}" alt="mask volume and residual field '
                 'norm per run">')
    for atlas in dict.fromkeys(r["atlas"] for r in region_rows):
        section = [f"<h2>Regions: {_e(atlas)}</h2>", _region_summary(region_rows, atlas)]
        if atlas == "mask":
            section.append('<p class="note">The susceptibility maps are referenced to their '
                           "mean inside the mask, so the whole-brain chi mean is 0 by "
                           "construction; see the QC table for its spread.</p>")
        for measure, units in (("chi_mean", "ppm"), ("r2star_mean", "1/s")):
            if atlas == "mask" and measure == "chi_mean":
                continue
            png = region_figure(region_rows, atlas, measure, units,
                                figures / f"atlas-{atlas}_desc-{measure.replace('_', '')}"
                                "_distribution.png")
            if png is not None:
                section.append(f'<img src="figures/{png.name}" alt="{_e(atlas)} '
                               f'{_e(measure)} per region">')
        parts.append("".join(section))
    if reg_figs:
        parts.append("<h2>T1w to GRE registration</h2><p>The T1w image of each run, registered "
                     "rigidly onto its GRE magnitude; the segmentation's outlines should follow "
                     "the magnitude's anatomy.</p>" + "".join(
                         f'<h3>{_e(p)}</h3><img src="figures/{_e(f.name)}" '
                         f'alt="registration of {_e(p)}">' for p, f in reg_figs.items()))
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>qsmprep group report</title><style>" + _CSS + "</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")
    path = group_dir / "group.html"
    _write_atomically(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return path
