"""Phase-offset estimation and removal, MCPC-3D-S style (multi- and single-echo).

The phase of echo ``n`` of a (channel or combined) image is
``phi_n = theta + omega TE_n`` with ``theta`` the phase offset at TE = 0 (receive-coil
and receiver phase, spatially smooth) and ``omega`` the off-resonance (rad/s).

MCPC-3D-S (Eckstein et al., MRM 2018;79:2996-3006, "Computationally efficient
combination of multi-channel phase data from multi-echo acquisitions (ASPIRE)";
Eckstein/Dymerska/Robinson et al., "MCPC-3D-S"):

1. the Hermitian echo difference ``H = sum_c I_c2 conj(I_c1)`` (offsets cancel,
   ``angle(H) = omega (TE2 - TE1)``) is unwrapped spatially
   (:func:`qsmprep.algorithms.unwrap.laplacian.laplacian_unwrap`, made congruent);
2. per channel ``theta_c = angle(I_c1) - TE1 / (TE2 - TE1) * unwrapped(angle(H))``;
3. ``exp(i theta_c)`` is smoothed so that noise and residual unwrapping errors are
   suppressed: a Gaussian-weighted local linear fit (first-order normalised
   convolution, :func:`qsmprep.algorithms.smooth_fields.gaussian_local_linear`) of
   ``|I_c1| exp(i theta_c)`` with the summed channel magnitudes as confidence, which,
   unlike plain Gaussian smoothing, is not biased by phase ramps at the object's edge;
   the smoothed offset is what is removed.

For already-combined data the same estimator runs with one "channel"
(:func:`estimate_phase_offset`). With a single echo the offset and ``omega TE`` are
not separable: the best that can be done is to take the offset as a strongly smoothed
version of the phase itself (homodyne-like high-pass, ``single_echo_sigma_mm``). It
removes the offset together with the slowly varying part of the field (mostly
background field, which background removal discards anyway) and attenuates local
field structure wider than ~``single_echo_sigma_mm``; this is reported in
``parameters`` by callers.

Smoothing parameter: ``sigma_mm`` is the standard deviation (mm) of the Gaussian
applied to ``exp(i theta)`` weighted by magnitude (it multiplies nothing; larger is
smoother). Default 7 mm (about 4 voxels of 1.8 mm, of the order the MCPC-3D-S paper
uses in voxels).
"""

from __future__ import annotations

import numpy as np

from ..phase import wrap
from ..smooth_fields import (block_factors, block_sum, gaussian_local_linear, gaussian_normalised,
                            upsample_linear)
from ..unwrap.laplacian import laplacian_unwrap, make_congruent

__all__ = ["hermitian_difference", "unwrapped_echo_difference", "mcpc3ds_offsets",
           "estimate_phase_offset", "remove_phase_offset", "DEFAULT_SIGMA_MM",
           "DEFAULT_SINGLE_ECHO_SIGMA_MM"]

DEFAULT_SIGMA_MM = 7.0
DEFAULT_SINGLE_ECHO_SIGMA_MM = 15.0


def _channels(x) -> np.ndarray:
    x = np.asarray(x)
    return x[None] if x.ndim == 3 else x


def hermitian_difference(echo1, echo2) -> np.ndarray:
    """``sum_c echo2_c conj(echo1_c)`` (complex64, 3-D); inputs ``(C, *shape)`` or 3-D."""
    e1, e2 = _channels(echo1), _channels(echo2)
    out = np.zeros(e1.shape[1:], np.complex64)
    for c in range(e1.shape[0]):
        out += e2[c] * np.conj(e1[c])
    return out


def unwrapped_echo_difference(echo1, echo2, voxel_size, workers=None) -> np.ndarray:
    """Unwrapped ``angle(hermitian_difference)`` (radians, float32), Laplacian + congruent."""
    dphi = np.angle(hermitian_difference(echo1, echo2)).astype(np.float32)
    return make_congruent(dphi, laplacian_unwrap(dphi, voxel_size, workers=workers))


