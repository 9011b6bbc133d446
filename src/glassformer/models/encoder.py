"""Encoder (BERT-style): every token sees every other token, both directions at once.

    ids (B, T) --token + position + token-type embeddings--> LayerNorm --> residual stream
        --[Block, no causal mask, padding keys hidden] x n_layer--> hidden (B, T, C)
        --heads--> masked-LM logits (B, T, vocab) | class logits (B, n_classes) | sentence vector

The blocks are the same `Block`s the GPT uses, with `causal=False` and (as in BERT) post-norm:
`x = norm(x + attn(x))`. A decoder predicts the next token; an encoder reads the whole text,
so it is trained by hiding tokens (`[MASK]`) and predicting them (masked-LM, `tasks/mlm.py`),
or with a label for the whole sequence (classification, from the `[CLS]` position).

Padding: sequences in a batch have different lengths, so short ones are padded. The padding
mask (B, T) (1 = real token) becomes a (B, 1, 1, T) attention mask: no query looks at a pad.

Sentence embeddings (sentence-transformers' recipe for MiniLM): the mean of the hidden states
of the real tokens, L2-normalised, so the cosine of two sentences is a dot product.

    >>> enc = Encoder(EncoderConfig(vocab_size=30, block_size=16, n_layer=1, n_head=2, n_embd=8))
    >>> ids = torch.tensor([[2, 7, 9, 3, 0], [2, 5, 3, 0, 0]])
    >>> enc.sentence_embedding(ids, attention_mask=ids != 0).shape
    torch.Size([2, 8])
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from glassformer.core.fields import option
from glassformer.nn.block import Block
from glassformer.nn.config import TransformerConfig
from glassformer.nn.embedding import TokenEmbedding
from glassformer.nn.hooks import HookPoint, name_hook_points
from glassformer.nn.init import init_normal
from glassformer.nn.mlp import ACTIVATIONS
from glassformer.nn.norm import make_norm
from glassformer.nn.positions import POSITIONS


@dataclass
class EncoderConfig(TransformerConfig):
    """The shared transformer fields with BERT's defaults, plus the encoder's own ones."""

    causal: bool = option(False, "mask the future (an encoder sees both directions: False)")
    norm_position: str = option(
        "post", "post-norm as in BERT (norm(x + f(x))) or pre-norm", ("pre", "post")
    )
    norm_eps: float = option(
        1e-12, "epsilon of the normalisation layers (BERT: 1e-12)", range="(0, 1]"
    )
    dropout: float = option(
        0.1, "dropout on embeddings, attention and residual adds", range="[0, 1)"
    )
    type_vocab_size: int = option(
        2, "token types (segment A / B); 0: no token-type embedding", range="[0, 1024]"
    )
    pad_id: int = option(0, "id of the padding token", range="[0, inf)")
    mlm_head: bool = option(True, "include the masked-LM head")
    pooler: bool = option(False, "BERT's pooler: tanh(Linear(hidden at [CLS]))")
    n_classes: int = option(
        0, "outputs of the classification head (0: none)", range=f"[0, {2**20}]"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pad_id >= self.vocab_size:
            raise ValueError("model.pad_id must be below model.vocab_size")


class MLMHead(nn.Module):
    """BERT's masked-LM head: Linear -> activation -> norm -> unembedding (tied) + bias."""

    def __init__(self, config: EncoderConfig, tok_emb: nn.Embedding):
        super().__init__()
        C = config.n_embd
        self.dense = nn.Linear(C, C)
        self.act = ACTIVATIONS[config.activation]
        self.norm = make_norm(config.norm, C, config.bias, config.norm_eps)
        self.decoder = nn.Linear(C, config.vocab_size, bias=True)
        if config.tie_weights:
            self.decoder.weight = tok_emb.weight

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(self.act(self.dense(h))))  # (B, T, vocab)


