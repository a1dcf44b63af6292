"""Speed of the k-space stages, as ratios to one FFT pair measured in the same run.

    python benchmarks/bench_inversion.py [--shape 256 256 128] [--repeats 5] [--profile]

Data: the head phantom (``qsmprep.simulation.phantom.head_phantom``) rasterised on
``--shape`` at ``--voxel-size`` (1 mm isotropic by default), scaled so the whole head
fits the matrix. The local field is the forward field of the brain's susceptibility
(``forward_field(ph.chi_brain, ...)``); the background-removal and unwrapping rows use
the total field of the whole head (brain, skull, air) and phases at 3 T.

Baseline: one ``scipy.fft.rfftn`` + ``irfftn`` pair (float32, ``default_workers()``
threads) on the padded grid ``KSpaceProblem(...).shape`` that the L2 solve uses.
Every operation gets one untimed warm-up run, then ``--repeats`` timed runs
(``time.perf_counter``), each immediately preceded by a timed baseline pair; the
"seconds" column is the median of the runs and the ratio is the median of the paired
ratios (run / adjacent baseline), which cancels most of the drift on a shared machine.
Ratios, not seconds, are what compare across machines. Goals:

* closed-form L2, one solve (the whole ``closed_form_l2`` call, building the
  ``KSpaceProblem`` included): <= 2x the baseline;
* the 25-lambda sweep (``sweep_l2`` over ``DEFAULT_LAMBDAS``) + ``select_lambda`` on an
  already built problem (its kernels cached): <= 3x one L2 solve.

``--profile`` adds a stage-by-stage breakdown and a cProfile listing of one L2 solve.
This is a benchmark that prints a table, not a timed test: it never fails on a miss.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import statistics
import sys
import time


import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.fft  # noqa: E402

from qsmprep.algorithms.background.sharp import vsharp  # noqa: E402
from qsmprep.algorithms.dipole import dipole_kernel, forward_field  # noqa: E402
from qsmprep.algorithms.fft import crop_to, default_workers, fast_shape, pad_to  # noqa: E402
from qsmprep.algorithms.inversion.direct import closed_form_l2, tkd  # noqa: E402
from qsmprep.algorithms.kspace import KSpaceProblem, gradient_kernel_sq  # noqa: E402
from qsmprep.algorithms.inversion.lambda_selection import (  # noqa: E402
    DEFAULT_LAMBDAS,
    select_lambda,
    sweep_l2,
)
from qsmprep.algorithms.background.pdf import pdf  # noqa: E402
from qsmprep.algorithms.phase import GAMMA_BAR_HZ_PER_T, wrap  # noqa: E402
from qsmprep.algorithms.unwrap.laplacian import laplacian_unwrap, temporal_unwrap  # noqa: E402
from qsmprep.simulation.phantom import head_phantom  # noqa: E402

B0_TESLA = 3.0
B0_DIR = (0.0, 0.0, 1.0)
ECHO_TIMES = (0.004, 0.008, 0.012, 0.016)  # s
FIXED_LAMBDA = 1e-3  # mm^2: multiplies ||G chi||^2 (see inversion.py); the solve time does not depend on it
# Half extents (mm) of the phantom's head at scale 1: ellipsoid radii (82, 100, 80)
# centred at z = -5, so z spans -85..75 mm.
HEAD_HALF_EXTENT_MM = (82.0, 100.0, 85.0)


# --------------------------------------------------------------------------- timing
def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


class PairedTimer:
    """Times operations against a baseline run right before each timed run."""

    def __init__(self, baseline, repeats: int):
        self.baseline = baseline
        self.repeats = repeats
        self.base_times: list[float] = []
        baseline()  # warm-up

    def __call__(self, fn) -> tuple[float, float]:
        """``(median seconds, median ratio to the adjacent baseline)`` of ``fn``."""
        fn()  # warm-up
        times, ratios = [], []
        for _ in range(self.repeats):
            b = _timed(self.baseline)
            t = _timed(fn)
            self.base_times.append(b)
            times.append(t)
            ratios.append(t / b)
        return statistics.median(times), statistics.median(ratios)


# --------------------------------------------------------------------------- data
def make_data(shape, voxel_size):
    """Phantom, local field, total field, 4-echo phases and magnitudes."""
    fit = min(0.95 * n * h / (2.0 * e) for n, h, e in zip(shape, voxel_size, HEAD_HALF_EXTENT_MM))
    scale = min(1.0, fit)
    ph = head_phantom(tuple(shape), tuple(voxel_size), scale=scale)
    local = forward_field(ph.chi_brain, voxel_size, B0_DIR)
    total = forward_field(ph.chi, voxel_size, B0_DIR)
    head = ph.labels != 22  # no signal in air
    hz = total * np.float32(GAMMA_BAR_HZ_PER_T * B0_TESLA * 1e-6)
    rng = np.random.default_rng(0)
    offset = rng.uniform(-np.pi, np.pi) + 0.5 * np.sin(np.linspace(0, np.pi, shape[0]))[:, None, None]
    phases = np.empty(tuple(shape) + (len(ECHO_TIMES),), np.float32)
    mags = np.empty_like(phases)
    for j, te in enumerate(ECHO_TIMES):
        phases[..., j] = np.where(head, wrap(2 * np.pi * hz * te + offset), 0)
        mags[..., j] = ph.proton_density * np.exp(-ph.r2star * te)
    return {
        "phantom": ph,
        "scale": scale,
        "mask": ph.brain_mask,
        "local": local,
        "total": total,
        "phases": phases,
        "mags": mags,
    }


# --------------------------------------------------------------------------- profiling
def profile_l2(field, mask, voxel_size, repeats: int) -> None:
    """Stage breakdown of one closed-form L2 solve, mirroring ``closed_form_l2``.

    The stages re-run the steps of ``KSpaceProblem.__init__``, ``l2_kernel`` and
    ``apply`` one by one with the package's own helpers, so the sum matches the real
    call to within timer noise; the cProfile listing below it profiles the real call.
    """
    workers = default_workers()
    stages: dict[str, list[float]] = {}

    def stage(name, t0):
        stages.setdefault(name, []).append(time.perf_counter() - t0)
        return time.perf_counter()

    def once(record: bool):
        t = time.perf_counter()
        f = np.asarray(field, dtype=np.float32)
        f = np.where(mask, f, np.float32(0))
        t = stage("input: asarray + where(mask)", t)
        shape = fast_shape(f.shape, 8)
        padded, sl = pad_to(f, shape)
        t = stage("pad_to (zeros + copy)", t)
        spec = scipy.fft.rfftn(padded, workers=workers)
        t = stage("rfftn", t)
        d = dipole_kernel(shape, voxel_size, B0_DIR)
        t = stage("dipole_kernel D (3-D float32)", t)
        e2 = gradient_kernel_sq(shape, voxel_size)
        t = stage("gradient_kernel_sq E2 (float64 axes)", t)
        denom = d * d + np.float32(FIXED_LAMBDA) * e2
        denom[0, 0, 0] = 1.0
        k = d / denom
        k[0, 0, 0] = 0.0
        t = stage("l2_kernel arithmetic D/(D^2+lam E2)", t)
        spec = spec * k
        t = stage("spectrum * kernel (new complex64)", t)
        out = scipy.fft.irfftn(spec, s=shape, workers=workers, overwrite_x=True)
        t = stage("irfftn", t)
        chi = crop_to(out, sl).astype(np.float32, copy=False)
        t = stage("crop_to (copy)", t)
        chi = np.where(mask, chi, np.float32(0))
        stage("output: where(mask)", t)
        if not record:
            stages.clear()
        return chi

    once(record=False)
    for _ in range(repeats):
        once(record=True)
    total = sum(statistics.median(v) for v in stages.values())
    print("\n### Closed-form L2: stage breakdown (median of %d)\n" % repeats)
    print("| stage | seconds | share |")
    print("|---|---:|---:|")
    for name, v in stages.items():
        m = statistics.median(v)
        print(f"| {name} | {m:.4f} | {100 * m / total:.0f}% |")
    print(f"| **sum** | {total:.4f} | 100% |")

    pr = cProfile.Profile()
    pr.enable()
    closed_form_l2(field, voxel_size, B0_DIR, FIXED_LAMBDA, mask=mask)
    pr.disable()
    buf = io.StringIO()
    pstats.Stats(pr, stream=buf).sort_stats("tottime").print_stats(12)
    print("\n### cProfile of closed_form_l2 (one call, by tottime)\n")
    print("```")
    print("\n".join(line for line in buf.getvalue().splitlines() if line.strip())[:4000])
    print("```")


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(256, 256, 128), metavar=("NX", "NY", "NZ"))
    ap.add_argument("--voxel-size", type=float, nargs=3, default=(1.0, 1.0, 1.0), metavar=("HX", "HY", "HZ"))
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per row (after one warm-up)")
    ap.add_argument("--skip", nargs="*", default=(), choices=("tkd", "vsharp", "pdf", "laplacian", "temporal"),
                    help="rows to leave out (the L2 rows always run)")
    ap.add_argument("--profile", action="store_true", help="also print an L2 stage breakdown and cProfile")
    args = ap.parse_args(argv)
    shape, vs, repeats = tuple(args.shape), tuple(args.voxel_size), max(1, args.repeats)
    workers = default_workers()

    t0 = time.perf_counter()
    data = make_data(shape, vs)
    t_data = time.perf_counter() - t0
    mask, local = data["mask"], data["local"]

    prob_shape = KSpaceProblem(local, vs, B0_DIR, mask=mask).shape
    x = np.random.default_rng(1).standard_normal(prob_shape).astype(np.float32)

    def fft_pair():
        scipy.fft.irfftn(scipy.fft.rfftn(x, workers=workers), s=prob_shape, workers=workers,
                         overwrite_x=True)

    timer = PairedTimer(fft_pair, repeats)
    rows = []  # (operation, seconds, ratio to baseline, goal text, met)

    def l2_solve():
        return closed_form_l2(local, vs, B0_DIR, FIXED_LAMBDA, mask=mask)

    t_l2, r_l2 = timer(l2_solve)
    rows.append(("closed-form L2, one solve (whole call, KSpaceProblem included)", t_l2, r_l2,
                 "<= 2x baseline", r_l2 <= 2.0))

    prob = KSpaceProblem(local, vs, B0_DIR, mask=mask)
    _ = prob.e2  # kernels cached, as after (or before) the solve that uses the same problem
    chosen = {}

    def sweep():
        sw = sweep_l2(prob.spectrum, prob.d, prob.e2, DEFAULT_LAMBDAS)
        chosen["lam"] = select_lambda(sw)

    t_sw, r_sw = timer(sweep)
    rows.append((f"lambda sweep ({len(DEFAULT_LAMBDAS)} lambdas) + select_lambda, problem prebuilt", t_sw, r_sw,
                 f"<= 3x one L2 solve (is {r_sw / r_l2:.2f}x)", r_sw / r_l2 <= 3.0))

    def auto_l2():
        p = KSpaceProblem(local, vs, B0_DIR, mask=mask)
        lam = select_lambda(sweep_l2(p.spectrum, p.d, p.e2, DEFAULT_LAMBDAS))
        return closed_form_l2(local, vs, B0_DIR, lam, mask=mask, problem=p)

    t_auto, r_auto = timer(auto_l2)
    rows.append(("closed-form L2 with automatic lambda (problem + sweep + select + solve)", t_auto, r_auto,
                 f"- (is {r_auto / r_l2:.2f}x one solve)", None))

    def add(name, fn):
        t, r = timer(fn)
        rows.append((name, t, r, "-", None))

    if "tkd" not in args.skip:
        add("TKD (threshold 0.19)", lambda: tkd(local, vs, B0_DIR, mask=mask))
    if "vsharp" not in args.skip:
        add("V-SHARP (default radii, total field)", lambda: vsharp(data["total"], mask, vs))
    if "pdf" not in args.skip:
        iters = {}

        def run_pdf():
            iters["n"] = pdf(data["total"], mask, vs, B0_DIR)[1]

        t, r = timer(run_pdf)
        rows.append((f"PDF (total field, {iters['n']} CG iterations)", t, r, "-", None))
    if "laplacian" not in args.skip:
        add("Laplacian unwrapping (one echo)", lambda: laplacian_unwrap(data["phases"][..., 0], vs))
    if "temporal" not in args.skip:
        add(f"temporal unwrapping ({len(ECHO_TIMES)} echoes, magnitude-weighted)",
            lambda: temporal_unwrap(data["phases"], ECHO_TIMES, vs, magnitudes=data["mags"]))
    base = statistics.median(timer.base_times)
    spread = (min(timer.base_times), max(timer.base_times))

    # ----------------------------------------------------------------- report
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        affinity = os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    print(f"## qsmprep k-space benchmark: {'x'.join(map(str, shape))} at "
          f"{'x'.join(f'{v:g}' for v in vs)} mm\n")
    print(f"- machine: {platform.machine()} {platform.processor() or ''}".rstrip()
          + f", os.cpu_count()={os.cpu_count()}, usable CPUs={affinity}, "
            f"load average {', '.join(f'{v:.2f}' for v in load)}")
    print(f"- FFT workers: {workers} (QSMPREP_FFT_WORKERS={os.environ.get('QSMPREP_FFT_WORKERS', 'unset')})")
    print(f"- python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}")
    print(f"- phantom scale {data['scale']:.3f}, brain mask {int(mask.sum())} voxels, "
          f"data built in {t_data:.1f} s; padded FFT grid {'x'.join(map(str, prob_shape))}")
    print(f"- {repeats} timed runs per row after one warm-up, each paired with a baseline run "
          f"(baseline min/median/max {spread[0]:.4f}/{base:.4f}/{spread[1]:.4f} s); "
          f"fixed lambda {FIXED_LAMBDA:g}; GCV-selected lambda {chosen['lam']:.3g}\n")
    if spread[1] > 1.5 * spread[0]:
        print(f"> **Busy machine**: the baseline varied {spread[1] / spread[0]:.1f}x between runs. Other load "
              "takes cores from the multi-threaded FFTs more than from the single-threaded numpy work, so "
              "the ratios below are biased low; re-run on an idle machine (or with QSMPREP_FFT_WORKERS=1) "
              "before judging the goals.\n")
    print("| operation | seconds (median) | ratio to baseline (median of paired) | goal | met? |")
    print("|---|---:|---:|---|:---:|")
    print(f"| baseline: rfftn + irfftn, float32, {'x'.join(map(str, prob_shape))} | {base:.4f} | 1.00 | - | - |")
    for name, sec, ratio, goal, met in rows:
        flag = "-" if met is None else ("yes" if met else "**no**")
        print(f"| {name} | {sec:.4f} | {ratio:.2f} | {goal} | {flag} |")

    if args.profile:
        profile_l2(local, mask, vs, repeats)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
