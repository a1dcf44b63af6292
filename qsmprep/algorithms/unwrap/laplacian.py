"""Phase unwrapping: Laplacian (spatial) and echo-difference (temporal).

Phases are radians; echo times seconds; voxel sizes mm.

The echo difference of :func:`temporal_unwrap` is unwrapped spatially by quality-guided
region growing (:func:`unwrap_echo_difference`; the ROMEO spanning tree of
:mod:`qsmprep.algorithms.unwrap.romeo`, Dymerska et al., MRM 2021), not by Laplacian unwrapping
made congruent: the Laplacian solution is smooth and spreads the phase of steep, noisy
or dephased regions (sinuses, skull base, the air around the head) over their
neighbourhood, so rounding ``(laplacian - wrapped) / 2 pi`` there puts whole islands one
turn off. On the 2 mm head phantom (72 x 84 x 72, 4 echoes 4/12/20/28 ms, 3 T) the
Laplacian route left 2,896 brain voxels of the echo difference one turn off (islands
of 2,366 and 334 voxels in the temporal lobes and cerebellum, 0.98 ppm = one 8 ms
echo-spacing step off in the field); the spanning tree leaves 142, all in voxels next
to the sinuses whose true field gradient is 4-10 rad per voxel in the echo difference
(0.6-1.5 ppm per voxel): there the intravoxel dephasing is total and the phase does not
encode the voxel-mean field at all, and :func:`qsmprep.algorithms.echoes.echofit.quality_mask`
removes them.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from ..linefit import line_fit
from ..fft import crop_to, default_workers, fast_shape, pad_to
from ..laplacian import laplacian_kernel
from ..magnitude import scaled_magnitude
from ..phase import wrap

__all__ = ["laplacian_unwrap", "make_congruent", "temporal_unwrap", "unwrap_echo_difference"]


def laplacian_unwrap(phase, voxel_size, pad=8, workers=None) -> np.ndarray:
    """Laplacian unwrapping (Schofield & Zhu, Opt. Lett. 2003).

    ``phi = L^-1 [cos(p) L sin(p) - sin(p) L cos(p)]`` with ``L`` the discrete
    Laplacian (anisotropic voxels honoured). The result is smooth and defined up
    to a constant and harmonic terms: it is *not* congruent with the input
    (see :func:`make_congruent`).
    """
    phase = np.asarray(phase, dtype=np.float32)
    workers = workers or default_workers()
    shape = fast_shape(phase.shape, pad)
    padded, sl = pad_to(phase, shape)
    lap = laplacian_kernel(shape, voxel_size)

    def apply_lap(x):
        return scipy.fft.irfftn(scipy.fft.rfftn(x, workers=workers) * lap, s=shape, workers=workers)

    c, s = np.cos(padded), np.sin(padded)
    rhs = c * apply_lap(s) - s * apply_lap(c)
    inv = np.zeros_like(lap)
    nz = lap != 0
    inv[nz] = 1.0 / lap[nz]
    out = scipy.fft.irfftn(scipy.fft.rfftn(rhs, workers=workers) * inv, s=shape, workers=workers)
    out = crop_to(out, sl).astype(np.float32)
    # The Poisson solution's constant is free (zero mean over the padded grid); choose the
    # one that agrees with the input modulo 2 pi on average, so that make_congruent rounds
    # to one consistent multiple of 2 pi instead of splitting regions near a half turn.
    out += np.float32(np.angle(np.mean(np.exp(1j * (phase - out)))))
    return out


def make_congruent(wrapped, smooth) -> np.ndarray:
    """Add the multiple of 2pi to ``wrapped`` that brings it nearest ``smooth``."""
    wrapped = np.asarray(wrapped, dtype=np.float32)
    return (wrapped + 2 * np.pi * np.round((smooth - wrapped) / (2 * np.pi))).astype(np.float32)


def unwrap_echo_difference(diff, voxel_size, magnitude=None, mask=None, method: str = "romeo",
                           workers=None) -> np.ndarray:
    """Spatially unwrap a (wrapped) echo-difference phase, radians, float32.

    ``method="romeo"`` (default): along the maximum-quality spanning tree of ``mask``
    (default: every voxel) with ROMEO's phase- and magnitude-coherence edge weights
    (:func:`qsmprep.algorithms.unwrap.romeo.edge_quality`, ``magnitude`` optional, e.g. the
    geometric mean of the two echoes' magnitudes); each connected component of the mask
    is then shifted by the whole number of turns that agrees best (median over its
    bright voxels) with the congruent Laplacian solution, which only fixes the global
    turn the tree leaves free. Outside ``mask`` the congruent Laplacian solution is
    returned. ``method="laplacian"``: the congruent Laplacian solution everywhere (the
    former behaviour; see the module doc for why it makes islands). The result is
    congruent with ``diff``.
    """
    from .spanning_tree import _component_medians, edge_quality, mst_unwrap

    d = np.asarray(diff, np.float32)
    lap = make_congruent(d, laplacian_unwrap(d, voxel_size, workers=workers))
    if method == "laplacian":
        return lap
    if method != "romeo":
        raise ValueError(f"unknown echo-difference unwrapping method {method!r}")
    mask = np.ones(d.shape, bool) if mask is None else np.asarray(mask, bool)
    if not mask.any():
        return lap
    mag = None if magnitude is None else np.asarray(magnitude, np.float32)
    u, labels = mst_unwrap(d, edge_quality(d, mask, mag), mask)
    turns = np.rint((lap - u) / np.float32(2 * np.pi)).astype(np.float32)
    if mag is not None:  # reference on bright voxels: noise-only voxels carry no phase
        dim = mag < 0.25 * np.percentile(mag[mask], 99)
        turns = np.where(dim, np.nan, turns)
    shift = np.rint(_component_medians(turns, labels, int(labels.max()) + 1))
    out = lap.copy()
    out[mask] = u[mask] + np.float32(2 * np.pi) * shift[labels[mask]].astype(np.float32)
    return out


def temporal_unwrap(phases, echo_times, voxel_size, magnitudes=None, mask=None, workers=None,
                    difference_method: str = "romeo") -> np.ndarray:
    """Unwrap multi-echo phase through echo differences.

    The difference of the first two echoes, ``angle(exp(i(p2 - p1)))``, has the
    phase offset removed and few wraps (short echo spacing); it is unwrapped
    spatially (:func:`unwrap_echo_difference`: quality-guided spanning tree inside
    ``mask``, default every voxel, weighted by the two echoes' magnitudes; or
    ``difference_method="laplacian"``) and gives a first frequency estimate
    ``w0`` and offset ``p0 = wrap(p1 - w0 TE1)``. Every echo is then unwrapped
    *temporally* as ``pred + wrap(p_n - pred)`` with ``pred = p0 + w0 TE_n``, so
    later echoes with steep phase are never unwrapped spatially. The estimate is
    refined from the unwrapped echoes once (weighted by ``magnitudes`` if given).

    ``phases``: (..., n_echoes) radians; returns the unwrapped phases, same shape.
    For one echo, falls back to congruent Laplacian unwrapping.
    """
    p = np.asarray(phases, dtype=np.float32)
    te = np.asarray(echo_times, dtype=np.float64)
    n = p.shape[-1]
    if n == 1:
        lap = laplacian_unwrap(p[..., 0], voxel_size, workers=workers)
        return make_congruent(p[..., 0], lap)[..., None]
    diff = wrap(p[..., 1] - p[..., 0])
    dmag = None
    if magnitudes is not None:
        m = np.asarray(magnitudes, np.float32)
        dmag = np.sqrt(np.abs(m[..., 0] * m[..., 1]))
    diff_uw = unwrap_echo_difference(diff, voxel_size, magnitude=dmag, mask=mask,
                                     method=difference_method, workers=workers)
    w0 = diff_uw / np.float32(te[1] - te[0])
    p0 = wrap(p[..., 0] - w0 * np.float32(te[0]))
    out = np.empty_like(p)
    for j in range(n):
        pred = p0 + w0 * np.float32(te[j])
        out[..., j] = pred + wrap(p[..., j] - pred)
    # refine the frequency with all echoes, then re-unwrap against the refined prediction
    if n > 2:
        w = None if magnitudes is None else scaled_magnitude(magnitudes) ** 2
        w1, p01, _, _ = line_fit(out, te, w)
        for j in range(n):
            pred = p01 + w1 * np.float32(te[j])
            out[..., j] = pred + wrap(p[..., j] - pred)
    return out
