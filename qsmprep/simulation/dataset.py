"""Write a simulated multi-echo GRE acquisition as a BIDS raw dataset plus truth.

Layout written under ``bids_dir``::

    dataset_description.json, participants.tsv, README
    sub-<s>[/ses-<t>]/anat/sub-<s>[_ses-<t>]_echo-<n>_part-<mag|phase>_MEGRE.nii.gz (+ .json)
    derivatives/qsmprep-truth/   ground truth: _Chimap (ppm), _desc-brain_mask,
                                 _desc-local_fieldmap / _desc-total_fieldmap (ppm), _dseg

The affine is the voxel size rotated by ``tilt_deg`` about the first array axis,
so an oblique acquisition has B0 tilted in voxel coordinates and the forward
model uses exactly the direction qsmprep will derive from the header.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from ..algorithms.dipole import b0_direction_from_affine
from .acquisition import simulate_megre
from .phantom import LABELS, head_phantom

__all__ = ["SimulationSpec", "make_affine", "write_simulated_dataset"]


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


def make_affine(shape, voxel_size, tilt_deg=0.0) -> np.ndarray:
    """Affine with the given voxel size, rotated by ``tilt_deg`` about array axis 0, centred."""
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


def write_simulated_dataset(bids_dir, spec: SimulationSpec = SimulationSpec()) -> dict:
    """Simulate and write (see module doc). Returns the truth file paths by name."""
    bids_dir = Path(bids_dir)
    bids_dir.mkdir(parents=True, exist_ok=True)
    ph = head_phantom(spec.shape, spec.voxel_size, scale=spec.scale)
    affine = make_affine(spec.shape, spec.voxel_size, spec.tilt_deg)
    b0_dir = b0_direction_from_affine(affine)
    data = simulate_megre(ph, spec.echo_times, spec.field_strength, b0_dir, snr=spec.snr,
                          phase_offset=spec.phase_offset, seed=spec.seed)

    (bids_dir / "dataset_description.json").write_text(json.dumps({
        "Name": "qsmprep simulated head phantom", "BIDSVersion": "1.10.0", "DatasetType": "raw",
        "Authors": ["qsmprep"], "GeneratedBy": [{"Name": "qsmprep simulate"}]}, indent=2))
    (bids_dir / "README").write_text(
        "Simulated multi-echo GRE data of the qsmprep head phantom. Ground truth in "
        "derivatives/qsmprep-truth.\n")
    (bids_dir / "participants.tsv").write_text(f"participant_id\nsub-{spec.subject}\n")
    prefix = f"sub-{spec.subject}" + (f"_ses-{spec.session}" if spec.session else "")
    rel = Path(f"sub-{spec.subject}") / (f"ses-{spec.session}" if spec.session else "") / "anat"
    anat = bids_dir / rel
    for n, te in enumerate(spec.echo_times, start=1):
        common = {"EchoTime": te, "MagneticFieldStrength": spec.field_strength,
                  "Manufacturer": "qsmprep-simulator", "MRAcquisitionType": "3D"}
        _save(data.magnitude[..., n - 1], affine, anat / f"{prefix}_echo-{n}_part-mag_MEGRE.nii.gz",
              common)
        phase = data.phase[..., n - 1]
        if spec.phase_scaling == "int12":
            phase = np.clip(np.round((phase + np.pi) / (2 * np.pi) * 4096), 0, 4095).astype(np.int16)
        elif spec.phase_scaling != "radians":
            raise ValueError(f"unknown phase_scaling {spec.phase_scaling!r}")
        _save(phase, affine, anat / f"{prefix}_echo-{n}_part-phase_MEGRE.nii.gz", common)

    truth = bids_dir / "derivatives" / "qsmprep-truth"
    (truth).mkdir(parents=True, exist_ok=True)
    (truth / "dataset_description.json").write_text(json.dumps({
        "Name": "ground truth", "BIDSVersion": "1.10.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "qsmprep simulate"}],
        "SimulationSpec": {k: v for k, v in asdict(spec).items()}}, indent=2, default=list))
    tanat = truth / rel
    paths = {
        "chi": tanat / f"{prefix}_Chimap.nii.gz",
        "mask": tanat / f"{prefix}_desc-brain_mask.nii.gz",
        "local_field": tanat / f"{prefix}_desc-local_fieldmap.nii.gz",
        "total_field": tanat / f"{prefix}_desc-total_fieldmap.nii.gz",
        "labels": tanat / f"{prefix}_dseg.nii.gz",
    }
    _save(ph.chi_brain, affine, paths["chi"], {"Units": "ppm"})
    _save(ph.brain_mask.astype(np.uint8), affine, paths["mask"], {"Type": "Brain"})
    _save(data.local_field, affine, paths["local_field"], {"Units": "ppm"})
    _save(data.total_field, affine, paths["total_field"], {"Units": "ppm"})
    _save(ph.labels, affine, paths["labels"], None)
    (tanat / f"{prefix}_dseg.tsv").write_text(
        "index\tname\tchi_ppm\n" + "".join(f"{k}\t{v[0]}\t{v[1]}\n" for k, v in LABELS.items()))
    return paths
