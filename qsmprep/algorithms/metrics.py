"""Accuracy metrics against ground truth (QSM reconstruction challenge 2.0).

Definitions follow the QSM challenge 2.0 (Bilgic et al., MRM 2021, "QSM
reconstruction challenge 2.0: design and report of results"): values are
computed inside the evaluation mask; "demeaned" metrics subtract each image's
mean within the mask first, since QSM is defined up to a constant.
"""

from __future__ import annotations

import numpy as np

__all__ = ["nrmse", "demeaned_nrmse", "correlation"]


def nrmse(recon, truth, mask) -> float:
    """100 * ||recon - truth|| / ||truth|| over ``mask`` (percent)."""
    m = np.asarray(mask, bool)
    r = np.asarray(recon, np.float64)[m]
    t = np.asarray(truth, np.float64)[m]
    return float(100.0 * np.linalg.norm(r - t) / np.linalg.norm(t))


def demeaned_nrmse(recon, truth, mask) -> float:
    """NRMSE (%) after subtracting each image's mean inside ``mask``."""
    m = np.asarray(mask, bool)
    r = np.asarray(recon, np.float64)[m]
    t = np.asarray(truth, np.float64)[m]
    r = r - r.mean()
    t = t - t.mean()
    return float(100.0 * np.linalg.norm(r - t) / np.linalg.norm(t))


def correlation(recon, truth, mask) -> float:
    """Pearson correlation inside ``mask``."""
    m = np.asarray(mask, bool)
    return float(np.corrcoef(np.asarray(recon, np.float64)[m], np.asarray(truth, np.float64)[m])[0, 1])
