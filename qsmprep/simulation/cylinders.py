"""The seed-002 phantom: an agar cylinder holding five particle-loaded cylinders.

Geometry (mm, about the volume centre; 1 mm voxels, 96 x 96 x 64 by default): an agar
cylinder (radius 40, length 56) with its axis along B0 (array z) in air; inside it
five cylinders (radius 3.5, length 40) also parallel to B0, on a ring of radius 22,
loaded with paramagnetic particles so that their bulk susceptibility relative to agar
is ``delta_chi`` (0, 0.375, 0.75, 1.125, 1.5 ppm). Air is +9.4 ppm relative to agar
(water -9.05, air +0.36 ppm in SI volume units).

Relaxation: agar R2* = ``r2_agar`` (default 10 1/s); in a particle cylinder the
particles add the static-dephasing R2' of Yablonskiy & Haacke (MRM 1994) in the form
used by seed 002, ``R2' = 2 pi gamma_bar B0 delta_chi / (9 sqrt 3)`` (delta_chi
dimensionless; 51.5 1/s per ppm at 3 T), which
:func:`qsmprep.algorithms.inversion.preconditioned.r2prime_to_chi` inverts.

Multi-echo magnitudes ``PD exp(-R2* TE) + noise`` (Gaussian, ``1/snr`` of the agar's
first-echo signal) and the total field (forward model of the whole object, ppm of B0)
with noise whose standard deviation scales as the inverse of the echo-summed signal
(``field_noise_ppm`` in agar), as a multi-echo field fit gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..algorithms.dipole import forward_field
from ..algorithms.phase import GAMMA_BAR_HZ_PER_T

__all__ = ["CylinderPhantom", "cylinder_phantom", "r2prime_from_chi", "DELTA_CHI", "CHI_AIR"]

DELTA_CHI = (0.0, 0.375, 0.75, 1.125, 1.5)
CHI_AIR = 9.4


def r2prime_from_chi(delta_chi_ppm, b0_tesla) -> np.ndarray:
    """Static-dephasing R2' (1/s) of particles giving bulk ``delta_chi_ppm`` (seed 002)."""
    return (2 * np.pi * GAMMA_BAR_HZ_PER_T * b0_tesla * np.asarray(delta_chi_ppm) * 1e-6
            / (9 * np.sqrt(3)))


@dataclass(frozen=True)
class CylinderPhantom:
    chi: np.ndarray             # ppm relative to agar (air CHI_AIR), whole volume
    object_mask: np.ndarray     # the agar cylinder
    labels: np.ndarray          # 0 air, 1 agar, 2..6 the particle cylinders (DELTA_CHI order)
    cores: tuple                # per particle cylinder: voxels >= 1 mm inside its wall
    delta_chi: tuple
    magnitudes: np.ndarray      # (..., n_echoes)
    echo_times: tuple           # s
    total_field: np.ndarray     # ppm of B0, noisy, zero outside the object
    noise_ppm: np.ndarray       # field noise standard deviation (ppm)
    r2star: np.ndarray          # true R2* (1/s)
    voxel_size: tuple
    b0_dir: tuple
    b0_tesla: float


def cylinder_phantom(shape=(96, 96, 64), voxel_size=(1.0, 1.0, 1.0), b0_tesla=3.0,
                     delta_chi=DELTA_CHI, echo_times=(0.004, 0.009, 0.014, 0.019, 0.024),
                     r2_agar: float = 10.0, snr: float = 100.0, field_noise_ppm: float = 0.002,
                     radius_mm: float = 3.5, seed: int = 0) -> CylinderPhantom:
    """Rasterise the phantom and simulate its acquisition (see module doc)."""
    axes = [(np.arange(n, dtype=np.float32) - (n - 1) / 2) * h for n, h in zip(shape, voxel_size)]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    lab = np.zeros(shape, np.uint8)
    agar = (x**2 + y**2 <= 40.0**2) & (np.abs(z) <= 28.0)
    lab[agar] = 1
    cores = []
    for i in range(len(delta_chi)):
        a = 2 * np.pi * i / len(delta_chi)
        cx, cy = 22.0 * np.cos(a), 22.0 * np.sin(a)
        rr = (x - cx) ** 2 + (y - cy) ** 2
        lab[(rr <= radius_mm**2) & (np.abs(z) <= 20.0)] = 2 + i
        cores.append((rr <= (radius_mm - 1.0) ** 2) & (np.abs(z) <= 19.0))
    table = np.zeros((256, 2), np.float32)  # chi, R2*
    table[0] = (CHI_AIR, 0.0)
    table[1] = (0.0, r2_agar)
    for i, dc in enumerate(delta_chi):
        table[2 + i] = (dc, r2_agar + float(r2prime_from_chi(dc, b0_tesla)))
    chi = table[lab, 0]
    r2s = table[lab, 1]
    rng = np.random.default_rng(seed)
    pd = agar.astype(np.float32)
    te = np.asarray(echo_times, np.float32)
    mags = pd[..., None] * np.exp(-r2s[..., None] * te)
    mags = np.abs(mags + rng.standard_normal(mags.shape).astype(np.float32)
                  * np.float32(np.exp(-r2_agar * te[0]) / snr))
    ref = float(np.exp(-r2_agar * te).sum())
    signal = (pd[..., None] * np.exp(-r2s[..., None] * te)).sum(-1)
    noise = np.where(agar, field_noise_ppm * ref / np.maximum(signal, 1e-3 * ref), 0)
    # a uniform infinite medium makes no field (Lorentz-corrected kernel): the sources are
    # the object's susceptibility relative to the surrounding air
    field = forward_field(chi - np.float32(CHI_AIR), voxel_size, (0.0, 0.0, 1.0),
                          pad=[n for n in shape])
    field = field + noise * rng.standard_normal(shape)
    field = np.where(agar, field, 0).astype(np.float32)
    return CylinderPhantom(chi, agar, lab, tuple(cores), tuple(delta_chi), mags.astype(np.float32),
                           tuple(float(t) for t in echo_times), field, noise.astype(np.float32),
                           r2s, tuple(voxel_size), (0.0, 0.0, 1.0), float(b0_tesla))