def mcpc3ds_offsets(echo1, echo2, te1, te2, voxel_size, sigma_mm: float = DEFAULT_SIGMA_MM,
                    workers=None) -> np.ndarray:
    """Smoothed per-channel phase offsets as unit complex64 ``exp(i theta_c)``.

    ``echo1``/``echo2``: complex ``(C, *shape)`` (or 3-D for one channel) at echo times
    ``te1 < te2`` (s). Returns the same shape as ``echo1``. See the module doc.
    """
    e1 = _channels(echo1)
    te1, te2 = float(te1), float(te2)
    if not te2 > te1:
        raise ValueError(f"echo times must increase (te1={te1}, te2={te2})")
    shape = e1.shape[1:]
    dphi = unwrapped_echo_difference(e1, _channels(echo2), voxel_size, workers)
    rot = np.exp(-1j * (te1 / (te2 - te1)) * dphi).astype(np.complex64)
    del dphi
    factors = block_factors(voxel_size, sigma_mm / 2.0)
    sigma_vox = [sigma_mm / (h * f) for h, f in zip(voxel_size, factors)]
    weight = np.zeros(shape, np.float32)
    for c in range(e1.shape[0]):
        weight += np.abs(e1[c])
    coarse_w = block_sum(weight, factors)
    del weight
    # each channel's exp(i theta_c), weighted by its own magnitude (block sums of e1_c rot),
    # fitted locally linearly with the shared weights (no bias at the object's edge)
    coarse_wz = np.stack([block_sum(e1[c] * rot, factors) for c in range(e1.shape[0])])
    coarse = gaussian_local_linear(coarse_wz, coarse_w, sigma_vox).astype(np.complex64)
    out = np.empty(e1.shape, np.complex64)
    for c, z in enumerate(coarse):
        z = z / np.maximum(np.abs(z), 1e-30)
        full = upsample_linear(z, factors, shape)
        mag = np.abs(full)
        out[c] = np.where(mag > 1e-6, full / np.maximum(mag, 1e-30), 1)
    return out if np.asarray(echo1).ndim == 4 else out[0]


def estimate_phase_offset(phase, echo_times, voxel_size, magnitude=None,
                          sigma_mm: float = DEFAULT_SIGMA_MM,
                          single_echo_sigma_mm: float = DEFAULT_SINGLE_ECHO_SIGMA_MM,
                          workers=None) -> np.ndarray:
    """Phase offset (radians, float32, 3-D) of combined data.

    ``phase``/``magnitude``: 3-D (one echo) or 4-D with echoes last; ``echo_times`` in s.
    Two or more echoes: MCPC-3D-S from the first two echoes. One echo: the
    magnitude-weighted smoothed phase with ``single_echo_sigma_mm`` (see module doc).
    """
    p = np.asarray(phase, np.float32)
    if p.ndim == 3:
        p = p[..., None]
    m = np.ones_like(p) if magnitude is None else np.asarray(magnitude, np.float32).reshape(p.shape)
    te = [float(t) for t in np.atleast_1d(echo_times)]
    if len(te) != p.shape[-1]:
        raise ValueError(f"{len(te)} echo times for {p.shape[-1]} echoes")
    e1 = (m[..., 0] * np.exp(1j * p[..., 0])).astype(np.complex64)
    if len(te) == 1:
        factors = block_factors(voxel_size, single_echo_sigma_mm / 2.0)
        sigma_vox = [single_echo_sigma_mm / (h * f) for h, f in zip(voxel_size, factors)]
        z = gaussian_normalised(block_sum(e1, factors), block_sum(m[..., 0], factors), sigma_vox)
        z = (z / np.maximum(np.abs(z), 1e-30)).astype(np.complex64)
        return np.angle(upsample_linear(z, factors, p.shape[:3])).astype(np.float32)
    e2 = (m[..., 1] * np.exp(1j * p[..., 1])).astype(np.complex64)
    off = mcpc3ds_offsets(e1, e2, te[0], te[1], voxel_size, sigma_mm, workers)
    return np.angle(off).astype(np.float32)


def remove_phase_offset(phase, offset) -> np.ndarray:
    """``wrap(phase - offset)`` for 3-D phase or 4-D phase with echoes last (float32)."""
    p = np.asarray(phase, np.float32)
    off = np.asarray(offset, np.float32)
    if p.ndim == off.ndim + 1:
        off = off[..., None]
    return wrap(p - off)
