"""The group level: read each participant run's outputs, measure regions and whole-brain
QC, then write ``OUTPUT_DIR/group/`` (tables, figures, report). Files in, files out; the
numbers come from :mod:`.stats`, the registration from :mod:`.register`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from ..algorithms.dipole import b0_direction_from_affine, voxel_size_from_affine
from ..bids.derivatives import refuse_inside_input
from ..errors import UserInputError
from . import labels as L
from .outputs import _read_sidecar, find_participant_runs
from .stats import mask_volume_ml, region_stats, residual_field_norm, robust_z
from .tables import QC_COLUMNS, REGION_COLUMNS, write_table

__all__ = ["GroupOptions", "run_group"]

GAMMA_MHZ_T = 42.577478


@dataclass(frozen=True)
class GroupOptions:
    bids_dir: Path
    output_dir: Path
    participant_labels: tuple = ()
    session_labels: tuple = ()
    labels: str | None = None          # pattern of GRE-space label images
    t1w: str | None = None             # pattern of T1w images
    t1w_labels: str | None = None      # pattern of segmentations in the T1w space
    simulated_labels: bool | None = None  # None: use the simulator's truth where it exists


def _load(path, what):
    try:
        img = nib.load(str(path))
        return np.asanyarray(img.dataobj).astype(np.float32), img.affine
    except Exception as exc:  # nibabel raises several kinds for a broken file
        raise UserInputError(f"The {what} {path} cannot be read ({exc}). Re-run the "
                             "participant level for this run, then the group level.") from exc


def _get(d: dict, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _entity_row(run) -> dict:
    return {"participant_id": f"sub-{run.subject}",
            "session_id": f"ses-{run.session}" if run.session else None,
            "acquisition": run.acquisition, "reconstruction": run.reconstruction,
            "run": run.run}


def _fixed_magnitude(run, bids_dir: Path):
    if run.magnitude is not None:
        return _load(run.magnitude, "magnitude image")
    anat = bids_dir / f"sub-{run.subject}" / (f"ses-{run.session}" if run.session else "") / "anat"
    for name in (f"{run.prefix}_echo-1_part-mag_MEGRE.nii.gz", f"{run.prefix}_part-mag_T2starw.nii.gz"):
        if (anat / name).is_file():
            data, aff = _load(anat / name, "magnitude image")
            return (data if data.ndim == 3 else np.sqrt((data ** 2).sum(-1))), aff
    raise UserInputError(
        f"No magnitude image to register the T1w image of {run.prefix} to: neither the "
        f"participant output fmap/{run.prefix}_desc-total_magnitude.nii.gz nor the input "
        f"{anat}/{run.prefix}_echo-1_part-mag_MEGRE.nii.gz exists. Re-run the participant "
        "level for this run.")


def _gre_labels(opts, run, shape, affine, notes):
    """``[(atlas, labels, names)]`` of the label sources on the run's grid (no T1w)."""
    out = []
    if opts.labels:
        path = L.fill_pattern(opts.labels, run.entities, "--labels")
        lab, aff = L.load_label_image(path, "--labels")
        if not L.same_grid(lab.shape, aff, shape, affine):
            raise UserInputError(
                f"The label image {path} (--labels) is not on the grid of {run.chi.name} "
                f"(shape {lab.shape} vs {tuple(shape)}, or another affine). --labels takes "
                "images in the GRE space; for a segmentation in a T1w space use --t1w and "
                "--t1w-labels, which register it onto the GRE magnitude.")
        names, note = L.read_label_names(path, np.unique(lab))
        if note:
            notes.add(note)
        out.append(("labels", lab, names))
    truth = L.truth_label_path(opts.bids_dir, run.prefix, run.subject, run.session)
    use_truth = opts.simulated_labels
    if use_truth is None:
        use_truth = truth.is_file() and not (opts.labels or opts.t1w_labels)
        if use_truth:
            notes.add("regions: the simulator's truth labels in "
                      f"{opts.bids_dir / 'derivatives' / 'qsmprep-truth'} (no --labels or "
                      "--t1w-labels given)")
    if use_truth:
        lab, aff = L.load_label_image(truth, "--simulated-labels")
        names, _ = L.read_label_names(truth, np.unique(lab))
        out.append(("truth", lab, names))
    return out


