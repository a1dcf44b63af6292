"""Per-voxel weighted least-squares lines along the echo axis (shared by the field fit,
R2* and the temporal unwrappers)."""

from __future__ import annotations

import numpy as np

__all__ = ["line_fit"]


def line_fit(y, x, weights=None, rel_tol=0.0, dtype=np.float32):
    """Per-voxel weighted least-squares line ``y = intercept + slope * x`` along the last
    axis (phase against echo time here; log magnitude in :mod:`.echoes.r2star`).

    Returns ``(slope, intercept, sw, det)`` as ``dtype``: besides the line, the sum of
    weights and the normal equations' determinant ``sw * swxx - swx^2`` (unguarded),
    which give the slope's variance ``sigma^2 sw / det`` (see :func:`fit_field`).
    Where ``|det| <= rel_tol * sw * swxx`` (0: only an exactly singular system, e.g. no
    weight) the slope is 0 and the intercept the weighted mean.
    """
    y = np.asarray(y, dtype=dtype)
    x = np.asarray(x, dtype=dtype)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=dtype)
    sw = w.sum(-1)
    swx = (w * x).sum(-1)
    swxx = (w * x * x).sum(-1)
    swy = (w * y).sum(-1)
    swxy = (w * x * y).sum(-1)
    det = sw * swxx - swx * swx
    ok = np.abs(det) > rel_tol * np.abs(sw * swxx)
    slope = np.where(ok, (sw * swxy - swx * swy) / np.where(ok, det, 1), 0)
    icpt = (swy - slope * swx) / np.where(sw > 0, sw, 1)
    return slope.astype(dtype), icpt.astype(dtype), sw, det
