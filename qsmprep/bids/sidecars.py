"""What the JSON sidecars of one run's derivatives say (pure: dicts in, dicts out).

Every sidecar has the run's common facts (sources, generator, field strength, input data
and coil combination records) and ``QCWarnings``: the warnings of the stage that made that
file (see :mod:`qsmprep.qc`); the ``_Chimap.json`` one holds all warnings of the run, each
prefixed with its stage (the run-level record).
"""

from __future__ import annotations

from pathlib import Path

from .. import __version__
from ..qc import QC_KEY, run_warnings, warnings_of

__all__ = ["STAGE_PARAMETERS", "bids_uri", "output_metadata"]

# (stage label as on the console, the parameters record of the stage), in pipeline order
STAGE_PARAMETERS = (("read echoes", "input_parameters"), ("coil combination", "coil_parameters"),
                    ("brain mask", "mask_parameters"), ("echo field fit", "unwrap_parameters"),
                    ("R2*/T2* maps", "r2star_parameters"),
                    ("background removal", "background_parameters"),
                    ("dipole inversion", "inversion_parameters"))


def bids_uri(path, bids_dir) -> str:
    """``bids:raw:<relative path>`` for a file of the input dataset, else a file URI."""
    try:
        return "bids:raw:" + Path(path).resolve().relative_to(Path(bids_dir).resolve()).as_posix()
    except ValueError:
        return Path(path).resolve().as_uri()


def _without_qc(parameters: dict) -> dict:
    """``parameters`` without its QCWarnings (listed once, at the top of each sidecar)."""
    return {k: v for k, v in parameters.items() if k != QC_KEY}


def output_metadata(stage_parameters: dict, *, sources, pipeline: str, field_strength: float,
                    field_strength_source: str, has_local_field: bool) -> dict:
    """The sidecar of every output of a run, keyed by output (``chi``, ``mask``,
    ``r2star``, ``t2star``, ``total_field``, ``total_magnitude``, ``local_field``,
    ``local_magnitude``). ``stage_parameters``: the records of :data:`STAGE_PARAMETERS`
    that ran (missing ones count as empty). Field-map sidecars carry ``Units: Hz`` and the
    factor; the sink converts the ppm data."""
    from ..algorithms.phase import ppm_to_hz

    stages = [(stage, dict(stage_parameters.get(name) or {}))
              for stage, name in STAGE_PARAMETERS]
    params = {name: _without_qc(p) for (_, name), (_, p) in zip(STAGE_PARAMETERS, stages)}
    qc = {name: warnings_of(p) for (_, name), (_, p) in zip(STAGE_PARAMETERS, stages)}
    common = {"Sources": list(sources), "SkullStripped": True,
              "GeneratedBy": {"Name": "qsmprep", "Version": __version__, "Pipeline": pipeline},
              "MagneticFieldStrength": field_strength,
              "MagneticFieldStrengthSource": field_strength_source}
    if params["coil_parameters"]:
        common["CoilCombination"] = params["coil_parameters"]
    if params["input_parameters"]:
        common["InputData"] = params["input_parameters"]
    out = {
        "chi": {"Units": "ppm", "Description": "Magnetic susceptibility, referenced to the mean "
                "inside the mask", "DipoleInversion": params["inversion_parameters"],
                "BackgroundFieldRemoval": params["background_parameters"] if has_local_field
                else "none (total-field inversion)",
                "PhaseUnwrapping": params["unwrap_parameters"],
                "BrainMask": params["mask_parameters"], QC_KEY: run_warnings(stages)},
        "mask": {"Type": "Brain", "Description": "Brain mask used for the field fit and "
                 "background removal", **params["mask_parameters"],
                 QC_KEY: qc["mask_parameters"]},
    }
    r2meta = {k: v for k, v in params["r2star_parameters"].items() if k != "Units"}
    r2meta[QC_KEY] = qc["r2star_parameters"]
    out["r2star"] = {"Units": "1/s", "Description": "Apparent transverse relaxation rate R2* "
                     "from the multi-echo magnitude", **r2meta}
    out["t2star"] = {"Units": "s", "Description": "Apparent transverse relaxation time "
                     "T2* = 1/R2* (capped)", **r2meta}
    hz = float(ppm_to_hz(1.0, field_strength))
    magnitude = {"Description": "Root-sum-of-squares magnitude over echoes",
                 QC_KEY: qc["input_parameters"]}
    out["total_field"] = {"Units": "Hz", "Description": "Total field from the multi-echo fit "
                          "(phase offset removed)", "Parameters": params["unwrap_parameters"],
                          "PpmToHz": hz,
                          QC_KEY: qc["input_parameters"] + qc["unwrap_parameters"]}
    out["total_magnitude"] = dict(magnitude)
    out["local_field"] = {"Units": "Hz", "Description": "Local field after background removal",
                          "Parameters": params["background_parameters"], "PpmToHz": hz,
                          QC_KEY: qc["background_parameters"]}
    out["local_magnitude"] = dict(magnitude)
    return {key: {**common, **meta} for key, meta in out.items()}
