"""Token and position embeddings: how ids become vectors in the residual stream.

A token embedding is a lookup table: row `i` of a (vocab_size, d_model) matrix is the vector
for token `i`. Attention by itself ignores order, so a position signal is added:

- learned:    another table, one row per position 0..block_size-1 (GPT-2, BERT);
- sinusoidal: a fixed table of sines and cosines of geometrically spaced frequencies
              (Vaswani et al. 2017), no parameters;
- rotary:     nothing is added here; queries and keys are rotated inside attention
              (see `rotary.py`).
"""

import torch
from torch import nn


class TokenEmbedding(nn.Embedding):
    """`ids (B, T) -> vectors (B, T, d_model)`: row lookup in a (vocab, d_model) table."""


class LearnedPositions(nn.Module):
    """One trained vector per position: `(T,) positions -> (T, d_model)`."""

    def __init__(self, block_size: int, d_model: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(block_size, d_model))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, pos: torch.Tensor) -> torch.Tensor:
        return self.weight[pos]


def sinusoidal_table(
    n_positions: int, d_model: int, base: float = 10000.0, layout: str = "interleaved"
) -> torch.Tensor:
    """PE[pos, 2i] = sin(pos / base^(2i/d)), PE[pos, 2i+1] = cos(pos / base^(2i/d)).

    `layout="halves"` stores the same numbers as [all sines | all cosines] (Marian, fairseq).

    >>> sinusoidal_table(2, 4)
    tensor([[0.0000, 1.0000, 0.0000, 1.0000],
            [0.8415, 0.5403, 0.0100, 0.9999]])
    """
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]  # (P, 1)
    inv_freq = base ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (d/2,)
    angles = pos * inv_freq  # (P, d/2)
    if layout == "halves":
        return torch.cat((torch.sin(angles), torch.cos(angles[:, : d_model // 2])), 1).float()
    table = torch.zeros(n_positions, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles[:, : d_model // 2])
    return table.float()


class SinusoidalPositions(nn.Module):
    """The fixed sine/cosine table of the original transformer (a buffer, not a parameter)."""

    def __init__(
        self, block_size: int, d_model: int, base: float = 10000.0, layout: str = "interleaved"
    ):
        super().__init__()
        table = sinusoidal_table(block_size, d_model, base, layout)
        self.register_buffer("table", table, persistent=False)

    def forward(self, pos: torch.Tensor) -> torch.Tensor:
        return self.table[pos]
