"""Automatic regularisation weight for closed-form L2, from one k-space sweep.

For the closed-form L2 problem (see :mod:`qsmprep.algorithms.inversion.direct`, where
``lambda`` multiplies ``sum_i ||G_i chi||^2`` with gradients in 1/mm) every
quantity of the L-curve has a closed form in k-space. With ``P = |F(phi)|^2``
(Parseval-weighted half spectrum), ``D`` the dipole kernel, ``E2`` the squared
gradient kernel and ``h = D^2 / (D^2 + lambda E2)`` the filter factor:

    data residual   rho(lambda) = sum P (1 - h)^2 / N
    regulariser     eta(lambda) = sum E2 P D^2 / (D^2 + lambda E2)^2 / N
    GCV(lambda)     = N rho / (sum (1 - h))^2

so a sweep of 25 lambdas costs a few elementwise passes per lambda over the
spectrum that one solve already computed, and no inverse transform.

Selection rules:

``rule="upre"`` (the default): the minimiser of the unbiased predictive risk
(Mallows' C_L, Vogel 2002 ch. 7) with a *coloured* noise spectrum estimated from the
data themselves, in the dipole kernel's null cone:

    UPRE(lambda) = [sum P (1 - h)^2 + 2 sum w N h - sum w N] / N_pts

``N(k)`` is the field's power where ``|D| < 0.02`` (the field of any susceptibility
distribution vanishes there, so what the data hold there is noise and model error),
a robust (median) level in each of 16 shells of ``|k|`` (:func:`cone_noise_spectrum`). On phantoms with white
noise this is the classical rule (GCV and UPRE agree); in vivo the local field has
errors that are far from white (background residuals, streaking sources, anisotropy:
on the 2016 challenge field the cone holds 30-50% of the off-cone power in every
shell, on phantoms 0.5-3%), which GCV takes for signal. Measured (docs/invivo.md,
benchmarks/lambda_selection.py): challenge field 0.9x the RMSE-optimal lambda where
GCV lands at 0.06x; head phantoms at noise 0 to 0.005 ppm 1.1x to 1.8x (GCV 0.7-1.2x).
The noise-free phantoms land highest: the mask's truncation of the field leaks some
signal into the cone.

``rule="gcv"``: generalised cross-validation (Golub, Heath & Wahba, Technometrics
1979), white-noise assumption; kept for comparison and for the methods whose factors
were measured against it (FOCUSS beta, TFI). ``rule="lcurve"``: the maximum-curvature
corner of the log-log L-curve, 7x to 3000x too low on phantoms, 1300x on the challenge
field. GCV and UPRE are refined by a parabola in log(lambda).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fft import rfft_weights

__all__ = ["LambdaSweep", "sweep_l2", "select_lambda", "choose_l2_lambda", "cone_noise_spectrum", "DEFAULT_LAMBDAS",
           "LAMBDA_RULES", "lambda_curve"]

DEFAULT_LAMBDAS = np.logspace(-5, 0, 25)
LAMBDA_RULES = ("upre", "gcv", "lcurve")
#: ``|D|`` below which the field is taken as noise (dipole null cone), and |k| shells
CONE_THRESHOLD = 0.02
NOISE_SHELLS = 16


@dataclass(frozen=True)
class LambdaSweep:
    """Sweep result: per lambda the data residual, regulariser, GCV and UPRE."""

    lambdas: np.ndarray
    residual: np.ndarray
    regulariser: np.ndarray
    gcv: np.ndarray
    upre: np.ndarray | None = None
    noise: float = 0.0       # estimated noise energy sum w N / N_pts (ppm^2 x voxels)

    def curvature(self) -> np.ndarray:
        """Signed curvature of the log-log L-curve (log residual, log regulariser)."""
        t = np.log(self.lambdas)
        x = np.log(self.residual)
        y = np.log(self.regulariser)
        dx, dy = np.gradient(x, t), np.gradient(y, t)
        ddx, ddy = np.gradient(dx, t), np.gradient(dy, t)
        return (dx * ddy - ddx * dy) / np.maximum((dx * dx + dy * dy) ** 1.5, 1e-30)


def cone_noise_spectrum(power, d2, e2, weights, cone: float = CONE_THRESHOLD,
                        shells: int = NOISE_SHELLS, min_points: int = 8) -> np.ndarray:
    """Noise power per k-space point, estimated in the dipole kernel's null cone.

    ``power`` = ``|F(phi)|^2`` (flat, unweighted), ``d2`` = ``D^2``, ``e2`` the squared
    gradient kernel, ``weights`` the Parseval multiplicities (0 where a point is to be
    ignored). ``|k|`` is measured as ``sqrt(e2 / max e2)`` (voxel-size aware) and cut into
    ``shells`` equal shells; in each, the median power of the points with ``|D| < cone``,
    divided by ln 2 (the median of an exponential variable, which ``|F|^2`` of Gaussian
    noise is), is the noise power of every point of the shell. The median resists the
    few low-k points where the mask's truncation leaks signal into the cone (with the
    mean the choice moved 2.7x between two crops of the same in-vivo field). Shells
    with fewer than ``min_points`` cone points take the nearest shells' value. A white
    noise of variance ``s^2`` in ``n`` voxels gives ``s^2 n`` everywhere.
    """
    kk = np.sqrt(e2 / max(float(e2.max()), 1e-30))
    b = np.minimum((kk * shells).astype(np.int32), shells - 1)
    in_cone = (d2 < np.float32(cone * cone)) & (weights > 0)
    pc, bc = power[in_cone], b[in_cone]
    level = np.full(shells, np.nan)
    for i in range(shells):
        v = pc[bc == i]
        if v.size >= min_points:
            level[i] = float(np.median(v)) / np.log(2.0)
    have = np.isfinite(level)
    if not have.any():
        return np.zeros_like(power)
    centres = np.arange(shells, dtype=np.float64)
    level = np.interp(centres, centres[have], level[have])
    return level.astype(np.float32)[b]


def sweep_l2(spectrum, d, e2, lambdas=DEFAULT_LAMBDAS, chunk_elems: int = 1 << 15) -> LambdaSweep:
    """Evaluate residual, regulariser, GCV and UPRE for every lambda (see module doc).

    ``spectrum`` is the ``rfftn`` of the (padded) field; ``d``/``e2`` the kernels
    on the same half grid. Works through the spectrum in cache-sized chunks so the
    cost per lambda is a few passes over the data.
    """
    lambdas = np.asarray(lambdas, dtype=np.float64)
    shape_full = spectrum.shape[:-1] + ((spectrum.shape[-1] - 1) * 2,)
    w = np.broadcast_to(rfft_weights(shape_full), spectrum.shape)
    p = (spectrum.real**2 + spectrum.imag**2) * w
    d2 = (d * d).astype(np.float32)
    p = p.reshape(-1).astype(np.float32)
    d2 = np.array(np.broadcast_to(d2, spectrum.shape), dtype=np.float32).reshape(-1)
    e2 = np.array(np.broadcast_to(e2, spectrum.shape), dtype=np.float32).reshape(-1)
    w = np.array(w, dtype=np.float32).reshape(-1)
    # the origin: D = E2 = 0, the solution is 0 there and it is excluded from all sums
    p[0] = 0.0
    d2[0] = 1.0
    e2[0] = 0.0
    w[0] = 0.0
    # noise power per point (weighted by the multiplicity), from the null cone
    wn = cone_noise_spectrum(p / np.maximum(w, np.float32(1)), d2, e2, w) * w
    n = len(lambdas)
    rho = np.zeros(n)
    eta = np.zeros(n)
    trace = np.zeros(n)
    nfit = np.zeros(n)
    lam32 = lambdas.astype(np.float32)
    for start in range(0, p.size, chunk_elems):
        sl = slice(start, start + chunk_elems)
        pc, dc, ec, wc, nc = p[sl], d2[sl], e2[sl], w[sl], wn[sl]
        c = pc * dc * ec
        for i, lam in enumerate(lam32):
            a = ec * lam
            den = dc + a
            inv = np.float32(1.0) / den
            t = a * inv  # 1 - h
            rho[i] += float(np.dot(pc, t * t))
            trace[i] += float(np.dot(wc, t))
            eta[i] += float(np.dot(c, inv * inv))
            nfit[i] += float(np.dot(nc, t))
    npts = float(np.prod(shape_full))
    noise = float(wn.sum(dtype=np.float64))
    # UPRE = ||r||^2 + 2 sum w N h - sum w N, with h = 1 - t
    upre = (rho + 2.0 * (noise - nfit) - noise) / npts
    rho /= npts
    eta /= npts
    gcv = npts * rho / np.maximum(trace, 1e-30) ** 2
    return LambdaSweep(lambdas, rho, eta, gcv, upre, noise / npts)


def _parabolic_min(x, y, i):
    """Vertex of the parabola through points i-1, i, i+1 (x in log space)."""
    if i <= 0 or i >= len(x) - 1:
        return x[i]
    x0, x1, x2 = x[i - 1 : i + 2]
    y0, y1, y2 = y[i - 1 : i + 2]
    den = (x0 - x1) * (x0 - x2) * (x1 - x2)
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / den
    b = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / den
    if a <= 0:
        return x[i]
    return float(np.clip(-b / (2 * a), x0, x2))


def select_lambda(sweep: LambdaSweep, rule: str = "upre") -> float:
    """Pick lambda from a sweep: ``"upre"`` (default: unbiased predictive risk with the
    cone-estimated noise spectrum), ``"gcv"`` or ``"lcurve"`` (max curvature)."""
    logl = np.log(sweep.lambdas)
    if rule == "upre":
        if sweep.upre is None:
            raise ValueError("this sweep has no UPRE values (made without sweep_l2)")
        y = np.asarray(sweep.upre, np.float64)
        i = int(np.argmin(y))
        return float(np.exp(_parabolic_min(logl, y, i)))
    if rule == "gcv":
        y = np.log(sweep.gcv)
        i = int(np.argmin(y))
        return float(np.exp(_parabolic_min(logl, y, i)))
    if rule == "lcurve":
        k = sweep.curvature()
        i = int(np.argmax(k[1:-1])) + 1
        return float(sweep.lambdas[i])
    raise ValueError(f"unknown lambda rule {rule!r} (use one of {', '.join(LAMBDA_RULES)})")


def choose_l2_lambda(problem, rule: str = "upre", lambdas=DEFAULT_LAMBDAS):
    """``(lambda, sweep)``: the closed-form L2 sweep of ``problem`` (a
    :class:`qsmprep.algorithms.kspace.KSpaceProblem`) and the lambda ``rule`` picks."""
    sweep = sweep_l2(problem.spectrum, problem.d, problem.e2, lambdas)
    return select_lambda(sweep, rule), sweep


def lambda_curve(sweep: LambdaSweep, rule: str, chosen: float) -> dict:
    """The sweep as the sidecar records it (``DipoleInversion.LambdaCurve``, drawn by the
    report): the lambdas, the data residual and regulariser per lambda, the values of the
    selection ``rule``'s criterion (UPRE, GCV, or the L-curve's curvature) and the
    lambda ``chosen`` from them."""
    criterion = {"upre": sweep.upre, "gcv": sweep.gcv, "lcurve": sweep.curvature()}[rule]
    as_list = lambda a: [float(v) for v in np.asarray(a, np.float64)]  # noqa: E731
    return {"Rule": rule, "Lambdas": as_list(sweep.lambdas), "Residual": as_list(sweep.residual),
            "Regulariser": as_list(sweep.regulariser), "Criterion": as_list(criterion),
            "Chosen": float(chosen)}
