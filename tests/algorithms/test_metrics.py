"""QSM-challenge metrics on hand-computed cases and against straightforward re-implementations."""

from __future__ import annotations

import numpy as np
import pytest

from qsmprep.algorithms.metrics import (
    correlation,
    demeaned_nrmse,
    detrended_nrmse,
    hfen,
    label_means,
    linear_fit,
    log_kernel,
    nrmse,
    xsim,
    xsim_map,
)
from qsmprep.algorithms.reference import reference_to_mask_mean

TRUTH = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
MASK = np.array([True, True, True, True, False])  # the last value is outside


def test_nrmse_hand_computed():
    recon = np.array([1.0, 2.0, 3.0, 5.0, -7.0])
    # ||(0, 0, 0, 1)|| / ||(1, 2, 3, 4)|| = 1 / sqrt(30)
    assert nrmse(recon, TRUTH, MASK) == pytest.approx(100 / np.sqrt(30))
    assert nrmse(TRUTH, TRUTH, MASK) == 0.0
    assert nrmse(np.zeros(5), TRUTH, MASK) == pytest.approx(100.0)
    assert nrmse(-TRUTH, TRUTH, MASK) == pytest.approx(200.0)


def test_demeaned_nrmse_ignores_offsets_but_not_scale():
    # truth demeaned in the mask: (-1.5, -0.5, 0.5, 1.5), norm sqrt(5)
    assert demeaned_nrmse(TRUTH + 0.7, TRUTH, MASK) == pytest.approx(0.0, abs=1e-12)
    assert nrmse(TRUTH + 0.7, TRUTH, MASK) == pytest.approx(100 * 0.7 * 2 / np.sqrt(30))
    # 2x scale: error (-1.5, -0.5, 0.5, 1.5) -> 100%
    assert demeaned_nrmse(2 * TRUTH, TRUTH, MASK) == pytest.approx(100.0)
    recon = np.array([1.0, 2.0, 3.0, 5.0, 0.0])  # demeaned (-1.75, -0.75, 0.25, 2.25)
    # error (-0.25, -0.25, -0.25, 0.75): norm sqrt(0.75) -> 100 sqrt(0.75 / 5)
    assert demeaned_nrmse(recon, TRUTH, MASK) == pytest.approx(100 * np.sqrt(0.75 / 5))


def test_detrended_nrmse_removes_scale_and_offset():
    # a scaled and shifted map is perfect after the linear correction, not before
    assert detrended_nrmse(0.6 * TRUTH - 0.3, TRUTH, MASK) == pytest.approx(0.0, abs=1e-12)
    assert demeaned_nrmse(0.6 * TRUTH - 0.3, TRUTH, MASK) == pytest.approx(40.0)
    # recon (1, 2, 3, 5) on truth (1, 2, 3, 4): slope 6.5 / 5 = 1.3, offset 2.75 - 1.3 * 2.5
    # = -0.5, residual (0.2, -0.1, -0.4, 0.3) with norm sqrt(0.3); corrected error = e / 1.3
    recon = np.array([1.0, 2.0, 3.0, 5.0, 9.0])
    expected = 100 * np.sqrt(0.3) / 1.3 / np.sqrt(5)
    assert detrended_nrmse(recon, TRUTH, MASK) == pytest.approx(expected)
    assert detrended_nrmse(np.full(5, 0.2), TRUTH, MASK) == np.inf  # flat: slope 0
    with pytest.raises(ValueError):
        detrended_nrmse(TRUTH, np.ones(5), MASK)


def test_linear_fit_hand_computed():
    # points (0, 0), (1, 1), (2, 3): sxx 2, sxy 3, syy 42/9
    slope, intercept, r = linear_fit([0, 1, 2], [0, 1, 3])
    assert slope == pytest.approx(1.5)
    assert intercept == pytest.approx(4 / 3 - 1.5)
    assert r == pytest.approx(3 / np.sqrt(2 * 42 / 9))
    assert linear_fit([1, 2, 4], [0.8 * v + 0.01 for v in (1, 2, 4)]) == pytest.approx(
        (0.8, 0.01, 1.0))
    assert all(np.isnan(v) for v in linear_fit([1.0, 1.0], [2.0, 3.0]))


