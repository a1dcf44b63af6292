"""Discrete Laplacian in k-space, honouring anisotropic voxels."""

from __future__ import annotations

import numpy as np

from .fft import kspace_axes

__all__ = ["laplacian_kernel"]


def laplacian_kernel(shape, voxel_size) -> np.ndarray:
    """rfft-grid eigenvalues of the 7-point Laplacian (1/mm^2, <= 0), float32.

    ``-sum_i (2 - 2 cos(2 pi k_i h_i)) / h_i^2``; zero at the origin.
    """
    k = kspace_axes(shape, voxel_size, rfft=True, dtype=np.float64)
    out = None
    for ki, h in zip(k, voxel_size):
        term = (-(2.0 - 2.0 * np.cos(2.0 * np.pi * ki * h)) / (h * h)).astype(np.float32)
        out = term if out is None else out + term
    return out
