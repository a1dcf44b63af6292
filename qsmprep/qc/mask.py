"""Brain-mask plausibility: human-readable warnings for the mask node's ``QCWarnings``.

Three checks, each from the mask alone (voxel sizes in mm respected):

* volume: an adult brain with cerebellum is about 1.1-1.6 L; a brain mask outside
  ``volume_range_l`` (default 0.9-2.0 L) when the field of view can hold the whole head
  (every axis at least ``head_fov_mm``, mask not cut by the field of view) has kept scalp,
  skull, neck or face (too large) or lost brain (too small);
* field-of-view edge: the fraction of the mask's boundary voxels that lie on the faces of
  the array; above ``edge_fraction_max`` the brain is cut by the field of view or the
  mask leaks out of the head (neck) to the edge;
* coverage: a mask holding more than ``coverage_max`` of the field of view means the field
  of view lies inside the brain (a crop or slab); the native BET then keeps the whole field
  of view minus voxels of unreliable signal, and the background field near the edges is
  poorly determined.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["mask_volume_l", "fov_edge_fraction", "mask_warnings"]


def mask_volume_l(mask, voxel_size) -> float:
    """Volume of a boolean mask in litres."""
    return float(np.count_nonzero(mask)) * float(np.prod(voxel_size)) / 1e6


def fov_edge_fraction(mask) -> float:
    """Fraction of the mask's boundary voxels (mask voxels with a face neighbour outside the
    mask, or on the array border) that lie on the border of the array; 0 for an empty mask."""
    m = np.asarray(mask, bool)
    if not m.any():
        return 0.0
    interior = ndimage.binary_erosion(m, border_value=0)
    boundary = m & ~interior
    on_edge = np.zeros_like(m)
    for ax in range(m.ndim):
        for end in (0, -1):
            idx = [slice(None)] * m.ndim
            idx[ax] = end
            on_edge[tuple(idx)] = True
    return float(np.count_nonzero(boundary & on_edge)) / float(np.count_nonzero(boundary))


def mask_warnings(mask, voxel_size, *, volume_range_l=(0.9, 2.0), head_fov_mm: float = 120.0,
                  edge_fraction_max: float = 0.2, coverage_max: float = 0.9,
                  fov_inside_brain: bool = False) -> list[str]:
    """Warnings (sentences) about a brain mask; empty when it looks plausible (module doc).

    ``fov_inside_brain``: the mask method has already detected a field of view inside the
    brain (the coverage warning then says so even below ``coverage_max``).
    """
    m = np.asarray(mask, bool)
    vs = tuple(float(h) for h in voxel_size)
    out = []
    vol = mask_volume_l(m, vs)
    coverage = float(m.mean()) if m.size else 0.0
    edge = fov_edge_fraction(m)
    fov_mm = [n * h for n, h in zip(m.shape, vs)]
    if coverage > coverage_max or fov_inside_brain:
        out.append(
            f"the brain mask covers {100 * coverage:.0f}% of the field of view "
            f"({' x '.join(f'{f:.0f}' for f in fov_mm)} mm): the field of view appears to lie "
            "inside the brain (a crop or slab), so no brain boundary could be found; the mask "
            "is the field of view minus voxels of unreliable signal. Background-field removal "
            "is poorly determined near the field-of-view edges: check the local field there, "
            "or give your own mask with --mask.")
    elif edge > edge_fraction_max:
        out.append(
            f"the brain mask touches the field-of-view edge on {100 * edge:.0f}% of its "
            f"boundary ({vol:.2f} L): either the brain is cut by the field of view or the mask "
            "leaks out of the head (e.g. into the neck) to the edge; look at the mask, or give "
            "your own with --mask.")
    whole_head = min(fov_mm) >= head_fov_mm and edge <= edge_fraction_max and not (
        coverage > coverage_max or fov_inside_brain)
    lo, hi = volume_range_l
    if whole_head and not lo <= vol <= hi:
        what = ("too large for a brain: it likely includes scalp, skull, neck or face"
                if vol > hi else "too small for a whole brain: brain tissue may be missing")
        out.append(
            f"the brain mask is {vol:.2f} L, outside the {lo:g}-{hi:g} L of an adult brain "
            f"with cerebellum (field of view {' x '.join(f'{f:.0f}' for f in fov_mm)} mm, "
            f"which holds the whole head): {what}. Look at the mask (desc-brain_mask), adjust "
            "[mask.bet] frac (or [mask.fsl_bet] frac) in the pipeline TOML, or give your own "
            "mask with --mask.")
    return out
