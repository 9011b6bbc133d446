"""Normalisation: keep each position's vector at a steady scale as it flows through blocks.

LayerNorm (Ba et al. 2016) centres and scales the features of each position:

    y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias

RMSNorm (Zhang & Sennrich 2019) skips the centring and the bias:

    y = x / sqrt(mean(x^2) + eps) * weight

Both act on the last dimension only, so every token is normalised on its own.
"""

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (GPT-2 has one; nanoGPT's small runs drop it)."""

    def __init__(self, dim: int, bias: bool = True, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


class RMSNorm(nn.Module):
    """Root-mean-square norm; `affine=False` gives the parameter-free variant."""

    def __init__(self, dim: int, eps: float = 1e-6, affine: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim)) if affine else None
        self.eps = eps
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (self.dim,), self.weight, self.eps)


def make_norm(kind: str, dim: int, bias: bool = True, eps: float = 1e-5) -> nn.Module:
    """`"layernorm"`, `"rmsnorm"`, `"rmsnorm-noaffine"` (no learned gain) or `"none"`.

    `"none"` is the identity: the model without normalisation, for the `norm` experiment.
    """
    if kind == "none":
        return nn.Identity()
    if kind == "layernorm":
        return LayerNorm(dim, bias=bias, eps=eps)
    if kind == "rmsnorm":
        return RMSNorm(dim, eps=eps)
    if kind == "rmsnorm-noaffine":
        return RMSNorm(dim, eps=eps, affine=False)
    raise ValueError(f"unknown norm {kind!r}; choose layernorm, rmsnorm, rmsnorm-noaffine or none")
