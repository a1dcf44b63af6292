"""The group level's pure functions: region statistics, robust z, residual field norm,
outlier flagging."""

import numpy as np
import pytest

from qsmprep.algorithms.dipole import forward_field
from qsmprep.group.pipeline import _flag_outliers
from qsmprep.group.stats import mask_volume_ml, region_stats, residual_field_norm, robust_z


def test_region_stats_match_direct_computation():
    rng = np.random.default_rng(0)
    shape = (12, 10, 8)
    chi = rng.normal(size=shape).astype(np.float32)
    r2 = rng.uniform(5, 50, size=shape).astype(np.float32)
    r2[0, 0, :] = np.nan                       # non-finite voxels are left out of R2* only
    labels = rng.integers(0, 4, size=shape)
    mask = rng.random(shape) > 0.2
    rows = region_stats({"chi": chi, "r2star": r2}, labels, mask,
                        {1: "a", 2: "b", 3: "c", 7: "absent"})
    assert [r["region"] for r in rows] == ["a", "b", "c", "absent"]
    for row in rows[:3]:
        sel = (labels == row["index"]) & mask
        assert row["chi_n_voxels"] == sel.sum()
        assert row["chi_mean"] == pytest.approx(chi[sel].mean(dtype=np.float64), rel=1e-6)
        assert row["chi_median"] == pytest.approx(np.median(chi[sel]), rel=1e-6)
        assert row["chi_std"] == pytest.approx(chi[sel].std(dtype=np.float64), rel=1e-6)
        ok = sel & np.isfinite(r2)
        assert row["r2star_n_voxels"] == ok.sum() < sel.sum() + 1
        assert row["r2star_mean"] == pytest.approx(r2[ok].mean(dtype=np.float64), rel=1e-6)
    assert rows[3]["chi_n_voxels"] == 0 and np.isnan(rows[3]["chi_mean"])


def test_robust_z():
    x = [1.0, 2.0, 3.0, 4.0, 5.0, 100.0]
    z = robust_z(x)
    med, mad = 3.5, 1.4826 * 1.5
    assert z == pytest.approx((np.asarray(x) - med) / mad)
    assert np.all(np.isnan(robust_z([1.0, 2.0, 50.0])))          # too few to call outliers
    assert np.all(np.isnan(robust_z([1.0, 1.0, 1.0, 1.0, 2.0])))  # MAD 0
    assert np.isnan(robust_z([1, 2, np.nan, 3, 4, 5])[2])


def test_flag_outliers_marks_the_odd_run():
    runs = [f"sub-{i:02d}" for i in range(6)]
    regions = [{"atlas": "truth", "index": 6, "region": "gp", "_prefix": p,
                "chi_mean": 0.10 + 0.002 * i + (0.2 if i == 4 else 0)} for i, p in enumerate(runs)]
    qc = [{"_prefix": p, "mask_volume_ml": 1200.0 + 10 * i - (600 if i == 2 else 0),
           "residual_field_norm": 0.3} for i, p in enumerate(runs)]
    _flag_outliers(regions, qc)
    assert [r["outlier"] for r in regions] == [False] * 4 + [True, False]
    assert qc[4]["outliers"] == "chi_mean truth/gp"
    assert qc[2]["outliers"] == "mask_volume_ml"
    assert not any(q["outliers"] for i, q in enumerate(qc) if i not in (2, 4))


def test_residual_field_norm():
    shape, vs, b0 = (32, 32, 32), (1.0, 1.0, 1.0), np.array([0.0, 0.0, 1.0])
    mask = np.zeros(shape, bool)
    mask[6:26, 6:26, 6:26] = True
    chi = np.zeros(shape, np.float32)
    chi[12:18, 10:20, 14:22] = 0.1
    field = forward_field(np.where(mask, chi, 0), vs, b0)
    # a constant offset of the map (its reference) and of the field change nothing
    assert residual_field_norm(field + 0.3, chi + 0.05, mask, vs, b0) < 1e-5
    empty = residual_field_norm(field, 0 * chi, mask, vs, b0)
    assert 0.8 < empty <= 1.0            # only the fitted offset explains anything
    # the residual of half the map is half the field left: exactly half the norm
    assert residual_field_norm(field, 0.5 * chi, mask, vs, b0) == pytest.approx(empty / 2,
                                                                                 rel=1e-4)
    assert mask_volume_ml(mask, (2.0, 2.0, 2.0)) == pytest.approx(20 ** 3 * 8 / 1000)


def test_robust_z_floor_keeps_close_runs_from_being_outliers():
    close = [0.596, 0.622, 0.614, 0.625, 0.619]  # residual norms of 5 near-identical runs
    assert abs(robust_z(close)[0]) > 3                      # a tiny MAD calls it an outlier
    assert abs(robust_z(close, min_scale=0.02)[0]) < 3      # the floor does not
    far = close[:4] + [0.9]
    assert abs(robust_z(far, min_scale=0.02)[-1]) > 3       # a real outlier still is
