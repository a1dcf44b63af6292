"""DeepQSM training data and the bias-free network: the generator's distributions (patch
contrast, tissue texture, small strong sources, contrast-relative noise), its forward
field against the package's dipole model, and exact scale equivariance without biases."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from qsmprep.algorithms.deepqsm.shapes import ShapeGenerator, ShapeSpec  # noqa: E402
from qsmprep.algorithms.deepqsm.unet import UNet3d  # noqa: E402
from qsmprep.algorithms.dipole import forward_field  # noqa: E402
from qsmprep.training.deepqsm import TrainConfig, _loss, shape_spec  # noqa: E402


def test_field_matches_forward_model():
    gen = ShapeGenerator(ShapeSpec(patch=32, mask_prob=0.0, noise_prob=0.0), seed=4)
    chi = gen.chi()
    field = gen.forward(chi).numpy()
    # zero-padded FFT = the package's forward model with the same padding (32 in total)
    ref = forward_field(chi.numpy(), (1.0, 1.0, 1.0), (0.0, 0.0, 1.0), pad=32)
    assert np.abs(field - ref).max() < 1e-5 * np.abs(ref).max()


def test_patch_contrast_is_log_uniform_within_range():
    gen = ShapeGenerator(ShapeSpec(patch=16, chi_range=0.25, min_chi=0.01), seed=0)
    c = np.array([gen.contrast() for _ in range(400)])
    assert c.min() >= 0.01 and c.max() <= 0.25
    # log-uniform: the median is the geometric mean of the bounds (0.05), not 0.13
    assert abs(math.log(np.median(c) / 0.05)) < 0.25
    fixed = ShapeGenerator(ShapeSpec(patch=16, chi_range=0.25), seed=0)
    assert fixed.contrast() == 0.25   # min_chi 0: the old fixed-contrast behaviour


def test_tissue_texture_is_dense_and_piecewise_constant():
    gen = ShapeGenerator(ShapeSpec(patch=32), seed=2)
    for _ in range(5):
        t = gen.tissue(0.03).numpy()
        values = np.unique(t)
        assert 2 <= len(values) <= 4          # 2-4 tissue classes
        assert np.abs(values).max() <= 0.03   # within +-contrast
        # every class is a sizeable region, not speckle (the classes cut a smooth field)
        counts = np.array([(t == v).sum() for v in values])
        assert counts.max() > 0.2 * t.size


def test_strong_sources_are_small_and_strong():
    spec = ShapeSpec(patch=48, min_shapes=8, max_shapes=8, strong_prob=1.0,
                     strong_factor=(10.0, 10.0), strong_max_radius=2.0, mask_prob=0.0,
                     noise_prob=0.0)
    gen = ShapeGenerator(spec, seed=1)
    chi = gen.chi(0.02).numpy()
    # 8 veins/calcifications of radius <= 2 voxels: a small part of the patch
    assert 0 < np.count_nonzero(chi) < 0.05 * chi.size
    assert np.abs(chi).max() > 0.02           # 10x a contrast of 0.02, up to overlaps


def test_noise_scales_with_contrast():
    spec = ShapeSpec(patch=16, chi_range=0.25, min_chi=0.01, noise_prob=1.0, max_noise=0.003,
                     min_shapes=1, max_shapes=1, min_radius=1.5, max_radius_frac=0.1,
                     mask_prob=0.0)
    ratios = []
    gen = ShapeGenerator(spec, seed=5)
    for _ in range(60):
        state = gen.state()
        contrast = gen.contrast()
        gen.set_state(state)
        field, chi = gen.sample()
        noise = field - gen.forward(chi)
        ratios.append(float(noise.std()) / contrast)
    # sigma / contrast is uniform in [0, 0.003 / 0.25]; its mean is 0.006
    assert max(ratios) < 0.0125
    assert 0.004 < np.mean(ratios) < 0.008


def test_bias_free_network_is_scale_equivariant():
    torch.manual_seed(0)
    net = UNet3d(base=4, depth=2, dropout=0.0, residual=True, bias=False).eval()
    torch.nn.init.normal_(net.head.weight, std=0.5)   # a non-trivial correction
    assert all(m.bias is None for m in net.modules() if hasattr(m, "bias"))
    x = torch.randn(1, 2, 16, 16, 16)
    with torch.no_grad():
        y = net(x)
        for a in (0.05, 7.0):
            assert torch.allclose(net(a * x), a * y, rtol=1e-4, atol=1e-6 * a)
        # with biases it is not (what the amplitude of the training shapes then decides)
        biased = UNet3d(base=4, depth=2, dropout=0.0, residual=True).eval()
        torch.nn.init.normal_(biased.head.weight, std=0.5)
        assert not torch.allclose(biased(0.05 * x), 0.05 * biased(x), rtol=1e-3, atol=1e-6)


def test_demeaned_loss_weighs_every_patch_alike_and_ignores_the_mean():
    chi = torch.randn(2, 1, 8, 8, 8) + 0.3
    chi[1] *= 0.01                       # a weak patch
    pred = chi * 0.9                     # 10 % too small everywhere
    assert float(_loss(torch, pred, chi, "demeaned")) == pytest.approx(0.01, rel=1e-4)
    # a patch's mean is invisible in its field: an offset costs nothing
    assert float(_loss(torch, pred + 5.0, chi, "demeaned")) == pytest.approx(0.01, rel=1e-4)
    mse = float(_loss(torch, pred, chi, "mse"))
    assert mse == pytest.approx(0.01 * float((chi[0] ** 2).mean() + (chi[1] ** 2).mean()) / 2,
                                rel=1e-4)


def test_shape_spec_reads_old_and_new_configs():
    old = {"patch_size": 48, "chi_range": 0.25, "max_noise": 0.003}   # pre-tissue weights
    spec = shape_spec(old)
    assert spec.patch == 48 and spec.min_chi == 0.0 and spec.tissue_prob == 0.0
    new = shape_spec(TrainConfig(patch_size=32, tissue_prob=0.7, min_chi=0.01,
                                 strong_factor_min=3.0, strong_factor_max=20.0))
    assert new.tissue_prob == 0.7 and new.strong_factor == (3.0, 20.0)


def test_flat_patches_are_redrawn_for_the_demeaned_loss():
    # one small shape and a mask edge: often nothing of the shape is left in the patch
    spec = dict(patch=16, min_shapes=1, max_shapes=1, max_radius_frac=0.15, mask_prob=1.0,
                noise_prob=0.0)
    plain = ShapeGenerator(ShapeSpec(**spec), seed=0)
    stds = [float(plain.sample()[1].std()) for _ in range(40)]
    assert min(stds) < 0.01 * 0.25                      # flat patches occur ...
    strict = ShapeGenerator(ShapeSpec(min_std=0.01, **spec), seed=0)
    assert all(float(strict.sample()[1].std()) >= 0.01 * 0.25 for _ in range(40))  # ... not here
    assert shape_spec(TrainConfig(loss="demeaned")).min_std == 0.01
    assert shape_spec(TrainConfig()).min_std == 0.0
