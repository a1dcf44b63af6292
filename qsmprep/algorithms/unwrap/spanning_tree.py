"""Quality-guided phase unwrapping along a spanning tree (the machinery of ROMEO).

:func:`edge_quality` weighs every face edge of the voxel grid (phase coherence, magnitude,
and agreement with a second echo's gradient, as in ROMEO, Dymerska et al., MRM 2021);
:func:`mst_unwrap` integrates the wrapped phase differences along the maximum spanning
tree of those qualities (Kruskal on the best edges first, then the rest), so unreliable
edges are crossed last. Used by :func:`qsmprep.algorithms.unwrap.romeo.romeo_unwrap` and the
temporal unwrapping of the echo difference (:mod:`qsmprep.algorithms.unwrap.laplacian`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree

from ..phase import wrap

__all__ = ["edge_quality", "mst_unwrap"]

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
