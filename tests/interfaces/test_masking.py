"""NativeBrainMask node: methods, user mask on the same / a different grid."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from qsmprep.errors import UserInputError
from qsmprep.interfaces.masking import NativeBrainMask

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


def _save(path, data, affine=AFFINE):
    nib.save(nib.Nifti1Image(np.asarray(data), affine), str(path))
    return str(path)


@pytest.fixture
def images(tmp_path, monkeypatch):
    """A bright ellipsoid 'brain' (smooth phase) in noise (random phase), two echoes."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    x, y, z = np.meshgrid(*[np.arange(n) - n / 2 for n in (32, 36, 28)], indexing="ij")
    brain = (x / 12) ** 2 + (y / 14) ** 2 + (z / 10) ** 2 <= 1
    mag = np.stack([np.where(brain, 1.0, 0.02) + 0.02 * rng.random(brain.shape)] * 2, -1)
    phase = np.where(brain[..., None], 0.05 * x[..., None] * np.array([1, 2]),
                     rng.uniform(-np.pi, np.pi, brain.shape + (2,)))
    return (brain, _save(tmp_path / "mag.nii.gz", mag.astype(np.float32)),
            _save(tmp_path / "phase.nii.gz", phase.astype(np.float32)))


@pytest.mark.parametrize("method", ["magnitude", "phase_quality"])
def test_methods_find_the_object(images, method):
    brain, mag, phase = images
    res = NativeBrainMask(magnitude=mag, phase=phase, method=method).run()
    mask = np.asanyarray(nib.load(res.outputs.mask).dataobj) > 0
    dice = 2 * (mask & brain).sum() / (mask.sum() + brain.sum())
    assert dice > 0.95, dice  # measured 1.0 (magnitude) and 0.99 (phase quality)
    assert res.outputs.parameters["ErosionMm"] == 0.0


def test_user_mask_same_grid(images, tmp_path):
    brain, mag, _ = images
    user = brain.copy()
    user[16, 18, 14] = False  # a hole, filled
    f = _save(tmp_path / "user.nii.gz", user.astype(np.uint8))
    res = NativeBrainMask(magnitude=mag, user_mask=f, erode_mm=0.0).run()
    mask = np.asanyarray(nib.load(res.outputs.mask).dataobj) > 0
    assert np.array_equal(mask, brain)
    assert res.outputs.parameters["Source"] == f
    eroded = NativeBrainMask(magnitude=mag, user_mask=f, erode_mm=4.0).run()
    assert (np.asanyarray(nib.load(eroded.outputs.mask).dataobj) > 0).sum() < brain.sum()


@pytest.mark.parametrize("what", ["shape", "affine"])
def test_user_mask_other_grid_rejected(images, tmp_path, what):
    brain, mag, _ = images
    if what == "shape":
        f = _save(tmp_path / "user.nii.gz", brain[:-2].astype(np.uint8))
    else:
        f = _save(tmp_path / "user.nii.gz", brain.astype(np.uint8), np.diag([1.0, 1.0, 1.0, 1.0]))
    with pytest.raises(UserInputError, match="user.nii.gz.*not on the grid"):
        NativeBrainMask(magnitude=mag, user_mask=f).run()


# --- native BET node -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def head_files(tmp_path_factory):
    """The head phantom at 3 mm (two echoes, smooth phase) and its intracranial truth."""
    from qsmprep.simulation.phantom import BRAIN_LABELS, head_phantom

    d = tmp_path_factory.mktemp("bet")
    ph = head_phantom((60, 72, 60), (3.0, 3.0, 3.0))
    rng = np.random.default_rng(3)
    mag = np.stack([np.abs(ph.proton_density * np.exp(-ph.r2star * te)
                           + 0.03 * rng.standard_normal(ph.labels.shape)) for te in (0.005, 0.015)],
                   -1).astype(np.float32)
    x = np.arange(60)[:, None, None] * np.ones((1, 72, 60))
    phase = np.stack([0.02 * x * k for k in (1, 2)], -1).astype(np.float32)
    aff = np.diag([3.0, 3.0, 3.0, 1.0])
    return (np.isin(ph.labels, BRAIN_LABELS), mag, phase, aff,
            _save(d / "mag.nii.gz", mag, aff), _save(d / "phase.nii.gz", phase, aff))


def test_bet_node_is_a_skull_stripping_mask(head_files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    truth, _, _, _, mag, phase = head_files
    res = NativeBrainMask(magnitude=mag, phase=phase, method="bet").run()
    mask = np.asanyarray(nib.load(res.outputs.mask).dataobj) > 0
    p = res.outputs.parameters
    assert 2 * (mask & truth).sum() / (mask.sum() + truth.sum()) > 0.97
    assert p["Mode"] == "surface" and p["SkullStripped"] is True
    assert p["SearchDepthsMm"] == [20.0, 10.0] and "PhaseQualityThreshold" in p
    # the phantom's brain + CSF inside the skull is 1.90 L: plausible, so no warning
    assert p["QCWarnings"] == [] and 1.8 < p["VolumeL"] < 2.0


def test_bet_node_warns_for_a_field_of_view_inside_the_brain(head_files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    truth, mag, phase, aff, _, _ = head_files
    c = [int(v) for v in np.argwhere(truth).mean(0)]
    crop = tuple(slice(v - 8, v + 8) for v in c) + (slice(None),)
    res = NativeBrainMask(magnitude=_save(tmp_path / "m.nii.gz", mag[crop], aff),
                          phase=_save(tmp_path / "p.nii.gz", phase[crop], aff), method="bet").run()
    mask = np.asanyarray(nib.load(res.outputs.mask).dataobj) > 0
    p = res.outputs.parameters
    assert mask.mean() > 0.9 and p["Mode"] == "fov_inside_brain" and p["SkullStripped"] is False
    assert any("inside the brain" in w for w in p["QCWarnings"])


def test_threshold_masks_are_not_skull_stripped(images):
    _, mag, phase = images
    res = NativeBrainMask(magnitude=mag, phase=phase, method="phase_quality").run()
    assert res.outputs.parameters["SkullStripped"] is False
    assert isinstance(res.outputs.parameters["QCWarnings"], list)
