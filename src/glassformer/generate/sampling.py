"""Sampling: draw each next token from the processed distribution.

    logits = ctx.logits()                                    # (B, V)
    next ~ softmax(min_p(top_p(top_k(repetition(logits) / temperature))))

The processors are in processors.py; temperature 0 means greedy (greedy.py). The same seed
gives the same tokens (`seed=`, a `torch.Generator` of its own).
"""

import torch

from glassformer.generate.greedy import most_likely
from glassformer.generate.processors import (
    apply_temperature,
    min_p_filter,
    repetition_penalty,
    top_k_filter,
    top_p_filter,
)
from glassformer.generate.strategy import TokenRule


def process(logits: torch.Tensor, ids: torch.Tensor, opts) -> torch.Tensor:
    """Apply the sampling processors of `opts` to logits (B, V); `ids` (B, N) is the history."""
    logits = repetition_penalty(logits.float(), ids, opts.repetition_penalty)
    logits = apply_temperature(logits, opts.temperature)
    if opts.top_k:
        logits = top_k_filter(logits, opts.top_k)
    if opts.top_p is not None:
        logits = top_p_filter(logits, opts.top_p)
    if opts.min_p is not None:
        logits = min_p_filter(logits, opts.min_p)
    return logits


class Sample(TokenRule):
    help = "draw from the processed distribution (temperature, top-k, top-p, min-p)"

    def choose(self, logits, ids, opts, generator=None) -> torch.Tensor:
        if opts.temperature == 0:
            return most_likely(logits, ids, opts.repetition_penalty)
        probs = torch.softmax(process(logits, ids, opts), dim=-1)  # (B, V)
        return torch.multinomial(probs, 1, generator=generator)
