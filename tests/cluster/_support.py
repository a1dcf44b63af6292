"""What the cluster tests share: a tiny simulated dataset, the CLI in a subprocess whose
environment reaches the batch jobs, and comparing two derivative folders."""

import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

from qsmprep.simulation.dataset import SimulationSpec, write_simulated_dataset

REPO = Path(__file__).resolve().parents[2]
# 40 x 48 x 40 voxels of 4 mm, three echoes (tests/cli/_support.py's tiny head)
TINY = dict(shape=(40, 48, 40), voxel_size=(4.0, 4.0, 4.0), scale=0.8,
            echo_times=(0.004, 0.008, 0.012))


def tiny_dataset(bids_dir, subjects=("01",)) -> Path:
    for i, sub in enumerate(subjects):
        write_simulated_dataset(bids_dir, SimulationSpec(**TINY, subject=sub, seed=i))
    return Path(bids_dir)


def job_env(extra=None) -> dict:
    """This environment with the working tree first on PYTHONPATH, so the interpreter of a
    batch job (sbatch exports the caller's environment) imports the same qsmprep."""
    env = {**os.environ, "NIPYPE_NO_ET": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def run_cli(*args, cwd, env=None, timeout=600):
    """``python -m qsmprep.cli.main ARGS`` in ``cwd`` (a temporary folder: batch jobs start
    there and nipype may leave files in a process's working directory)."""
    return subprocess.run([sys.executable, "-m", "qsmprep.cli.main", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env=env or job_env(), cwd=cwd)


def nifti_outputs(out_dir) -> dict:
    out_dir = Path(out_dir)
    return {p.relative_to(out_dir): p for p in sorted(out_dir.rglob("*.nii.gz"))}


def assert_same_outputs(a_dir, b_dir):
    a, b = nifti_outputs(a_dir), nifti_outputs(b_dir)
    assert a and sorted(a) == sorted(b), f"{sorted(a)} != {sorted(b)}"
    assert any(str(k).endswith("_Chimap.nii.gz") for k in a)
    for name in a:
        x, y = (np.asarray(nib.load(p[name]).dataobj) for p in (a, b))
        assert np.array_equal(x, y), f"{name}: max |diff| {np.abs(x - y).max()}"
