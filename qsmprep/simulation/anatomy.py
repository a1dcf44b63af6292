"""Rasterise the MNI152-based head phantom on any axis-aligned grid (labels only).

The brain comes from the MNI152 2009a grey/white-matter probability maps
(:mod:`.templates`): inside the template's brain each point is white matter, grey
matter or CSF, whichever probability is largest (CSF = 1 - GM - WM). Around it,
shells at a given distance from the brain surface make the head: subarachnoid CSF
(0-3 mm), skull (3-9 mm, bone), scalp (9-15 mm), then air; a face/neck block of
soft tissue holds air-filled cavities (frontal, sphenoid and maxillary sinuses, nasal
cavity, mastoid air cells), kept at least 2 mm from the brain. Deep grey nuclei are
ellipsoids at their MNI coordinates (both hemispheres; centres after the MNI atlases
of Keuken et al., NeuroImage 2014, and Mai's atlas), veins are cylinders (one along
B0, one transverse, one at the magic angle 54.7 deg in the x-z plane), and an
optional calcification is a small sphere in frontal white matter. Label ids and the
tissue values (chi relative to CSF, R2*, proton density) are those of
:data:`qsmprep.simulation.phantom.LABELS`; T1 values for the steady-state magnitude
are in :data:`T1_S`.

Coordinates are MNI mm: x left->right, y posterior->anterior, z inferior->superior,
in array order.
"""

from __future__ import annotations

import numpy as np

from .templates import load_mni_templates

__all__ = ["T1_S", "NUCLEI", "VEINS", "rasterise_head", "sample_separable"]

# T1 (s) at 3 T (Stanisz et al., MRM 2005; Wansapura et al., JMRI 1999; Rooney 2007)
T1_S = {0: 1.0, 1: 4.0, 2: 0.85, 3: 1.35, 4: 1.25, 5: 1.15, 6: 0.95, 7: 1.05, 8: 1.0,
        9: 1.0, 10: 1.0, 11: 1.65, 12: 0.6, 20: 0.9, 21: 0.35, 22: 1.0,
        # water T1 of the realistic head's extracranial tissues (Stanisz 2005; Gold 2004)
        23: 1.0, 24: 1.0, 25: 1.4, 26: 1.0, 27: 4.0, 28: 0.85}

# label -> list of (centre MNI mm, semi-axes mm); mirrored in x for the right hemisphere
NUCLEI = {
    4: [((-13.0, 13.0, 9.0), (4.0, 9.0, 7.0))],        # caudate head
    5: [((-25.0, 3.0, 1.0), (5.0, 13.0, 8.0))],        # putamen
    6: [((-19.0, -3.0, -1.0), (3.5, 7.0, 4.0))],       # globus pallidus
    7: [((-11.0, -18.0, 7.0), (6.0, 11.0, 7.0))],      # thalamus
    8: [((-11.0, -17.0, -12.0), (3.0, 7.0, 2.5))],     # substantia nigra
    9: [((-5.0, -19.0, -8.0), (3.0, 3.5, 3.0))],       # red nucleus
    10: [((-15.0, -57.0, -34.0), (6.0, 8.0, 5.0))],    # dentate nucleus
}
_MAGIC = np.arccos(1.0 / np.sqrt(3.0))  # 54.7356 deg
# (point MNI mm, direction, radius mm, half length mm): along z (B0 for an axial scan),
# along y (transverse, internal-cerebral-vein-like) and at the magic angle in x-z
VEINS = [
    ((-38.0, -45.0, 32.0), (0.0, 0.0, 1.0), 2.0, 16.0),
    ((0.0, -10.0, 18.0), (0.0, 1.0, 0.0), 2.0, 14.0),
    ((32.0, 10.0, 28.0), (np.sin(_MAGIC), 0.0, np.cos(_MAGIC)), 2.0, 14.0),
]
CALCIFICATION = ((-28.0, 30.0, 24.0), 3.0)
# air cavities: (centre, semi-axes), mirrored where the centre has x != 0
CAVITIES = [
    ((0.0, 68.0, -10.0), (11.0, 5.0, 8.0)),     # frontal sinus
    ((0.0, 14.0, -38.0), (10.0, 9.0, 7.0)),     # sphenoid sinus
    ((0.0, 45.0, -45.0), (8.0, 22.0, 14.0)),    # nasal cavity / ethmoid cells
    ((-28.0, 40.0, -62.0), (12.0, 14.0, 12.0)), # maxillary sinus
    ((-52.0, -32.0, -42.0), (7.0, 9.0, 7.0)),   # mastoid air cells
]
SHELLS_MM = {"csf": 3.0, "skull": 9.0, "scalp": 15.0}


