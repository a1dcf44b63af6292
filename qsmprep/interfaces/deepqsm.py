"""DeepQSM dipole inversion node (3-D U-Net trained on synthetic shapes; needs torch)."""

from __future__ import annotations

import numpy as np
from nipype.interfaces.base import (BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec,
                                    isdefined, traits)

from ..algorithms.reference import reference_to_mask_mean
from ..qc.results import check_chimap
from ._nifti import geometry, load, save_like

__all__ = ["DeepQSM", "deepqsm_mem_gb"]


def deepqsm_mem_gb(shape, voxel_size=(1.0, 1.0, 1.0), max_tile_voxels=4_000_000) -> float:
    """Memory estimate (GB): the volume regridded to 1 mm (a few float32 copies plus the
    TKD FFT) and one tile's activations (~100 float32 values per tile voxel)."""
    nvox = float(np.prod(shape)) * float(np.prod(voxel_size))  # voxels at 1 mm
    return max(0.5, (nvox * 4 * 16 + min(nvox, max_tile_voxels) * 4 * 100) / 1e9)


class _DeepQSMInputSpec(BaseInterfaceInputSpec):
    local_field = File(exists=True, mandatory=True, desc="local field (ppm)")
    mask = File(exists=True, mandatory=True, desc="mask of the local field")
    weights = File(exists=True, desc="deepqsm.pt from `qsmprep train-deepqsm`; shipped if unset")
    device = traits.Enum("cpu", "cuda", usedefault=True, desc="torch device")
    resolution = traits.Enum("native", "training", "isotropic", usedefault=True,
                             desc="grid the network runs on: the input grid if isotropic (else "
                                  "1 mm), the training voxel size (1 mm), or the finest input "
                                  "voxel size")
    max_tile_voxels = traits.Int(4_000_000, usedefault=True,
                                 desc="largest tile (voxels, with overlap); bounds memory")
    overlap = traits.Int(24, usedefault=True, desc="tile overlap per side (voxels)")
    n_threads = traits.Int(1, usedefault=True, nohash=True,
                           desc="torch CPU threads; not hashed, so other thread counts reuse the cache")


class _DeepQSMOutputSpec(TraitedSpec):
    chi = File(exists=True, desc="susceptibility (ppm), referenced to the mask mean")
    parameters = traits.Dict(desc="method parameters for the sidecar")


class DeepQSM(SimpleInterface):
    """Invert the local field with the DeepQSM U-Net; chi (ppm) referenced to the mask mean.

    Oblique B0 and anisotropic voxels are handled by regridding (see
    :mod:`qsmprep.algorithms.deepqsm.inference`). Raises UserInputError when torch is
    missing (``pip install "qsmprep[deepqsm]"``) or the weights cannot be read.
    """

    input_spec = _DeepQSMInputSpec
    output_spec = _DeepQSMOutputSpec

    def _run_interface(self, runtime):
        from ..algorithms.deepqsm import deepqsm, load_model

        field, img = load(self.inputs.local_field)
        mask = load(self.inputs.mask)[0] > 0
        vs, b0 = geometry(img)
        weights = self.inputs.weights if isdefined(self.inputs.weights) else None
        model = load_model(weights, device=self.inputs.device)
        chi = deepqsm(field, vs, b0, mask=mask, model=model, resolution=self.inputs.resolution,
                      max_tile_voxels=self.inputs.max_tile_voxels, overlap=self.inputs.overlap,
                      threads=self.inputs.n_threads)
        chi = reference_to_mask_mean(chi, mask)
        check_chimap(chi, mask, self.inputs.local_field)
        meta = model.meta
        self._results["chi"] = save_like(chi, img, "chi.nii.gz")
        self._results["parameters"] = {
            "Method": "DeepQSM (3-D U-Net trained on synthetic shapes, Bollmann et al. 2019)",
            "Weights": meta.get("path"), "TrainingSteps": meta.get("steps"),
            "Residual": model.residual, "TKDThreshold": model.tkd_threshold,
            "Resolution": self.inputs.resolution, "Device": self.inputs.device,
            "Regularisation": "none (learned prior)",
            "Reference": "mean inside the mask"}
        return runtime
