"""Loading trained DeepQSM weights (the shipped file or one from ``train-deepqsm``)."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import UserInputError
from ._torch import require_torch

__all__ = ["DeepQSMModel", "default_weights_path", "load_model"]


def default_weights_path() -> Path:
    """The weights shipped in the package (``qsmprep/data/deepqsm/deepqsm.pt``)."""
    return Path(__file__).resolve().parents[2] / "data" / "deepqsm" / "deepqsm.pt"


@dataclass
class DeepQSMModel:
    """A network ready for inference and the conventions it was trained with.

    ``scale``: the network sees field x scale (ppm) and predicts chi x scale (ppm).
    ``voxel_size``: isotropic training grid (mm); B0 along array axis ``b0_axis``.
    ``residual``: inputs are (field, TKD of the field at ``tkd_threshold``).
    """

    net: object
    scale: float
    voxel_size: tuple
    b0_axis: int
    residual: bool
    tkd_threshold: float
    device: str
    meta: dict = field(default_factory=dict)

    @property
    def multiple(self) -> int:
        return self.net.multiple


def load_model(path=None, device: str = "cpu") -> DeepQSMModel:
    """Load weights written by :func:`qsmprep.training.deepqsm.export_weights`.

    ``path=None`` loads the shipped weights. ``device`` is ``"cpu"`` or ``"cuda"``.
    """
    torch = require_torch()
    from .unet import UNet3d

    path = Path(path) if path is not None else default_weights_path()
    if not path.exists():
        raise UserInputError(f"DeepQSM weights {path} do not exist. Give the deepqsm.pt written by "
                             "`qsmprep train-deepqsm` (in its --output-dir), or reinstall qsmprep "
                             "to restore the shipped weights.")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserInputError("DeepQSM: device 'cuda' was requested but PyTorch sees no CUDA GPU. "
                             "Use device 'cpu', or install a CUDA build of torch.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)  # tensors only
        arch = payload["arch"]
        net = UNet3d(base=arch["base"], depth=arch["depth"], dropout=arch["dropout"],
                     residual=arch.get("residual", False),
                     bias=arch.get("bias", True))
        net.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError, TypeError, ValueError, pickle.UnpicklingError) as exc:
        # weights_only refuses any pickled object that is not tensors and plain containers
        raise UserInputError(f"DeepQSM weights {path} could not be read ({exc}). Use a deepqsm.pt "
                             "written by `qsmprep train-deepqsm` with this qsmprep version.") from exc
    net.eval().to(device)
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    meta["path"] = str(path)
    return DeepQSMModel(net=net, scale=float(payload["scale"]),
                        voxel_size=tuple(float(v) for v in payload["voxel_size"]),
                        b0_axis=int(payload.get("b0_axis", 2)),
                        residual=bool(arch.get("residual", False)),
                        tkd_threshold=float(payload.get("tkd_threshold", 0.19)),
                        device=device, meta=meta)
