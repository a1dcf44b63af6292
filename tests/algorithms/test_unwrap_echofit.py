"""Spatial (Laplacian) and temporal unwrapping, and the weighted multi-echo field fit."""

from __future__ import annotations

import numpy as np
import pytest

from qsmprep.algorithms.echoes.echofit import fit_field
from qsmprep.algorithms.phase import GAMMA_BAR_HZ_PER_T, wrap
from qsmprep.algorithms.unwrap.laplacian import laplacian_unwrap, make_congruent, temporal_unwrap

TWO_PI = 2 * np.pi
B0_T = 3.0
PPM_TO_RAD_PER_S = TWO_PI * GAMMA_BAR_HZ_PER_T * B0_T * 1e-6  # omega per ppm


def mm_grid(shape, voxel_size):
    return [((np.arange(n) - (n - 1) / 2) * h).reshape([-1 if i == j else 1 for j in range(3)])
            for i, (n, h) in enumerate(zip(shape, voxel_size))]


def smooth_phase(shape, voxel_size):
    """A smooth phase with several wraps that decays towards the edges (radians)."""
    x, y, z = mm_grid(shape, voxel_size)
    r2 = x * x + y * y + z * z
    return (20.0 * np.exp(-r2 / (2 * 20.0**2))
            + 5.0 * np.exp(-((x - 12) ** 2 + (y + 8) ** 2 + (z - 5) ** 2) / (2 * 9.0**2))
            - 3.0 * np.exp(-((x + 15) ** 2 + (y - 10) ** 2 + z**2) / (2 * 11.0**2)))


def ball_mask(shape, voxel_size, radius):
    x, y, z = mm_grid(shape, voxel_size)
    return x * x + y * y + z * z <= radius**2


@pytest.mark.parametrize("voxel_size", [(1.5, 1.5, 1.5), (1.2, 1.2, 2.4)])
def test_laplacian_unwrap_recovers_smooth_phase(voxel_size):
    shape = tuple(int(round(96 / h)) for h in voxel_size)  # 96 mm field of view
    truth = smooth_phase(shape, voxel_size)
    assert truth.max() - truth.min() > 3 * TWO_PI  # 3.5 turns
    # steepest step between neighbours: 1.34 rad (iso), 1.89 rad (1.2 x 1.2 x 2.4 mm)
    assert max(np.abs(np.diff(truth, axis=a)).max() for a in range(3)) < 2.0
    wrapped = wrap(truth)
    smooth = laplacian_unwrap(wrapped, voxel_size)
    unwrapped = make_congruent(wrapped, smooth)

    turns = (unwrapped - wrapped) / TWO_PI  # congruent: whole turns only
    np.testing.assert_allclose(turns, np.round(turns), atol=1e-4)
    mask = ball_mask(shape, voxel_size, 40.0)
    offset = (unwrapped - truth)[mask] / TWO_PI
    k = np.round(np.median(offset))
    # exact up to one global 2 pi k inside the mask (float32 rounding)
    np.testing.assert_allclose(offset, k, atol=1e-4)
    # the smooth (non-congruent) estimate: the discrete method sees sin(step) for each
    # step, so it underestimates steep phase (measured max error 1.56 / 1.93 rad); it
    # must stay below pi for the rounding to be exact. Before the constant-offset fix in
    # unwrap.py 1.4% (iso) / 2.6% (aniso) of the mask landed one turn off.
    assert np.abs(smooth - truth - TWO_PI * k)[mask].max() < 2.5


def test_laplacian_unwrap_invariant_to_uniform_voxel_scaling():
    """Only the voxel aspect ratio matters: the same array unwrapped as 1x1x2 mm and as
    2x2x4 mm voxels gives the same phase (the Laplacian and its inverse scale away)."""
    shape = (48, 48, 24)
    wrapped = wrap(smooth_phase(shape, (2.0, 2.0, 4.0)))
    a = laplacian_unwrap(wrapped, (1.0, 1.0, 2.0))
    b = laplacian_unwrap(wrapped, (2.0, 2.0, 4.0))
    np.testing.assert_allclose(a, b, atol=1e-3)


