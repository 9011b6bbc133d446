"""Encoder-decoder: the original transformer (Vaswani et al. 2017), e.g. for translation.

    source ids (B, S) --embed * sqrt(C) + sinusoidal positions--> [encoder Block] x n_layer
        --> memory (B, S, C)
    target ids (B, T) --embed * sqrt(C) + sinusoidal positions-->
        [Block: causal self-attention, cross-attention to memory, MLP] x n_dec_layer
        --> LM head (tied to the embedding) --> logits (B, T, vocab)

The encoder reads the whole source in both directions (the same `Block` as BERT's). The
decoder is a GPT whose every block also looks at the source through cross-attention (the
same `Block` with its cross-attention sublayer, nn/block.py), so
`target[t]` is predicted from `target[:t]` and the whole source. Training feeds the target
shifted right by one (teacher forcing: `[BOS] y1 y2` -> `y1 y2 y3`); generation starts from
`[BOS]` and appends the most likely token until `[EOS]` (greedy decoding: generate/seq2seq.py
drives `decoder_lm()`, the decoder with a KV cache, through the generation engine).

`cross_attention` says what the decoder sees of the source (`experiment cross-attention`
measures each): `full`, every encoder position (the transformer); `mean`, one vector, the
mean of the encoder's output over the real source tokens (the fixed-size summary that
encoder-decoders before attention passed on); `none`, nothing: the decoder blocks have no
cross-attention sublayer and read only their own prefix (the encoder still runs, unconnected).

Post-norm (`norm(x + f(x))`, the paper and Marian) or pre-norm (`x + f(norm(x))`, with a final
norm after each stack, as `torch.nn.Transformer(norm_first=True)`).

    >>> cfg = Seq2SeqConfig(vocab_size=20, block_size=16, n_layer=1, n_dec_layer=1, n_head=2,
    ...                     n_embd=8)
    >>> model = Seq2Seq(cfg)
    >>> logits, loss = model(torch.tensor([[5, 6, 7, 2]]), torch.tensor([[1, 9, 9]]))
    >>> logits.shape
    torch.Size([1, 3, 20])
"""

from dataclasses import dataclass, replace
from typing import Self

import torch
import torch.nn.functional as F
from torch import nn

from glassformer.core.fields import option
from glassformer.models.encoder import padding_mask
from glassformer.nn.block import Block
from glassformer.nn.config import TransformerConfig
from glassformer.nn.embedding import TokenEmbedding
from glassformer.nn.hooks import HookPoint, name_hook_points
from glassformer.nn.init import init_normal
from glassformer.nn.kv_cache import KVCache
from glassformer.nn.norm import make_norm
from glassformer.nn.positions import POSITIONS, SEQUENCE_POSITIONS


@dataclass
class Seq2SeqConfig(TransformerConfig):
    """The shared transformer fields with the original transformer's defaults, plus the
    decoder's."""

    n_layer: int = option(2, "encoder blocks", range="[1, 1024]")
    n_dec_layer: int = option(2, "decoder blocks", range="[1, 1024]")
    pos_emb: str = option("sinusoidal", "position signal", SEQUENCE_POSITIONS)
    emb_scale: str = option(
        "sqrt_d",
        "multiply token embeddings by sqrt(n_embd) (the paper, Marian): auto = with "
        "sinusoidal positions only",
        ("auto", "sqrt_d", "none"),
    )
    norm_position: str = option(
        "post", "post-norm (the paper, Marian) or pre-norm (+ a final norm)", ("pre", "post")
    )
    activation: str = option(
        "relu", "MLP activation", ("gelu", "gelu_tanh", "relu", "relu2", "silu", "swiglu")
    )
    cross_attention: str = option(
        "full",
        "what the decoder reads of the source: full = cross-attention to every encoder "
        "position; mean = to one vector, the mean of the encoder's output; none = no "
        "cross-attention sublayer (the decoder sees only its own prefix)",
        ("full", "mean", "none"),
    )
    head_bias: bool = option(False, "a bias on the output logits (Marian's final_logits_bias)")
    pad_id: int = option(0, "padding id (source and target)", range="[0, inf)")
    bos_id: int = option(
        1, "the id that starts every target (decoder start token)", range="[0, inf)"
    )
    eos_id: int = option(2, "the id that ends a target", range="[0, inf)")

    @classmethod
    def from_dict(cls, d: dict) -> Self:
        if "scale_embedding" in d:  # config.json before emb_scale: the same switch as a bool
            d = dict(d)
            d["emb_scale"] = "sqrt_d" if d.pop("scale_embedding") else "none"
        return super().from_dict(d)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("pad_id", "bos_id", "eos_id"):
            if getattr(self, name) >= self.vocab_size:
                raise ValueError(f"model.{name} must be below model.vocab_size")


def mean_memory(memory: torch.Tensor, src_mask: torch.Tensor | None) -> torch.Tensor:
    """The mean of memory (B, S, C) over the real source positions (src_mask 1) -> (B, 1, C)."""
    if src_mask is None:
        return memory.mean(1, keepdim=True)
    w = src_mask[:, :, None].to(memory.dtype)  # (B, S, 1)
    return (memory * w).sum(1, keepdim=True) / w.sum(1, keepdim=True)