def _t1w_labels(opts, run, shape, affine, group_dir, figures):
    """Register the run's T1w image onto its GRE magnitude; its segmentation on the GRE grid."""
    import SimpleITK as sitk

    from .register import register_rigid, resample_to
    from .figures import registration_figure

    t1_path = L.fill_pattern(opts.t1w, run.entities, "--t1w")
    seg_path = L.fill_pattern(opts.t1w_labels, run.entities, "--t1w-labels")
    if not t1_path.is_file():
        raise UserInputError(f"The T1w image {t1_path} (from --t1w) does not exist. Check the "
                             "pattern: {subject}, {session}, {acquisition} and {run} are "
                             "replaced by each run's labels, without the sub-/ses- prefixes.")
    t1, t1_aff = _load(t1_path, "T1w image")
    seg, seg_aff = L.load_label_image(seg_path, "--t1w-labels")
    mag, mag_aff = _fixed_magnitude(run, opts.bids_dir)
    res = register_rigid(mag, mag_aff, np.squeeze(t1), t1_aff)
    lab = resample_to(seg, seg_aff, res.transform, shape, affine, nearest=True)
    t1_on_gre = resample_to(np.squeeze(t1), t1_aff, res.transform, shape, affine, nearest=False)
    reg_dir = group_dir / "registration"
    reg_dir.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(lab.astype(np.int16), affine),
             str(reg_dir / f"{run.prefix}_desc-t1wlabels_dseg.nii.gz"))
    sitk.WriteTransform(res.transform, str(reg_dir / f"{run.prefix}_from-T1w_to-GRE_xfm.txt"))
    fig = figures / f"{run.prefix}_desc-registration.png"
    registration_figure(mag, t1_on_gre, lab, fig, title=f"{run.prefix}: T1w -> GRE magnitude")
    names, _ = L.read_label_names(seg_path, np.unique(seg))
    return lab, names, res, fig


def _qc_row(run, chi, mask, affine, side) -> dict:
    vs = voxel_size_from_affine(affine)
    row = {"mask_voxels": int(mask.sum()), "mask_volume_ml": mask_volume_ml(mask, vs),
           "chi_brain_std": float(np.std(chi[mask])) if mask.any() else None,
           "inversion_method": _get(side, "DipoleInversion", "Method"),
           "lambda": _get(side, "DipoleInversion", "Lambda"),
           "consistency_removed_voxels": _get(side, "PhaseUnwrapping",
                                              "VoxelsRemovedByConsistencyCheck"),
           "phase_quality_removed_voxels": _get(side, "BrainMask", "PhaseQualityRemovedVoxels"),
           "nonfinite_input_voxels": _get(side, "InputData", "NonFiniteVoxels")}
    warnings = list(side.get("QCWarnings") or [])
    row["n_qc_warnings"], row["qc_warnings"] = len(warnings), " | ".join(warnings)
    row["residual_field_norm"] = None
    if run.local_field is not None and mask.any():
        field, f_aff = _load(run.local_field, "local field map")
        fside = _read_sidecar(run.local_field)
        b0 = side.get("MagneticFieldStrength") or fside.get("MagneticFieldStrength")
        ppm_to_hz = fside.get("PpmToHz") or (b0 * GAMMA_MHZ_T if b0 else None)
        if ppm_to_hz and field.shape == chi.shape:
            row["residual_field_norm"] = residual_field_norm(
                field / ppm_to_hz, chi, mask, vs, b0_direction_from_affine(affine))
    return row


#: the smallest spread that counts as variation between runs: region chi means 0.005 ppm,
#: mask volumes 2 % of the median, residual field norms 0.02 (a robust z beyond 3 then needs
#: 0.015 ppm, 6 % or 0.06 away from the median)
MIN_SPREAD = {"chi_mean": 0.005, "mask_volume_ml": 0.02, "residual_field_norm": 0.02}


