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
"""

from functools import lru_cache

import torch
from torch import nn


@lru_cache(maxsize=8)
def rotary_tables(head_dim: int, theta: float, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, [-sin, sin]) for positions 0..n-1, each (n, hs); one copy shared by every layer."""
    inv_freq = theta ** (-torch.arange(0, head_dim, 2).double() / head_dim)  # (hs/2,)
    angles = torch.arange(n).double()[:, None] * inv_freq  # (n, hs/2)
    cos, sin = angles.cos().float(), angles.sin().float()
    # the same angle for channels i and i + hs/2; rotate_half's sign folded into the sines
    return torch.cat((cos, cos), dim=-1), torch.cat((-sin, sin), dim=-1)


class Rotary(nn.Module):
    """Holds the cos/sin tables for `max_positions` and rotates (B, nh, T, hs) tensors.

    The tables are shared: the 30 layers of a model (and models of the same head size) hold
    one copy, not 30 (SmolLM2's 8192 positions would otherwise take 126 MB).
    """

    def __init__(self, head_dim: int, max_positions: int, theta: float = 10000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary positions need an even head size, got {head_dim}")
        self.head_dim, self.theta = head_dim, theta
        self._build(max_positions)

    def _build(self, n: int) -> None:
        cos, sin_signed = rotary_tables(self.head_dim, self.theta, n)
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
