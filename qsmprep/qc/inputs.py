"""Checks of the input images and sidecars: phase units, non-finite and empty images,
field strength. Pure functions; a problem the user must fix raises
:class:`~qsmprep.errors.UserInputError` naming the file, one that can be worked around
returns a warning sentence (see :mod:`qsmprep.qc`)."""

from __future__ import annotations

import math

import numpy as np

from ..algorithms.magnitude import rss
from ..algorithms.phase import PHASE_UNITS, PhaseUnitsError, convert_phase, phase_range
from ..errors import UserInputError

__all__ = ["FIELD_STRENGTH_RANGE_T", "convert_run_phase", "check_field_strength",
           "check_magnitude_signal", "zero_nonfinite", "count_nonfinite", "nonfinite_warning"]

# plausible B0 (T): low-field MRI starts near 0.1 T, the strongest human scanners are 11.7 T
FIELD_STRENGTH_RANGE_T = (0.1, 12.0)


def convert_run_phase(phases, paths, units: str = "auto"):
    """Convert all echoes of a run to radians with one decision over all of them.

    ``phases``: raw arrays (any dtype), ``paths`` their files (named in errors); ``units``:
    one of ``auto``, ``radians``, ``degrees``, ``integer`` (``--phase-units``). Returns
    ``(list of float32 radian arrays, note)``, the note saying which conversion was done.
    An unidentifiable range (``auto``) or values that cannot be in the given units raise
    :class:`UserInputError` naming the file and ``--phase-units``.
    """
    if units not in PHASE_UNITS:
        raise ValueError(f"unknown phase units {units!r}; choose one of {PHASE_UNITS}")
    phases = list(phases)
    paths = [str(p) for p in paths]
    try:
        rng = phase_range(phases)
    except PhaseUnitsError:
        raise UserInputError(
            f"The phase image {paths[0]} (and the other echoes of its run) holds no finite "
            "value (all NaN or infinite). Re-export the phase images from the scanner or "
            "converter.") from None
    try:
        out = [convert_phase(p, units, rng) for p in phases]
    except PhaseUnitsError as exc:
        which = (paths[0] if len(paths) == 1 else
                 f"{paths[0]} (and the other {len(paths) - 1} echo(es) of its run)")
        if units == "auto":
            fix = ("qsmprep will not guess: if you know the units, say so with --phase-units "
                   "radians, degrees or integer (integer maps the smallest power-of-two "
                   "range holding the values onto [-pi, pi)); otherwise check that this is a "
                   "phase image at all (a field map in Hz or a scaled or masked phase needs "
                   "converting to radians first).")
        else:
            fix = (f"check the --phase-units {units} you gave, or leave it at auto to let "
                   "qsmprep identify the range.")
        raise UserInputError(f"The phase units of {which} could not be established: {exc}. "
                             f"{fix}") from None
    return [r for r, _ in out], out[0][1]


def check_magnitude_signal(magnitude, path) -> None:
    """An all-zero (or all non-finite) magnitude image stops the run, naming the file."""
    m = np.asarray(magnitude)
    finite = np.isfinite(m)
    if not finite.any() or not np.any(m[finite] != 0):
        what = "only zeros" if finite.any() else "no finite value"
        raise UserInputError(
            f"The magnitude image {path} holds {what}: there is no signal to build a brain "
            "mask or weight the phase with. Re-export it from the scanner or converter (or "
            "exclude this run with --bids-filter-file).")


def zero_nonfinite(magnitude, phase):
    """Set voxels where the magnitude or the phase is NaN/Inf to 0 in both (zero magnitude:
    no weight in any fit, and :class:`~qsmprep.interfaces.fieldmap.FitField` drops voxels
    without signal in every echo from the mask).

    Returns ``(magnitude, phase, n_bad_magnitude, n_bad_phase)``."""
    m = np.asarray(magnitude, np.float32)
    p = np.asarray(phase, np.float32)
    bad_m, bad_p = ~np.isfinite(m), ~np.isfinite(p)
    bad = bad_m | bad_p
    if bad.any():
        m = np.where(bad, np.float32(0), m)
        p = np.where(bad, np.float32(0), p)
    return m, p, int(bad_m.sum()), int(bad_p.sum())


def count_nonfinite(data) -> int:
    """Number of NaN/Inf values in ``data`` (0 for integer arrays)."""
    x = np.asarray(data)
    return 0 if np.issubdtype(x.dtype, np.integer) else int((~np.isfinite(x)).sum())


