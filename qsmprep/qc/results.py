"""Checks of intermediate and final results: voxels removed by the echo-consistency check,
non-finite field voxels, NaN / empty / constant susceptibility maps. Pure functions
(see :mod:`qsmprep.qc` for the convention)."""

from __future__ import annotations

import numpy as np

from ..errors import QCError

__all__ = ["MAX_REMOVED_FRACTION", "CONSTANT_CHI_PPM", "consistency_warning", "drop_nonfinite",
           "check_chimap"]

# The echo-consistency check (qsmprep.algorithms.echoes.echofit.quality_mask) removes the dephased
# voxels next to air cavities: 0.32% of the brain on the 3 T head phantom (753 of 234,198
# voxels). Three times that, 1%, means unusually strong dephasing (7 T, long echoes, large
# cavities) or unwrapping errors, and the holes in the mask are then worth a look.
MAX_REMOVED_FRACTION = 0.01

# a susceptibility map whose range inside its mask is below this (ppm) is constant: brain
# tissue spans about 0.2 ppm (white matter to iron-rich nuclei), noise alone ~0.01 ppm
CONSTANT_CHI_PPM = 1e-6


def consistency_warning(removed: int, n_mask: int, applied: bool = True,
                        max_fraction: float = MAX_REMOVED_FRACTION) -> str | None:
    """Warning when the echo-consistency check removed (or, not ``applied``, flagged) more
    than ``max_fraction`` of the ``n_mask`` brain-mask voxels; None otherwise."""
    if n_mask <= 0 or removed <= max_fraction * n_mask:
        return None
    pct = 100.0 * removed / n_mask
    if applied:
        return (f"the echo consistency check removed {removed} voxels ({pct:.2g}% of the brain "
                f"mask, more than the {100 * max_fraction:g}% expected from dephasing next to "
                "air): their field jumps by over 0.3 wrap steps between neighbours (strong "
                "dephasing or unwrapping errors). They are outside the Chimap mask; look at "
                "the holes in the desc-total fieldmap and the mask.")
    return (f"the echo consistency check flagged {removed} voxels ({pct:.2g}% of the brain mask, "
            f"more than {100 * max_fraction:g}%) whose field jumps by over 0.3 wrap steps "
            "between neighbours, and they were kept (consistency mask off): check the "
            "desc-total fieldmap for unwrapping errors.")


def drop_nonfinite(data, mask, what: str):
    """Set non-finite voxels of ``data`` to 0 and take those inside ``mask`` out of it.

    Returns ``(data, mask, warning)``; the warning (None when all are finite) counts the
    voxels and names ``what`` (e.g. "total field")."""
    data = np.asarray(data)
    mask = np.asarray(mask, bool)
    bad = ~np.isfinite(data)
    if not bad.any():
        return data, mask, None
    inside = int((bad & mask).sum())
    data = np.where(bad, 0, data).astype(data.dtype, copy=False)
    mask = mask & ~bad
    return data, mask, (f"the {what} had {int(bad.sum())} non-finite (NaN/Inf) voxel(s), "
                        f"{inside} of them inside the mask; they were set to 0 and left out "
                        "of the mask.")


def check_chimap(chi, mask, source: str = "") -> None:
    """Raise :class:`QCError` when the susceptibility map cannot be trusted: an empty mask,
    a non-finite voxel inside it (FFT-based inversions spread a NaN over the whole map),
    or a map that is zero or constant inside it (within :data:`CONSTANT_CHI_PPM`)."""
    chi = np.asarray(chi)
    mask = np.asarray(mask, bool)
    where = f" computed from {source}" if source else ""
    if not mask.any():
        raise QCError(f"The susceptibility map{where} has an empty mask, so there is no voxel "
                      "to report; no Chimap was written. Check the brain mask and the voxels "
                      "removed by the echo consistency check and background removal.")
    inside = chi[mask]
    bad = int((~np.isfinite(inside)).sum())
    if bad:
        raise QCError(
            f"The susceptibility map{where} has {bad} NaN/infinite voxel(s) of {inside.size} "
            "inside its mask, so no Chimap was written. The inputs to the inversion were not "
            "finite (check the field maps in the work directory and the QC warnings above) or "
            "the method diverged: try another --inversion or a fixed --lambda.")
    spread = float(inside.max() - inside.min())
    if spread <= CONSTANT_CHI_PPM:
        kind = "zero everywhere" if float(np.abs(inside).max()) <= CONSTANT_CHI_PPM else "constant"
        raise QCError(
            f"The susceptibility map{where} is {kind} inside its mask ({inside.size} voxels, "
            f"range {spread:.3g} ppm), so no Chimap was written. Either the field it was "
            "computed from is empty (look at that file, and at the phase scaling and echo "
            "times on the console) or the regularisation removed everything: try a smaller "
            "fixed --lambda or another --inversion.")
