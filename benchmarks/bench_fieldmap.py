"""Speed and accuracy of the field-map chain: unwrapping, echo fits, R2*/T2*.

    python benchmarks/bench_fieldmap.py [--shape 256 256 128] [--repeats 1] [--snr 50] [--skip full]

Data: the head phantom (``qsmprep.simulation.phantom.head_phantom``) on ``--shape`` at 1 mm,
scaled to fit the matrix (0.715 for 256x256x128); total field ``forward_field(ph.chi)`` of the
whole head (B0 along axis 2); 3 T, TE = 4, 8, 12, 16 ms; signal
``PD exp(-R2* TE) exp(i (phi0 + omega TE))`` with a smooth phase offset ``phi0`` (0.8 x - 0.5 y
+ 0.3 x y on [-1, 1]^2, radians) plus complex Gaussian noise of std ``mean brain PD / snr``.
Unwrapping and fits run inside the phantom's brain mask (``mask frac`` in the header).

Baseline: one ``scipy.fft.rfftn`` + ``irfftn`` pair (float32, ``default_workers()`` threads) on
``fast_shape(shape)``. Each row: one untimed warm-up, then ``--repeats`` runs, each preceded by
a timed baseline; ``seconds`` is the median run, ``ratio`` the median of run / adjacent baseline.

Accuracy columns: ``wrong``: fraction of (voxel, echo) pairs in the brain mask whose unwrapped
phase is not the true phase up to the single most common global 2 pi k (voxels whose true
phase steps by more than pi to a neighbour cannot be unwrapped spatially and are counted);
``rmse``: field RMSE (ppm) in the brain mask, or R2* median absolute relative error.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time


import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.fft  # noqa: E402

from qsmprep.algorithms.dipole import forward_field  # noqa: E402
from qsmprep.algorithms.echoes.echofit import fit_field, fit_field_nonlinear  # noqa: E402
from qsmprep.algorithms.fft import default_workers, fast_shape  # noqa: E402
from qsmprep.algorithms.phase import GAMMA_BAR_HZ_PER_T  # noqa: E402
from qsmprep.algorithms.echoes.r2star import r2star_arlo, r2star_loglinear  # noqa: E402
from qsmprep.algorithms.unwrap.romeo import romeo_unwrap  # noqa: E402
from qsmprep.algorithms.unwrap.laplacian import laplacian_unwrap, make_congruent, temporal_unwrap  # noqa: E402
from qsmprep.simulation.phantom import head_phantom  # noqa: E402

TE = np.array([4e-3, 8e-3, 12e-3, 16e-3])
B0 = 3.0


def simulate(shape, snr, seed=0):
    scale = 0.715 * min(s / d for s, d in zip(shape, (256, 256, 128)))
    ph = head_phantom(shape, (1.0, 1.0, 1.0), scale=scale)
    total = forward_field(ph.chi, (1.0, 1.0, 1.0), (0.0, 0.0, 1.0))
    omega = 2 * np.pi * GAMMA_BAR_HZ_PER_T * B0 * 1e-6 * total
    x = np.linspace(-1, 1, shape[0], dtype=np.float32)[:, None, None]
    y = np.linspace(-1, 1, shape[1], dtype=np.float32)[None, :, None]
    offset = np.broadcast_to(0.8 * x - 0.5 * y + 0.3 * x * y, shape).astype(np.float32)
    truth = (offset[..., None] + omega[..., None] * TE).astype(np.float32)
    sig = ph.proton_density[..., None] * np.exp(-ph.r2star[..., None] * TE) * np.exp(1j * truth)
    rng = np.random.default_rng(seed)
    sigma = float(ph.proton_density[ph.brain_mask].mean()) / snr
    sig = sig + sigma * (rng.standard_normal(sig.shape) + 1j * rng.standard_normal(sig.shape))
    return (ph, total.astype(np.float32), truth, np.angle(sig).astype(np.float32),
            np.abs(sig).astype(np.float32))


def timed(fn, baseline, repeats):
    fn()  # warm-up
    secs, ratios = [], []
    for _ in range(repeats):
        b = baseline()
        t = time.perf_counter()
        out = fn()
        s = time.perf_counter() - t
        secs.append(s)
        ratios.append(s / b)
    return statistics.median(secs), statistics.median(ratios), out


def wrong_fraction(u, truth, mask):
    k = np.rint((u - truth)[mask] / (2 * np.pi))
    vals, counts = np.unique(k, return_counts=True)
    return float(np.mean(k != vals[np.argmax(counts)]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(256, 256, 128))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--snr", type=float, default=50.0)
    ap.add_argument("--skip", nargs="*", default=[], help="row keys to skip (e.g. full laplacian)")
    args = ap.parse_args(argv)
    shape = tuple(args.shape)
    workers = default_workers()
    ph, total, truth, phase, mag = simulate(shape, args.snr)
    mask = ph.brain_mask
    grid = fast_shape(shape)
    arr = np.random.default_rng(0).standard_normal(grid).astype(np.float32)

    def baseline():
        t = time.perf_counter()
        scipy.fft.irfftn(scipy.fft.rfftn(arr, workers=workers), s=grid, workers=workers)
        return time.perf_counter() - t

    base = statistics.median(baseline() for _ in range(3))
    print(f"# bench_fieldmap: shape {shape} x {len(TE)} echoes, SNR {args.snr:g}, mask frac "
          f"{mask.mean():.3f} ({int(mask.sum())} voxels)")
    print(f"# cpus {os.cpu_count()}, usable {len(os.sched_getaffinity(0))}, load {os.getloadavg()[0]:.2f}, "
          f"fft workers {workers}, numpy {np.__version__}, scipy {scipy.__version__}, "
          f"python {platform.python_version()}")
    print(f"# baseline: one rfftn+irfftn pair on {grid}: {base:.3f} s\n")
    print("| row | seconds | ratio to FFT pair | wrong | rmse |")
    print("|---|---|---|---|---|")
    vs = (1.0, 1.0, 1.0)
    rows = {
        "romeo": lambda: romeo_unwrap(phase, TE, mag, mask),
        "romeo-exact": lambda: romeo_unwrap(phase, TE, mag, mask, coarse_fraction=0.0),
        "romeo-individual": lambda: romeo_unwrap(phase, TE, mag, mask, individual=True),
        "full": lambda: romeo_unwrap(phase, TE, mag, None),
        "temporal": lambda: temporal_unwrap(phase, TE, vs, magnitudes=mag, workers=workers),
        "laplacian": lambda: np.stack([make_congruent(phase[..., j], laplacian_unwrap(
            phase[..., j], vs, workers=workers)) for j in range(len(TE))], -1),
    }
    unwrapped = None
    for key, fn in rows.items():
        if key in args.skip:
            continue
        s, r, u = timed(fn, baseline, args.repeats)
        label = {"romeo": "romeo, 4 echoes, template 2, brain mask",
                 "romeo-exact": "romeo, exact spanning tree (coarse_fraction 0)",
                 "romeo-individual": "romeo, every echo spatially",
                 "full": "romeo, 4 echoes, no mask (full grid)",
                 "temporal": "temporal (Laplacian echo difference)",
                 "laplacian": "laplacian, each echo"}[key]
        print(f"| {label} | {s:.2f} | {r:.1f} | {wrong_fraction(u, truth, mask):.2e} | |")
        if key == "romeo":
            unwrapped = u
    if unwrapped is None:
        unwrapped = romeo_unwrap(phase, TE, mag, mask)
    for key, fn in (("fit-linear", lambda: fit_field(unwrapped, mag, TE, B0, mask)),
                    ("fit-nonlinear", lambda: fit_field_nonlinear(unwrapped, mag, TE, B0, mask))):
        if key in args.skip:
            continue
        s, r, fit = timed(fn, baseline, args.repeats)
        err = (fit.field_ppm - total)[mask]
        rmse, med = float(np.sqrt(np.mean(err**2))), float(np.median(np.abs(err)))
        print(f"| field {key[4:]} fit (after romeo) | {s:.2f} | {r:.1f} | | {rmse:.4f} ppm "
              f"(median abs {med:.4f}) |")
    for key, fn in (("r2-loglinear", lambda: r2star_loglinear(mag, TE, mask)),
                    ("r2-arlo", lambda: r2star_arlo(mag, TE, mask))):
        if key in args.skip:
            continue
        s, r, res = timed(fn, baseline, args.repeats)
        tissue = mask & (ph.r2star >= 10)  # not CSF (4 1/s)
        err = float(np.median(np.abs(res.r2star - ph.r2star)[tissue] / ph.r2star[tissue]))
        print(f"| R2* {key[3:]} | {s:.2f} | {r:.1f} | | {err:.3f} (median rel., tissue) |")


if __name__ == "__main__":
    main()
