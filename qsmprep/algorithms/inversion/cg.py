"""Iterative L2 dipole inversion with data weights, by (preconditioned) conjugate gradients.

Solves the weighted form of the closed-form L2 objective (Bilgic et al., MRM 2014;
de Rochefort et al., MRM 2008 for the weighted data term)

    min_chi  || W (D chi - phi) ||_2^2 + lambda * sum_i || G_i chi ||_2^2

where ``W`` is a voxelwise data weight (the mask, optionally divided by the field
noise map: ``W = mask * median(noise) / noise``), ``D`` the dipole convolution and
``G_i`` the forward difference along array axis ``i`` divided by the voxel size
(1/mm). ``lambda`` multiplies the squared gradient norm in ppm^2/mm^2, exactly as in
:func:`qsmprep.algorithms.inversion.direct.closed_form_l2`; with ``W = 1`` the minimiser IS
the closed-form solution, which the tests check.

The normal equations ``(D W^2 D + lambda G^T G) chi = D W^2 phi`` are solved by
conjugate gradients (Hestenes & Stiefel 1952). ``preconditioner=True`` uses the
closed-form operator ``(D^2 + lambda E2)^-1`` (exact when ``W`` is constant) as a
k-space preconditioner: one extra FFT pair per iteration, and on the head phantom
with a brain mask it reaches the same error in ~10 iterations that plain CG needs
80+ for (docs/inversion.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kspace import Grid

__all__ = ["CGResult", "data_weights", "cg_l2"]


@dataclass(frozen=True)
class CGResult:
    chi: np.ndarray            # ppm, full size, zero outside the mask (when one is given)
    iterations: int
    residuals: tuple           # relative residual norm ||r_k|| / ||b|| after each iteration


def pcg(normal, b, precond=None, *, max_iter=80, tol=1e-3, x0=None):
    """Preconditioned conjugate gradients for ``normal(x) = b`` (``normal`` symmetric
    positive semi-definite, float32 arrays). Stops after ``max_iter`` iterations or when
    ``||r|| / ||b|| < tol``. Returns ``(x, iterations, relative residuals)``."""
    precond = precond or (lambda r: r)
    x = np.zeros_like(b) if x0 is None else np.array(x0, np.float32)
    r = b - normal(x) if x0 is not None else b.copy()
    bnorm = float(np.linalg.norm(b)) or 1.0
    z = precond(r)
    p = z.copy()
    rz = float(np.vdot(r, z))
    history = []
    it = 0
    for it in range(1, max_iter + 1):
        ap = normal(p)
        pap = float(np.vdot(p, ap))
        if pap <= 0:
            break
        alpha = np.float32(rz / pap)
        x += alpha * p
        r -= alpha * ap
        history.append(float(np.linalg.norm(r)) / bnorm)
        if history[-1] < tol:
            break
        z = precond(r)
        rz_new = float(np.vdot(r, z))
        p *= np.float32(rz_new / rz)
        p += z
        rz = rz_new
    return x, it, history


def data_weights(mask, noise=None) -> np.ndarray:
    """``W`` (float32): the mask, times ``median(noise)/noise`` inside it when a noise map
    (field standard deviation, any unit) is given; the ratio is capped at 1000."""
    m = np.asarray(mask, bool)
    if noise is None:
        return m.astype(np.float32)
    nz = np.asarray(noise, np.float32)
    ref = float(np.median(nz[m])) if m.any() else 1.0
    return np.where(m, ref / np.maximum(nz, ref * 1e-3), 0).astype(np.float32)


def cg_l2(field, voxel_size, b0_dir, lam, mask=None, weights=None, noise=None,
          max_iter: int = 80, tol: float = 1e-3, preconditioner: bool = True,
          x0=None, pad=8, margin=4, workers=None) -> CGResult:
    """Weighted L2 inversion by CG (see module doc). Field ppm in, chi ppm out.

    ``weights`` (``W``) overrides the weights built from ``mask``/``noise``; with
    neither, ``W = 1`` on the whole grid. ``tol`` stops on the relative residual of the
    normal equations. ``x0`` (full size, ppm) warm-starts the solve.

    Defaults: preconditioned, ``tol`` 1e-3, at most 80 iterations. On the head phantom
    (mask weights, 0.001 ppm noise) the preconditioned error plateaus after ~10
    iterations (relative residual 1.5e-3); plain CG needs ~40-80 for the same.
    """
    field = np.asarray(field, np.float32)
    grid = Grid(field.shape, voxel_size, b0_dir, mask=mask, margin=margin, pad=pad,
                workers=workers)
    if weights is None:
        weights = None if mask is None else data_weights(mask, noise)
    w2 = None if weights is None else grid.crop(np.asarray(weights, np.float32) ** 2)
    phi = grid.crop(field if mask is None else np.where(mask, field, 0))
    d, e2 = grid.d, grid.e2
    lam32 = np.float32(lam)
    reg = lam32 * e2

    def normal(x):
        xs = grid.fft(x)
        if w2 is None:
            return grid.ifft(xs * (d * d + reg))
        t = grid.ifft(xs * d)
        t *= w2
        return grid.ifft(grid.fft(t) * d + xs * reg)

    b = grid.conv(phi if w2 is None else phi * w2, d)
    if preconditioner:
        pk = d * d + reg
        pk[0, 0, 0] = 1.0
        pk = np.float32(1.0) / pk
        pk[0, 0, 0] = 0.0

        def precond(r):
            return grid.conv(r, pk)
    else:
        def precond(r):
            return r

    x0c = None if x0 is None else grid.crop(x0)
    x, it, history = pcg(normal, b, precond, max_iter=max_iter, tol=tol, x0=x0c)
    chi = grid.uncrop(x)
    if mask is not None:
        chi = np.where(mask, chi, np.float32(0))
    return CGResult(chi.astype(np.float32, copy=False), it, tuple(history))
