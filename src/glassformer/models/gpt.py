"""GPT: a decoder-only transformer language model.

    ids (B, T) --token embedding (x sqrt(C) beside sinusoidal positions) (+ positions)-->
        residual stream (B, T, C)
        --[Block] x n_layer--> final norm --LM head--> logits (B, T, vocab)

The logits at position t score every possible next token after ids[:, :t+1]; training
minimises the cross-entropy between them and the true next ids (`targets`).
"""

import math

import torch
from torch import nn

from glassformer.models.config import GPTConfig
from glassformer.nn.block import Block
from glassformer.nn.cross_entropy import cross_entropy
from glassformer.nn.embedding import LearnedPositions, TokenEmbedding
from glassformer.nn.hooks import HookPoint, name_hook_points
from glassformer.nn.init import init_normal
from glassformer.nn.kv_cache import KVCache
from glassformer.nn.norm import make_norm
from glassformer.nn.positions import POSITIONS


class GPT(nn.Module):
    """`GPT(config)(idx, targets=None) -> (logits, loss)`.

    >>> model = GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8))
    >>> logits, loss = model(torch.zeros(1, 5, dtype=torch.long))
    >>> logits.shape, loss
    (torch.Size([1, 5, 10]), None)
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        C = config.n_embd
        self.tok_emb = TokenEmbedding(config.vocab_size, C)
        self.embed_scale = config.embedding_scale  # sqrt(C) beside a sinusoidal table, else 1
        self.positions = POSITIONS[config.pos_emb]  # nn/positions.py
        self.pos_emb = self.positions.make_embedding(config)  # added to the tokens, or None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        # post-norm blocks already end in a norm; pre-norm needs one before the head
        self.ln_f = (
            make_norm(config.norm, C, config.bias, config.norm_eps)
            if config.norm_position == "pre"
            else nn.Identity()
        )
        self.lm_head = nn.Linear(C, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.tok_emb.weight
        self.hook_embed = HookPoint()  # (B, T, C) token embeddings
        self.hook_pos_embed = HookPoint()  # (T, C) position embeddings
        self.hook_final = HookPoint()  # (B, T, C) after the final norm
        self.hook_logits = HookPoint()  # (B, T, vocab)
        self._init_weights()
        self.hook_points = name_hook_points(self)

    def _init_weights(self) -> None:
        """GPT-2's init: N(0, 0.02), output projections scaled by 1/sqrt(2 * n_layer).

        Token embeddings that are scaled by sqrt(C) start at N(0, 1/C), as in the original
        transformer: after the scaling their entries have unit variance, like the table's.
        """
        init_normal(self, std=0.02)
        if self.embed_scale != 1.0:
            nn.init.normal_(self.tok_emb.weight, std=self.config.n_embd**-0.5)
        for block in self.blocks:
            for proj in (block.attn.proj, block.mlp.proj):
                if self.config.zero_init_proj:
                    nn.init.zeros_(proj.weight)
                else:
                    nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * self.config.n_layer))

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; by default without the position table (as GPT-2 papers count)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and isinstance(self.pos_emb, LearnedPositions):
            n -= self.pos_emb.weight.numel()
        return n

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        pos_offset: int = 0,
        cache: KVCache | None = None,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx: (B, T) token ids; targets: (B, T) next ids (-1 = ignore) -> (logits, loss).

        With a `cache` (nn/kv_cache.py), idx are the tokens after the cached ones: their
        positions continue from the cache and their keys and values are appended to it.
        `last_only` computes the logits of the last position only, (B, 1, V): all that
        generation needs, and the LM head is a large part of a long prompt's cost.
        """
        B, T = idx.shape
        if cache is not None:
            cache.begin(T)
            pos = cache.positions(T)  # (T,), or (B, T) for a left-padded batch
        else:
            pos = torch.arange(pos_offset, pos_offset + T, device=idx.device)  # (T,)
        if self.positions.max_length and int(pos.max()) >= self.config.block_size:
            raise ValueError(
                f"sequence of {int(pos.max()) + 1} tokens is longer than the context "
                f"({self.config.block_size}); crop it to the last {self.config.block_size}"
            )
        x = self.hook_embed(self.tok_emb(idx) * self.embed_scale)  # (B, T, C)
        if self.pos_emb is not None:
            x = x + self.hook_pos_embed(self.pos_emb(pos))  # (T, C) or (B, T, C)
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, pos, cache=None if cache is None else cache.layers[i])
        if cache is not None:
            cache.end(T)
        if last_only:
            x = x[:, -1:]  # (B, 1, C)
        logits = self.hook_logits(self.logits(self.hook_final(self.ln_f(x))))
        if targets is None:
            return logits, None
        loss = cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))  # fp32
        return logits, loss

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The LM head (unembedding), with optional soft-capping: (B, T, C) -> (B, T, V)."""
        logits = self.lm_head(x)
        cap = self.config.logit_softcap
        return cap * torch.tanh(logits / cap) if cap > 0 else logits
