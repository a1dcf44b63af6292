"""The realistic head: extracranial tissue as gradient-echo scans show it (labels only).

Starts from the MNI head of :func:`.anatomy.rasterise_head` (brain, CSF, a bone shell
3-9 mm and a soft-tissue shell 9-15 mm from the brain, a face block and a neck) and
replaces its uniform skull and scalp with layers (MNI mm, array axes x L->R, y P->A,
z I->S):

* skull: inner table (cortical bone, label 21) 3-4.5 mm from the brain, diploe
  (fatty bone marrow, 26) 4.5-7.5 mm, outer table (21) 7.5-9 mm; the diploe thins
  where the bone is thin (skull base, temporal squama) by a smooth random +-0.8 mm;
* soft tissue, by depth below the head's outer surface: skin (23) 0-1.5 mm,
  subcutaneous fat (24) 1.5-5 mm on the scalp (to 7 mm on the face and neck), muscle
  (25) beneath it (galea, and the temporalis muscle over the temporal bone, where the
  head is up to 5 mm wider);
* neck (below the brain, where the grid reaches): muscle with a subcutaneous fat ring,
  a spinal canal (CSF, 1) with the spinal cord (28) continuing the brainstem,
  vertebral bodies of marrow in a cortical shell with discs between them, a posterior
  bony arch, and the pharyngeal airway (air, 22) in front of the vertebrae;
* face: muscle under the skin and fat, orbits with the eyes (vitreous, 27) in orbital
  fat (24) and a bony rim, the air cavities of :mod:`.anatomy` (sinuses, nasal cavity,
  mastoid cells) with bony walls.

Fat at -3.4 ppm and its fraction, T1 and T2* per label are in :data:`FAT`; the forward
model adds its chemical-shift phase (:mod:`.acquisition`). The brain, its labels and the
brain mask are exactly those of the simple head.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from .anatomy import CAVITIES, SHELLS_MM, _ellipsoid, _mirrored, rasterise_head, sample_separable
from .templates import load_mni_templates

__all__ = ["FAT", "FAT_PPM", "rasterise_realistic_head", "head_depth"]

# fat resonance relative to water (main methylene peak, single-peak model)
FAT_PPM = -3.4
FAT_T1_S = 0.38   # fat T1 at 3 T (Gold et al., AJR 2004)
# label -> (fat fraction of the proton density, fat R2* at 3 T in 1/s)
FAT = {23: (0.1, 60.0), 24: (0.9, 60.0), 26: (0.7, 120.0)}

EYES = [((-32.0, 55.0, -40.0), 11.5)]           # mirrored in x; centre MNI mm, radius mm
ORBITAL_FAT = [((-30.0, 40.0, -40.0), (12.0, 15.0, 11.0))]
_GRID_MM = 2.0
_ORIGIN = (-102.0, -136.0, -128.0)
_SHAPE = (103, 120, 122)  # 2 mm grid over x -102..102, y -136..102, z -128..114


def _temporal_weight(x, y, z):
    """Smooth 0..1 weight over the temporal fossae (where the temporalis muscle lies)."""
    lateral = np.clip((np.abs(x) - 38.0) / 20.0, 0.0, 1.0)
    return lateral * np.exp(-((y - 8.0) / 30.0) ** 2 - ((z + 2.0) / 24.0) ** 2)


def _face_neck(x, y, z):
    face = _ellipsoid(x, y, z, (0, 42, -48), (46, 38, 34))
    neck = (((x / 48) ** 2 + ((y + 18) / 52) ** 2) <= 1) & (z < -30) & (z > -115)
    return face, neck


@functools.lru_cache(maxsize=1)
def head_depth():
    """``(depth, origin, spacing)``: distance (mm) below the head's outer surface on a
    2 mm MNI grid (0 outside the head). The surface is 15 mm from the brain (up to 20 mm
    over the temporalis muscle), the face block and the neck, as in :mod:`.anatomy`."""
    t = load_mni_templates()
    axes = [o + _GRID_MM * np.arange(n, dtype=np.float32) for o, n in zip(_ORIGIN, _SHAPE)]
    dist = sample_separable(t.distance, t.distance_origin, 2.0, axes)
    x, y, z = (a.reshape(sh) for a, sh in zip(axes, [(-1, 1, 1), (1, -1, 1), (1, 1, -1)]))
    face, neck = _face_neck(x, y, z)
    head = (dist <= SHELLS_MM["scalp"] + 5.0 * _temporal_weight(x, y, z)) | face | neck
    # the coarse grid's surface lies between samples: subtract half a voxel (as templates.py)
    depth = np.maximum(ndimage.distance_transform_edt(head, sampling=_GRID_MM) - 1.0, 0.0)
    return depth.astype(np.float32), _ORIGIN, _GRID_MM


def _smooth_noise(seed, sigma_mm):
    """Fixed smooth random field (unit SD) on the 2 mm grid (the anatomy has no seed)."""
    rng = np.random.default_rng(seed)
    n = ndimage.gaussian_filter(rng.standard_normal(_SHAPE).astype(np.float32),
                                sigma_mm / _GRID_MM, mode="wrap")
    return n / n.std()


@functools.lru_cache(maxsize=1)
def _bone_noise():
    return _smooth_noise(11, 12.0)


def _paint_sphere_like(lab, x, y, z, c, r, value, where):
    sel = _ellipsoid(x, y, z, c, r) & where
    lab[sel] = value


def rasterise_realistic_head(axes, calcification=True, orbits=True):
    """Labels (uint8) and the brain mask of the realistic head on the grid ``axes`` (MNI mm).

    Same brain as :func:`.anatomy.rasterise_head`; extracranial labels as in the module doc.
    """
    lab, brain = rasterise_head(axes, calcification=calcification)
    t = load_mni_templates()
    axes = [np.asarray(a, np.float32) for a in axes]
    x, y, z = (a.reshape(sh) for a, sh in zip(axes, [(-1, 1, 1), (1, -1, 1), (1, 1, -1)]))
    depth_map, origin, h = head_depth()
    depth = sample_separable(depth_map, origin, h, axes)
    dist = sample_separable(t.distance, t.distance_origin, 2.0, axes)
    wobble = sample_separable(_bone_noise(), origin, h, axes)
    face, neck = _face_neck(x, y, z)
    inside = depth > 0.0
    # everything that is neither brain, CSF shell, bone shell nor a cavity gets layers
    cavity = (lab == 22) & ((dist <= SHELLS_MM["scalp"]) | face | neck)
    soft = inside & ~brain & (dist > SHELLS_MM["skull"]) & ~cavity
    del cavity
    lab[soft] = 25                                            # muscle beneath the fat
    fat_depth = np.where(face | neck, 7.0, 5.0).astype(np.float32)
    lab[soft & (depth <= fat_depth)] = 24                     # subcutaneous fat
    lab[soft & (depth <= 1.5)] = 23                           # skin
    del soft, fat_depth
    # skull: tables of cortical bone, fatty diploe between them
    bone = ~brain & (dist > SHELLS_MM["csf"]) & (dist <= SHELLS_MM["skull"])
    diploe = bone & (dist > 4.5 + 0.4 * wobble) & (dist <= 7.5 - 0.4 * wobble)
    lab[bone] = 21
    lab[diploe] = 26
    del bone, diploe, wobble
    # ----- neck: canal + cord, vertebrae, airway -----
    below = (z < -60.0) & ~brain
    r_canal = np.sqrt(x**2 + (y + 44.0) ** 2)
    body_r = np.sqrt((x / 11.0) ** 2 + ((y + 24.0) / 8.5) ** 2)
    disc = (np.mod(z + 200.0, 17.0) < 4.0)
    neckzone = neck & below & (depth > 7.0)
    lab[neckzone & (r_canal > 8.0) & (r_canal <= 11.0) & (y < -38.0)] = 21   # posterior arch
    lab[neckzone & (body_r <= 1.0)] = 21                                     # cortical shell
    lab[neckzone & (body_r <= 0.82)] = 26                                    # vertebral marrow
    lab[neckzone & (body_r <= 1.0) & disc] = 25                              # discs
    lab[neckzone & (r_canal <= 8.0)] = 1                                     # spinal canal CSF
    lab[neckzone & (r_canal <= 4.5)] = 28                                    # spinal cord
    airway = neck & (z < -55.0) & (((x / 10.0) ** 2 + ((y + 5.0) / 6.0) ** 2) <= 1.0)
    lab[airway & ~brain & (dist > SHELLS_MM["skull"])] = 22
    del r_canal, body_r, disc, neckzone, airway, below
    # ----- orbits: eyes in orbital fat, bony rim; cavities get bony walls -----
    outside_bone = dist > SHELLS_MM["skull"]
    if orbits:
        for (c, rad) in _mirrored([(e[0], (e[1],) * 3) for e in EYES]):
            _paint_sphere_like(lab, x, y, z, c, tuple(v + 2.0 for v in rad), 21,
                               outside_bone & (depth > 4.0) & (y < c[1] + 2.0))
        for c, r in _mirrored(ORBITAL_FAT):
            _paint_sphere_like(lab, x, y, z, c, r, 24, outside_bone & (depth > 1.5))
        for (c, rad) in _mirrored([(e[0], (e[1],) * 3) for e in EYES]):
            _paint_sphere_like(lab, x, y, z, c, rad, 27, outside_bone)
    far = dist > 2.0
    for c, r in _mirrored(CAVITIES):
        wall = tuple(v + 1.5 for v in r)
        shell = _ellipsoid(x, y, z, c, wall) & ~_ellipsoid(x, y, z, c, r) & far & inside
        lab[shell & ~brain & (lab != 22) & (lab != 27)] = 21
    lab[~inside & ~brain & (dist > SHELLS_MM["skull"])] = 22
    return lab, brain
