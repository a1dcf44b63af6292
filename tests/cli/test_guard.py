"""One run per work directory, a clean stop on SIGTERM, and --mem-gb checked before running."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from nipype.interfaces.utility import IdentityInterface
from nipype.pipeline import engine as pe

from qsmprep.cli.guard import check_memory_budget, lock_work_dir
from qsmprep.errors import UserInputError

from qsmprep.simulation.dataset import SimulationSpec, write_simulated_dataset

from ._support import TINY, run_cli


@pytest.fixture(scope="module")
def tiny_bids(tmp_path_factory):
    bids = tmp_path_factory.mktemp("guard") / "bids"
    write_simulated_dataset(bids, SimulationSpec(**TINY))
    return bids


def test_second_run_on_a_work_dir_is_refused(tmp_path):
    # another process holds the lock (as a concurrent qsmprep run would)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from qsmprep.cli.guard import lock_work_dir; "
        f"lock_work_dir({str(tmp_path)!r}); print('locked', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UserInputError, match="in use by another qsmprep run") as err:
            lock_work_dir(tmp_path)
        assert f"pid {holder.pid}" in str(err.value)
    finally:
        holder.kill()
        holder.wait()
    lock_work_dir(tmp_path)  # free again once the holder is gone (even killed)
    lock_work_dir(tmp_path)  # and a second run in the same process may take it again


def test_memory_budget_below_the_largest_step(tmp_path):
    wf = pe.Workflow("w", base_dir=str(tmp_path))
    wf.add_nodes([pe.Node(IdentityInterface(fields=["a"]), name="big", mem_gb=3.0),
                   pe.Node(IdentityInterface(fields=["a"]), name="small", mem_gb=0.2)])
    check_memory_budget(wf, None)
    check_memory_budget(wf, 4)
    with pytest.raises(UserInputError, match=r"about 3 GB for w\.big"):
        check_memory_budget(wf, 0.1)


def test_sigterm_stops_workers_and_says_how_to_resume(tiny_bids, tmp_path):
    args = [tiny_bids, tmp_path / "out", "participant", "-w", tmp_path / "work", "--nprocs", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "qsmprep.cli.main", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines = []
    for line in proc.stdout:  # wait until processing has started
        lines.append(line)
        if "read echoes done" in line:
            break
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, "".join(lines) + rest
    assert "stopped by SIGTERM" in rest and "to resume" in rest
    time.sleep(0.5)
    # no process of the run's session is left (MultiProc's workers were stopped)
    left = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True)
    assert left.stdout.strip() == "", left.stdout
    res = run_cli(tiny_bids, tmp_path / "out", "participant", "-w", tmp_path / "work")
    assert res.returncode == 0, res.stdout + res.stderr  # resumes from the work dir
    assert not list((tmp_path / "out").rglob(".*.tmp"))
