"""A transformer block: attention then MLP, each added to the residual stream.

Pre-norm (GPT-2 and most models since): normalise the input of each sublayer,

    x = x + attn(norm1(x))
    x = x + mlp(norm2(x))

Post-norm (the original transformer, BERT): normalise after each residual add,

    x = norm1(x + attn(x))
    x = norm2(x + mlp(x))

Hook points name the residual stream before the block (`resid_pre`), between the two
sublayers (`resid_mid`) and after it (`resid_post`), and each sublayer's output.
"""

import torch
from torch import nn

from glassformer.models.config import GPTConfig
from glassformer.nn.attention import SelfAttention
from glassformer.nn.hooks import HookPoint
from glassformer.nn.kv_cache import LayerKV
from glassformer.nn.mlp import MLP
from glassformer.nn.norm import make_norm


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.pre_norm = config.norm_position == "pre"
        self.ln_1 = make_norm(config.norm, config.n_embd, config.bias, config.norm_eps)
        self.attn = SelfAttention(config)
        self.ln_2 = make_norm(config.norm, config.n_embd, config.bias, config.norm_eps)
        self.mlp = MLP(config)
        self.hook_resid_pre = HookPoint()
        self.hook_attn_out = HookPoint()
        self.hook_resid_mid = HookPoint()
        self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        mask: torch.Tensor | None = None,
        cache: LayerKV | None = None,
    ) -> torch.Tensor:
        """x: (B, T, C) residual stream at positions `pos` (T,) -> (B, T, C).

        `mask` (optional, bool, True = may attend) goes to attention, e.g. to hide padding;
        `cache` (optional) is this block's slice of a KV cache (see nn/kv_cache.py).
        """
        x = self.hook_resid_pre(x)
        if self.pre_norm:
            a = self.attn(self.ln_1(x), pos, mask, cache)
            x = self.hook_resid_mid(x + self.hook_attn_out(a))
            return self.hook_resid_post(x + self.hook_mlp_out(self.mlp(self.ln_2(x))))
        a = self.attn(x, pos, mask, cache)
        x = self.hook_resid_mid(self.ln_1(x + self.hook_attn_out(a)))
        return self.hook_resid_post(self.ln_2(x + self.hook_mlp_out(self.mlp(x))))
