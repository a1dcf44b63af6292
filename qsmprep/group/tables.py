"""The group tables: their columns (described in the JSON sidecars, as BIDS asks for
tabular files) and writing them as TSV (``n/a`` for missing values)."""

from __future__ import annotations

import math

from ..bids.derivatives import _write_atomically, _write_json

__all__ = ["ENTITY_COLUMNS", "REGION_COLUMNS", "QC_COLUMNS", "write_table", "format_value"]

ENTITY_COLUMNS = {
    "participant_id": {"Description": "participant label with its prefix, e.g. sub-01"},
    "session_id": {"Description": "session label with its prefix (n/a without sessions)"},
    "acquisition": {"Description": "acq- entity of the run (n/a when absent)"},
    "reconstruction": {"Description": "rec- entity of the run (n/a when absent)"},
    "run": {"Description": "run- entity (n/a when absent)"},
}


def _stat_columns(name: str, what: str, units: str) -> dict:
    return {
        f"{name}_n_voxels": {"Description": f"voxels of the region inside the brain mask where "
                                            f"{what} is defined and finite"},
        f"{name}_mean": {"Description": f"mean {what} over the region", "Units": units},
        f"{name}_median": {"Description": f"median {what} over the region", "Units": units},
        f"{name}_std": {"Description": f"standard deviation (population, ddof 0) of {what} "
                                       "over the region", "Units": units},
    }


REGION_COLUMNS = {
    **ENTITY_COLUMNS,
    "atlas": {"Description": "where the region comes from",
              "Levels": {"mask": "the run's whole brain mask (desc-brain_mask)",
                         "labels": "a label image on the GRE grid (--labels)",
                         "t1w": "a T1w-space segmentation (--t1w-labels) registered rigidly "
                                "onto the GRE magnitude, nearest-neighbour resampled",
                         "truth": "the simulator's truth labels "
                                  "(BIDS_DIR/derivatives/qsmprep-truth)"}},
    "index": {"Description": "label value in the label image"},
    "region": {"Description": "region name (from the dseg.tsv beside the label image)"},
    **_stat_columns("chi", "susceptibility (Chimap, referenced to the mean in the mask)",
                    "ppm"),
    **_stat_columns("r2star", "R2* (R2starmap; n/a when the run has none)", "1/s"),
    "chi_mean_robust_z": {"Description": "robust z-score of chi_mean among the runs of the "
                                         "same atlas and region: (x - median) / (1.4826 MAD); "
                                         "n/a with fewer than 5 runs or a MAD of 0"},
    "outlier": {"Description": "1 where |chi_mean_robust_z| > 3, else 0"},
}

QC_COLUMNS = {
    **ENTITY_COLUMNS,
    "mask_voxels": {"Description": "voxels in the brain mask (desc-brain_mask)"},
    "mask_volume_ml": {"Description": "brain-mask volume", "Units": "mL"},
    "mask_volume_ml_robust_z": {"Description": "robust z-score of mask_volume_ml among runs "
                                               "(n/a with fewer than 5 runs)"},
    "chi_brain_std": {"Description": "standard deviation of chi inside the mask",
                      "Units": "ppm"},
    "inversion_method": {"Description": "dipole inversion method (Chimap sidecar "
                                        "DipoleInversion.Method)"},
    "lambda": {"Description": "regularisation weight the inversion used (Chimap sidecar "
                              "DipoleInversion.Lambda; its convention is in "
                              "DipoleInversion.LambdaConvention); n/a when not recorded"},
    "residual_field_norm": {
        "Description": "min_{a,c} ||M (f - D M (chi + a) - c)|| / ||M (f - mean f)||: relative norm "
                       "of what the susceptibility map leaves unexplained of the local field f "
                       "inside the mask M (D: dipole kernel along the B0 direction of the "
                       "NIfTI affine; the map's reference a and the field's constant c are "
                       "fitted). The participant level does not record it: the "
                       "group level computes it from the written desc-local_fieldmap (Hz, "
                       "converted with its PpmToHz) and Chimap; n/a without a local field map "
                       "(e.g. total-field inversion)", "Units": "fraction"},
    "residual_field_norm_robust_z": {"Description": "robust z-score of residual_field_norm"},
    "consistency_removed_voxels": {
        "Description": "mask voxels removed by the echo consistency check (Chimap sidecar "
                       "PhaseUnwrapping.VoxelsRemovedByConsistencyCheck)"},
    "phase_quality_removed_voxels": {
        "Description": "voxels the phase-quality refinement removed from the brain mask "
                       "(BrainMask.PhaseQualityRemovedVoxels)"},
    "nonfinite_input_voxels": {"Description": "NaN/Inf voxels in the input images "
                                              "(InputData.NonFiniteVoxels)"},
    "n_qc_warnings": {"Description": "number of QC warnings of the run (Chimap sidecar "
                                     "QCWarnings)"},
    "qc_warnings": {"Description": "the run's QC warnings, separated by ' | '"},
    "registration_metric": {"Description": "final Mattes mutual information of the T1w to GRE "
                                           "registration (lower is better; n/a without "
                                           "--t1w-labels)"},
    "outliers": {"Description": "measures of this run with a robust z-score beyond 3 (this "
                                "table's *_robust_z and the regions table's chi_mean), "
                                "separated by ' | '"},
}


def format_value(value) -> str:
    """A TSV cell: ``n/a`` for None/NaN, floats with 6 significant digits."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.6g}"
    text = str(value)
    return text.replace("\t", " ").replace("\n", " ") if text else "n/a"


def write_table(path, rows: list, columns: dict, description: str):
    """Write ``rows`` (dicts) as a TSV with exactly ``columns`` (in order) and its JSON
    sidecar describing every column."""
    lines = ["\t".join(columns)]
    lines += ["\t".join(format_value(row.get(c)) for c in columns) for row in rows]
    text = "\n".join(lines) + "\n"
    _write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    _write_json(path.with_suffix(".json"), {"Description": description, **columns})
    return path
