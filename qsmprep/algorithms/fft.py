"""FFT helpers shared by every k-space method.

All transforms go through :mod:`scipy.fft` with ``workers`` threads. Volumes are
zero-padded to sizes that FFT fast (``scipy.fft.next_fast_len``) and the real
transform (``rfftn``/``irfftn``) is used throughout: the last axis holds only the
non-negative frequencies.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.fft

__all__ = [
    "default_workers",
    "fast_shape",
    "pad_to",
    "crop_to",
    "kspace_axes",
    "rfft_weights",
    "centred_slices",
    "mask_bounding_box",
]


def default_workers() -> int:
    """Threads for scipy.fft: ``QSMPREP_FFT_WORKERS`` or the CPUs available."""
    env = os.environ.get("QSMPREP_FFT_WORKERS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def fast_shape(shape, pad=0) -> tuple[int, ...]:
    """Smallest FFT-friendly shape holding ``shape`` plus ``pad`` voxels per axis.

    ``pad`` is an int or a per-axis sequence: the number of voxels added in total
    along the axis (split between both ends by :func:`pad_to`). The last axis is
    kept even so the real transform's Nyquist plane is well defined.
    """
    pads = np.broadcast_to(np.asarray(pad, dtype=int), (len(shape),))
    out = []
    for i, (n, p) in enumerate(zip(shape, pads)):
        m = scipy.fft.next_fast_len(int(n + p), real=True)
        if i == len(shape) - 1:
            while m % 2:
                m = scipy.fft.next_fast_len(m + 1, real=True)
        out.append(int(m))
    return tuple(out)


def centred_slices(inner_shape, outer_shape) -> tuple[slice, ...]:
    """Slices placing an ``inner_shape`` block at the centre of ``outer_shape``."""
    slices = []
    for n, m in zip(inner_shape, outer_shape):
        if m < n:
            raise ValueError(f"cannot pad axis of length {n} to {m}")
        start = (m - n) // 2
        slices.append(slice(start, start + n))
    return tuple(slices)


def pad_to(array: np.ndarray, shape) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Zero-pad ``array`` (centred) to ``shape``; return it and the slices that undo it."""
    slices = centred_slices(array.shape, shape)
    if tuple(array.shape) == tuple(shape):
        return array, slices
    out = np.zeros(shape, dtype=array.dtype)
    out[slices] = array
    return out, slices


def mask_bounding_box(mask, margin) -> tuple[slice, ...]:
    """Slices of ``mask``'s bounding box grown by ``margin`` voxels per axis (clipped)."""
    idx = np.nonzero(mask)
    return tuple(slice(max(int(i.min()) - m, 0), min(int(i.max()) + 1 + m, n))
                 for i, m, n in zip(idx, margin, np.shape(mask)))


def crop_to(array: np.ndarray, slices) -> np.ndarray:
    """Undo :func:`pad_to` (returns a contiguous copy)."""
    return np.ascontiguousarray(array[tuple(slices)])


def kspace_axes(shape, voxel_size, rfft: bool = True, dtype=np.float32):
    """Spatial frequencies (cycles/mm) of each axis, shaped for broadcasting.

    For ``rfft=True`` the last axis holds the ``rfftfreq`` half spectrum.
    """
    ndim = len(shape)
    axes = []
    for i, (n, h) in enumerate(zip(shape, voxel_size)):
        if rfft and i == ndim - 1:
            f = np.fft.rfftfreq(n, d=float(h))
        else:
            f = np.fft.fftfreq(n, d=float(h))
        view = [1] * ndim
        view[i] = f.size
        axes.append(f.astype(dtype).reshape(view))
    return axes


def rfft_weights(shape) -> np.ndarray:
    """Parseval multiplicity of each plane of the ``rfftn`` half spectrum.

    ``sum(w * |rfftn(x)|**2) / prod(shape) == sum(x**2)`` for real ``x``: planes whose
    conjugate mirror is not stored count twice.
    """
    n = shape[-1]
    m = n // 2 + 1
    w = np.full(m, 2.0, dtype=np.float32)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w.reshape((1,) * (len(shape) - 1) + (m,))
