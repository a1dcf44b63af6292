"""Triangle-mesh helpers for the BET surface (:mod:`.bet`): a tessellated sphere, vertex
neighbours and normals, a self-intersection test, and filling a closed surface into a
voxel mask.

Coordinates are millimetres along the array axes (``index * voxel_size``), so anisotropic
voxels are handled by scaling, never by resampling.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, sparse
from scipy.spatial import cKDTree

__all__ = ["icosphere", "Mesh", "enclosed_volume", "self_intersections", "surface_to_mask"]

_T = (1.0 + 5.0 ** 0.5) / 2.0
_ICO_V = [(-1, _T, 0), (1, _T, 0), (-1, -_T, 0), (1, -_T, 0), (0, -1, _T), (0, 1, _T),
          (0, -1, -_T), (0, 1, -_T), (_T, 0, -1), (_T, 0, 1), (-_T, 0, -1), (-_T, 0, 1)]
_ICO_F = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4),
          (11, 10, 2), (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8),
          (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)]


def icosphere(subdivisions: int = 4):
    """Unit sphere tessellated from an icosahedron: ``(vertices (N, 3), faces (F, 3))``.

    Each subdivision splits every triangle into four (midpoints pushed onto the sphere):
    ``N = 10 * 4**subdivisions + 2`` (4 -> 2562 vertices, 5120 triangles). Faces are
    ordered counter-clockwise seen from outside (normals point outwards).
    """
    v = np.asarray(_ICO_V, np.float64)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    f = np.asarray(_ICO_F, np.int64)
    for _ in range(int(subdivisions)):
        e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        uniq, inv = np.unique(np.sort(e, axis=1), axis=0, return_inverse=True)
        mid = v[uniq[:, 0]] + v[uniq[:, 1]]
        mid /= np.linalg.norm(mid, axis=1, keepdims=True)
        m = inv.reshape(3, len(f)).T + len(v)  # midpoints of edges 01, 12, 20
        a, b, c = f.T
        m01, m12, m20 = m.T
        f = np.concatenate([np.stack([a, m01, m20], 1), np.stack([b, m12, m01], 1),
                            np.stack([c, m20, m12], 1), np.stack([m01, m12, m20], 1)])
        v = np.concatenate([v, mid])
    return v, f


class Mesh:
    """Connectivity of a closed triangle mesh: neighbour averaging and vertex normals."""

    def __init__(self, faces, n_vertices: int):
        self.faces = np.asarray(faces, np.int64)
        f = self.faces
        e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        self.edges = np.unique(np.sort(e, axis=1), axis=0)
        i, j = self.edges.T
        ones = np.ones(2 * len(i))
        adj = sparse.csr_matrix((ones, (np.r_[i, j], np.r_[j, i])), shape=(n_vertices,) * 2)
        deg = np.asarray(adj.sum(axis=1)).ravel()
        self._mean = sparse.diags(1.0 / deg) @ adj  # row-normalised: mean of neighbours
        rows = f.ravel()
        cols = np.repeat(np.arange(len(f)), 3)
        self._v_of_f = sparse.csr_matrix((np.ones(rows.size), (rows, cols)),
                                         shape=(n_vertices, len(f)))

    def neighbour_mean(self, v):
        return self._mean @ v

    def mean_edge_length(self, v) -> float:
        i, j = self.edges.T
        return float(np.linalg.norm(v[i] - v[j], axis=1).mean())

    def face_normals(self, v):
        """Area-weighted (unnormalised) outward face normals."""
        a, b, c = (v[self.faces[:, k]] for k in range(3))
        return np.cross(b - a, c - a)

    def vertex_normals(self, v):
        """Unit outward normals: the sum of the adjacent faces' area-weighted normals."""
        n = self._v_of_f @ self.face_normals(v)
        return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def enclosed_volume(vertices, faces) -> float:
    """Volume (mm^3) enclosed by a closed, outward-oriented mesh (divergence theorem)."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def self_intersections(vertices, reference, mesh: Mesh) -> int:
    """Number of vertex pairs that touch (closer than half the mean edge length) although
    they lie more than three mean edge lengths apart on the ``reference`` (initial sphere)
    mesh: the surface has folded onto itself there. 0 for a well-behaved surface."""
    l_now = mesh.mean_edge_length(vertices)
    l_ref = mesh.mean_edge_length(reference)
    pairs = cKDTree(vertices).query_pairs(0.5 * l_now, output_type="ndarray")
    if len(pairs) == 0:
        return 0
    far = np.linalg.norm(reference[pairs[:, 0]] - reference[pairs[:, 1]], axis=1) > 3.0 * l_ref
    return int(far.sum())


def _sample_triangles(vertices, faces, spacing):
    """Points on every triangle (a barycentric grid finer than ``spacing`` mm) and the
    outward normal of the triangle each point lies on."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    longest = max(np.linalg.norm(b - a, axis=1).max(), np.linalg.norm(c - b, axis=1).max(),
                  np.linalg.norm(a - c, axis=1).max())
    n = max(1, int(np.ceil(longest / spacing)))
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    keep = (i + j) <= n
    u, w = i[keep] / n, j[keep] / n
    pts = (a[:, None, :] + u[None, :, None] * (b - a)[:, None, :]
           + w[None, :, None] * (c - a)[:, None, :])
    fn = np.cross(b - a, c - a)
    fn /= np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-12)
    return pts.reshape(-1, 3), np.repeat(fn, u.size, axis=0)


def surface_to_mask(vertices, faces, shape, voxel_size) -> np.ndarray:
    """Voxels whose centre lies inside a closed surface (vertices in mm on the array axes).

    The triangles are sampled every 0.3 of the smallest voxel size; the voxels holding a
    sample form a closed shell (points outside the field of view are clamped onto its
    faces, which closes a surface cut by the field of view); holes are filled inside
    the shell; each shell voxel is then kept when its centre lies on the inner side of
    the nearest surface sample (sub-voxel decision, so the mask is not biased outwards by
    the shell's thickness).
    """
    vs = np.asarray(voxel_size, np.float64)
    shape = tuple(int(s) for s in shape)
    pts, nrm = _sample_triangles(np.asarray(vertices, np.float64), faces, 0.3 * vs.min())
    idx = np.rint(pts / vs).astype(np.int64)
    for ax in range(3):
        np.clip(idx[:, ax], 0, shape[ax] - 1, out=idx[:, ax])
    shell = np.zeros(shape, bool)
    shell[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    filled = ndimage.binary_fill_holes(shell)
    inside = filled & ~shell
    sv = np.argwhere(shell)
    centres = sv * vs
    # clamp the samples as the shell was clamped, so edge voxels compare with the FOV face
    clamped = np.clip(pts, 0.0, (np.asarray(shape) - 1) * vs)
    _, k = cKDTree(clamped).query(centres)
    side = np.einsum("ij,ij->i", centres - pts[k], nrm[k])
    keep = side <= 0.0
    outside_fov = np.any(pts[k] != clamped[k], axis=1)
    keep |= outside_fov  # the surface lies beyond the FOV there: the edge voxel is inside
    inside[tuple(sv[keep].T)] = True
    return inside
