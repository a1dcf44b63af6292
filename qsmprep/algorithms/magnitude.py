"""Magnitude scaling: keep squared magnitudes inside float32 arithmetic.

Scanners write magnitudes on arbitrary scales (a Philips scan reaches 8.6e6): squared, and
multiplied by a sum of squares in a fit's normal equations, or divided by a clamped
determinant, they overflow float32 (3.4e38). Every fit weighted by ``magnitude^2`` is
invariant to a constant factor, so the magnitude is divided by a robust scale first.
"""

from __future__ import annotations

import numpy as np

__all__ = ["magnitude_scale", "scaled_magnitude", "rss"]


def magnitude_scale(magnitude) -> float:
    """A robust scale of ``magnitude``: the 99.9th percentile of its positive finite values
    (from at most ~1e6 of them), 1.0 when there are none."""
    m = np.asarray(magnitude).ravel()
    m = m[:: max(1, m.size // 1_000_000)]
    m = m[np.isfinite(m) & (m > 0)]
    if m.size == 0:
        return 1.0
    scale = float(np.percentile(m, 99.9))
    return scale if scale > 0 and np.isfinite(scale) else 1.0


def scaled_magnitude(magnitude, dtype=np.float32) -> np.ndarray:
    """``magnitude / magnitude_scale(magnitude)`` as ``dtype`` (relative weights unchanged)."""
    m = np.asarray(magnitude, dtype=dtype)
    return (m / dtype(magnitude_scale(m))).astype(dtype, copy=False)


def rss(magnitude, axis=-1) -> np.ndarray:
    """Root-sum-of-squares along ``axis`` (float32), computed on the scaled magnitude so that
    no square overflows, then scaled back."""
    m = np.asarray(magnitude, np.float32)
    s = np.float32(magnitude_scale(m))
    u = m / s
    return (np.sqrt(np.sum(u * u, axis=axis)) * s).astype(np.float32)
