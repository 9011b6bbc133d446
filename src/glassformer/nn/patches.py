"""Patches as tokens: how an image becomes a sequence a transformer reads (ViT).

A vision transformer cuts the image into non-overlapping P x P squares, flattens each square
into one vector of `channels * P * P` numbers and maps it linearly to the residual stream's
width: a patch is to an image what a token is to a text. An 8 x 8 digit with P = 2 becomes a
sequence of 16 patch vectors of 4 pixels each, read in rows (left to right, top to bottom):

    image (B, ch, H, W) --patchify--> (B, N, ch*P*P) --Linear--> (B, N, C),  N = (H/P)(W/P)

The linear map applied to every patch is the same computation as a convolution whose kernel
and stride are both P (tests/test_vit.py checks the two against each other).

Attention does not know where a patch came from, so a position signal is added, as for text
(nn/positions.py). Besides the 1-D schemes over the patch sequence, a patch has a row and a
column, and two schemes here say so (registered as "learned-2d" and "sinusoidal-2d"):

- `LearnedGridPositions`: one trained vector per row plus one per column;
- `SinusoidalGridPositions`: half of the width is the sine table of the row, half that of the
  column (as in MAE, He et al. 2021), fixed.

    >>> patchify(torch.arange(16.0).view(1, 1, 4, 4), 2)
    tensor([[[ 0.,  1.,  4.,  5.],
             [ 2.,  3.,  6.,  7.],
             [ 8.,  9., 12., 13.],
             [10., 11., 14., 15.]]])
"""

import torch
from torch import nn

from glassformer.nn.embedding import sinusoidal_table


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, ch, H, W) images -> (B, N, ch*P*P) flattened P x P patches in row-major order."""
    B, ch, H, W = images.shape
    rows, cols = H // patch, W // patch
    x = images.reshape(B, ch, rows, patch, cols, patch)  # (B, ch, rows, P, cols, P)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, rows, cols, ch, P, P)
    return x.reshape(B, rows * cols, ch * patch * patch)  # (B, N, ch*P*P)


class PatchEmbedding(nn.Module):
    """`images (B, ch, H, W) -> patch vectors (B, N, d_model)`: a Linear on each flattened patch."""

    def __init__(self, channels: int, patch: int, d_model: int, bias: bool = True):
        super().__init__()
        self.patch = patch
        self.proj = nn.Linear(channels * patch * patch, d_model, bias=bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(patchify(images, self.patch))  # (B, N, C)


class LearnedGridPositions(nn.Module):
    """A trained vector per row plus one per column: `(T,) patch indices -> (T, d_model)`.

    Patch `i` sits at row `i // cols`, column `i % cols`; rows + cols vectors instead of
    rows * cols, and patches in one row share their row's vector.
    """

    def __init__(self, rows: int, cols: int, d_model: int):
        super().__init__()
        self.cols = cols
        self.row = nn.Parameter(torch.zeros(rows, d_model))
        self.col = nn.Parameter(torch.zeros(cols, d_model))
        nn.init.normal_(self.row, std=0.02)
        nn.init.normal_(self.col, std=0.02)

    def forward(self, pos: torch.Tensor) -> torch.Tensor:
        return self.row[pos // self.cols] + self.col[pos % self.cols]


class SinusoidalGridPositions(nn.Module):
    """[sine table of the row | sine table of the column], each d_model / 2 wide (a buffer).

    >>> SinusoidalGridPositions(2, 2, 4).table
    tensor([[0.0000, 1.0000, 0.0000, 1.0000],
            [0.0000, 1.0000, 0.8415, 0.5403],
            [0.8415, 0.5403, 0.0000, 1.0000],
            [0.8415, 0.5403, 0.8415, 0.5403]])
    """

    def __init__(self, rows: int, cols: int, d_model: int):
        super().__init__()
        if d_model % 4:
            raise ValueError(f"sinusoidal-2d positions need n_embd divisible by 4, got {d_model}")
        half = d_model // 2
        row = sinusoidal_table(rows, half)[:, None].expand(rows, cols, half)  # (rows, cols, C/2)
        col = sinusoidal_table(cols, half)[None].expand(rows, cols, half)  # (rows, cols, C/2)
        table = torch.cat((row, col), dim=-1).reshape(rows * cols, d_model)  # (N, C)
        self.register_buffer("table", table, persistent=False)

    def forward(self, pos: torch.Tensor) -> torch.Tensor:
        return self.table[pos]
