"""QSM-challenge metrics on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from qsmprep.algorithms.metrics import correlation, demeaned_nrmse, nrmse
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


def test_reference_to_mask_mean():
    chi = np.array([1.0, 2.0, 3.0, 50.0], np.float32)
    m = np.array([True, True, True, False])
    out = reference_to_mask_mean(chi, m)
    np.testing.assert_allclose(out, [-1.0, 0.0, 1.0, 0.0])
    assert out.dtype == np.float32
    with pytest.raises(ValueError):
        reference_to_mask_mean(chi, np.zeros(4, bool))
