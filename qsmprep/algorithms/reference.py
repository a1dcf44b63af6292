"""Referencing of susceptibility maps (QSM is defined up to a constant)."""

from __future__ import annotations

import numpy as np

__all__ = ["reference_to_mask_mean"]


def reference_to_mask_mean(chi, mask) -> np.ndarray:
    """Subtract the mean inside ``mask``; zero outside. ppm in, ppm out."""
    chi = np.asarray(chi, np.float32)
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise ValueError("empty mask")
    return np.where(mask, chi - chi[mask].mean(), 0).astype(np.float32)
