"""Inputs that used to end in a crash file or be misread: merged echoes read as channels, a
singleton 4th axis, a truncated .nii.gz, an EchoTime list."""

from __future__ import annotations

import gzip
import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage as ndi

from qsmprep.errors import UserInputError
from qsmprep.interfaces._nifti import load
from qsmprep.qc.inputs import check_volumes_are_channels


def _head(shape=(40, 44, 36), seed=0):
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    head = (z ** 2 + y ** 2 + x ** 2) < 0.8
    tissue = ndi.gaussian_filter(rng.random(shape), 2) * 0.6 + 0.7
    return head * tissue, head, (z, y, x), rng


def test_echoes_in_one_file_are_not_taken_for_channels():
    m0, head, _, rng = _head()
    r2s = np.where(head, ndi.gaussian_filter(rng.random(m0.shape), 3) * 30 + 15, 0)  # 1/s
    te = np.array([0.004, 0.009, 0.014, 0.019])
    echoes = m0[..., None] * np.exp(-te * r2s[..., None])
    echoes += rng.normal(0, 0.01, echoes.shape)
    with pytest.raises(UserInputError, match="look like echoes") as err:
        check_volumes_are_channels(echoes, "sub-01_part-mag_T2starw.nii.gz")
    assert "\n" not in str(err.value) and "one file per echo" in str(err.value)


def test_receive_channels_pass():
    m0, head, (z, y, x), rng = _head(seed=1)
    centres = [(0.0, 1.3, 0.0), (0.0, -1.3, 0.0), (0.0, 0.0, 1.3), (0.0, 0.0, -1.3),
               (1.2, 0.5, 0.5), (-1.2, -0.5, 0.5)]
    sens = [1.0 / (0.2 + (z - a) ** 2 + (y - b) ** 2 + (x - c) ** 2) for a, b, c in centres]
    channels = np.stack([m0 * s for s in sens], -1) + rng.normal(0, 0.01, m0.shape + (6,))
    check_volumes_are_channels(channels, "sub-01_echo-1_part-mag_MEGRE.nii.gz")  # no error


def test_singleton_fourth_axis_is_a_volume(tmp_path):
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4, 1)
    path = tmp_path / "x.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    out, _ = load(path)
    assert out.shape == (2, 3, 4) and np.array_equal(out, data[..., 0])


def test_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "sub-01_echo-1_part-mag_MEGRE.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((20, 20, 20)).astype(np.float32),
                             np.eye(4)), path)
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw)[: len(gzip.compress(raw)) // 2])
    with pytest.raises(UserInputError, match="truncated or corrupt") as err:
        load(path)
    assert str(path) in str(err.value)


def test_echo_time_list_is_refused(tmp_path):
    from qsmprep.bids import find_runs

    anat = tmp_path / "raw" / "sub-01" / "anat"
    anat.mkdir(parents=True)
    (tmp_path / "raw" / "dataset_description.json").write_text(
        json.dumps({"Name": "x", "BIDSVersion": "1.9.0"}))
    img = nib.Nifti1Image(np.ones((8, 8, 8, 3), np.float32), np.eye(4))
    for part in ("mag", "phase"):
        nib.save(img, anat / f"sub-01_part-{part}_T2starw.nii.gz")
        (anat / f"sub-01_part-{part}_T2starw.json").write_text(json.dumps(
            {"EchoTime": [0.005, 0.010, 0.015], "MagneticFieldStrength": 3}))
    with pytest.raises(UserInputError, match="lists 3 echo times"):
        find_runs(tmp_path / "raw")


def test_every_input_is_read_before_processing(tmp_path):
    from qsmprep.bids import find_runs
    from qsmprep.qc.inputs import check_input_images
    from qsmprep.simulation.dataset import SimulationSpec, write_simulated_dataset

    bids = tmp_path / "bids"
    write_simulated_dataset(bids, SimulationSpec(shape=(24, 24, 24), voxel_size=(4.0, 4.0, 4.0),
                                                 scale=0.5, echo_times=(0.004, 0.008)))
    runs = find_runs(bids)
    check_input_images(runs)  # a good dataset passes
    victim = runs[0].phase[1]
    raw = gzip.decompress(open(victim, "rb").read())
    with open(victim, "wb") as fh:  # the header survives, the data do not
        fh.write(gzip.compress(raw)[: len(gzip.compress(raw)) // 2])
    runs = find_runs(bids)  # discovery reads headers only: still fine
    with pytest.raises(UserInputError, match="truncated or corrupt") as err:
        check_input_images(runs)
    assert victim in str(err.value)