# ---------------------------------------------------------------- multi-echo data
ECHO_TIMES = np.array([4e-3, 9e-3, 14e-3, 19e-3])  # s
R2STAR = 20.0  # 1/s


def multi_echo(sigma=0.0, seed=0):
    """4-echo data: smooth steep field (ppm), spatially varying phase offset, magnitude."""
    vs = (2.0, 2.0, 2.0)
    shape = (48, 48, 40)
    x, y, z = mm_grid(shape, vs)
    # 2.6 ppm bump (12 mm wide) minus a broad one: echo 4 reaches 31 rad with steps up to
    # 3.8 rad per voxel (aliased spatially), the first echo difference 1.0 rad per voxel
    field = (2.6 * np.exp(-(x * x + y * y + z * z) / (2 * 12.0**2))
             - 0.8 * np.exp(-((x - 10) ** 2 + (y + 6) ** 2 + z * z) / (2 * 20.0**2)))
    field = field.astype(np.float64)
    offset = 1.2 + 0.9 * np.sin(x / 15.0) * np.cos(y / 21.0) + 0.3 * z / 40.0
    m0 = 1.0 + 0.6 * (x + 48) / 96.0  # smooth magnitude ramp, 1.0 .. 1.6
    m0 = np.broadcast_to(m0, shape)
    te = ECHO_TIMES
    omega = field * PPM_TO_RAD_PER_S
    truth_phase = offset[..., None] + omega[..., None] * te  # unwrapped, (..., echoes)
    mag = m0[..., None] * np.exp(-R2STAR * te)
    signal = mag * np.exp(1j * truth_phase)
    if sigma:
        rng = np.random.default_rng(seed)
        signal = signal + sigma * (rng.standard_normal(signal.shape)
                                   + 1j * rng.standard_normal(signal.shape))
    return dict(vs=vs, field=field, offset=np.broadcast_to(offset, shape), m0=m0,
                truth_phase=np.broadcast_to(truth_phase, shape + (4,)),
                phase=np.angle(signal).astype(np.float32),
                mag=np.abs(signal).astype(np.float32))


def test_temporal_unwrap_steep_late_echoes():
    d = multi_echo()
    # the last echo is not spatially unwrappable: neighbour steps beyond pi
    last = d["truth_phase"][..., -1]
    assert max(np.abs(np.diff(last, axis=a)).max() for a in range(3)) > 3.5
    spatial = make_congruent(d["phase"][..., -1], laplacian_unwrap(d["phase"][..., -1], d["vs"]))
    err = spatial - last
    assert np.ptp(np.round(err / TWO_PI)) >= 1  # spatial unwrapping of echo 4 fails (2.8%)

    unwrapped = temporal_unwrap(d["phase"], ECHO_TIMES, d["vs"], magnitudes=d["mag"])
    assert unwrapped.shape == d["phase"].shape
    diff = (unwrapped - d["truth_phase"]) / TWO_PI
    k = np.round(diff)
    np.testing.assert_allclose(diff, k, atol=2e-4)  # congruent and exact
    # the same whole number of turns in every echo of a voxel (the offset's wrap only)
    assert np.all(k == k[..., :1])

    fit = fit_field(unwrapped, d["mag"], ECHO_TIMES, B0_T)
    # field exact to float32 rounding: measured max error 2.4e-6 ppm
    np.testing.assert_allclose(fit.field_ppm, d["field"], atol=1e-4)
    # the phase offset is removed and recovered (modulo 2 pi): measured 2.2e-5 rad
    assert np.abs(wrap(fit.phase_offset - d["offset"])).max() < 1e-3


