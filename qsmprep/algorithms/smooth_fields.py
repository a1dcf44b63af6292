"""Smooth (low-resolution) fields: block averaging, Gaussian smoothing, linear upsampling.

Coil sensitivities and receiver phase offsets vary slowly in space (centimetres), so
the coil-combination methods estimate them on a coarse grid of voxel blocks and
interpolate back. Block ``k`` along an axis with factor ``f`` covers voxels
``[k f, (k + 1) f)`` and sits at voxel coordinate ``k f + (f - 1) / 2``; upsampling is
separable linear interpolation between block centres (clamped at the edges), two
gathers per axis, so it costs a few passes over the output and no FFT.

Smoothing of complex data uses normalised convolution (Knutsson & Westin, CVPR 1993):
``G * (w z) / G * w`` with ``G`` a Gaussian of ``sigma_mm`` (anisotropic voxels
honoured) and ``w`` a confidence weight (e.g. magnitude), so that low-signal voxels
and the volume edges do not pull the estimate towards zero.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["block_factors", "block_sum", "upsample_linear", "smooth_complex_lowres",
           "gaussian_normalised", "gaussian_local_linear"]


def block_factors(voxel_size, spacing_mm: float) -> tuple[int, ...]:
    """Voxels per block along each axis so that blocks are about ``spacing_mm`` wide."""
    return tuple(max(1, int(np.floor(float(spacing_mm) / float(h) + 1e-6))) for h in voxel_size)


def _coarse_shape(shape, factors):
    return tuple(-(-int(n) // int(f)) for n, f in zip(shape, factors))


def block_sum(x, factors) -> np.ndarray:
    """Sum of ``x`` over blocks of ``factors`` voxels (zero-padded at the high end).

    Works on the last ``len(factors)`` axes; leading axes (e.g. channels) are kept.
    """
    x = np.asarray(x)
    lead = x.shape[: x.ndim - len(factors)]
    spatial = x.shape[len(lead):]
    coarse = _coarse_shape(spatial, factors)
    full = tuple(c * f for c, f in zip(coarse, factors))
    if full != spatial:
        pad = [(0, 0)] * len(lead) + [(0, m - n) for n, m in zip(spatial, full)]
        x = np.pad(x, pad)
    shp = list(lead)
    for c, f in zip(coarse, factors):
        shp += [c, f]
    axes = tuple(len(lead) + 2 * i + 1 for i in range(len(factors)))
    return x.reshape(shp).sum(axis=axes)


def _axis_weights(n, c, f):
    t = (np.arange(n, dtype=np.float64) - (f - 1) / 2.0) / f
    t = np.clip(t, 0.0, c - 1)
    i0 = np.floor(t).astype(np.intp)
    i1 = np.minimum(i0 + 1, c - 1)
    w1 = (t - i0).astype(np.float32)
    return i0, i1, w1


def upsample_linear(coarse, factors, shape) -> np.ndarray:
    """Linear interpolation of a block grid (see module doc) back to ``shape``.

    ``coarse`` may have leading axes (channels); the last ``len(shape)`` axes are
    upsampled. Axes are processed from the largest coarse size to the smallest, so
    that the final, full-size pass touches as few coarse samples as possible.
    """
    out = np.asarray(coarse)
    nd = len(shape)
    off = out.ndim - nd
    order = sorted(range(nd), key=lambda i: -out.shape[off + i])
    for i in order:
        ax = off + i
        c = out.shape[ax]
        i0, i1, w1 = _axis_weights(int(shape[i]), c, int(factors[i]))
        view = [1] * out.ndim
        view[ax] = -1
        w1 = w1.reshape(view)
        a = np.take(out, i0, axis=ax)
        b = np.take(out, i1, axis=ax)
        b -= a
        b *= w1
        a += b
        out = a
    return out


def gaussian_normalised(wz, w, sigma_vox, floor: float = 1e-3):
    """Normalised convolution ``G*(wz) / G*w`` on a (coarse) grid.

    ``wz`` real or complex with optional leading axes, ``w`` real with the same
    spatial shape (broadcast over leading axes). Where the smoothed weight is below
    ``floor`` times its maximum the result is 0.
    """
    wz = np.asarray(wz)
    w = np.asarray(w, np.float64)
    nd = w.ndim
    lead = wz.shape[: wz.ndim - nd]
    sig = tuple(float(s) for s in sigma_vox)
    gw = ndimage.gaussian_filter(w, sig, mode="constant")
    ok = gw > floor * max(float(gw.max()), 1e-30)
    inv = np.where(ok, 1.0 / np.where(ok, gw, 1.0), 0.0)
    flat = wz.reshape((-1,) + wz.shape[len(lead):])
    out = np.empty(flat.shape, np.complex128 if np.iscomplexobj(wz) else np.float64)
    for k in range(flat.shape[0]):
        if np.iscomplexobj(flat):
            out[k] = (ndimage.gaussian_filter(flat[k].real.astype(np.float64), sig, mode="constant")
                      + 1j * ndimage.gaussian_filter(flat[k].imag.astype(np.float64), sig,
                                                     mode="constant")) * inv
        else:
            out[k] = ndimage.gaussian_filter(flat[k].astype(np.float64), sig, mode="constant") * inv
    return out.reshape(wz.shape)


def gaussian_local_linear(wz, w, sigma_vox, floor: float = 1e-3, ridge: float = 1e-3):
    """First-order normalised convolution: a Gaussian-weighted local linear fit.

    At every grid point ``r0`` minimises ``sum_r G(r - r0) w(r) |z(r) - a - b.(r - r0)|^2``
    and returns ``a``: unlike :func:`gaussian_normalised` (order 0) a linear trend is
    reproduced exactly, also near the edge of the support, so a phase ramp is not
    biased where the object ends (Knutsson & Westin 1993, first-order normalised
    convolution). ``wz``: ``(C, *grid)`` (or just ``grid``), complex or real, holding
    ``w z``; ``w``: the weights, shared by all channels (one 4x4 system per point).
    ``ridge`` (relative to the second moments) damps the slope where the support is
    thin. Points whose smoothed weight is below ``floor`` of its maximum get 0.
    """
    wz = np.asarray(wz)
    squeeze = wz.ndim == np.ndim(w)
    if squeeze:
        wz = wz[None]
    w = np.asarray(w, np.float64)
    sig = tuple(float(s) for s in sigma_vox)
    coords = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in w.shape], indexing="ij")

    def g(a):
        return ndimage.gaussian_filter(a, sig, mode="constant")

    m0 = g(w)
    m1 = [g(w * x) for x in coords]
    m2 = {(i, j): g(w * coords[i] * coords[j]) for i in range(3) for j in range(i, 3)}
    mat = np.empty(w.shape + (4, 4))
    mat[..., 0, 0] = m0
    for i in range(3):
        c1 = m1[i] - coords[i] * m0
        mat[..., 0, i + 1] = mat[..., i + 1, 0] = c1
        for j in range(i, 3):
            c2 = (m2[(i, j)] - coords[i] * m1[j] - coords[j] * m1[i] + coords[i] * coords[j] * m0)
            mat[..., i + 1, j + 1] = mat[..., j + 1, i + 1] = c2
    ok = m0 > floor * max(float(m0.max()), 1e-30)
    tr = np.trace(mat[..., 1:, 1:], axis1=-2, axis2=-1)
    for i in range(1, 4):
        mat[..., i, i] += ridge * tr / 3.0 + 1e-12
    mat[~ok] = np.eye(4)
    inv_row = np.linalg.inv(mat)[..., 0, :]           # intercept row of the inverse
    dtype = np.complex128 if np.iscomplexobj(wz) else np.float64
    out = np.empty(wz.shape, dtype)
    for k in range(wz.shape[0]):
        parts = [wz[k].real, wz[k].imag] if np.iscomplexobj(wz) else [wz[k]]
        res = []
        for part in parts:
            part = part.astype(np.float64)
            d0 = g(part)
            acc = inv_row[..., 0] * d0
            for i in range(3):
                acc += inv_row[..., i + 1] * (g(part * coords[i]) - coords[i] * d0)
            res.append(np.where(ok, acc, 0.0))
        out[k] = res[0] + 1j * res[1] if len(res) == 2 else res[0]
    return out[0] if squeeze else out


def smooth_complex_lowres(z, weights, voxel_size, sigma_mm: float, spacing_mm=None):
    """Weighted Gaussian smoothing of complex ``z`` (leading channel axes allowed).

    Computed on blocks about ``spacing_mm`` wide (default ``sigma_mm / 2``) and
    linearly upsampled; returns complex64 of ``z``'s shape (not normalised to unit
    modulus: take ``np.angle`` for a smooth phase).
    """
    z = np.asarray(z)
    w = np.asarray(weights, np.float32)
    shape = w.shape
    spacing = sigma_mm / 2.0 if spacing_mm is None else spacing_mm
    factors = block_factors(voxel_size, spacing)
    wz_c = block_sum(z * w, factors)
    w_c = block_sum(w, factors)
    sigma_vox = [sigma_mm / (h * f) for h, f in zip(voxel_size, factors)]
    coarse = gaussian_normalised(wz_c, w_c, sigma_vox).astype(np.complex64)
    return upsample_linear(coarse, factors, shape)
