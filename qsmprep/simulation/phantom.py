"""A brain-shaped numerical head phantom with known susceptibility.

Geometry is defined in millimetres about the volume centre, so the phantom can be
rasterised at any matrix and (anisotropic) voxel size. Susceptibility (ppm) is
relative to brain tissue/CSF ~ 0; the head sits in air so that the background
field comes from real sources (air/tissue and bone/tissue interfaces, an
air-filled sinus), not a polynomial.

Tissues and values (ppm): white matter -0.02, cortical grey 0.01, CSF 0,
globus pallidus 0.12, substantia nigra 0.10, dentate 0.06, red nucleus 0.045,
putamen 0.03, caudate 0.03, veins 0.40 (one at the magic angle to B0),
optional calcification -0.2; outside the brain: scalp 0, skull -2.2,
air +9.4 (outside the head and in the sinus). Labels 23-28 (skin, fat, muscle,
bone marrow, eye, spinal cord) are used by the realistic MNI head only
(:mod:`.extracranial`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LABELS", "HeadPhantom", "head_phantom"]

# label id -> (name, chi ppm, R2* 1/s at 3 T, proton density)
LABELS = {
    0: ("background", 0.0, 0.0, 0.0),
    1: ("csf", 0.0, 4.0, 1.0),
    2: ("white_matter", -0.02, 20.0, 0.69),
    3: ("grey_matter", 0.01, 15.0, 0.8),
    4: ("caudate", 0.03, 25.0, 0.8),
    5: ("putamen", 0.03, 28.0, 0.8),
    6: ("globus_pallidus", 0.12, 45.0, 0.75),
    7: ("thalamus", 0.005, 20.0, 0.75),
    8: ("substantia_nigra", 0.10, 40.0, 0.75),
    9: ("red_nucleus", 0.045, 32.0, 0.75),
    10: ("dentate", 0.06, 35.0, 0.75),
    11: ("vein", 0.40, 45.0, 0.7),
    12: ("calcification", -0.20, 60.0, 0.3),
    20: ("scalp", 0.0, 25.0, 0.9),
    21: ("skull", -2.2, 300.0, 0.05),
    22: ("air", 9.4, 0.0, 0.0),
    # extracranial tissues of the realistic head (:mod:`.extracranial`); for fatty tissues
    # PD is the total proton density and R2* that of the water part (fat: ``FAT``)
    23: ("skin", 0.0, 35.0, 0.75),
    24: ("fat", 0.6, 30.0, 0.95),
    25: ("muscle", 0.0, 40.0, 0.75),
    26: ("bone_marrow", -1.0, 80.0, 0.7),
    27: ("eye", 0.0, 4.0, 1.0),
    28: ("spinal_cord", -0.02, 20.0, 0.7),
}
BRAIN_LABELS = tuple(range(1, 13))


@dataclass(frozen=True)
class HeadPhantom:
    """Rasterised phantom. ``chi`` (ppm) covers the whole head and air;
    ``brain_mask`` marks the brain; ``labels`` uses :data:`LABELS`."""

    chi: np.ndarray
    labels: np.ndarray
    brain_mask: np.ndarray
    r2star: np.ndarray
    proton_density: np.ndarray
    voxel_size: tuple[float, float, float]

    @property
    def chi_brain(self) -> np.ndarray:
        """Susceptibility inside the brain, zero elsewhere (the local source)."""
        return np.where(self.brain_mask, self.chi, 0).astype(np.float32)


def _coords(shape, voxel_size):
    axes = [(np.arange(n, dtype=np.float32) - (n - 1) / 2) * h for n, h in zip(shape, voxel_size)]
    return np.meshgrid(*axes, indexing="ij", sparse=True)


def _ellipsoid(x, y, z, centre, radii):
    return (((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2
            + ((z - centre[2]) / radii[2]) ** 2) <= 1.0


def _cylinder(x, y, z, p0, direction, radius, half_length):
    d = np.asarray(direction, float)
    d = d / np.linalg.norm(d)
    rx, ry, rz = x - p0[0], y - p0[1], z - p0[2]
    t = rx * d[0] + ry * d[1] + rz * d[2]
    px, py, pz = rx - t * d[0], ry - t * d[1], rz - t * d[2]
    return (px**2 + py**2 + pz**2 <= radius**2) & (np.abs(t) <= half_length)


def head_phantom(shape=(128, 128, 96), voxel_size=(1.5, 1.5, 1.5), scale=1.0,
                 calcification=True) -> HeadPhantom:
    """Rasterise the head phantom.

    The phantom's axes are (x: left-right, y: posterior-anterior, z: inferior-
    superior) in array order. ``scale`` shrinks or grows the anatomy (1.0: brain
    ~ 140 x 170 x 120 mm). Shape/voxel size must hold the head (~ 180 x 220 x 180 mm
    at scale 1); the head is clipped otherwise.
    """
    x, y, z = _coords(shape, voxel_size)
    s = float(scale)
    x, y, z = x / s, y / s, z / s
    lab = np.full(np.broadcast_shapes(x.shape, y.shape, z.shape), 22, dtype=np.uint8)

    head = _ellipsoid(x, y, z, (0, 0, -5), (82, 100, 80))
    skull_outer = _ellipsoid(x, y, z, (0, 0, -3), (77, 95, 75))
    skull_inner = _ellipsoid(x, y, z, (0, 0, -2), (72, 90, 70))
    brain = _ellipsoid(x, y, z, (0, 0, 0), (68, 84, 64))
    lab[head] = 20
    lab[skull_outer] = 21
    lab[skull_inner] = 1  # CSF between skull and brain
    lab[brain] = 3
    # white matter with gyri: its boundary oscillates with a ~15 mm period, so the
    # cortical ribbon (grey matter, ~3-8 mm) folds as in a real brain
    r = np.sqrt((x / 68) ** 2 + (y / 84) ** 2 + (z / 64) ** 2)
    folds = (np.sin(2 * np.pi * x / 15.0) * np.sin(2 * np.pi * y / 17.0)
             + np.sin(2 * np.pi * z / 14.0 + 1.0) * np.cos(2 * np.pi * (x + y) / 19.0))
    wm = (r <= 0.86 + 0.07 * folds) & brain
    lab[wm] = 2
    # ventricles
    for sx in (-1, 1):
        lab[_ellipsoid(x, y, z, (sx * 9, 5, 12), (5, 24, 8))] = 1
    # deep grey nuclei (bilateral)
    for sx in (-1, 1):
        lab[_ellipsoid(x, y, z, (sx * 14, 10, 10), (5, 12, 8))] = 4      # caudate
        lab[_ellipsoid(x, y, z, (sx * 24, 2, 0), (6, 16, 9))] = 5        # putamen
        lab[_ellipsoid(x, y, z, (sx * 17, 0, -2), (4, 9, 6))] = 6        # globus pallidus
        lab[_ellipsoid(x, y, z, (sx * 9, -12, 4), (7, 11, 8))] = 7       # thalamus
        lab[_ellipsoid(x, y, z, (sx * 9, -10, -18), (3, 7, 3))] = 8      # substantia nigra
        lab[_ellipsoid(x, y, z, (sx * 5, -14, -14), (3, 3, 3))] = 9      # red nucleus
        lab[_ellipsoid(x, y, z, (sx * 15, -52, -36), (6, 8, 5))] = 10    # dentate
    # veins: one along B0 (z), one transverse, one at the magic angle (54.7 deg)
    magic = np.deg2rad(54.7356)
    veins = (_cylinder(x, y, z, (0, -60, 25), (0, 0, 1), 2.0, 18)
             | _cylinder(x, y, z, (0, -30, 40), (0, 1, 0), 1.8, 25)
             | _cylinder(x, y, z, (30, 25, 20), (np.sin(magic), 0, np.cos(magic)), 2.0, 20))
    lab[veins & brain] = 11
    if calcification:
        lab[_ellipsoid(x, y, z, (-30, 30, 30), (3, 3, 3))] = 12
    # air-filled sinus below the frontal lobe, inside the head
    lab[_ellipsoid(x, y, z, (0, 62, -55), (18, 14, 12)) & head] = 22

    table = np.zeros((256, 3), dtype=np.float32)
    for k, (_, chi, r2s, pd) in LABELS.items():
        table[k] = (chi, r2s, pd)
    brain_mask = np.isin(lab, BRAIN_LABELS) & brain
    return HeadPhantom(
        chi=table[lab, 0],
        labels=lab,
        brain_mask=brain_mask,
        r2star=table[lab, 1],
        proton_density=table[lab, 2],
        voxel_size=tuple(float(v) for v in voxel_size),
    )
