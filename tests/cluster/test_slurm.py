"""qsmprep through a real (single-node) Slurm: the SLURM plugin, one job per step with the
step's memory/CPU estimate, gives the same derivatives as a local run; the documented job
array script processes three participants into one output folder."""

import json
import os
import stat
import sys
import subprocess

import pytest

from ._support import REPO, assert_same_outputs, job_env, nifti_outputs, run_cli, tiny_dataset



def _logging_sbatch(bin_dir, log):
    """An `sbatch` first on PATH that records its arguments, then runs the real one."""
    real = subprocess.run(["which", "sbatch"], capture_output=True, text=True).stdout.strip()
    bin_dir.mkdir(parents=True, exist_ok=True)
    wrapper = bin_dir / "sbatch"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec {real} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def test_participant_through_slurm_plugin_matches_local_run(slurm, tmp_path):
    bids = tiny_dataset(tmp_path / "bids")
    local = run_cli(bids, tmp_path / "local", "participant", "-w", tmp_path / "work-local",
                    "--nprocs", 2, "--omp-nthreads", 1, cwd=tmp_path)
    assert local.returncode == 0, local.stdout + local.stderr

    log = tmp_path / "sbatch.log"
    bin_dir = _logging_sbatch(tmp_path / "bin", log)
    env = job_env({"SLURM_CONF": slurm["SLURM_CONF"], "LOGNAME": slurm["LOGNAME"],
                   "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    res = run_cli(bids, tmp_path / "slurm", "participant", "-w", tmp_path / "work-slurm",
                  "--omp-nthreads", 1, "--plugin", "SLURM",
                  "--plugin-args", json.dumps({"max_jobs": 4}),
                  "--sbatch-args=--time=00:30:00", env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "inversion done" in res.stdout
    assert_same_outputs(tmp_path / "local", tmp_path / "slurm")

    # every computing step went through sbatch, with its own memory and CPU request
    calls = log.read_text().splitlines()
    assert len(calls) >= 5, calls
    for call in calls:
        assert "--time=00:30:00" in call and "--cpus-per-task=1" in call, call
        assert "--mem=" in call, call
    mems = {int(c.split("--mem=")[1].split("M")[0]) for c in calls}
    assert len(mems) > 1 and min(mems) >= 512, mems  # sized per step, interpreter included
    # the jobs' own logs are in the work directory
    assert list((tmp_path / "work-slurm").rglob("slurm-*.out"))


def test_job_array_of_three_participants(slurm, tmp_path):
    subjects = ("01", "02", "03")
    bids = tiny_dataset(tmp_path / "bids", subjects)
    out = tmp_path / "derivatives"
    env = job_env({"SLURM_CONF": slurm["SLURM_CONF"], "LOGNAME": slurm["LOGNAME"],
                   "QSMPREP": f"{sys.executable} -m qsmprep.cli.main",
                   "SCRATCH_ROOT": str(tmp_path / "scratch")})
    script = REPO / "docs" / "examples" / "qsmprep_array.sbatch"
    res = subprocess.run(
        ["sbatch", "--wait", "--array=1-3", "--cpus-per-task=1", "--mem=3G",
         f"--output={tmp_path}/array_%a.log", str(script), str(bids), str(out),
         "--pipeline", "fast"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    logs = "\n".join(p.read_text()[-1500:] for p in sorted(tmp_path.glob("array_*.log")))
    assert res.returncode == 0, res.stdout + res.stderr + logs
    chis = sorted(str(k) for k in nifti_outputs(out) if str(k).endswith("_Chimap.nii.gz"))
    assert chis == [f"sub-{s}/anat/sub-{s}_Chimap.nii.gz" for s in subjects], chis + [logs]
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    # one work directory per participant on "scratch", kept for a resubmission
    assert sorted(p.name for p in (tmp_path / "scratch" / "qsmprep-work").iterdir()) == \
        [f"sub-{s}" for s in subjects]
