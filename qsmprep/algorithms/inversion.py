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
import scipy.fft

from .dipole import dipole_kernel
from .fft import centred_slices, default_workers, fast_shape
from .laplacian import laplacian_kernel

__all__ = [
    "gradient_kernel_sq",
    "tkd",
    "closed_form_l2",
    "KSpaceProblem",
]


def gradient_kernel_sq(shape, voxel_size) -> np.ndarray:
    """``E2(k) = sum_i |1 - exp(-2 pi i k_i h_i)|^2 / h_i^2`` (1/mm^2) on the rfft grid.

    Equal to minus the 7-point Laplacian's eigenvalues.
    """
    return -laplacian_kernel(shape, voxel_size)


class KSpaceProblem:
    """A local field on a padded FFT grid with its kernels, ready for k-space solves.

    Holds ``F(phi)`` (half spectrum), ``D`` and ``E2`` so that several solves or a
    lambda sweep reuse one forward transform.
    """

    def __init__(self, field, voxel_size, b0_dir, mask=None, pad=8, workers=None):
        field = np.asarray(field, dtype=np.float32)
        self.workers = workers or default_workers()
        self.voxel_size = tuple(float(v) for v in voxel_size)
        self.shape = fast_shape(field.shape, pad)
        self.mask = None if mask is None else np.asarray(mask, bool)
        # mask and zero-pad in one pass (no full-size temporaries)
        padded = np.zeros(self.shape, np.float32)
        self.slices = centred_slices(field.shape, self.shape)
        if self.mask is None:
            padded[self.slices] = field
        else:
            np.multiply(field, self.mask, out=padded[self.slices])
        self.spectrum = scipy.fft.rfftn(padded, workers=self.workers, overwrite_x=True)
        self.d = dipole_kernel(self.shape, self.voxel_size, b0_dir)
        self._e2 = None

    @property
    def e2(self) -> np.ndarray:
        if self._e2 is None:
            self._e2 = gradient_kernel_sq(self.shape, self.voxel_size)
        return self._e2

    def apply(self, kernel, inplace: bool = False) -> np.ndarray:
        """Multiply the field spectrum by a real ``kernel``; return the image, cropped and
        zero outside the mask. ``inplace`` reuses (destroys) the stored spectrum."""
        if inplace:
            spec = self.spectrum
            spec *= kernel
            self.spectrum = None
        else:
            spec = self.spectrum * kernel
        out = scipy.fft.irfftn(spec, s=self.shape, workers=self.workers, overwrite_x=True)
        view = out[self.slices]
        if self.mask is None:
            return np.ascontiguousarray(view, dtype=np.float32)
        return np.where(self.mask, view, np.float32(0)).astype(np.float32, copy=False)

    def l2_kernel(self, lam: float) -> np.ndarray:
        d = self.d
        denom = d * d
        denom += np.float32(lam) * self.e2
        denom[0, 0, 0] = 1.0
        np.divide(d, denom, out=denom)
        denom[0, 0, 0] = 0.0
        return denom


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