def test_echo_fit_noise_map_calibrated_and_inverse_to_magnitude():
    d = multi_echo(sigma=0.01, seed=3)  # SNR 100 at TE = 0 on the dimmest side
    unwrapped = temporal_unwrap(d["phase"], ECHO_TIMES, d["vs"], magnitudes=d["mag"])
    fit = fit_field(unwrapped, d["mag"], ECHO_TIMES, B0_T)
    noise = fit.noise_ppm
    assert np.isfinite(noise).all() and (noise > 0).all()
    err = fit.field_ppm - d["field"]
    z = err / noise
    # the noise map predicts the actual error: measured std(z) = 0.996 (92160 voxels)
    assert 0.9 < np.std(z) < 1.1, np.std(z)
    # no unwrapping failures: every error is a few predicted sigmas at most (measured 4.4)
    assert np.abs(z).max() < 6
    # theory: sigma_omega^2 = sigma^2 sum(w) / det with w = |m|^2, so noise ~ 1 / m0
    scaled = noise * d["m0"]
    assert np.std(scaled) / np.mean(scaled) < 0.02  # measured 0.0065 (weights from noisy mag)
    ratio = noise[0].mean() / noise[-1].mean()  # dim side (m0 = 1) vs bright side (m0 = 1.6)
    assert ratio == pytest.approx(d["m0"][-1].mean() / d["m0"][0].mean(), rel=0.02)  # 1.583
    # and the absolute level: phase noise sigma / m per echo -> field noise in ppm
    w = (d["m0"][..., None] * np.exp(-R2STAR * ECHO_TIMES)) ** 2
    sw, swt, swtt = w.sum(-1), (w * ECHO_TIMES).sum(-1), (w * ECHO_TIMES**2).sum(-1)
    expected = 0.01 * np.sqrt(sw / (sw * swtt - swt**2)) / PPM_TO_RAD_PER_S
    np.testing.assert_allclose(noise, expected, rtol=0.1)  # measured max 3.3%, mean 0.03%


def test_single_echo_field():
    d = multi_echo()
    p = d["truth_phase"][..., :1] - d["offset"][..., None]  # offset-free single echo
    fit = fit_field(p, d["mag"][..., :1], ECHO_TIMES[:1], B0_T)
    np.testing.assert_allclose(fit.field_ppm, d["field"], atol=1e-4)
    assert not fit.phase_offset.any()


def test_quality_mask_drops_an_island_off_by_one_wrap_step():
    from qsmprep.algorithms.echoes.echofit import quality_mask

    shape, delta_te = (40, 40, 30), 4e-3
    step = 1e6 / (GAMMA_BAR_HZ_PER_T * B0_T * delta_te)  # ppm per 2 pi of the echo spacing
    x, y, z = mm_grid(shape, (2.0, 2.0, 2.0))
    field = np.broadcast_to(0.02 * x + 0.01 * z, shape).astype(np.float32)  # 0.04 ppm/voxel
    mask = x * x + y * y + z * z <= 30.0**2
    island = (x - 8) ** 2 + (y + 4) ** 2 + z * z <= 8.0**2
    bad = np.where(island, field + step, field)  # mis-unwrapped by one wrap step
    keep = quality_mask(mask, bad, B0_T, delta_te)
    assert not (keep & island).any()  # the island and its rim are dropped
    assert not (keep & ~mask).any()
    assert keep.sum() > 0.85 * (mask & ~island).sum()
    np.testing.assert_array_equal(quality_mask(mask, field, B0_T, delta_te), mask)


def _cylinder_7t(noise=0.0):
    """Noise-free (or noisy) 7 T, 1 mm, TE 4/12/20/28 ms data of a 0.5 ppm cylinder (radius 7
    voxels, along x, B0 along z) in a 0.005 ppm one: qsm-forward's `simple` phantom in small.
    The true field steps by up to 0.29 ppm (0.7 wrap steps of the 8 ms spacing) between
    neighbours, and nothing dephases (one field value per voxel)."""
    from qsmprep.algorithms.dipole import forward_field

    shape, vs, te, b0 = (40, 48, 48), (1.0, 1.0, 1.0), (0.004, 0.012, 0.020, 0.028), 7.0
    x, y, z = mm_grid(shape, vs)
    big = (y * y + z * z <= 18.0**2) & (np.abs(x) <= 15)
    chi = np.where(big, 0.005, 0.0) + np.where((y * y + (z - 6) ** 2 <= 7.0**2) & (np.abs(x) <= 12),
                                               0.495, 0.0)
    field = forward_field(np.broadcast_to(chi, shape).astype(np.float32), vs, (0, 0, 1))
    omega = field.astype(np.float64) * 2 * np.pi * GAMMA_BAR_HZ_PER_T * b0 * 1e-6
    ph = 0.4 + omega[..., None] * np.asarray(te)
    sig = 1000.0 * np.exp(-20.0 * np.asarray(te)) * np.exp(1j * ph)
    if noise:
        rng = np.random.default_rng(5)
        sig = sig + noise * (rng.standard_normal(sig.shape) + 1j * rng.standard_normal(sig.shape))
    return (np.angle(sig).astype(np.float32), np.abs(sig).astype(np.float32), field,
            np.broadcast_to(big, shape), te, b0, vs)


