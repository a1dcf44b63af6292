"""Background field removal (V-SHARP, PDF) on the head phantom.

The total field comes from the whole head (air +9.4 ppm outside the head and in the
sinus, skull -2.2 ppm, brain); the true local field is the field of the brain's own
susceptibility. The error concentrates in the cortex at the mask edge: measured in the
brain eroded by 5.4 mm it drops from 54% to 47% (V-SHARP) and from 50% to 40% (PDF, 50
iterations); SHARP (one 6 mm radius) gives 40% in its smaller (78%) mask.
The lead measured ~55% (V-SHARP, radii 9..3 mm) and ~51% (PDF, 40 iterations) at 1.5 mm.

Note on oblique B0: a field simulated at the native resolution from the phantom's sharp,
high-contrast air/skull edges carries Nyquist ringing with an oblique B0 (the odd cross
terms of the k-space dipole kernel jump at the Nyquist boundary). That ringing is not
harmonic, V-SHARP passes it through (355% error), and no acquired field contains it, so
the oblique V-SHARP test simulates at 0.9 mm and block-averages to 1.8 mm.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from qsmprep.algorithms.background.sharp import default_radii, sharp, smv_kernel, vsharp
from qsmprep.algorithms.dipole import forward_field
from qsmprep.algorithms.metrics import demeaned_nrmse
from qsmprep.algorithms.background.pdf import pdf
from qsmprep.simulation.phantom import head_phantom

from ._support import AXIAL, HEAD_SHAPE, HEAD_VOXEL, TILT20, HeadCase, gaussian_noise, rms


def inner(mask, voxel_size, mm=5.4):
    return ndimage.binary_erosion(mask, iterations=int(round(mm / voxel_size[0])))


def background_only(case):
    """Field of the sources outside the brain only (air, skull, scalp)."""
    chi_out = np.where(case.mask, 0, case.phantom.chi).astype(np.float32)
    return forward_field(chi_out, case.voxel_size, case.b0_dir)


@pytest.fixture(scope="module")
def head_aniso_axial():
    vs = (1.6, 1.6, 3.2)
    ph = head_phantom((108, 128, 54), vs)
    return HeadCase(ph, vs, AXIAL, forward_field(ph.chi_brain, vs, AXIAL),
                    forward_field(ph.chi, vs, AXIAL))


@pytest.fixture(scope="module")
def head_tilted_oversampled(head_phantom_iso):
    """Oblique B0, fields simulated at 0.9 mm and block-averaged to 1.8 mm."""
    fine_vs = tuple(v / 2 for v in HEAD_VOXEL)
    fine = head_phantom(tuple(2 * n for n in HEAD_SHAPE), fine_vs)
    n0, n1, n2 = HEAD_SHAPE

    def down(f):
        return f.reshape(n0, 2, n1, 2, n2, 2).mean(axis=(1, 3, 5)).astype(np.float32)

    return HeadCase(head_phantom_iso, HEAD_VOXEL, TILT20,
                    down(forward_field(fine.chi_brain, fine_vs, TILT20)),
                    down(forward_field(fine.chi, fine_vs, TILT20)))


def test_total_field_is_dominated_by_background(head_axial):
    c = head_axial
    # measured 0.461 ppm vs 0.0065 ppm (71x): the removal task is real
    assert rms(c.total, c.mask) > 10 * rms(c.local, c.mask)


def test_vsharp_head(head_axial):
    c = head_axial
    local, mask = vsharp(c.total, c.mask, c.voxel_size)
    assert default_radii(c.voxel_size) == pytest.approx((9.0, 7.2, 5.4, 3.6))
    assert not (mask & ~c.mask).any() and not local[~mask].any()
    assert mask.sum() > 0.8 * c.mask.sum()  # measured 87% of the brain kept
    err = demeaned_nrmse(local, c.local, mask)
    assert err < 58.0, err  # measured 54.0% (lead: ~55% at 1.5 mm)
    err_inner = demeaned_nrmse(local, c.local, mask & inner(c.mask, c.voxel_size))
    assert err_inner < 51.0, err_inner  # measured 47.4%
    ratio = rms(local, mask) / rms(c.local, mask)
    assert 0.5 < ratio < 2.0, ratio  # measured 0.92


def test_vsharp_removes_pure_background(head_axial):
    c = head_axial
    bg = background_only(c)
    local, mask = vsharp(bg, c.mask, c.voxel_size)
    # measured 0.34% of the input rms (0.22x the true local field's rms)
    assert rms(local, mask) < 0.05 * rms(bg, mask)
    assert rms(local, mask) < 0.5 * rms(c.local, mask)


def test_vsharp_anisotropic_voxels(head_aniso_axial):
    c = head_aniso_axial
    # default radii from the largest voxel edge (3.2 mm): only 9 mm fits
    local, mask = vsharp(c.total, c.mask, c.voxel_size)
    err = demeaned_nrmse(local, c.local, mask)
    assert err < 58.0, err  # measured 53.4% (68% of the brain kept)
    ratio = rms(local, mask) / rms(c.local, mask)
    assert 0.5 < ratio < 2.0, ratio  # measured 1.05


def test_vsharp_oblique_b0(head_tilted_oversampled):
    c = head_tilted_oversampled
    local, mask = vsharp(c.total, c.mask, c.voxel_size)
    err = demeaned_nrmse(local, c.local, mask)
    assert err < 60.0, err  # measured 55.5% (axial simulated the same way: 58.7%)


def test_pdf_head(head_axial):
    c = head_axial
    local, iters = pdf(c.total, c.mask, c.voxel_size, c.b0_dir)
    assert 1 <= iters <= 50
    assert not local[~c.mask].any()
    err = demeaned_nrmse(local, c.local, c.mask)
    # measured 49.7% in 50 iterations (59.7% in 18 with the former tol 1e-3)
    assert err < 53.0, err
    err_inner = demeaned_nrmse(local, c.local, inner(c.mask, c.voxel_size))
    assert err_inner < 43.0, err_inner  # measured 39.9%
    ratio = rms(local, c.mask) / rms(c.local, c.mask)
    assert 0.5 < ratio < 2.0, ratio  # measured 0.89


def test_pdf_removes_pure_background(head_axial):
    c = head_axial
    bg = background_only(c)
    local, _ = pdf(bg, c.mask, c.voxel_size, c.b0_dir)
    # measured 0.21% of the input rms (0.15x the true local field's rms)
    assert rms(local, c.mask) < 0.05 * rms(bg, c.mask)
    assert rms(local, c.mask) < 0.5 * rms(c.local, c.mask)


def test_pdf_anisotropic_voxels_and_orientation(head_aniso, head_aniso_axial):
    c = head_aniso_axial
    local, _ = pdf(c.total, c.mask, c.voxel_size, c.b0_dir)
    err = demeaned_nrmse(local, c.local, c.mask)
    assert err < 57.0, err  # measured 53.3% (64.8% in 18 iterations before)
    # oblique B0 (20 degrees about x) with the right and the wrong direction
    t = head_aniso
    local, _ = pdf(t.total, t.mask, t.voxel_size, t.b0_dir)
    err_t = demeaned_nrmse(local, t.local, t.mask)
    assert err_t < 65.0, err_t  # measured 61.5%
    wrong, _ = pdf(t.total, t.mask, t.voxel_size, AXIAL)
    assert demeaned_nrmse(wrong, t.local, t.mask) > 150.0  # measured 217%


def test_smv_kernel_is_a_normalised_sphere():
    shape, vs = (32, 30, 16), (1.0, 1.0, 2.0)
    k = smv_kernel(shape, vs, 5.0)
    assert k.shape == (32, 30, 9)
    assert k[0, 0, 0] == pytest.approx(1.0, abs=1e-6)  # unit mean
    assert np.abs(k).max() <= 1.0 + 1e-6


def test_sharp_head(head_axial):
    c = head_axial
    local, mask = sharp(c.total, c.mask, c.voxel_size)
    assert not (mask & ~c.mask).any() and not local[~mask].any()
    # SHARP's mask is the brain eroded by the 6 mm radius
    assert 0.6 * c.mask.sum() < mask.sum() < 0.9 * c.mask.sum()  # measured 0.78
    err = demeaned_nrmse(local, c.local, mask)
    assert err < 44.0, err  # measured 40.1% in 78% of the brain
    ratio = rms(local, mask) / rms(c.local, mask)
    assert 0.5 < ratio < 2.0, ratio  # measured 0.93


def test_sharp_is_single_radius_vsharp(head_axial):
    c = head_axial
    a, ma = sharp(c.total, c.mask, c.voxel_size, radius_mm=5.4, threshold=0.05)
    b, mb = vsharp(c.total, c.mask, c.voxel_size, radii_mm=[5.4], threshold=0.05)
    assert (ma == mb).all() and np.array_equal(a, b)
    with pytest.raises(ValueError):
        sharp(c.total, c.mask, c.voxel_size, radius_mm=0.0)


def test_pdf_converges_with_iterations(head_axial):
    """More CG iterations fit the background better (the default 50 vs 10)."""
    c = head_axial
    few, it_few = pdf(c.total, c.mask, c.voxel_size, c.b0_dir, max_iter=10, tol=0.0)
    assert it_few == 10
    many, _ = pdf(c.total, c.mask, c.voxel_size, c.b0_dir)
    e_few = demeaned_nrmse(few, c.local, c.mask)
    e_many = demeaned_nrmse(many, c.local, c.mask)
    assert e_many < 0.8 * e_few, (e_few, e_many)  # measured 89.2% -> 49.7%


def test_pdf_noise_weighting_downweights_bad_voxels(head_axial):
    """Corrupt a slab of the field and flag it in the noise map: the weighted fit ignores it."""
    c = head_axial
    field = c.total.copy()
    noise = np.full(field.shape, 1e-3, np.float32)
    slab = np.zeros(field.shape, bool)
    slab[:, :, 60:64] = True
    bad = slab & c.mask
    field[bad] += gaussian_noise(field.shape, 0.5, seed=3)[bad]
    noise[bad] = 1.0
    ok = c.mask & ~ndimage.binary_dilation(slab, iterations=3)
    plain, _ = pdf(field, c.mask, c.voxel_size, c.b0_dir)
    weighted, _ = pdf(field, c.mask, c.voxel_size, c.b0_dir, noise=noise)
    e_plain = demeaned_nrmse(plain, c.local, ok)
    e_weighted = demeaned_nrmse(weighted, c.local, ok)
    assert e_weighted < 0.5 * e_plain, (e_plain, e_weighted)  # measured 168% -> 53.7%