def nonfinite_warning(counts: dict, n_voxels: int) -> str | None:
    """Warning sentence for non-finite input voxels, ``counts``: ``{file: number}`` (None when
    all are 0); ``n_voxels``: voxels per image."""
    bad = {str(f): int(n) for f, n in counts.items() if n}
    if not bad:
        return None
    listing = "; ".join(f"{n} in {f} ({100.0 * n / max(n_voxels, 1):.2g}% of its voxels)"
                        for f, n in bad.items())
    return (f"NaN or infinite voxels: {listing}. They were set to 0 and given no weight in "
            "that echo (a voxel without signal in any echo is left out of the mask); check "
            "the conversion of these images.")


def check_field_strength(value, path, key: str = "MagneticFieldStrength",
                         sidecar=None) -> float:
    """``value`` (T) if within :data:`FIELD_STRENGTH_RANGE_T`, else a UserInputError naming
    the image ``path``, its ``sidecar`` and the key the value came from."""
    lo, hi = FIELD_STRENGTH_RANGE_T
    v = float(value)
    if not (math.isfinite(v) and lo <= v <= hi):
        hint = ("; a value in gauss or millitesla?" if v >= 100 else "")
        raise UserInputError(
            f"The field strength of {path} is {v:g} T (from {key} in its sidecar{hint}), "
            f"outside the plausible {lo:g}-{hi:g} T: every ppm value would be wrong by the same "
            f"factor. Fix {key} in {sidecar or 'its JSON sidecar'} (MagneticFieldStrength in "
            "tesla, ImagingFrequency in MHz).")
    return v


def check_volumes_are_channels(magnitude, path) -> None:
    """Stop when the volumes of a 4-D magnitude ``path`` (read as receive channels) look like
    echoes of one combined image: the signal falls from each volume to the next by a ratio
    that is nearly the same everywhere (T2* decay), where two receive channels differ by
    their coil sensitivities, which vary across the head by factors of several.

    Measured on the simulator (signal voxels, log of the volume-to-volume ratio): echoes of the
    realistic head median -0.15 to -0.16 with an interquartile range 0.23-0.44; 8 channels
    medians of both signs, interquartile range 0.70-1.09. Echoes: every median below -0.01
    and every interquartile range below 0.55.
    """
    v = np.asarray(magnitude, np.float32)
    if v.ndim != 4 or v.shape[-1] < 2:
        return
    v = np.abs(v)
    combined = rss(v)
    signal = combined > 0.2 * np.percentile(combined, 99)
    medians, spreads = [], []
    for k in range(v.shape[-1] - 1):
        a, b = v[..., k][signal], v[..., k + 1][signal]
        ok = (a > 0) & (b > 0)
        if ok.sum() < 100:
            return
        ratio = np.log(b[ok] / a[ok])
        q1, med, q3 = np.percentile(ratio, [25, 50, 75])
        medians.append(float(med))
        spreads.append(float(q3 - q1))
    if max(medians) < -0.01 and max(spreads) < 0.55:
        raise UserInputError(
            f"{path} has {v.shape[-1]} volumes that look like echoes, not receive channels: the "
            f"signal decays from each volume to the next by a nearly uniform factor (median "
            f"ratio {math.exp(max(medians)):.2f} or less). qsmprep reads a 4-D image as "
            "uncombined channels of one echo. Split it into one file per echo "
            "(sub-<label>_echo-<n>_part-mag_MEGRE.nii.gz and part-phase, each with its EchoTime), "
            "or, if these really are channels, combine them first.")


def image_data(img, path) -> np.ndarray:
    """The data array of a loaded NIfTI ``img``; a file whose data cannot be read (e.g. a
    truncated .nii.gz whose header survived) is a :class:`UserInputError` naming ``path``."""
    import zlib

    try:
        return np.asanyarray(img.dataobj)
    except (EOFError, OSError, ValueError, zlib.error) as err:
        raise UserInputError(
            f"The image data of {path} cannot be read ({err}): the file is truncated or "
            "corrupt. Copy or export it again.") from None


def check_input_images(runs) -> None:
    """Read every input image of ``runs`` once before anything runs (one file at a time), so
    a truncated or corrupt file, a magnitude without signal or a phase without any finite
    value is named with its file before processing starts, not as a failed step."""
    import nibabel as nib

    for run in runs:
        files = [(p, "magnitude") for p in (*run.magnitude, *run.body_magnitude)]
        files += [(p, "phase") for p in (*run.phase, *run.body_phase)]
        for path, part in files:
            data = image_data(nib.load(str(path)), path)
            if part == "magnitude":
                check_magnitude_signal(data, path)
            elif not np.issubdtype(data.dtype, np.integer) and not np.isfinite(data).any():
                raise UserInputError(
                    f"The phase image {path} holds no finite value. Re-export it from the "
                    "scanner or converter (or exclude this run with --bids-filter-file).")
            del data
