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
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree

from .fft import mask_bounding_box
from .magnitude import scaled_magnitude
from .phase import wrap
from .echofit import line_fit

__all__ = ["edge_quality", "mst_unwrap", "romeo_unwrap"]

TWO_PI = 2.0 * np.pi


def _pair_slices(ax):
    lo = [slice(None)] * 3
    hi = [slice(None)] * 3
    lo[ax] = slice(0, -1)
    hi[ax] = slice(1, None)
    return tuple(lo), tuple(hi)


def edge_quality(phase, mask, magnitude=None, phase2=None, te_ratio=1.0) -> list[np.ndarray]:
    """ROMEO edge qualities in ``[0, 1]`` (1 best), one array per axis (see module doc).

    Array ``ax`` has the shape of ``phase`` shortened by one along ``ax``; element ``i``
    is the edge between voxel ``i`` and ``i + e_ax``; edges with an end outside ``mask``
    are ``-1`` (absent). ``phase2``: a second echo's phase for the gradient-coherence
    term, ``te_ratio = TE_phase / TE_phase2``.
    """
    p = np.asarray(phase, np.float32)
    mask = np.asarray(mask, bool)
    mref = None
    if magnitude is not None:
        m = np.asarray(magnitude, np.float32)
        vals = m[mask]
        mref = float(np.percentile(vals, 99.9)) if vals.size else 1.0
        half = np.float32(max(mref, 1e-30) / 2)
    out = []
    for ax in range(3):
        lo, hi = _pair_slices(ax)
        step = wrap(p[hi] - p[lo])
        q = 1.0 - np.abs(step) * np.float32(1.0 / np.pi)
        if phase2 is not None:
            p2 = np.asarray(phase2, np.float32)
            step2 = wrap(p2[hi] - p2[lo]) * np.float32(te_ratio)
            q *= np.maximum(0.0, 1.0 - np.abs(step - step2))
        if mref is not None:
            mn = np.minimum(m[lo], m[hi])
            mx = np.maximum(m[lo], m[hi])
            coh = mn / np.where(mx > 0, mx, 1)
            q *= coh * coh
            q *= 0.5 + 0.5 * np.minimum(1.0, mn / half)
            q *= 0.5 + 0.5 * np.minimum(1.0, half / np.where(mx > 0, mx, half))
        q = np.clip(q, 0.0, 1.0).astype(np.float32)
        q[~(mask[lo] & mask[hi])] = -1.0
        out.append(q)
    return out


def mst_unwrap(phase, quality, mask, coarse_fraction=0.5) -> tuple[np.ndarray, np.ndarray]:
    """Unwrap ``phase`` along the maximum-quality spanning forest of ``mask``.

    ``quality``: per-axis edge qualities from :func:`edge_quality`.
    ``coarse_fraction``: the best this fraction of edges is treated as one top quality
    bin (ROMEO itself bins its weights into 256 levels and takes the edges of a bin in
    queue order): any spanning forest of those edges is taken (one breadth-first pass),
    its components are contracted, and the exact minimum spanning tree is computed on the
    remaining, much smaller graph. This is Kruskal's algorithm with one coarse top bin;
    ``0`` gives the exact maximum-quality tree (about 3x slower on a full grid).
    Returns ``(unwrapped, labels)``: float32 phase, congruent with the input (input +
    2 pi k, ``k`` an integer, zero at each component's first voxel; the input outside
    ``mask``), and int32 component labels (``-1`` outside the mask, from 0 inside).
    """
    p = np.asarray(phase, np.float32)
    mask = np.asarray(mask, bool)
    unwrapped = p.copy()
    labels_img = np.full(p.shape, -1, np.int32)
    nvox = int(mask.sum())
    if nvox == 0:
        return unwrapped, labels_img
    u, v, q = _mask_edges(quality, mask)
    tu, tv = _spanning_forest(u, v, q, nvox, coarse_fraction)
    del u, v, q
    ncomp, labels = connected_components(
        sp.csr_matrix((np.ones(tu.size, np.int8), (tu, tv)), shape=(nvox, nvox)), directed=False)
    # one voxel per component (the first), joined to a virtual root (node nvox)
    _, seeds = np.unique(labels, return_index=True)
    root = nvox
    r = np.concatenate([tu, np.full(ncomp, root, np.int32)])
    c = np.concatenate([tv, seeds.astype(np.int32)])
    rooted = sp.csr_matrix((np.ones(r.size, np.int8), (r, c)), shape=(nvox + 1, nvox + 1))
    del r, c, tu, tv
    _, parent = breadth_first_order(rooted, root, directed=False, return_predecessors=True)
    del rooted
    parent[root] = root
    flat_mask = mask.ravel()
    pm = np.empty(nvox + 1, np.float32)
    pm[:nvox] = p.ravel()[flat_mask]
    pm[root] = 0.0
    # turns to add to each voxel so that its step from the parent lies in [-pi, pi)
    turns = np.rint((pm[parent] - pm) / np.float32(TWO_PI)).astype(np.int32)
    turns[seeds] = 0
    turns[root] = 0
    k = _integrate_tree(turns, parent, root)
    unwrapped.reshape(-1)[flat_mask] = pm[:nvox] + np.float32(TWO_PI) * k[:nvox].astype(np.float32)
    labels_img.reshape(-1)[flat_mask] = labels.astype(np.int32)
    return unwrapped, labels_img


