"""Multi-echo gradient-echo acquisition of the MNI head phantom, simulated on a fine grid.

Forward model (docs/simulation.md):

1. The acquisition grid (``shape`` voxels of ``voxel_size`` mm, centred) is extended by
   whole voxels until it holds the entire head (so sources outside a cropped field of
   view still contribute), then supersampled ``supersample`` times per axis.
2. The phantom (:func:`.anatomy.rasterise_head`) is rasterised on that fine grid.
3. The total field (ppm of B0) is the dipole forward model
   (:func:`qsmprep.algorithms.dipole.forward_field`) of the susceptibility referenced to
   air (air 0, tissue -9.4 ppm, bone -11.6 ppm), computed on the fine grid zero-padded by
   ``pad_fraction`` of its size per axis, i.e. with air all around (the periodic images
   of the head are >= that far apart; their field in the brain is smooth and harmonic).
   The local field is the forward model of the brain's own susceptibility (relative to
   CSF, zero outside the brain mask) on the same padded grid; ``total - local`` is the
   field of everything outside the brain plus the reference (CSF) value filling it.
4. Per echo the complex signal is formed on the fine grid,
   ``M0 exp(-R2* TE) exp(i 2 pi gamma_bar B0 1e-6 f TE)`` with the steady-state spoiled
   GRE magnitude ``M0 = PD sin(a) (1 - E1) / (1 - cos(a) E1)``, ``E1 = exp(-TR/T1)``,
   and averaged over each acquisition voxel: intravoxel dephasing and partial volume
   come out of the average, and the field has none of the ringing a native-resolution
   oblique forward model shows.
5. On the acquisition grid: a smooth receiver phase offset, optional coil
   sensitivities (one image per channel) and a body-coil image, and complex Gaussian
   noise of standard deviation ``mean brain M0 / snr`` per real and imaginary part.

R2* values are those at 3 T (:data:`qsmprep.simulation.phantom.LABELS`) scaled linearly
with the field strength (Yablonskiy & Haacke 1994: the mesoscopic dephasing rate is
proportional to B0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..algorithms.dipole import forward_field
from ..algorithms.phase import GAMMA_BAR_HZ_PER_T, wrap
from .anatomy import T1_S, rasterise_head
from .extracranial import FAT, FAT_PPM, FAT_T1_S, rasterise_realistic_head
from .phantom import LABELS
from .texture import R2STAR_PER_PPM, chi_texture

__all__ = ["MegreData", "simulate_megre", "smooth_phase_offset", "block_mean", "head_grid",
           "AIR_CHI", "HEAD_EXTENT_MNI", "PHANTOMS"]

PHANTOMS = ("simple", "realistic")

AIR_CHI = LABELS[22][1]  # air relative to tissue/CSF (ppm)
# MNI bounds (mm) of everything the phantom holds: brain + 15 mm shells, face, neck
HEAD_EXTENT_MNI = ((-90.0, 90.0), (-123.0, 90.0), (-116.0, 99.0))


@dataclass(frozen=True)
class MegreData:
    """The simulated acquisition on the acquisition grid (all float32 unless noted)."""

    magnitude: np.ndarray      # (x, y, z, echoes), arbitrary units
    phase: np.ndarray          # (x, y, z, echoes), radians [-pi, pi)
    total_field: np.ndarray    # ppm
    local_field: np.ndarray    # ppm, field of the brain's own susceptibility
    chi: np.ndarray            # ppm relative to CSF inside the brain mask, 0 outside
    brain_mask: np.ndarray     # bool
    labels: np.ndarray         # uint8, ids of LABELS (the sub-voxel nearest the centre)
    r2star: np.ndarray         # 1/s, voxel mean
    m0: np.ndarray             # magnitude at TE = 0 (noiseless)
    phase_offset: np.ndarray   # radians
    echo_times: tuple
    b0_tesla: float
    b0_dir: tuple
    sigma: float               # noise standard deviation per real/imaginary part
    homogeneous: np.ndarray | None = None   # bool: all fine sub-voxels carry one label
    coil_images: np.ndarray | None = None   # complex64 (channels, x, y, z, echoes)
    body_coil: np.ndarray | None = None     # complex64 (x, y, z, echoes)


def smooth_phase_offset(shape, amplitude=1.0, seed=0) -> np.ndarray:
    """A smooth receiver phase offset (radians): a random low-order polynomial."""
    rng = np.random.default_rng(seed)
    axes = [np.linspace(-1, 1, n, dtype=np.float32) for n in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    c = rng.uniform(-1, 1, 7).astype(np.float32)
    poly = c[0] + c[1] * x + c[2] * y + c[3] * z + c[4] * x * y + c[5] * z * z + c[6] * x * x
    return (amplitude * poly).astype(np.float32)


def block_mean(a, factor) -> np.ndarray:
    """Mean over non-overlapping ``factor``^3 blocks (shape divisible by ``factor``)."""
    f = int(factor)
    if f == 1:
        return a
    n = [s // f for s in a.shape[:3]]
    return a.reshape(n[0], f, n[1], f, n[2], f).mean(axis=(1, 3, 5))


def head_grid(shape, voxel_size, scale=1.0, centre_mni=(0.0, -16.0, 0.0), supersample=2,
              margin_mm=4.0):
    """Fine-grid coordinates for the simulation.

    Returns ``(axes_mni, fov)``: the 1-D MNI coordinates (mm) of the fine grid points
    per axis and, per axis, the slice of the fine grid that is the acquisition field of
    view. The acquisition grid is centred on ``centre_mni``; ``scale`` shrinks (< 1) or
    grows the anatomy.
    """
    f = int(supersample)
    axes, fov = [], []
    for n, h, c, (lo, hi) in zip(shape, voxel_size, centre_mni, HEAD_EXTENT_MNI):
        first = -(n - 1) / 2.0 * h
        last = (n - 1) / 2.0 * h
        lo_mm, hi_mm = (lo - c) * scale - margin_mm, (hi - c) * scale + margin_mm
        e_lo = max(0, int(np.ceil((first - lo_mm) / h)))
        e_hi = max(0, int(np.ceil((hi_mm - last) / h)))
        centres = first + h * np.arange(-e_lo, n + e_hi)
        sub = (np.arange(f) + 0.5) / f * h - h / 2.0
        fine = (centres[:, None] + sub[None, :]).ravel()
        axes.append(fine / scale + c)
        fov.append(slice(e_lo * f, (e_lo + n) * f))
    return axes, tuple(fov)


def _spoiled(pd, t1, tr, flip_deg):
    a = np.deg2rad(flip_deg)
    e1 = np.exp(-tr / t1)
    return pd * np.sin(a) * (1 - e1) / (1 - np.cos(a) * e1)


def _tables(field_strength, tr, flip_deg, phantom="simple"):
    """Per-label chi, water R2* and water M0; the realistic head's fatty labels keep
    ``1 - fat fraction`` of their PD as water (the fat part: :func:`_fat_tables`)."""
    chi = np.zeros(256, np.float32)
    r2s = np.zeros(256, np.float32)
    m0 = np.zeros(256, np.float32)
    fat = FAT if phantom == "realistic" else {}
    for k, (_, c, r, pd) in LABELS.items():
        chi[k] = c
        r2s[k] = r * field_strength / 3.0
        m0[k] = _spoiled(pd * (1 - fat.get(k, (0.0,))[0]), T1_S.get(k, 1.0), tr, flip_deg)
    return chi, r2s, m0


def _fat_tables(field_strength, tr, flip_deg, echo_times):
    """Per echo, the fat signal of each label (complex64 (echoes, 256)): fat M0 (fraction
    of PD, fat T1) times ``exp(-R2*_fat TE)`` times the chemical-shift phase
    ``exp(i 2 pi (FAT_PPM 1e-6 gamma_bar B0) TE)``."""
    out = np.zeros((len(echo_times), 256), np.complex64)
    df = FAT_PPM * 1e-6 * GAMMA_BAR_HZ_PER_T * field_strength
    for k, (ff, r2f) in FAT.items():
        m0f = _spoiled(LABELS[k][3] * ff, FAT_T1_S, tr, flip_deg)
        for e, te in enumerate(echo_times):
            out[e, k] = (m0f * np.exp(-r2f * field_strength / 3.0 * te)
                         * np.exp(2j * np.pi * df * te))
    return out


def simulate_megre(shape, voxel_size, echo_times, b0_tesla, b0_dir, *, tr=0.03,
                   flip_angle=15.0, snr=100.0, phase_offset=1.0, seed=0, scale=1.0,
                   centre_mni=(0.0, -16.0, 0.0), supersample=2, pad_fraction=0.5,
                   calcification=True, coil_sensitivities=None, body_coil_sensitivity=None,
                   workers=None, phantom="simple") -> MegreData:
    """Simulate a multi-echo acquisition of the head phantom (see module doc).

    ``b0_dir`` in voxel coordinates (derive it from the affine you will write, so oblique
    acquisitions are consistent); ``echo_times`` and ``tr`` in s, ``flip_angle`` in
    degrees; ``snr=None`` gives noiseless data; ``phase_offset`` scales the smooth
    offset (0 disables it). ``coil_sensitivities``: complex (channels, *shape) or None;
    ``body_coil_sensitivity``: complex ``shape`` or None. The same ``seed`` gives the
    same data. ``phantom``: ``"simple"`` (piecewise-constant tissue, uniform skull and
    scalp) or ``"realistic"`` (textured chi, :mod:`.texture`; layered extracranial tissue
    with fat, :mod:`.extracranial`).
    """
    if phantom not in PHANTOMS:
        raise ValueError(f"unknown phantom {phantom!r}; one of {PHANTOMS}")
    realistic = phantom == "realistic"
    shape = tuple(int(n) for n in shape)
    vs = tuple(float(h) for h in voxel_size)
    f = int(supersample)
    b0_dir = np.asarray(b0_dir, float) / np.linalg.norm(b0_dir)
    axes, fov = head_grid(shape, vs, scale, centre_mni, f)
    if realistic:
        labels_hr, brain_hr = rasterise_realistic_head(axes, calcification=calcification)
    else:
        labels_hr, brain_hr = rasterise_head(axes, calcification=calcification)
    chi_t, r2_t, m0_t = _tables(b0_tesla, tr, flip_angle, phantom)
    fat_t = _fat_tables(b0_tesla, tr, flip_angle, echo_times) if realistic else None
    fat_m0_t = (np.abs(_fat_tables(b0_tesla, tr, flip_angle, (0.0,))[0]).astype(np.float32)
                if realistic else None)
    fine_vs = tuple(h / f for h in vs)
    pad = [int(np.ceil(pad_fraction * n)) for n in labels_hr.shape]

    chi_hr = chi_t[labels_hr]
    # texture (zero outside the brain), restricted to the field of view for R2* below
    dchi = chi_texture(axes, labels_hr, brain_hr) if realistic else None
    if dchi is not None:
        chi_hr += dchi
        dchi = np.ascontiguousarray(dchi[fov])
    chi_hr -= np.float32(AIR_CHI)          # referenced to air: zero in the padding
    total_hr = forward_field(chi_hr, fine_vs, b0_dir, pad=pad, workers=workers)[fov]
    chi_hr += np.float32(AIR_CHI)
    chi_hr *= brain_hr                     # the brain's own susceptibility (re CSF)
    local = block_mean(forward_field(chi_hr, fine_vs, b0_dir, pad=pad, workers=workers)[fov], f)
    chi = block_mean(chi_hr[fov], f).astype(np.float32)
    del chi_hr
    brain_mask = block_mean(brain_hr[fov].astype(np.float32), f) >= 0.5
    del brain_hr
    chi[~brain_mask] = 0.0
    lab = np.ascontiguousarray(labels_hr[fov])
    del labels_hr

    c = [f // 2] * 3
    labels = lab[c[0]::f, c[1]::f, c[2]::f].copy()
    n3 = [s_ // f for s_ in lab.shape]
    blocks = lab.reshape(n3[0], f, n3[1], f, n3[2], f)
    homogeneous = blocks.min(axis=(1, 3, 5)) == blocks.max(axis=(1, 3, 5))
    del blocks
    total = block_mean(total_hr, f).astype(np.float32)

    # complex signal on the fine grid, averaged per acquisition voxel, slab by slab
    omega_scale = np.float32(2 * np.pi * GAMMA_BAR_HZ_PER_T * b0_tesla * 1e-6)
    signal = np.empty(shape + (len(echo_times),), np.complex64)
    m0 = np.empty(shape, np.float32)
    r2star = np.empty(shape, np.float32)
    r2_per_ppm = np.float32(R2STAR_PER_PPM * b0_tesla / 3.0)
    slab = max(1, 4_000_000 // (f ** 3 * shape[1] * shape[2]))
    for i0 in range(0, shape[0], slab):
        i1 = min(shape[0], i0 + slab)
        sl = slice(i0 * f, i1 * f)
        lb = lab[sl]
        amp0 = m0_t[lb]
        r2 = r2_t[lb]
        if dchi is not None:  # paramagnetic texture (iron, veins) dephases
            r2 += r2_per_ppm * np.maximum(dchi[sl], 0)
        m0[i0:i1] = block_mean(amp0 if fat_t is None else amp0 + fat_m0_t[lb], f)
        r2star[i0:i1] = block_mean(r2, f)
        w = total_hr[sl] * omega_scale
        for e, te in enumerate(echo_times):
            te = np.float32(te)
            amp = amp0 * np.exp(-r2 * te)
            ph = w * te
            if fat_t is None:
                signal[i0:i1, ..., e].real = block_mean(amp * np.cos(ph), f)
                signal[i0:i1, ..., e].imag = block_mean(amp * np.sin(ph), f)
            else:  # water + fat (chemical shift) at the local field's phase
                s_ = (amp + fat_t[e, lb]) * np.exp(1j * ph)
                signal[i0:i1, ..., e].real = block_mean(s_.real, f)
                signal[i0:i1, ..., e].imag = block_mean(s_.imag, f)
    del total_hr, lab, dchi

    offset = (smooth_phase_offset(shape, phase_offset, seed) if phase_offset
              else np.zeros(shape, np.float32))
    signal *= np.exp(1j * offset)[..., None].astype(np.complex64)
    sigma = float(m0[brain_mask].mean()) / float(snr) if snr else 0.0
    rng = np.random.default_rng([int(seed), 1])

    def noisy(img):
        if not sigma:
            return img.astype(np.complex64)
        n = rng.standard_normal(img.shape + (2,), dtype=np.float32)
        return (img + sigma * (n[..., 0] + 1j * n[..., 1])).astype(np.complex64)

    coil_images = body = None
    if coil_sensitivities is not None:
        sens = np.asarray(coil_sensitivities, np.complex64)
        coil_images = np.stack([noisy(s[..., None] * signal) for s in sens])
    if body_coil_sensitivity is not None:
        body = noisy(np.asarray(body_coil_sensitivity, np.complex64)[..., None] * signal)
    signal = noisy(signal)
    return MegreData(
        magnitude=np.abs(signal).astype(np.float32), phase=wrap(np.angle(signal)),
        total_field=total, local_field=local.astype(np.float32), chi=chi,
        brain_mask=brain_mask, labels=labels, r2star=r2star, m0=m0, phase_offset=offset,
        echo_times=tuple(float(t) for t in echo_times), b0_tesla=float(b0_tesla),
        b0_dir=tuple(float(v) for v in b0_dir), sigma=sigma, homogeneous=homogeneous,
        coil_images=coil_images, body_coil=body)
