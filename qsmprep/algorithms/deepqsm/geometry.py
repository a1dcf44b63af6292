"""Map a volume onto the network's grid (isotropic voxels, B0 along array axis 2) and back.

The network was trained with the dipole kernel on an isotropic grid with B0 along array
axis 2. An acquisition with anisotropic voxels and/or an oblique B0 (the direction comes
from the NIfTI affine, in voxel coordinates) is resampled with one affine interpolation
that scales to the target voxel size and rotates B0 onto axis 2; the prediction is
mapped back with the inverse transform. Pure numpy/scipy (no torch).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["rotation_to_z", "GridMap"]


def rotation_to_z(b0_dir) -> np.ndarray:
    """Proper rotation matrix ``R`` with ``R @ b0 = (0, 0, 1)`` (Rodrigues' formula)."""
    b = np.asarray(b0_dir, float)
    b = b / np.linalg.norm(b)
    z = np.array([0.0, 0.0, 1.0])
    v = np.cross(b, z)
    s, c = np.linalg.norm(v), float(b @ z)
    if s < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx * ((1 - c) / s**2)


class GridMap:
    """Affine map between the input grid and the network grid.

    Input voxel ``i`` sits at ``x = diag(voxel_size) (i - c_in)`` (mm, input voxel frame);
    the network grid voxel ``j`` at ``y = target (j - c_out)`` with ``y = R x``. The
    network grid is just large enough to hold the rotated input box. ``identity`` is True
    when no interpolation is needed (voxel size already ``target`` within ``tol`` and B0
    within ``max_angle_deg`` of axis 2).
    """

    def __init__(self, shape, voxel_size, b0_dir, target, max_angle_deg=0.5, tol=0.01):
        self.in_shape = tuple(int(n) for n in shape)
        vs = np.asarray(voxel_size, float)
        t = float(target)
        b = np.asarray(b0_dir, float)
        b = b / np.linalg.norm(b)
        angle = np.degrees(np.arccos(np.clip(abs(b[2]), -1, 1)))
        self.rot = np.eye(3) if angle <= max_angle_deg else rotation_to_z(b)
        self.identity = angle <= max_angle_deg and np.all(np.abs(vs / t - 1) <= tol)
        if self.identity:
            self.out_shape = self.in_shape
            return
        half = (np.asarray(self.in_shape) - 1) / 2 * vs
        corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        extent = np.abs((self.rot @ (corners * half).T)).max(axis=1)
        self.out_shape = tuple(int(np.ceil(2 * e / t)) + 1 for e in extent)
        self.c_in = (np.asarray(self.in_shape) - 1) / 2
        self.c_out = (np.asarray(self.out_shape) - 1) / 2
        # output index j -> input index i:  i = diag(1/vs) R^T t (j - c_out) + c_in
        self.fwd_matrix = np.diag(1 / vs) @ self.rot.T * t
        self.fwd_offset = self.c_in - self.fwd_matrix @ self.c_out
        # input index i -> output index j:  j = (1/t) R diag(vs) (i - c_in) + c_out
        self.inv_matrix = self.rot @ np.diag(vs) / t
        self.inv_offset = self.c_out - self.inv_matrix @ self.c_in

    def to_network(self, volume, order=1) -> np.ndarray:
        if self.identity:
            return np.asarray(volume, np.float32)
        return ndimage.affine_transform(np.asarray(volume, np.float32), self.fwd_matrix,
                                        self.fwd_offset, output_shape=self.out_shape,
                                        order=order, mode="constant", cval=0.0)

    def mask_to_network(self, mask, threshold=0.5) -> np.ndarray:
        """The mask on the network grid: linear interpolation > ``threshold``."""
        if self.identity:
            return np.asarray(mask, bool)
        return self.to_network(np.asarray(mask, np.float32), order=1) > threshold

    def from_network(self, volume, order=1) -> np.ndarray:
        if self.identity:
            return np.asarray(volume, np.float32)
        return ndimage.affine_transform(np.asarray(volume, np.float32), self.inv_matrix,
                                        self.inv_offset, output_shape=self.in_shape,
                                        order=order, mode="nearest")
