"""A cropped, padded FFT grid with the dipole and finite-difference operators.

Shared by the iterative inversions (CG, FOCUSS-QSM, TV/ADMM, total-field inversion):
the volume is cropped to the mask's bounding box plus a margin, zero-padded to a fast
FFT shape, and every operator is a real-FFT multiplication (``scipy.fft`` with
``workers`` threads, float32 images, complex64 spectra).

Finite differences are periodic forward differences divided by the voxel size (1/mm):
``G_i x = (x[n+1] - x[n]) / h_i``, whose rfft symbol is
``E_i(k) = (exp(2 pi i k_i h_i) - 1) / h_i``, with ``sum_i |E_i|^2 = E2`` of
:func:`gradient_kernel_sq`.

:class:`KSpaceProblem` is a field on the uncropped grid with its spectrum, for the
direct solves and the lambda sweep.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from .dipole import dipole_kernel
from .fft import centred_slices, default_workers, fast_shape, kspace_axes, mask_bounding_box
from .laplacian import laplacian_kernel

__all__ = ["Grid", "KSpaceProblem", "difference_kernels", "gradient_kernel_sq"]


def gradient_kernel_sq(shape, voxel_size) -> np.ndarray:
    """``E2(k) = sum_i |1 - exp(-2 pi i k_i h_i)|^2 / h_i^2`` (1/mm^2) on the rfft grid.

    Equal to minus the 7-point Laplacian's eigenvalues.
    """
    return -laplacian_kernel(shape, voxel_size)


def difference_kernels(shape, voxel_size) -> list[np.ndarray]:
    """rfft symbols ``E_i`` (complex64, broadcastable) of the forward differences (1/mm)."""
    out = []
    for ki, h in zip(kspace_axes(shape, voxel_size, rfft=True, dtype=np.float64), voxel_size):
        out.append(((np.exp(2j * np.pi * ki * h) - 1.0) / h).astype(np.complex64))
    return out


class Grid:
    """Crop ``mask``'s bounding box (+``margin`` voxels), pad by ``pad`` voxels per axis.

    ``crop(x)`` takes a full-size image to the padded grid (zeros in the padding),
    ``uncrop(y)`` takes a grid image back to the full size (zero outside the box).
    ``mask=None`` uses the whole volume of ``shape``.
    """

    def __init__(self, shape, voxel_size, b0_dir, mask=None, margin=4, pad=8, workers=None):
        self.full_shape = tuple(int(n) for n in shape)
        self.voxel_size = tuple(float(v) for v in voxel_size)
        self.workers = workers or default_workers()
        if mask is None:
            self.box = tuple(slice(0, n) for n in self.full_shape)
        else:
            mask = np.asarray(mask, bool)
            if not mask.any():
                raise ValueError("empty mask")
            margins = np.broadcast_to(np.asarray(margin, int), (3,))
            self.box = mask_bounding_box(mask, margins)
        inner = tuple(s.stop - s.start for s in self.box)
        self.shape = fast_shape(inner, pad)
        self.inner = centred_slices(inner, self.shape)
        self.d = dipole_kernel(self.shape, self.voxel_size, b0_dir)
        self._e = None
        self._e2 = None

    @property
    def e(self) -> list[np.ndarray]:
        if self._e is None:
            self._e = difference_kernels(self.shape, self.voxel_size)
        return self._e

    @property
    def e2(self) -> np.ndarray:
        if self._e2 is None:
            self._e2 = gradient_kernel_sq(self.shape, self.voxel_size)
        return self._e2

    # ------------------------------------------------------------------ geometry
    def crop(self, x, dtype=np.float32) -> np.ndarray:
        out = np.zeros(self.shape, dtype)
        out[self.inner] = np.asarray(x)[self.box]
        return out

    def uncrop(self, y, dtype=np.float32) -> np.ndarray:
        out = np.zeros(self.full_shape, dtype)
        out[self.box] = y[self.inner]
        return out

    # ------------------------------------------------------------------ transforms
    def fft(self, x) -> np.ndarray:
        return scipy.fft.rfftn(x, workers=self.workers).astype(np.complex64, copy=False)

    def ifft(self, spec) -> np.ndarray:
        return scipy.fft.irfftn(spec, s=self.shape, workers=self.workers).astype(np.float32,
                                                                                 copy=False)

    def conv(self, x, kernel) -> np.ndarray:
        """``F^-1 [kernel F x]`` (one FFT pair)."""
        return self.ifft(self.fft(x) * kernel)

    def dipole(self, x) -> np.ndarray:
        return self.conv(x, self.d)

    def grad(self, x) -> list[np.ndarray]:
        """Forward differences along each axis (1/mm), via one forward and three inverse FFTs."""
        spec = self.fft(x)
        return [self.ifft(spec * e) for e in self.e]

    def div_t(self, g) -> np.ndarray:
        """Adjoint ``sum_i G_i^T g_i`` (minus the backward-difference divergence)."""
        spec = None
        for gi, e in zip(g, self.e):
            s = self.fft(gi) * np.conj(e)
            spec = s if spec is None else spec + s
        return self.ifft(spec)


class KSpaceProblem:
    """A local field on a :class:`Grid` of the whole volume (no crop) with its spectrum, for
    k-space solves: holds ``F(phi)`` (half spectrum) so that several solves or a lambda
    sweep reuse one forward transform. ``d``, ``e2``, ``shape`` are the grid's.
    """

    def __init__(self, field, voxel_size, b0_dir, mask=None, pad=8, workers=None):
        field = np.asarray(field, dtype=np.float32)
        self.grid = Grid(field.shape, voxel_size, b0_dir, mask=None, pad=pad, workers=workers)
        self.workers = self.grid.workers
        self.voxel_size = self.grid.voxel_size
        self.shape = self.grid.shape
        self.slices = self.grid.inner
        self.mask = None if mask is None else np.asarray(mask, bool)
        # mask and zero-pad in one pass (no full-size temporaries)
        padded = np.zeros(self.shape, np.float32)
        if self.mask is None:
            padded[self.slices] = field
        else:
            np.multiply(field, self.mask, out=padded[self.slices])
        self.spectrum = scipy.fft.rfftn(padded, workers=self.workers, overwrite_x=True)
        self.d = self.grid.d

    @property
    def e2(self) -> np.ndarray:
        return self.grid.e2

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
