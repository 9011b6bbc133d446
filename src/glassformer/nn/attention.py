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

Cosine attention (`cosine_attn`, Henry et al. 2020; Swin v2) L2-normalises q and k, so a
score is a cosine in [-1, 1] times a learned per-head temperature (initially 10):

    scores = exp(log_temp) * (q / |q|) @ (k / |k|)^T

An optional boolean `mask` (True = may attend) hides padding keys: BERT-style encoders use it.

A position scheme may add a `bias` to the scores (ALiBi: -slope * distance, nn/alibi.py),
computed from the positions of the queries and of the keys (the KV cache's keys when there is
one). The fused kernel takes it as its float mask, -inf where the causal, padding or window
mask hides a key; without such a scheme nothing of this runs.

Grouped-query attention (`n_kv_head` < `n_head`, Ainslie et al. 2023; Llama, SmolLM2): the
keys and values have fewer heads than the queries, and each K/V head serves a group of
n_head / n_kv_head consecutive query heads. With 9 query and 3 K/V heads, query heads 0-2 read
K/V head 0, heads 3-5 head 1, heads 6-8 head 2. The projection and the KV cache shrink by that
factor; the pattern still has one (T, T) map per query head.

Q/K norm (`qk_norm`) RMS-normalises each head's query and key before rotary positions, so a
score cannot grow without bound; with `qk_norm_weight` (Qwen3) a learned gain of head size
follows, one for the queries (`q_norm`) and one for the keys (`k_norm`), shared by the heads.
`qkv_bias` (Qwen2) puts biases on the q/k/v projection of an otherwise bias-free model.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from glassformer.nn.config import TransformerConfig
from glassformer.nn.hooks import HookPoint
from glassformer.nn.kv_cache import LayerKV
from glassformer.nn.positions import POSITIONS


