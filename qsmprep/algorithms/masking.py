"""Native brain mask from magnitude images (no FSL needed).

Steps: root-sum-of-squares over echoes; Otsu threshold of the log intensity
histogram (robust to the noise floor and to bright scalp); morphological
opening by ``open_mm`` (erode, keep the largest connected component, dilate
back inside the threshold) which breaks thin bridges between brain and scalp
across the dark skull; hole filling; a final erosion by ``erode_mm``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["otsu_threshold", "ball", "magnitude_mask", "largest_component"]


def otsu_threshold(values, bins: int = 256) -> float:
    """Otsu's threshold of a 1-D sample."""
    v = np.asarray(values, dtype=np.float64).ravel()
    hist, edges = np.histogram(v, bins=bins)
    centres = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    s0 = np.cumsum(hist * centres)
    m0 = s0 / np.maximum(w0, 1)
    m1 = (s0[-1] - s0) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(centres[int(np.argmax(between[:-1]))])


def ball(radius_mm: float, voxel_size) -> np.ndarray:
    """Boolean ball of ``radius_mm`` on the (anisotropic) voxel grid."""
    half = [int(np.floor(radius_mm / h)) for h in voxel_size]
    axes = [np.arange(-r, r + 1) * h for r, h in zip(half, voxel_size)]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    return (x * x + y * y + z * z) <= radius_mm * radius_mm + 1e-6


def magnitude_mask(magnitude, voxel_size, open_mm: float = 4.0, erode_mm: float = 0.0,
                   threshold: float | None = None) -> np.ndarray:
    """Brain mask from magnitude (3-D, or 4-D with echoes last). See module doc.

    ``threshold`` (same units as the magnitude) overrides the Otsu threshold.
    """
    mag = np.asarray(magnitude, dtype=np.float32)
    if mag.ndim == 4:
        mag = np.sqrt(np.sum(mag * mag, axis=-1))
    pos = mag[mag > 0]
    if pos.size == 0:
        raise ValueError("magnitude image is empty (all zeros)")
    if threshold is None:
        logv = np.log(pos)
        threshold = float(np.exp(otsu_threshold(logv)))
    fg = mag > threshold
    st = ball(open_mm, voxel_size) if open_mm > 0 else None
    core = ndimage.binary_erosion(fg, structure=st) if st is not None else fg
    core = largest_component(core)
    if not core.any():
        core = largest_component(fg)
    if st is not None:
        core = ndimage.binary_dilation(core, structure=st) & fg
    mask = _fill_holes(core)
    if erode_mm > 0:
        mask = ndimage.binary_erosion(mask, structure=ball(erode_mm, voxel_size))
    return mask


def largest_component(mask):
    """The largest 6-connected component of a boolean mask (the mask itself if it has one)."""
    lab, n = ndimage.label(mask)
    if n <= 1:
        return mask.astype(bool)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def _fill_holes(mask):
    filled = ndimage.binary_fill_holes(mask)
    # also fill holes open to a slice edge, slice by slice along each axis
    for axis in range(mask.ndim):
        filled = np.stack([ndimage.binary_fill_holes(s) for s in np.moveaxis(filled, axis, 0)],
                          axis=0)
        filled = np.moveaxis(filled, 0, axis)
    return filled
