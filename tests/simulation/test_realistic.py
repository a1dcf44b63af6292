"""The realistic head: textured chi with exact truth, fat with its chemical shift, and the
relative intensities of a T1-weighted spoiled GRE (fat > brain > bone)."""

import numpy as np
import pytest
from scipy import ndimage

from qsmprep.algorithms.phase import GAMMA_BAR_HZ_PER_T, wrap
from qsmprep.simulation.acquisition import block_mean, head_grid
from qsmprep.simulation.dataset import SimulationSpec, simulate
from qsmprep.simulation.extracranial import FAT_PPM, rasterise_realistic_head
from qsmprep.simulation.phantom import LABELS
from qsmprep.simulation.texture import chi_texture

from .conftest import SMALL

REAL = SimulationSpec(**{**SMALL.__dict__, "phantom": "realistic",
                         "echo_times": (0.002, 0.0028, 0.012)})


@pytest.fixture(scope="module")
def realistic():
    return simulate(REAL)


def test_chi_is_textured_and_smooth(realistic):
    data, _ = realistic
    m = data.brain_mask & data.homogeneous
    for k in (2, 3):  # white and grey matter: not one value any more
        v = data.chi[m & (data.labels == k)]
        assert v.size > 200
        assert np.std(v) > 0.002, (LABELS[k][0], np.std(v))   # a few ppb at least
        # the bulk is still near the label value (texture of a few ppb, vessels aside)
        assert abs(np.median(v) - LABELS[k][1]) < 0.004
    # CSF (the reference) stays exactly 0 away from vessels
    csf = data.chi[m & (data.labels == 1)]
    assert np.median(np.abs(csf)) < 1e-6
    # smooth: neighbouring 3 mm voxels are correlated along every axis (white noise of the
    # same SD: 0 +- 0.02 with these ~2500 pairs; measured 0.29-0.44, the rest being the
    # 1-2 mm fine structure); vessels left out
    for k in (2, 3):
        inner = ndimage.binary_erosion(data.brain_mask & (data.labels == k), iterations=1)
        inner &= np.abs(data.chi - LABELS[k][1]) < 0.05
        for ax in range(3):
            pair = inner & np.roll(inner, 1, axis=ax)
            a, b = data.chi[pair], np.roll(data.chi, 1, axis=ax)[pair]
            assert np.corrcoef(a, b)[0, 1] > 0.2, (LABELS[k][0], ax)
    # vessel-like structures: a small volume fraction of strongly paramagnetic voxels
    frac = np.mean(data.chi[data.brain_mask] > 0.15)
    assert 1e-4 < frac < 0.05, frac


def test_truth_is_the_simulated_chi():
    """The truth map is the voxel mean of exactly the chi the field was computed from:
    recompute the fine-grid chi (labels + texture) and compare with the truth."""
    spec = SimulationSpec(**{**REAL.__dict__, "shape": (40, 48, 40), "voxel_size": (4.0,) * 3,
                             "supersample": 2})
    data, _ = simulate(spec)
    axes, fov = head_grid(spec.shape, spec.voxel_size, spec.scale, supersample=2)
    lab, brain = rasterise_realistic_head(axes)
    chi_t = np.zeros(256, np.float32)
    for k, v in LABELS.items():
        chi_t[k] = v[1]
    chi = (chi_t[lab] + chi_texture(axes, lab, brain)) * brain
    expected = block_mean(chi[fov], 2)
    m = data.brain_mask
    np.testing.assert_allclose(data.chi[m], expected[m], atol=1e-6)


def test_fat_has_its_chemical_shift(realistic):
    """In subcutaneous fat the phase after removing the field's phase turns at the fat
    frequency -3.4 ppm x gamma_bar x B0 (-434 Hz at 3 T) between echoes."""
    data, _ = realistic
    fat = (data.labels == 24) & data.homogeneous
    assert fat.sum() > 50
    omega = 2 * np.pi * GAMMA_BAR_HZ_PER_T * REAL.field_strength * 1e-6
    te = np.asarray(REAL.echo_times)
    resid = wrap(data.phase[fat] - omega * data.total_field[fat, None] * te)
    df = FAT_PPM * 1e-6 * GAMMA_BAR_HZ_PER_T * REAL.field_strength
    expected = wrap(2 * np.pi * df * te)
    err = np.abs(wrap(resid - expected))
    # the 10% water in fat pulls the phase by up to asin(0.1/0.9) = 0.11 rad
    assert np.median(err) < 0.15, np.median(err, axis=0)
    # frequency from the first two echoes (0.8 ms apart: -434 Hz turns -0.35 cycles, not
    # aliased; at 2.3 ms spacing fat and water would be back in phase)
    f_est = np.median(wrap(resid[:, 1] - resid[:, 0])) / (2 * np.pi * (te[1] - te[0]))
    assert abs(f_est - df) < 30, (f_est, df)
    # brain water has no such shift
    wm = (data.labels == 2) & data.homogeneous & data.brain_mask
    w = wrap(data.phase[wm, 0] - omega * data.total_field[wm] * te[0])
    assert np.median(np.abs(w)) < 0.05


def test_magnitude_ordering_like_a_spoiled_gre(realistic):
    """T1-weighted spoiled GRE: fat and marrow bright, brain in between, bone dark, air noise."""
    data, _ = realistic
    mag = data.magnitude[..., 0]

    def med(k):
        sel = (data.labels == k) & data.homogeneous
        assert sel.sum() > 10, LABELS[k][0]
        return np.median(mag[sel])

    fat, wm, gm, muscle, marrow, bone = (med(k) for k in (24, 2, 3, 25, 26, 21))
    assert fat > 1.3 * wm and fat > 1.3 * gm
    assert marrow > bone and wm > 2 * bone
    assert fat > muscle and 0.3 * wm < muscle < 1.2 * wm   # moderate muscle signal
    assert np.median(mag[(data.labels == 22) & (data.m0 == 0)]) == 0.0  # noiseless spec
    # muscle's short T2*: its signal drops faster than white matter's between echoes
    sel = (data.labels == 25) & data.homogeneous
    wsel = (data.labels == 2) & data.homogeneous
    assert (np.median(data.magnitude[sel, 2] / data.magnitude[sel, 0])
            < np.median(data.magnitude[wsel, 2] / data.magnitude[wsel, 0]))


def test_extracranial_anatomy_is_there(realistic):
    data, _ = realistic
    names = {LABELS[k][0] for k in np.unique(data.labels)}
    for n in ("skin", "fat", "muscle", "bone_marrow", "skull", "eye", "spinal_cord", "air"):
        assert n in names, n
    # the brain (and so the truth mask) is the simple head's
    simple, _ = simulate(SMALL)
    np.testing.assert_array_equal(simple.brain_mask, data.brain_mask)
