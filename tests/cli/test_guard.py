"""One run per work directory, a clean stop on SIGTERM, and --mem-gb checked before running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from nipype.interfaces.utility import IdentityInterface
from nipype.pipeline import engine as pe

from qsmprep.cli.guard import check_memory_budget, lock_participants
from qsmprep.errors import UserInputError

from qsmprep.simulation.dataset import SimulationSpec, write_simulated_dataset

from ._support import TINY, run_cli


@pytest.fixture(scope="module")
def tiny_bids(tmp_path_factory):
    bids = tmp_path_factory.mktemp("guard") / "bids"
    write_simulated_dataset(bids, SimulationSpec(**TINY))
    return bids


def test_second_run_of_a_participant_on_a_work_dir_is_refused(tmp_path):
    # another process holds sub-01's lock (as a concurrent qsmprep run would)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from qsmprep.cli.guard import lock_participants; "
        f"lock_participants({str(tmp_path)!r}, ['01']); print('locked', flush=True); "
        "time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UserInputError, match="sub-01 is being processed by another") as err:
            lock_participants(tmp_path, ["02", "01"])
        assert f"pid {holder.pid}" in str(err.value)
        lock_participants(tmp_path, ["02"])  # another participant may share the work dir
    finally:
        holder.kill()
        holder.wait()
    lock_participants(tmp_path, ["01"])  # free again once the holder is gone (even killed)
    lock_participants(tmp_path, ["01"])  # and a second run in the same process may take it


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


@pytest.fixture
def small_disk(tmp_path):
    """A 24 MB tmpfs (root only; skipped where mounting is not allowed)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24M", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({res.stderr.strip() or 'not root'})")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_stops_the_run_instead_of_hanging(tiny_bids, tmp_path, small_disk):
    from qsmprep.cli.guard import MIN_FREE_BYTES

    # not enough space from the start: refused before anything runs
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (20 * 1024 * 1024))
    res = run_cli(tiny_bids, tmp_path / "out", "participant", "-w", small_disk / "work")
    assert res.returncode == 2 and "MB free" in " ".join(res.stderr.split())
    assert "Traceback" not in res.stderr
    filler.unlink()
    # the disk fills up during the run: a clear stop within seconds, no hang, no traceback
    args = [tiny_bids, tmp_path / "out", "participant", "-w", small_disk / "work"]
    proc = subprocess.Popen([sys.executable, "-m", "qsmprep.cli.main", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "read echoes done" in line:
            free = os.statvfs(small_disk)
            filler.write_bytes(b"\0" * (free.f_bavail * free.f_frsize - MIN_FREE_BYTES // 2))
            break
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, "".join(lines) + rest
    assert "is full" in " ".join(rest.split()) and "Traceback" not in rest
