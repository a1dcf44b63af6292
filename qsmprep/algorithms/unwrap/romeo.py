"""Quality-guided region-growing phase unwrapping, ROMEO-like (numpy + scipy only).

Dymerska B, Eckstein K, Bachrata B, et al. *Phase unwrapping with a rapid opensource
minimum spanning tree algorithm (ROMEO).* Magn Reson Med 2021;85:2294-2308.

Every pair of 6-neighbours inside the mask is an edge with a quality in ``[0, 1]``
(:func:`edge_quality`), the product of

* phase coherence ``1 - |wrap(p_i - p_j)| / pi``;
* phase-gradient coherence across echoes (multi-echo):
  ``max(0, 1 - |wrap(p_i - p_j) - wrap(q_i - q_j) TE_p / TE_q|)`` with ``q`` a second
  echo: the step must agree with the other echo's step scaled to this echo time;
* magnitude coherence ``(min(m_i, m_j) / max(m_i, m_j))^2``;
* magnitude level ``(0.5 + 0.5 min(1, min_m / (m_ref / 2))) (0.5 + 0.5 min(1, (m_ref / 2) / max_m))``
  (dark voxels and very bright, flow-affected voxels are trusted less), with ``m_ref`` the
  99.9th percentile of the magnitude inside the mask (ROMEO uses the maximum; the
  percentile is robust to a single hot voxel).

Region growing that always unwraps across the best remaining edge next is Prim's
algorithm: the voxels are joined along the *maximum-quality spanning tree*. So instead of
a priority queue the tree is computed directly (``scipy.sparse.csgraph.minimum_spanning_tree``
on the costs ``1 + 1e-3 - quality``, so every in-mask edge exists), rooted by one
breadth-first pass (a virtual root joined to one voxel of each connected component), and
the wrapped differences are integrated along it. The integration counts whole turns
(int32, exact) and is vectorised by pointer jumping: ``ceil(log2(depth))`` passes of
``acc += acc[ptr]; ptr = ptr[ptr]``. The result is congruent with the input by
construction (input + 2 pi k). Voxel size does not enter the weights: what decides
whether an edge aliases is the phase step across it, which the weights measure directly
(anisotropic voxels simply show larger steps along the coarse axis).

Components: each connected component of the mask is unwrapped on its own and then given
a whole-turn offset -- multi-echo: the one that puts the component's median phase at
TE = 0 (``u - wrap(p_ref - p) TE / (TE_ref - TE)``, offset-free echo difference) within
``[-pi, pi)``, the same physical reference for every component; single echo: the one
that brings its median nearest the largest component's median, whose own median is put
in ``[-pi, pi)``.
"""

from __future__ import annotations

import numpy as np

from ..fft import mask_bounding_box
from ..magnitude import scaled_magnitude
from ..phase import wrap
from ..linefit import line_fit
from .spanning_tree import TWO_PI, _component_medians, edge_quality, mst_unwrap

__all__ = ["edge_quality", "mst_unwrap", "romeo_unwrap"]

