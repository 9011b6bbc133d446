"""Multi-head self-attention: each position gathers information from the others.

For every position the input vector is projected to a query q, a key k and a value v (one
fused Linear produces all three). Per head, with hs = head size:

    scores  = q @ k^T / sqrt(hs)            (T, T): how well each query matches each key
    scores  = scores + mask                 causal: -inf above the diagonal (no peeking ahead)
    pattern = softmax(scores, dim=-1)       each row sums to 1: where this position looks
    z       = pattern @ v                   (T, hs): the weighted mix of the values

The heads' outputs are concatenated and projected back to the residual stream.

Two code paths compute the same thing: `F.scaled_dot_product_attention` (a fused kernel that
never materialises the (T, T) pattern: fast, little memory) and the explicit lines above. The
explicit path runs when the config asks for it or when something is listening on
`hook_pattern`, so the pattern can be inspected although training uses the fused kernel.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from glassformer.models.config import GPTConfig
from glassformer.nn.hooks import HookPoint
from glassformer.nn.rotary import Rotary


def attention_pattern(
    q: torch.Tensor,
    k: torch.Tensor,
    causal: bool,
    scale: float,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """softmax(q k^T * scale + mask): where each query looks, shape (B, nh, Tq, Tk).

    q: (B, nh, Tq, hs), k: (B, nh, Tk, hs). With `causal`, query i (the last Tq of Tk
    positions) sees keys 0..i + (Tk - Tq). `mask` is an optional boolean tensor that
    broadcasts to (B, nh, Tq, Tk), True where attending is allowed.
    """
    scores = (q @ k.transpose(-2, -1)) * scale  # (B, nh, Tq, Tk)
    Tq, Tk = scores.shape[-2:]
    if causal:
        allowed = torch.ones(Tq, Tk, dtype=torch.bool, device=q.device).tril(Tk - Tq)
        scores = scores.masked_fill(~allowed, float("-inf"))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores.float(), dim=-1).to(q.dtype)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused QKV projection (causal per `config.causal`)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head, self.head_dim = config.n_head, config.head_dim
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.causal = config.causal
        self.scale = 1.0 / math.sqrt(self.head_dim) if config.attn_scale else 1.0
        self.explicit = config.attn_impl == "explicit"
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)
        self.rotary = (
            Rotary(self.head_dim, config.block_size, config.rope_theta)
            if config.pos_emb == "rotary"
            else None
        )
        self.qk_norm = config.qk_norm
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()
        self.hook_pattern = HookPoint()  # (B, nh, T, T)
        self.hook_z = HookPoint()  # (B, nh, T, hs): each head's output before the projection

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C) at absolute positions `pos` (T,) -> (B, T, C)."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, nh, T, hs)
        if self.qk_norm:
            q = F.rms_norm(q, (self.head_dim,))
            k = F.rms_norm(k, (self.head_dim,))
        if self.rotary is not None:
            q, k = self.rotary(q, pos), self.rotary(k, pos)
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)
        dropout = self.dropout if self.training else 0.0
        if self.explicit or self.hook_pattern.hooks:
            pattern = self.hook_pattern(attention_pattern(q, k, self.causal, self.scale))
            z = F.dropout(pattern, dropout) @ v  # (B, nh, T, hs)
        else:
            z = F.scaled_dot_product_attention(
                q, k, v, is_causal=self.causal, dropout_p=dropout, scale=self.scale
            )  # (B, nh, T, hs)
        z = self.hook_z(z)
        y = z.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, nh * hs) = (B, T, C)
        return self.resid_dropout(self.proj(y))
