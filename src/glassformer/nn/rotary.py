"""Rotary position embedding (RoPE, Su et al. 2021): positions as rotations of q and k.

Each pair of channels (i, i + d/2) of a query or key at position `p` is rotated by the angle
`p * theta^(-2i/d)`. A dot product of two rotated vectors then depends on their positions only
through the offset between them, so attention sees relative positions without any table
added to the residual stream. The pairing (first half, second half) is the "rotate half"
layout used by GPT-NeoX and Llama.

    q_rot = q * cos + rotate_half(q) * sin,   rotate_half([a, b]) = [-b, a]

`forward` computes the same numbers in fewer ops than that line reads: rotate_half(x) * sin
equals x.roll(hs/2) * [-sin, sin] ([a, b] rolled by half is [b, a]), and the table keeps
[-sin, sin] ready.

Rotary scaling stretches a trained model to longer contexts by slowing some rotations down:
`linear` divides every frequency by `factor` (positions count `factor` times slower);
`llama3` (Llama 3.1/3.2) divides only the slow ones, those whose wavelength exceeds the
original context, leaves the fast ones alone and blends in between (`llama3_divisors`).
"""

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn


@dataclass(frozen=True)
class RotaryScaling:
    """How the rotary frequencies are slowed down: the config's `rope_*` fields, hashable."""

    kind: str = "none"  # none, linear, llama3
    factor: float = 1.0
    low_freq_factor: float = 1.0  # llama3: wavelengths past original_context / low: / factor
    high_freq_factor: float = 4.0  # llama3: wavelengths below original_context / high: kept
    original_context: int = 8192

    @classmethod
    def of(cls, config) -> "RotaryScaling":
        return cls(
            config.rope_scaling,
            config.rope_factor,
            config.rope_low_freq_factor,
            config.rope_high_freq_factor,
            config.rope_original_context,
        )


def llama3_divisors(inv_freq: torch.Tensor, s: RotaryScaling) -> torch.Tensor:
    """What Llama 3's rotary scaling divides each frequency by, (hs/2,) -> (hs/2,).

    A frequency's wavelength is 2 pi / freq tokens. Wavelengths shorter than
    original_context / high_freq_factor (the fast rotations, which resolve nearby tokens) are
    kept: divisor 1. Those longer than original_context / low_freq_factor (rotations the
    original training never saw complete) are divided by `factor`. In between, the inverse
    divisor blends linearly in original_context / wavelength:

        smooth = (original_context / wavelength - low) / (high - low)     in [0, 1]
        divisor = 1 / ((1 - smooth) / factor + smooth)

    This is the `rope_freqs` tensor llama.cpp's converter stores in a Llama 3 GGUF, and what
    transformers multiplies into its inverse frequencies. With the defaults (8192 tokens,
    low 1, high 4): a wavelength of 1000 tokens is kept, one of 10000 is divided by the
    factor, and one of 4096 (smooth = 1/3) gets 1 / (2/3 / 8 + 1/3) = 2.4 for factor 8:

    >>> s = RotaryScaling("llama3", factor=8.0)
    >>> wavelengths = torch.tensor([1000.0, 4096.0, 10000.0], dtype=torch.float64)
    >>> llama3_divisors(2 * math.pi / wavelengths, s).round(decimals=6).tolist()
    [1.0, 2.4, 8.0]
    """
    wavelength = 2 * math.pi / inv_freq
    low, high = s.low_freq_factor, s.high_freq_factor
    smooth = (s.original_context / wavelength - low) / (high - low)
    divisor = 1 / ((1 - smooth) / s.factor + smooth)
    divisor = torch.where(wavelength < s.original_context / high, 1.0, divisor)
    return torch.where(wavelength > s.original_context / low, s.factor, divisor)


def rotary_frequencies(head_dim: int, theta: float, scaling: RotaryScaling) -> torch.Tensor:
    """The angle per position of each channel pair, (hs/2,) in float64: theta^(-2i/hs),
    divided by the scaling's divisors.

    >>> rotary_frequencies(4, 100.0, RotaryScaling()).tolist()
    [1.0, 0.1]
    >>> rotary_frequencies(4, 100.0, RotaryScaling("linear", factor=2.0)).tolist()
    [0.5, 0.05]
    """
    inv_freq = theta ** (-torch.arange(0, head_dim, 2).double() / head_dim)  # (hs/2,)
    if scaling.kind == "linear":
        return inv_freq / scaling.factor
    if scaling.kind == "llama3":
        return inv_freq / llama3_divisors(inv_freq, scaling)
    return inv_freq


@lru_cache(maxsize=8)
def rotary_tables(
    head_dim: int, theta: float, n: int, scaling: RotaryScaling = RotaryScaling()
) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, [-sin, sin]) for positions 0..n-1, each (n, hs); one copy shared by every layer."""
    inv_freq = rotary_frequencies(head_dim, theta, scaling)  # (hs/2,)
    angles = torch.arange(n).double()[:, None] * inv_freq  # (n, hs/2)
    cos, sin = angles.cos().float(), angles.sin().float()
    # the same angle for channels i and i + hs/2; rotate_half's sign folded into the sines
    return torch.cat((cos, cos), dim=-1), torch.cat((-sin, sin), dim=-1)


class Rotary(nn.Module):
    """Holds the cos/sin tables for `max_positions` and rotates (B, nh, T, hs) tensors.

    The tables are shared: the 30 layers of a model (and models of the same head size) hold
    one copy, not 30 (SmolLM2's 8192 positions would otherwise take 126 MB).
    """

    def __init__(
        self,
        head_dim: int,
        max_positions: int,
        theta: float = 10000.0,
        scaling: RotaryScaling = RotaryScaling(),
    ):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary positions need an even head size, got {head_dim}")
        self.head_dim, self.theta, self.scaling = head_dim, theta, scaling
        self._build(max_positions)

    def _build(self, n: int) -> None:
        cos, sin_signed = rotary_tables(self.head_dim, self.theta, n, self.scaling)
        self.register_buffer("cos", cos, persistent=False)  # (n, hs)
        self.register_buffer("sin_signed", sin_signed, persistent=False)  # (n, hs)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Rotate `x` (B, nh, T, hs) whose T rows sit at absolute positions `pos` (T,).

        `pos` may also be (B, T): one row of positions per sequence (left-padded batches).
        """
        last = int(pos.max())
        if last >= self.cos.shape[0]:  # longer than planned: extend the tables
            self._build(2 * last + 1)
            self.cos, self.sin_signed = self.cos.to(x.device), self.sin_signed.to(x.device)
        cos = self.cos[pos].to(x.dtype)  # (T, hs) or (B, T, hs)
        sin = self.sin_signed[pos].to(x.dtype)
        if pos.dim() == 2:
            cos, sin = cos[:, None], sin[:, None]  # (B, 1, T, hs): broadcast over heads
        return x * cos + x.roll(self.head_dim // 2, -1) * sin  # = x cos + rotate_half(x) sin