def romeo_unwrap(phases, echo_times=None, magnitudes=None, mask=None, template=1,
                 reference=0, phase_offset=None, individual=False, refine=True,
                 coarse_fraction=0.5) -> np.ndarray:
    """ROMEO-like unwrapping of single- or multi-echo phase (radians, echoes last).

    Parameters
    ----------
    phases : (x, y, z) or (x, y, z, n_echoes) wrapped phase, radians.
    echo_times : n_echoes echo times (s); needed for more than one echo.
    magnitudes : same shape as ``phases`` (optional, improves the weights).
    mask : voxels to unwrap (default all). Outside it the input is returned unchanged.
    template : index of the echo unwrapped spatially (ROMEO's template mode; the second
        echo by default, as ROMEO, which keeps the TE ratios to its neighbours small).
    reference : index of the echo used for the phase-gradient coherence weight and the
        TE = 0 referencing (must differ from ``template``).
    phase_offset : optional phase at TE = 0 (radians, e.g. from MCPC-3D-S), removed before
        the temporal step and added back: template mode scales phase by TE ratios, so a
        large offset ``p0`` errs by ``p0 (TE_n / TE_m - 1)`` in the prediction.
    individual : unwrap every echo spatially (no temporal step), each with its own weights.
    coarse_fraction : see :func:`mst_unwrap` (0: exact maximum-quality tree).
    refine : after template unwrapping, re-unwrap every echo against the magnitude^2-weighted
        line fit ``p0 + omega TE`` of all the unwrapped echoes (repairs single-echo slips).

    Temporal step (ROMEO): echoes are unwrapped outwards from the template, each from its
    already-unwrapped neighbour ``m`` as ``p_n + 2 pi round((u_m TE_n / TE_m - p_n) / 2 pi)``.
    Returns float32 unwrapped phase of the input's shape, congruent with it.
    """
    p_in = np.nan_to_num(np.asarray(phases, np.float32))
    single = p_in.ndim == 3
    if single:
        p_in = p_in[..., None]
    n = p_in.shape[-1]
    mask = np.ones(p_in.shape[:3], bool) if mask is None else np.asarray(mask, bool)
    if mask.shape != p_in.shape[:3]:
        raise ValueError(f"mask shape {mask.shape} differs from phase shape {p_in.shape[:3]}")
    if magnitudes is not None:
        mag_in = np.nan_to_num(np.asarray(magnitudes, np.float32))
        if single:
            mag_in = mag_in[..., None]
        if mag_in.shape != p_in.shape:
            raise ValueError(f"magnitude shape {mag_in.shape} differs from phase shape {p_in.shape}")
    te = None
    if n > 1:
        if echo_times is None or len(echo_times) != n:
            raise ValueError("romeo_unwrap needs one echo time per echo")
        te = np.asarray(echo_times, np.float64)
        if not (0 <= template < n and 0 <= reference < n and template != reference):
            raise ValueError(f"template ({template}) and reference ({reference}) must be "
                             f"different echo indices below {n}")
    result = p_in.copy()
    if not mask.any():
        return result[..., 0] if single else result
    # work on the mask's bounding box only
    box = mask_bounding_box(mask, (0, 0, 0))
    mask = mask[box]
    p = p_in[box]
    mag = None if magnitudes is None else mag_in[box]
    offset = None
    if phase_offset is not None:
        offset = np.asarray(phase_offset, np.float32)[box][..., None]
        p = wrap(p - offset)

    out = np.empty_like(p)
    if n == 1 or individual:
        for j in range(n):
            m = None if mag is None else mag[..., j]
            q = edge_quality(p[..., j], mask, m)
            u, labels = mst_unwrap(p[..., j], q, mask, coarse_fraction)
            out[..., j] = _reference_components(u, labels, mask, None)
        inside = out[mask]
        if n > 1:
            # echoes unwrapped independently: align each echo's global turn to its neighbour
            inside = _align_echoes(inside, te)
    else:
        t, r = template, reference
        m = None if mag is None else mag[..., t]
        q = edge_quality(p[..., t], mask, m, phase2=p[..., r], te_ratio=te[t] / te[r])
        u, labels = mst_unwrap(p[..., t], q, mask, coarse_fraction)
        del q
        pm = p[mask]  # (voxels, echoes)
        # offset-free estimate of the phase at TE = 0 from the echo difference
        diff = wrap(pm[:, r] - pm[:, t])
        at_te0 = np.zeros_like(u)
        at_te0[mask] = u[mask] - diff * np.float32(te[t] / (te[r] - te[t]))
        if m is not None:  # reference on bright voxels (noise-only voxels have no offset)
            dim = m < 0.25 * np.percentile(m[mask], 99)
            at_te0 = np.where(dim, np.nan, at_te0)
        u = _reference_components(u, labels, mask, at_te0)
        inside = np.empty_like(pm)
        inside[:, t] = u[mask]
        for j in list(range(t + 1, n)) + list(range(t - 1, -1, -1)):
            src = j - 1 if j > t else j + 1
            pred = inside[:, src] * np.float32(te[j] / te[src])
            inside[:, j] = _congruent(pm[:, j], pred)
        if refine and n > 2:
            inside = _refit(inside, pm, te, None if mag is None else mag[mask])
    if offset is not None:
        inside = inside + offset[mask]
    sub = result[box]
    sub[mask] = inside
    result[box] = sub
    return result[..., 0] if single else result


def _congruent(wrapped, pred):
    return (wrapped + np.float32(TWO_PI) * np.rint((pred - wrapped) / np.float32(TWO_PI))).astype(np.float32)


def _refit(unwrapped, wrapped, te, mag):
    w = None if mag is None else scaled_magnitude(mag) ** 2
    slope, icpt, _, _ = line_fit(unwrapped, te, w)
    pred = icpt[..., None] + slope[..., None] * te.astype(np.float32)
    return _congruent(wrapped, pred)


def _align_echoes(out, te):
    """Shift each echo (individual mode) by whole turns to agree with its scaled predecessor."""
    for j in range(1, out.shape[-1]):
        pred = out[:, j - 1] * np.float32(te[j] / te[j - 1])
        k = np.rint(np.median(pred - out[:, j]) / TWO_PI)
        out[:, j] += np.float32(TWO_PI * k)
    return out


def _reference_components(u, labels, mask, at_te0):
    """Whole-turn offset per component (see module doc)."""
    ncomp = int(labels.max()) + 1
    if ncomp <= 0:
        return u
    if at_te0 is not None:
        med = _component_medians(at_te0, labels, ncomp)
        shift = np.rint(med / TWO_PI)
    else:
        med = _component_medians(u, labels, ncomp)
        sizes = np.bincount(labels[labels >= 0], minlength=ncomp)
        big = int(np.argmax(sizes))
        shift = np.rint((med - med[big]) / TWO_PI) + np.rint(med[big] / TWO_PI)
    lut = (np.float32(TWO_PI) * shift).astype(np.float32)
    out = u.copy()
    sel = labels >= 0
    out[sel] -= lut[labels[sel]]
    return out
