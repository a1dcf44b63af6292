"""Brain extraction by a deformable surface (BET; Smith, "Fast robust automated brain
extraction", Hum Brain Mapp 2002;17:143-155), in numpy/scipy, with the handling of
pre-masked images and of fields of view that lie inside the brain.

Steps of :func:`bet_surface` (the paper's; every length in mm on the array axes, so
anisotropic voxels are respected):

1. Robust range: ``t2``/``t98``, the 2nd/98th percentiles of the image; the
   brain/background threshold ``t = t2 + 0.1 (t98 - t2)``. The centre of gravity of the
   voxels above ``t`` (intensities capped at ``t98``), the radius of the sphere of their
   volume, and ``tm``, the median intensity (between ``t2`` and ``t98``) in that sphere.
2. A tessellated sphere (icosahedron subdivided 4 times: 2562 vertices) at the centre of
   gravity with half that radius, moved ``iterations`` times by three forces per vertex
   (``s`` = neighbour mean minus vertex, split into its part along the outward normal
   ``s_n`` and its tangential part ``s_t``; ``l`` = the mean edge length):

   * ``u1 = 0.5 s_t`` (even vertex spacing);
   * ``u2 = f2 s_n``, ``f2 = (1 + tanh(F (1/r - E))) / 2`` with the local radius of
     curvature ``r = l^2 / (2 |s_n|)``, ``E = (1/rmin + 1/rmax) / 2``,
     ``F = 6 / (1/rmin - 1/rmax)`` (smooths sharply curved places, leaves gentle ones);
   * ``u3 = 0.05 f3 l n``, ``f3 = 2 (Imin - tl) / (Imax - t2)``, where along the inward
     normal ``Imin = max(t2, min(tm, I(0..d1)))`` and ``Imax = min(tm, max(t, I(0..d2)))``
     are sampled every ``step_mm`` (trilinear; 0 outside the field of view), and
     ``tl = t2 + frac (Imax - t2)``: the surface moves out where the tissue under it is
     brighter than the local threshold and in where it is darker (skull, CSF, air).
3. Self-intersection check (:func:`~.surface.self_intersections`); a folded surface is
   re-grown from the sphere with the curvature radii ``rmin``/``rmax`` multiplied by
   ``10**pass`` during the first three quarters of the iterations (decaying linearly to
   the normal smoothness), up to ``max_restarts`` times.
4. The surface is filled into a mask at sub-voxel sampling (:func:`~.surface.surface_to_mask`).

:func:`brain_extraction` adds the input handling: root-sum-of-squares over echoes (scaled
to the maximum before squaring, so scanner magnitudes of ~1e7 cannot overflow), and two
cases the surface model does not cover:

* pre-masked (skull-stripped) input: a large exact-zero background whose border is
  bright tissue, not noise. The mask is the non-zero support (largest component, holes
  filled) -- a surface with 20 mm search depths would cut the cerebellum off.
* extracranial tissue joined to the brain across a partly dark skull base: at 3 mm the
  bone under the temporal lobes and around the orbits is only partly darker than the local
  threshold, so the surface flows through its gaps into the temporal/masseter muscles,
  the nasal region and the neck (a real whole-head scan: 2.37 L instead of ~1.5 L). With
  ``separate_extracranial`` (default on) the surface mask is cut by
  :func:`separate_extracranial`: an opening by reconstruction of its bright tissue, which
  keeps the part reached from the brain's thick core through bridges thicker than a ball,
  and drops tissue that hangs on it through thin or dark bridges.
* a field of view inside the brain (a crop or slab with no background): barely any dark
  voxels, or a surface touching the field-of-view edge on most of its vertices. The mask
  is then the whole field of view minus voxels of unreliable signal (below
  ``low_signal_fraction`` of the median), cleaned; ``mode`` says so, for a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage

from ..magnitude import rss
from .masking import _fill_holes, ball, clean_mask, largest_component
from .surface import Mesh, enclosed_volume, icosphere, self_intersections, surface_to_mask

__all__ = ["BetResult", "combined_magnitude", "robust_statistics", "bet_surface",
           "separate_extracranial", "is_premasked", "dark_fraction", "brain_extraction"]


@dataclass(frozen=True)
class BetResult:
    """Mask and diagnostics. ``mode``: ``"surface"`` (BET), ``"premasked"`` (non-zero
    support of a skull-stripped input) or ``"fov_inside_brain"`` (field of view minus low
    signal). ``vertices`` (mm on the array axes) and ``faces`` are the final surface
    (None unless ``mode == "surface"`` or the surface was tried), ``restarts`` the number of
    self-intersection restarts, ``stats`` the robust statistics and measurements."""

    mask: np.ndarray
    mode: str
    vertices: np.ndarray | None = None
    faces: np.ndarray | None = None
    restarts: int = 0
    self_intersecting: bool = False
    stats: dict = field(default_factory=dict)
    notes: tuple = ()


def combined_magnitude(magnitude) -> np.ndarray:
    """3-D magnitude: the input itself, or the root-sum-of-squares over the last axis of a
    4-D (echoes last) input (:func:`~.magnitude.rss`, scaled before squaring); float32,
    non-finite values set to 0."""
    mag = np.abs(np.nan_to_num(np.asarray(magnitude, np.float32), nan=0.0, posinf=0.0,
                               neginf=0.0))
    if mag.ndim == 4:
        mag = rss(mag)
    if mag.ndim != 3:
        raise ValueError(f"magnitude must be 3-D or 4-D, got shape {mag.shape}")
    return mag


def robust_statistics(image, voxel_size) -> dict:
    """``t2``, ``t98``, ``t``, centre of gravity ``cog_mm`` (array axes), ``radius_mm`` and
    ``tm`` of step 1 (see module doc)."""
    img = np.asarray(image, np.float32)
    vs = np.asarray(voxel_size, np.float64)
    t2, t98 = (float(v) for v in np.percentile(img, [2.0, 98.0]))
    t = t2 + 0.1 * (t98 - t2)
    above = img > t
    n = int(above.sum())
    if n == 0:
        raise ValueError("the image has no voxel above its robust threshold (empty image?)")
    idx = np.argwhere(above)
    w = np.minimum(img[above], t98).astype(np.float64)
    cog = (idx * w[:, None]).sum(0) / w.sum() * vs
    radius = (3.0 * n * float(np.prod(vs)) / (4.0 * np.pi)) ** (1.0 / 3.0)
    grids = np.ogrid[tuple(slice(0, s) for s in img.shape)]
    r2 = sum(((g * h) - c) ** 2 for g, h, c in zip(grids, vs, cog))
    inside = (r2 <= radius * radius) & (img > t2) & (img < t98)
    tm = float(np.median(img[inside])) if inside.any() else float(np.median(img[above]))
    return {"t2": t2, "t98": t98, "t": t, "tm": tm, "cog_mm": tuple(float(c) for c in cog),
            "radius_mm": float(radius)}


def _grow(img, vs, stats, v, mesh, *, frac, d1_mm, d2_mm, iterations, rmin_mm, rmax_mm,
          step_mm, smooth_boost=1.0):
    """Step 2 of the module doc from the vertices ``v`` (mm); returns the moved vertices.

    ``smooth_boost`` multiplies the curvature radii at the start, decaying linearly to 1
    over the first 3/4 of the iterations (the restarts of step 3).
    """
    t2, t, tm = stats["t2"], stats["t"], stats["tm"]
    n1 = int(np.floor(d1_mm / step_mm)) + 1
    n2 = int(np.floor(d2_mm / step_mm)) + 1
    depths = np.arange(n1) * step_mm
    e0, f0 = 0.5 * (1 / rmin_mm + 1 / rmax_mm), 6.0 / (1 / rmin_mm - 1 / rmax_mm)
    ramp = int(0.75 * iterations)
    inv_vs = 1.0 / vs
    for it in range(iterations):
        k = 1.0
        if smooth_boost > 1 and it < ramp:
            k = smooth_boost + (1.0 - smooth_boost) * it / ramp
        e, f = e0 / k, f0 * k
        nrm = mesh.vertex_normals(v)
        s = mesh.neighbour_mean(v) - v
        sn_len = np.einsum("ij,ij->i", s, nrm)
        sn = sn_len[:, None] * nrm
        st = s - sn
        l = mesh.mean_edge_length(v)
        inv_r = 2.0 * np.abs(sn_len) / (l * l)
        f2 = 0.5 * (1.0 + np.tanh(f * (inv_r - e)))
        pos = v[:, None, :] - depths[None, :, None] * nrm[:, None, :]
        coords = (pos * inv_vs).reshape(-1, 3).T
        prof = ndimage.map_coordinates(img, coords, order=1, mode="constant", cval=0.0,
                                       prefilter=False).reshape(len(v), n1)
        i_min = np.maximum(t2, np.minimum(tm, prof.min(axis=1)))
        i_max = np.minimum(tm, np.maximum(t, prof[:, :n2].max(axis=1)))
        tl = (i_max - t2) * frac + t2
        f3 = 2.0 * (i_min - tl) / np.maximum(i_max - t2, 1e-12 * max(abs(tm), 1.0))
        v = v + 0.5 * st + f2[:, None] * sn + (0.05 * l) * f3[:, None] * nrm
    return v


def bet_surface(image, voxel_size, *, frac: float = 0.5, d1_mm: float = 20.0,
                d2_mm: float = 10.0, iterations: int = 1000, rmin_mm: float = 3.33,
                rmax_mm: float = 10.0, subdivisions: int = 4, step_mm: float = 1.0,
                max_restarts: int = 2, intersection_tolerance: float = 0.0) -> BetResult:
    """BET on a 3-D image (see module doc, steps 1-4).

    ``frac``: fractional intensity threshold in (0, 1); smaller gives a larger mask.
    ``d1_mm``/``d2_mm``: inward search depths (mm) for the minimum / maximum intensity.
    ``iterations``: surface updates per pass. ``rmin_mm``/``rmax_mm``: radii of curvature
    (mm) below which the surface is fully smoothed / above which barely. ``step_mm``:
    sampling step along the normal. ``subdivisions``: of the icosahedron (4: 2562
    vertices). ``max_restarts``: re-growths with more smoothing when more than
    ``intersection_tolerance`` of the vertices touch a far part of the surface (a few
    touching pairs do not disturb the fill); the pass with the fewest is kept, unless it
    collapsed to under half the first pass's volume.
    """
    if not 0.0 < frac < 1.0:
        raise ValueError(f"frac must lie in (0, 1), got {frac}")
    if not (d1_mm > 0 and d2_mm > 0):
        raise ValueError("the search depths d1_mm and d2_mm must be positive")
    img = np.ascontiguousarray(image, np.float32)
    vs = np.asarray(voxel_size, np.float64)
    stats = robust_statistics(img, vs)
    sphere, faces = icosphere(subdivisions)
    mesh = Mesh(faces, len(sphere))
    opts = dict(frac=frac, d1_mm=d1_mm, d2_mm=d2_mm, rmin_mm=rmin_mm, rmax_mm=rmax_mm,
                step_mm=step_mm)
    tolerated = int(intersection_tolerance * len(sphere))
    best = None
    for restarts in range(max_restarts + 1):
        v = np.asarray(stats["cog_mm"]) + 0.5 * stats["radius_mm"] * sphere
        v = _grow(img, vs, stats, v, mesh, iterations=iterations,
                  smooth_boost=10.0 ** restarts, **opts)
        crossings = self_intersections(v, sphere, mesh)
        volume = enclosed_volume(v, faces)
        if best is None:
            first_volume = volume
        # a smoother restart that collapsed (under half the first volume) is not kept
        if best is None or (crossings < best[1] and volume >= 0.5 * first_volume):
            best = (v, crossings, restarts)
        if crossings <= tolerated:
            break
    v, crossings, restarts = best
    mask = surface_to_mask(v, faces, img.shape, vs)
    voxel_ml = float(np.prod(vs)) / 1000.0
    extent = (np.asarray(img.shape) - 1) * vs
    at_edge = np.any((v < 0.5 * vs) | (v > extent - 0.5 * vs), axis=1)
    stats.update({"surface_volume_ml": enclosed_volume(v, faces) / 1000.0,
                  "mask_volume_ml": float(mask.sum()) * voxel_ml,
                  "vertices_at_fov_edge": float(at_edge.mean()),
                  "self_intersections": crossings})
    return BetResult(mask, "surface", v, faces, restarts, crossings > tolerated, stats)


def separate_extracranial(image, mask, voxel_size, *, fraction: float = 0.6,
                          radius_mm: float = 7.5) -> np.ndarray:
    """Cut extracranial tissue that the BET surface joined to the brain (module doc).

    1. Bright tissue: voxels of ``mask`` above ``t2 + fraction (median - t2)`` (``median``
       of the image in ``mask``, ``t2`` its 2nd percentile over the image): brain and
       bright CSF stay, skull and most of the partly dark skull base drop out.
    2. Core: erosion of that tissue by a ball of ``radius_mm``, its largest component.
       Outside the field of view counts as tissue, so a brain the field of view cuts through
       (cerebellum in the first slices) is not eroded from the cut. Muscle and fat hang on
       the brain through gaps in the bone that are thinner than the ball: they are not in
       the core's component.
    3. The core dilated back by the same ball, inside ``mask`` (the CSF rim and the cortex
       the surface found come back), holes filled.

    Returns the new mask; the input ``mask`` where nothing of it stays bright.
    """
    img = np.asarray(image, np.float32)
    mask = np.asarray(mask, bool)
    vs = tuple(float(h) for h in voxel_size)
    if not mask.any():
        return mask
    t2 = float(np.percentile(img, 2.0))
    level = t2 + fraction * (float(np.median(img[mask])) - t2)
    tissue = mask & (img > level)
    b = ball(radius_mm, vs)
    core = ndimage.binary_erosion(tissue, b, border_value=1)
    if not core.any():
        return mask
    core = largest_component(core)
    return _fill_holes(ndimage.binary_dilation(core, b) & mask)


def dark_fraction(image, stats) -> float:
    """Fraction of voxels darker than a tenth of the median brain intensity ``tm``
    (air, skull: 0.3-0.7 of a whole-head field of view; ~0 for one inside the brain)."""
    return float(np.mean(np.asarray(image) < 0.1 * stats["tm"]))


def is_premasked(image, zero_fraction_min: float = 0.1, bright_border_min: float = 0.6) -> bool:
    """A skull-stripped image: at least ``zero_fraction_min`` of the voxels are exactly 0,
    and at least ``bright_border_min`` of the voxels on the border of the largest non-zero
    region are above a tenth of its 98th percentile (tissue). A scanner that zeroes its background
    (Philips) leaves noise voxels of a few percent of the tissue on that border instead."""
    img = np.asarray(image)
    nz = img != 0
    if nz.mean() > 1.0 - zero_fraction_min or not nz.any():
        return False
    lab, n = ndimage.label(nz)
    if n > 1:
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        nz = lab == int(np.argmax(sizes))
    border = nz & ~ndimage.binary_erosion(nz)
    level = 0.1 * float(np.percentile(img[nz], 98.0))
    return bool(np.mean(img[border] > level) >= bright_border_min)


def brain_extraction(magnitude, voxel_size, *, frac: float = 0.5, d1_mm: float = 20.0,
                     d2_mm: float = 10.0, iterations: int = 1000,
                     low_signal_fraction: float = 0.1, fov_dark_max: float = 0.05,
                     fov_edge_max: float = 0.5, separate: bool = True,
                     separate_fraction: float = 0.6, separate_radius_mm: float = 7.5,
                     **surface_options) -> BetResult:
    """Brain mask of a 3-D or 4-D (echoes last) magnitude (see module doc).

    ``frac``, ``d1_mm``, ``d2_mm``, ``iterations`` and ``surface_options`` go to
    :func:`bet_surface`. The field of view is taken to lie inside the brain when fewer than
    ``fov_dark_max`` of its voxels are dark (:func:`dark_fraction`) or more than
    ``fov_edge_max`` of the surface's vertices reach its edge; the mask is then the voxels
    above ``low_signal_fraction`` of the median intensity, largest component, holes filled.
    ``separate`` (default on): cut the surface mask by :func:`separate_extracranial` with
    ``separate_fraction`` and ``separate_radius_mm`` (a real whole-head 3 mm scan: 2.37 L
    with neck and face -> 1.58 L; the simulated head with neck, fat and orbits: Dice with
    the simulation's brain mask 0.90 -> 0.99). The fraction 0.6 is the lowest that still
    parts the Philips scan's face (0.55: 1.8-2.1 L); 0.65 cut 9% of the brain off the
    small (0.8 L) MNI head of the tests at 1.5 mm, 0.6 keeps 99.4%; a cut that would keep under 40% of the surface
    mask is not applied (noted).
    """
    img = combined_magnitude(magnitude)
    vs = tuple(float(h) for h in voxel_size)
    if not np.any(img > 0):
        raise ValueError("magnitude image is empty (all zeros)")
    if is_premasked(img):
        mask = clean_mask(img > 0, vs)
        return BetResult(mask, "premasked", stats={"zero_fraction": float(np.mean(img == 0))},
                         notes=("the magnitude is already skull-stripped (exact-zero background "
                                "around bright tissue): mask = its non-zero support",))
    stats = robust_statistics(img, vs)
    dark = dark_fraction(img, stats)
    res = None
    if dark >= fov_dark_max:
        res = bet_surface(img, vs, frac=frac, d1_mm=d1_mm, d2_mm=d2_mm, iterations=iterations,
                          **surface_options)
        res.stats["dark_fraction"] = dark
        if res.stats["vertices_at_fov_edge"] <= fov_edge_max:
            if not separate:
                return res
            cut = separate_extracranial(img, res.mask, vs, fraction=separate_fraction,
                                        radius_mm=separate_radius_mm)
            kept = float(cut.sum()) / max(float(res.mask.sum()), 1.0)
            res.stats["separated_fraction_kept"] = kept
            if kept < 0.4:
                return replace(res, notes=res.notes + (
                    f"the extracranial-tissue cut would keep only {100 * kept:.0f}% of the "
                    "surface mask; not applied",))
            res.stats["surface_mask_volume_ml"] = res.stats["mask_volume_ml"]
            res.stats["mask_volume_ml"] = float(cut.sum()) * float(np.prod(vs)) / 1000.0
            return replace(res, mask=cut)
    why = (f"only {100 * dark:.1f}% of the voxels are dark" if res is None else
           f"the brain surface reached the field-of-view edge at "
           f"{100 * res.stats['vertices_at_fov_edge']:.0f}% of its vertices")
    mask = clean_mask(img > low_signal_fraction * float(np.median(img)), vs)
    stats = {**stats, "dark_fraction": dark}
    if res is not None:
        stats["vertices_at_fov_edge"] = res.stats["vertices_at_fov_edge"]
    return BetResult(mask, "fov_inside_brain", stats=stats, notes=(
        f"the field of view appears to lie inside the brain ({why}): mask = the whole field "
        f"of view minus voxels below {low_signal_fraction:g} of the median magnitude",))
