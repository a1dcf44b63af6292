"""Oblique B0: the default inversion scores alike whether B0 lies along the phantom or not.

The phantom mirrors qsm-forward's "simple" one: a weakly susceptible cylinder holding four
thinner, strongly susceptible cylinders, all along array axis 2. With B0 along that axis
the cylinders make almost no field outside themselves, so hardly any of the local field
leaks out of the mask; tilted, their field spreads past the mask. An inversion whose data
term reads the zeros outside the mask as data (``W = 1`` on the padded grid) fits that
missing field with a smooth, large-scale chi error on the tilted phantom only (measured
with the former TV data term: 18.7% axial, 21.6% at 15 degrees, 35.0% / 43.4% after PDF);
with the data term inside the mask both orientations score about 3%.
"""

from __future__ import annotations

import numpy as np
import pytest

from qsmprep.algorithms.dipole import forward_field
from qsmprep.algorithms.metrics import demeaned_nrmse
from qsmprep.algorithms.inversion.tv import tv_admm

N = 64
VS = (1.0, 1.0, 1.0)
TILT = np.radians(15.0)


def _cylinders(n=N, h=1.0):
    """chi (ppm) and mask: a 0.005 ppm cylinder (radius and half-length 0.36 n) with four
    cylinders of 0.05-0.4 ppm on a ring inside it, all along array axis 2."""
    ax = [(np.arange(n) - (n - 1) / 2) * h for _ in range(3)]
    x, y, z = np.meshgrid(*ax, indexing="ij", sparse=True)
    r_big = 0.36 * n * h
    mask = (x**2 + y**2 <= r_big**2) & (np.abs(z) <= r_big)
    chi = np.where(mask, 0.005, 0.0).astype(np.float32)
    for i, (r, v) in enumerate([(3, 0.05), (3, 0.1), (3, 0.2), (5, 0.4)]):
        a = np.pi / 2 * i
        cx, cy = r_big / 2 * np.cos(a), r_big / 2 * np.sin(a)
        chi[((x - cx) ** 2 + (y - cy) ** 2 <= r * r) & (np.abs(z) <= 0.3 * n * h)] = v
    return chi, mask


@pytest.fixture(scope="module")
def cylinders():
    return _cylinders()


def _tv_error(chi, mask, b0):
    rng = np.random.default_rng(0)
    local = forward_field(chi, VS, b0, pad=[N] * 3)
    local += np.float32(0.002) * rng.standard_normal(chi.shape).astype(np.float32)
    local = np.where(mask, local, np.float32(0))  # the local field is known inside the mask
    res = tv_admm(local, mask, VS, b0, magnitude=mask.astype(np.float32))
    return demeaned_nrmse(res.chi, chi, mask)


def test_tv_oblique_b0_scores_like_axial(cylinders):
    chi, mask = cylinders
    axial = _tv_error(chi, mask, (0.0, 0.0, 1.0))
    tilted = _tv_error(chi, mask, (float(np.sin(TILT)), 0.0, float(np.cos(TILT))))
    # measured with the automatic lambda factor 5: 5.1% axial, 2.9% tilted (factor 2.5: 3.5 /
    # 3.0%; W = 1 data term: 18.7% / 21.6%). The tilt must not cost accuracy: tilted no more
    # than 2 points worse than axial (a cylinder along B0 is the hardest case for TV, so the
    # axial one may be the worse)
    assert tilted - axial < 2.0, (axial, tilted)
    assert max(axial, tilted) < 8.0, (axial, tilted)
