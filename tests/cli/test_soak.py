"""Soak: 20 runs killed (SIGKILL to the whole process group, as a cluster does at a time
limit) at random moments, each resumed on the same work and output folders; the last one
completes, and its outputs equal those of an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import pytest

from qsmprep.simulation.dataset import SimulationSpec, write_simulated_dataset

from ._support import TINY, run_cli

CYCLES = 20


def _outputs(out):
    files = sorted(p.relative_to(out) for p in out.rglob("*")
                   if p.is_file() and "logs" not in p.parts and p.suffix != ".html"
                   and "figures" not in p.parts)
    return files


def test_random_kills_then_resume_equal_an_uninterrupted_run(tmp_path):
    bids = tmp_path / "bids"
    write_simulated_dataset(bids, SimulationSpec(**TINY))
    ref = run_cli(bids, tmp_path / "ref", "participant", "-w", tmp_path / "ref-work")
    assert ref.returncode == 0, ref.stdout + ref.stderr
    rng = random.Random(20261128)
    out, work = tmp_path / "out", tmp_path / "work"
    args = [bids, out, "participant", "-w", work, "--nprocs", "2"]
    killed = 0
    for _ in range(CYCLES):
        proc = subprocess.Popen([sys.executable, "-m", "qsmprep.cli.main", *map(str, args)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(rng.uniform(0.5, 8.0))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait()
    assert killed >= CYCLES // 2  # most cycles were really cut short
    final = run_cli(*args)
    assert final.returncode == 0, final.stdout + final.stderr
    assert _outputs(out) == _outputs(tmp_path / "ref")
    for rel in _outputs(out):
        if rel.name.endswith(".nii.gz"):
            a = np.asanyarray(nib.load(out / rel).dataobj)
            b = np.asanyarray(nib.load(tmp_path / "ref" / rel).dataobj)
            assert np.array_equal(a, b), rel
    assert not list(out.rglob(".*.tmp"))
    record = out / "logs" / "complete" / "sub-01.json"
    assert record.is_file()


pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process groups: Linux")
