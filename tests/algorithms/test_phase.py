"""Phase scaling to radians and unit conversions."""

from __future__ import annotations

import numpy as np
import pytest

from qsmprep.algorithms.phase import (GAMMA_BAR_HZ_PER_T, hz_to_ppm, ppm_to_hz, rad_per_s_to_ppm,
                                      rescale_phase, wrap)

PI32 = float(np.float32(np.pi))  # the float32 nearest pi (just above pi)


def angular_diff(a, b):
    """|a - b| modulo 2 pi, in [0, pi]."""
    d = np.abs((np.asarray(a, np.float64) - b + np.pi) % (2 * np.pi) - np.pi)
    return d


def true_phase(shape=(12, 10, 8), seed=0):
    return np.random.default_rng(seed).uniform(-np.pi, np.pi, shape)


def assert_in_range(x):
    assert x.dtype == np.float32
    assert x.min() >= -PI32 and x.max() <= PI32


def test_radians_pass_through():
    rad = true_phase()
    out, msg = rescale_phase(rad)
    assert "radians" in msg
    np.testing.assert_allclose(out, rad, atol=1e-6)
    assert_in_range(out)


def test_radians_slightly_out_of_range_are_wrapped_not_rescaled():
    rad = np.array([-np.pi, -1.0, 0.0, 1.0, np.pi, np.pi + 0.01], np.float64)
    out, _ = rescale_phase(rad)
    assert out[4] == pytest.approx(-np.pi, abs=1e-6)  # [-pi, pi): +pi maps to -pi
    assert out[5] == pytest.approx(-np.pi + 0.01, abs=1e-6)
    np.testing.assert_allclose(out[1:4], [-1, 0, 1], atol=1e-7)


def test_unsigned_12bit_phase():
    """Siemens-style 0..4095 integers: value v encodes -pi + 2 pi v / 4096."""
    rad = true_phase()
    rad.flat[:2] = [-np.pi, np.pi - 2 * np.pi / 4096]  # both ends of the range present
    ints = np.clip(np.round((rad + np.pi) / (2 * np.pi) * 4096), 0, 4095).astype(np.uint16)
    assert ints.min() == 0 and ints.max() == 4095
    out, msg = rescale_phase(ints)
    assert "4096" in msg
    assert_in_range(out)
    # quantisation step 2 pi / 4096 = 1.5e-3 rad: error at most half a step
    assert angular_diff(out, rad).max() <= np.pi / 4096 + 1e-6
    np.testing.assert_allclose(out.flat[:2], [-np.pi, np.pi - 2 * np.pi / 4096], atol=1e-6)


def test_signed_phase():
    """-4096..4095 integers: value v encodes pi v / 4096."""
    rad = true_phase(seed=1)
    rad.flat[:2] = [-np.pi, np.pi - np.pi / 4096]
    ints = np.clip(np.round(rad / np.pi * 4096), -4096, 4095).astype(np.int16)
    out, msg = rescale_phase(ints)
    assert "4096" in msg
    assert_in_range(out)
    assert angular_diff(out, rad).max() <= np.pi / 8192 + 1e-6
    # the sign is kept: positive integers are positive radians
    assert np.all(np.sign(out[np.abs(ints) > 2]) == np.sign(ints[np.abs(ints) > 2]))


def test_float_scaled_phase_and_nan():
    """Non-integer [0, 4096) data (e.g. interpolated), top value above 4095: still the
    [0, 4096) range (before the fix in phase.py such data was read as [0, 8192))."""
    rad = true_phase(seed=2)
    rad[0, 0, 1] = np.pi - 0.25 * 2 * np.pi / 4096  # encodes 4095.75
    scaled = ((rad + np.pi) / (2 * np.pi) * 4096).astype(np.float32)  # non-integer values
    assert scaled.max() > 4095
    scaled[0, 0, 0] = np.nan
    out, _ = rescale_phase(scaled)
    assert np.isfinite(out).all()
    good = np.ones(rad.shape, bool)
    good[0, 0, 0] = False
    assert angular_diff(out[good], rad[good]).max() < 1e-5


def test_empty_phase_rejected():
    with pytest.raises(ValueError):
        rescale_phase(np.full((2, 2), np.nan))


def test_wrap_range_and_congruence():
    x = np.linspace(-40, 40, 10001)
    w = wrap(x)
    assert_in_range(w)
    k = (x - w) / (2 * np.pi)
    np.testing.assert_allclose(k, np.round(k), atol=1e-5)  # differs by whole turns
    assert wrap(np.pi) == pytest.approx(-np.pi, abs=1e-6)
    assert wrap(-np.pi) == pytest.approx(-np.pi, abs=1e-6)


def test_unit_conversions():
    assert GAMMA_BAR_HZ_PER_T == pytest.approx(42.577478e6)
    # 1 ppm at 3 T is 127.73 Hz
    assert ppm_to_hz(1.0, 3.0) == pytest.approx(127.732434, rel=1e-6)
    assert hz_to_ppm(127.732434, 3.0) == pytest.approx(1.0, rel=1e-6)
    assert rad_per_s_to_ppm(2 * np.pi * 127.732434, 3.0) == pytest.approx(1.0, rel=1e-6)
    assert hz_to_ppm(ppm_to_hz(0.37, 7.0), 7.0) == pytest.approx(0.37)
