"""One entry point for the local-field dipole inversions: the method by name, its
parameters, and what the sidecar records (numpy in, numpy out). Susceptibility comes back
in ppm, referenced to the mean inside the mask."""

from __future__ import annotations

from .cg import cg_l2
from .focuss import focuss_qsm
from .direct import closed_form_l2, tkd
from ..kspace import KSpaceProblem
from .lambda_selection import choose_l2_lambda, lambda_curve, select_lambda
from ..reference import reference_to_mask_mean
from .tv import TV_LAMBDA_FACTOR, tv_admm

__all__ = ["invert_dipole", "NEEDS_MAGNITUDE"]

NEEDS_MAGNITUDE = ("focuss", "tv")
_L2_CONVENTION = "weight of sum_i ||G_i chi||^2, G_i forward difference / voxel size (1/mm)"


def invert_dipole(method, field, mask, voxel_size, b0_dir, *, magnitude=None, noise=None,
                  lam=None, tv_lam=None, lambda_rule: str = "upre", tkd_threshold: float = 0.19,
                  max_iter: int = 80, workers=None):
    """``(chi, parameters)`` by ``method`` (l2, tkd, cg, focuss, tv) of the local ``field``
    (ppm) in ``mask``. ``lam`` (L2, CG, FOCUSS) and ``tv_lam`` (TV) fix the regularisation;
    None chooses it (``lambda_rule`` for the L2 family). ``magnitude`` is required by focuss
    and tv, ``noise`` (ppm) weights cg and tv."""
    if method in NEEDS_MAGNITUDE and magnitude is None:
        raise ValueError(f"the {method} inversion needs a magnitude image")
    if method == "tv":
        res = tv_admm(field, mask, voxel_size, b0_dir, magnitude=magnitude, lam=tv_lam,
                      noise=noise, workers=workers)
        chi, params = res.chi, {
            "Method": "magnitude-weighted total variation by ADMM (MEDI-like)",
            "LambdaConvention": "weight of sum_i ||M_i G_i chi||_1, G_i forward difference / "
                                "voxel size (1/mm), M_i = 0 on the 30% largest magnitude "
                                "gradients",
            "Lambda": res.lam,
            "LambdaSelection": "fixed" if tv_lam is not None else
            f"{TV_LAMBDA_FACTOR:g} x 2 x GCV L2 lambda x RMS gradient of the L2 solution",
            "Rho": res.rho, "Iterations": res.iterations, "NoiseWeighted": noise is not None}
        if res.sweep is not None:  # the GCV L2 curve the TV lambda was derived from
            params["LambdaCurve"] = lambda_curve(res.sweep, "gcv", res.l2_lambda)
    elif method == "tkd":
        chi = tkd(field, voxel_size, b0_dir, threshold=tkd_threshold, mask=mask, workers=workers)
        params = {"Method": "TKD", "Threshold": tkd_threshold}
    elif method in ("l2", "cg", "focuss"):
        prob = KSpaceProblem(field, voxel_size, b0_dir, mask=mask, workers=workers)
        if lam is not None:
            lam, rule, sweep = float(lam), "fixed", None
        else:
            lam, sweep = choose_l2_lambda(prob, lambda_rule)
            rule = lambda_rule
        if method == "l2":
            chi = closed_form_l2(field, voxel_size, b0_dir, lam, mask=mask, problem=prob)
            params = {"Method": "closed-form L2 with gradient regularisation",
                      "LambdaConvention": _L2_CONVENTION, "LambdaSelection": rule}
            if sweep is not None:
                params["LambdaSweep"] = [float(v) for v in sweep.lambdas]
                params["LCurveCornerLambda"] = select_lambda(sweep, "lcurve")
            params["Lambda"] = lam
        elif method == "cg":
            res = cg_l2(field, voxel_size, b0_dir, lam, mask=mask, noise=noise,
                        max_iter=max_iter, workers=workers)
            chi, params = res.chi, {
                "Method": "weighted L2 by preconditioned conjugate gradients",
                "LambdaConvention": _L2_CONVENTION, "Lambda": lam, "LambdaSelection": rule,
                "Iterations": res.iterations, "NoiseWeighted": noise is not None}
        else:
            res = focuss_qsm(field, magnitude, mask, voxel_size, b0_dir, lam=lam, workers=workers)
            chi, params = res.chi, {
                "Method": "FOCUSS-QSM with magnitude prior",
                "LambdaConvention": "final fit: weight of sum_i ||G_i chi - g_i||^2 (1/mm "
                                    "gradients); FOCUSS beta: weight of ||q||^2",
                "Lambda": lam, "LambdaSelection": rule, "Beta": res.beta,
                "BetaSelection": "gcv of the unweighted gradient-domain problem"}
        if sweep is not None:
            params["LambdaCurve"] = lambda_curve(sweep, rule, lam)
    else:
        raise ValueError(f"unknown dipole inversion method {method!r}")
    params["Reference"] = "mean inside the mask"
    return reference_to_mask_mean(chi, mask), params