def test_correlation_hand_computed():
    assert correlation(3 * TRUTH - 2, TRUTH, MASK) == pytest.approx(1.0)
    assert correlation(-TRUTH, TRUTH, MASK) == pytest.approx(-1.0)
    recon = np.array([1.0, 3.0, 2.0, 4.0, 0.0])
    # demeaned (-1.5, 0.5, -0.5, 1.5) . (-1.5, -0.5, 0.5, 1.5) = 4 over 5
    assert correlation(recon, TRUTH, MASK) == pytest.approx(0.8)


def test_metrics_on_3d_arrays_use_only_the_mask():
    rng = np.random.default_rng(0)
    truth = rng.standard_normal((6, 5, 4))
    mask = truth > -0.5
    recon = np.where(mask, truth, 1e6)
    assert nrmse(recon, truth, mask) == 0.0
    assert correlation(recon, truth, mask) == pytest.approx(1.0)
    assert hfen(recon, truth, mask) == 0.0
    assert xsim(recon, truth, mask) == 1.0


def _blobs(shape=(12, 13, 11), seed=1):
    """Smooth-ish random map (ppm scale) and an irregular mask for the filter metrics."""
    rng = np.random.default_rng(seed)
    x = 0.05 * rng.standard_normal(shape)
    x[3:8, 4:9, 3:7] += 0.1
    zz, yy, xx = np.indices(shape)
    mask = ((zz - 6) ** 2 / 30 + (yy - 6) ** 2 / 30 + (xx - 5) ** 2 / 20) < 1
    return x, mask


def _reference_log_kernel(sigma=1.5, size=15):
    """LoG exactly as written in the challenge code, element by element."""
    half = size // 2
    kern = np.zeros((size, size, size))
    g = np.zeros((size, size, size))
    for i in range(size):
        for j in range(size):
            for k in range(size):
                r2 = (i - half) ** 2 + (j - half) ** 2 + (k - half) ** 2
                g[i, j, k] = np.exp(-r2 / (2 * sigma**2))
    g /= g.sum()
    for i in range(size):
        for j in range(size):
            for k in range(size):
                r2 = (i - half) ** 2 + (j - half) ** 2 + (k - half) ** 2
                kern[i, j, k] = g[i, j, k] * (r2 / sigma**4 - 3 / sigma**2)
    return kern - kern.mean()


def _direct_same_convolution(img, kern):
    """'same' convolution with zero padding by explicit shifts (no FFT)."""
    h = kern.shape[0] // 2
    padded = np.pad(img, h)
    out = np.zeros_like(img)
    n0, n1, n2 = img.shape
    for i in range(kern.shape[0]):
        for j in range(kern.shape[1]):
            for k in range(kern.shape[2]):
                # convolution flips the kernel; it is symmetric, but do it properly anyway
                w = kern[kern.shape[0] - 1 - i, kern.shape[1] - 1 - j, kern.shape[2] - 1 - k]
                out += w * padded[i:i + n0, j:j + n1, k:k + n2]
    return out


def test_log_kernel_matches_the_challenge_definition():
    kern = log_kernel(1.5, 15)
    assert kern.shape == (15, 15, 15)
    np.testing.assert_allclose(kern, _reference_log_kernel(), rtol=0, atol=1e-15)
    assert abs(kern.sum()) < 1e-12
    with pytest.raises(ValueError):
        log_kernel(1.5, 14)


def test_hfen_closed_forms_and_direct_implementation():
    truth, mask = _blobs()
    assert hfen(truth, truth, mask) == 0.0
    # LoG is linear: recon = 2 truth leaves LoG(truth) as the error -> exactly 100 %
    assert hfen(2 * truth, truth, mask) == pytest.approx(100.0)
    assert hfen(-truth, truth, mask) == pytest.approx(200.0)
    # a constant offset vanishes with demeaning, not without
    assert hfen(truth + 0.3, truth, mask) == pytest.approx(0.0, abs=1e-9)
    assert hfen(truth + 0.3, truth, mask, demean=False) > 100  # measured 549: the mask edge
    # against an explicit-shift convolution with the element-by-element kernel
    recon = truth + 0.03 * np.random.default_rng(7).standard_normal(truth.shape)
    kern = _reference_log_kernel()
    m = mask
    rd = np.where(m, recon - recon[m].mean(), 0)
    td = np.where(m, truth - truth[m].mean(), 0)
    lr, lt = _direct_same_convolution(rd, kern), _direct_same_convolution(td, kern)
    expected = 100 * np.linalg.norm(lr - lt) / np.linalg.norm(lt)
    assert hfen(recon, truth, mask) == pytest.approx(expected, rel=1e-9)


