"""The run model: one gradient-echo run (its files, echo times, field strength) and its grid."""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

import nibabel as nb
import numpy as np

from ..algorithms.dipole import b0_direction_from_affine, voxel_size_from_affine
from ..errors import UserInputError


LOGGER = logging.getLogger("qsmprep.bids")

BIDS_VERSION = "1.10.0"
_LABEL_RE = re.compile(r"^[A-Za-z0-9]+$")
_SUFFIXES = {"megre": "MEGRE", "t2starw": "T2starw"}
_ENTITY_ALIASES = {
    "session": "session", "ses": "session",
    "acquisition": "acquisition", "acq": "acquisition",
    "reconstruction": "reconstruction", "rec": "reconstruction",
    "run": "run",
    "echo": "echo",
    "ceagent": "ceagent", "ce": "ceagent",
    "chunk": "chunk",
}
_FIXED_ENTITIES = {"subject", "sub", "suffix", "part", "extension", "datatype"}
_NAMING_HELP = (
    "qsmprep expects sub-<label>/[ses-<label>/]anat/sub-<label>_[ses-<label>_]"
    "echo-<n>_part-<mag|phase>_MEGRE.nii.gz (or a single-echo "
    "..._part-<mag|phase>_T2starw.nii.gz), each with a JSON sidecar giving EchoTime "
    "(seconds) and MagneticFieldStrength (tesla)"
)


# --------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class Run:
    """One magnitude/phase acquisition (all its echoes) to be processed together."""

    subject: str
    session: str | None
    acquisition: str | None
    reconstruction: str | None
    run: str | None
    suffix: str
    magnitude: tuple[str, ...]
    phase: tuple[str, ...]
    echo_times: tuple[float, ...]
    field_strength: float
    field_strength_source: str = "MagneticFieldStrength"  # or "ImagingFrequency" (see below)
    n_channels: int = 1                      # > 1: uncombined, channels on the 4th axis
    body_magnitude: tuple[str, ...] = ()     # body-coil reference (acq-<acq>body), if any
    body_phase: tuple[str, ...] = ()

    @property
    def uncombined(self) -> bool:
        """True for uncombined receive-channel images (4-D, channels on the 4th axis)."""
        return self.n_channels > 1

    @property
    def entities(self) -> dict[str, str]:
        """Identifying entities in BIDS order (absent ones left out)."""
        pairs = (("sub", self.subject), ("ses", self.session), ("acq", self.acquisition),
                 ("rec", self.reconstruction), ("run", self.run))
        return {k: v for k, v in pairs if v is not None}

    @property
    def prefix(self) -> str:
        """BIDS entity prefix for derivatives, e.g. ``sub-01_ses-1_acq-x_run-1``."""
        return "_".join(f"{k}-{v}" for k, v in self.entities.items())

    @property
    def name(self) -> str:
        """Unique identifier of the run (the same as :attr:`prefix`)."""
        return self.prefix

    @property
    def node_id(self) -> str:
        """:attr:`name` with only ``[A-Za-z0-9_]``, safe for nipype node names."""
        return re.sub(r"[^A-Za-z0-9_]", "_", self.prefix)

    @property
    def n_echoes(self) -> int:
        return len(self.echo_times)

    def sort_key(self):
        return (_natural(self.subject), _natural(self.session), _natural(self.acquisition),
                _natural(self.reconstruction), _natural(self.run), self.suffix)


@dataclass(frozen=True)
class RunGeometry:
    """Voxel grid of a run (from its first magnitude image's header)."""

    shape: tuple[int, int, int]
    voxel_size: tuple[float, float, float]
    b0_direction: tuple[float, float, float]
    affine: tuple[tuple[float, ...], ...]

    @property
    def b0_angle_deg(self) -> float:
        """Angle (degrees, 0-90) between B0 and the last array axis, sign ignored."""
        return math.degrees(math.acos(min(1.0, abs(self.b0_direction[2]))))


def _natural(value):
    """Sort key putting None first and numbers in numeric order ('2' < '10')."""
    if value is None:
        return (0, 0, "")
    if str(value).isdigit():
        return (1, int(value), str(value))
    return (2, 0, str(value))


# ---------------------------------------------------------------------- filters


def run_geometry(run: Run) -> RunGeometry:
    """Grid, voxel size (mm) and B0 direction (voxel coordinates) of a run."""
    shape, affine = _header(run.magnitude[0])
    try:
        b0 = b0_direction_from_affine(affine)
    except ValueError as err:
        raise UserInputError(
            f"{run.magnitude[0]}: {err}. qsmprep needs orthogonal voxel axes; fix the NIfTI "
            "header (sform/qform) or re-convert the DICOMs."
        ) from None
    return RunGeometry(
        shape=shape,
        voxel_size=tuple(float(v) for v in voxel_size_from_affine(affine)),
        b0_direction=tuple(float(v) for v in b0),
        affine=tuple(tuple(float(v) for v in row) for row in affine),
    )


def _header(path):
    shape, affine, _ = _header_channels(path)
    return shape, affine


def _sidecar_name(path) -> str:
    p = str(path)
    for ext in (".nii.gz", ".nii"):
        if p.endswith(ext):
            return p[: -len(ext)] + ".json"
    return p + ".json"


def _header_channels(path):
    """``(shape[:3], affine, n_channels)``; a 4th axis holds receive channels."""
    try:
        img = nb.load(path)
    except Exception as err:
        raise UserInputError(
            f"Cannot read {path} as a NIfTI image ({err}). Replace the file with a valid "
            ".nii/.nii.gz image."
        ) from None
    shape = tuple(int(n) for n in img.shape)
    if len(shape) < 3 or any(n != 1 for n in shape[4:]):
        raise UserInputError(
            f"{path} has shape {shape}; qsmprep needs one 3D volume per file (BIDS stores "
            "each echo and part in its own file), or 4D with uncombined receive channels on "
            "the 4th axis. Split the file per echo."
        )
    n_channels = shape[3] if len(shape) > 3 else 1  # a singleton 4th axis is a 3-D volume
    return shape[:3], np.asarray(img.affine, dtype=float), n_channels
