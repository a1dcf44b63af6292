"""Write a simulated multi-echo GRE acquisition as a BIDS raw dataset plus truth.

Layout written under ``bids_dir``::

    dataset_description.json, participants.tsv, README   (written only when missing;
        a subject added to an existing dataset appends its participants.tsv row)
    sub-<s>[/ses-<t>]/anat/sub-<s>[_ses-<t>]_echo-<n>_part-<mag|phase>_MEGRE.nii.gz (+ .json)
    sub-<s>/anat/..._acq-body_echo-<n>_part-<mag|phase>_MEGRE.nii.gz   (``body_coil``)
    (with ``coils`` > 0 the MEGRE images are 4-D: one volume per receive channel)
    derivatives/qsmprep-truth/   ground truth: _Chimap (ppm), _desc-brain_mask,
                                 _desc-local_fieldmap / _desc-total_fieldmap (ppm),
                                 _R2starmap (1/s), _dseg (+ .tsv of label names);
                                 the run's SimulationSpec is in its _Chimap.json

The affine is the voxel size rotated by ``tilt_deg`` about the first array axis (or
the rotation that puts scanner z along ``b0_direction``, given in voxel coordinates),
so an oblique acquisition has B0 tilted in voxel coordinates and the forward model
uses exactly the direction qsmprep will derive from the header. The anatomy stays
aligned with the array axes (slices follow the head, B0 is oblique to them).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from ..algorithms.dipole import b0_direction_from_affine
from ..algorithms.phase import wrap
from .acquisition import simulate_megre
from .phantom import LABELS

__all__ = ["SimulationSpec", "make_affine", "simulate", "write_simulated_dataset"]


@dataclass(frozen=True)
class SimulationSpec:
    subject: str = "01"
    session: str | None = None
    shape: tuple = (96, 112, 96)
    voxel_size: tuple = (1.5, 1.5, 1.5)
    scale: float = 0.75
    echo_times: tuple = (0.004, 0.008, 0.012, 0.016)
    field_strength: float = 3.0
    tilt_deg: float = 0.0
    snr: float | None = 100.0
    phase_offset: float = 1.0
    phase_scaling: str = "radians"  # or "int12": integers 0..4095 as some scanners write
    seed: int = 0
    repetition_time: float = 0.03   # s
    flip_angle: float = 15.0        # degrees
    b0_direction: tuple | None = None  # voxel coordinates; overrides tilt_deg
    supersample: int = 2
    calcification: bool = True
    coils: int = 0                  # receive channels (0: one combined image)
    body_coil: bool = False
    phantom: str = "simple"         # or "realistic": textured chi, fat, muscle, marrow, neck


def _rotation_to_z(b):
    """Rotation matrix R (voxel axes -> scanner) with ``R^T e_z = b`` (Rodrigues)."""
    b = np.asarray(b, float) / np.linalg.norm(b)
    z = np.array([0.0, 0.0, 1.0])
    v = np.cross(b, z)
    c = float(b @ z)
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def make_affine(shape, voxel_size, tilt_deg=0.0, b0_direction=None) -> np.ndarray:
    """Centred affine with the given voxel size, rotated by ``tilt_deg`` about array axis 0,
    or (``b0_direction``, voxel coordinates) so that scanner z has that direction."""
    if b0_direction is not None:
        rot = _rotation_to_z(b0_direction)
    else:
        t = np.deg2rad(tilt_deg)
        rot = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag(voxel_size)
    aff[:3, 3] = -aff[:3, :3] @ ((np.asarray(shape) - 1) / 2.0)
    return aff


def _save(data, affine, path: Path, meta=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, str(path))
    if meta is not None:
        path.with_name(path.name.replace(".nii.gz", ".json")).write_text(
            json.dumps(meta, indent=2, sort_keys=True))


def _coil_maps(spec: SimulationSpec):
    """Receive and body-coil sensitivities from :mod:`.coils` (None where not asked for)."""
    if not (spec.coils or spec.body_coil):
        return None, None
    from . import coils  # provided by the coil-combination work

    sens = (coils.coil_sensitivities(spec.shape, spec.voxel_size, spec.coils, seed=spec.seed)
            if spec.coils else None)
    body = coils.body_coil_sensitivity(spec.shape, spec.voxel_size) if spec.body_coil else None
    return sens, body


def _phase_out(phase, scaling):
    if scaling == "int12":
        return np.clip(np.round((phase + np.pi) / (2 * np.pi) * 4096), 0, 4095).astype(np.int16)
    if scaling != "radians":
        raise ValueError(f"unknown phase_scaling {scaling!r} (radians or int12)")
    return phase


def _write_if_absent(path: Path, text: str):
    """Write a dataset-level file only when it is missing (adding a subject to an
    existing dataset leaves it byte for byte as it was)."""
    if not path.exists():
        path.write_text(text)


def _add_participant(path: Path, participant: str):
    """Append ``participant`` to participants.tsv (created if missing; other rows and
    columns untouched, new columns filled with n/a)."""
    if not path.exists():
        path.write_text(f"participant_id\n{participant}\n")
        return
    text = path.read_text()
    lines = text.splitlines()
    if any(line.split("\t")[0] == participant for line in lines[1:]):
        return
    ncol = len(lines[0].split("\t")) if lines else 1
    sep = "" if text.endswith("\n") or not text else "\n"
    with path.open("a") as fh:
        fh.write(sep + "\t".join([participant] + ["n/a"] * (ncol - 1)) + "\n")


def simulate(spec: SimulationSpec = SimulationSpec()):
    """Run the forward model for ``spec``; return ``(MegreData, affine)`` (nothing written)."""
    affine = make_affine(spec.shape, spec.voxel_size, spec.tilt_deg, spec.b0_direction)
    b0_dir = b0_direction_from_affine(affine)
    sens, body = _coil_maps(spec)
    data = simulate_megre(
        spec.shape, spec.voxel_size, spec.echo_times, spec.field_strength, b0_dir,
        tr=spec.repetition_time, flip_angle=spec.flip_angle, snr=spec.snr,
        phase_offset=spec.phase_offset, seed=spec.seed, scale=spec.scale,
        supersample=spec.supersample, calcification=spec.calcification,
        coil_sensitivities=sens, body_coil_sensitivity=body, phantom=spec.phantom)
    return data, affine


def write_simulated_dataset(bids_dir, spec: SimulationSpec = SimulationSpec()) -> dict:
    """Simulate and write (see module doc). Returns the truth file paths by name."""
    bids_dir = Path(bids_dir)
    bids_dir.mkdir(parents=True, exist_ok=True)
    data, affine = simulate(spec)

    _write_if_absent(bids_dir / "dataset_description.json", json.dumps({
        "Name": "qsmprep simulated head phantom", "BIDSVersion": "1.10.0", "DatasetType": "raw",
        "Authors": ["qsmprep"], "GeneratedBy": [{"Name": "qsmprep simulate"}]}, indent=2))
    _write_if_absent(bids_dir / "README",
                     "Simulated multi-echo GRE data of the qsmprep MNI152-based head phantom. "
                     "Ground truth in derivatives/qsmprep-truth.\n")
    _add_participant(bids_dir / "participants.tsv", f"sub-{spec.subject}")
    prefix = f"sub-{spec.subject}" + (f"_ses-{spec.session}" if spec.session else "")
    rel = Path(f"sub-{spec.subject}") / (f"ses-{spec.session}" if spec.session else "") / "anat"
    anat = bids_dir / rel
    for n, te in enumerate(spec.echo_times, start=1):
        common = {"EchoTime": te, "MagneticFieldStrength": spec.field_strength,
                  "RepetitionTime": spec.repetition_time, "FlipAngle": spec.flip_angle,
                  "Manufacturer": "qsmprep-simulator", "MRAcquisitionType": "3D"}
        mag_meta = {**common, "ImageType": ["ORIGINAL", "PRIMARY", "M"]}
        # BIDS requires Units for part-phase: radians, or "arbitrary" for integer-scaled phase
        ph_meta = {**common, "ImageType": ["ORIGINAL", "PRIMARY", "P"],
                   "Units": "rad" if spec.phase_scaling == "radians" else "arbitrary"}
        if data.coil_images is not None:
            img = np.moveaxis(data.coil_images[..., n - 1], 0, -1)  # channels on axis 4
            mag, phase = np.abs(img).astype(np.float32), wrap(np.angle(img))
            mag_meta["ReceiveCoilActiveElements"] = ph_meta["ReceiveCoilActiveElements"] = \
                f"{spec.coils} channels, uncombined"
        else:
            mag, phase = data.magnitude[..., n - 1], data.phase[..., n - 1]
        _save(mag, affine, anat / f"{prefix}_echo-{n}_part-mag_MEGRE.nii.gz", mag_meta)
        _save(_phase_out(phase, spec.phase_scaling), affine,
              anat / f"{prefix}_echo-{n}_part-phase_MEGRE.nii.gz", ph_meta)
        if data.body_coil is not None:
            body = data.body_coil[..., n - 1]
            _save(np.abs(body).astype(np.float32), affine,
                  anat / f"{prefix}_acq-body_echo-{n}_part-mag_MEGRE.nii.gz",
                  {**mag_meta, "ReceiveCoilName": "body"})
            _save(_phase_out(wrap(np.angle(body)), spec.phase_scaling), affine,
                  anat / f"{prefix}_acq-body_echo-{n}_part-phase_MEGRE.nii.gz",
                  {**ph_meta, "ReceiveCoilName": "body"})

    truth = bids_dir / "derivatives" / "qsmprep-truth"
    truth.mkdir(parents=True, exist_ok=True)
    sim_meta = {"SimulationSpec": {k: v for k, v in asdict(spec).items()},
                "NoiseStandardDeviation": data.sigma, "B0DirectionVoxel": list(data.b0_dir)}
    _write_if_absent(truth / "dataset_description.json", json.dumps({
        "Name": "ground truth", "BIDSVersion": "1.10.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "qsmprep simulate"}],
        "Description": "Per-run simulation parameters are in each _Chimap.json."},
        indent=2))
    tanat = truth / rel
    paths = {
        "chi": tanat / f"{prefix}_Chimap.nii.gz",
        "mask": tanat / f"{prefix}_desc-brain_mask.nii.gz",
        "local_field": tanat / f"{prefix}_desc-local_fieldmap.nii.gz",
        "total_field": tanat / f"{prefix}_desc-total_fieldmap.nii.gz",
        "labels": tanat / f"{prefix}_dseg.nii.gz",
        "r2star": tanat / f"{prefix}_R2starmap.nii.gz",
    }
    _save(data.chi, affine, paths["chi"], json.loads(json.dumps(
        {"Units": "ppm", "Reference": "CSF", **sim_meta}, default=list)))
    _save(data.brain_mask.astype(np.uint8), affine, paths["mask"], {"Type": "Brain"})
    _save(data.local_field, affine, paths["local_field"], {"Units": "ppm"})
    _save(data.total_field, affine, paths["total_field"], {"Units": "ppm"})
    _save(data.r2star, affine, paths["r2star"], {"Units": "1/s"})
    _save(data.labels, affine, paths["labels"], None)
    (tanat / f"{prefix}_dseg.tsv").write_text(
        "index\tname\tchi_ppm\tr2star_3T\n"
        + "".join(f"{k}\t{v[0]}\t{v[1]}\t{v[2]}\n" for k, v in LABELS.items()))
    return paths
