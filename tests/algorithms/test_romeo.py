"""ROMEO-like quality-guided unwrapping: exactness on noiseless data, robustness to noise,
disconnected components, masks and anisotropic voxels."""

from __future__ import annotations

import numpy as np
import pytest

from qsmprep.algorithms.phase import GAMMA_BAR_HZ_PER_T, wrap
from qsmprep.algorithms.unwrap.romeo import edge_quality, mst_unwrap, romeo_unwrap

TWO_PI = 2 * np.pi
B0_T = 3.0
PPM_TO_RAD_PER_S = TWO_PI * GAMMA_BAR_HZ_PER_T * B0_T * 1e-6
TE = np.array([4e-3, 8e-3, 12e-3, 16e-3])


def _grid(shape, vs):
    return np.meshgrid(*[(np.arange(n) - (n - 1) / 2) * h for n, h in zip(shape, vs)],
                       indexing="ij", sparse=True)


def two_blob_phantom(sigma=0.0, seed=0, vs=(2.0, 2.0, 3.0)):
    """Two disjoint ellipsoids (mm) with a steep smooth field, a phase offset, magnitude with
    R2* decay; the mask has two components. Returns truth and wrapped data."""
    shape = (48, 44, 28)
    x, y, z = _grid(shape, vs)
    big = (x + 12) ** 2 / 30.0**2 + y**2 / 34.0**2 + z**2 / 34.0**2 <= 1
    small = (x - 33) ** 2 + y**2 + z**2 <= 10.0**2
    mask = big | small
    # field (ppm): 2.4 ppm bump, a linear ramp, and a -0.6 ppm dip in the small blob
    field = (2.4 * np.exp(-((x + 10) ** 2 + y**2 + z**2) / (2 * 11.0**2)) + 0.012 * x
             - 0.6 * np.exp(-((x - 33) ** 2 + y**2 + z**2) / (2 * 7.0**2)))
    offset = 0.9 + 0.8 * np.sin(x / 25.0) * np.cos(y / 30.0)
    truth = offset[..., None] + (field * PPM_TO_RAD_PER_S)[..., None] * TE
    m0 = 1.0 + 0.4 * np.cos(y / 20.0) * np.ones(shape)
    sig = m0[..., None] * np.exp(-25.0 * TE) * np.exp(1j * truth)
    if sigma:
        rng = np.random.default_rng(seed)
        sig = sig + sigma * (rng.standard_normal(sig.shape) + 1j * rng.standard_normal(sig.shape))
    return dict(vs=vs, mask=mask, big=big, small=small, truth=np.broadcast_to(truth, shape + (4,)),
                phase=np.angle(sig).astype(np.float32), mag=np.abs(sig).astype(np.float32))


def _turns(unwrapped, truth, mask):
    k = (unwrapped - truth)[mask] / TWO_PI
    return k


def test_template_mode_exact_on_noiseless_data_with_two_components():
    d = two_blob_phantom()
    last = d["truth"][..., -1]
    steps = [np.abs(np.diff(last, axis=a))[(d["mask"][tuple(slice(0, -1) if i == a else slice(None)
                                                               for i in range(3))])].max()
             for a in range(3)]
    assert max(steps) > 4.0  # echo 4 has steps beyond pi: not spatially unwrappable (4.5 rad)
    u = romeo_unwrap(d["phase"], TE, d["mag"], d["mask"])
    assert u.shape == d["phase"].shape and u.dtype == np.float32
    k = _turns(u, d["truth"], d["mask"])
    # congruent with the truth in every voxel, every echo (float32 rounding only) ...
    np.testing.assert_allclose(k, np.round(k), atol=1e-4)
    # ... and exact: one global 2 pi k = 0 in both components (TE = 0 referencing)
    assert np.all(np.round(k) == 0)
    # outside the mask: the input, untouched
    np.testing.assert_array_equal(u[~d["mask"]], d["phase"][~d["mask"]])


def test_single_echo_exact_per_component_and_referenced_to_the_largest():
    d = two_blob_phantom()
    p, truth = d["phase"][..., 1], d["truth"][..., 1]
    u = romeo_unwrap(p, magnitudes=d["mag"][..., 1], mask=d["mask"])
    for comp in (d["big"], d["small"]):
        k = (u - truth)[comp] / TWO_PI
        np.testing.assert_allclose(k, k[0], atol=1e-4)  # exact up to one 2 pi k per component
    # the largest component's median is put in [-pi, pi)
    assert -np.pi <= np.median(u[d["big"]]) < np.pi
    # the small one is placed nearest the large one's median (within half a turn)
    assert abs(np.median(u[d["small"]]) - np.median(u[d["big"]])) <= np.pi


