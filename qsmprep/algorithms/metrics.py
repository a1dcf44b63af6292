"""Accuracy metrics against ground truth, as defined by the QSM reconstruction challenge 2.0.

References
----------
* QSM Challenge 2.0 Organization Committee (Bilgic B, Langkammer C, Marques JP, Meineke J,
  Milovic C, Schweser F). "QSM reconstruction challenge 2.0: Design and report of results".
  Magn Reson Med 2021;86:1241-1255. doi:10.1002/mrm.28754
* Marques JP, Meineke J, Milovic C, et al. "QSM reconstruction challenge 2.0: A realistic
  in silico head phantom for MRI data simulation and evaluation of susceptibility mapping
  procedures". Magn Reson Med 2021;86:526-542. doi:10.1002/mrm.28716
* Langkammer C, et al. "Quantitative susceptibility mapping: report from the 2016
  reconstruction challenge". Magn Reson Med 2018;79:1661-1673 (RMSE, HFEN, SSIM as used there).
* Ravishankar S, Bresler Y. "MR image reconstruction from highly undersampled k-space data
  by dictionary learning". IEEE Trans Med Imaging 2011;30:1028-1041 (HFEN).
* Wang Z, Bovik AC, Sheikh HR, Simoncelli EP. "Image quality assessment: from error
  visibility to structural similarity". IEEE Trans Image Process 2004;13:600-612 (SSIM);
  Milovic C, et al., ISMRM 2022 (XSIM, the SSIM variant for susceptibility maps).

Conventions shared by every function here: ``recon``, ``truth`` and ``mask`` are arrays of
one shape; values are in ppm; only voxels where ``mask`` is true are compared (the filters
of :func:`hfen` and :func:`xsim` see the maps zeroed outside the mask, as the challenge
evaluated ``chi .* mask``). QSM is defined up to a constant, so the "demeaned" quantities
subtract each map's mean inside the mask first. Filter sizes are in voxels (not mm) to
match the challenge's definitions; the challenge data were isotropic. No metric has a
regularisation parameter (there is no lambda here).
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from scipy import ndimage

from .fft import default_workers

__all__ = [
    "nrmse",
    "demeaned_nrmse",
    "detrended_nrmse",
    "linear_fit",
    "correlation",
    "log_kernel",
    "hfen",
    "xsim",
    "xsim_map",
    "label_means",
]


def _masked(recon, truth, mask):
    m = np.asarray(mask, bool)
    r = np.asarray(recon, np.float64)
    t = np.asarray(truth, np.float64)
    if r.shape != t.shape or m.shape != t.shape:
        raise ValueError(f"shapes differ: recon {r.shape}, truth {t.shape}, mask {m.shape}")
    if not m.any():
        raise ValueError("the evaluation mask is empty")
    return r, t, m


def _demeaned_in_mask(x, m):
    """``x`` minus its mean inside ``m``, zero outside ``m`` (float64)."""
    return np.where(m, x - x[m].mean(), 0.0)


def nrmse(recon, truth, mask) -> float:
    """Normalised root-mean-square error in percent: ``100 ||r - t|| / ||t||`` over ``mask``."""
    r, t, m = _masked(recon, truth, mask)
    return float(100.0 * np.linalg.norm(r[m] - t[m]) / np.linalg.norm(t[m]))


def demeaned_nrmse(recon, truth, mask) -> float:
    """NRMSE (%) after subtracting each map's mean inside ``mask`` (challenge 2.0 "RMSE").

    ``100 ||(r - mean r) - (t - mean t)|| / ||t - mean t||``: invariant to a constant offset
    of either map, not to a scale error (2x the truth scores 100).
    """
    r, t, m = _masked(recon, truth, mask)
    rd = r[m] - r[m].mean()
    td = t[m] - t[m].mean()
    return float(100.0 * np.linalg.norm(rd - td) / np.linalg.norm(td))


def linear_fit(x, y) -> tuple[float, float, float]:
    """Least-squares line ``y ~ slope * x + intercept`` and Pearson ``r``.

    Returns ``(slope, intercept, r)``; all NaN when ``x`` has fewer than two distinct values
    (and ``r`` NaN when ``y`` is constant).
    """
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    if x.size < 2 or np.ptp(x) == 0:
        return float("nan"), float("nan"), float("nan")
    xd = x - x.mean()
    yd = y - y.mean()
    sxx = float(xd @ xd)
    syy = float(yd @ yd)
    sxy = float(xd @ yd)
    slope = sxy / sxx
    intercept = float(y.mean() - slope * x.mean())
    r = sxy / np.sqrt(sxx * syy) if syy > 0 else float("nan")
    return float(slope), intercept, float(r)


def detrended_nrmse(recon, truth, mask) -> float:
    """NRMSE (%) after removing the linear trend between ``recon`` and ``truth`` in ``mask``.

    As in the challenge 2.0 evaluation (Bilgic et al. 2021): regress the reconstruction on
    the truth inside the mask, ``r ~ a t + b``, correct it as ``(r - b) / a`` and score the
    corrected map against the truth with the demeaned NRMSE. This removes any global scale
    (e.g. over-regularisation shrinking contrast) and offset, leaving the error a linear
    recalibration cannot fix; it equals ``100 ||e|| / (|a| ||t - mean t||)`` with ``e`` the
    fit residual. Returns ``inf`` when the fitted slope is zero (a flat reconstruction).
    """
    r, t, m = _masked(recon, truth, mask)
    a, b, _ = linear_fit(t[m], r[m])
    if not np.isfinite(a):
        raise ValueError("the truth is constant inside the mask: no trend can be fitted")
    if a == 0:
        return float("inf")
    corrected = (r[m] - b) / a
    td = t[m] - t[m].mean()
    return float(100.0 * np.linalg.norm(corrected - t[m]) / np.linalg.norm(td))


def correlation(recon, truth, mask) -> float:
    """Pearson correlation coefficient between the maps inside ``mask``."""
    r, t, m = _masked(recon, truth, mask)
    return linear_fit(t[m], r[m])[2]


def log_kernel(sigma: float = 1.5, size: int = 15) -> np.ndarray:
    """The challenges' 3-D Laplacian-of-Gaussian kernel (``size``^3 voxels, ``sigma`` voxels).

    ``h = exp(-|x|^2 / 2 sigma^2)`` normalised to sum 1, ``H = h (|x|^2 / sigma^4 - 3 / sigma^2)``,
    then ``H`` minus its mean so it sums to exactly zero (a constant image filters to zero
    away from the borders), as in the 2016/2.0 challenge HFEN (Langkammer et al. 2018).
    """
    if size % 2 != 1:
        raise ValueError(f"the LoG kernel size must be odd, got {size}")
    half = size // 2
    ax = np.arange(-half, half + 1, dtype=np.float64)
    x, y, z = np.meshgrid(ax, ax, ax, indexing="ij")
    r2 = x * x + y * y + z * z
    h = np.exp(-r2 / (2.0 * sigma**2))
    h /= h.sum()
    kern = h * (r2 / sigma**4 - 3.0 / sigma**2)
    return kern - kern.mean()


def _convolve_same(images, kernel, workers):
    """Linear ('same', zero-padded) convolution of each 3-D image with ``kernel`` via FFT."""
    shape = images[0].shape
    k = np.asarray(kernel, np.float64)
    full = [n + kn - 1 for n, kn in zip(shape, k.shape)]
    fshape = [scipy.fft.next_fast_len(n, real=True) for n in full]
    kf = scipy.fft.rfftn(k, fshape, workers=workers)
    crop = tuple(slice(kn // 2, kn // 2 + n) for n, kn in zip(shape, k.shape))
    out = []
    for img in images:
        spec = scipy.fft.rfftn(img, fshape, workers=workers)
        spec *= kf
        out.append(scipy.fft.irfftn(spec, fshape, workers=workers)[crop])
    return out


def hfen(recon, truth, mask, *, sigma: float = 1.5, size: int = 15, demean: bool = True,
         workers: int | None = None) -> float:
    """High-frequency error norm in percent (Ravishankar & Bresler 2011; QSM challenges).

    Both maps are demeaned inside ``mask`` (``demean=True``, QSM is relative) and zeroed
    outside it, filtered with :func:`log_kernel` (``size``^3 voxels, ``sigma`` voxels;
    challenge defaults 15 and 1.5) with zero padding at the volume border, and scored as
    ``100 ||LoG(r) - LoG(t)|| / ||LoG(t)||`` over the whole volume (the filter spreads the
    mask's edge outside it, where the challenge code also summed). Computed with FFTs.
    """
    r, t, m = _masked(recon, truth, mask)
    if r.ndim != 3:
        raise ValueError(f"hfen expects 3-D maps, got {r.ndim}-D")
    if demean:
        r, t = _demeaned_in_mask(r, m), _demeaned_in_mask(t, m)
    else:
        r, t = np.where(m, r, 0.0), np.where(m, t, 0.0)
    workers = default_workers() if workers is None else workers
    diff_log, truth_log = _convolve_same([r - t, t], log_kernel(sigma, size), workers)
    return float(100.0 * np.linalg.norm(diff_log) / np.linalg.norm(truth_log))


def xsim_map(recon, truth, mask, *, k1: float = 0.01, k2: float = 0.001,
             dynamic_range: float = 1.0, sigma: float = 1.5, radius: int = 3,
             demean: bool = True) -> np.ndarray:
    """The local SSIM map behind :func:`xsim` (same arguments), defined on the whole grid."""
    r, t, m = _masked(recon, truth, mask)
    if demean:
        r, t = _demeaned_in_mask(r, m), _demeaned_in_mask(t, m)
    else:
        r, t = np.where(m, r, 0.0), np.where(m, t, 0.0)
    ax = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-ax * ax / (2.0 * sigma**2))
    w /= w.sum()  # the normalised 3-D Gaussian window is the outer product of these

    def smooth(x):
        for axis in range(x.ndim):
            x = ndimage.correlate1d(x, w, axis=axis, mode="constant", cval=0.0)
        return x

    c1 = (k1 * dynamic_range) ** 2
    c2 = (k2 * dynamic_range) ** 2
    mu_r, mu_t = smooth(r), smooth(t)
    var_r = smooth(r * r) - mu_r * mu_r
    var_t = smooth(t * t) - mu_t * mu_t
    cov = smooth(r * t) - mu_r * mu_t
    return ((2 * mu_r * mu_t + c1) * (2 * cov + c2)
            / ((mu_r * mu_r + mu_t * mu_t + c1) * (var_r + var_t + c2)))


def xsim(recon, truth, mask, *, k1: float = 0.01, k2: float = 0.001, dynamic_range: float = 1.0,
         sigma: float = 1.5, radius: int = 3, demean: bool = True) -> float:
    """XSIM: the SSIM variant of the QSM challenge 2.0 (Milovic et al.; Bilgic et al. 2021).

    SSIM (Wang et al. 2004) with the changes the challenge made for susceptibility maps:
    the maps stay in ppm (no rescaling or clipping to [0, 255]), ``L = dynamic_range = 1``
    ppm, ``K1 = 0.01``, ``K2 = 0.001`` (a small K2 makes the structure term sensitive to
    streaking), local statistics from a Gaussian window of ``sigma = 1.5`` voxels truncated
    to ``(2 radius + 1)^3 = 7^3`` voxels and normalised, applied to the maps zeroed outside
    ``mask`` with zero padding at the border ('same' convolution); the SSIM map
    (:func:`xsim_map`) is averaged over ``mask``. Both maps are first demeaned inside the
    mask (``demean=True``). Identical maps score 1.
    """
    smap = xsim_map(recon, truth, mask, k1=k1, k2=k2, dynamic_range=dynamic_range,
                    sigma=sigma, radius=radius, demean=demean)
    return float(smap[np.asarray(mask, bool)].mean())


def label_means(image, labels, mask, *, min_voxels: int = 1) -> dict[int, tuple[float, int]]:
    """Mean of ``image`` in each non-zero label inside ``mask``: ``{label: (mean, n_voxels)}``.

    Labels with fewer than ``min_voxels`` voxels inside the mask are left out. Label 0 is
    background by the BIDS dseg convention and never reported.
    """
    img = np.asarray(image, np.float64)
    lab = np.asarray(labels)
    m = np.asarray(mask, bool)
    if img.shape != lab.shape or m.shape != img.shape:
        raise ValueError(f"shapes differ: image {img.shape}, labels {lab.shape}, mask {m.shape}")
    if not np.issubdtype(lab.dtype, np.integer):
        rounded = np.rint(lab)
        if not np.array_equal(rounded, lab):
            raise ValueError("the label image holds non-integer values")
        lab = rounded
    lab = lab.astype(np.int64)
    sel = m & (lab != 0)
    ids, inverse = np.unique(lab[sel], return_inverse=True)
    counts = np.bincount(inverse, minlength=ids.size)
    sums = np.bincount(inverse, weights=img[sel], minlength=ids.size)
    return {int(k): (float(s / n), int(n)) for k, s, n in zip(ids, sums, counts)
            if n >= min_voxels}
