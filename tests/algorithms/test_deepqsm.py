"""DeepQSM with torch: training lowers the validation loss; the shipped weights invert the
head phantom's local field, beat TKD on streaking, and handle tiles, oblique B0 and
anisotropic voxels. Skipped only when torch is not installed."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

torch = pytest.importorskip("torch")

from qsmprep.algorithms.deepqsm import default_weights_path, deepqsm, load_model  # noqa: E402
from qsmprep.algorithms.inversion.direct import tkd  # noqa: E402
from qsmprep.algorithms.metrics import demeaned_nrmse  # noqa: E402
from qsmprep.training.deepqsm import TrainConfig, train  # noqa: E402


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(2)
    return load_model()


def _streak_shell(labels, mask, width=4):
    """Brain voxels within ``width`` voxels of a vein or the calcification, excluding them."""
    sources = np.isin(labels, (11, 12))
    return ndimage.binary_dilation(sources, iterations=width) & ~sources & mask


def _shell_rms(chi, truth, shell, mask):
    err = (chi - chi[mask].mean()) - (truth - truth[mask].mean())
    return float(np.sqrt(np.mean(err[shell] ** 2)))


def test_tiny_training_lowers_validation_loss(tmp_path):
    # plain (non-residual) network from scratch, fixed seeds: deterministic on CPU
    cfg = TrainConfig(output_dir=str(tmp_path), steps=12, batch_size=2, patch_size=16,
                      base_channels=4, lr=1e-2, warmup=2, val_size=2, val_every=6,
                      checkpoint_every=6, threads=2, seed=3, residual=False)
    ck = train(cfg, resume=False, stream=open(os.devnull, "w"))
    first, last = ck["history"][0], ck["history"][-1]
    assert first["step"] == 0 and last["step"] == 12 and ck["done"]
    # measured 1.517e-2 -> 1.504e-2 (ratio 0.991; after 6 steps 0.991)
    assert last["val_mse"] < 0.995 * first["val_mse"]
    assert (tmp_path / "deepqsm.pt").exists()


def test_shipped_weights_invert_head_phantom_better_than_tkd(head_axial, model):
    c = head_axial
    assert default_weights_path().stat().st_size < 25e6
    # isotropic 1.8 mm input: the network runs on the input grid (the dipole kernel is
    # scale free); the 1 mm "training" grid is scored in MODEL_CARD.md (slower)
    chi = deepqsm(c.local, c.voxel_size, c.b0_dir, mask=c.mask, model=model, resolution="native")
    ref = tkd(c.local, c.voxel_size, c.b0_dir, mask=c.mask)
    e_dq = demeaned_nrmse(chi, c.chi, c.mask)
    e_tkd = demeaned_nrmse(ref, c.chi, c.mask)
    assert e_dq <= 50.0             # measured 25.0 (issue goal <= 50)
    # better than TKD by a real margin, not by noise: an untrained (identity) correction
    # would equal TKD, a broken one is far worse
    assert e_dq < e_tkd - 2.0       # measured 25.0 vs TKD 29.6


def test_shipped_weights_less_streaking_than_tkd(head_axial, model):
    c = head_axial
    chi = deepqsm(c.local, c.voxel_size, c.b0_dir, mask=c.mask, model=model, resolution="native")
    ref = tkd(c.local, c.voxel_size, c.b0_dir, mask=c.mask)
    shell = _streak_shell(c.phantom.labels, c.mask)
    s_dq, s_tkd = _shell_rms(chi, c.chi, shell, c.mask), _shell_rms(ref, c.chi, shell, c.mask)
    # measured 0.0170 vs TKD 0.0186 ppm in the 4-voxel shell (-8.6 %); the weights shipped
    # before (shapes at +-0.25 ppm, biased network) measured 0.0203
    assert s_dq < 0.95 * s_tkd


def test_tiles_agree_with_one_pass(head_axial, model):
    c = head_axial
    whole = deepqsm(c.local, c.voxel_size, c.b0_dir, mask=c.mask, model=model,
                    max_tile_voxels=10**9, resolution="native")
    tiled = deepqsm(c.local, c.voxel_size, c.b0_dir, mask=c.mask, model=model,
                    max_tile_voxels=500_000, overlap=16, resolution="native")
    diff = demeaned_nrmse(tiled, whole, c.mask)
    assert diff < 1.0  # measured 0.01 (% of the one-pass result)


def test_oblique_anisotropic_close_to_axial(head_aniso, model):
    c = head_aniso
    # 1.6 x 1.6 x 3.2 mm, B0 tilted 20 degrees: regridded to 1.6 mm isotropic and rotated
    chi = deepqsm(c.local, c.voxel_size, c.b0_dir, mask=c.mask, model=model,
                  resolution="isotropic")
    e = demeaned_nrmse(chi, c.chi, c.mask)
    e_wrong = demeaned_nrmse(deepqsm(c.local, c.voxel_size, (0, 0, 1), mask=c.mask, model=model,
                                     resolution="isotropic"), c.chi, c.mask)
    assert e <= 50.0        # measured 28.2
    assert e < e_wrong      # ignoring the tilt is far worse: measured 50.5


def test_missing_torch_gives_install_hint():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import numpy as np\n"
            "from qsmprep.errors import UserInputError\n"
            "from qsmprep.algorithms.deepqsm import deepqsm\n"
            "try:\n"
            "    deepqsm(np.zeros((4, 4, 4), np.float32), (1, 1, 1), (0, 0, 1))\n"
            "except UserInputError as e:\n"
            "    print('ERR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, NIPYPE_NO_ET="1"), timeout=120)
    assert 'pip install "qsmprep[deepqsm]"' in out.stdout, out.stderr


def test_weights_are_loaded_as_tensors_only(tmp_path):
    """A checkpoint that pickles an arbitrary object is refused, not executed (torch.load
    with weights_only=True)."""
    import torch

    from qsmprep.algorithms.deepqsm.model import load_model
    from qsmprep.errors import UserInputError

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    bad = tmp_path / "deepqsm.pt"
    torch.save({"arch": {}, "state_dict": {}, "evil": Payload()}, bad)
    with pytest.raises(UserInputError, match="could not be read"):
        load_model(bad)