def test_quality_mask_keeps_a_steep_but_correct_field_when_the_echoes_agree():
    """Regression (qsm-forward 7 T noise-free cylinders: 5,196 correct voxels removed, the large
    cylinder broken, 68% NRMSE): a jump of > 0.3 wrap steps is no error where the echoes agree
    with the fit and the phase offset is smooth; every jump counts without that evidence."""
    from qsmprep.algorithms.echoes.echofit import echo_inconsistency, quality_mask

    phase, mag, field, mask, te, b0, vs = _cylinder_7t()
    uw = temporal_unwrap(phase, te, vs, magnitudes=mag, mask=mask)
    fit = fit_field(uw, mag, te, b0, mask)
    assert np.abs(fit.field_ppm - field)[mask].max() < 1e-3          # correctly unwrapped
    jump_only = quality_mask(mask, fit.field_ppm, b0, te[1] - te[0])
    assert (mask & ~jump_only).sum() > 300     # measured 1,288 of 30,600 removed
    inc = echo_inconsistency(uw, mag, te, fit, b0, mask)
    assert not inc.any()
    keep = quality_mask(mask, fit.field_ppm, b0, te[1] - te[0], inconsistent=inc,
                        phase_offset=fit.phase_offset)
    np.testing.assert_array_equal(keep, mask)
    # two echoes carry no residual: no evidence, every jump counts (the former check)
    assert echo_inconsistency(uw[..., :2], mag[..., :2], te[:2], fit, b0, mask) is None


def test_quality_mask_with_evidence_still_drops_aliased_islands_and_dephased_voxels():
    """An island on the next alias of the echo spacing (every echo consistent with a line,
    offset moved by 2 pi TE1 / spacing = pi) and a block whose phase is non-linear in TE
    (dephasing) behind a field jump are dropped; the same jump with consistent echoes is
    kept; noise alone flags 0.03% of the voxels as inconsistent."""
    from qsmprep.algorithms.echoes.echofit import echo_inconsistency, quality_mask

    phase, mag, field, mask, te, b0, vs = _cylinder_7t(noise=10.0)   # SNR ~85 at TE 4 ms
    uw = temporal_unwrap(phase, te, vs, magnitudes=mag, mask=mask)
    x, y, z = mm_grid(mask.shape, vs)
    island = ((x - 4) ** 2 + (y + 9) ** 2 + (z + 5) ** 2 <= 3.5**2) & mask
    tes = np.asarray(te, np.float32)
    bad = uw + np.where(island[..., None], 2 * np.pi * (tes - tes[0]) / (tes[1] - tes[0]), 0)
    # two blocks whose field is 0.2 ppm (0.48 wrap steps) above their surroundings; in one the
    # phase of echo 3 is also 1 rad off the line (dephasing), the other is a true steep field
    dephased, steep = np.zeros(mask.shape, bool), np.zeros(mask.shape, bool)
    dephased[8:12, 30:34, 12:16] = True
    steep[28:32, 30:34, 12:16] = True
    step_rad = 0.2e-6 * 2 * np.pi * GAMMA_BAR_HZ_PER_T * b0 * tes
    bad += np.where((dephased | steep)[..., None], step_rad, 0).astype(np.float32)
    bad[..., 2] += np.where(dephased, 1.0, 0.0).astype(np.float32)
    fit = fit_field(bad, mag, te, b0, mask)
    inc = echo_inconsistency(bad, mag, te, fit, b0, mask)
    assert inc[dephased].all() and not inc[island].any()
    assert (inc & ~dephased).mean() < 0.005                            # noise: measured 0.03%
    keep = quality_mask(mask, fit.field_ppm, b0, te[1] - te[0], inconsistent=inc,
                        phase_offset=fit.phase_offset)
    assert not (keep & island).any() and not (keep & dephased).any()
    assert keep[steep].mean() > 0.9      # measured 0.98 (the jump check alone: 0)
    assert keep.sum() > 0.97 * (mask & ~island & ~dephased).sum()   # measured 0.992 (alone: 0.944)


