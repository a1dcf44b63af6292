"""Brain-mask plausibility warnings (qsmprep.qc.mask), each triggered by a mask built for it."""

from __future__ import annotations

import numpy as np

from qsmprep.qc.mask import fov_edge_fraction, mask_volume_l, mask_warnings

VS = (3.0, 3.0, 3.0)
SHAPE = (80, 80, 60)  # 240 x 240 x 180 mm: holds a whole head


def ellipsoid(radii_mm, shape=SHAPE, vs=VS, centre=None):
    centre = np.asarray(centre if centre is not None else [(n - 1) / 2 for n in shape]) * vs
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    r = sum(((g * h - c) / a) ** 2 for g, h, c, a in zip(grids, vs, centre, radii_mm))
    return r <= 1.0


def test_plausible_brain_has_no_warning():
    brain = ellipsoid((65, 80, 60))  # 1.31 L
    assert 1.2 < mask_volume_l(brain, VS) < 1.4
    assert mask_warnings(brain, VS) == []


def test_head_sized_mask_is_too_large():
    head = ellipsoid((80, 98, 75))  # 2.47 L: scalp and skull kept
    (w,) = mask_warnings(head, VS)
    assert "2.47 L" in w and "too large" in w and "neck" in w


def test_tiny_mask_is_too_small():
    ball = ellipsoid((30, 30, 30))  # 0.11 L: the "ball in a corner"
    (w,) = mask_warnings(ball, VS)
    assert "too small" in w


def test_mask_cut_by_the_field_of_view():
    # the brain shifted down so that the field of view cuts a third of it off
    brain = ellipsoid((65, 80, 60), centre=(39.5, 39.5, 5.0))
    assert fov_edge_fraction(brain) > 0.2
    (w,) = mask_warnings(brain, VS)
    assert "field-of-view edge" in w
    assert fov_edge_fraction(ellipsoid((65, 80, 60))) == 0.0


def test_field_of_view_inside_the_brain():
    crop = np.ones((20, 20, 16), bool)
    crop[0, 0, 0] = False
    (w,) = mask_warnings(crop, VS)
    assert "inside the brain" in w and "100%" in w
    # flagged by the mask method although the mask is not full
    (w,) = mask_warnings(ellipsoid((25, 25, 20), shape=(20, 20, 16)), VS, fov_inside_brain=True)
    assert "inside the brain" in w
