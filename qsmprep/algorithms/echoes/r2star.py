"""R2* / T2* maps from multi-echo magnitude: weighted log-linear fit and ARLO.

Model per voxel: ``S_n = S0 exp(-R2* TE_n)`` (TE in s, R2* in 1/s, T2* = 1/R2* in s).
No regularisation (no lambda) in either method.

* Log-linear: weighted least squares of ``log S_n = log S0 - R2* TE_n`` with weights
  ``S_n^2`` (the variance of ``log S`` at magnitude ``S`` is ``sigma^2 / S^2``).
* ARLO (Pei M, Nguyen TD, Thimmappa ND, et al. *Algorithm for fast monoexponential fitting
  based on Auto-Regression on Linear Operations (ARLO) of data.* Magn Reson Med
  2015;73:843-850, with its 2019 erratum): for equally spaced echoes (spacing ``d``) the
  Simpson integral ``s_i = d/3 (S_i + 4 S_{i+1} + S_{i+2})`` and the difference
  ``delta_i = S_i - S_{i+2}`` satisfy ``s_i ~ T2* delta_i``; the closed form
  ``T2* = (sum s_i^2 + d/3 sum s_i delta_i) / (d/3 sum delta_i^2 + sum s_i delta_i)``
  needs no logarithm and no iteration (>= 3 echoes).

Both maps are clipped: R2* to ``[0, r2star_max]`` (default 1000 1/s); T2* is
``1 / max(R2*, 1 / t2star_max)`` (default cap 1 s, also where R2* = 0). Voxels outside
``mask`` (or with no signal) are 0 in both maps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..linefit import line_fit

__all__ = ["R2StarFit", "r2star_loglinear", "r2star_arlo", "r2star_map", "R2STAR_METHODS"]

R2STAR_METHODS = ("arlo", "loglinear")


@dataclass(frozen=True)
class R2StarFit:
    r2star: np.ndarray  # 1/s, float32
    t2star: np.ndarray  # s, float32
    s0: np.ndarray      # signal at TE = 0 (magnitude units), float32


def _prepare(magnitudes, echo_times, mask, min_echoes):
    s = np.asarray(magnitudes, np.float64)
    te = np.asarray(echo_times, np.float64)
    if s.ndim < 2 or s.shape[-1] != te.size:
        raise ValueError(f"magnitude has {s.shape[-1] if s.ndim else 0} echoes, "
                         f"{te.size} echo times given")
    if te.size < min_echoes:
        raise ValueError(f"R2* needs at least {min_echoes} echoes, got {te.size}")
    order = np.argsort(te)
    s, te = s[..., order], te[order]
    if mask is None:
        mask = np.ones(s.shape[:-1], bool)
    mask = np.asarray(mask, bool) & (np.nan_to_num(s).max(-1) > 0)
    return np.nan_to_num(np.maximum(s, 0.0))[mask], te, mask


def _finish(r2, s0, mask, r2star_max, t2star_max) -> R2StarFit:
    r2 = np.clip(np.nan_to_num(r2, nan=0.0, posinf=r2star_max, neginf=0.0), 0.0, r2star_max)
    out_r2 = np.zeros(mask.shape, np.float32)
    out_t2 = np.zeros(mask.shape, np.float32)
    out_s0 = np.zeros(mask.shape, np.float32)
    out_r2[mask] = r2
    out_t2[mask] = 1.0 / np.maximum(r2, 1.0 / t2star_max)
    out_s0[mask] = np.nan_to_num(s0)
    return R2StarFit(out_r2, out_t2, out_s0)


def r2star_loglinear(magnitudes, echo_times, mask=None, r2star_max: float = 1000.0,
                     t2star_max: float = 1.0) -> R2StarFit:
    """Weighted log-linear R2* fit (weights ``S_n^2``; see module doc). ``magnitudes``:
    (..., n_echoes), ``echo_times`` in s, at least 2 echoes."""
    s, te, mask = _prepare(magnitudes, echo_times, mask, 2)
    pos = s > 0
    logs = np.log(np.where(pos, s, 1.0))
    w = np.where(pos, s * s, 0.0)
    slope, icpt, _, _ = line_fit(logs, te, w, rel_tol=1e-12, dtype=np.float64)
    return _finish(-slope, np.exp(icpt), mask, r2star_max, t2star_max)


def r2star_arlo(magnitudes, echo_times, mask=None, r2star_max: float = 1000.0,
                t2star_max: float = 1.0) -> R2StarFit:
    """ARLO R2* (see module doc): equally spaced echoes (1% tolerance), at least 3."""
    s, te, mask = _prepare(magnitudes, echo_times, mask, 3)
    spacing = np.diff(te)
    d = float(spacing.mean())
    if np.max(np.abs(spacing - d)) > 0.01 * d:
        raise ValueError(f"ARLO needs equally spaced echoes; got spacings {spacing.tolist()} s "
                         "(use the log-linear fit)")
    simpson = d / 3.0 * (s[:, :-2] + 4.0 * s[:, 1:-1] + s[:, 2:])
    delta = s[:, :-2] - s[:, 2:]
    sss = (simpson * simpson).sum(-1)
    ssd = (simpson * delta).sum(-1)
    sdd = (delta * delta).sum(-1)
    num = d / 3.0 * sdd + ssd
    t2 = (sss + d / 3.0 * ssd) / np.where(num != 0, num, np.inf)
    # T2* < 0: growing signal (noise) -> R2* < 0 -> clipped to 0; T2* = 0 -> the cap
    r2 = np.where(t2 != 0, 1.0 / np.where(t2 != 0, t2, 1.0), r2star_max)
    r2 = np.where(num == 0, 0.0, r2)  # flat signal: no decay
    r2 = np.clip(r2, 0.0, r2star_max)
    # S0: least squares of S_n against exp(-R2* TE_n)
    e = np.exp(-r2[:, None] * te)
    s0 = (s * e).sum(-1) / np.maximum((e * e).sum(-1), 1e-300)
    return _finish(r2, s0, mask, r2star_max, t2star_max)


def r2star_map(magnitudes, echo_times, method: str = "arlo", mask=None,
               r2star_max: float = 1000.0, t2star_max: float = 1.0) -> R2StarFit:
    """Dispatch on ``method`` (``"arlo"`` or ``"loglinear"``)."""
    if method == "arlo":
        return r2star_arlo(magnitudes, echo_times, mask, r2star_max, t2star_max)
    if method == "loglinear":
        return r2star_loglinear(magnitudes, echo_times, mask, r2star_max, t2star_max)
    raise ValueError(f"unknown R2* method {method!r}; choose one of {R2STAR_METHODS}")
