"""Cross-attention: the decoder's positions look up information in the encoder's output.

Self-attention takes q, k and v from the same sequence. In cross-attention the queries come
from the decoder (what am I about to write?) and the keys and values from the encoder's
output, the "memory" (what does the source say?):

    q = x W_q            (B, Tq, C)   x: the decoder's residual stream
    k, v = memory W_kv   (B, Tk, C)   memory: the encoder's last hidden states
    z = softmax(q k^T / sqrt(hs) + padding mask) v

No causal mask: the whole source is known before decoding starts. The attention itself is
`attend` from `attention.py`, the same fast (or explicit, when hooked) code self-attention runs.
"""

import math

import torch
from torch import nn

from glassformer.nn.attention import attend
from glassformer.nn.config import TransformerConfig
from glassformer.nn.hooks import HookPoint


class CrossAttention(nn.Module):
    """Multi-head attention from `x` (queries) to `memory` (keys and values, fused)."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.n_head, self.head_dim = config.n_head, config.head_dim
        self.q = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.kv = nn.Linear(config.n_embd, 2 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.scale = 1.0 / math.sqrt(self.head_dim) if config.attn_scale else 1.0
        self.explicit = config.attn_impl == "explicit"
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()
        self.hook_pattern = HookPoint()  # (B, nh, Tq, Tk): where each target position looks
        self.hook_z = HookPoint()  # (B, nh, Tq, hs)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x: (B, Tq, C), memory: (B, Tk, C), mask: bool (B, 1, 1, Tk) or None -> (B, Tq, C)."""
        B, Tq, C = x.shape
        Tk = memory.size(1)
        q = self.q(x).view(B, Tq, self.n_head, self.head_dim).transpose(1, 2)  # (B, nh, Tq, hs)
        k, v = self.kv(memory).split(C, dim=2)  # 2 x (B, Tk, C)
        k = k.view(B, Tk, self.n_head, self.head_dim).transpose(1, 2)  # (B, nh, Tk, hs)
        v = v.view(B, Tk, self.n_head, self.head_dim).transpose(1, 2)  # (B, nh, Tk, hs)
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)
        dropout = self.dropout if self.training else 0.0
        z = attend(q, k, v, False, self.scale, mask, dropout, self.hook_pattern, self.explicit)
        z = self.hook_z(z)
        y = z.transpose(1, 2).contiguous().view(B, Tq, C)  # (B, Tq, C)
        return self.resid_dropout(self.proj(y))
