"""`TransformerConfig`: the architectural choices every transformer family shares.

The parts in nn/ (attention, MLP, norms, blocks, positions) read their settings from it; each
family extends it with its own fields and defaults (models/config.py: `GPTConfig`,
models/encoder.py: `EncoderConfig`, models/seq2seq.py: `Seq2SeqConfig`). Each field's `help`
is what `glassformer train --help` prints for `--model.FIELD`.

    >>> c = TransformerConfig(n_embd=576, n_head=9, n_kv_head=3)
    >>> c.head_dim, c.kv_heads
    (64, 3)
"""

import math
from dataclasses import asdict, dataclass, fields
from typing import Self

from glassformer.core.fields import check_fields, option
from glassformer.nn.positions import SEQUENCE_POSITIONS


@dataclass
class TransformerConfig:
    vocab_size: int = option(
        65, "number of token ids the model knows (set from the tokenizer)", range=f"[1, {2**24}]"
    )
    block_size: int = option(
        128, "context length: the most tokens the model sees at once", range=f"[1, {2**24}]"
    )
    n_layer: int = option(4, "number of transformer blocks", range="[1, 1024]")
    n_head: int = option(4, "attention heads per block", range="[1, 4096]")
    n_kv_head: int = option(
        0,
        "key/value heads per block, each shared by n_head / n_kv_head query heads "
        "(grouped-query attention); 0: one per query head",
        range="[0, 4096]",
    )
    n_embd: int = option(128, "width of the residual stream (d_model)", range="[1, 65536]")
    mlp_ratio: float = option(
        4.0, "MLP hidden width as a multiple of n_embd (SwiGLU: x 2/3)", range="(0, 64]"
    )
    mlp_hidden: int = option(
        0, "MLP hidden width; 0: derived from mlp_ratio", range=f"[0, {2**20}]"
    )
    dropout: float = option(
        0.0, "dropout probability on embeddings, attention and residual adds", range="[0, 1)"
    )
    bias: bool = option(True, "biases in Linear layers and LayerNorm")
    pos_emb: str = option(
        "learned",
        "position signal: learned table, fixed sinusoidal table, rotary q/k rotation, alibi "
        "(a per-head penalty on distance added to the attention scores), or none",
        SEQUENCE_POSITIONS,
    )
    emb_scale: str = option(
        "auto",
        "multiply token embeddings by sqrt(n_embd), as the original transformer does, so a "
        "fixed ±1 sinusoidal table does not drown them: auto = with sinusoidal positions only",
        ("auto", "sqrt_d", "none"),
    )
    rope_theta: float = option(10000.0, "rotary base frequency", range="(0, inf)")
    rope_scaling: str = option(
        "none",
        "rotary scaling for contexts past the trained one: linear divides every frequency by "
        "rope_factor; llama3 (Llama 3.1/3.2) divides the slow ones only (nn/rotary.py)",
        ("none", "linear", "llama3"),
    )
    rope_factor: float = option(
        1.0, "rotary scaling: what the scaled frequencies are divided by", range="(0, inf)"
    )
    rope_low_freq_factor: float = option(
        1.0,
        "llama3 rotary scaling: wavelengths longer than rope_original_context / this are "
        "divided by rope_factor",
        range="(0, inf)",
    )
    rope_high_freq_factor: float = option(
        4.0,
        "llama3 rotary scaling: wavelengths shorter than rope_original_context / this are kept",
        range="(0, inf)",
    )
    rope_original_context: int = option(
        8192,
        "llama3 rotary scaling: the context length trained before scaling",
        range=f"[1, {2**24}]",
    )
    sinusoid_layout: str = option(
        "interleaved",
        "sinusoidal table: sin/cos interleaved (the paper) or halves (Marian, fairseq)",
        ("interleaved", "halves"),
    )
    norm: str = option(
        "layernorm",
        "normalisation layer (none: no normalisation at all)",
        ("layernorm", "rmsnorm", "rmsnorm-noaffine", "none"),
    )
    norm_position: str = option(
        "pre", "pre-norm (x + f(norm(x))) or post-norm (norm(x + f(x)))", ("pre", "post")
    )
    norm_eps: float = option(1e-5, "epsilon of the normalisation layers", range="(0, 1]")
    activation: str = option(
        "gelu", "MLP activation", ("gelu", "gelu_tanh", "relu", "relu2", "silu", "swiglu")
    )
    tie_weights: bool = option(True, "share the token embedding matrix with the LM head")
    causal: bool = option(True, "mask the future in self-attention (False lets tokens peek ahead)")
    attn_scale: bool = option(True, "divide attention scores by sqrt(head size)")
    qk_norm: bool = option(False, "RMS-normalise queries and keys per head before the dot product")
    qk_norm_weight: bool = option(
        False,
        "with qk_norm: a learned gain of head size on the queries' norm and one on the keys' "
        "(shared by all heads; eps = norm_eps), as Qwen3 has",
    )
    qkv_bias: bool = option(
        False, "biases on the query/key/value projection even when bias is off (Qwen2)"
    )
    cosine_attn: bool = option(
        False, "cosine attention: L2-normalise q and k, scale by a learned per-head temperature"
    )
    attn_impl: str = option(
        "sdpa",
        "attention kernel: torch's fused scaled_dot_product_attention or the explicit math",
        ("sdpa", "explicit"),
    )
    # the GPT's LM head and init read these two; every family's config.json carries them
    logit_softcap: float = option(
        0.0, "if > 0, logits = cap * tanh(logits / cap)", range="[0, inf)"
    )
    zero_init_proj: bool = option(False, "start output projections of attention and MLP at zero")
    residual_scale: float = option(
        1.0,
        "weight of the skip path in every block, x -> s * x + f(norm(x)): 1 is the residual "
        "connection, 0 removes it (what breaks: glassformer experiment residual)",
        range="[0, 1]",
    )

    def __post_init__(self) -> None:
        check_fields(self, "model")  # types, finiteness, choices and the ranges above
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.qk_norm_weight and not self.qk_norm:
            raise ValueError("qk_norm_weight needs qk_norm; set qk_norm true as well")
        if (
            self.rope_scaling == "llama3"
            and self.rope_high_freq_factor <= self.rope_low_freq_factor
        ):
            raise ValueError(
                f"rope_high_freq_factor ({self.rope_high_freq_factor}) must exceed "
                f"rope_low_freq_factor ({self.rope_low_freq_factor}) for llama3 rotary scaling"
            )
        if self.n_head % self.kv_heads:
            raise ValueError(
                f"n_head ({self.n_head}) must be a multiple of n_kv_head ({self.n_kv_head}); "
                "0 gives every query head its own key/value head"
            )

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def embedding_scale(self) -> float:
        """The factor on token embeddings: sqrt(n_embd), or 1.

        >>> TransformerConfig(n_embd=64, pos_emb="sinusoidal").embedding_scale
        8.0
        >>> TransformerConfig(n_embd=64, pos_emb="learned").embedding_scale
        1.0
        """
        sinusoidal = self.pos_emb in ("sinusoidal", "sinusoidal-2d")
        on = self.emb_scale == "sqrt_d" or (self.emb_scale == "auto" and sinusoidal)
        return math.sqrt(self.n_embd) if on else 1.0

    @property
    def kv_heads(self) -> int:
        """Key/value heads: n_kv_head, or n_head (plain multi-head attention) when it is 0."""
        return self.n_kv_head or self.n_head

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Self:
        # a config.json written before emb_scale existed: its model trained unscaled
        d = {"emb_scale": "none", **d}
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {', '.join(sorted(unknown))}")
        return cls(**d)
