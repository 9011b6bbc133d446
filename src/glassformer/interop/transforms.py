"""Tensors that a foreign format stores in another layout than ours, and the way back.

A row of the architecture table (`architectures.py`) names one of these when a tensor is not
just renamed. Each `Transform` maps the foreign layout to ours (`read`) and, where we write that
format, back (`write`); both see our config, for the head counts.

    >>> TRANSPOSE.read(torch.zeros(3, 5), None).shape          # GPT-2's Conv1D (in, out)
    torch.Size([5, 3])
    >>> unpermute_rotary(torch.tensor([[0.], [2.], [1.], [3.]]), 1).flatten().tolist()
    [0.0, 1.0, 2.0, 3.0]
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Transform:
    """What is done to a tensor between the foreign layout and ours."""

    name: str
    read: Callable  # (foreign tensor, our config) -> our tensor
    write: Callable | None = None  # (our tensor, our config) -> foreign tensor; None: not written


def unpermute_rotary(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Undo llama.cpp's interleaving of each head's rows of W_q / W_k: (nh * hs, C) -> same.

    Within each head, Hugging Face (and our `Rotary`) pairs channel i with channel i + hs/2
    ("rotate half"); llama.cpp pairs 2i with 2i + 1, so its converter stored a head's rows
    (0, hs/2, 1, hs/2 + 1, ...) as (0, 1, 2, 3, ...): view each head as (hs/2, 2) pairs and swap
    the two axes back to (2, hs/2), exactly as transformers' GGUF loader does.
    """
    rows, cols = w.shape
    hs = rows // n_heads
    return w.view(n_heads, hs // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


def qkv_sizes(config) -> tuple[int, int, int]:
    """Rows of q, k and v in our fused `attn.qkv` (grouped-query: k and v have fewer heads)."""
    kv = config.kv_heads * config.head_dim
    return config.n_head * config.head_dim, kv, kv


def _unrotate_qk(qkv: torch.Tensor, config) -> torch.Tensor:
    q, k, v = qkv.split(qkv_sizes(config))
    return torch.cat([unpermute_rotary(q, config.n_head), unpermute_rotary(k, config.kv_heads), v])


# GPT-2's Conv1D computes x @ W + b with W stored (in, out); a Linear stores W as (out, in)
TRANSPOSE = Transform(
    "Conv1D (in, out) <-> Linear (out, in)", lambda t, c: t.t(), lambda t, c: t.t()
)
# llama.cpp's converter reorders the rows of W_q and W_k (see unpermute_rotary)
LLAMA_CPP_ROTARY = Transform("llama.cpp's interleaved q / k rows", _unrotate_qk)
# a (1, V) row stored for a (V,) vector (Marian's final_logits_bias)
ROW = Transform("(1, n) <-> (n,)", lambda t, c: t.reshape(-1), lambda t, c: t[None])
