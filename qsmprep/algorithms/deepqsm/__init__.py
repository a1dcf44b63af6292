"""DeepQSM: dipole inversion by a 3-D U-Net trained on synthetic shapes.

Bollmann S, et al. "DeepQSM - using deep learning to solve the dipole inversion for
quantitative susceptibility mapping." NeuroImage 195 (2019) 373-383.

torch is optional: importing this package does not import torch; the functions below
import it on first use and raise :class:`qsmprep.errors.UserInputError` with the install
command when it is missing. There is no regularisation parameter (no lambda): the prior
is what the network learned from the training shapes.

Public API (all lazy):

- :func:`load_model(path=None, device="cpu")` -> ``DeepQSMModel`` (shipped weights by default)
- :func:`deepqsm(field, voxel_size, b0_dir, mask=None, model=None, ...)` -> chi (ppm)
"""

from __future__ import annotations

from ._torch import INSTALL_HINT, require_torch

__all__ = ["require_torch", "INSTALL_HINT", "load_model", "deepqsm", "default_weights_path"]


def default_weights_path():
    from .model import default_weights_path as _p

    return _p()


def load_model(path=None, device="cpu"):
    from .model import load_model as _load

    return _load(path=path, device=device)


def deepqsm(field, voxel_size, b0_dir, mask=None, model=None, **kwargs):
    from .inference import deepqsm as _run

    return _run(field, voxel_size, b0_dir, mask=mask, model=model, **kwargs)
