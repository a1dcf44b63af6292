"""End to end: quality checks that warn (console + QCWarnings in the sidecars) or stop (exit 2
for inputs, exit 1 for results, one paragraph, no Chimap) on a small simulated dataset.

Five pipeline runs (~5-10 s each): radians, degrees, [0, 2pi), a NaN magnitude voxel, and a
zero phase forced through with --phase-units radians; the rest stop before the pipeline."""

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from qsmprep.cli.main import main
from qsmprep.simulation.dataset import SimulationSpec, write_simulated_dataset

from ._support import TINY, run_cli

CHI = Path("sub-01") / "anat" / "sub-01_Chimap.nii.gz"


_qsmprep = run_cli


@pytest.fixture(scope="module")
def bids(tmp_path_factory):
    root = tmp_path_factory.mktemp("qc") / "bids"
    write_simulated_dataset(root, SimulationSpec(**TINY))
    return root


def _variant(bids, tmp_path, phase=None, magnitude=None, sidecar=None):
    """A copy of ``bids`` with every phase / echo-2 magnitude / sidecar transformed."""
    out = tmp_path / "bids"
    shutil.copytree(bids, out, ignore=shutil.ignore_patterns("derivatives"))
    anat = out / "sub-01" / "anat"
    for f in sorted(anat.glob("*.nii.gz")):
        img = nib.load(f)
        data = np.asarray(img.dataobj, np.float64)
        if phase is not None and "part-phase" in f.name:
            data = phase(data)
        elif magnitude is not None and "echo-2_part-mag" in f.name:
            data = magnitude(data)
        else:
            continue
        nib.save(nib.Nifti1Image(data.astype(np.float32), img.affine, img.header), f)
    if sidecar is not None:
        for f in anat.glob("*.json"):
            f.write_text(json.dumps(sidecar(json.loads(f.read_text()))))
    return out


def _run(bids, tmp_path, *extra):
    out = tmp_path / "out"
    res = _qsmprep(bids, out, "participant", "-w", tmp_path / "work", "--nprocs", "2", *extra)
    return out, res


def _correlation(chi_path, truth_dir):
    from qsmprep.evaluation import evaluate_chimap

    t = truth_dir / "sub-01" / "anat"
    return evaluate_chimap(chi_path, t / "sub-01_Chimap.nii.gz",
                           t / "sub-01_desc-brain_mask.nii.gz",
                           t / "sub-01_dseg.nii.gz")["correlation"]


