"""Coil combination of uncombined multi-channel gradient-echo data.

Channel images of one echo are complex arrays ``(n_channels, *shape)``; a run is a
sequence of them, one per echo (only one or two echoes are held at a time, so a
lazy sequence that loads echoes from disk keeps memory low).

Methods (``method=``):

``bodycoil``
    Body-coil-normalised sensitivities and least-squares combination (Bilgic et al.,
    "Fast image reconstruction with L2-regularization", JMRI 2014, and the coil
    sensitivity estimation of Bilgic et al. MRM 2016 / Roemer et al. MRM 1990):
    each channel image of the first echo is normalised by the body-coil image
    (``N_c = I_c conj(B) / |B|^2``, in blocks of about ``sigma_mm / 2``); a
    polynomial of order ``poly_order`` in the three array coordinates (mm) fitted to
    ``|N_c|`` (weights ``sum |B|^2`` per block, over blocks with signal) gives the
    sensitivity magnitude; the phase of ``N_c``, smoothed with a Gaussian of
    ``sigma_mm`` (magnitude-weighted), gives the sensitivity phase. Every echo is then
    combined as ``rho = sum_c conj(S_c) I_c / sum_c |S_c|^2``. The result is the
    object signal times the body-coil sensitivity (near-uniform magnitude, slow phase).
``mcpc3ds``
    Without a body coil, >= 2 echoes: per-channel phase offsets by MCPC-3D-S
    (:func:`qsmprep.algorithms.echoes.phase_offset.mcpc3ds_offsets`) are removed and the
    channels are magnitude-weighted: ``rho = sum_c |I_c| I_c exp(-i theta_c) /
    sqrt(sum_c |I_c|^2)`` (Eckstein et al. MRM 2018). The phase is ``omega TE`` (the
    offset at TE = 0 is removed); the magnitude is the root-sum-of-squares, i.e. the
    object weighted by ``||S||`` (no absolute sensitivity reference exists).
``adaptive``
    Single echo, no body coil: adaptive combination (Walsh, Gmitro & Marcellin, MRM
    2000): the weights are the dominant eigenvector of the locally averaged signal
    correlation matrix (white, uncorrelated channel noise assumed), computed on blocks
    of about ``adaptive_block_mm`` by power iteration and interpolated; their phase is
    referenced to the strongest channel, whose smooth sensitivity phase therefore
    remains in the combined phase (an offset that a single echo cannot separate from
    the field; background-field removal suppresses it). Magnitude: object times
    ``||S||``.
``auto``
    body coil given -> ``bodycoil``; else >= 2 echoes -> ``mcpc3ds``; else ``adaptive``.

``sigma_mm`` (mm) is the Gaussian smoothing width for sensitivity phases / phase
offsets (not a regularisation weight; larger is smoother).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..echoes.phase_offset import DEFAULT_SIGMA_MM, mcpc3ds_offsets
from ..smooth_fields import block_factors, block_sum, gaussian_normalised, upsample_linear

__all__ = ["METHODS", "CoilCombination", "select_method", "combine_coils",
           "bodycoil_sensitivities", "least_squares_combination",
           "offset_corrected_combination", "adaptive_weights", "polynomial_terms"]

METHODS = ("auto", "bodycoil", "mcpc3ds", "adaptive")


@dataclass(frozen=True)
class CoilCombination:
    combined: list            # per echo, complex64 3-D
    method: str               # the method actually used
    parameters: dict = field(default_factory=dict)


def select_method(method: str, n_echoes: int, has_body: bool) -> str:
    """Resolve ``auto`` and check that the requested method can run on the data."""
    if method not in METHODS:
        raise ValueError(f"coil combination method {method!r} not in {METHODS}")
    if method == "auto":
        return "bodycoil" if has_body else ("mcpc3ds" if n_echoes >= 2 else "adaptive")
    if method == "bodycoil" and not has_body:
        raise ValueError("the bodycoil method needs body-coil images")
    if method == "mcpc3ds" and n_echoes < 2:
        raise ValueError("MCPC-3D-S needs at least two echoes")
    return method


# ------------------------------------------------------------------ body coil
def polynomial_terms(order: int):
    """Exponent triples ``(i, j, k)`` with ``i + j + k <= order``."""
    return [(i, j, k) for i in range(order + 1) for j in range(order + 1 - i)
            for k in range(order + 1 - i - j)]


def _block_coords(shape, voxel_size, factors):
    """Normalised block-centre coordinates (about [-1, 1]) per axis."""
    out = []
    for n, h, f in zip(shape, voxel_size, factors):
        c = -(-n // f)
        mm = (np.arange(c) * f + (f - 1) / 2.0 - (n - 1) / 2.0) * h
        out.append(mm / max((n - 1) / 2.0 * h, 1e-6))
    return out


def bodycoil_sensitivities(channels, body, voxel_size, *, poly_order: int = 2,
                           sigma_mm: float = DEFAULT_SIGMA_MM, support_fraction: float = 0.15):
    """Sensitivities ``(C, *shape)`` complex64 relative to the body coil (see module doc).

    ``channels``: complex ``(C, *shape)``; ``body``: complex 3-D, the body-coil image of
    the same echo. Blocks whose mean body-coil magnitude is below ``support_fraction``
    of its 99th percentile are not used in the fits.
    """
    ch = np.asarray(channels)
    b = np.asarray(body).astype(np.complex64, copy=False)
    shape = b.shape
    if ch.shape[1:] != shape:
        raise ValueError(f"channel grid {ch.shape[1:]} differs from body-coil grid {shape}")
    factors = block_factors(voxel_size, sigma_mm / 2.0)
    den = block_sum(np.abs(b) ** 2, factors)
    bmean = block_sum(np.abs(b), factors) / block_sum(np.ones(shape, np.float32), factors)
    support = bmean > support_fraction * np.percentile(bmean, 99)
    if support.sum() < len(polynomial_terms(poly_order)) * 4:
        raise ValueError("too little body-coil signal to fit coil sensitivities")
    axes = _block_coords(shape, voxel_size, factors)
    grid = np.meshgrid(*axes, indexing="ij")
    terms = polynomial_terms(poly_order)
    design = np.stack([grid[0] ** i * grid[1] ** j * grid[2] ** k for i, j, k in terms], -1)
    a = design[support]
    sw = np.sqrt(den[support])
    nums = np.stack([block_sum(ch[c] * np.conj(b), factors) for c in range(ch.shape[0])])
    ratio_mag = np.abs(nums[:, support]) / den[support]
    coef, *_ = np.linalg.lstsq(a * sw[:, None], (ratio_mag * sw).T, rcond=None)
    mags = np.einsum("...t,tc->c...", design, coef)
    floor = 1e-3 * np.abs(mags[:, support]).max()
    mags = np.maximum(mags, floor)
    sigma_vox = [sigma_mm / (h * f) for h, f in zip(voxel_size, factors)]
    weights = support.astype(np.float64) * den
    phases = gaussian_normalised(np.where(support, nums / np.maximum(den, 1e-30), 0) * weights,
                                 weights, sigma_vox)
    coarse = (mags * np.exp(1j * np.angle(phases))).astype(np.complex64)
    out = np.empty(ch.shape, np.complex64)
    for c in range(ch.shape[0]):
        out[c] = upsample_linear(coarse[c], factors, shape)
    return out


def least_squares_combination(channels, sensitivities, sum_sq=None) -> np.ndarray:
    """``sum_c conj(S_c) I_c / sum_c |S_c|^2`` (complex64); ``sum_sq`` may be precomputed."""
    ch = np.asarray(channels)
    num = np.zeros(ch.shape[1:], np.complex64)
    need = sum_sq is None
    if need:
        sum_sq = np.zeros(ch.shape[1:], np.float32)
    for c in range(ch.shape[0]):
        s = sensitivities[c]
        num += np.conj(s) * ch[c]
        if need:
            sum_sq += s.real * s.real + s.imag * s.imag
    return num / np.maximum(sum_sq, np.float32(1e-12))


def _sum_sq(sensitivities):
    out = np.zeros(sensitivities.shape[1:], np.float32)
    for s in sensitivities:
        out += s.real * s.real + s.imag * s.imag
    return out


# ---------------------------------------------------------------- MCPC-3D-S
def offset_corrected_combination(channels, offsets) -> np.ndarray:
    """``sum_c |I_c| I_c conj(o_c) / sqrt(sum_c |I_c|^2)`` with unit offsets ``o_c`` (complex64)."""
    ch = np.asarray(channels)
    num = np.zeros(ch.shape[1:], np.complex64)
    den = np.zeros(ch.shape[1:], np.float32)
    for c in range(ch.shape[0]):
        mag = np.abs(ch[c])
        num += (mag * ch[c]) * np.conj(offsets[c])
        den += mag * mag
    return num / np.sqrt(np.maximum(den, np.float32(1e-30)))


# ----------------------------------------------------------------- adaptive
def adaptive_weights(channels, voxel_size, *, block_mm: float = 8.0, sigma_mm: float = 10.0,
                     n_iter: int = 6) -> np.ndarray:
    """Walsh adaptive-combination weights ``(C, *shape)`` complex64, unit norm per block.

    Block sums ``m_b = sum_{v in b} I(v)`` (proportional to the local sensitivity
    vector where it is smooth) give the correlation matrices ``R_b = m_b m_b^H``,
    Gaussian-averaged over neighbouring blocks (``sigma_mm``); the dominant eigenvector
    of each ``R_b`` is found by power iteration from ``m_b`` and its phase referenced
    to the channel with the most signal.
    """
    ch = np.asarray(channels)
    n_ch, shape = ch.shape[0], ch.shape[1:]
    factors = block_factors(voxel_size, block_mm)
    m = np.stack([block_sum(ch[c], factors) for c in range(n_ch)], -1).astype(np.complex64)
    cshape = m.shape[:-1]
    sigma_vox = [sigma_mm / (h * f) for h, f in zip(voxel_size, factors)]
    corr = m[..., :, None] * np.conj(m[..., None, :])          # (..., C, C)
    flat = np.moveaxis(corr.reshape(cshape + (n_ch * n_ch,)), -1, 0)
    ones = np.ones(cshape)
    smooth = gaussian_normalised(flat, ones, sigma_vox)
    corr = np.moveaxis(smooth, 0, -1).reshape(cshape + (n_ch, n_ch)).astype(np.complex64)
    v = m / np.maximum(np.linalg.norm(m, axis=-1, keepdims=True), 1e-30)
    for _ in range(int(n_iter)):
        v = np.einsum("...ij,...j->...i", corr, v)
        v /= np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-30)
    ref = int(np.argmax(np.sum(np.abs(m) ** 2, axis=tuple(range(len(cshape))))))
    vr = v[..., ref]
    v *= (np.conj(vr) / np.maximum(np.abs(vr), 1e-30))[..., None]
    coarse = np.moveaxis(v, -1, 0)
    out = np.empty(ch.shape, np.complex64)
    for c in range(n_ch):
        out[c] = upsample_linear(coarse[c], factors, shape)
    return out


# ---------------------------------------------------------------- dispatch
def combine_coils(echoes, echo_times, voxel_size, *, body=None, method: str = "auto",
                  poly_order: int = 2, sigma_mm: float = DEFAULT_SIGMA_MM,
                  workers=None) -> CoilCombination:
    """Combine every echo of a run (see module doc for the methods).

    ``echoes``: sequence (``len`` and indexing) of complex ``(C, *shape)`` arrays, one per
    echo; ``echo_times`` in s; ``body``: None, or a sequence of complex 3-D body-coil
    images (one per echo, or just one: the first echo's is used). Returns the combined
    complex64 images and ``parameters`` for the sidecars.
    """
    n = len(echoes)
    te = [float(t) for t in echo_times]
    if len(te) != n:
        raise ValueError(f"{len(te)} echo times for {n} echoes")
    has_body = body is not None and len(body) > 0
    used = select_method(method, n, has_body)
    first = echoes[0]
    n_ch = int(np.asarray(first).shape[0])
    params = {"CoilCombination": used, "CoilCombinationRequested": method,
              "NumberOfChannels": n_ch}
    out = []
    if used == "bodycoil":
        sens = bodycoil_sensitivities(first, body[0], voxel_size, poly_order=poly_order,
                                      sigma_mm=sigma_mm)
        ssq = _sum_sq(sens)
        out.append(least_squares_combination(first, sens, ssq))
        del first
        for j in range(1, n):
            out.append(least_squares_combination(echoes[j], sens, ssq))
        params.update({"CoilSensitivityReference": "body coil",
                       "SensitivityMagnitudeModel": f"polynomial of order {poly_order}",
                       "SensitivityPhaseSmoothingSigmaMM": sigma_mm,
                       "Combination": "least squares: sum conj(S) I / sum |S|^2"})
    elif used == "mcpc3ds":
        second = echoes[1]
        offsets = mcpc3ds_offsets(first, second, te[0], te[1], voxel_size, sigma_mm, workers)
        out.append(offset_corrected_combination(first, offsets))
        out.append(offset_corrected_combination(second, offsets))
        del first, second
        for j in range(2, n):
            out.append(offset_corrected_combination(echoes[j], offsets))
        params.update({"PhaseOffsetMethod": "MCPC-3D-S (Eckstein et al. 2018)",
                       "PhaseOffsetSmoothingSigmaMM": sigma_mm,
                       "EchoDifferenceUnwrapping": "laplacian",
                       "Combination": "magnitude-weighted, phase offsets removed; "
                                      "magnitude is root-sum-of-squares"})
    else:
        w = adaptive_weights(first, voxel_size)
        ssq = _sum_sq(w)
        out.append(least_squares_combination(first, w, ssq))
        del first
        for j in range(1, n):
            out.append(least_squares_combination(echoes[j], w, ssq))
        params.update({"Combination": "adaptive (Walsh et al. 2000), phase referenced to the "
                                      "strongest channel"})
    return CoilCombination(out, used, params)
