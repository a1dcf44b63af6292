"""Unit dipole kernel and the forward model of susceptibility -> field.

Conventions (see docs/design): susceptibility ``chi`` in ppm, field in ppm of B0,
k-space coordinates in cycles/mm built from the voxel size, and the B0 direction
given as a unit vector in *voxel (array) coordinates*, so that oblique slices
need no resampling.

The kernel is ``D(k) = 1/3 - (k . b)^2 / |k|^2`` with ``D(0) = 0`` (the field's
mean over the grid is not defined by a local source distribution). Its image-space
counterpart is ``d(r) = (3 cos^2(theta) - 1) / (4 pi |r|^3)`` (Lorentz-corrected):
a sphere of susceptibility ``chi`` and radius ``a`` produces ``chi/3 (a/r)^3
(3 cos^2 theta - 1)`` outside and 0 inside.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from .fft import crop_to, default_workers, fast_shape, kspace_axes, pad_to

__all__ = [
    "b0_direction_from_affine",
    "voxel_size_from_affine",
    "dipole_kernel",
    "forward_field",
]


def voxel_size_from_affine(affine) -> tuple[float, float, float]:
    """Voxel edge lengths (mm) from a 4x4 NIfTI affine."""
    a = np.asarray(affine, dtype=float)[:3, :3]
    return tuple(float(v) for v in np.linalg.norm(a, axis=0))


def b0_direction_from_affine(affine, b0_world=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Unit B0 direction in voxel (array) coordinates.

    The affine's columns are the voxel axes expressed in scanner (RAS+, mm)
    coordinates; the main field lies along scanner z. Projecting B0 onto the
    unit voxel axes gives its components along array axes 0, 1, 2. Sheared
    affines (non-orthogonal voxel axes) are rejected since the kernels assume
    orthogonal axes.
    """
    a = np.asarray(affine, dtype=float)[:3, :3]
    norms = np.linalg.norm(a, axis=0)
    if np.any(norms <= 0):
        raise ValueError("affine has a zero-length voxel axis")
    r = a / norms
    gram = r.T @ r
    if np.max(np.abs(gram - np.eye(3))) > 1e-3:
        raise ValueError("affine has sheared (non-orthogonal) voxel axes")
    b = r.T @ np.asarray(b0_world, dtype=float)
    return b / np.linalg.norm(b)


def dipole_kernel(shape, voxel_size, b0_dir, rfft: bool = True) -> np.ndarray:
    """Dipole kernel ``D(k)`` (float32) on the FFT grid of ``shape``.

    ``rfft=True`` returns the half spectrum matching ``scipy.fft.rfftn``.
    ``voxel_size`` in mm (anisotropic voxels are honoured through the physical
    k coordinates); ``b0_dir`` is a vector in voxel coordinates (normalised here).
    """
    b = np.asarray(b0_dir, dtype=float)
    b = b / np.linalg.norm(b)
    k = kspace_axes(shape, voxel_size, rfft=rfft, dtype=np.float32)
    # On an even axis the Nyquist frequency stands for both +k_N and -k_N. With an
    # oblique B0 the cross terms b_i b_j k_i k_j are odd in k_i, so a one-sided choice
    # makes D non-Hermitian there (irfftn then silently symmetrises the last axis'
    # Nyquist plane and the image-space operator no longer matches D). Averaging over
    # both aliases drops the cross terms of Nyquist components:
    # (k.b)^2 -> (sum_regular b_i k_i)^2 + sum_nyquist b_i^2 k_i^2.
    regular, nyquist = [], []
    for ki, n, bi in zip(k, shape, b):
        kr = ki.copy()
        nq = np.zeros_like(ki)
        if n % 2 == 0:  # Nyquist is index n // 2 (fftfreq) or the last (rfftfreq) entry
            kr.reshape(-1)[n // 2] = 0
            nq.reshape(-1)[n // 2] = ki.reshape(-1)[n // 2] ** 2 * np.float32(bi * bi)
        regular.append(kr * np.float32(bi))
        nyquist.append(nq)
    # partial sums over the first two axes are 2-D; only two full-size arrays are made
    kb = (regular[0] + regular[1]) + regular[2]
    np.multiply(kb, kb, out=kb)
    kb += nyquist[0] + nyquist[1]
    kb += nyquist[2]
    kk = (k[0] * k[0] + k[1] * k[1]) + k[2] * k[2]
    kk[0, 0, 0] = 1.0
    np.divide(kb, kk, out=kb)
    np.subtract(np.float32(1.0 / 3.0), kb, out=kb)
    kb[0, 0, 0] = 0.0
    return kb


def forward_field(chi, voxel_size, b0_dir, pad=None, workers=None) -> np.ndarray:
    """Field (ppm of B0) produced by susceptibility ``chi`` (ppm).

    ``pad`` voxels of zeros are added per axis (default: half the size, which
    keeps periodic wrap-around negligible for sources inside the volume).
    """
    chi = np.asarray(chi, dtype=np.float32)
    workers = workers or default_workers()
    if pad is None:
        pad = [n // 2 for n in chi.shape]
    shape = fast_shape(chi.shape, pad)
    padded, sl = pad_to(chi, shape)
    d = dipole_kernel(shape, voxel_size, b0_dir)
    spec = scipy.fft.rfftn(padded, workers=workers)
    spec *= d
    field = scipy.fft.irfftn(spec, s=shape, workers=workers)
    return crop_to(field, sl).astype(np.float32, copy=False)
