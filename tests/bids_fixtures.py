"""Tiny synthetic BIDS datasets for the tests (small NIfTI files + JSON sidecars)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import nibabel as nb
import numpy as np

SHAPE = (8, 8, 4)
AFFINE = np.diag([1.0, 1.0, 2.0, 1.0])


def rotation_x_affine(deg: float, voxel=(1.0, 1.0, 2.0)) -> np.ndarray:
    """Affine whose voxel axes are rotated by ``deg`` about scanner x."""
    t = math.radians(deg)
    rot = np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag(voxel)
    aff[:3, 3] = (-4.0, -4.0, -4.0)
    return aff


def write_json(path, data) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def write_nifti(path, shape=SHAPE, affine=AFFINE, value=1.0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nb.Nifti1Image(np.full(shape, value, dtype=np.float32), np.asarray(affine, float))
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    img.to_filename(str(path))
    return path


def make_dataset(root) -> Path:
    """An empty BIDS dataset (dataset_description.json only)."""
    root = Path(root)
    write_json(root / "dataset_description.json", {"Name": "test", "BIDSVersion": "1.10.0"})
    return root


def add_run(root, sub="01", ses=None, acq=None, rec=None, run=None, suffix="MEGRE",
            echo_times=(0.004, 0.008, 0.012), field=3.0, shape=SHAPE, affine=AFFINE,
            parts=("mag", "phase"), sidecar=True, ext=".nii.gz", echo_entity=True):
    """Write a run (one file per echo and part) and return {(part, echo_index): path}."""
    root = Path(root)
    folder = root / f"sub-{sub}"
    if ses is not None:
        folder = folder / f"ses-{ses}"
    folder = folder / "anat"
    ents = [f"sub-{sub}"]
    for key, val in (("ses", ses), ("acq", acq), ("rec", rec), ("run", run)):
        if val is not None:
            ents.append(f"{key}-{val}")
    out = {}
    for i, te in enumerate(echo_times, start=1):
        for part in parts:
            name = list(ents)
            if echo_entity:
                name.append(f"echo-{i}")
            name.append(f"part-{part}")
            stem = "_".join(name) + f"_{suffix}"
            out[(part, i)] = write_nifti(folder / (stem + ext), shape=shape, affine=affine)
            if sidecar:
                meta = {"EchoTime": te, "MagneticFieldStrength": field}
                write_json(folder / (stem + ".json"), meta)
    return out


def snapshot(root) -> dict:
    """Every path under ``root`` with its size and mtime (ns)."""
    root = Path(root)
    snap = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        snap[str(p.relative_to(root))] = (p.is_dir(), st.st_size, st.st_mtime_ns)
    st = root.stat()
    snap["."] = (True, st.st_size, st.st_mtime_ns)
    return snap
