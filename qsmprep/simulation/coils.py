"""Simulated receive coils: array-coil and body-coil sensitivities, channel images.

Array coil: ``n_channels`` circular loops placed in rings on an elliptic cylinder
around the field of view (axis along array axis 2), each loop facing the cylinder
axis. The receive sensitivity of a loop is its transverse magnetic field per unit
current, ``S = Bx - i By``, from the Biot-Savart law summed over straight wire
segments (the reciprocity principle, Hoult & Richards, J. Magn. Reson. 1976;
Roemer et al., MRM 1990 "The NMR phased array"). It is computed on a grid of about
6 mm and interpolated linearly (the fields are smooth inside the cylinder), then
multiplied by a smooth per-channel phase (cable/receiver phase: a constant plus a
gentle linear ramp) and normalised so that the root-sum-of-squares sensitivity has
RMS 1 over the central ellipsoid of the field of view.

Body coil: near-uniform magnitude (a 15% quadratic fall-off to the field-of-view
edge) with a slow linear+quadratic phase.

Axes are array axes; coordinates in mm about the volume centre, so anisotropic
voxels give the same physical sensitivities.
"""

from __future__ import annotations

import numpy as np

from ..algorithms.smooth_fields import block_factors, upsample_linear

__all__ = ["coil_sensitivities", "body_coil_sensitivity", "multichannel_signal", "channel_noise_sigma"]

_GRID_MM = 6.0
_SEGMENTS = 48


def _half_extent(shape, voxel_size):
    return np.array([(n - 1) / 2.0 * h for n, h in zip(shape, voxel_size)], np.float64)


