"""Multi-channel head-phantom data with known sensitivities for the coil-combination tests.

The object signal is built here (not with qsmprep.simulation.acquisition, which another
module owns) from the head phantom: ``rho_n = PD exp(-R2* TE_n) exp(i (phi0 + omega TE_n))``
with ``omega`` from the whole head's susceptibility (air, skull, sinus included) and a
smooth receiver offset ``phi0``; channel images ``S_c rho_n + noise`` at SNR 100 after
optimal combination (mean over the brain, first echo).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qsmprep.algorithms.dipole import forward_field
from qsmprep.algorithms.phase import GAMMA_BAR_HZ_PER_T
from qsmprep.simulation.coils import (body_coil_sensitivity, channel_noise_sigma,
                                      coil_sensitivities, multichannel_signal)
from qsmprep.simulation.phantom import head_phantom

SHAPE = (64, 76, 64)
VOXEL = (2.7, 2.7, 2.7)
B0_DIR = (0.0, 0.0, 1.0)
TE = (0.004, 0.008, 0.012, 0.016)
B0 = 3.0


@dataclass(frozen=True)
class CoilCase:
    phantom: object
    rho: np.ndarray          # (x, y, z, echoes) complex64, noiseless object signal
    omega: np.ndarray        # rad/s
    phi0: np.ndarray         # receiver offset (rad)
    sens: np.ndarray         # (C, x, y, z) complex64
    body: np.ndarray         # (x, y, z) complex64
    channels: np.ndarray     # (echoes, C, x, y, z) complex64, with noise
    body_images: np.ndarray  # (echoes, x, y, z) complex64, with noise
    sigma: float

    @property
    def mask(self):
        return self.phantom.brain_mask


def make_case(n_channels=8, snr=100.0, seed=0) -> CoilCase:
    ph = head_phantom(SHAPE, VOXEL)
    total = forward_field(ph.chi, VOXEL, B0_DIR)
    omega = (2 * np.pi * GAMMA_BAR_HZ_PER_T * B0 * 1e-6 * total).astype(np.float32)
    axes = [np.linspace(-1, 1, n, dtype=np.float32) for n in SHAPE]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    phi0 = (0.8 + 0.6 * x - 0.4 * y + 0.3 * z * z).astype(np.float32)
    rho = np.stack([ph.proton_density * np.exp(-ph.r2star * t) * np.exp(1j * (phi0 + omega * t))
                    for t in TE], -1).astype(np.complex64)
    sens = coil_sensitivities(SHAPE, VOXEL, n_channels, seed=seed)
    body = body_coil_sensitivity(SHAPE, VOXEL)
    sigma = channel_noise_sigma(rho, sens, ph.brain_mask, snr)
    channels = multichannel_signal(rho, sens, sigma, seed=seed + 1)
    body_images = multichannel_signal(rho, body[None], sigma, seed=seed + 2)[:, 0]
    return CoilCase(ph, rho, omega, phi0, sens, body, channels, body_images, sigma)


def phase_rms(image, truth, mask) -> float:
    """RMS (rad) of the wrapped phase difference in ``mask`` after removing its circular mean."""
    d = np.angle(np.asarray(image) * np.conj(truth))[np.asarray(mask, bool)]
    d = np.angle(np.exp(1j * (d - np.angle(np.mean(np.exp(1j * d))))))
    return float(np.sqrt(np.mean(d * d)))


def magnitude_error(image, truth, mask) -> float:
    """Relative L2 error of ``|image|`` against ``truth`` after the best scale factor."""
    m = np.asarray(mask, bool)
    a = np.abs(image)[m].astype(np.float64)
    b = np.abs(truth)[m].astype(np.float64)
    k = (a @ b) / (b @ b)
    return float(np.linalg.norm(a - k * b) / np.linalg.norm(k * b))
