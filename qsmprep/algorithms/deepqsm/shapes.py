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

Options toward brain-like patches (all off by default; the shipped CPU recipe turns them
on, ``qsmprep/data/deepqsm/train-cpu.toml``): a per-patch contrast log-uniform down to ``min_chi``
(tissue is ~0.02 ppm, not 0.25) with noise scaled to it; strong sources that are small
spheres and long thin cylinders (calcifications, veins) ``strong_factor`` times the
contrast; and a dense "tissue" texture under the shapes (:meth:`ShapeGenerator.tissue`).
What they did to the head phantom on CPU budgets is in ``docs/deepqsm.md``.
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
    min_chi: float = 0.0             # > 0: per-patch contrast log-uniform in [min_chi, chi_range]
    strong_prob: float = 0.15        # chance a shape is a strong source
    strong_factor: tuple = (4.0, 4.0)  # strong source = contrast x uniform(lo, hi)
    strong_max_radius: float = 0.0   # > 0: strong sources are small spheres/long thin
                                     # cylinders (calcification/vein-like) of this max radius
    min_std: float = 0.0             # > 0: redraw patches whose chi (after the mask) has a
                                     # standard deviation below min_std x contrast (flat)
    tissue_prob: float = 0.0         # chance the patch is filled with a "tissue" texture
                                     # under the shapes (see ShapeGenerator.tissue)
    mask_prob: float = 0.5           # chance the patch is cut by a random mask edge
    noise_prob: float = 0.5          # chance the field gets white noise
    max_noise: float = 0.003         # ppm at contrast chi_range, noise sigma drawn uniformly
                                     # up to this (scaled with the patch contrast)
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

    def _add_shape(self, chi, value, small=False):
        """Add one random shape of susceptibility ``value`` to ``chi`` (P, P, P) in place.

        ``small``: a sphere (calcification) or a long thin cylinder (vein) of radius at
        most ``strong_max_radius``. Only the shape's bounding box is evaluated."""
        s = self.spec
        p = s.patch
        rmax = max(s.min_radius + 1, s.max_radius_frac * p)
        centre = self._u(3, lo=-0.5 * p, hi=0.5 * p)
        if small:
            kind = 2 if bool(self._u(1) < 0.4) else 4
            radii = torch.exp(self._u(3, lo=math.log(0.7 * s.min_radius),
                                      hi=math.log(s.strong_max_radius)))
            radii[2] = self._u(1, lo=0.1 * p, hi=0.4 * p)[0]  # vein half-length / 2
        else:
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

    def contrast(self):
        """The patch's shape contrast (ppm): ``chi_range``, or log-uniform down to
        ``min_chi`` (brain tissue is ~0.02 ppm, veins ~0.3 ppm)."""
        s = self.spec
        if s.min_chi <= 0:
            return s.chi_range
        return float(torch.exp(self._u(1, lo=math.log(s.min_chi), hi=math.log(s.chi_range))))

    def tissue(self, contrast):
        """A dense, piecewise-constant texture filling the patch, like brain tissue (grey
        and white matter, CSF, nuclei) rather than isolated shapes on an empty background:
        Gaussian noise low-passed at a random correlation length (1.5-8 voxels), cut into
        2-4 classes at random quantiles, each class a random susceptibility in
        ``+-contrast``. The thresholded smooth noise gives curved, folded boundaries."""
        p = self.spec.patch
        noise = torch.randn((p, p, p), generator=self.gen, device=self.device)
        ell = float(self._u(1, lo=1.5, hi=8.0))
        k = torch.fft.fftfreq(p, device=self.device)
        k2 = k.view(-1, 1, 1) ** 2 + k.view(1, -1, 1) ** 2 + k.view(1, 1, -1) ** 2
        lowpass = torch.exp(-2 * (math.pi * ell) ** 2 * k2)
        smooth = torch.fft.ifftn(torch.fft.fftn(noise) * lowpass).real.contiguous()
        n_classes = int(torch.randint(2, 5, (1,), generator=self.gen, device=self.device))
        cuts = torch.quantile(smooth.reshape(-1)[::7], torch.sort(self._u(n_classes - 1)).values)
        labels = torch.bucketize(smooth, cuts)
        values = self._u(n_classes, lo=-contrast, hi=contrast)
        return values[labels]

    def chi(self, contrast=None):
        s = self.spec
        p = s.patch
        c = s.chi_range if contrast is None else contrast
        chi = torch.zeros((p, p, p), device=self.device)
        if s.tissue_prob > 0 and bool(self._u(1) < s.tissue_prob):
            chi = chi + self.tissue(c)
        n = int(torch.randint(s.min_shapes, s.max_shapes + 1, (1,), generator=self.gen,
                              device=self.device))
        lo, hi = s.strong_factor
        for _ in range(n):
            value = self._u(1, lo=-c, hi=c)
            strong = bool(self._u(1) < s.strong_prob)
            if strong:
                value = value * (lo if hi == lo else float(self._u(1, lo=lo, hi=hi)))
            self._add_shape(chi, value, small=strong and s.strong_max_radius > 0)
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
        :func:`qsmprep.algorithms.inversion.direct.tkd`: ``sign(D)/threshold`` where
        ``|D| <= threshold``), zero-padded like :meth:`forward`."""
        return self._filter(field, self.tkd_kernel)

    def sample(self):
        s = self.spec
        while True:
            contrast = self.contrast()
            chi = self.chi(contrast)
            mask = self._mask() if bool(self._u(1) < s.mask_prob) else None
            if mask is not None:
                chi = chi * mask
            # a (nearly) flat patch has no demeaned content: a relative loss would divide
            # by ~0 (one such patch in the first 600 steps sent the loss to 1e8)
            if s.min_std <= 0 or float(chi.std()) >= s.min_std * contrast:
                break
        field = self.forward(chi)
        if mask is not None:
            field = field * mask
        if bool(self._u(1) < s.noise_prob):
            sigma = float(self._u(1, hi=s.max_noise)) * contrast / s.chi_range
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