# ---------------------------------------------------------------- nonlinear fit, ROMEO + fit
def test_nonlinear_fit_exact_on_noiseless_data():
    from qsmprep.algorithms.echoes.echofit import fit_field_nonlinear

    d = multi_echo()
    fit = fit_field_nonlinear(d["truth_phase"], d["mag"], ECHO_TIMES, B0_T)
    np.testing.assert_allclose(fit.field_ppm, d["field"], atol=1e-5)  # measured 2.4e-7 ppm
    assert np.abs(wrap(fit.phase_offset - d["offset"])).max() < 1e-4


def test_nonlinear_fit_ignores_a_2pi_slip_and_calibrates_its_noise_map():
    """A whole-turn slip of echo 3 in a block (a mis-unwrapped island) biases the linear fit
    by 0.2 ppm; the complex fit sees only sin(residual) and recovers the field. (A slip of
    the first or last echo biases the start past the next alias: echo 4 is recovered in
    99.9% of the island, echo 1 not at all -- measured; that is the unwrapper's job.)"""
    from qsmprep.algorithms.echoes.echofit import fit_field_nonlinear

    d = multi_echo(sigma=0.01, seed=7)
    unwrapped = temporal_unwrap(d["phase"], ECHO_TIMES, d["vs"], magnitudes=d["mag"])
    slip = np.zeros(unwrapped.shape, np.float32)
    slip[10:20, 10:20, 10:20, 2] = TWO_PI
    bad = unwrapped + slip
    island = slip[..., 2] > 0
    lin = fit_field(bad, d["mag"], ECHO_TIMES, B0_T)
    nl = fit_field_nonlinear(bad, d["mag"], ECHO_TIMES, B0_T)
    err_lin = np.abs(lin.field_ppm - d["field"])[island].mean()
    err_nl = np.abs(nl.field_ppm - d["field"])[island].max()
    assert err_lin > 0.1  # measured 0.21 ppm
    assert err_nl < 6e-3, err_nl  # measured max 4e-3 ppm (noise level 1.1e-3)
    # away from the island both agree; the noise map predicts the actual error
    z = ((nl.field_ppm - d["field"]) / nl.noise_ppm)[~island]
    assert 0.9 < np.std(z) < 1.1, np.std(z)  # measured 0.996
    # the offset is noise-limited (std 0.012 rad): measured max 0.051 over 91 160 voxels
    assert np.abs(wrap(nl.phase_offset - d["offset"]))[~island].max() < 0.08


def test_romeo_then_fit_recovers_the_field():
    from qsmprep.algorithms.unwrap.romeo import romeo_unwrap

    d = multi_echo(sigma=0.02, seed=2)  # SNR 50 at TE = 0
    unwrapped = romeo_unwrap(d["phase"], ECHO_TIMES, d["mag"])
    k = np.round((unwrapped - d["truth_phase"]) / TWO_PI)
    assert np.mean(k != 0) < 1e-3  # measured 0.0
    fit = fit_field(unwrapped, d["mag"], ECHO_TIMES, B0_T)
    z = (fit.field_ppm - d["field"]) / fit.noise_ppm
    assert np.abs(z).max() < 6  # no unwrapping failures: measured 4.6
