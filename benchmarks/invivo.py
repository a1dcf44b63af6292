"""In-vivo accuracy: every magnitude-free inversion of qsmprep on the 2016 QSM challenge field.

The 2016 QSM reconstruction challenge (Langkammer et al., MRM 2018;79:1661-1673) gives an
in-vivo local field (ppm) with chi_33 (STI, the challenge's reference) and COSMOS from 12
head orientations. This script inverts the field with each method and its automatic
parameters, beside the published outputs in ``published-outputs/``, and prints

* a table: challenge RMSE % (``100 ||chi*msk - ref|| / ||ref||``, chi referenced to the
  mask mean) vs chi_33 and vs COSMOS, HFEN %, correlation, and the slope / r of the 11
  region means against chi_33's (``qsmprep.evaluation.evaluate_chimap``);
* the L2 lambda chosen by each rule against the RMSE-optimal lambda of a sweep;
* optionally (``--regions``) the region means.

    python benchmarks/invivo.py ../shared/data/real/qsm-challenge-2016
    python benchmarks/invivo.py DATA_DIR --skip deepqsm focuss --regions

The data are not part of qsmprep (see docs/invivo.md for where they come from). No
magnitude or raw phase is available, so FOCUSS runs with a flat magnitude (no edge prior)
and TV without the magnitude edge mask (plain TV).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


from qsmprep.algorithms.inversion.cg import cg_l2  # noqa: E402
from qsmprep.algorithms.inversion.focuss import focuss_qsm  # noqa: E402
from qsmprep.algorithms.inversion.direct import closed_form_l2, tkd  # noqa: E402
from qsmprep.algorithms.kspace import KSpaceProblem  # noqa: E402
from qsmprep.algorithms.inversion.lambda_selection import LAMBDA_RULES, select_lambda, sweep_l2  # noqa: E402
from qsmprep.algorithms.reference import reference_to_mask_mean  # noqa: E402
from qsmprep.algorithms.inversion.tv import tv_admm  # noqa: E402
from qsmprep.evaluation import evaluate_chimap  # noqa: E402

FILES = {"field": "phs_tissue_localfield_ppm.nii.gz", "mask": "msk.nii.gz",
         "chi33": "chi_33_sti_ppm.nii.gz", "cosmos": "chi_cosmos_ppm.nii.gz",
         "labels": "evaluation_mask_labels.nii.gz"}
PUBLISHED = {"published closed-form L2 (SNU-LIST)": "snulist_CFL2_ppm.nii.gz",
             "published QSMnet": "snulist_QSMnet_ppm.nii.gz",
             "published QSMnet+": "snulist_QSMnetplus_ppm.nii.gz"}
METHODS = ("tkd", "l2", "cg", "focuss", "tv", "tv-iso", "tv-cone", "deepqsm")
SWEEP = np.logspace(-3, 0.5, 22)  # L2 lambdas for the RMSE-optimal one (factor 1.47)


def load_data(root: Path):
    import nibabel as nib

    missing = [f for f in FILES.values() if not (root / f).exists()]
    if missing:
        sys.exit(f"{root} does not hold the 2016 QSM challenge data (missing: "
                 f"{', '.join(missing)}). Pass the folder with the challenge's local field, "
                 "msk, chi_33 and COSMOS (docs/invivo.md says where they come from).")
    img = nib.load(root / FILES["field"])
    data = {k: np.asarray(nib.load(root / f).dataobj, dtype=np.float32) for k, f in FILES.items()}
    params = root / "params.json"
    meta = json.loads(params.read_text()) if params.exists() else {}
    vs = tuple(float(v) for v in meta.get("voxel_size_mm", img.header.get_zooms()[:3]))
    b0 = tuple(float(v) for v in meta.get("B0_dir", (0.0, 0.0, 1.0)))
    return data, vs, b0


def challenge_rmse(chi, ref, mask) -> float:
    return float(100.0 * np.linalg.norm(chi * mask - ref) / np.linalg.norm(ref))


def score(name, chi, data, seconds, note=""):
    m = data["mask"] > 0
    chi = reference_to_mask_mean(np.asarray(chi, np.float32), m)
    s = evaluate_chimap(chi, data["chi33"], m, labels=data["labels"].astype(np.int32))
    reg = s["label_regression"] or {}
    return {"name": name, "rmse33": challenge_rmse(chi, data["chi33"], m),
            "rmse_cosmos": challenge_rmse(chi, data["cosmos"], m), "hfen": s["hfen_percent"],
            "r": s["correlation"], "slope": reg.get("slope"), "region_r": reg.get("r"),
            "labels": s["labels"], "seconds": seconds, "note": note}


def l2_rules(data, vs, b0):
    """Closed-form L2 with each lambda rule, the RMSE-optimal lambda, and the rows."""
    m = data["mask"] > 0
    prob = KSpaceProblem(data["field"], vs, b0, mask=m)
    errs = [challenge_rmse(reference_to_mask_mean(
        closed_form_l2(None, vs, b0, lam, mask=m, problem=prob), m), data["chi33"], m)
        for lam in SWEEP]
    i = int(np.argmin(errs))
    # refine the optimum by a parabola in log(lambda)
    opt = float(SWEEP[i])
    if 0 < i < len(SWEEP) - 1:
        x, y = np.log(SWEEP[i - 1:i + 2]), np.asarray(errs[i - 1:i + 2])
        a, b, _ = np.polyfit(x, y, 2)
        opt = float(np.exp(-b / (2 * a))) if a > 0 else opt
    t = time.perf_counter()
    sweep = sweep_l2(prob.spectrum, prob.d, prob.e2)
    t_sweep = time.perf_counter() - t
    rules, rows = [], []
    for rule in LAMBDA_RULES:
        lam = select_lambda(sweep, rule)
        t = time.perf_counter()
        chi = closed_form_l2(None, vs, b0, lam, mask=m, problem=prob)
        rows.append(score(f"l2, lambda {rule}", chi, data, time.perf_counter() - t + t_sweep,
                          f"lambda {lam:.3g} ({lam / opt:.2g}x opt)"))
        rules.append((rule, lam))
    chi = closed_form_l2(None, vs, b0, opt, mask=m, problem=prob)
    rows.append(score("l2, RMSE-optimal lambda (not automatic)", chi, data, 0.0,
                      f"lambda {opt:.3g}"))
    return rows, rules, opt, dict(zip(SWEEP.tolist(), errs))


def run_method(method, data, vs, b0, lam_l2):
    m = data["mask"] > 0
    f = data["field"]
    t = time.perf_counter()
    if method == "tkd":
        chi, note = tkd(f, vs, b0, threshold=0.19, mask=m), "threshold 0.19, sign kept"
    elif method == "cg":
        res = cg_l2(f, vs, b0, lam_l2, mask=m)
        chi, note = res.chi, f"mask-weighted, lambda {lam_l2:.3g} (upre), {res.iterations} it"
    elif method == "focuss":
        res = focuss_qsm(f, np.ones_like(f), m, vs, b0, lam=lam_l2)
        chi, note = res.chi, f"flat magnitude (no prior), lambda {lam_l2:.3g}, beta {res.beta:.3g}"
    elif method == "tv":
        res = tv_admm(f, m, vs, b0)
        chi, note = res.chi, f"no magnitude (plain TV), lambda {res.lam:.3g} (auto), {res.iterations} it"
    elif method == "tv-iso":
        res = tv_admm(f, m, vs, b0, isotropic=True)
        chi, note = res.chi, (f"isotropic TV (option), lambda {res.lam:.3g} (auto), "
                              f"{res.iterations} it")
    elif method == "tv-cone":
        res = tv_admm(f, m, vs, b0, cone_threshold=0.3)
        chi, note = res.chi, (f"data term x min(1, abs(D)/0.3) (option), lambda {res.lam:.3g} "
                              f"(auto), {res.iterations} it")
    elif method == "deepqsm":
        from qsmprep.algorithms.deepqsm import deepqsm

        chi, note = deepqsm(f, vs, b0, mask=m), "shipped weights, CPU"
    else:
        raise ValueError(method)
    return score(method, chi, data, time.perf_counter() - t, note)


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", type=Path, help="folder with the 2016 challenge files")
    ap.add_argument("--skip", nargs="*", default=[], choices=METHODS, help="methods to leave out")
    ap.add_argument("--regions", action="store_true", help="also print the region means")
    ap.add_argument("--json", type=Path, help="write every row (and the L2 sweep) as JSON")
    a = ap.parse_args(argv)
    data, vs, b0 = load_data(a.data_dir)
    print(f"2016 QSM challenge field {data['field'].shape} at {vs} mm, B0 {b0}")
    rows, rules, opt, curve = l2_rules(data, vs, b0)
    for method in METHODS:
        if method != "l2" and method not in a.skip:
            rows.append(run_method(method, data, vs, b0, dict(rules)["upre"]))
            print(f"  {method} done ({rows[-1]['seconds']:.1f} s)", flush=True)
    for name, f in PUBLISHED.items():
        p = a.data_dir / "published-outputs" / f
        if p.exists():
            import nibabel as nib

            rows.append(score(name, np.asarray(nib.load(p).dataobj, np.float32), data, 0.0))
    print("\n| method | RMSE % vs chi_33 | vs COSMOS | HFEN % | r | region slope (r) | s | notes |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['rmse33']:.1f} | {r['rmse_cosmos']:.1f} | {fmt(r['hfen'], '.1f')} "
              f"| {fmt(r['r'], '.3f')} | {fmt(r['slope'], '.2f')} ({fmt(r['region_r'], '.2f')}) "
              f"| {r['seconds']:.1f} | {r['note']} |")
    print(f"\nL2 lambda (weight of sum_i ||G_i chi||^2, 1/mm gradients): RMSE-optimal {opt:.3g}")
    print("| rule | lambda | x optimum |\n|---|---|---|")
    for rule, lam in rules:
        print(f"| {rule} | {lam:.3g} | {lam / opt:.2g} |")
    if a.regions:
        names = [lab["name"] for lab in rows[0]["labels"]]
        print("\nregion means (ppm, demeaned in the mask); first row chi_33")
        print("| | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
        print("| chi_33 | " + " | ".join(f"{lab['truth_ppm']:.3f}" for lab in rows[0]["labels"]) + " |")
        for r in rows:
            print(f"| {r['name']} | " + " | ".join(f"{lab['recon_ppm']:.3f}" for lab in r["labels"]) + " |")
    if a.json:
        a.json.write_text(json.dumps({"rows": rows, "lambda_rules": rules, "lambda_opt": opt,
                                      "l2_sweep": curve}, indent=1, default=float))


if __name__ == "__main__":
    main()
