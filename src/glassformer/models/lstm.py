"""LSTM language model: the recurrent baseline that transformers replaced.

    ids (B, T) --embedding--> [LSTM layer] x n_layer --> Linear --> logits (B, T, vocab)

An LSTM reads the sequence one position after another: the state after token t is a function
of the state after token t-1, so the T steps of one sequence cannot run at the same time. A
transformer's attention computes all T positions at once (one big matrix product), which is
why it trains faster on parallel hardware for the same sequence length; see
`benchmarks/transformer_vs_lstm.py` for the measurement. Same interface as `GPT`:
`model(idx, targets) -> (logits, loss)`, so the same trainer and sampler drive it.

    >>> m = LSTMLanguageModel(LSTMConfig(vocab_size=10, n_embd=16, n_layer=1))
    >>> logits, loss = m(torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 5, dtype=torch.long))
    >>> logits.shape, round(loss.item(), 1)
    (torch.Size([2, 5, 10]), 2.3)
"""

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from glassformer.core.fields import check_fields, option


@dataclass
class LSTMConfig:
    vocab_size: int = option(
        65, "number of token ids (set from the tokenizer)", range=f"[1, {2**24}]"
    )
    block_size: int = option(
        128, "training sequence length (an LSTM itself has no limit)", range=f"[1, {2**24}]"
    )
    n_layer: int = option(2, "stacked LSTM layers", range="[1, 1024]")
    n_embd: int = option(256, "embedding and hidden-state width", range="[1, 65536]")
    dropout: float = option(0.0, "dropout between layers", range="[0, 1)")
    tie_weights: bool = option(True, "share the embedding matrix with the output layer")

    def __post_init__(self) -> None:
        check_fields(self, "model")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LSTMConfig":
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown LSTMConfig fields: {', '.join(sorted(unknown))}")
        return cls(**d)


class LSTMLanguageModel(nn.Module):
    """`LSTMLanguageModel(config)(idx, targets=None) -> (logits, loss)`, like `GPT`."""

    def __init__(self, config: LSTMConfig):
        super().__init__()
        self.config = config
        C = config.n_embd
        self.tok_emb = nn.Embedding(config.vocab_size, C)
        self.lstm = nn.LSTM(C, C, config.n_layer, batch_first=True, dropout=config.dropout)
        self.drop = nn.Dropout(config.dropout)
        self.lm_head = nn.Linear(C, config.vocab_size, bias=False)
        nn.init.normal_(self.tok_emb.weight, std=0.02)
        if config.tie_weights:
            self.lm_head.weight = self.tok_emb.weight

    def num_params(self, non_embedding: bool = True) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx: (B, T); targets: (B, T) next ids (-1 = ignore) -> (logits (B, T, V), loss)."""
        h, _ = self.lstm(self.drop(self.tok_emb(idx)))  # (B, T, C): all states, left to right
        logits = self.lm_head(self.drop(h))  # (B, T, V)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(
            logits.view(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=-1
        )
        return logits, loss
