"""Rotary position embedding (RoPE, Su et al. 2021): positions as rotations of q and k.

Each pair of channels (i, i + d/2) of a query or key at position `p` is rotated by the angle
`p * theta^(-2i/d)`. A dot product of two rotated vectors then depends on their positions only
through the offset between them, so attention sees relative positions without any table
added to the residual stream. The pairing (first half, second half) is the "rotate half"
layout used by GPT-NeoX and Llama.

    q_rot = q * cos + rotate_half(q) * sin,   rotate_half([a, b]) = [-b, a]
"""

import torch
from torch import nn


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """[a, b] -> [-b, a] on the last dimension (a and b are its two halves)."""
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Rotary(nn.Module):
    """Holds the cos/sin tables for `max_positions` and rotates (B, nh, T, hs) tensors."""

    def __init__(self, head_dim: int, max_positions: int, theta: float = 10000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary positions need an even head size, got {head_dim}")
        self.head_dim, self.theta = head_dim, theta
        self._build(max_positions)

    def _build(self, n: int) -> None:
        inv_freq = self.theta ** (-torch.arange(0, self.head_dim, 2).double() / self.head_dim)
        angles = torch.arange(n).double()[:, None] * inv_freq  # (n, hs/2)
        angles = torch.cat((angles, angles), dim=-1)  # (n, hs): same angle for i and i + hs/2
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Rotate `x` (B, nh, T, hs) whose T rows sit at absolute positions `pos` (T,).

        `pos` may also be (B, T): one row of positions per sequence (left-padded batches).
        """
        last = int(pos.max())
        if last >= self.cos.shape[0]:  # longer than planned: extend the tables
            self._build(2 * last + 1)
            self.cos, self.sin = self.cos.to(x.device), self.sin.to(x.device)
        cos, sin = self.cos[pos].to(x.dtype), self.sin[pos].to(x.dtype)  # (T, hs) or (B, T, hs)
        if pos.dim() == 2:
            cos, sin = cos[:, None], sin[:, None]  # (B, 1, T, hs): broadcast over heads
        return x * cos + rotate_half(x) * sin
