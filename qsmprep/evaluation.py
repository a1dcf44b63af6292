"""Score a susceptibility map against ground truth: maps in (files or arrays), metrics out.

The metrics are those of the QSM reconstruction challenge 2.0 (Bilgic et al., MRM
2021;86:1241-1255; Marques et al., MRM 2021;86:526-542), implemented in
:mod:`qsmprep.algorithms.metrics`; see docs/evaluation.md for the definitions.

Everything is evaluated inside the *evaluation mask*: the truth brain mask where the
reconstruction is defined (finite and non-zero; qsmprep writes zeros outside its own mask).
Both maps are demeaned inside it, since QSM is relative.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from .algorithms.metrics import (
    correlation,
    demeaned_nrmse,
    detrended_nrmse,
    hfen,
    label_means,
    linear_fit,
    xsim,
)
from .errors import UserInputError

__all__ = ["evaluate_chimap", "format_scores", "scores_to_json", "read_label_names", "load_map"]

GRID_ATOL_MM = 1e-3  # affines that differ by less than this (mm) describe the same grid


def _describe(value, what) -> str:
    return str(value) if isinstance(value, (str, Path)) else f"the {what} array"


def load_map(value, *, what: str):
    """``(data float64, affine or None, description)`` for a NIfTI path or an array.

    Trailing singleton dimensions are dropped; anything but a 3-D volume is a
    :class:`UserInputError` naming the file.
    """
    if isinstance(value, (str, Path)):
        import nibabel as nib

        path = Path(value)
        if not path.is_file():
            raise UserInputError(
                f"The {what} file {path} does not exist. Check the path (NIfTI, .nii or .nii.gz).")
        try:
            img = nib.load(str(path))
            data = np.asarray(img.dataobj, dtype=np.float64)
        except Exception as exc:  # nibabel raises several types for unreadable files
            raise UserInputError(
                f"Could not read the {what} file {path} as NIfTI ({exc}). Pass a .nii or .nii.gz "
                "image.") from exc
        affine = np.asarray(img.affine, np.float64)
    else:
        data = np.asarray(value, dtype=np.float64)
        affine = None
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise UserInputError(
            f"The {what} ({_describe(value, what)}) has shape {data.shape}; a single 3-D volume "
            "is needed. Pass one volume (e.g. extract it with fslroi or nibabel).")
    return data, affine, _describe(value, what)


def _check_grid(ref, other):
    (rdata, raff, rname), (odata, oaff, oname) = ref, other
    same = rdata.shape == odata.shape
    if same and raff is not None and oaff is not None:
        same = bool(np.allclose(raff, oaff, atol=GRID_ATOL_MM))
    if not same:
        raise UserInputError(
            f"{oname} (shape {odata.shape}) is not on the grid of {rname} (shape {rdata.shape}"
            + ("" if raff is None or oaff is None else ", or a different affine")
            + "). Both maps must share one voxel grid: resample the file onto the truth grid "
            "(e.g. with nibabel.processing.resample_from_to or FSL flirt -applyxfm) or pass the "
            "truth that belongs to this reconstruction.")


def read_label_names(path) -> dict[int, str]:
    """``{index: name}`` from a BIDS dseg TSV (columns ``index`` and ``name``)."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(
            f"The label-names file {path} does not exist. Pass the BIDS dseg TSV that goes with "
            "the label image (columns 'index' and 'name').")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        fields = reader.fieldnames or []
        if "index" not in fields or "name" not in fields:
            raise UserInputError(
                f"The label-names file {path} has columns {fields}; a BIDS dseg TSV needs the "
                "tab-separated columns 'index' and 'name'. Add that header line.")
        names = {}
        for n, row in enumerate(reader, start=2):
            try:
                names[int(row["index"])] = row["name"]
            except (TypeError, ValueError) as exc:
                raise UserInputError(
                    f"Line {n} of {path} has index {row.get('index')!r}, not an integer. Fix "
                    "that line of the TSV.") from exc
    return names


