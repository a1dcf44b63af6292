"""Property-based tests (hypothesis) of the algorithm functions: finite outputs for finite
inputs, shapes and dtypes kept, invariance to a global phase offset and to 2 pi wraps,
linearity where the method is linear, and symmetry under an axis flip with the B0
direction flipped."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from qsmprep.algorithms.background.sharp import vsharp
from qsmprep.algorithms.dipole import forward_field
from qsmprep.algorithms.echoes.echofit import fit_field
from qsmprep.algorithms.inversion.direct import closed_form_l2, tkd
from qsmprep.algorithms.phase import wrap

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
SHAPES = st.tuples(*[st.integers(6, 14)] * 3)
VOXELS = st.tuples(*[st.floats(0.5, 3.0)] * 3)
FINITE = st.floats(-1.0, 1.0, width=32, allow_nan=False, allow_infinity=False)


@st.composite
def b0_dirs(draw):
    v = np.array([draw(st.floats(-1, 1)) for _ in range(3)], float)
    if np.linalg.norm(v) < 0.1:
        v = np.array([0.0, 0.0, 1.0])
    return tuple(v / np.linalg.norm(v))


@st.composite
def volumes(draw, n=1):
    shape = draw(SHAPES)
    return [draw(arrays(np.float32, shape, elements=FINITE)) for _ in range(n)]


def _close(a, b, scale):
    np.testing.assert_allclose(a, b, rtol=0, atol=2e-4 * max(scale, 1e-6))


@SETTINGS
@given(volumes(2), VOXELS, b0_dirs(), st.floats(-3, 3), st.floats(-3, 3))
def test_linear_methods_are_linear(vols, vs, b0, a, b):
    x, y = vols
    combo = (a * x + b * y).astype(np.float32)
    for f in (lambda v: forward_field(v, vs, b0),
              lambda v: tkd(v, vs, b0),
              lambda v: closed_form_l2(v, vs, b0, lam=0.05)):
        fx, fy, fc = f(x), f(y), f(combo)
        assert fc.shape == x.shape and fc.dtype == np.float32 and np.isfinite(fc).all()
        _close(fc, a * fx + b * fy, np.abs(a * fx).max() + np.abs(b * fy).max())


@SETTINGS
@given(volumes(1), VOXELS, b0_dirs(), st.integers(0, 2))
def test_axis_flip_with_b0_flipped(vols, vs, b0, axis):
    (chi,) = vols
    flipped_b0 = list(b0)
    flipped_b0[axis] = -flipped_b0[axis]
    # the padded grid is periodic: a flip is a reflection plus a one-voxel shift, which
    # commutes with the convolution; zero padding on both sides keeps sources apart
    direct = np.flip(forward_field(chi, vs, b0), axis)
    mirrored = forward_field(np.ascontiguousarray(np.flip(chi, axis)), vs, tuple(flipped_b0))
    _close(mirrored, direct, np.abs(direct).max())


@SETTINGS
@given(volumes(1), st.integers(-5, 5))
def test_wrap_range_and_2pi_invariance(vols, k):
    (p,) = vols
    p = p * np.float32(10)
    w = wrap(p)
    assert w.dtype == np.float32 and w.shape == p.shape
    assert (w >= -np.pi).all() and (w < np.pi + 1e-6).all()
    d = wrap(w - wrap(p + np.float32(2 * np.pi * k)))  # equal modulo float32 rounding
    assert np.abs(d).max() < 1e-4


@SETTINGS
@given(st.integers(2, 5), st.floats(-3, 3), st.integers(-3, 3), st.integers(0, 2 ** 31 - 1))
def test_field_fit_ignores_a_global_offset_and_whole_wraps(n_echoes, offset, k, seed):
    rng = np.random.default_rng(seed)
    shape = (6, 7, 5)
    te = np.cumsum(rng.uniform(0.002, 0.008, n_echoes))
    field_rad_s = rng.uniform(-300, 300, shape)
    phase = field_rad_s[..., None] * te + rng.normal(0, 0.01, shape + (n_echoes,))
    mag = rng.uniform(0.5, 1.0, shape + (n_echoes,)).astype(np.float32)
    base = fit_field(phase.astype(np.float32), mag, te, 3.0)
    moved = fit_field((phase + offset + 2 * np.pi * k).astype(np.float32), mag, te, 3.0)
    assert base.field_ppm.shape == shape and np.isfinite(base.field_ppm).all()
    _close(moved.field_ppm, base.field_ppm, np.abs(base.field_ppm).max() * 5)


@SETTINGS
@given(volumes(1), st.sampled_from([(1.0, 1.0, 1.0), (1.0, 1.0, 2.0)]))
def test_vsharp_finite_and_shapes(vols, vs):
    (field,) = vols
    mask = np.zeros(field.shape, bool)
    mask[1:-1, 1:-1, 1:-1] = True
    local, local_mask = vsharp(field, mask, vs, radii_mm=(2.0, 1.0))
    assert local.shape == field.shape and local.dtype == np.float32
    assert np.isfinite(local).all() and local_mask.shape == field.shape
    assert not local[~local_mask].any()