def attention_pattern(
    q: torch.Tensor,
    k: torch.Tensor,
    causal: bool,
    scale: float,
    mask: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """softmax(q k^T * scale + bias + mask): where each query looks, shape (B, nh, Tq, Tk).

    q: (B, nh, Tq, hs), k: (B, nh, Tk, hs). With `causal`, query i (the last Tq of Tk
    positions) sees keys 0..i + (Tk - Tq). `mask` is an optional boolean tensor that
    broadcasts to (B, nh, Tq, Tk), True where attending is allowed; `bias` an optional float
    one added to the scores (a position scheme's, e.g. ALiBi).
    """
    scores = (q @ k.transpose(-2, -1)) * scale  # (B, nh, Tq, Tk)
    if bias is not None:
        scores = scores + bias  # float32: the softmax below runs in float32 anyway
    Tq, Tk = scores.shape[-2:]
    if causal:
        allowed = torch.ones(Tq, Tk, dtype=torch.bool, device=q.device).tril(Tk - Tq)
        scores = scores.masked_fill(~allowed, float("-inf"))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores.float(), dim=-1).to(q.dtype)


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool,
    scale: float,
    mask: torch.Tensor | None,
    dropout: float,
    hook_pattern: HookPoint,
    explicit: bool = False,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """pattern @ v for q (B, nh, Tq, hs), k, v (B, nkv, Tk, hs) -> z (B, nh, Tq, hs).

    nkv divides nh: each K/V head serves nh / nkv consecutive query heads (grouped-query
    attention; nkv = nh is plain multi-head attention). The fused kernel unless `explicit` or a
    hook listens on `hook_pattern`. Self- and cross-attention both call this, so the fast path
    and the readable path are one code. `bias` (B or 1, nh, Tq, Tk), float: added to the scores.
    """
    gqa = k.size(1) != q.size(1)
    if explicit or hook_pattern.hooks:
        if gqa:  # give every query head its group's keys and values
            group = q.size(1) // k.size(1)
            k = k.repeat_interleave(group, dim=1)  # (B, nh, Tk, hs)
            v = v.repeat_interleave(group, dim=1)  # (B, nh, Tk, hs)
        pattern = hook_pattern(attention_pattern(q, k, causal, scale, mask, bias))
        return F.dropout(pattern, dropout) @ v  # (B, nh, Tq, hs)
    if causal and (mask is not None or bias is not None):  # SDPA takes a mask or is_causal
        Tq, Tk = q.size(-2), k.size(-2)
        allowed = torch.ones(Tq, Tk, dtype=torch.bool, device=q.device).tril(Tk - Tq)
        mask = allowed if mask is None else mask & allowed
        causal = False
    if bias is not None:  # one float mask: the bias where a key may be seen, -inf elsewhere
        mask = bias if mask is None else bias.masked_fill(~mask, float("-inf"))
    if q.device.type == "cpu" and q.dtype == torch.bfloat16:
        # the CPU's bf16 fused kernel is up to 4x slower than its fp32 one at small head sizes
        # and never faster (measured, docs/performance.md): attend in fp32, return bf16
        with torch.autocast("cpu", enabled=False):
            z = F.scaled_dot_product_attention(
                q.float(), k.float(), v.float(), mask, dropout, causal, scale=scale, enable_gqa=gqa
            )
        return z.to(q.dtype)  # (B, nh, Tq, hs)
    if mask is not None and mask.is_floating_point():
        mask = mask.to(q.dtype)  # the bias (float32) in the kernel's dtype (bf16 autocast)
    return F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, is_causal=causal, dropout_p=dropout, scale=scale, enable_gqa=gqa
    )  # (B, nh, Tq, hs)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused QKV projection (causal per `config.causal`).

    The fused projection is (n_head + 2 * n_kv_head) * head_dim wide: the queries, then the
    keys and the values of the K/V heads (3 * n_embd without grouped-query attention).
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.n_head, self.head_dim = config.n_head, config.head_dim
        self.n_kv_head = config.kv_heads
        width = (self.n_head + 2 * self.n_kv_head) * self.head_dim
        self.qkv = nn.Linear(config.n_embd, width, bias=config.bias or config.qkv_bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.causal = config.causal
        self.scale = 1.0 / math.sqrt(self.head_dim) if config.attn_scale else 1.0
        self.explicit = config.attn_impl == "explicit"
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)
        # a position scheme that acts on q and k (rotary), or None: nn/positions.py
        self.rotation = POSITIONS[config.pos_emb].make_rotation(config)
        # a position scheme that adds a bias to the scores (alibi), or None: nn/positions.py
        self.score_bias = POSITIONS[config.pos_emb].make_score_bias(config)
        self.qk_norm = config.qk_norm
        self.qk_eps = config.norm_eps if config.qk_norm_weight else None  # None: torch's eps
        if config.qk_norm_weight:  # (hs,) each, shared by every query (key) head
            self.q_norm = nn.Parameter(torch.ones(self.head_dim))
            self.k_norm = nn.Parameter(torch.ones(self.head_dim))
        self.log_temp = (
            nn.Parameter(torch.full((self.n_head,), math.log(10.0))) if config.cosine_attn else None
        )
        # q: (B, nh, T, hs); k, v: (B, nkv, T, hs), the K/V heads before they are shared
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()
        self.hook_pattern = HookPoint()  # (B, nh, T, T)
        self.hook_z = HookPoint()  # (B, nh, T, hs): each head's output before the projection

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        mask: torch.Tensor | None = None,
        cache: LayerKV | None = None,
    ) -> torch.Tensor:
        """x: (B, T, C) at absolute positions `pos` (T,) or (B, T) -> (B, T, C).

        `mask`: optional bool, broadcastable to (B, nh, T, T), True where attending is allowed
        (an encoder's padding mask is (B, 1, 1, T)). `cache`: this layer's slice of a
        `KVCache`; the new k, v are appended to it and the queries see all cached keys
        (the cache supplies the mask: bottom-right causal, padding hidden, and the positions
        of its keys to a score bias).
        """
        B, T, C = x.shape
        nh, nkv, hs = self.n_head, self.n_kv_head, self.head_dim  # (tp: this process's heads)
        heads = self.qkv(x).view(B, T, nh + 2 * nkv, hs).transpose(1, 2)  # (B, nh+2nkv, T, hs)
        # q and k are neighbours in the fused projection: normalise and rotate them as one
        # tensor (the same numbers in half the calls of doing each alone)
        qk, v = heads.split((nh + nkv, nkv), dim=1)  # (B, nh + nkv, T, hs), (B, nkv, T, hs)
        if self.qk_norm:
            qk = F.rms_norm(qk, (hs,), eps=self.qk_eps)
            if self.qk_eps is not None:  # the gains: nh rows of q_norm, then nkv of k_norm
                gain = torch.cat((self.q_norm.expand(nh, hs), self.k_norm.expand(nkv, hs)))
                qk = qk * gain[:, None, :].to(qk.dtype)  # (nh + nkv, 1, hs): over B and T
        if self.rotation is not None:
            qk = self.rotation(qk, pos)
        q, k = qk.split((nh, nkv), dim=1)  # (B, nh, T, hs), (B, nkv, T, hs)
        scale = self.scale
        if self.log_temp is not None:  # cosine attention: unit q and k, learned temperature
            q = F.normalize(q, dim=-1) * self.log_temp.exp().view(1, -1, 1, 1).to(q.dtype)
            k, scale = F.normalize(k, dim=-1), 1.0
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)
        dropout = self.dropout if self.training else 0.0
        causal = self.causal
        if cache is not None:
            k, v = cache.update(k, v)  # (B, nkv, Tk, hs): cached keys + the new ones
            mask, causal = cache.attention_mask()
        bias = None
        if self.score_bias is not None:  # (B or 1, nh, T, Tk) from query and key positions
            bias = self.score_bias(pos, pos if cache is None else cache.key_positions(T))
        z = attend(q, k, v, causal, scale, mask, dropout, self.hook_pattern, self.explicit, bias)
        z = self.hook_z(z)
        y = z.transpose(1, 2).reshape(B, T, nh * hs)  # (B, T, nh * hs): C, or tp's share
        return self.resid_dropout(self.proj(y))
