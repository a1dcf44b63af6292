"""Preconditioned total field inversion (TFI): chi from the total field, no background step.

Liu, Wen, Spincemaille, Wang, MRM 2017 (79:2795) "Preconditioned total field inversion
(TFI) method for quantitative susceptibility mapping". Instead of removing the
background field (PDF, V-SHARP) and inverting the remainder, one susceptibility map
over the mask's bounding box (+``margin_mm``) explains the whole measured field: the
brain's own sources and the background sources outside it together,

    min_y  || W (D P y - f) ||_2^2 + lambda * sum_i || M_i G_i P y ||_2^2,   chi = P y

``f`` the total field (ppm), ``W`` the data weight (the mask, times
``median(noise)/noise`` with a noise map: the field is only trusted inside the
mask), ``D`` the dipole convolution, ``G_i`` the forward difference along axis ``i``
divided by the voxel size (1/mm), ``M_i`` the differences with both voxels inside the
mask. ``lambda`` multiplies the squared gradient norm of chi INSIDE the mask
(ppm^2/mm^2), the convention of :func:`qsmprep.algorithms.inversion.direct.closed_form_l2`
restricted to the brain; the background susceptibility is not regularised (as in
PDF, the early-stopped CG is its regulariser). ``P`` is TFI's preconditioner: 1 in the
mask, ``p_out`` (30, as in the paper) outside it, 0 outside the box (no sources
there). The strong background sources (air, bone: several ppm) are then small in
``y`` and CG reaches them as quickly as the brain's 0.1-ppm contrasts.

The normal equations ``(P D W^2 D P + lambda P G^T M G P) y = P D W^2 f`` are solved
by conjugate gradients for ``max_iter`` (300) iterations (or until the relative
residual is below ``tol``, 0 by default): the iteration count regularises the
background and the error semi-converges. Measured on the simulated head (64x76x64 at
2.2 mm, SNR 100, axial B0; tests/algorithms/test_tfi.py): 100/300/600 iterations give
57.4/52.7/54.4% demeaned NRMSE, against PDF + L2 58.8% and V-SHARP + L2 56.2%; lambda
x0.3..3 changes it little. ``preconditioner=True`` adds the k-space preconditioner
``(D^2 + lambda E2)^-1``: it made the result WORSE (90-200%), so it is off by default.
Limitation: on a coarser 48x56x48 grid at 2.9 mm the same settings gave 105-190%
(PDF + L2: 60-66%); TFI is only better at the finer grid tested.
chi inside the mask is referenced to its mean there; the background chi is returned
separately (it absorbs everything harmonic in the mask and is not a susceptibility
estimate of the skull).

Automatic lambda: the GCV lambda (:mod:`.lambda_selection`) of closed-form L2 on a
quick local field from V-SHARP (one k-space sweep), times ``lambda_factor``
(measured: docs/inversion.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..background.sharp import vsharp
from .cg import data_weights, pcg
from ..kspace import KSpaceProblem
from ..kspace import Grid
from .lambda_selection import DEFAULT_LAMBDAS, select_lambda, sweep_l2

__all__ = ["TFIResult", "tfi", "tfi_auto_lambda"]

#: default ``lambda_factor`` of the automatic rule (docs/inversion.md)
TFI_LAMBDA_FACTOR = 1.0


@dataclass(frozen=True)
class TFIResult:
    chi: np.ndarray          # ppm inside the mask, referenced to its mean; 0 outside
    background: np.ndarray   # chi outside the mask (ppm, within the box), 0 inside
    lam: float               # weight of sum_i ||M_i G_i chi||^2 (ppm^2/mm^2)
    iterations: int
    residuals: tuple         # relative residual of the normal equations per iteration


def tfi_auto_lambda(total_field, mask, voxel_size, b0_dir, lambda_factor=TFI_LAMBDA_FACTOR,
                    workers=None) -> float:
    """GCV lambda of closed-form L2 on the V-SHARP local field, times ``lambda_factor``."""
    local, vmask = vsharp(total_field, mask, voxel_size, workers=workers)
    prob = KSpaceProblem(local, voxel_size, b0_dir, mask=vmask, workers=workers)
    return float(lambda_factor) * select_lambda(
        sweep_l2(prob.spectrum, prob.d, prob.e2, DEFAULT_LAMBDAS), "gcv")


def tfi(total_field, mask, voxel_size, b0_dir, noise=None, lam=None,
        lambda_factor: float = TFI_LAMBDA_FACTOR, p_out: float = 30.0,
        margin_mm: float = 10.0, pad_fraction: float = 0.25, max_iter: int = 300,
        tol: float = 0.0, preconditioner: bool = False, workers=None) -> TFIResult:
    """Total field inversion (see module doc). Total field ppm in; chi ppm out.

    ``mask`` is where the field is measured (the brain mask); ``noise`` a field noise
    map (any unit) for the data weights; ``lam=None`` chooses lambda automatically.
    """
    mask = np.asarray(mask, bool)
    field = np.asarray(total_field, np.float32)
    if field.shape != mask.shape:
        raise ValueError(f"field {field.shape} and mask {mask.shape} differ in shape")
    if not mask.any():
        raise ValueError("empty mask")
    if lam is None:
        lam = tfi_auto_lambda(field, mask, voxel_size, b0_dir, lambda_factor, workers)
    margin = [int(np.ceil(margin_mm / h)) for h in voxel_size]
    box_shape = [min(n, int(np.ptp(np.nonzero(mask)[i])) + 1 + 2 * m)
                 for i, (n, m) in enumerate(zip(mask.shape, margin))]
    pad = [int(round(n * pad_fraction)) for n in box_shape]
    grid = Grid(field.shape, voxel_size, b0_dir, mask=mask, margin=margin, pad=pad,
                workers=workers)
    m = grid.crop(mask).astype(bool)
    inbox = grid.crop(np.ones(mask.shape, np.float32)) > 0
    p = np.where(m, np.float32(1.0), np.where(inbox, np.float32(p_out), np.float32(0)))
    p = p.astype(np.float32)
    w2 = grid.crop(data_weights(mask, noise) ** 2)
    f = grid.crop(np.where(mask, field, np.float32(0)))
    mi = [(m & np.roll(m, -1, axis=ax)).astype(np.float32) for ax in range(3)]
    lam32 = np.float32(lam)

    def normal(y):
        x = p * y
        spec = grid.fft(x)
        t = grid.ifft(spec * grid.d)
        t *= w2
        acc = grid.fft(t) * grid.d
        for e, mk in zip(grid.e, mi):
            g = grid.ifft(spec * e)
            g *= mk
            acc += lam32 * np.conj(e) * grid.fft(g)
        return p * grid.ifft(acc)

    if preconditioner:
        pk = grid.d * grid.d + lam32 * grid.e2
        pk[0, 0, 0] = 1.0
        pk = (np.float32(1.0) / np.maximum(pk, np.float32(1e-2 * float(pk.max())))).astype(
            np.float32)

        def precond(v):
            return grid.conv(v, pk)
    else:
        def precond(v):
            return v

    b = p * grid.conv(w2 * f, grid.d)
    y, it, history = pcg(normal, b, precond, max_iter=max_iter, tol=tol)
    chi_all = grid.uncrop(p * y)
    chi = np.where(mask, chi_all - np.float32(chi_all[mask].mean()), np.float32(0))
    background = np.where(mask, np.float32(0), chi_all)
    return TFIResult(chi.astype(np.float32), background.astype(np.float32), float(lam), it,
                     tuple(history))
