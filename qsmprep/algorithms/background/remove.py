"""One entry point for background field removal: the method by name, its parameters, and
what the sidecar records about the run (numpy in, numpy out)."""

from __future__ import annotations

import numpy as np

from .sharp import SHARP_RADIUS_MM, default_radii, sharp, vsharp
from .lbv import lbv
from .pdf import pdf

__all__ = ["remove_background"]


def remove_background(method, field, mask, voxel_size, b0_dir, *, noise=None, radii_mm=None,
                      threshold: float = 0.05, radius_mm: float = SHARP_RADIUS_MM,
                      max_iter: int = 50, margin_mm: float = 10.0, peel: int = 1,
                      workers=None):
    """``(local_field, mask, parameters)`` of background removal by ``method`` (pdf,
    vsharp, sharp, lbv) of ``field`` (ppm) in ``mask``; ``mask`` is where the local field is
    defined. ``noise`` (ppm) weights PDF; ``radii_mm``/``threshold``: V-SHARP (SHARP:
    ``radius_mm``); ``max_iter``/``margin_mm``: PDF; ``peel``: LBV."""
    mask = np.asarray(mask, bool)
    if method == "pdf":
        local, iters = pdf(field, mask, voxel_size, b0_dir, noise=noise, max_iter=max_iter,
                           margin_mm=margin_mm, workers=workers)
        return local, mask, {"Method": "PDF", "MaxIterations": max_iter, "Iterations": iters,
                             "NoiseWeighted": noise is not None, "MarginMm": margin_mm}
    if method == "lbv":
        local, out_mask, iters = lbv(field, mask, voxel_size, peel=peel)
        return local, out_mask, {"Method": "LBV", "PeeledLayers": peel, "Iterations": iters}
    if method == "sharp":
        local, out_mask = sharp(field, mask, voxel_size, radius_mm=radius_mm,
                                threshold=threshold, workers=workers)
        return local, out_mask, {"Method": "SHARP", "RadiusMm": radius_mm,
                                 "TruncationThreshold": threshold}
    if method == "vsharp":
        radii = list(radii_mm or []) or list(default_radii(voxel_size))
        local, out_mask = vsharp(field, mask, voxel_size, radii, threshold, workers=workers)
        return local, out_mask, {"Method": "V-SHARP", "RadiiMm": radii,
                                 "TruncationThreshold": threshold}
    raise ValueError(f"unknown background removal method {method!r}")
