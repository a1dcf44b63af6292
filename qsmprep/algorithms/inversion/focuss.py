"""FOCUSS-QSM: gradient-domain dipole inversion with a magnitude prior (seed 001).

Multiplying the field equation ``D * chi = phi`` (``*``: convolution; in k-space a
product) by the k-space finite-difference symbol ``E_i`` of array axis ``i`` gives an
equation for each spatial gradient of chi:

    D * (G_i chi) = G_i phi,      i = 0, 1, 2

The gradients of a piecewise-smooth susceptibility map are sparse and sit where the
magnitude image has edges (tissue boundaries, vessel walls). Each ``g_i = G_i chi`` is
found by regularised FOCUSS (FOcal Underdetermined System Solver; Gorodnitsky & Rao,
IEEE TSP 1997; Rao et al. 2003 for the regularised form): a sequence of weighted
minimum-norm problems

    q_k = argmin_q || M_i (D W_k q - G_i phi) ||^2 + beta ||q||^2,     g_k = W_k q_k

with ``M_i`` the voxels whose forward difference lies inside the mask and
``W_k = P_i * (|g_{k-1}| / s)^(1 - p/2)``: the FOCUSS affine-scaling weight (``p`` = 1,
an l1-like diversity measure) times the magnitude edge prior
``P_i = clip(|G_i m| / q99(|G_i m|), floor, 1)`` (``m`` the magnitude, ``q99`` its
99th percentile in the mask, ``s`` the 99th percentile of ``|g_{k-1}|``). The first
iterate uses ``P_i`` alone. Each weighted problem is solved by a few CG iterations.

Finally chi is the least-squares fit of the field and the recovered gradients,
closed form in k-space:

    chi = argmin || D chi - phi ||^2 + lambda sum_i || G_i chi - g_i ||^2
        = F^-1 [ (D F phi + lambda sum_i conj(E_i) F g_i) / (D^2 + lambda E2) ]

``lambda`` has the convention of :func:`qsmprep.algorithms.inversion.direct.closed_form_l2`
(weight of squared gradient deviations, gradients in 1/mm): with all ``g_i = 0`` this
IS closed-form L2, so FOCUSS-QSM is closed-form L2 whose gradient regulariser pulls
towards the FOCUSS gradients instead of towards zero.

Automatic parameters (documented and measured in docs/inversion.md):
``beta`` (multiplies ``||q||^2``, ppm^2/mm^2 like the gradients) is the GCV minimiser of
the *unweighted* gradient-domain problem ``||D g - G phi||^2 + beta ||g||^2``, one
k-space sweep of the spectrum ``sqrt(E2) F phi`` (:mod:`.lambda_selection`);
``lambda`` is the closed-form-L2 GCV lambda of the field times ``lambda_factor``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kspace import Grid
from .lambda_selection import DEFAULT_LAMBDAS, select_lambda, sweep_l2

__all__ = ["FocussResult", "focuss_qsm", "magnitude_edge_prior"]


@dataclass(frozen=True)
class FocussResult:
    chi: np.ndarray        # ppm, zero outside the mask
    beta: float            # FOCUSS weight of ||q||^2
    lam: float             # final fit's weight of sum_i ||G_i chi - g_i||^2
    gradients: tuple       # recovered g_i (ppm/mm) on the full grid


def magnitude_edge_prior(magnitude, mask, voxel_size, floor: float = 0.1) -> list[np.ndarray]:
    """Per axis ``clip(|G_i m| / q99, floor, 1)`` on the mask (``floor`` outside)."""
    m = np.asarray(magnitude, np.float32)
    mask = np.asarray(mask, bool)
    out = []
    for ax, h in enumerate(voxel_size):
        g = np.abs(np.roll(m, -1, axis=ax) - m) / np.float32(h)
        both = mask & np.roll(mask, -1, axis=ax)
        scale = float(np.percentile(g[both], 99)) if both.any() else 1.0
        out.append(np.clip(np.where(both, g / max(scale, 1e-12), floor), floor, 1.0)
                   .astype(np.float32))
    return out


def _gcv_beta(grid, spec_phi) -> float:
    e2 = grid.e2
    spec = spec_phi * np.sqrt(e2)
    ones = np.ones((1, 1, 1), np.float32)
    return select_lambda(sweep_l2(spec, grid.d, ones, DEFAULT_LAMBDAS * 10.0), "gcv")


def focuss_qsm(field, magnitude, mask, voxel_size, b0_dir, beta=None, lam=None,
               lambda_factor: float = 1.0, n_focuss: int = 3, n_cg: int = 10, p: float = 1.0,
               edge_floor: float = 0.1, pad=8, margin=4, workers=None) -> FocussResult:
    """FOCUSS-QSM (see module doc). Local field ppm, magnitude a.u.; chi ppm.

    ``n_focuss`` reweighting steps of ``n_cg`` CG iterations each, per axis.
    """
    mask = np.asarray(mask, bool)
    field = np.where(mask, np.asarray(field, np.float32), 0)
    grid = Grid(field.shape, voxel_size, b0_dir, mask=mask, margin=margin, pad=pad, workers=workers)
    phi = grid.crop(field)
    m = grid.crop(mask).astype(bool)
    spec_phi = grid.fft(phi)
    d = grid.d
    if beta is None:
        beta = _gcv_beta(grid, spec_phi)
    if lam is None:
        sweep = sweep_l2(spec_phi, d, grid.e2, DEFAULT_LAMBDAS)
        lam = select_lambda(sweep, "gcv") * float(lambda_factor)
    beta32 = np.float32(beta)
    prior = [grid.crop(pr) for pr in magnitude_edge_prior(magnitude, mask, voxel_size, edge_floor)]
    # prior is floor outside the box too: crop pads zeros, use floor there
    for pr in prior:
        pr[pr == 0] = np.float32(edge_floor)
    gradients = []
    for ax, e in enumerate(grid.e):
        y = grid.ifft(spec_phi * e)
        mi = (m & np.roll(m, -1, axis=ax)).astype(np.float32)
        y *= mi
        g = None
        for k in range(n_focuss):
            if g is None:
                w = prior[ax]
            else:
                a = np.abs(g)
                s = float(np.percentile(a[mi > 0], 99)) or 1.0
                w = prior[ax] * np.minimum(a / np.float32(s), 1.0) ** np.float32(1.0 - p / 2.0)
                w = np.maximum(w, np.float32(1e-3 * edge_floor))
            # scale W to unit RMS in the mask: beta||W^-1 g||^2 then penalises on
            # average as the unweighted problem whose GCV gave beta
            w = w / np.float32(np.sqrt(np.mean(w[mi > 0] ** 2)))

            def normal(q):
                t = grid.conv(w * q, d)
                t *= mi
                out = w * grid.conv(t, d)
                out += beta32 * q
                return out

            b = w * grid.conv(y, d)
            q = np.zeros(grid.shape, np.float32) if g is None else (g / w).astype(np.float32)
            r = b - normal(q) if g is not None else b.copy()
            pdir = r.copy()
            rs = float(np.vdot(r, r))
            for _ in range(n_cg):
                ap = normal(pdir)
                alpha = np.float32(rs / float(np.vdot(pdir, ap)))
                q += alpha * pdir
                r -= alpha * ap
                rs_new = float(np.vdot(r, r))
                pdir *= np.float32(rs_new / rs)
                pdir += r
                rs = rs_new
            g = w * q
        gradients.append(g)
    num = d * spec_phi
    lam32 = np.float32(lam)
    for g, e in zip(gradients, grid.e):
        num += lam32 * np.conj(e) * grid.fft(g)
    den = d * d + lam32 * grid.e2
    den[0, 0, 0] = 1.0
    num /= den
    num[0, 0, 0] = 0
    chi = grid.uncrop(grid.ifft(num))
    chi = np.where(mask, chi, np.float32(0)).astype(np.float32)
    return FocussResult(chi, float(beta), float(lam), tuple(grid.uncrop(g) for g in gradients))
