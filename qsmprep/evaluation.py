"""Score a susceptibility map against ground truth (files in, metrics out)."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from .algorithms.metrics import correlation, demeaned_nrmse
from .simulation.phantom import LABELS

__all__ = ["evaluate_chimap", "format_scores"]


def evaluate_chimap(chi_path, truth_chi_path, truth_mask_path, labels_path=None) -> dict:
    """Metrics inside the truth brain mask where the reconstruction is defined (non-zero).

    Both maps are demeaned inside the evaluation mask (QSM is relative).
    """
    chi = np.asarray(nib.load(str(chi_path)).dataobj, dtype=np.float64)
    truth = np.asarray(nib.load(str(truth_chi_path)).dataobj, dtype=np.float64)
    mask = np.asarray(nib.load(str(truth_mask_path)).dataobj) > 0
    if chi.shape != truth.shape:
        raise ValueError(f"{chi_path} and {truth_chi_path} have different shapes")
    evalmask = mask & (chi != 0)
    scores = {
        "demeaned_nrmse_percent": demeaned_nrmse(chi, truth, evalmask),
        "correlation": correlation(chi, truth, evalmask),
        "mask_coverage": float(evalmask.sum() / max(mask.sum(), 1)),
        "label_means": {},
    }
    if labels_path is not None:
        labels = np.asarray(nib.load(str(labels_path)).dataobj).astype(int)
        rc = chi - chi[evalmask].mean()
        tc = truth - truth[evalmask].mean()
        for k, (name, *_rest) in LABELS.items():
            sel = evalmask & (labels == k)
            if sel.sum() >= 5:
                scores["label_means"][name] = (float(rc[sel].mean()), float(tc[sel].mean()))
    return scores


def format_scores(scores) -> str:
    lines = [
        f"demeaned NRMSE vs truth: {scores['demeaned_nrmse_percent']:.1f} %",
        f"correlation with truth:  {scores['correlation']:.3f}",
        f"evaluated on {100 * scores['mask_coverage']:.0f}% of the true brain mask",
    ]
    if scores["label_means"]:
        lines.append(f"{'region':<18} {'recon ppm':>10} {'truth ppm':>10}")
        for name, (r, t) in scores["label_means"].items():
            lines.append(f"{name:<18} {r:>10.4f} {t:>10.4f}")
    return "\n".join(lines)
