"""One simulated dataset for the group tests: 2 participants x 2 sessions of the tiny head
(4 mm), processed once by the participant level's fast pipeline (about 30 s on 2 idle
cores)."""

import os
from pathlib import Path

import pytest

from qsmprep.simulation.dataset import SimulationSpec, write_simulated_dataset

from cli._support import TINY, run_cli  # tests/ is on sys.path (pytest prepend mode)

RUNS = (("01", "1", 0), ("01", "2", 1), ("02", "1", 2), ("02", "2", 3))


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="session")
def processed(tmp_path_factory):
    """``(bids, out, snapshot of bids)`` after the participant level on 4 simulated runs."""
    root = tmp_path_factory.mktemp("group")
    bids, out = root / "bids", root / "out"
    for subject, session, seed in RUNS:
        write_simulated_dataset(bids, SimulationSpec(**TINY, subject=subject, session=session,
                                                     seed=seed))
    res = run_cli(bids, out, "participant", "-w", root / "work", "--nprocs", "2",
                  "--omp-nthreads", "1", "--pipeline", "fast", timeout=600)
    assert res.returncode == 0, res.stderr + res.stdout
    os.sync()
    return bids, out, _snapshot(bids)
