"""The participant pipeline against a plain in-process reference, per stage, in one run.

Simulates a multi-echo dataset (default 160^3, 1 mm, 4 echoes, 3 T: the size of the
qsm-forward comparison in issue 17), runs ``qsmprep ... participant`` with each preset asked
for and prints, per stage, the wall time from the console and the peak RSS from nipype's
resource monitor, each time also as a ratio to one rfftn+irfftn pair of the padded volume
measured in the same run (the stage's FFT floor), the nipype and I/O overhead (the total
minus the stages), and the same chain written as one plain in-process function
(magnitude-threshold mask, temporal unwrapping, weighted echo fit, V-SHARP, TKD) as the
reference.

    python benchmarks/pipeline.py                       # 160^3, default preset
    python benchmarks/pipeline.py --shape 256 256 128 --presets default fast
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import scipy.fft

from qsmprep.algorithms.background.sharp import vsharp
from qsmprep.algorithms.echoes.echofit import fit_field
from qsmprep.algorithms.fft import default_workers, fast_shape
from qsmprep.algorithms.inversion.direct import tkd
from qsmprep.algorithms.mask.masking import magnitude_mask
from qsmprep.algorithms.phase import wrap
from qsmprep.algorithms.unwrap.laplacian import temporal_unwrap
from qsmprep.simulation.dataset import SimulationSpec, write_simulated_dataset

_DONE = re.compile(r"\] sub-\S+: (.+?) done \(([\d.]+) s\)")


def fft_pair_seconds(shape, repeats=5) -> float:
    x = np.random.default_rng(0).standard_normal(fast_shape(shape, 8)).astype(np.float32)
    w = default_workers()
    times = []
    for _ in range(repeats + 1):
        t = time.perf_counter()
        scipy.fft.irfftn(scipy.fft.rfftn(x, workers=w), s=x.shape, workers=w)
        times.append(time.perf_counter() - t)
    return float(np.median(times[1:]))


def reference_chain(bids: Path) -> float:
    """Seconds of the plain chain on the simulated run (reads included)."""
    t = time.perf_counter()
    anat = bids / "sub-01" / "anat"
    mags = sorted(anat.glob("*part-mag*.nii.gz"))
    phases = sorted(anat.glob("*part-phase*.nii.gz"))
    img = nib.load(mags[0])
    mag = np.stack([np.asanyarray(nib.load(p).dataobj, dtype=np.float32) for p in mags], -1)
    pha = np.stack([wrap(np.asanyarray(nib.load(p).dataobj, dtype=np.float32)) for p in phases], -1)
    te = [0.004 * (k + 1) for k in range(len(mags))]
    vs = tuple(float(v) for v in img.header.get_zooms()[:3])
    mask = magnitude_mask(np.sqrt((mag ** 2).sum(-1)), vs)
    unwrapped = temporal_unwrap(pha, te, vs, magnitudes=mag, mask=mask)
    fit = fit_field(unwrapped, mag, te, 3.0, mask=mask)
    local, lmask = vsharp(fit.field_ppm, mask, vs)
    tkd(local, vs, (0.0, 0.0, 1.0), mask=lmask)
    return time.perf_counter() - t


def run_preset(bids, tmp, preset, nprocs):
    out, work = tmp / f"out-{preset}", tmp / f"work-{preset}"
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "qsmprep.cli.main", str(bids), str(out),
                          "participant", "-w", str(work), "--pipeline", preset, "--nprocs",
                          str(nprocs)], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if res.returncode:
        sys.exit(res.stdout + res.stderr)
    stages = {}
    for stage, seconds in _DONE.findall(res.stdout):
        stages[stage] = stages.get(stage, 0.0) + float(seconds)
    return wall, stages, _peaks(work)


def _peaks(work: Path) -> dict:
    from nipype.utils.filemanip import loadpkl

    from qsmprep.workflows.labels import NODE_LABELS

    peaks = {}
    for res in work.rglob("result_*.pklz"):
        name = res.name[len("result_"):-len(".pklz")]
        peak = getattr(loadpkl(res).runtime, "mem_peak_gb", None)
        label = NODE_LABELS.get(name)
        if peak is not None and label:
            peaks[label] = max(peaks.get(label, 0.0), float(peak))
    return peaks


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(160, 160, 160))
    ap.add_argument("--voxel-size", type=float, default=1.0)
    ap.add_argument("--echoes", type=int, default=4)
    ap.add_argument("--presets", nargs="+", default=["default"])
    ap.add_argument("--nprocs", type=int, default=2)
    a = ap.parse_args(argv)
    spec = SimulationSpec(shape=tuple(a.shape), voxel_size=(a.voxel_size,) * 3,
                          echo_times=tuple(0.004 * (k + 1) for k in range(a.echoes)),
                          scale=1.0, supersample=1)
    with tempfile.TemporaryDirectory(prefix="qsmprep-bench-") as tmp:
        tmp = Path(tmp)
        write_simulated_dataset(tmp / "bids", spec)
        floor = fft_pair_seconds(spec.shape)
        ref = reference_chain(tmp / "bids")
        print(f"{spec.shape} at {a.voxel_size} mm, {a.echoes} echoes, --nprocs {a.nprocs}; "
              f"FFT floor (rfftn+irfftn of the padded volume) {floor * 1e3:.0f} ms; plain "
              f"in-process reference chain {ref:.1f} s")
        for preset in a.presets:
            wall, stages, peaks = run_preset(tmp / "bids", tmp, preset, a.nprocs)
            print(f"\n{preset}: {wall:.1f} s wall = {wall / ref:.2f} x the reference")
            print("| stage | s | x FFT floor | peak RSS (GB) |")
            print("|---|---|---|---|")
            for stage, seconds in stages.items():
                peak = peaks.get(stage)
                print(f"| {stage} | {seconds:.1f} | {seconds / floor:.0f} | "
                      f"{'-' if peak is None else f'{peak:.2f}'} |")
            print(f"| nipype, I/O and start-up (wall - sum of stages; stages overlap under "
                  f"MultiProc) | {wall - sum(stages.values()):.1f} | | |")


if __name__ == "__main__":
    main()
