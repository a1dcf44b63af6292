"""A small phantom with a vein at the magic angle to B0, for FOCUSS-QSM (seed 001).

A sphere of tissue (radius 28 mm at 1 mm voxels, 64^3 by default) holding three
ellipsoidal nuclei (0.10, 0.06 and -0.03 ppm) and a vein (radius 2 mm, 0.40 ppm)
whose axis lies in the x-z plane at 54.7356 degrees to B0 (array z). Inside an
infinite cylinder at the magic angle the field is exactly zero (``chi/6 (3 cos^2
theta - 1)``), so the vein is invisible in the field map except for its weak
exterior pattern. The magnitude image is piecewise constant on the same labels
(the vein dark from its deoxyhaemoglobin, the nuclei darker than tissue) with Gaussian
noise, so chi and magnitude share their edges, which is FOCUSS-QSM's prior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..algorithms.dipole import forward_field

__all__ = ["MagicAngleVessel", "magic_angle_vessel_phantom", "MAGIC_ANGLE_DEG"]

MAGIC_ANGLE_DEG = float(np.degrees(np.arccos(1.0 / np.sqrt(3.0))))

# label -> (chi ppm, magnitude a.u.)
_LABELS = {
    1: (0.0, 1.0),      # tissue
    2: (0.10, 0.70),    # nucleus A (iron-rich)
    3: (0.06, 0.80),    # nucleus B
    4: (-0.03, 0.90),   # nucleus C (diamagnetic)
    5: (0.40, 0.35),    # vein at the magic angle
}


@dataclass(frozen=True)
class MagicAngleVessel:
    chi: np.ndarray          # ppm, zero outside the mask
    mask: np.ndarray         # the tissue sphere
    vessel: np.ndarray       # the vein's voxels
    magnitude: np.ndarray    # a.u., noisy
    field: np.ndarray        # local field, ppm of B0 (noisy when noise > 0)
    voxel_size: tuple
    b0_dir: tuple


def magic_angle_vessel_phantom(shape=(64, 64, 64), voxel_size=(1.0, 1.0, 1.0),
                               b0_dir=(0.0, 0.0, 1.0), vessel_radius_mm: float = 2.0,
                               field_noise_ppm: float = 0.0, magnitude_snr: float = 50.0,
                               seed: int = 0) -> MagicAngleVessel:
    """Rasterise the phantom (geometry in mm about the volume centre); B0 along ``b0_dir``
    (the vein's angle is set against it). Noise is white Gaussian."""
    axes = [(np.arange(n, dtype=np.float32) - (n - 1) / 2) * h for n, h in zip(shape, voxel_size)]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    b = np.asarray(b0_dir, float)
    b = b / np.linalg.norm(b)
    lab = np.zeros(shape, np.uint8)
    sphere = x**2 + y**2 + z**2 <= 28.0**2
    lab[sphere] = 1
    for label, c, r in ((2, (-10, 8, 6), (6, 5, 7)), (3, (9, -10, -8), (5, 7, 5)),
                        (4, (10, 12, 10), (4, 4, 6))):
        lab[((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2 <= 1] = label
    # vein axis: B0 rotated by the magic angle towards the axis least aligned with B0
    perp = np.eye(3)[int(np.argmin(np.abs(b)))]
    perp = perp - b * float(perp @ b)
    perp /= np.linalg.norm(perp)
    t = np.deg2rad(MAGIC_ANGLE_DEG)
    u = np.cos(t) * b + np.sin(t) * perp
    along = x * u[0] + y * u[1] + z * u[2]
    r2 = (x - along * u[0]) ** 2 + (y - along * u[1]) ** 2 + (z - along * u[2]) ** 2
    vessel = (r2 <= vessel_radius_mm**2) & sphere & (np.abs(along) <= 24.0)
    lab[vessel] = 5
    table = np.zeros((256, 2), np.float32)
    for k, v in _LABELS.items():
        table[k] = v
    chi = table[lab, 0]
    mask = lab > 0
    rng = np.random.default_rng(seed)
    magnitude = table[lab, 1]
    if magnitude_snr:
        magnitude = np.abs(magnitude + rng.standard_normal(shape).astype(np.float32)
                           / np.float32(magnitude_snr))
    field = forward_field(chi, voxel_size, b)
    if field_noise_ppm:
        field = field + np.float32(field_noise_ppm) * rng.standard_normal(shape).astype(np.float32)
    field = np.where(mask, field, 0).astype(np.float32)
    return MagicAngleVessel(chi.astype(np.float32), mask, vessel, magnitude.astype(np.float32),
                            field, tuple(voxel_size), tuple(float(v) for v in b))