def _label_names(labels, label_names) -> dict[int, str]:
    if isinstance(label_names, dict):
        return {int(k): str(v) for k, v in label_names.items()}
    if label_names is not None:
        return read_label_names(label_names)
    if isinstance(labels, (str, Path)):  # BIDS: sub-01_dseg.nii.gz next to sub-01_dseg.tsv
        p = Path(labels)
        sibling = p.with_name(p.name.split(".nii")[0] + ".tsv")
        if sibling.is_file():
            return read_label_names(sibling)
    return {}


def _finite_or_none(x):
    return None if x is None or not math.isfinite(x) else float(x)


def evaluate_chimap(chi, truth_chi, mask, labels=None, label_names=None, *,
                    min_label_voxels: int = 5, regression_labels=None) -> dict:
    """Challenge-2.0 metrics of the map ``chi`` against ``truth_chi`` (both ppm).

    ``chi``, ``truth_chi``, ``mask`` and ``labels`` are NIfTI paths or 3-D arrays on one grid
    (shapes and, for files, affines must agree, else :class:`UserInputError` naming the file).
    ``labels`` is a dseg image; ``label_names`` a BIDS dseg TSV path or ``{index: name}``
    (default: the ``.tsv`` beside a ``labels`` file, else ``label-<index>``). Regions need
    ``min_label_voxels`` voxels in the evaluation mask. The region-mean regression uses the
    regions named in ``regression_labels`` (default all reported regions).

    Returns a dict: ``demeaned_nrmse_percent``, ``detrended_nrmse_percent``,
    ``hfen_percent``, ``xsim``, ``correlation``, ``mask_coverage`` (fraction of the truth
    mask evaluated), ``n_voxels``, ``label_means`` (``{name: (recon_ppm, truth_ppm)}``,
    demeaned maps), ``labels`` (rows with index, name, n_voxels, recon/truth means and
    their difference), ``label_regression`` (``slope``, ``intercept``, ``r``, ``n_labels``
    of recon region means against truth region means; None where undefined) and ``inputs``.
    """
    c = load_map(chi, what="susceptibility map")
    t = load_map(truth_chi, what="truth susceptibility map")
    m = load_map(mask, what="mask")
    _check_grid(t, c)
    _check_grid(t, m)
    chi_a, truth_a, mask_a = c[0], t[0], m[0] > 0
    if not mask_a.any():
        raise UserInputError(f"The mask {m[2]} is empty. Pass the brain mask of the truth.")
    evalmask = mask_a & np.isfinite(chi_a) & (chi_a != 0) & np.isfinite(truth_a)
    if evalmask.sum() < 2:
        raise UserInputError(
            f"{c[2]} is zero or not finite everywhere inside the mask {m[2]}, so there is "
            "nothing to score. Check that the map and the mask belong to the same subject.")
    chi_a = np.where(evalmask, chi_a, 0.0)
    truth_a = np.where(evalmask, truth_a, 0.0)
    scores = {
        "demeaned_nrmse_percent": demeaned_nrmse(chi_a, truth_a, evalmask),
        "detrended_nrmse_percent": detrended_nrmse(chi_a, truth_a, evalmask),
        "hfen_percent": hfen(chi_a, truth_a, evalmask),
        "xsim": xsim(chi_a, truth_a, evalmask),
        "correlation": correlation(chi_a, truth_a, evalmask),
        "mask_coverage": float(evalmask.sum() / mask_a.sum()),
        "n_voxels": int(evalmask.sum()),
        "label_means": {},
        "labels": [],
        "label_regression": None,
        "inputs": {"chimap": c[2], "truth": t[2], "mask": m[2]},
    }
    if labels is None:
        return scores
    lab = load_map(labels, what="label (dseg) image")
    _check_grid(t, lab)
    scores["inputs"]["labels"] = lab[2]
    names = _label_names(labels, label_names)
    if label_names is not None and not isinstance(label_names, dict):
        scores["inputs"]["label_names"] = str(label_names)
    rc = np.where(evalmask, chi_a - chi_a[evalmask].mean(), 0.0)
    tc = np.where(evalmask, truth_a - truth_a[evalmask].mean(), 0.0)
    try:
        rmeans = label_means(rc, lab[0], evalmask, min_voxels=min_label_voxels)
    except ValueError as exc:
        raise UserInputError(f"{lab[2]} is not a label image ({exc}). Pass a dseg image of "
                             "integer labels.") from exc
    tmeans = label_means(tc, lab[0], evalmask, min_voxels=min_label_voxels)
    for k, (rmean, n) in rmeans.items():
        name = names.get(k, f"label-{k}")
        tmean = tmeans[k][0]
        scores["label_means"][name] = (rmean, tmean)
        scores["labels"].append({"index": k, "name": name, "n_voxels": n, "recon_ppm": rmean,
                                 "truth_ppm": tmean, "error_ppm": rmean - tmean})
    rows = scores["labels"]
    if regression_labels is not None:
        wanted = set(regression_labels)
        unknown = sorted(wanted - {row["name"] for row in rows})
        if unknown:
            raise UserInputError(
                f"Regions {', '.join(unknown)} are not among the regions of {lab[2]} with at "
                f"least {min_label_voxels} evaluated voxels "
                f"({', '.join(row['name'] for row in rows) or 'none'}). Use those names.")
        rows = [row for row in rows if row["name"] in wanted]
    slope, intercept, r = linear_fit([row["truth_ppm"] for row in rows],
                                     [row["recon_ppm"] for row in rows])
    scores["label_regression"] = {"slope": _finite_or_none(slope),
                                  "intercept": _finite_or_none(intercept),
                                  "r": _finite_or_none(r), "n_labels": len(rows)}
    return scores


