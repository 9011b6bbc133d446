"""ALiBi (Press et al. 2022, "Train short, test long"): positions as a penalty on distance.

Nothing is added to the token embeddings and q, k are left alone. Instead every head adds to
its attention scores a bias proportional to how far back the key is:

    scores[h, i, j] = q_i . k_j / sqrt(hs)  -  slope[h] * (pos_i - pos_j)    (key j at or before i)

A head with a large slope looks mostly at its neighbours; one with a small slope reads far
back. The slopes are fixed, not learned: for n heads (n a power of two) the geometric sequence

    slope[h] = 2^(-8 (h + 1) / n),    h = 0..n-1        (4 heads: 1/4, 1/16, 1/64, 1/256)

For other head counts the paper (and BLOOM) take the n' = 2^floor(log2 n) slopes of n' heads,
then the remaining ones from every other slope of 2n' heads (the ones in between). The bias
depends on positions only through their difference, so there is no table to outgrow: a KV
cache can roll past the context (generate/context.py), as with rotary positions.

Keys after the query get the mirrored penalty -slope * (pos_j - pos_i), so a bidirectional
encoder sees distance both ways; a causal model masks them anyway.

Worked example: 4 heads, 3 positions. The slopes are 1/4, 1/16, 1/64, 1/256, and head 0's
bias is -1/4 times the distance between query (row) and key (column):

    >>> alibi_slopes(4)
    tensor([0.2500, 0.0625, 0.0156, 0.0039])
    >>> ALiBi(4)(torch.arange(3), torch.arange(3))[0, 0]  # (1, nh, Tq, Tk): batch 0, head 0
    tensor([[ 0.0000, -0.2500, -0.5000],
            [-0.2500,  0.0000, -0.2500],
            [-0.5000, -0.2500,  0.0000]])

With the causal mask the entries above the diagonal become -inf: query 2 scores key 0 at
-0.5, key 1 at -0.25 and itself at 0 before the softmax.
"""

import math

import torch
from torch import nn


def alibi_slopes(n_head: int) -> torch.Tensor:
    """The fixed slope of each head, (n_head,).

    >>> alibi_slopes(6)  # the 4 slopes of 4 heads, then 2^-1, 2^-3 of the 8 of 8 heads
    tensor([0.2500, 0.0625, 0.0156, 0.0039, 0.5000, 0.1250])
    """

    def geometric(n: int) -> list[float]:  # 2^(-8/n), 2^(-16/n), ..., 2^-8
        return [2 ** (-8 * (h + 1) / n) for h in range(n)]

    p = 2 ** math.floor(math.log2(n_head))  # the largest power of two ≤ n_head
    return torch.tensor(geometric(p) + geometric(2 * p)[0::2][: n_head - p])


class ALiBi(nn.Module):
    """`(q_pos, k_pos) -> bias (B or 1, nh, Tq, Tk)` added to the attention scores.

    Positions are (T,) or (B, T) (one row per sequence of a left-padded batch); the keys' may
    be a cache's, which after a roll do not start at 0 (nn/kv_cache.py: `key_positions`).
    """

    def __init__(self, n_head: int):
        super().__init__()
        self.register_buffer("slopes", alibi_slopes(n_head), persistent=False)  # (nh,)

    def forward(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        distance = (q_pos[..., :, None] - k_pos[..., None, :]).abs()  # (Tq, Tk) or (B, Tq, Tk)
        if distance.dim() == 2:
            distance = distance[None]  # (1, Tq, Tk): the same for every sequence
        slopes = self.slopes.float()[:, None, None]  # (nh, 1, 1)
        return -distance[:, None] * slopes  # (B or 1, nh, Tq, Tk), float32
