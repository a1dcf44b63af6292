"""The DeepQSM network: a fully convolutional 3-D U-Net (Bollmann et al. 2019).

Bollmann S, Rasmussen KGB, Kristensen M, et al. "DeepQSM - using deep learning to solve
the dipole inversion for quantitative susceptibility mapping." NeuroImage 195 (2019)
373-383. Architecture after Ronneberger et al. (MICCAI 2015) / Cicek et al. (MICCAI
2016, 3-D U-Net): a contracting path of two 3x3x3 convolutions + ReLU per level with
2x2x2 max pooling, an expanding path of 2x2x2 stride-2 transposed convolutions followed
by two 3x3x3 convolutions + ReLU, skip connections by concatenation, and dropout at the
bottleneck during training. With ``depth`` poolings the input sides must be multiples
of ``2**depth`` (16 for the default depth 4); :func:`pad_multiple` pads, the output has
the input's size. There is no regularisation parameter: the prior is what the network
learned from synthetic shapes (see :mod:`.shapes`).

This module imports torch at import time; import it only through
:mod:`qsmprep.algorithms.deepqsm`'s lazy helpers.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["UNet3d", "pad_multiple"]


def _block(c_in: int, c_out: int, bias: bool = True) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, kernel_size=3, padding=1, bias=bias), nn.ReLU(inplace=True),
        nn.Conv3d(c_out, c_out, kernel_size=3, padding=1, bias=bias), nn.ReLU(inplace=True))


class UNet3d(nn.Module):
    """3-D U-Net mapping a field (ppm x ``scale``) to susceptibility (ppm x ``scale``).

    ``base`` channels at full resolution, doubled at each of ``depth`` levels;
    ``dropout`` is the Dropout3d probability at the bottleneck (active in train mode only).
    ``residual=True`` expects two input channels (field, TKD estimate) and predicts a
    correction added to the TKD channel: the network then learns to remove streaking and
    fill the dipole's cone of zeros instead of the whole inversion, which needs far fewer
    training steps (our CPU recipe) and is still regularisation-parameter free.
    ``bias=False`` drops every additive bias: convolutions, ReLU, max pooling and the
    transposed convolutions are then all positively homogeneous, so the network is exactly
    scale equivariant, ``net(a x) = a net(x)`` for ``a > 0`` (a "bias-free" CNN, Mohan et
    al., ICLR 2020). A field of 0.02 ppm brain tissue is then treated like a 0.2 ppm shape
    of the same geometry: the amplitude of the training shapes no longer matters.
    """

    def __init__(self, base: int = 8, depth: int = 4, dropout: float = 0.1,
                 residual: bool = False, out_channels: int = 1, bias: bool = True):
        super().__init__()
        self.depth = depth
        self.residual = residual
        in_channels = 2 if residual else 1
        chans = [base * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        c = in_channels
        for ch in chans[:-1]:
            self.down.append(_block(c, ch, bias))
            c = ch
        self.pool = nn.MaxPool3d(2)
        self.bottom = _block(chans[-2], chans[-1], bias)
        self.drop = nn.Dropout3d(dropout)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in reversed(range(depth)):
            self.up.append(nn.ConvTranspose3d(chans[i + 1], chans[i], kernel_size=2, stride=2,
                                              bias=bias))
            self.dec.append(_block(2 * chans[i], chans[i], bias))
        self.head = nn.Conv3d(chans[0], out_channels, kernel_size=1, bias=bias)
        if residual:  # start as the identity on the TKD channel
            nn.init.zeros_(self.head.weight)
            if bias:
                nn.init.zeros_(self.head.bias)

    @property
    def multiple(self) -> int:
        return 2 ** self.depth

    def forward(self, x):
        base = x[:, 1:2] if self.residual else None
        skips = []
        for blk in self.down:
            x = blk(x)
            skips.append(x)
            x = self.pool(x)
        x = self.drop(self.bottom(x))
        for up, dec in zip(self.up, self.dec):
            x = up(x)
            x = dec(torch.cat([x, skips.pop()], dim=1))
        out = self.head(x)
        return out + base if base is not None else out


def pad_multiple(x, multiple: int = 16):
    """Zero-pad the last three dims of ``x`` (N, C, X, Y, Z) up to multiples of ``multiple``.

    Returns the padded tensor and the slices that crop the network output back.
    """
    pads, slices = [], []
    for n in x.shape[-3:]:
        m = -(-n // multiple) * multiple
        lo = (m - n) // 2
        pads.append((lo, m - n - lo))
        slices.append(slice(lo, lo + n))
    flat = [p for pair in reversed(pads) for p in pair]  # F.pad wants last dim first
    return torch.nn.functional.pad(x, flat), (Ellipsis, *slices)
