"""Bring per-echo spatially unwrapped phases to one consistent set of 2 pi multiples.

A spatial unwrapper run on each echo separately (FSL PRELUDE, Jenkinson MRM 2003)
returns each echo's phase up to its own global multiple of 2 pi. The multi-echo
field fit needs the echoes to agree in time: echo ``n`` should be echo ``n-1`` plus
the wrapped echo difference (valid where the field changes the phase by less than
pi between echoes). This module picks, per echo, the multiple of 2 pi that makes
the median over the mask of that difference zero; the first echo's multiple puts
its median in [-pi, pi). Phases in radians.
"""

from __future__ import annotations

import numpy as np

from ..phase import wrap

__all__ = ["align_echo_multiples"]

TWO_PI = np.float32(2 * np.pi)


def align_echo_multiples(unwrapped, wrapped, mask) -> tuple[np.ndarray, list[int]]:
    """Shift each echo of ``unwrapped`` (x, y, z, echoes) by a multiple of 2 pi.

    ``wrapped`` is the input phase (same shape), ``mask`` the voxels to trust.
    Returns ``(aligned float32, multiples added per echo)``.
    """
    unw = np.array(unwrapped, dtype=np.float32, copy=True)
    wr = np.asarray(wrapped, dtype=np.float32)
    if unw.ndim == 3:
        unw, wr = unw[..., None], wr[..., None]
    if unw.shape != wr.shape:
        raise ValueError(f"unwrapped {unw.shape} and wrapped {wr.shape} phases differ in shape")
    m = np.asarray(mask, bool)
    if not m.any():
        raise ValueError("empty mask")
    ks = []
    k = int(np.round(np.median(unw[..., 0][m]) / TWO_PI))
    unw[..., 0] -= TWO_PI * k
    ks.append(-k)
    for n in range(1, unw.shape[-1]):
        pred = unw[..., n - 1][m] + wrap(wr[..., n][m] - wr[..., n - 1][m])
        k = int(np.round(np.median(pred - unw[..., n][m]) / TWO_PI))
        unw[..., n] += TWO_PI * k
        ks.append(k)
    return unw, ks