def padding_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, T) with 1 / True for real tokens -> (B, 1, 1, T) bool: which keys may be attended."""
    if attention_mask is None:
        return None
    return attention_mask.bool()[:, None, None, :]


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of the hidden states of real tokens: (B, T, C), (B, T) -> (B, C)."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    m = attention_mask.to(hidden.dtype)[:, :, None]  # (B, T, 1)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)


class Encoder(nn.Module):
    """A BERT-style encoder: `encode(...) -> hidden`, `forward(...) -> (mlm logits, loss)`."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        C = config.n_embd
        self.tok_emb = TokenEmbedding(config.vocab_size, C)
        self.embed_scale = config.embedding_scale  # sqrt(C) beside a sinusoidal table, else 1
        self.positions = POSITIONS[config.pos_emb]  # nn/positions.py
        self.pos_emb = self.positions.make_embedding(config)  # added to the tokens, or None
        self.type_emb = nn.Embedding(config.type_vocab_size, C) if config.type_vocab_size else None
        self.ln_emb = make_norm(config.norm, C, config.bias, config.norm_eps)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = (
            make_norm(config.norm, C, config.bias, config.norm_eps)
            if config.norm_position == "pre"
            else nn.Identity()
        )
        self.mlm = MLMHead(config, self.tok_emb) if config.mlm_head else None
        self.pooler = nn.Linear(C, C) if config.pooler else None
        self.classifier = nn.Linear(C, config.n_classes) if config.n_classes else None
        self.hook_embed = HookPoint()  # (B, T, C) all embeddings summed and normalised
        self.hook_final = HookPoint()  # (B, T, C) the encoder's output
        self._init_weights()
        self.hook_points = name_hook_points(self)

    def _init_weights(self) -> None:
        """BERT's init: N(0, 0.02) for Linear and Embedding weights, zero biases; token
        embeddings scaled by sqrt(C) start at N(0, 1/C) (the original transformer's)."""
        init_normal(self, std=0.02)
        if self.embed_scale != 1.0:
            nn.init.normal_(self.tok_emb.weight, std=self.config.n_embd**-0.5)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def encode(
        self,
        idx: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """idx (B, T), attention_mask (B, T) 1 = real token -> hidden states (B, T, C)."""
        B, T = idx.shape
        if T > self.config.block_size and self.positions.max_length:
            raise ValueError(
                f"sequence of {T} tokens is longer than the encoder's {self.config.block_size}"
            )
        pos = torch.arange(T, device=idx.device)  # (T,)
        x = self.tok_emb(idx) * self.embed_scale  # (B, T, C)
        if self.pos_emb is not None:
            x = x + self.pos_emb(pos)  # (T, C) broadcast over B
        if self.type_emb is not None:
            types = torch.zeros_like(idx) if token_type_ids is None else token_type_ids
            x = x + self.type_emb(types)
        x = self.drop(self.hook_embed(self.ln_emb(x)))
        mask = padding_mask(attention_mask)  # (B, 1, 1, T) or None
        for block in self.blocks:
            x = block(x, pos, mask)
        return self.hook_final(self.ln_f(x))

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Masked-LM: logits (B, T, vocab) and, given targets (-1 = not masked), the loss."""
        if self.mlm is None:
            raise ValueError("this encoder has no masked-LM head (config.mlm_head is False)")
        logits = self.mlm(self.encode(idx, attention_mask))
        if targets is None:
            return logits, None
        loss = F.cross_entropy(
            logits.view(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=-1
        )
        return logits, loss

    def classify(
        self,
        idx: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Class logits (B, n_classes) from the first ([CLS]) position, and the loss."""
        if self.classifier is None:
            raise ValueError("this encoder has no classification head (config.n_classes is 0)")
        h = self.encode(idx, attention_mask)[:, 0]  # (B, C): the [CLS] position
        if self.pooler is not None:
            h = torch.tanh(self.pooler(h))
        logits = self.classifier(self.drop(h))
        loss = None if labels is None else F.cross_entropy(logits.float(), labels)
        return logits, loss

    def sentence_embedding(
        self, idx: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean-pooled, L2-normalised hidden states: (B, T) -> (B, C) unit vectors."""
        return F.normalize(mean_pool(self.encode(idx, attention_mask), attention_mask), dim=-1)
