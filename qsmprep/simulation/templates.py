"""The MNI152 (ICBM 2009a symmetric) grey/white-matter templates the head phantom is built on.

The 1 mm probability maps ship inside the ``nilearn`` package
(``nilearn/datasets/data/mni_icbm152_{gm,wm,t1}_tal_nlin_sym_09a_converted.nii.gz``;
Fonov et al., NeuroImage 2011, "Unbiased average age-appropriate atlases for pediatric
studies"). They are read with nibabel from the installed package's folder, found with
:func:`importlib.util.find_spec`, so nilearn itself is never imported (slow) and nothing
is downloaded.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from ..errors import UserInputError

__all__ = ["MniTemplates", "load_mni_templates", "template_folder"]

_NAMES = {"gm": "gm", "wm": "wm", "t1": "t1"}
PAD_MM = 40  # the distance map reaches this far outside the template's field of view


@dataclass(frozen=True)
class MniTemplates:
    """Template maps on the 1 mm MNI grid padded by :data:`PAD_MM` voxels per side.

    ``gm``/``wm``: probabilities in [0, 1] (float32); ``brain``: the template's brain
    (T1 > 0, brain plus internal CSF) as a probability (0/1, float32);
    ``distance``: distance (mm) from the brain outside it, 0 inside (float32), on the
    same grid subsampled by 2 (2 mm voxels, ``distance_origin``; computed at 2 mm for
    speed, ~0.5 mm error once interpolated, finer than the scalp/skull shells need);
    ``origin``: MNI coordinate (mm) of voxel (0, 0, 0).
    """

    gm: np.ndarray
    wm: np.ndarray
    brain: np.ndarray
    distance: np.ndarray
    origin: tuple
    distance_origin: tuple


def template_folder() -> Path:
    spec = importlib.util.find_spec("nilearn")
    if spec is None or spec.origin is None:
        raise UserInputError(
            "The head phantom is built from the MNI152 grey/white-matter templates that ship "
            "with the nilearn package, which is not installed in this Python environment. "
            "Install it with `pip install 'nilearn>=0.10'` (it is only read from disk, never "
            "imported, and nothing is downloaded) and run the simulation again.")
    return Path(spec.origin).parent / "datasets" / "data"


def _read(folder: Path, name: str):
    path = folder / f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz"
    if not path.is_file():
        raise UserInputError(
            f"The MNI152 template {path} is missing from the installed nilearn package. "
            "Reinstall it with `pip install --force-reinstall 'nilearn>=0.10'` and run the "
            "simulation again.")
    img = nib.load(str(path))
    return np.asarray(img.dataobj, dtype=np.float32), img.affine


@functools.lru_cache(maxsize=1)
def load_mni_templates() -> MniTemplates:
    """Read (once per process) and pad the templates; see :class:`MniTemplates`."""
    folder = template_folder()
    gm, aff = _read(folder, "gm")
    wm, _ = _read(folder, "wm")
    t1, _ = _read(folder, "t1")
    if not np.allclose(np.abs(np.diag(aff)[:3]), 1.0) or not np.allclose(aff[:3, :3],
                                                                          np.diag(np.diag(aff)[:3])):
        raise UserInputError(f"unexpected MNI template affine in {folder}; expected 1 mm, axis-aligned")
    pad = PAD_MM
    gm = np.pad(gm / 255.0, pad)
    wm = np.pad(wm / 255.0, pad)
    brain = np.pad(t1 > 0, pad)
    # keep the largest connected piece: one closed brain surface
    lab, n = ndimage.label(brain)
    if n > 1:
        sizes = ndimage.sum(brain, lab, range(1, n + 1))
        brain = lab == (1 + int(np.argmax(sizes)))
    coarse = brain[1::2, 1::2, 1::2]  # 2 mm samples centred on odd 1 mm voxels
    distance = ndimage.distance_transform_edt(~coarse, sampling=2.0).astype(np.float32)
    # the coarse grid's inside/outside boundary lies between samples: subtract half a
    # coarse voxel outside so the interpolated distance is ~0 at the true surface
    distance = np.maximum(distance - 1.0, 0.0)
    origin = tuple(float(o) - pad for o in aff[:3, 3])
    return MniTemplates(gm.astype(np.float32), wm.astype(np.float32), brain.astype(np.float32),
                        distance, origin, tuple(o + 1.0 for o in origin))