def _fmt(x, spec):
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def format_scores(scores) -> str:
    """A readable table of :func:`evaluate_chimap`'s scores."""
    lines = [
        f"{'metric':<28} {'value':>10}",
        f"{'demeaned NRMSE (%)':<28} {_fmt(scores['demeaned_nrmse_percent'], '>10.1f')}",
    ]
    for key, label, spec in (("detrended_nrmse_percent", "detrended NRMSE (%)", ">10.1f"),
                             ("hfen_percent", "HFEN (%)", ">10.1f"),
                             ("xsim", "XSIM", ">10.4f")):
        if key in scores:
            lines.append(f"{label:<28} {_fmt(scores[key], spec)}")
    lines.append(f"{'correlation':<28} {_fmt(scores['correlation'], '>10.3f')}")
    n = scores.get("n_voxels")
    lines.append(f"evaluated on {100 * scores['mask_coverage']:.0f}% of the truth brain mask"
                 + (f" ({n} voxels)" if n is not None else ""))
    rows = scores.get("labels") or [
        {"name": k, "recon_ppm": r, "truth_ppm": t, "error_ppm": r - t, "n_voxels": None}
        for k, (r, t) in scores.get("label_means", {}).items()]
    if rows:
        lines.append("")
        lines.append(f"{'region':<20} {'voxels':>8} {'recon ppm':>10} {'truth ppm':>10} "
                     f"{'error ppm':>10}")
        for row in rows:
            nv = "" if row["n_voxels"] is None else str(row["n_voxels"])
            lines.append(f"{row['name']:<20} {nv:>8} {row['recon_ppm']:>10.4f} "
                         f"{row['truth_ppm']:>10.4f} {row['error_ppm']:>+10.4f}")
    reg = scores.get("label_regression")
    if reg:
        lines.append(f"region means: recon = {_fmt(reg['slope'], '.3f')} x truth "
                     f"{'+' if (reg['intercept'] or 0) >= 0 else '-'} "
                     f"{_fmt(None if reg['intercept'] is None else abs(reg['intercept']), '.4f')}"
                     f" ppm, r = {_fmt(reg['r'], '.3f')} ({reg['n_labels']} regions)")
    return "\n".join(lines)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def scores_to_json(scores, path=None) -> str:
    """Scores as JSON text (non-finite numbers become ``null``); also written to ``path``."""
    text = json.dumps(_jsonable(scores), indent=2) + "\n"
    if path is not None:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        except OSError as exc:
            raise UserInputError(f"Could not write the scores to {path} ({exc}). Choose a "
                                 "writable path for --json.") from exc
    return text
