"""The default pipeline on a real whole-head scan (Philips 3 T, dual echo, 3 mm).

The data are not part of the project: they sit in ``../shared/data/real/`` beside the
repository (or where ``QSMPREP_REAL_DATA`` points) and every test here skips with the reason
when they are absent (a user's clone has none). Real scans have no ground truth: these
tests check what any QSM tool must get right on a real head (README of the data):
a brain mask of a plausible adult volume with no neck below the skull base, finite maps,
and no numeric warning on the console.
"""

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from .real_data import real_dataset

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def philips_run(tmp_path_factory):
    bids = real_dataset("philips-3t-dual-echo")
    out = tmp_path_factory.mktemp("philips")
    res = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "qsmprep.cli.main",
                          str(bids), str(out / "derivatives"), "participant",
                          "-w", str(out / "work"), "--fsl", "never"],
                         capture_output=True, text=True, timeout=600)
    return res, out / "derivatives" / "sub-01" / "anat"


def test_default_pipeline_exits_cleanly_without_numeric_warnings(philips_run):
    res, _ = philips_run
    console = res.stdout + res.stderr
    assert res.returncode == 0, console
    for bad in ("overflow", "RuntimeWarning", "invalid value", "Traceback"):
        assert bad not in console, console


def test_brain_mask_is_a_brain(philips_run):
    """1.1-1.7 L (an adult brain with cerebellum is 1.1-1.6 L; measured 1.51 L) with no QC
    warning."""
    _, anat = philips_run
    img = nib.load(anat / "sub-01_desc-brain_mask.nii.gz")
    mask = np.asanyarray(img.dataobj) > 0
    litres = mask.sum() * np.prod(img.header.get_zooms()[:3]) / 1e6
    side = json.loads((anat / "sub-01_desc-brain_mask.json").read_text())
    assert side.get("SkullStripped") is True
    assert side.get("MagneticFieldStrengthSource") == "ImagingFrequency"
    assert 1.1 <= litres <= 1.7, f"{litres:.2f} L"
    assert not side.get("QCWarnings"), side


def test_chi_is_finite(philips_run):
    _, anat = philips_run
    chi = np.asanyarray(nib.load(anat / "sub-01_Chimap.nii.gz").dataobj).astype(float)
    mask = np.asanyarray(nib.load(anat / "sub-01_desc-brain_mask.nii.gz").dataobj) > 0
    assert np.isfinite(chi[mask]).all() and np.ptp(chi[mask]) > 0


def test_chi_has_a_plausible_spread_and_no_edge_artefacts(philips_run):
    """In-vivo susceptibility in brain tissue spreads by a few hundredths of a ppm (deep grey
    nuclei and veins reach +0.1-0.3 ppm in a few voxels): the RMS about the median inside the
    mask, 2 voxels in from its edge, stays below 0.08 ppm (measured 0.039; 0.23 with the old
    2.9 L mask of scalp and neck), and the 2-voxel rim is not much stronger than the interior
    (measured 1.5x)."""
    from scipy import ndimage

    _, anat = philips_run
    chi = np.asanyarray(nib.load(anat / "sub-01_Chimap.nii.gz").dataobj).astype(float)
    mask = np.asanyarray(nib.load(anat / "sub-01_desc-brain_mask.nii.gz").dataobj) > 0
    inner = ndimage.binary_erosion(mask, iterations=2)
    centre = np.median(chi[inner])
    rms = lambda v: float(np.sqrt(np.mean((v - centre) ** 2)))  # noqa: E731
    assert rms(chi[inner]) < 0.08
    assert rms(chi[mask & ~inner]) < 2.0 * rms(chi[inner])
