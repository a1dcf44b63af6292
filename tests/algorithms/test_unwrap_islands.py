"""Regression: no wrap-error islands in the total field of the 2 mm head phantom.

The Laplacian-unwrapped echo difference put two islands (2,366 + 334 brain voxels in the
temporal lobes and cerebellum, next to the sinus-like cavities) one echo-spacing step
(0.98 ppm at 3 T, 8 ms) off. :func:`qsmprep.algorithms.unwrap.laplacian.temporal_unwrap` now unwraps
the echo difference along ROMEO's quality-guided spanning tree; what is left wrong are
the few voxels next to the cavities whose phase is fully dephased (the true field changes
by 0.6-1.5 ppm per voxel there), which :func:`qsmprep.algorithms.echoes.echofit.quality_mask`
removes. The dataset is the one ``qsmprep simulate --voxel-size 2 --matrix 72 84 72``
writes (4 echoes 4/12/20/28 ms, SNR 100, phase offset of amplitude 1 rad).
"""

from __future__ import annotations

import numpy as np
import pytest

from qsmprep.algorithms.echoes.echofit import echo_inconsistency, fit_field, quality_mask
from qsmprep.algorithms.mask.masking import magnitude_mask
from qsmprep.algorithms.phase import wrap
from qsmprep.algorithms.unwrap.romeo import romeo_unwrap
from qsmprep.algorithms.unwrap.laplacian import temporal_unwrap, unwrap_echo_difference
from qsmprep.simulation.dataset import SimulationSpec, simulate

ECHO_TIMES = (0.004, 0.012, 0.020, 0.028)
VS = (2.0, 2.0, 2.0)
B0_T = 3.0


@pytest.fixture(scope="module")
def head():
    spec = SimulationSpec(shape=(72, 84, 72), voxel_size=VS, scale=1.0, echo_times=ECHO_TIMES,
                          field_strength=B0_T, snr=100.0, phase_offset=1.0, seed=0,
                          repetition_time=0.035, flip_angle=15.0)
    data, _ = simulate(spec)
    mask = magnitude_mask(data.magnitude, VS, open_mm=4.0)   # the pipeline's default mask
    return data, mask


def _bad_fraction(field, data, keep, tol=0.05):
    sel = keep & data.brain_mask
    return float(np.mean(np.abs(field - data.total_field)[sel] > tol)), int(sel.sum())


def test_laplacian_echo_difference_reproduces_the_islands(head):
    """The phantom still shows the failure the default no longer has (the test can fail)."""
    data, mask = head
    uw = temporal_unwrap(data.phase, ECHO_TIMES, VS, magnitudes=data.magnitude,
                         difference_method="laplacian")
    fit = fit_field(uw, data.magnitude, ECHO_TIMES, B0_T, mask)
    err = np.abs(fit.field_ppm - data.total_field)[mask & data.brain_mask]
    assert np.sum(err > 0.5) > 1000   # measured 2,898 voxels ~0.98 ppm off


def test_temporal_unwrap_has_no_islands(head):
    data, mask = head
    uw = temporal_unwrap(data.phase, ECHO_TIMES, VS, magnitudes=data.magnitude)
    fit = fit_field(uw, data.magnitude, ECHO_TIMES, B0_T, mask)
    err = np.abs(fit.field_ppm - data.total_field)[mask & data.brain_mask]
    assert np.sum(err > 0.5) < 400                         # measured 138 (dephased voxels)
    assert np.mean(err > 0.05) < 0.005                     # measured 0.0023 (Laplacian 0.0133)
    keep = quality_mask(mask, fit.field_ppm, B0_T, ECHO_TIMES[1] - ECHO_TIMES[0])
    bad, kept = _bad_fraction(fit.field_ppm, data, keep)
    assert bad < 0.001                                     # measured 0.000107
    # the consistency check now drops only the dephased rim of the cavities, not islands
    assert kept > 0.99 * np.sum(mask & data.brain_mask)    # measured 0.9968 (Laplacian 0.9817)


def test_quality_mask_with_echo_evidence_removes_the_same_dephased_rim(head):
    """Jumps gated by echo inconsistency / offset jumps (what noise-free 7 T data needs) still
    drop the dephased voxels next to the cavities: their phase is non-linear in TE."""
    data, mask = head
    uw = temporal_unwrap(data.phase, ECHO_TIMES, VS, magnitudes=data.magnitude)
    fit = fit_field(uw, data.magnitude, ECHO_TIMES, B0_T, mask)
    inc = echo_inconsistency(uw, data.magnitude, ECHO_TIMES, fit, B0_T, mask)
    keep = quality_mask(mask, fit.field_ppm, B0_T, ECHO_TIMES[1] - ECHO_TIMES[0],
                        inconsistent=inc, phase_offset=fit.phase_offset)
    bad, kept = _bad_fraction(fit.field_ppm, data, keep)
    assert bad < 0.001                                     # measured 0.000107 (as without)
    assert kept > 0.99 * np.sum(mask & data.brain_mask)    # measured 0.9968


def test_romeo_has_no_islands_after_quality_mask(head):
    data, mask = head
    uw = romeo_unwrap(data.phase, ECHO_TIMES, data.magnitude, mask, template=1, reference=0)
    fit = fit_field(uw, data.magnitude, ECHO_TIMES, B0_T, mask)
    keep = quality_mask(mask, fit.field_ppm, B0_T, ECHO_TIMES[1] - ECHO_TIMES[0])
    bad, kept = _bad_fraction(fit.field_ppm, data, keep)
    assert bad < 0.001                                     # measured 0.000094
    assert kept > 0.99 * np.sum(mask & data.brain_mask)    # measured 0.9968


def test_unwrap_echo_difference_references_each_component():
    """Two separate blobs with a steep ramp: congruent and exact within each blob, each blob
    on the global turn the congruent Laplacian solution gives most of its voxels."""
    shape = (40, 30, 24)
    x = np.arange(shape[0], dtype=np.float32)[:, None, None]
    truth = np.broadcast_to(1.3 * x - 20.0, shape).astype(np.float32)   # 1.3 rad per voxel
    blob = np.zeros(shape, bool)
    blob[2:18, 5:25, 4:20] = True
    blob[22:38, 5:25, 4:20] = True
    mag = np.where(blob, 1.0, 0.05).astype(np.float32)
    rng = np.random.default_rng(3)
    wrapped = wrap(truth + np.where(blob, 0.0, rng.uniform(-np.pi, np.pi, shape)).astype(np.float32))
    out = unwrap_echo_difference(wrapped, (1.0, 1.0, 2.0), magnitude=mag, mask=blob)
    k = (out - wrapped) / (2 * np.pi)
    np.testing.assert_allclose(k, np.rint(k), atol=1e-3)                 # congruent
    lap = unwrap_echo_difference(wrapped, (1.0, 1.0, 2.0), method="laplacian")
    for sl in (np.s_[2:18, 5:25, 4:20], np.s_[22:38, 5:25, 4:20]):
        off = np.rint((out - truth)[sl] / (2 * np.pi))
        assert np.all(off == off.flat[0])                                # no island inside
        np.testing.assert_allclose((out - truth)[sl] - 2 * np.pi * off.flat[0], 0, atol=1e-4)
        lap_turns = np.rint((lap - truth)[sl] / (2 * np.pi))
        assert off.flat[0] == np.median(lap_turns)
        assert np.mean(lap_turns != np.median(lap_turns)) > 0.01  # the Laplacian one has islands