def test_snr50_nearly_exact():
    d = two_blob_phantom(sigma=0.02, seed=4)  # SNR 50 at TE = 0 (m0 = 1), ~40 at echo 4
    u = romeo_unwrap(d["phase"], TE, d["mag"], d["mask"])
    k = np.round(_turns(u, d["truth"], d["mask"]))
    wrong = float(np.mean(k != 0))
    assert wrong < 1e-3, wrong  # measured 0.0 (12 448 voxels x 4 echoes)


def test_exact_and_coarse_spanning_trees_agree_at_snr20():
    d = two_blob_phantom(sigma=0.05, seed=5)  # SNR 20 at TE = 0
    res = {}
    for frac in (0.0, 0.5):
        u = romeo_unwrap(d["phase"], TE, d["mag"], d["mask"], coarse_fraction=frac)
        res[frac] = float(np.mean(np.round(_turns(u, d["truth"], d["mask"])) != 0))
    assert res[0.0] < 5e-3 and res[0.5] < 5e-3, res  # measured 0.0 / 0.0


def test_quality_guides_the_path_around_a_noisy_slab():
    """A slab of pure noise splits a smooth region except through a clean bridge. Uniform
    weights route through noise and corrupt the far side; the quality weights do not."""
    shape, vs = (40, 40, 16), (2.0, 2.0, 2.0)
    x, y, z = _grid(shape, vs)
    truth = np.broadcast_to(0.25 * x + 0.1 * y, shape).astype(np.float32)  # 0.5 rad/voxel in x
    rng = np.random.default_rng(0)
    noisy = np.broadcast_to((np.abs(x) < 6) & (y < 20), shape)  # slab, open for y >= 20 (bridge)
    phase = wrap(truth + np.where(noisy, rng.uniform(-np.pi, np.pi, shape), 0.0))
    mag = np.broadcast_to(np.where(noisy, 0.05, 1.0), shape).astype(np.float32)
    mask = np.ones(shape, bool)
    clean = ~noisy
    u = romeo_unwrap(phase, magnitudes=mag, mask=mask)
    k = np.round((u - truth)[clean] / TWO_PI)
    assert np.all(k == k[0])  # every clean voxel exact, both sides of the slab
    # phase coherence alone (no magnitude) already avoids the noise (measured 0 wrong)
    u_phase = romeo_unwrap(phase, mask=mask)
    k_phase = np.round((u_phase - truth)[clean] / TWO_PI)
    assert np.all(k_phase == k_phase[0])
    # with all qualities equal the tree crosses the noise and the far side goes wrong
    q_flat = [np.where(qa >= 0, 1.0, -1.0).astype(np.float32) for qa in edge_quality(phase, mask)]
    u_flat, _ = mst_unwrap(phase, q_flat, mask, coarse_fraction=0.0)
    k_flat = np.round((u_flat - truth)[clean] / TWO_PI)
    assert np.mean(k_flat != np.median(k_flat)) > 0.05  # measured 0.23


def test_edge_quality_terms():
    p = np.zeros((4, 3, 3), np.float32)
    p[2:] = 1.0  # a 1 rad step between x = 1 and 2
    mask = np.ones(p.shape, bool)
    mask[3, 0, 0] = False
    q = edge_quality(p, mask)
    assert q[0].shape == (3, 3, 3)
    np.testing.assert_allclose(q[0][1], 1 - 1 / np.pi, rtol=1e-6)
    np.testing.assert_allclose(q[0][0], 1.0)
    assert q[0][2, 0, 0] == -1  # edge to a voxel outside the mask is absent
    # second echo scaled by the TE ratio: a coherent step keeps the weight, an incoherent one loses it
    q_coh = edge_quality(p, mask, phase2=2 * p, te_ratio=0.5)
    np.testing.assert_allclose(q_coh[0][1], 1 - 1 / np.pi, rtol=1e-6)
    q_inc = edge_quality(p, mask, phase2=0 * p, te_ratio=0.5)
    np.testing.assert_allclose(q_inc[0][1], 0.0, atol=1e-6)
    # magnitude coherence: a 2:1 edge is down-weighted by (1/2)^2
    m = np.ones_like(p)
    m[2:] = 0.5
    qm = edge_quality(np.zeros_like(p), np.ones(p.shape, bool), magnitude=m)
    assert qm[0][1].max() < 0.25 + 1e-6


def test_rejects_bad_arguments():
    d = two_blob_phantom()
    with pytest.raises(ValueError):
        romeo_unwrap(d["phase"], TE[:3], d["mag"], d["mask"])
    with pytest.raises(ValueError):
        romeo_unwrap(d["phase"], TE, d["mag"], d["mask"], template=1, reference=1)
    with pytest.raises(ValueError):
        romeo_unwrap(d["phase"], TE, d["mag"][..., :2], d["mask"])