def _flag_outliers(region_rows, qc_rows):
    """Robust z-scores across runs: chi_mean per (atlas, region), QC measures per run."""
    groups = {}
    for i, r in enumerate(region_rows):
        groups.setdefault((r["atlas"], r["index"]), []).append(i)
    for (atlas, _index), idx in groups.items():
        # the maps are referenced to their mean in the mask: its chi mean is 0 by construction
        z = (np.full(len(idx), np.nan) if atlas == "mask"
             else robust_z([region_rows[i]["chi_mean"] for i in idx],
                           min_scale=MIN_SPREAD["chi_mean"]))
        for i, zi in zip(idx, z):
            region_rows[i]["chi_mean_robust_z"] = float(zi)
            region_rows[i]["outlier"] = bool(abs(zi) > 3) if np.isfinite(zi) else False
    for key in ("mask_volume_ml", "residual_field_norm"):
        values = [np.nan if r.get(key) is None else r[key] for r in qc_rows]
        finite = [v for v in values if np.isfinite(v)]
        floor = MIN_SPREAD[key] * (abs(float(np.median(finite))) if finite and
                                   key == "mask_volume_ml" else 1.0)
        z = robust_z(values, min_scale=floor)
        for r, zi in zip(qc_rows, z):
            r[f"{key}_robust_z"] = float(zi)
    for q in qc_rows:
        out = [k[: -len("_robust_z")] for k in q if k.endswith("_robust_z")
               and np.isfinite(q[k]) and abs(q[k]) > 3]
        out += [f"chi_mean {r['atlas']}/{r['region']}" for r in region_rows
                if r["outlier"] and r["_prefix"] == q["_prefix"]]
        q["outliers"] = " | ".join(out)


def run_group(opts: GroupOptions, log=print) -> dict:
    """Write the group tables, figures and report; return their paths by name."""
    t0 = time.monotonic()
    opts = GroupOptions(**{**opts.__dict__, "bids_dir": Path(opts.bids_dir),
                           "output_dir": Path(opts.output_dir)})
    if bool(opts.t1w) != bool(opts.t1w_labels):
        raise UserInputError("--t1w and --t1w-labels go together: the T1w image is registered "
                             "onto the GRE magnitude and its segmentation follows. Give both.")
    runs = find_participant_runs(opts.output_dir, opts.participant_labels, opts.session_labels)
    group_dir = opts.output_dir / "group"
    refuse_inside_input(group_dir, opts.bids_dir)
    figures = group_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    region_rows, qc_rows, reg_figs, notes = [], [], {}, set()
    for run in runs:
        chi, affine = _load(run.chi, "susceptibility map")
        if run.mask is not None:
            mask = _load(run.mask, "brain mask")[0] > 0
        else:
            mask = np.isfinite(chi) & (chi != 0)
            notes.add(f"{run.prefix}: no desc-brain_mask beside the Chimap; its non-zero voxels "
                      "are the mask")
        maps = {"chi": chi}
        if run.r2star is not None:
            maps["r2star"] = _load(run.r2star, "R2* map")[0]
        sources = [("mask", mask.astype(np.int32), {1: "brain"})]
        sources += _gre_labels(opts, run, chi.shape, affine, notes)
        qc = {**_entity_row(run), "_prefix": run.prefix, **_qc_row(run, chi, mask, affine,
                                                                     run.sidecar)}
        if opts.t1w_labels:
            lab, names, res, fig = _t1w_labels(opts, run, chi.shape, affine, group_dir, figures)
            sources.append(("t1w", lab, names))
            qc["registration_metric"] = res.metric
            reg_figs[run.prefix] = fig
        for atlas, lab, names in sources:
            for row in region_stats(maps, lab, mask, names):
                region_rows.append({**_entity_row(run), "_prefix": run.prefix,
                                    "atlas": atlas, **row})
        qc_rows.append(qc)
        log(f"group: {run.prefix}: {len(sources)} region source(s), mask "
            f"{qc['mask_volume_ml']:.0f} mL, residual field norm "
            + (f"{qc['residual_field_norm']:.3f}" if qc["residual_field_norm"] is not None
               else "n/a"))
    _flag_outliers(region_rows, qc_rows)
    paths = {
        "regions": write_table(group_dir / "desc-regions_stats.tsv", region_rows,
                               REGION_COLUMNS, "QSM and R2* statistics per run and region"),
        "qc": write_table(group_dir / "desc-qc_stats.tsv", qc_rows, QC_COLUMNS,
                          "whole-brain quality control per participant run"),
    }
    from .report import write_group_report

    paths["report"] = write_group_report(group_dir, runs, region_rows, qc_rows, reg_figs,
                                         sorted(notes))
    for note in sorted(notes):
        log("group: note: " + note)
    log(f"group: {len(runs)} run(s) in {time.monotonic() - t0:.1f} s; tables and report in "
        f"{group_dir}")
    return paths
