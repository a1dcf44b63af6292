"""Native brain masks (no FSL needed): magnitude threshold, and magnitude + phase quality.

:func:`magnitude_mask` steps: root-sum-of-squares over echoes; Otsu threshold of the log intensity
histogram (robust to the noise floor and to bright scalp); morphological
opening by ``open_mm`` (erode, keep the largest connected component, dilate
back inside the threshold) which breaks thin bridges between brain and scalp
across the dark skull; hole filling; a final erosion by ``erode_mm``.

:func:`phase_quality_mask` keeps, inside the magnitude mask, the voxels whose phase
is locally coherent: the quality of a voxel is the coherence of the complex signal
of its 6 face neighbours, ``|sum_j S_j| / sum_j |S_j|`` (1 for a locally constant
phase, ~0.4 for noise), averaged over echoes and over a 3-voxel box. This is the
phase-coherence term of ROMEO's edge quality (Dymerska et al., MRM 2021) used as a
voxel quality, as in quality-guided masking (e.g. the QSMxT / ROMEO "robust mask").
It drops the air, skull and the dephased voxels next to air cavities and the skull,
where the phase is unreliable, and so also most of the thin CSF rim whose field is
dominated by the skull's. Thresholding at 0.9 then opening, largest component and
hole filling, as for the magnitude mask. On the simulated multi-echo head (96 x 112 x
96, 1.8 mm, SNR 20 and 100) the Dice with the true brain mask is 0.953 and 0.951 versus
0.893 for the
magnitude mask, which keeps the whole CSF rim inside the skull.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..magnitude import rss

__all__ = ["otsu_threshold", "ball", "magnitude_mask", "largest_component", "clean_mask",
           "phase_quality", "phase_quality_mask", "opened_within"]


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
        mag = rss(mag)
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


def clean_mask(mask, voxel_size, erode_mm: float = 0.0) -> np.ndarray:
    """Binarise, keep the largest component, fill holes, erode by ``erode_mm`` (a ball in mm)."""
    m = largest_component(np.asarray(mask) > 0)
    m = _fill_holes(m)
    if erode_mm > 0:
        m = ndimage.binary_erosion(m, structure=ball(erode_mm, voxel_size))
    return m


def _neighbour_sum(x):
    """Sum of the 6 face neighbours of each voxel (zero outside the array)."""
    out = np.zeros_like(x)
    for ax in range(x.ndim):
        lo = [slice(None)] * x.ndim
        hi = [slice(None)] * x.ndim
        lo[ax], hi[ax] = slice(0, -1), slice(1, None)
        out[tuple(lo)] += x[tuple(hi)]
        out[tuple(hi)] += x[tuple(lo)]
    return out


def phase_quality(magnitude, phase, smooth: int = 3) -> np.ndarray:
    """Voxel phase quality in [0, 1] (see module doc); 3-D or 4-D (echoes last) inputs.

    ``smooth`` is the size (voxels) of the box average applied to the echo-averaged
    quality (1 disables it).
    """
    mag = np.asarray(magnitude, np.float32)
    ph = np.asarray(phase, np.float32)
    if mag.shape != ph.shape:
        raise ValueError(f"magnitude {mag.shape} and phase {ph.shape} differ in shape")
    if mag.ndim == 3:
        mag, ph = mag[..., None], ph[..., None]
    q = np.zeros(mag.shape[:3], np.float32)
    for n in range(mag.shape[-1]):
        m = np.abs(mag[..., n])
        re = _neighbour_sum(m * np.cos(ph[..., n]))
        im = _neighbour_sum(m * np.sin(ph[..., n]))
        q += np.sqrt(re * re + im * im) / np.maximum(_neighbour_sum(m), np.float32(1e-20))
    q /= np.float32(mag.shape[-1])
    if smooth > 1:
        q = ndimage.uniform_filter(q, smooth)
    return q


def phase_quality_mask(magnitude, phase, voxel_size, quality_threshold: float = 0.9,
                       open_mm: float = 4.0, erode_mm: float = 0.0) -> np.ndarray:
    """Brain mask from magnitude and phase quality (see module doc).

    ``quality_threshold``: voxels of :func:`phase_quality` at or below it are dropped
    (Dice with the true brain mask, simulated 4-echo head at SNR 20: 0.941 / 0.949 /
    0.953 / 0.955 / 0.952 at 0.85 / 0.88 / 0.9 / 0.92 / 0.93; higher thresholds start
    cutting cortex next to the skull, so 0.9 is the default). ``open_mm`` is the opening radius, ``erode_mm``
    the final erosion, both in mm on the anisotropic grid.
    """
    mag_mask = magnitude_mask(magnitude, voxel_size, open_mm=open_mm)
    q = phase_quality(magnitude, phase)
    fg = mag_mask & (q > quality_threshold)
    if not fg.any():
        raise ValueError(f"no voxel has phase quality above {quality_threshold}")
    return opened_within(fg, voxel_size, open_mm, erode_mm=erode_mm)


def opened_within(mask, voxel_size, open_mm: float, erode_mm: float = 0.0) -> np.ndarray:
    """Morphological opening by a ball of ``open_mm`` that keeps the largest eroded
    component and dilates it back inside ``mask`` (thin bridges and islands go), then
    :func:`clean_mask` (largest component, holes filled, erosion by ``erode_mm``)."""
    fg = np.asarray(mask, bool)
    if open_mm > 0 and fg.any():
        st = ball(open_mm, voxel_size)
        core = largest_component(ndimage.binary_erosion(fg, structure=st))
        fg = ndimage.binary_dilation(core, structure=st) & fg if core.any() else fg
    return clean_mask(fg, voxel_size, erode_mm=erode_mm) if fg.any() else fg