def _direct_xsim(recon, truth, mask, k1=0.01, k2=0.001, L=1.0, sigma=1.5, radius=3):
    """SSIM with a full 3-D Gaussian window by explicit shifts; returns the map."""
    m = mask
    r = np.where(m, recon - recon[m].mean(), 0)
    t = np.where(m, truth - truth[m].mean(), 0)
    size = 2 * radius + 1
    win = np.zeros((size,) * 3)
    for i in range(size):
        for j in range(size):
            for k in range(size):
                win[i, j, k] = np.exp(-((i - radius) ** 2 + (j - radius) ** 2 + (k - radius) ** 2)
                                      / (2 * sigma**2))
    win /= win.sum()
    mu_r, mu_t = _direct_same_convolution(r, win), _direct_same_convolution(t, win)
    s_rr = _direct_same_convolution(r * r, win) - mu_r**2
    s_tt = _direct_same_convolution(t * t, win) - mu_t**2
    s_rt = _direct_same_convolution(r * t, win) - mu_r * mu_t
    c1, c2 = (k1 * L) ** 2, (k2 * L) ** 2
    return ((2 * mu_r * mu_t + c1) * (2 * s_rt + c2)) / ((mu_r**2 + mu_t**2 + c1) * (s_rr + s_tt + c2))


def test_xsim_against_direct_implementation():
    truth, mask = _blobs()
    recon = 0.7 * truth + 0.02 * np.random.default_rng(3).standard_normal(truth.shape)
    expected = float(_direct_xsim(recon, truth, mask)[mask].mean())
    value = xsim(recon, truth, mask)
    assert value == pytest.approx(expected, rel=1e-9)
    assert 0.75 < value < 0.95  # measured 0.847: 0.7x scale plus noise
    assert xsim(truth, recon, mask) == pytest.approx(value, rel=1e-12)  # symmetric
    assert xsim(truth + 5.0, truth, mask) == pytest.approx(1.0)  # offset removed by demeaning
    assert xsim(-truth, truth, mask) < 0  # anti-correlated structure; measured -0.120


def test_xsim_closed_form_at_the_centre_of_constant_maps():
    # 7^3 volume, constant maps a and b, no demeaning: the centre voxel's 7^3 window lies
    # fully inside, so mu = (a, b) and the (co)variances vanish:
    # SSIM = (2ab + C1) C2 / ((a^2 + b^2 + C1) C2) = (2ab + C1) / (a^2 + b^2 + C1)
    a, b = 0.1, 0.05
    full = np.ones((7, 7, 7), bool)
    r, t = np.full((7, 7, 7), a), np.full((7, 7, 7), b)
    smap = xsim_map(r, t, full, demean=False)
    c1 = 0.01**2
    assert smap[3, 3, 3] == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-9)
    assert xsim(r, t, full, demean=False) == pytest.approx(smap.mean())
    assert xsim(r, r, full, demean=False) == 1.0


def test_label_means_exact_on_a_constructed_layout():
    labels = np.zeros((4, 4, 4), np.int16)
    labels[:2] = 1
    labels[2:, :2] = 2
    labels[2:, 2:, :1] = 3  # 2 x 2 x 1 = 4 voxels
    image = np.where(labels == 1, 0.1, 0.0) + np.where(labels == 2, -0.02, 0.0)
    image[labels == 3] = [0.3, 0.5, 0.7, 0.9]
    mask = np.ones((4, 4, 4), bool)
    mask[0, 0, 0] = False  # one voxel of label 1 outside
    out = label_means(image, labels, mask)
    assert out[1] == pytest.approx((0.1, 31))
    assert out[2] == pytest.approx((-0.02, 16))
    assert out[3] == pytest.approx((0.6, 4))
    assert 0 not in out  # background (label 0 is absent here, and never reported)
    assert set(label_means(image, labels, mask, min_voxels=5)) == {1, 2}
    with pytest.raises(ValueError):
        label_means(image, labels + 0.5, mask)


def test_reference_to_mask_mean():
    chi = np.array([1.0, 2.0, 3.0, 50.0], np.float32)
    m = np.array([True, True, True, False])
    out = reference_to_mask_mean(chi, m)
    np.testing.assert_allclose(out, [-1.0, 0.0, 1.0, 0.0])
    assert out.dtype == np.float32
    with pytest.raises(ValueError):
        reference_to_mask_mean(chi, np.zeros(4, bool))