def sample_separable(vol, origin, spacing, axes) -> np.ndarray:
    """Trilinear samples of ``vol`` at the outer product of 1-D coordinate ``axes`` (mm).

    Interpolating one axis at a time costs a few passes over the output instead of
    one general ``map_coordinates`` call; outside the volume the edge value is used.
    """
    out = np.asarray(vol, np.float32)
    for ax, coords in enumerate(axes):
        f = (np.asarray(coords, np.float64) - origin[ax]) / spacing
        n = out.shape[ax]
        i0 = np.clip(np.floor(f).astype(np.intp), 0, n - 2)
        w = np.clip(f - i0, 0.0, 1.0).astype(np.float32)
        shape = [1, 1, 1]
        shape[ax] = w.size
        w = w.reshape(shape)
        lo = np.take(out, i0, axis=ax)
        hi = np.take(out, i0 + 1, axis=ax)
        hi -= lo
        hi *= w
        lo += hi
        out = lo
    return out


def _ellipsoid(x, y, z, c, r):
    return (((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2
            + ((z - c[2]) / r[2]) ** 2) <= 1.0


def _cylinder(x, y, z, p0, direction, radius, half_length):
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    rx, ry, rz = x - p0[0], y - p0[1], z - p0[2]
    t = rx * d[0] + ry * d[1] + rz * d[2]
    px, py, pz = rx - t * d[0], ry - t * d[1], rz - t * d[2]
    return (px * px + py * py + pz * pz <= radius * radius) & (np.abs(t) <= half_length)


def _mirrored(items):
    for c, r in items:
        yield c, r
        if c[0] != 0:
            yield (-c[0], c[1], c[2]), r


def _box(axes, c, r):
    """Index slices of the sub-grid that can hold an object of extent ``r`` about ``c``."""
    sl = []
    for a, ci, ri in zip(axes, c, r):
        lo, hi = np.searchsorted(a, ci - ri - 1e-3), np.searchsorted(a, ci + ri + 1e-3)
        sl.append(slice(int(lo), int(max(hi, lo))))
    return tuple(sl)


def _paint(lab, axes, c, r, value, shape_fn, where=None):
    sl = _box(axes, c, r)
    if any(s.stop <= s.start for s in sl):
        return
    x, y, z = (a[s].reshape(sh) for a, s, sh in
               zip(axes, sl, [(-1, 1, 1), (1, -1, 1), (1, 1, -1)]))
    sel = shape_fn(x, y, z)
    if where is not None:
        sel &= where(sl)
    lab[sl][sel] = value


def rasterise_head(axes, calcification=True):
    """Labels (uint8, ids of ``LABELS``) and the brain mask on the grid ``axes``.

    ``axes``: three increasing 1-D arrays of MNI coordinates (mm) of the grid points.
    Returns ``(labels, brain_mask)``; the brain mask is the template's brain (tissue
    and the CSF inside it), without the subarachnoid CSF shell outside it.
    """
    t = load_mni_templates()
    axes = [np.asarray(a, np.float32) for a in axes]
    dist = sample_separable(t.distance, t.distance_origin, 2.0, axes)
    brain = sample_separable(t.brain, t.origin, 1.0, axes) >= 0.5
    shape = brain.shape
    x, y, z = (a.reshape(sh) for a, sh in zip(axes, [(-1, 1, 1), (1, -1, 1), (1, 1, -1)]))

    lab = np.full(shape, 22, np.uint8)
    face = _ellipsoid(x, y, z, (0, 42, -48), (46, 38, 34))
    neck = (((x / 48) ** 2 + ((y + 18) / 52) ** 2) <= 1) & (z < -30) & (z > -115)
    lab[(dist <= SHELLS_MM["scalp"]) | face | neck] = 20
    lab[(dist > SHELLS_MM["csf"]) & (dist <= SHELLS_MM["skull"])] = 21
    lab[(dist > 0) & (dist <= SHELLS_MM["csf"])] = 1
    del dist
    gm = sample_separable(t.gm, t.origin, 1.0, axes)
    wm = sample_separable(t.wm, t.origin, 1.0, axes)
    csf = 1.0 - gm - wm
    tissue = np.where(wm >= gm, 2, 3).astype(np.uint8)
    tissue[(csf > gm) & (csf > wm)] = 1
    del gm, wm, csf
    lab[brain] = tissue[brain]
    del tissue

    def in_brain(sl):
        return brain[sl]

    for k, items in NUCLEI.items():
        for c, r in _mirrored(items):
            _paint(lab, axes, c, r, k, lambda x, y, z, c=c, r=r: _ellipsoid(x, y, z, c, r),
                   in_brain)
    for p0, d, rad, half in VEINS:
        ext = [half * abs(di) / np.linalg.norm(d) + rad for di in d]
        _paint(lab, axes, p0, ext, 11,
               lambda x, y, z, p0=p0, d=d, rad=rad, half=half: _cylinder(x, y, z, p0, d, rad, half),
               in_brain)
    if calcification:
        c, rad = CALCIFICATION
        _paint(lab, axes, c, (rad,) * 3, 12,
               lambda x, y, z: _ellipsoid(x, y, z, c, (rad,) * 3), in_brain)
    # air cavities inside the head, at least 2 mm from the brain (their walls are bone)
    far = sample_separable(t.distance, t.distance_origin, 2.0, axes) > 2.0
    for c, r in _mirrored(CAVITIES):
        _paint(lab, axes, c, r, 22, lambda x, y, z, c=c, r=r: _ellipsoid(x, y, z, c, r),
               lambda sl: far[sl])
    return lab, brain
