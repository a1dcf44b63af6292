"""Whole participant run on the demo data (simulated 96x112x96, 4 echoes, 1.5 mm).

Prints wall time per preset for a cold run (empty work dir) and a cached re-run, as ratios to
one rfftn+irfftn pair of the demo volume padded as the inversion pads it (measured in the
same run), plus the absolute seconds.

    python benchmarks/bench_participant.py [--nprocs 2]
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.fft

from qsmprep.algorithms.fft import default_workers, fast_shape
from qsmprep.config import list_presets
from qsmprep.simulation.dataset import SimulationSpec, write_simulated_dataset


def fft_pair_seconds(shape, repeats=5):
    x = np.random.default_rng(0).standard_normal(fast_shape(shape, 8)).astype(np.float32)
    w = default_workers()
    scipy.fft.irfftn(scipy.fft.rfftn(x, workers=w), s=x.shape, workers=w)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        scipy.fft.irfftn(scipy.fft.rfftn(x, workers=w), s=x.shape, workers=w)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def run(bids, out, work, preset, nprocs):
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "qsmprep.cli.main", str(bids), str(out),
                          "participant", "-w", str(work), "--pipeline", preset,
                          "--nprocs", str(nprocs)], capture_output=True, text=True)
    if res.returncode:
        sys.exit(res.stdout + res.stderr)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nprocs", type=int, default=2)
    a = ap.parse_args()
    spec = SimulationSpec(phase_scaling="int12")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_simulated_dataset(tmp / "bids", spec)
        base = fft_pair_seconds(spec.shape)
        print(f"demo data {spec.shape}, {len(spec.echo_times)} echoes; nprocs {a.nprocs}; "
              f"baseline rfftn+irfftn pair {base * 1e3:.1f} ms")
        print("| preset | cold run (s) | x baseline | cached re-run (s) | x baseline |")
        print("|---|---|---|---|---|")
        for preset in list_presets():
            cold = run(tmp / "bids", tmp / f"out_{preset}", tmp / f"work_{preset}", preset, a.nprocs)
            warm = run(tmp / "bids", tmp / f"out_{preset}", tmp / f"work_{preset}", preset, a.nprocs)
            print(f"| {preset} | {cold:.1f} | {cold / base:.0f} | {warm:.1f} | {warm / base:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
