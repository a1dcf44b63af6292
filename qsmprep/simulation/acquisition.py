"""Multi-echo gradient-echo signal from a phantom: magnitude, phase and the true fields.

Signal model per echo ``n`` (TE in s):

    S_n = PD * exp(-R2* TE_n) * exp(i (phi0 + 2 pi gamma_bar B0 1e-6 f_total TE_n)) + noise

times the intravoxel-dephasing attenuation ``prod_i sinc(TE_n dw/dx_i h_i / 2 pi)``
of a linear field variation across each voxel (signal dropout near air cavities),
with ``f_total`` the total field (ppm) of the whole head's susceptibility, computed
by :func:`qsmprep.algorithms.dipole.forward_field` on a grid zero-padded by half
its size (periodic wrap-around negligible), ``phi0`` a smooth phase offset
(receiver phase), and complex Gaussian noise of standard deviation
``mean brain magnitude at TE=0 / snr`` per channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..algorithms.dipole import forward_field
from ..algorithms.phase import GAMMA_BAR_HZ_PER_T, wrap

__all__ = ["MegreData", "simulate_megre", "smooth_phase_offset"]


@dataclass(frozen=True)
class MegreData:
    magnitude: np.ndarray     # (x, y, z, echoes), arbitrary units
    phase: np.ndarray         # (x, y, z, echoes), radians [-pi, pi)
    total_field: np.ndarray   # ppm
    local_field: np.ndarray   # ppm, field of the brain's own susceptibility
    phase_offset: np.ndarray  # radians
    echo_times: tuple
    b0_tesla: float


def smooth_phase_offset(shape, amplitude=1.0, seed=0) -> np.ndarray:
    """A smooth receiver phase offset (radians): a random low-order polynomial."""
    rng = np.random.default_rng(seed)
    axes = [np.linspace(-1, 1, n, dtype=np.float32) for n in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    c = rng.uniform(-1, 1, 7).astype(np.float32)
    poly = c[0] + c[1] * x + c[2] * y + c[3] * z + c[4] * x * y + c[5] * z * z + c[6] * x * x
    return (amplitude * poly).astype(np.float32)


def simulate_megre(phantom, echo_times, b0_tesla, b0_dir, snr=100.0, phase_offset=1.0,
                   seed=0) -> MegreData:
    """Simulate a multi-echo acquisition of ``phantom`` (see module doc).

    ``b0_dir`` in voxel coordinates (derive it from the affine you will write, so
    oblique acquisitions are consistent). ``snr=None`` gives noiseless data;
    ``phase_offset`` scales the smooth offset (0 disables it).
    """
    vs = phantom.voxel_size
    total = forward_field(phantom.chi, vs, b0_dir)
    local = forward_field(phantom.chi_brain, vs, b0_dir)
    offset = smooth_phase_offset(phantom.chi.shape, phase_offset, seed) if phase_offset else \
        np.zeros(phantom.chi.shape, np.float32)
    rng = np.random.default_rng(seed + 1)
    sigma = 0.0
    if snr:
        sigma = float(phantom.proton_density[phantom.brain_mask].mean()) / float(snr)
    mags, phases = [], []
    omega = 2 * np.pi * GAMMA_BAR_HZ_PER_T * b0_tesla * 1e-6 * total
    # phase change of omega across one voxel along each axis (rad/s per voxel)
    grads = [np.gradient(omega, axis=i) for i in range(3)]
    for te in echo_times:
        dephase = np.ones_like(omega)
        for g in grads:
            dephase *= np.abs(np.sinc(g * te / (2 * np.pi)))
        sig = (phantom.proton_density * np.exp(-phantom.r2star * te) * dephase
               * np.exp(1j * (offset + omega * te)))
        if sigma:
            sig = sig + sigma * (rng.standard_normal(sig.shape) + 1j * rng.standard_normal(sig.shape))
        mags.append(np.abs(sig).astype(np.float32))
        phases.append(wrap(np.angle(sig)))
    return MegreData(np.stack(mags, -1), np.stack(phases, -1), total, local, offset,
                     tuple(float(t) for t in echo_times), float(b0_tesla))
