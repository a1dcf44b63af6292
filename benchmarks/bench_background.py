"""Speed and accuracy of brain masks and background field removal at 256 x 256 x 128.

Times are printed in seconds and as ratios to one FFT pair (rfftn + irfftn) of the full
grid measured in the same run, so tables from different machines compare. Accuracy is the
demeaned NRMSE (%) of the local field against the truth (the field of the brain's own
susceptibility) inside the method's mask eroded by 3 voxels, and the Dice of each mask with
the phantom's brain mask. Usage:

    QSMPREP_FFT_WORKERS=2 python benchmarks/bench_background.py [--shape 256 256 128]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.fft
from scipy import ndimage

from qsmprep.algorithms.background.sharp import sharp, vsharp
from qsmprep.algorithms.dipole import forward_field
from qsmprep.algorithms.fft import default_workers
from qsmprep.algorithms.mask.masking import magnitude_mask, phase_quality_mask
from qsmprep.algorithms.metrics import demeaned_nrmse
from qsmprep.algorithms.background.pdf import pdf
from qsmprep.simulation.phantom import head_phantom


def _timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(256, 256, 128))
    ap.add_argument("--voxel", type=float, nargs=3, default=(1.0, 1.0, 1.5))
    args = ap.parse_args(argv)
    shape, vs, b0 = tuple(args.shape), tuple(args.voxel), (0.0, 0.0, 1.0)
    workers = default_workers()
    ph = head_phantom(shape, vs)
    total = forward_field(ph.chi, vs, b0, workers=workers)
    local = forward_field(ph.chi_brain, vs, b0, workers=workers)
    omega = 2 * np.pi * 42.577478e6 * 3.0 * 1e-6 * total
    rng = np.random.default_rng(0)
    sigma = float(ph.proton_density[ph.brain_mask].mean()) / 50.0
    tes = (0.004, 0.010, 0.016, 0.022)
    sig = np.stack([ph.proton_density * np.exp(-ph.r2star * te) * np.exp(1j * omega * te)
                    + sigma * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))
                    for te in tes], -1)
    mag, phase = np.abs(sig).astype(np.float32), np.angle(sig).astype(np.float32)
    del sig

    x = rng.standard_normal(shape).astype(np.float32)
    scipy.fft.irfftn(scipy.fft.rfftn(x, workers=workers), s=shape, workers=workers)
    reps = 5
    t = time.perf_counter()
    for _ in range(reps):
        scipy.fft.irfftn(scipy.fft.rfftn(x, workers=workers), s=shape, workers=workers)
    fft_pair = (time.perf_counter() - t) / reps

    rows = []
    mask = ph.brain_mask
    eroded = ndimage.binary_erosion(mask, iterations=3)
    (lp, iters), tp = _timed(pdf, total, mask, vs, b0, workers=workers)
    rows.append((f"PDF ({iters} it)", tp, demeaned_nrmse(lp, local, eroded), "100%"))
    (ls, ms), ts = _timed(sharp, total, mask, vs, workers=workers)
    rows.append(("SHARP 6 mm", ts, demeaned_nrmse(ls, local, ms & eroded),
                 f"{100 * ms.sum() / mask.sum():.0f}%"))
    (lv, mv), tv = _timed(vsharp, total, mask, vs, workers=workers)
    rows.append(("V-SHARP", tv, demeaned_nrmse(lv, local, mv & eroded),
                 f"{100 * mv.sum() / mask.sum():.0f}%"))
    mm, tm = _timed(magnitude_mask, mag, vs)
    mq, tq = _timed(phase_quality_mask, mag, phase, vs)

    def dice(a):
        return 2 * (a & mask).sum() / (a.sum() + mask.sum())

    print(f"grid {shape} voxel {vs} mm, {workers} FFT workers; one FFT pair {fft_pair:.3f} s")
    print(f"{'method':<16}{'seconds':>9}{'x FFT pair':>12}{'NRMSE %':>9}{'mask kept':>11}")
    for name, sec, err, kept in rows:
        print(f"{name:<16}{sec:>9.2f}{sec / fft_pair:>12.0f}{err:>9.1f}{kept:>11}")
    print(f"{'mask':<16}{'seconds':>9}{'x FFT pair':>12}{'Dice':>9}")
    for name, sec, m in (("magnitude", tm, mm), ("phase quality", tq, mq)):
        print(f"{name:<16}{sec:>9.2f}{sec / fft_pair:>12.0f}{dice(m):>9.3f}")


if __name__ == "__main__":
    main()
