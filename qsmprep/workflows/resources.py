"""Memory and thread estimates of every node, from the volume size (one place).

``mem_gb`` is what the MultiProc/cluster schedulers reserve; threads (``n_procs``) are the
FFT workers and are not part of a node's cache key, so a re-run with other resources
reuses finished steps.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Sizes", "volume_gb"]


def volume_gb(shape, copies: float = 12.0, n_volumes: int = 1) -> float:
    """GB of ``copies`` float32 copies of ``n_volumes`` volumes of ``shape`` padded for FFT
    (x1.5 per axis), at least 0.2."""
    nvox = float(np.prod(shape)) * 3.4
    return max(0.2, nvox * 4 * copies * max(1, n_volumes) / 1e9)


class Sizes:
    """The estimates of one run: ``shape``, ``voxel_size``, echoes and channels."""

    def __init__(self, shape, voxel_size, n_echoes: int, n_channels: int = 1):
        self.shape, self.voxel_size = tuple(shape), tuple(voxel_size)
        self.n_echoes, self.n_channels = int(n_echoes), int(n_channels)

    @property
    def volume(self) -> float:
        """A node holding about a dozen padded volumes (FFT solvers)."""
        return volume_gb(self.shape)

    @property
    def echoes(self) -> float:
        """A node holding four copies of every echo (reading, masking, fitting)."""
        return volume_gb(self.shape, 4, self.n_echoes)

    @property
    def channels(self) -> float:
        """Coil combination: three copies of every echo of every channel."""
        return volume_gb(self.shape, 3, self.n_echoes * self.n_channels)

    def stage(self, stage: str, method: str = "") -> float:
        """The estimate of a stage's node (its method where that matters)."""
        if stage == "coils":
            return self.channels
        if stage in ("mask", "phase_offset", "echoes", "r2star", "read"):
            return self.echoes
        if stage == "unwrap":
            return self.echoes + self.volume
        if stage == "background":
            return 2 * self.volume
        if stage == "inversion":
            if method == "deepqsm":
                from ..interfaces.deepqsm import deepqsm_mem_gb

                return deepqsm_mem_gb(self.shape, self.voxel_size)
            if method == "tfi":
                return 6 * self.volume
            if method == "preconditioned":
                return self.echoes + 4 * self.volume
            return 4 * self.volume
        raise ValueError(f"no estimate for stage {stage!r}")
