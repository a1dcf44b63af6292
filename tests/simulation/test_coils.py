"""Simulated coil sensitivities (qsmprep.simulation.coils)."""

from __future__ import annotations

import numpy as np
import pytest

from qsmprep.simulation.coils import (_loop_field, body_coil_sensitivity, channel_noise_sigma,
                                      coil_sensitivities, multichannel_signal)

SHAPE = (40, 48, 32)
VOXEL = (4.0, 4.0, 5.0)


@pytest.fixture(scope="module")
def sens():
    return coil_sensitivities(SHAPE, VOXEL, 8, seed=3)


def test_biot_savart_on_axis_matches_analytic():
    # unit-current loop of radius 30 mm in the z=0 plane: B_z(z) = 2 pi R^2 / (R^2 + z^2)^1.5
    # (mu0 / 4 pi = 1); the 48-segment polygon is within 0.5% of it
    z = np.linspace(-60, 60, 7)
    pts = np.stack([np.zeros_like(z), np.zeros_like(z), z], 1)
    b = _loop_field(pts, np.zeros(3), np.array([0.0, 0.0, 1.0]), 30.0)
    exact = 2 * np.pi * 30.0**2 / (30.0**2 + z**2) ** 1.5
    assert np.allclose(np.abs(b[:, 2]), exact, rtol=5e-3)  # measured 0.36% max (at the centre)
    assert np.abs(b[:, :2]).max() < 1e-6 * exact.max()


def test_shape_dtype_seed_and_normalisation(sens):
    assert sens.shape == (8,) + SHAPE and sens.dtype == np.complex64
    again = coil_sensitivities(SHAPE, VOXEL, 8, seed=3)
    assert np.array_equal(sens, again)
    other = coil_sensitivities(SHAPE, VOXEL, 8, seed=4)
    assert np.allclose(np.abs(other), np.abs(sens), rtol=1e-4)   # same loops ...
    assert not np.allclose(np.angle(other[0]), np.angle(sens[0]))  # ... other cable phases
    rss = np.sqrt(np.sum(np.abs(sens) ** 2, 0))
    centre = rss[15:25, 19:29, 12:20]
    assert 0.5 < float(centre.mean()) < 1.5                    # measured 0.88
    # loops differ: each channel is brightest on its own side of the field of view
    peaks = {np.unravel_index(np.argmax(np.abs(s)), SHAPE) for s in sens}
    assert len(peaks) >= 6


def test_sensitivities_are_smooth_inside(sens):
    inner = (slice(None), slice(8, 32), slice(10, 38), slice(6, 26))
    s = sens[inner]
    step = np.abs(np.angle(s[:, 1:] * np.conj(s[:, :-1])))
    assert step.max() < 0.15   # rad per 4 mm voxel; measured 0.089
    ratio = np.abs(s[:, 1:]) / np.abs(s[:, :-1])
    assert np.abs(np.log(ratio)).max() < 0.3   # measured 0.117


def test_body_coil_near_uniform():
    b = body_coil_sensitivity(SHAPE, VOXEL)
    assert b.shape == SHAPE and b.dtype == np.complex64
    assert 0.8 < np.abs(b).min() and np.abs(b).max() <= 1.0
    assert np.ptp(np.angle(b)) < 2.0
    assert np.abs(np.angle(b[1:] * np.conj(b[:-1]))).max() < 0.05


def test_multichannel_signal_and_noise(sens):
    rho = np.exp(1j * np.linspace(0, 3, np.prod(SHAPE))).reshape(SHAPE).astype(np.complex64)
    sig4 = np.stack([rho, 0.5 * rho], -1)
    clean = multichannel_signal(sig4, sens)
    assert clean.shape == (2, 8) + SHAPE and clean.dtype == np.complex64
    assert np.allclose(clean[1, 3], 0.5 * sens[3] * rho, atol=1e-6)
    one = multichannel_signal(rho, sens, noise_sigma=0.1, seed=1)
    assert one.shape == (8,) + SHAPE
    resid = one - sens * rho
    assert abs(float(resid.real.std()) - 0.1) < 0.005 and abs(float(resid.imag.std()) - 0.1) < 0.005
    mask = np.ones(SHAPE, bool)
    sigma = channel_noise_sigma(sig4, sens, mask, snr=50)
    rss = np.sqrt(np.sum(np.abs(sens) ** 2, 0))
    assert np.isclose(np.mean(np.abs(rho) * rss) / sigma, 50, rtol=1e-4)
