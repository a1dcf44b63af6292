"""Laplacian boundary value (LBV) background field removal (Zhou et al., NMR Biomed
2014;27:312-319).

Inside the brain the background field is harmonic (its sources lie outside), so it solves
Laplace's equation with the measured field as its value on the mask's boundary:
``lap(b) = 0`` in the interior, ``b = f`` on the boundary layer. The local field is
``f - b`` in the interior. The 7-point Laplacian uses the voxel sizes of each axis
(anisotropic voxels), and the sparse system is solved by conjugate gradients on the
mask's bounding box. The boundary layer, and ``peel`` more layers where the field next to
the skull is least trustworthy, are outside the returned mask (the local field is defined
there only).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse.linalg import cg

__all__ = ["lbv"]

_FACES = ndimage.generate_binary_structure(3, 1)


def lbv(field, mask, voxel_size, peel: int = 1, tol: float = 1e-6, max_iter: int = 2000):
    """Local field and the mask where it is defined; ``(local, out_mask, iterations)``.

    ``field``: total field (any unit; the local field comes out in the same); ``mask``: the
    brain mask; ``voxel_size`` in mm; ``peel``: extra layers (voxels) removed from the
    output mask; ``tol``: relative CG residual; ``max_iter``: CG iterations.
    """
    f = np.asarray(field, np.float64)
    mask = np.asarray(mask, bool)
    if f.shape != mask.shape:
        raise ValueError(f"field {f.shape} and mask {mask.shape} differ in shape")
    interior = ndimage.binary_erosion(mask, structure=_FACES)
    local = np.zeros(f.shape, np.float32)
    if not interior.any():
        return local, interior, 0
    box = tuple(slice(max(int(i.min()) - 1, 0), int(i.max()) + 2) for i in np.nonzero(mask))
    fb, inner = f[box], interior[box]
    index = -np.ones(inner.shape, np.int64)
    index[inner] = np.arange(int(inner.sum()))
    n = int(inner.sum())
    weights = [1.0 / (h * h) for h in voxel_size]
    rows, cols, vals = [], [], []
    rhs = np.zeros(n)
    diag = np.zeros(n)
    centre = np.argwhere(inner)
    for axis, w in enumerate(weights):
        for step in (-1, 1):
            nb = centre.copy()
            nb[:, axis] += step
            ok = (nb[:, axis] >= 0) & (nb[:, axis] < inner.shape[axis])
            nb_idx = np.full(n, -1, np.int64)
            nb_idx[ok] = index[tuple(nb[ok].T)]
            diag += w
            unknown = nb_idx >= 0
            rows.append(np.nonzero(unknown)[0])
            cols.append(nb_idx[unknown])
            vals.append(np.full(int(unknown.sum()), -w))
            known = ok & ~unknown  # a boundary voxel: its measured field is the condition
            rhs[known] += w * fb[tuple(nb[known].T)]
    # (-Laplacian) restricted to the interior: symmetric positive definite
    a = sparse.csr_matrix((np.concatenate(vals + [diag]),
                           (np.concatenate(rows + [np.arange(n)]),
                            np.concatenate(cols + [np.arange(n)]))), shape=(n, n))
    x0 = np.full(n, float(np.mean(fb[mask[box] & ~inner])) if (mask[box] & ~inner).any() else 0.0)
    iterations = [0]

    def count(_):
        iterations[0] += 1

    background, _ = cg(a, rhs, x0=x0, rtol=tol, maxiter=max_iter, callback=count,
                       M=sparse.diags(1.0 / diag))
    sub = np.zeros(inner.shape)
    sub[inner] = fb[inner] - background
    local[box] = sub.astype(np.float32)
    out_mask = interior
    if peel > 0:
        out_mask = ndimage.binary_erosion(interior, structure=_FACES, iterations=int(peel))
    local[~out_mask] = 0
    return local, out_mask, iterations[0]
