"""Direct (non-iterative) dipole inversions: TKD and closed-form L2.

Both take a local field in ppm of B0 and return susceptibility in ppm, referenced
to nothing (the k-space origin is set to zero); callers reference the result
with :func:`qsmprep.algorithms.reference.reference_to_mask_mean`.

Closed-form L2 (Bilgic et al., MRM 2014, "Fast image reconstruction with L2
regularization") solves

    min_chi  || D chi - phi ||_2^2 + lambda * sum_i || G_i chi ||_2^2

with ``G_i`` the forward finite difference along array axis ``i`` divided by the
voxel size along that axis (units 1/mm), so ``lambda`` multiplies the squared
gradient norm of chi in ppm^2/mm^2 and is comparable across voxel sizes. In
k-space, with ``E2 = sum_i (2 - 2 cos(2 pi k_i h_i)) / h_i^2``,

    chi = F^-1 [ D F(phi) / (D^2 + lambda E2) ].
"""

from __future__ import annotations

import numpy as np

from ..kspace import KSpaceProblem

__all__ = ["tkd", "closed_form_l2"]


def tkd(field, voxel_size, b0_dir, threshold=0.19, mask=None, pad=8, workers=None):
    """Truncated k-space division (Shmueli et al., MRM 2009).

    ``1/D`` where ``|D| > threshold``; ``sign(D)/threshold`` elsewhere (the
    ``threshold`` is the truncation level of the kernel, unitless). Output ppm,
    zero outside ``mask`` when one is given.
    """
    prob = KSpaceProblem(field, voxel_size, b0_dir, mask=mask, pad=pad, workers=workers)
    d = prob.d
    inv = np.where(np.abs(d) > threshold, 1.0 / np.where(d == 0, 1, d), np.sign(d) / threshold)
    inv = inv.astype(np.float32)
    inv[0, 0, 0] = 0.0
    return prob.apply(inv, inplace=True)


def closed_form_l2(field, voxel_size, b0_dir, lam, mask=None, pad=8, workers=None,
                   problem: KSpaceProblem | None = None):
    """Closed-form L2 with gradient regulariser (see module docstring for ``lam``)."""
    private = problem is None
    prob = problem or KSpaceProblem(field, voxel_size, b0_dir, mask=mask, pad=pad, workers=workers)
    chi = prob.apply(prob.l2_kernel(lam), inplace=private)
    if mask is not None and prob.mask is None:
        chi = np.where(mask, chi, np.float32(0))
    return chi
