"""Phase scaling and unit conversions.

Phase is handled in radians in ``[-pi, pi)``; fields in ppm of B0 internally
and in Hz only at the edges. gamma/2pi = 42.577478 MHz/T.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GAMMA_BAR_HZ_PER_T", "wrap", "rescale_phase", "hz_to_ppm", "ppm_to_hz",
           "rad_per_s_to_ppm"]

GAMMA_BAR_HZ_PER_T = 42.577478e6


def wrap(phase):
    """Wrap radians into ``[-pi, pi)``."""
    return ((np.asarray(phase) + np.pi) % (2 * np.pi) - np.pi).astype(np.float32)


def rescale_phase(data) -> tuple[np.ndarray, str]:
    """Return phase in radians ``[-pi, pi)`` and a sentence describing what was done.

    Data already within ``[-pi, pi]`` (to 1%) is only wrapped. Integer-scaled phase
    (e.g. Siemens ``0..4095`` or ``-4096..4095``) is mapped linearly from the
    smallest power-of-two range holding the data, ``[0, 2^n)`` or
    ``[-2^n, 2^n)``, onto ``[-pi, pi)``.
    """
    x = np.asarray(data, dtype=np.float64)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        raise ValueError("phase image holds no finite values")
    lo, hi = float(finite.min()), float(finite.max())
    if lo >= -np.pi * 1.01 and hi <= np.pi * 1.01:
        return wrap(np.nan_to_num(x)), "phase already in radians"
    if lo >= 0:
        top = 2.0 ** np.ceil(np.log2(np.floor(hi) + 1))  # smallest 2^n > hi (float data too)
        rad = np.nan_to_num(x) / top * 2 * np.pi - np.pi
        return wrap(rad), f"phase rescaled from [0, {top:.0f}) to radians"
    top = 2.0 ** np.ceil(np.log2(max(abs(lo), np.floor(hi) + 1)))
    rad = np.nan_to_num(x) / top * np.pi
    return wrap(rad), f"phase rescaled from [-{top:.0f}, {top:.0f}) to radians"


def hz_to_ppm(field_hz, b0_tesla):
    """Field offset in Hz -> ppm of B0."""
    return np.asarray(field_hz) / (GAMMA_BAR_HZ_PER_T * b0_tesla) * 1e6


def ppm_to_hz(field_ppm, b0_tesla):
    """Field in ppm of B0 -> Hz."""
    return np.asarray(field_ppm) * (GAMMA_BAR_HZ_PER_T * b0_tesla) * 1e-6


def rad_per_s_to_ppm(omega, b0_tesla):
    """Angular frequency offset (rad/s) -> ppm of B0."""
    return hz_to_ppm(np.asarray(omega) / (2 * np.pi), b0_tesla)