class Seq2Seq(nn.Module):
    """`Seq2Seq(config)(src, tgt_in, targets=None, src_mask=None) -> (logits, loss)`."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = config
        C = config.n_embd
        self.tok_emb = TokenEmbedding(config.vocab_size, C)  # shared by source and target
        self.embed_scale = config.embedding_scale
        self.positions = POSITIONS[config.pos_emb]  # nn/positions.py
        self.pos_emb = self.positions.make_embedding(config)  # added to the tokens, or None
        self.drop = nn.Dropout(config.dropout)
        enc_cfg, dec_cfg = replace(config, causal=False), replace(config, causal=True)
        self.enc_blocks = nn.ModuleList(Block(enc_cfg) for _ in range(config.n_layer))
        cross = config.cross_attention != "none"
        self.dec_blocks = nn.ModuleList(
            Block(dec_cfg, cross_attention=cross) for _ in range(config.n_dec_layer)
        )
        pre = config.norm_position == "pre"
        norm = lambda: make_norm(config.norm, C, config.bias, config.norm_eps)  # noqa: E731
        self.enc_ln_f = norm() if pre else nn.Identity()
        self.dec_ln_f = norm() if pre else nn.Identity()
        self.lm_head = nn.Linear(C, config.vocab_size, bias=config.head_bias)
        if config.tie_weights:
            self.lm_head.weight = self.tok_emb.weight
        self.hook_memory = HookPoint()  # (B, S, C) the encoder's output
        self.hook_logits = HookPoint()  # (B, T, vocab)
        self._init_weights()
        self.hook_points = name_hook_points(self)

    def _init_weights(self) -> None:
        """Linear N(0, 0.02); embeddings N(0, 1/d_model) as in the original transformer."""
        init_normal(self, std=0.02, embedding_std=self.config.n_embd**-0.5)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _embed(
        self, ids: torch.Tensor, pos: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (B, T) at positions `pos` ((T,) or (B, T); default 0..T-1) -> (B, T, C), pos."""
        if pos is None:
            pos = torch.arange(ids.size(1), device=ids.device)  # (T,)
        if self.positions.max_length and int(pos.max()) >= self.config.block_size:
            raise ValueError(
                f"sequence of {int(pos.max()) + 1} tokens is longer than {self.config.block_size}"
            )
        x = self.tok_emb(ids) * self.embed_scale  # (B, T, C)
        if self.pos_emb is not None:
            x = x + self.pos_emb(pos)
        return self.drop(x), pos

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor | None = None) -> torch.Tensor:
        """src (B, S), src_mask (B, S) 1 = real token -> memory (B, S, C)."""
        x, pos = self._embed(src)
        mask = padding_mask(src_mask)  # (B, 1, 1, S)
        for block in self.enc_blocks:
            x = block(x, pos, mask)
        return self.hook_memory(self.enc_ln_f(x))

    def decode(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        src_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        last_only: bool = False,
    ) -> torch.Tensor:
        """tgt (B, T) target ids, memory (B, S, C) -> logits (B, T, vocab).

        With a `cache` (nn/kv_cache.py, shaped for `decoder_lm()`), tgt are the tokens after
        the cached ones, as in GPT's forward; `last_only` computes the last position's logits.
        """
        T = tgt.size(1)
        if cache is not None:
            cache.begin(T)
            pos = cache.positions(T)  # (T,), or (B, T) for rows of different lengths
        else:
            pos = torch.arange(T, device=tgt.device)  # (T,)
        x, pos = self._embed(tgt, pos)
        if self.config.cross_attention == "mean":
            memory, src_mask = mean_memory(memory, src_mask), None  # (B, 1, C)
        mask = padding_mask(src_mask)
        for i, block in enumerate(self.dec_blocks):
            layer = None if cache is None else cache.layers[i]
            x = block(x, pos, cache=layer, memory=memory, memory_mask=mask)
        if cache is not None:
            cache.end(T)
        if last_only:
            x = x[:, -1:]  # (B, 1, C)
        return self.hook_logits(self.lm_head(self.dec_ln_f(x)))

    def decoder_lm(self) -> "DecoderLM":
        """The decoder as a language model over target ids, given each row's memory: what
        the generation engine drives (generate/seq2seq.py)."""
        return DecoderLM(self)

    def forward(
        self,
        src: torch.Tensor,
        tgt_in: torch.Tensor,
        targets: torch.Tensor | None = None,
        src_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher forcing: logits (B, T, vocab) for `tgt_in`; loss vs `targets` (-1: ignored)."""
        logits = self.decode(tgt_in, self.encode(src, src_mask), src_mask)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(
            logits.view(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=-1
        )
        return logits, loss


class DecoderLM(nn.Module):
    """A view of a Seq2Seq's decoder that looks like a GPT to the generation engine: a config
    with its decoder's layers, and `forward(ids, cache, last_only, memory, memory_mask)`.

    The memory (B, S, C) and its mask (B, S) come per row, as the engine stacks them for the
    rows it runs; the weights are the Seq2Seq's own (nothing is copied).
    """

    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.model = model
        self.config = replace(model.config, n_layer=model.config.n_dec_layer, causal=True)

    def forward(
        self,
        ids: torch.Tensor,
        cache: KVCache | None = None,
        last_only: bool = False,
        memory: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, None]:
        return self.model.decode(ids, memory, memory_mask, cache, last_only), None