def _mask_edges(quality, mask):
    """In-mask 6-neighbour edges as compact node ids (int32) and their qualities."""
    shape = mask.shape
    node = np.full(mask.size, -1, np.int32)
    flat_mask = mask.ravel()
    node[flat_mask] = np.arange(int(flat_mask.sum()), dtype=np.int32)
    node = node.reshape(shape)
    us, vs, qs = [], [], []
    for ax, q in enumerate(quality):
        lo, hi = _pair_slices(ax)
        valid = q >= 0
        us.append(node[lo][valid])
        vs.append(node[hi][valid])
        qs.append(q[valid])
    return np.concatenate(us), np.concatenate(vs), np.concatenate(qs)


def _spanning_forest(u, v, q, nvox, coarse_fraction):
    """Edges ``(tu, tv)`` of a maximum-quality spanning forest (see :func:`mst_unwrap`)."""
    tree_u, tree_v = [], []
    lab = None
    if coarse_fraction > 0 and u.size:
        thr = np.quantile(q, 1.0 - coarse_fraction)
        good = q >= thr
        g = sp.csr_matrix((np.ones(int(good.sum()), np.int8), (u[good], v[good])), shape=(nvox, nvox))
        ncomp1, lab = connected_components(g, directed=False)
        _, seeds = np.unique(lab, return_index=True)
        root = nvox
        g = sp.vstack([sp.hstack([g, sp.csr_matrix((nvox, 1), dtype=np.int8)]),
                       sp.csr_matrix((np.ones(ncomp1, np.int8), (np.zeros(ncomp1, np.int32), seeds)),
                                     shape=(1, nvox + 1))], format="csr")
        _, pred = breadth_first_order(g, root, directed=False, return_predecessors=True)
        del g
        child = np.flatnonzero((pred >= 0) & (pred != root))
        tree_u.append(pred[child].astype(np.int32))
        tree_v.append(child.astype(np.int32))
        # contract: edges between different coarse components only
        bad = ~good
        cu, cv = lab[u[bad]], lab[v[bad]]
        keep = cu != cv
        eu, ev, eq = u[bad][keep], v[bad][keep], q[bad][keep]
        cu, cv = cu[keep], cv[keep]
        n = ncomp1
    else:
        eu, ev, eq, cu, cv, n = u, v, q, u, v, nvox
    if eu.size:
        idx = _kruskal(cu, cv, eq, n)
        tree_u.append(eu[idx].astype(np.int32))
        tree_v.append(ev[idx].astype(np.int32))
    if not tree_u:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    return np.concatenate(tree_u), np.concatenate(tree_v)


def _kruskal(cu, cv, q, n) -> np.ndarray:
    """Indices of the edges ``(cu, cv)`` (nodes ``0..n-1``, qualities ``q``) forming a
    maximum-quality spanning forest, by ``scipy.sparse.csgraph.minimum_spanning_tree``.

    The cost is the quality quantised to 16 bits (1 best .. 65536 worst) times ``2^26``
    plus the edge index, exact in float64: ties are broken by index, parallel edges
    between the same nodes stay distinct (the CSR matrix is built without summing
    duplicates), and each tree entry's cost names the edge it came from.
    """
    e = cu.size
    if e >= 2**26:
        raise ValueError("too many edges for the cost encoding (2^26)")
    qi = np.rint((1.0 - np.clip(q, 0.0, 1.0)) * 65535.0).astype(np.int64) + 1
    cost = (qi * 2**26 + np.arange(e, dtype=np.int64)).astype(np.float64)
    order = np.argsort(cu, kind="stable")
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(cu, minlength=n), out=indptr[1:])
    graph = sp.csr_matrix((cost[order], cv[order].astype(np.int32), indptr), shape=(n, n))
    tree = minimum_spanning_tree(graph)
    return (tree.data.astype(np.int64) % 2**26)


def _integrate_tree(d, parent, root) -> np.ndarray:
    """Sum of ``d`` from each node up to the root (``parent[root] == root``), by pointer jumping."""
    acc = d.copy()
    ptr = parent.astype(np.int32 if parent.size < 2**31 else np.int64)
    while True:
        done = ptr == root
        if done.all():
            return acc
        acc += acc[ptr]
        ptr = ptr[ptr]


def _component_medians(values, labels, ncomp) -> np.ndarray:
    """Median of ``values`` per label 0..ncomp-1 (labels >= 0 only); NaN values are left out
    unless a component has nothing else."""
    finite = np.isfinite(values)
    if not finite.all():
        med = _component_medians(np.where(finite, values, 0.0), np.where(finite, labels, -1), ncomp)
        has = np.bincount(labels[finite & (labels >= 0)], minlength=ncomp) > 0
        if has.all():
            return med
        # components with only NaN: fall back to 0 (no shift)
        return np.where(has, med, 0.0)
    sel = labels >= 0
    lab = labels[sel]
    val = values[sel]
    if ncomp == 1:
        return np.array([np.median(val)])
    order = np.lexsort((val, lab))
    lab, val = lab[order], val[order]
    starts = np.searchsorted(lab, np.arange(ncomp))
    ends = np.searchsorted(lab, np.arange(ncomp), side="right")
    lo = val[(starts + ends - 1) // 2]
    hi = val[(starts + ends) // 2]
    return 0.5 * (lo + hi)


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
