"""A T1w-like image and segmentation in another space, made from the simulator's truth
labels by a known rigid transform and resampling (what the registration must recover)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from qsmprep.simulation.phantom import LABELS

# T1w-like contrast per simulator label name (white matter bright, CSF dark, fat brightest)
T1W_INTENSITY = {
    "background": 0.0, "csf": 0.15, "white_matter": 1.0, "grey_matter": 0.6, "caudate": 0.68,
    "putamen": 0.72, "globus_pallidus": 0.85, "thalamus": 0.8, "substantia_nigra": 0.75,
    "red_nucleus": 0.75, "dentate": 0.8, "vein": 0.3, "calcification": 0.1, "scalp": 0.7,
    "skull": 0.05, "air": 0.0, "skin": 0.6, "fat": 1.2, "muscle": 0.4, "bone_marrow": 0.9,
    "eye": 0.2, "spinal_cord": 0.9,
}


def rotation(deg_xyz) -> np.ndarray:
    """Rotation matrix of successive rotations about x, y, z (degrees)."""
    ax, ay, az = np.radians(deg_xyz)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def make_t1w_space(labels, affine, rotation_deg=(6.0, -4.0, 8.0), shift_mm=(7.0, -5.0, 4.0),
                   voxel_mm=2.0, fov_mm=None, seed=0):
    """``(t1w, t1w_labels, t1w_affine, world_map)``: the head of ``labels`` (GRE grid,
    ``affine``) seen in a T1w space whose world is the GRE world moved by the rigid map
    ``x_gre = R x_t1w + t`` (``world_map`` = 4x4 of that map). The T1w grid has voxels of
    ``voxel_mm`` and (default) the GRE field of view plus 10%. Intensities come from
    :data:`T1W_INTENSITY` (linear interpolation of the contrast, then Gaussian noise);
    labels by nearest neighbour."""
    labels = np.asarray(labels)
    lut = np.zeros(int(labels.max()) + 1, np.float32)
    for index, (name, *_rest) in LABELS.items():
        if index < lut.size:
            lut[index] = T1W_INTENSITY.get(name, 0.0)
    contrast = ndimage.gaussian_filter(lut[labels], 0.5)
    vs = np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)
    fov = np.asarray(fov_mm if fov_mm is not None else np.asarray(labels.shape) * vs * 1.1)
    shape = tuple(int(np.ceil(f / voxel_mm)) for f in fov)
    t1_aff = np.eye(4)
    t1_aff[:3, :3] = np.diag([voxel_mm] * 3)
    t1_aff[:3, 3] = -voxel_mm * (np.asarray(shape) - 1) / 2.0
    world = np.eye(4)
    world[:3, :3] = rotation(rotation_deg)
    world[:3, 3] = shift_mm
    # T1w voxel -> T1w world -> GRE world -> GRE voxel
    to_gre_vox = np.linalg.inv(affine) @ world @ t1_aff
    ijk = np.indices(shape, dtype=np.float32).reshape(3, -1)
    src = to_gre_vox[:3, :3] @ ijk + to_gre_vox[:3, 3:4]
    t1w = ndimage.map_coordinates(contrast, src, order=1, cval=0.0).reshape(shape)
    t1_labels = ndimage.map_coordinates(labels, src, order=0, cval=0).reshape(shape)
    rng = np.random.default_rng(seed)
    t1w = (t1w + rng.normal(0, 0.02, t1w.shape)).clip(0).astype(np.float32)
    return t1w, t1_labels.astype(np.int16), t1_aff, world