def _coarse_points(shape, voxel_size):
    """Block-centre coordinates (mm) matching :func:`upsample_linear`'s grid."""
    factors = block_factors(voxel_size, _GRID_MM)
    axes = []
    for n, h, f in zip(shape, voxel_size, factors):
        c = -(-n // f)
        centre_idx = np.arange(c) * f + (f - 1) / 2.0
        axes.append((centre_idx - (n - 1) / 2.0) * h)
    return factors, axes


def _loop_field(points, centre, normal, radius):
    """Biot-Savart field (arbitrary units) of a unit-current loop at ``points`` (N, 3) mm."""
    normal = normal / np.linalg.norm(normal)
    helper = np.array([0.0, 0.0, 1.0]) if abs(normal[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(normal, helper)
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    t = np.linspace(0, 2 * np.pi, _SEGMENTS + 1)
    wire = centre + radius * (np.cos(t)[:, None] * u + np.sin(t)[:, None] * v)
    dl = np.diff(wire, axis=0)
    mid = 0.5 * (wire[1:] + wire[:-1])
    field = np.zeros_like(points)
    for k in range(_SEGMENTS):
        r = points - mid[k]
        d3 = np.maximum(np.sum(r * r, axis=1), 1.0) ** 1.5
        field += np.cross(dl[k], r) / d3[:, None]
    return field


def _loop_layout(half, n_channels):
    """Loop centres, inward normals and radius on an elliptic cylinder around the FOV."""
    a = half[0] * np.sqrt(2.0) + 8.0   # the ellipse through the in-plane FOV corners, plus 8 mm
    b = half[1] * np.sqrt(2.0) + 8.0
    n_rings = max(1, int(round(np.sqrt(n_channels / 6.0))))
    per_ring = [n_channels // n_rings + (1 if i < n_channels % n_rings else 0) for i in range(n_rings)]
    zs = np.linspace(-half[2], half[2], n_rings + 2)[1:-1] if n_rings > 1 else np.array([0.0])
    perimeter = np.pi * (3 * (a + b) - np.sqrt((3 * a + b) * (a + 3 * b)))
    radius = min(0.45 * perimeter / max(per_ring), 0.45 * (2 * half[2] + 40) / n_rings + 20)
    centres, normals = [], []
    for ring, (z, m) in enumerate(zip(zs, per_ring)):
        for j in range(m):
            phi = 2 * np.pi * (j + 0.5 * (ring % 2)) / m
            p = np.array([a * np.cos(phi), b * np.sin(phi), z])
            nrm = -np.array([np.cos(phi) / a, np.sin(phi) / b, 0.0])
            centres.append(p)
            normals.append(nrm / np.linalg.norm(nrm))
    return centres, normals, radius


def coil_sensitivities(shape, voxel_size, n_channels, seed=0) -> np.ndarray:
    """Complex64 receive sensitivities, shape ``(n_channels, *shape)`` (see module doc).

    ``seed`` draws the per-channel cable phases (constant in ``[-pi, pi)`` and a linear
    ramp of up to 1 rad across the field of view).
    """
    shape = tuple(int(n) for n in shape)
    vs = tuple(float(h) for h in voxel_size)
    n_channels = int(n_channels)
    if n_channels < 1:
        raise ValueError("n_channels must be >= 1")
    half = _half_extent(shape, vs)
    factors, axes = _coarse_points(shape, vs)
    grid = np.meshgrid(*axes, indexing="ij")
    pts = np.stack([g.ravel() for g in grid], axis=1)
    cshape = grid[0].shape
    centres, normals, radius = _loop_layout(half, n_channels)
    rng = np.random.default_rng(seed)
    coarse = np.empty((n_channels,) + cshape, np.complex64)
    span = np.maximum(half, 1.0)
    for c in range(n_channels):
        b = _loop_field(pts, centres[c], normals[c], radius)
        s = (b[:, 0] - 1j * b[:, 1]).reshape(cshape)
        const = rng.uniform(-np.pi, np.pi)
        ramp = rng.uniform(-0.5, 0.5, 3)
        cable = const + sum(r * g / s_ for r, g, s_ in zip(ramp, grid, span))
        coarse[c] = s * np.exp(1j * cable)
    # normalise: RMS of the root-sum-of-squares over the central ellipsoid is 1
    rss = np.sqrt(np.sum(np.abs(coarse) ** 2, axis=0))
    central = sum((g / (0.6 * s_)) ** 2 for g, s_ in zip(grid, span)) <= 1.0
    scale = np.sqrt(np.mean(rss[central] ** 2)) if central.any() else np.sqrt(np.mean(rss ** 2))
    coarse /= np.float32(scale)
    return upsample_linear(coarse, factors, shape).astype(np.complex64, copy=False)


def body_coil_sensitivity(shape, voxel_size) -> np.ndarray:
    """Complex64 body-coil sensitivity of ``shape``: near-uniform magnitude, slow phase."""
    shape = tuple(int(n) for n in shape)
    half = np.maximum(_half_extent(shape, voxel_size), 1.0)
    axes = [((np.arange(n) - (n - 1) / 2.0) * h / s).astype(np.float32)
            for n, h, s in zip(shape, voxel_size, half)]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    r2 = (x * x + y * y + z * z) / 3.0
    mag = 1.0 - 0.15 * r2
    phase = 0.3 * x - 0.2 * y + 0.15 * z + 0.2 * (x * x - y * y)
    return (mag * np.exp(1j * phase)).astype(np.complex64)


def channel_noise_sigma(signal, sensitivities, mask, snr: float) -> float:
    """Per-channel noise standard deviation giving ``snr`` after optimal combination.

    The optimally combined SNR of a voxel is ``|rho| ||S|| / sigma``; ``sigma`` is set so
    that its mean over ``mask`` (for the first echo of ``signal``) equals ``snr``.
    """
    sig = np.asarray(signal)
    first = sig[..., 0] if sig.ndim == 4 else sig
    m = np.asarray(mask, bool)
    rss = np.sqrt(np.sum(np.abs(sensitivities) ** 2, axis=0))
    return float(np.mean(np.abs(first[m]) * rss[m]) / float(snr))


def multichannel_signal(signal, sensitivities, noise_sigma: float = 0.0, seed=0) -> np.ndarray:
    """Channel images ``S_c * signal + noise`` (complex64).

    ``signal``: complex, 3-D (one echo) or 4-D with echoes last (as
    :class:`qsmprep.simulation.acquisition.MegreData` stacks them); ``sensitivities``:
    ``(n_channels, *shape)``. Returns ``(n_channels, *shape)`` for 3-D input and
    ``(n_echoes, n_channels, *shape)`` for 4-D input. Noise is white complex Gaussian,
    independent between channels and echoes, of standard deviation ``noise_sigma``
    in each of the real and imaginary parts.
    """
    sig = np.asarray(signal)
    sens = np.asarray(sensitivities)
    rng = np.random.default_rng(seed)
    echoes = [sig] if sig.ndim == 3 else [sig[..., j] for j in range(sig.shape[-1])]
    out = np.empty((len(echoes),) + sens.shape, np.complex64)
    for j, s in enumerate(echoes):
        s = s.astype(np.complex64, copy=False)
        for c in range(sens.shape[0]):
            np.multiply(sens[c], s, out=out[j, c])
            if noise_sigma:
                noise = rng.standard_normal((2,) + s.shape, dtype=np.float32)
                out[j, c] += np.float32(noise_sigma) * (noise[0] + 1j * noise[1])
    return out[0] if sig.ndim == 3 else out
