"""Where the group level's regions come from, and reading label images and their names.

Three sources (``atlas`` column of the tables):

``labels``  a label image already on each run's GRE grid, from a path pattern
            (``--labels '/seg/sub-{subject}_dseg.nii.gz'``);
``t1w``     a segmentation in a T1w space (``--t1w-labels``) beside a T1w image (``--t1w``),
            registered rigidly onto the run's GRE magnitude (:mod:`.register`);
``truth``   the label image ``qsmprep simulate`` writes under
            ``BIDS_DIR/derivatives/qsmprep-truth``.

Names come from the BIDS ``dseg.tsv`` beside the image (columns ``index`` and ``name``);
label 0 is background and never a region.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import nibabel as nib
import numpy as np

from ..errors import UserInputError

__all__ = ["fill_pattern", "read_label_names", "load_label_image", "truth_label_path",
           "same_grid"]

_FIELDS = ("subject", "session", "acquisition", "reconstruction", "run")


def fill_pattern(pattern: str, entities: dict, flag: str) -> Path:
    """``pattern`` with ``{subject}``, ``{session}``, ``{acquisition}``, ``{reconstruction}``
    and ``{run}`` replaced by the run's labels (without their BIDS prefixes)."""
    used = set(re.findall(r"{(\w+)}", pattern))
    unknown = sorted(used - set(_FIELDS))
    if unknown:
        raise UserInputError(
            f"{flag} {pattern!r} names {{{unknown[0]}}}, which is not one of "
            + ", ".join("{" + f + "}" for f in _FIELDS) + ". Fix the pattern and run again.")
    missing = sorted(f for f in used if entities.get(f) is None)
    if missing:
        raise UserInputError(
            f"{flag} {pattern!r} uses {{{missing[0]}}}, but the run sub-{entities['subject']} "
            f"has no {missing[0]} label. Leave {{{missing[0]}}} out of the pattern, or select "
            "only the runs that have it.")
    return Path(pattern.format(**{f: entities.get(f) or "" for f in _FIELDS}))


def _tsv_of(image: Path) -> Path:
    name = image.name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return image.with_name(name[: -len(ext)] + ".tsv")
    return image.with_suffix(".tsv")


def read_label_names(image: Path, present=()) -> tuple[dict, str | None]:
    """``({index: name}, note)`` from the ``.tsv`` beside ``image`` (BIDS dseg: columns
    ``index`` and ``name``). Without one, the labels ``present`` are named ``label-<n>`` and
    the note says so. Label 0 (background) is dropped."""
    tsv = _tsv_of(Path(image))
    if not tsv.is_file():
        names = {int(i): f"label-{int(i)}" for i in present if int(i) != 0}
        return names, (f"{tsv.name} (the label names) is missing beside {image}; regions are "
                       "named label-<n>.")
    with tsv.open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows or not {"index", "name"} <= set(rows[0]):
        raise UserInputError(
            f"{tsv} needs the BIDS dseg.tsv columns 'index' and 'name' (tab-separated, one "
            "row per label). Fix the file, or remove it to name the regions label-<n>.")
    try:
        names = {int(r["index"]): r["name"] for r in rows}
    except ValueError as exc:
        raise UserInputError(f"{tsv}: the 'index' column must hold integers ({exc}). Fix the "
                             "file and run again.") from exc
    names.pop(0, None)
    return names, None


def load_label_image(path: Path, flag: str):
    """``(integer labels, affine)`` of a label image, or one paragraph naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(
            f"The label image {path} (from {flag}) does not exist. Check the pattern: "
            "{subject}, {session}, {acquisition}, {reconstruction} and {run} are replaced by "
            "each run's labels, without the sub-/ses- prefixes.")
    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises several kinds for a broken file
        raise UserInputError(f"The label image {path} (from {flag}) cannot be read as NIfTI "
                             f"({exc}). Give a .nii or .nii.gz label image.") from exc
    data = np.squeeze(data)
    if data.ndim != 3:
        raise UserInputError(f"The label image {path} (from {flag}) has shape {data.shape}; a "
                             "3-D image of integer labels is needed.")
    if np.issubdtype(data.dtype, np.floating) and not np.allclose(data, np.round(data)):
        raise UserInputError(f"The label image {path} (from {flag}) holds non-integer values; "
                             "it must be a segmentation (dseg) of integer labels, not a "
                             "probability map.")
    return np.round(data).astype(np.int32), img.affine


def same_grid(shape_a, affine_a, shape_b, affine_b, tol_mm=0.01) -> bool:
    """Whether two images share a voxel grid (shape, and affine within ``tol_mm``)."""
    return (tuple(shape_a)[:3] == tuple(shape_b)[:3]
            and np.allclose(affine_a, affine_b, atol=tol_mm))


def truth_label_path(bids_dir: Path, prefix: str, subject: str, session) -> Path:
    """Where ``qsmprep simulate`` writes the labels of run ``prefix``."""
    folder = Path(bids_dir) / "derivatives" / "qsmprep-truth" / f"sub-{subject}"
    if session:
        folder = folder / f"ses-{session}"
    return folder / "anat" / f"{prefix}_dseg.nii.gz"
