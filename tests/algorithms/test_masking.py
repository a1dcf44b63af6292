"""Native brain mask from the head phantom's magnitude."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from qsmprep.algorithms.dipole import forward_field
from qsmprep.algorithms.mask.masking import (ball, clean_mask, magnitude_mask, otsu_threshold, phase_quality,
                                        phase_quality_mask)
from qsmprep.simulation.phantom import BRAIN_LABELS

ECHO_TIMES = (0.005, 0.012, 0.019, 0.026)


def dice(a, b):
    return 2.0 * np.sum(a & b) / (np.sum(a) + np.sum(b))


def magnitude(ph, te, sigma, seed):
    """proton density * exp(-R2* TE) with Rician noise (complex Gaussian, std sigma)."""
    rng = np.random.default_rng(seed)
    s = ph.proton_density * np.exp(-ph.r2star * te)
    return np.abs(s + sigma * (rng.standard_normal(s.shape) + 1j * rng.standard_normal(s.shape))
                  ).astype(np.float32)


@pytest.fixture(scope="module")
def intracranial(head_phantom_iso):
    """Brain plus the CSF rim inside the skull (what a magnitude mask can see)."""
    return np.isin(head_phantom_iso.labels, BRAIN_LABELS)


@pytest.mark.parametrize("multi_echo", [False, True], ids=["1echo", "4echo"])
def test_magnitude_mask_finds_the_brain(head_phantom_iso, intracranial, multi_echo):
    ph = head_phantom_iso
    if multi_echo:
        mag = np.stack([magnitude(ph, te, 0.03, seed=i) for i, te in enumerate(ECHO_TIMES)], -1)
    else:
        mag = magnitude(ph, 0.02, 0.03, seed=7)
    mask = magnitude_mask(mag, ph.voxel_size)
    assert mask.dtype == bool and mask.shape == ph.labels.shape
    d_intra = dice(mask, intracranial)
    d_brain = dice(mask, ph.brain_mask)
    # measured 0.9998 (1 echo) against brain + CSF rim, 0.893 against the brain alone
    # (the mask keeps the ~4 mm CSF rim inside the skull, as a magnitude mask should)
    assert d_intra > 0.98, d_intra
    assert d_brain > 0.85, d_brain
    assert mask[ph.brain_mask].mean() > 0.995  # brain covered: measured 1.0
    # scalp, skull and air excluded: measured 0 voxels
    for label in (20, 21, 22):
        assert mask[ph.labels == label].mean() < 0.002, label


def test_erosion_shrinks_inside_the_mask(head_phantom_iso):
    ph = head_phantom_iso
    mag = magnitude(ph, 0.02, 0.03, seed=7)
    full = magnitude_mask(mag, ph.voxel_size)
    eroded = magnitude_mask(mag, ph.voxel_size, erode_mm=4.0)
    assert eroded.sum() < full.sum() and not (eroded & ~full).any()


def test_ball_is_round_in_mm():
    b = ball(3.0, (1.0, 1.0, 2.0))
    assert b.shape == (7, 7, 3)
    assert b[3, 3, 1] and b[0, 3, 1] and b[3, 3, 0] and not b[0, 0, 1]
    assert b.sum() == b[::-1, ::-1, ::-1].sum()


def test_otsu_two_classes():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(1.0, 0.1, 5000), rng.normal(3.0, 0.1, 5000)])
    assert 1.3 < otsu_threshold(v) < 2.7


def test_empty_magnitude_rejected():
    with pytest.raises(ValueError):
        magnitude_mask(np.zeros((8, 8, 8)), (1.0, 1.0, 1.0))


def megre(ph, echo_times, snr, seed, b0_tesla=3.0):
    """Multi-echo magnitude and phase of the head phantom (axial B0): PD exp(-R2* TE) times
    the intravoxel dephasing sinc(TE dw/dx_i / 2 pi) of the field gradient along each axis,
    phase w TE, complex Gaussian noise of std mean(brain PD) / snr. Local to these tests so
    they do not depend on the simulator's options."""
    total = forward_field(ph.chi, ph.voxel_size, (0.0, 0.0, 1.0))
    omega = 2 * np.pi * 42.577478e6 * b0_tesla * 1e-6 * total
    grads = [np.gradient(omega, axis=i) for i in range(3)]
    sigma = float(ph.proton_density[ph.brain_mask].mean()) / snr
    rng = np.random.default_rng(seed)
    mags, phases = [], []
    for te in echo_times:
        deph = np.ones_like(omega)
        for g in grads:
            deph *= np.abs(np.sinc(g * te / (2 * np.pi)))
        s = ph.proton_density * np.exp(-ph.r2star * te) * deph * np.exp(1j * omega * te)
        s = s + sigma * (rng.standard_normal(s.shape) + 1j * rng.standard_normal(s.shape))
        mags.append(np.abs(s).astype(np.float32))
        phases.append(np.angle(s).astype(np.float32))
    return np.stack(mags, -1), np.stack(phases, -1)


@pytest.fixture(scope="module")
def megre_snr20(head_phantom_iso):
    return megre(head_phantom_iso, (0.004, 0.010, 0.016, 0.022), snr=20.0, seed=1)


def test_phase_quality_mask_beats_magnitude_mask(head_phantom_iso, megre_snr20):
    ph = head_phantom_iso
    mag, phase = megre_snr20
    mq = phase_quality_mask(mag, phase, ph.voxel_size)
    mm = magnitude_mask(mag, ph.voxel_size)
    d_q, d_m = dice(mq, ph.brain_mask), dice(mm, ph.brain_mask)
    assert d_q > 0.94, d_q  # measured 0.953
    assert d_m < 0.90, d_m  # measured 0.893 (keeps the CSF rim inside the skull)
    assert mq[ph.brain_mask].mean() > 0.96  # measured 0.974 of the brain kept
    # no air, skull or scalp: measured 0 voxels
    assert not (mq & np.isin(ph.labels, (20, 21, 22))).any()


def test_phase_quality_separates_tissue_from_noise(head_phantom_iso, megre_snr20):
    ph = head_phantom_iso
    q = phase_quality(*megre_snr20)
    assert q.min() >= 0 and q.max() <= 1 + 1e-6
    # medians: measured white matter 0.979, air 0.415
    assert np.median(q[ph.labels == 2]) > 0.9
    assert np.median(q[ph.labels == 22]) < 0.6


def test_phase_quality_mask_erosion_in_mm(head_phantom_iso, megre_snr20):
    ph = head_phantom_iso
    mag, phase = megre_snr20
    full = phase_quality_mask(mag[..., :2], phase[..., :2], ph.voxel_size)
    eroded = phase_quality_mask(mag[..., :2], phase[..., :2], ph.voxel_size, erode_mm=3.6)
    assert not (eroded & ~full).any()
    assert np.array_equal(eroded, ndimage.binary_erosion(full, structure=ball(3.6, ph.voxel_size)))


def test_clean_mask_fills_and_keeps_largest():
    m = np.zeros((20, 20, 20), bool)
    m[4:16, 4:16, 4:16] = True
    m[8:12, 8:12, 8:12] = False  # a hole
    m[0:2, 0:2, 0:2] = True  # a speck
    out = clean_mask(m.astype(np.uint8) * 3, (1.0, 1.0, 1.0))
    assert out[10, 10, 10] and not out[0, 0, 0] and out.sum() == 12 ** 3


def test_phase_quality_shape_mismatch():
    with pytest.raises(ValueError):
        phase_quality(np.ones((4, 4, 4)), np.ones((4, 4, 5)))
