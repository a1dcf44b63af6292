"""Synthetic training data for DeepQSM: random 3-D shapes and their dipole fields.

After Bollmann et al. (NeuroImage 2019), who trained on random cubes/cuboids and
showed the network generalises to brains: here each patch holds a random number of
cubes, cuboids, spheres, ellipsoids and cylinders (random rotation for the anisotropic
ones), overlapping (their susceptibilities add), with susceptibility of both signs in
ppm. Some patches are cut by a random smooth "brain mask" edge (susceptibility and field
set to zero outside it) so the network sees masked local fields as it will at inference.
The field is the forward dipole model (:func:`qsmprep.algorithms.dipole.dipole_kernel`,
B0 along array axis 2, isotropic voxels) applied with a zero-padded torch FFT so shapes
near the patch edge do not wrap around; optional white Gaussian noise is added to the
field. Everything runs in torch on the training device, generated on the fly from a
``torch.Generator``, so a fixed seed gives a fixed (e.g. validation) set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..dipole import dipole_kernel

__all__ = ["ShapeSpec", "ShapeGenerator"]


@dataclass(frozen=True)
class ShapeSpec:
    """Distribution of the synthetic patches (sizes in voxels, values in ppm)."""

    patch: int = 64
    min_shapes: int = 6
    max_shapes: int = 24
    min_radius: float = 1.5
    max_radius_frac: float = 0.4     # of the patch side
    chi_range: float = 0.25          # typical |chi| (ppm) of a shape (uniform in +-)
    strong_prob: float = 0.15        # chance a shape is a strong source (+-4x chi_range)
    mask_prob: float = 0.5           # chance the patch is cut by a random mask edge
    noise_prob: float = 0.5          # chance the field gets white noise
    max_noise: float = 0.003         # ppm, noise sigma drawn uniformly up to this
    pad: int = 32                    # zero padding (voxels, total per axis) for the FFT
    tkd_threshold: float = 0.19      # truncation of the TKD input channel (see tkd())


class ShapeGenerator:
    """Batches ``(field, chi)`` of shape (N, 1, P, P, P), float32, on ``device``."""

    def __init__(self, spec: ShapeSpec = ShapeSpec(), device="cpu", seed: int = 0):
        self.spec = spec
        self.device = torch.device(device)
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(int(seed))
        p = spec.patch
        ax = torch.arange(p, dtype=torch.float32, device=self.device) - (p - 1) / 2
        self.grid = torch.stack(torch.meshgrid(ax, ax, ax, indexing="ij"))  # (3, P, P, P)
        n = p + spec.pad
        self.fft_shape = (n, n, n)
        d = dipole_kernel(self.fft_shape, (1.0, 1.0, 1.0), (0.0, 0.0, 1.0), rfft=True)
        self.kernel = torch.from_numpy(np.ascontiguousarray(d)).to(self.device)
        t = spec.tkd_threshold
        inv = np.where(np.abs(d) > t, 1.0 / np.where(d == 0, 1, d), np.sign(d) / t)
        inv.reshape(-1)[0] = 0.0
        self.tkd_kernel = torch.from_numpy(inv.astype(np.float32)).to(self.device)

    # -- random numbers from the private generator ------------------------------------
    def _u(self, *shape, lo=0.0, hi=1.0):
        return lo + (hi - lo) * torch.rand(*shape, generator=self.gen, device=self.device)

    def _rotation(self):
        q = torch.randn(4, generator=self.gen, device=self.device)
        q = q / q.norm()
        w, x, y, z = q.tolist()
        return torch.tensor([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                             [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                             [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]],
                            dtype=torch.float32, device=self.device)

    def _add_shape(self, chi, value):
        """Add one random shape of susceptibility ``value`` to ``chi`` (P, P, P) in place.

        Only the shape's bounding box is evaluated (most shapes are small)."""
        s = self.spec
        p = s.patch
        rmax = max(s.min_radius + 1, s.max_radius_frac * p)
        centre = self._u(3, lo=-0.5 * p, hi=0.5 * p)
        kind = int(torch.randint(0, 5, (1,), generator=self.gen, device=self.device))
        # log-uniform sizes: many small shapes (vessels, nuclei), some large (tissue)
        radii = torch.exp(self._u(3, lo=math.log(s.min_radius), hi=math.log(rmax)))
        rotate = kind in (2, 3, 4) or bool(self._u(1) < 0.5)  # all but some cubes/cuboids
        rot = self._rotation() if rotate else None
        r = torch.minimum(radii[0], radii[1])
        extent = {0: float(radii[0]) * 3 ** 0.5, 1: float(radii.norm()), 2: float(radii[0]),
                  3: float(radii.max()), 4: float((r * r + 4 * radii[2] ** 2).sqrt())}[kind]
        c = centre.cpu().numpy() + (p - 1) / 2
        box = tuple(slice(max(0, int(np.floor(ci - extent))), min(p, int(np.ceil(ci + extent)) + 1))
                    for ci in c)
        if any(b.start >= b.stop for b in box):
            return
        rel = self.grid[(slice(None), *box)] - centre.view(3, 1, 1, 1)
        if rot is not None:
            rel = torch.einsum("ij,jxyz->ixyz", rot, rel)
        if kind == 0:    # cube
            inside = (rel.abs() <= radii[0]).all(0)
        elif kind == 1:  # cuboid
            inside = (rel.abs() <= radii.view(3, 1, 1, 1)).all(0)
        elif kind == 2:  # sphere
            inside = (rel * rel).sum(0) <= radii[0] ** 2
        elif kind == 3:  # ellipsoid
            inside = ((rel / radii.view(3, 1, 1, 1)) ** 2).sum(0) <= 1.0
        else:            # cylinder (thin and long at times: vessel-like)
            inside = ((rel[0] ** 2 + rel[1] ** 2) <= r ** 2) & (rel[2].abs() <= radii[2] * 2)
        chi[box] += inside * value

    def _mask(self):
        """A large rotated ellipsoid whose edge crosses the patch (a brain-mask stand-in)."""
        p = self.spec.patch
        radii = self._u(3, lo=0.6 * p, hi=1.5 * p).view(3, 1, 1, 1)
        direction = torch.randn(3, generator=self.gen, device=self.device)
        direction = direction / direction.norm()
        # place the centre so the surface passes within the inner half of the patch
        centre = (direction * (radii.min() + self._u(1, lo=-0.25 * p, hi=0.25 * p))).view(3, 1, 1, 1)
        rel = torch.einsum("ij,jxyz->ixyz", self._rotation(), self.grid - centre)
        return ((rel / radii) ** 2).sum(0) <= 1.0

    def chi(self):
        s = self.spec
        p = s.patch
        chi = torch.zeros((p, p, p), device=self.device)
        n = int(torch.randint(s.min_shapes, s.max_shapes + 1, (1,), generator=self.gen,
                              device=self.device))
        for _ in range(n):
            value = self._u(1, lo=-s.chi_range, hi=s.chi_range)
            if bool(self._u(1) < s.strong_prob):
                value = value * 4.0
            self._add_shape(chi, value)
        return chi

    def _filter(self, x, kernel):
        p = self.spec.patch
        lo = self.spec.pad // 2
        padded = torch.zeros(self.fft_shape, device=self.device)
        padded[lo:lo + p, lo:lo + p, lo:lo + p] = x
        out = torch.fft.irfftn(torch.fft.rfftn(padded) * kernel, s=self.fft_shape)
        return out[lo:lo + p, lo:lo + p, lo:lo + p]

    def forward(self, chi):
        """Field (ppm) of ``chi`` (P, P, P) with B0 along axis 2, zero-padded FFT."""
        return self._filter(chi, self.kernel)

    def tkd(self, field):
        """Truncated k-space division of ``field`` (same convention as
        :func:`qsmprep.algorithms.inversion.tkd`: ``sign(D)/threshold`` where
        ``|D| <= threshold``), zero-padded like :meth:`forward`."""
        return self._filter(field, self.tkd_kernel)

    def sample(self):
        s = self.spec
        chi = self.chi()
        if bool(self._u(1) < s.mask_prob):
            mask = self._mask()
            chi = chi * mask
            field = self.forward(chi) * mask
        else:
            field = self.forward(chi)
        if bool(self._u(1) < s.noise_prob):
            sigma = float(self._u(1, hi=s.max_noise))
            field = field + sigma * torch.randn(field.shape, generator=self.gen, device=self.device)
        return field, chi

    def batch(self, n: int, tkd: bool = False):
        """``(inputs, chi)``: inputs (n, 1 or 2, P, P, P) = field [, TKD of the field],
        chi (n, 1, P, P, P); float32, ppm."""
        pairs = [self.sample() for _ in range(n)]
        if tkd:
            field = torch.stack([torch.stack([f, self.tkd(f)]) for f, _ in pairs])
        else:
            field = torch.stack([f for f, _ in pairs])[:, None]
        chi = torch.stack([c for _, c in pairs])[:, None]
        return field.contiguous(), chi.contiguous()

    def state(self):
        return self.gen.get_state()

    def set_state(self, state):
        self.gen.set_state(state)