@pytest.fixture(scope="module")
def radians_run(bids, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rad")
    out, res = _run(bids, tmp)
    assert res.returncode == 0, res.stdout + res.stderr
    return out, res


@pytest.mark.parametrize("units,encode,note", [
    ("degrees", np.rad2deg, "from degrees [-180, 180)"),
    ("0..2pi", lambda x: x % (2 * np.pi), "from radians [0, 2pi)"),
])
def test_phase_units_give_the_radians_map(units, encode, note, bids, radians_run, tmp_path):
    """Degrees and [0, 2pi) phase were read as integers ('rescaled from [-256, 256)') and
    gave maps with r 0.09-0.23; now the map is the radians one."""
    out, res = _run(_variant(bids, tmp_path, phase=encode), tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "read echoes done" in res.stdout and note in res.stdout
    assert "phase in radians [-pi, pi)" in radians_run[1].stdout
    truth = bids / "derivatives" / "qsmprep-truth"
    r_rad = _correlation(radians_run[0] / CHI, truth)
    r = _correlation(out / CHI, truth)
    assert r == pytest.approx(r_rad, abs=0.005)
    a = nib.load(out / CHI).get_fdata()
    b = nib.load(radians_run[0] / CHI).get_fdata()
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.999
    sidecar = json.loads((out / CHI).with_name("sub-01_Chimap.json").read_text())
    assert note in sidecar["InputData"]["PhaseScaling"]
    # other stages may warn about this small phantom (e.g. its brain volume); the input not
    assert not [w for w in sidecar["QCWarnings"] if w.startswith("read echoes")]


def test_unidentifiable_phase_exits_2(bids, tmp_path):
    out, res = _run(_variant(bids, tmp_path, phase=lambda x: x * 0.0037 / np.pi), tmp_path,
                    "--plugin", "Linear")
    assert res.returncode == 2, res.stdout + res.stderr
    err = res.stderr
    assert "part-\n" not in err  # wrapped at spaces only: paths stay whole
    assert err.startswith("qsmprep: error: ") and "Traceback" not in err
    assert "--phase-units" in err and "echo-1_part-phase_MEGRE.nii.gz" in err
    assert not (out / CHI).exists()


def test_nan_magnitude_voxel_warns(bids, tmp_path):
    def poke(m):
        m = m.copy()
        m[20, 24, 20] = np.nan
        m[21, 24, 20] = np.inf
        return m

    out, res = _run(_variant(bids, tmp_path, magnitude=poke), tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "WARNING (read echoes): NaN or infinite voxels: 2 in" in res.stdout
    assert "QC warning(s), also in the QCWarnings" in res.stdout  # the end-of-run summary
    assert "  sub-01: read echoes: NaN or infinite voxels: 2 in" in res.stdout
    chi_meta = json.loads((out / CHI).with_name("sub-01_Chimap.json").read_text())
    (warning,) = [w for w in chi_meta["QCWarnings"] if w.startswith("read echoes")]
    assert warning.startswith("read echoes: NaN or infinite voxels: 2 in")
    assert "echo-2_part-mag_MEGRE" in warning
    assert chi_meta["InputData"]["NonFiniteVoxels"] == 2
    chi = nib.load(out / CHI).get_fdata()
    assert np.isfinite(chi).all() and np.abs(chi).max() > 0
    total = out / "sub-01" / "fmap" / "sub-01_desc-total_fieldmap.json"
    assert json.loads(total.read_text())["QCWarnings"][0] == warning.split(": ", 1)[1]


def test_empty_chimap_exits_nonzero_without_chimap(bids, tmp_path):
    """A zero phase (accepted with --phase-units radians) gives a zero field and map: the
    run stops after the inversion with one paragraph and writes no Chimap."""
    out, res = _run(_variant(bids, tmp_path, phase=np.zeros_like), tmp_path,
                    "--phase-units", "radians")
    assert res.returncode == 1, res.stdout + res.stderr
    err = " ".join(res.stderr.split())
    assert "qsmprep: error: sub-01: The susceptibility map" in err
    assert "zero everywhere" in err and "Traceback" not in err
    assert not (out / CHI).exists()


def test_field_strength_50T_exits_2(bids, tmp_path, capsys):
    variant = _variant(bids, tmp_path, sidecar=lambda d: {**d, "MagneticFieldStrength": 50})
    status = main([str(variant), str(tmp_path / "out"), "participant", "-w",
                   str(tmp_path / "work")])
    err = " ".join(capsys.readouterr().err.split())
    assert status == 2 and "50 T" in err and "MagneticFieldStrength" in err
    assert "part-mag_MEGRE" in err and not (tmp_path / "out").exists()


def test_negative_numbers_exit_2(bids, tmp_path, capsys):
    base = [str(bids), str(tmp_path / "out"), "participant", "-w", str(tmp_path / "work")]
    with pytest.raises(SystemExit) as exc:  # argparse: usage error, status 2
        main(base + ["--lambda", "-1"])
    assert exc.value.code == 2 and "--lambda" in capsys.readouterr().err
    toml = tmp_path / "mine.toml"
    toml.write_text("[background.pdf]\nmax_iter = -5\n")
    assert main(base + ["--pipeline", str(toml)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "[background.pdf] max_iter" in err and str(toml) in err
    assert not (tmp_path / "out").exists()
