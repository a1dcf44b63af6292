"""Where does each automatic-lambda rule land relative to the RMSE-optimal lambda?

For closed-form L2 from the *true* local field of the head phantom (plus Gaussian field
noise), prints per noise level the RMSE-optimal lambda (brute force over a log grid) and the
lambda chosen by UPRE with the null-cone noise spectrum (qsmprep's rule), by GCV and by the
maximum-curvature L-curve corner, with the demeaned NRMSE each gives. The in-vivo side:
benchmarks/invivo.py.

    python benchmarks/lambda_selection.py                      # 1.5 mm isotropic, axial
    python benchmarks/lambda_selection.py --voxel 1 1 2 --shape 160 192 80 --tilt 20
"""

import argparse

import numpy as np

from qsmprep.algorithms.dipole import forward_field
from qsmprep.algorithms.inversion.direct import closed_form_l2
from qsmprep.algorithms.kspace import KSpaceProblem
from qsmprep.algorithms.inversion.lambda_selection import select_lambda, sweep_l2
from qsmprep.algorithms.metrics import demeaned_nrmse
from qsmprep.simulation.phantom import head_phantom


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[128, 144, 112])
    ap.add_argument("--voxel", type=float, nargs=3, default=[1.5, 1.5, 1.5])
    ap.add_argument("--tilt", type=float, default=0.0, help="B0 tilt (deg) about array axis 0")
    ap.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.0005, 0.001, 0.002, 0.003],
                    help="field noise standard deviations (ppm)")
    a = ap.parse_args()
    vs = tuple(a.voxel)
    t = np.deg2rad(a.tilt)
    b0 = (0.0, np.sin(t), np.cos(t))
    ph = head_phantom(tuple(a.shape), vs)
    local = forward_field(ph.chi_brain, vs, b0)
    m = ph.brain_mask
    rng = np.random.default_rng(0)
    grid = np.logspace(-5, 0, 31)
    print(f"phantom {a.shape} at {vs} mm, B0 tilt {a.tilt} deg")
    print("| noise (ppm) | optimal lambda | NRMSE % | UPRE lambda (x opt) | NRMSE % | "
          "GCV lambda (x opt) | NRMSE % | L-curve corner (x opt) | NRMSE % |")
    print("|---|---|---|---|---|---|---|---|---|")
    for sd in a.noise:
        f = local + np.float32(sd) * rng.standard_normal(local.shape).astype(np.float32)
        prob = KSpaceProblem(f, vs, b0, mask=m)
        errs = [demeaned_nrmse(closed_form_l2(f, vs, b0, lam, mask=m, problem=prob), ph.chi, m)
                for lam in grid]
        i = int(np.argmin(errs))
        sweep = sweep_l2(prob.spectrum, prob.d, prob.e2)
        row = [f"{sd:g}", f"{grid[i]:.2e}", f"{errs[i]:.1f}"]
        for rule in ("upre", "gcv", "lcurve"):
            lam = select_lambda(sweep, rule)
            err = demeaned_nrmse(closed_form_l2(f, vs, b0, lam, mask=m, problem=prob), ph.chi, m)
            row += [f"{lam:.2e} ({lam / grid[i]:.2g}x)", f"{err:.1f}"]
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
