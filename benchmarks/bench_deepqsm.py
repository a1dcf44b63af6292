"""DeepQSM CPU inference: seconds, ratio to one FFT pair, and peak memory.

    python benchmarks/bench_deepqsm.py [--shape 256 256 128] [--threads 2] [--repeats 2]
                                       [--weights PATH] [--max-tile-voxels 4000000]

Data: the head phantom (``qsmprep.simulation.phantom.head_phantom``) on ``--shape``,
scaled to fit, local field = ``forward_field(chi_brain)``. Cases: (a) 1 mm isotropic,
B0 along axis 2 (the network's own grid: no regridding), brain mask (cropped to its box);
(b) the same with a mask of the whole field of view (worst case: every voxel of the
256x256x128 grid goes through the network, in 3 tiles of <= 4 M voxels; NRMSE still
scored in the brain); (c) 0.94 x 0.94 x 1.25 mm with B0 tilted 15 degrees (regridded to
1 mm and rotated, then back). Each case runs in a
fresh subprocess so its peak resident memory (``ru_maxrss``, whole process including
Python, numpy, torch and the phantom) is its own.

Baseline: one ``scipy.fft.rfftn`` + ``irfftn`` pair (float32, ``--threads`` workers) on
the input grid, timed in the same subprocess just before each run; the ratio column is
run / baseline. Goal (issue 6): <= 20 s and <= 6 GB on 2 cores at 256x256x128 (cases a, b). Torch threads
= ``--threads``. A benchmark, not a test: it never fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time


CASES = {
    "iso1mm_axial": {"voxel": (1.0, 1.0, 1.0), "tilt": 0.0},
    "iso1mm_full_fov": {"voxel": (1.0, 1.0, 1.0), "tilt": 0.0, "full_fov": True},
    "aniso_tilt15": {"voxel": (0.9375, 0.9375, 1.25), "tilt": 15.0},
}


def _run_case(args) -> dict:
    import numpy as np
    import scipy.fft
    import torch

    from qsmprep.algorithms.deepqsm import deepqsm, load_model
    from qsmprep.algorithms.dipole import forward_field
    from qsmprep.algorithms.inversion.direct import tkd
    from qsmprep.algorithms.metrics import demeaned_nrmse
    from qsmprep.simulation.phantom import head_phantom

    torch.set_num_threads(args.threads)
    case = CASES[args.case]
    shape, vs = tuple(args.shape), case["voxel"]
    fov = np.array(shape) * np.array(vs)
    scale = float(min(1.0, (fov / np.array([180.0, 220.0, 180.0])).min()))
    ph = head_phantom(shape, vs, scale=scale)
    t = np.deg2rad(case["tilt"])
    b0 = (0.0, float(np.sin(t)), float(np.cos(t)))
    field = forward_field(ph.chi_brain, vs, b0, workers=args.threads)
    run_mask = np.ones(shape, bool) if case.get("full_fov") else ph.brain_mask
    model = load_model(args.weights)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    rows = []
    for rep in range(args.repeats):
        t0 = time.perf_counter()
        scipy.fft.irfftn(scipy.fft.rfftn(x, workers=args.threads), s=shape, workers=args.threads)
        base = time.perf_counter() - t0
        t0 = time.perf_counter()
        chi = deepqsm(field, vs, b0, mask=run_mask, model=model,
                      max_tile_voxels=args.max_tile_voxels, threads=args.threads)
        rows.append((time.perf_counter() - t0, base))
    ref = tkd(field, vs, b0, mask=ph.brain_mask, workers=args.threads)
    return {"seconds": min(r[0] for r in rows), "baseline": min(r[1] for r in rows),
            "ratio": min(r[0] / r[1] for r in rows),
            "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
            "nrmse": demeaned_nrmse(chi, ph.chi_brain, ph.brain_mask),
            "nrmse_tkd": demeaned_nrmse(ref, ph.chi_brain, ph.brain_mask),
            "brain_voxels": int(ph.brain_mask.sum())}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", type=int, nargs=3, default=[256, 256, 128])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--weights", default=None, help="deepqsm.pt (default: shipped weights)")
    p.add_argument("--max-tile-voxels", type=int, default=4_000_000)
    p.add_argument("--case", choices=sorted(CASES), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.case:
        print(json.dumps(_run_case(args)))
        return 0
    import torch

    print(f"# DeepQSM CPU inference, {'x'.join(map(str, args.shape))}, {args.threads} threads; "
          f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; best of {args.repeats}\n")
    print("| case | seconds | FFT pair (s) | ratio to FFT pair | peak RSS (GB) "
          "| NRMSE DeepQSM % | NRMSE TKD % |")
    print("|---|---|---|---|---|---|---|")
    for name in CASES:
        cmd = [sys.executable, __file__, "--case", name, "--shape", *map(str, args.shape),
               "--threads", str(args.threads), "--repeats", str(args.repeats),
               "--max-tile-voxels", str(args.max_tile_voxels)]
        if args.weights:
            cmd += ["--weights", args.weights]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            print(f"| {name} | failed: {out.stderr.strip().splitlines()[-1]} |||||")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {name} | {r['seconds']:.1f} | {r['baseline']:.2f} | {r['ratio']:.0f} "
              f"| {r['peak_gb']:.2f} | {r['nrmse']:.1f} | {r['nrmse_tkd']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
