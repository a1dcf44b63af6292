"""Small NIfTI helpers shared by the interfaces (load as float32, save beside cwd)."""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np

from ..algorithms.dipole import b0_direction_from_affine, voxel_size_from_affine
from ..qc.inputs import image_data


def load(path, dtype=np.float32):
    """Return ``(data, image)``; data cast to ``dtype`` (None keeps it). A singleton 4th axis
    (a 3-D volume stored as 4-D) is dropped. A file whose data cannot be read (e.g. a
    truncated .nii.gz) is a :class:`~qsmprep.errors.UserInputError` naming it."""
    img = nib.load(str(path))
    data = image_data(img, path)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if dtype is not None:
        data = data.astype(dtype, copy=False)
    return data, img


def load_matching(path, ref_img, what):
    """Load ``path`` (4-D: the mean over the last axis) and check it lies on the voxel grid
    of ``ref_img`` (the field it goes with); a mismatch is a
    :class:`~qsmprep.errors.UserInputError` naming both files."""
    from ..errors import UserInputError

    data = load(path)[0]
    if data.ndim == 4:
        data = data.mean(axis=-1)
    if data.shape != tuple(ref_img.shape[:3]):
        raise UserInputError(
            f"The {what} image {path} has shape {data.shape}, but the field "
            f"{ref_img.get_filename()} has shape {tuple(ref_img.shape[:3])}. Give a {what} "
            f"image on the same voxel grid as the field (resample or pick the matching run).")
    return data


def geometry(img):
    """``(voxel_size_mm, b0_direction_in_voxel_coords)`` from a NIfTI image."""
    return voxel_size_from_affine(img.affine), b0_direction_from_affine(img.affine)


def save_like(data, ref_img, filename, dtype=np.float32) -> str:
    """Save ``data`` with ``ref_img``'s affine into the current directory; return the path."""
    arr = np.asarray(data).astype(dtype, copy=False)
    hdr = ref_img.header.copy()
    hdr.set_data_dtype(arr.dtype)
    if arr.ndim == 3:
        hdr.set_data_shape(arr.shape)
    out = nib.Nifti1Image(arr, ref_img.affine, hdr)
    out.header.set_xyzt_units("mm", "sec")
    out.header["scl_slope"] = 1.0
    out.header["scl_inter"] = 0.0
    path = os.path.abspath(filename)
    nib.save(out, path)
    return path


