"""Optional-dependency guard: torch is imported only through :func:`require_torch`."""

from __future__ import annotations

from ...errors import UserInputError

INSTALL_HINT = 'pip install "qsmprep[deepqsm]"'


def require_torch():
    """Return the ``torch`` module or raise :class:`UserInputError` saying how to install it."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UserInputError(
            "DeepQSM needs PyTorch, which is not installed in this Python environment "
            f"({exc}). Install the optional extra with `{INSTALL_HINT}` (or `pip install torch`), "
            "or choose another dipole inversion method (e.g. --inversion l2).") from exc
    return torch
