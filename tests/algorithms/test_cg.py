"""Iterative (preconditioned) CG on the weighted L2 objective (qsmprep.algorithms.inversion.cg)."""

from __future__ import annotations

import numpy as np
import pytest

from qsmprep.algorithms.inversion.cg import cg_l2, data_weights
from qsmprep.algorithms.inversion.direct import closed_form_l2
from qsmprep.algorithms.kspace import KSpaceProblem
from qsmprep.algorithms.inversion.lambda_selection import select_lambda, sweep_l2
from qsmprep.algorithms.metrics import demeaned_nrmse

from ._support import gaussian_noise


@pytest.mark.parametrize("preconditioner", [False, True])
def test_unweighted_cg_converges_to_closed_form(preconditioner):
    """W = 1 on an FFT-friendly grid (pad=0): the CG minimiser is the closed-form one.
    Anisotropic voxels, oblique B0, a white field (every frequency present)."""
    shape, vs, b0, lam = (32, 36, 24), (1.0, 1.2, 2.0), (0.2, 0.3, 0.93), 1e-2
    field = np.random.default_rng(8).standard_normal(shape).astype(np.float32)
    closed = closed_form_l2(field, vs, b0, lam, pad=0)
    res = cg_l2(field, vs, b0, lam, pad=0, max_iter=300, tol=1e-6,
                preconditioner=preconditioner)
    rel = np.linalg.norm(res.chi - closed) / np.linalg.norm(closed)
    # measured 8.9e-6 in 76 iterations (plain), 4.3e-7 in 1 iteration (preconditioned:
    # the preconditioner is the exact inverse when W is constant)
    assert rel < 1e-4, (rel, res.iterations)
    assert res.iterations <= (120 if not preconditioner else 3), res.iterations
    # a different lambda's closed form is far away: the comparison can fail
    other = closed_form_l2(field, vs, b0, 2 * lam, pad=0)
    assert np.linalg.norm(res.chi - other) / np.linalg.norm(closed) > 100 * rel


def test_noise_weights_suppress_a_corrupted_slab(head_axial):
    """A 10-slice slab with 30x the noise (0.03 vs 0.001 ppm): the noise-map weights
    keep the reconstruction usable where mask-only weights do not."""
    c = head_axial
    noise = np.full(c.local.shape, 0.001, np.float32)
    noise[:, :, 55:65] = 0.03
    field = c.local + noise * gaussian_noise(c.local.shape, 1.0, seed=1)
    base = c.local + gaussian_noise(c.local.shape, 0.001, seed=2)
    prob = KSpaceProblem(base, c.voxel_size, c.b0_dir, mask=c.mask)
    lam = select_lambda(sweep_l2(prob.spectrum, prob.d, prob.e2))  # measured 6.1e-3
    errs = {}
    for name, nz in (("mask", None), ("noise", noise)):
        res = cg_l2(field, c.voxel_size, c.b0_dir, lam, mask=c.mask, noise=nz,
                    max_iter=10, preconditioner=True)
        assert not res.chi[~c.mask].any()
        errs[name] = demeaned_nrmse(res.chi, c.chi, c.mask)
    # measured mask-only 221%, noise-weighted 49.7% (the slab's data are nearly lost;
    # the same data without the slab give 30.7%)
    assert errs["noise"] < 58.0, errs
    assert errs["mask"] > 150.0, errs


def test_data_weights():
    mask = np.zeros((4, 4, 4), bool)
    mask[1:3, 1:3, 1:3] = True
    noise = np.ones((4, 4, 4), np.float32)
    noise[1, 1, 1] = 4.0
    w = data_weights(mask, noise)
    assert w[0, 0, 0] == 0 and w[2, 2, 2] == 1.0 and w[1, 1, 1] == pytest.approx(0.25)
    assert np.array_equal(data_weights(mask), mask.astype(np.float32))
