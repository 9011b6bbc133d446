"""A transformer block: attention then MLP, each added to the residual stream.

Pre-norm (GPT-2 and most models since): normalise the input of each sublayer,

    x = x + attn(norm1(x))
    x = x + mlp(norm2(x))

Post-norm (the original transformer, BERT): normalise after each residual add,

    x = norm1(x + attn(x))
    x = norm2(x + mlp(x))

A decoder block of an encoder-decoder (`cross_attention=True`) has a third sublayer between
the two, by the same rule: the target positions look up the encoder's output (`memory`),

    x = x + cross(norm_cross(x), memory)            (pre-norm; post-norm likewise)

`residual_scale` (default 1) weighs the skip path, `x -> s * x + f(norm(x))`: 0 removes the
residual connection, so each block's output is its sublayers' alone (`experiment residual`).

Hook points name the residual stream before the block (`resid_pre`), after attention
(`resid_mid`), after cross-attention (`resid_cross`, decoder blocks only) and after the block
(`resid_post`), and each sublayer's output (`attn_out`, `cross_out`, `mlp_out`).
"""

from functools import partial

import torch
from torch import nn

from glassformer.nn.attention import SelfAttention
from glassformer.nn.config import TransformerConfig
from glassformer.nn.cross_attention import CrossAttention
from glassformer.nn.hooks import HookPoint
from glassformer.nn.kv_cache import LayerKV
from glassformer.nn.mlp import MLP
from glassformer.nn.norm import make_norm


class Block(nn.Module):
    """Self-attention, (with `cross_attention`) cross-attention to a memory, MLP.

    The norms' names are part of the checkpoint format: GPT-2's `ln_1`, `ln_2` in a plain
    block; in a decoder block Marian's three, `ln_self`, `ln_cross`, `ln_mlp`.
    """

    def __init__(self, config: TransformerConfig, cross_attention: bool = False):
        super().__init__()
        self.pre_norm = config.norm_position == "pre"
        self.skip = config.residual_scale  # 1: the residual connection; 0: none
        norm = partial(make_norm, config.norm, config.n_embd, config.bias, config.norm_eps)
        if cross_attention:
            self.ln_self = norm()
            self.attn = SelfAttention(config)
            self.ln_cross = norm()
            self.cross = CrossAttention(config)
            self.ln_mlp = norm()
        else:
            self.ln_1 = norm()
            self.attn = SelfAttention(config)
            self.ln_2 = norm()
            self.cross = None
        self.mlp = MLP(config)
        self.hook_resid_pre = HookPoint()
        self.hook_attn_out = HookPoint()
        self.hook_resid_mid = HookPoint()
        if cross_attention:
            self.hook_cross_out = HookPoint()
            self.hook_resid_cross = HookPoint()
        self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        mask: torch.Tensor | None = None,
        cache: LayerKV | None = None,
        memory: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: (B, T, C) residual stream at positions `pos` (T,) -> (B, T, C).

        `mask` (optional, bool, True = may attend) goes to self-attention, e.g. to hide
        padding; `cache` (optional) is this block's slice of a KV cache (see nn/kv_cache.py).
        A decoder block also takes `memory` (B, S, C), the encoder's output, and its padding
        mask `memory_mask` (B, 1, 1, S) or None.
        """
        x = self.hook_resid_pre(x)
        if self.cross is None:
            x = self._add(x, self.ln_1, self.attn, self.hook_attn_out, pos, mask, cache)
            x = self.hook_resid_mid(x)
            return self.hook_resid_post(self._add(x, self.ln_2, self.mlp, self.hook_mlp_out))
        x = self._add(x, self.ln_self, self.attn, self.hook_attn_out, pos, mask, cache)
        x = self.hook_resid_mid(x)
        x = self._add(x, self.ln_cross, self.cross, self.hook_cross_out, memory, memory_mask)
        x = self.hook_resid_cross(x)
        return self.hook_resid_post(self._add(x, self.ln_mlp, self.mlp, self.hook_mlp_out))

    def _add(self, x: torch.Tensor, norm, sublayer, hook_out, *args) -> torch.Tensor:
        """One residual sublayer: x + f(norm(x)) (pre-norm) or norm(x + f(x)) (post-norm);
        with `residual_scale` s < 1 the skip path carries s * x instead of x."""
        skip = x if self.skip == 1.0 else self.skip * x
        if self.pre_norm:
            return skip + hook_out(sublayer(norm(x), *args))
        return norm(skip + hook_out(sublayer(x, *args)))
