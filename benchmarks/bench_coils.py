"""Coil-combination speed and memory: 32 channels x 256 x 256 x 64 x 4 echoes (default).

Channel data (simulated loops, an object with a field and a receiver offset, noise) is
written once to .npy files and read back one echo at a time, as the CombineCoils node
reads one NIfTI echo at a time; reading is inside the timing (from the page cache).
Prints seconds, the ratio to one FFT pair (rfftn + irfftn) of the same grid measured
in this run, and the peak of Python/numpy allocations (tracemalloc) during the
combination, plus the process's peak resident size.

    python benchmarks/bench_coils.py [--channels 32] [--shape 256 256 64] [--echoes 4]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import tracemalloc

import numpy as np
import scipy.fft

from qsmprep.algorithms.coils.combine import combine_coils
from qsmprep.algorithms.fft import default_workers
from qsmprep.simulation.coils import body_coil_sensitivity, coil_sensitivities


class NpyEchoes:
    """Echo ``j`` loaded (copied into memory) from ``echo-j.npy``."""

    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, j):
        return np.array(np.load(self.paths[j], mmap_mode="r"))


def make_data(folder, shape, voxel, n_ch, te):
    axes = [(np.arange(n) - (n - 1) / 2) * h for n, h in zip(shape, voxel)]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    obj = ((x / 85) ** 2 + (y / 105) ** 2 + (z / 60) ** 2 <= 1).astype(np.float32)
    omega = (2 * np.pi * (0.8 * x + 0.3 * y) + 200 * np.exp(-(x * x + y * y + z * z) / 400)).astype(np.float32)
    sens = coil_sensitivities(shape, voxel, n_ch, seed=0)
    rng = np.random.default_rng(0)
    paths, body = [], []
    for j, t in enumerate(te):
        rho = (obj * np.exp(1j * (0.7 + omega * t))).astype(np.complex64)
        arr = np.empty((n_ch,) + tuple(shape), np.complex64)
        for c in range(n_ch):
            noise = rng.standard_normal((2,) + tuple(shape), dtype=np.float32)
            arr[c] = sens[c] * rho + np.float32(0.01) * (noise[0] + 1j * noise[1])
        p = os.path.join(folder, f"echo-{j}.npy")
        np.save(p, arr)
        paths.append(p)
        body.append(body_coil_sensitivity(shape, voxel) * rho)
        del arr
    return NpyEchoes(paths), body


def fft_pair_seconds(shape, workers, repeats=3):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        scipy.fft.irfftn(scipy.fft.rfftn(x, workers=workers), s=shape, workers=workers)
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--shape", type=int, nargs=3, default=(256, 256, 64))
    ap.add_argument("--voxel", type=float, nargs=3, default=(0.9, 0.9, 2.0))
    ap.add_argument("--echoes", type=int, default=4)
    args = ap.parse_args(argv)
    shape, voxel = tuple(args.shape), tuple(args.voxel)
    te = [0.004 * (j + 1) for j in range(args.echoes)]
    workers = default_workers()
    with tempfile.TemporaryDirectory(prefix="bench_coils_") as tmp:
        echoes, body = make_data(tmp, shape, voxel, args.channels, te)
        base = fft_pair_seconds(shape, workers)
        gb = args.channels * np.prod(shape) * 8 / 1e9
        print(f"grid {shape} voxel {voxel} mm, {args.channels} channels, {args.echoes} echoes "
              f"({gb:.2f} GB complex64 per echo), {workers} FFT workers")
        print(f"baseline: one FFT pair of the grid = {base:.3f} s")
        print(f"{'method':<18} {'seconds':>8} {'x FFT pair':>11} {'peak alloc GB':>14}")
        for method in ("mcpc3ds", "bodycoil", "adaptive"):
            n = 1 if method == "adaptive" else args.echoes
            sub = NpyEchoes(echoes.paths[:n])
            tracemalloc.start()
            t = time.perf_counter()
            res = combine_coils(sub, te[:n], voxel, body=body if method == "bodycoil" else None,
                                method=method, workers=workers)
            dt = time.perf_counter() - t
            peak = tracemalloc.get_traced_memory()[1] / 1e9
            tracemalloc.stop()
            assert res.method == method
            label = method + ("" if n == args.echoes else f" ({n} echo)")
            print(f"{label:<18} {dt:8.2f} {dt / base:11.1f} {peak:14.2f}")
            del res
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"process peak resident size (whole run incl. data generation): {rss:.2f} GB")


if __name__ == "__main__":
    main()
