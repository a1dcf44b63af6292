"""Constants and small helpers shared by the algorithm tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HEAD_SHAPE = (96, 112, 96)
HEAD_VOXEL = (1.8, 1.8, 1.8)
AXIAL = (0.0, 0.0, 1.0)
TILT20 = (0.0, float(np.sin(np.deg2rad(20.0))), float(np.cos(np.deg2rad(20.0))))


@dataclass(frozen=True)
class HeadCase:
    """A rasterised head phantom with its local (brain-only) and total fields (ppm)."""

    phantom: object
    voxel_size: tuple
    b0_dir: tuple
    local: np.ndarray
    total: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return self.phantom.brain_mask

    @property
    def chi(self) -> np.ndarray:
        return self.phantom.chi_brain


def gaussian_noise(shape, sigma, seed):
    """Reproducible white Gaussian noise (float32)."""
    return (sigma * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def rms(x, mask=None) -> float:
    x = np.asarray(x, np.float64)
    if mask is not None:
        x = x[np.asarray(mask, bool)]
    return float(np.sqrt(np.mean(x * x)))
