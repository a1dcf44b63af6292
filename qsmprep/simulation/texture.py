"""Susceptibility texture of the realistic head: no tissue is piecewise constant.

Inside the brain mask the label value of :data:`.phantom.LABELS` gets three additions
(ppm, relative to CSF; CSF itself stays exactly 0, the reference):

* a smooth random variation (Gaussian-filtered white noise, sigma 6 mm, unit SD)
  times :data:`SMOOTH_PPM` of the label: 4 ppb in white/grey matter, 10-15 ppb in the
  iron-rich deep grey nuclei (their iron is not uniform);
* fine structure: band-pass noise (difference of Gaussians, sigma 0.7 and 2.5 mm) times
  :data:`FINE_PPM`: 3 ppb in white/grey matter, 6 ppb in the nuclei;
* vessel-like structures: tubes along random smooth curves, each curve being where two
  independent smooth random fields (sigma 5 mm, normalised by their gradient to mm)
  both vanish, kept where a third field is high (so they come in segments); radius
  0.45-0.9 mm, susceptibility :data:`VESSEL_PPM` (deoxygenated venous blood). They run
  through white and grey matter, thalamus and CSF (pial and ventricular veins).

The random fields live on a fixed 1 mm MNI grid over the brain, drawn with a fixed seed
(the anatomy never depends on the simulation's noise seed) and cached per process; on
any simulation grid they are sampled by trilinear interpolation, so the texture is the
same object at every resolution. The truth map is the voxel mean of exactly this chi.
R2* follows: :data:`R2STAR_PER_PPM` (1/s per ppm at 3 T) times the added chi where it
is positive (iron and deoxyhaemoglobin dephase; Yablonskiy & Haacke 1994).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from .anatomy import sample_separable

__all__ = ["SMOOTH_PPM", "FINE_PPM", "VESSEL_PPM", "R2STAR_PER_PPM", "chi_texture",
           "texture_fields"]

SEED = 20_24
ORIGIN = (-76.0, -111.0, -76.0)   # MNI mm of voxel 0; brain: x +-72, y -107..73, z -72..82
SHAPE = (153, 189, 163)
# label -> SD (ppm) of the smooth and of the fine texture
SMOOTH_PPM = {2: 0.004, 3: 0.004, 4: 0.010, 5: 0.010, 6: 0.015, 7: 0.006, 8: 0.015,
              9: 0.010, 10: 0.012}
FINE_PPM = {2: 0.003, 3: 0.003, 4: 0.006, 5: 0.006, 6: 0.006, 7: 0.004, 8: 0.006,
            9: 0.006, 10: 0.006}
VESSEL_PPM = 0.35
VESSEL_LABELS = (1, 2, 3, 7)        # tissue and CSF a vessel may run through
R2STAR_PER_PPM = 150.0
GATE = 0.4                          # vessels where the gate field exceeds this (~1/3)


def _gauss_noise(rng, sigma_vox):
    n = rng.standard_normal(SHAPE, dtype=np.float32)
    return ndimage.gaussian_filter(n, sigma_vox, mode="wrap", truncate=3.0)


def _unit(a):
    a -= a.mean()
    a /= a.std()
    return a


@functools.lru_cache(maxsize=1)
def texture_fields():
    """``dict`` of float32 fields on the 1 mm grid (``ORIGIN``, ``SHAPE``): ``smooth``,
    ``fine`` (unit SD), ``u1``/``u2`` (signed distance-like, mm, to two random surfaces)
    and ``gate`` (unit SD)."""
    rng = np.random.default_rng(SEED)
    smooth = _unit(_gauss_noise(rng, 6.0))
    white = rng.standard_normal(SHAPE, dtype=np.float32)
    fine = ndimage.gaussian_filter(white, 0.7, mode="wrap")
    fine -= ndimage.gaussian_filter(white, 2.5, mode="wrap")
    del white
    fine = _unit(fine)
    out = {"smooth": smooth, "fine": fine}
    for name in ("u1", "u2"):
        n = _gauss_noise(rng, 5.0)
        g = np.sqrt(sum(d * d for d in np.gradient(n)))
        out[name] = (n / np.maximum(g, 1e-3 * g.mean())).astype(np.float32)
    out["gate"] = _unit(_gauss_noise(rng, 9.0))
    return out


def chi_texture(axes, labels, brain, slab=16):
    """Chi to add (ppm, float32, zero outside ``brain``) on the grid ``axes`` (MNI mm).

    ``labels``/``brain`` are that grid's labels and brain mask; see the module doc.
    Computed ``slab`` planes of axis 0 at a time to bound memory.
    """
    from .phantom import LABELS

    f = texture_fields()
    smooth_t = np.zeros(256, np.float32)
    fine_t = np.zeros(256, np.float32)
    for k, v in SMOOTH_PPM.items():
        smooth_t[k] = v
    for k, v in FINE_PPM.items():
        fine_t[k] = v
    base = np.zeros(256, np.float32)
    for k, v in LABELS.items():
        base[k] = v[1]
    vessel_ok = np.zeros(256, bool)
    vessel_ok[list(VESSEL_LABELS)] = True
    out = np.zeros(labels.shape, np.float32)
    ax0 = np.asarray(axes[0], np.float32)
    for i0 in range(0, len(ax0), slab):
        i1 = min(len(ax0), i0 + slab)
        b = brain[i0:i1]
        if not b.any():
            continue
        sub = [ax0[i0:i1], axes[1], axes[2]]
        lab = labels[i0:i1]

        def s(name):
            return sample_separable(f[name], ORIGIN, 1.0, sub)

        d = smooth_t[lab] * s("smooth")
        d += fine_t[lab] * s("fine")
        gate = s("gate")
        radius = np.clip(0.45 + 0.3 * (gate - GATE), 0.45, 0.9)
        tube = s("u1") ** 2
        tube += s("u2") ** 2
        vessel = (tube <= radius * radius) & (gate > GATE) & vessel_ok[lab]
        d[vessel] = VESSEL_PPM - base[lab[vessel]]
        d *= b
        out[i0:i1] = d
    return out
