"""Greedy decoding: always the most likely next token (after the repetition penalty).

    logits = ctx.logits()                 # (B, V)
    next = argmax(repetition(logits))     # (B, 1)

Deterministic, and the same tokens as Hugging Face's `generate(do_sample=False)`. A small
model decoded greedily soon repeats itself; sampling.py and contrastive.py are the remedies.
"""

import torch

from glassformer.generate.processors import repetition_penalty
from glassformer.generate.strategy import TokenRule


def most_likely(logits: torch.Tensor, ids: torch.Tensor, penalty: float = 1.0) -> torch.Tensor:
    """argmax of logits (B, V) -> (B, 1), the tokens in `ids` (B, N) penalised first."""
    if penalty != 1.0:
        logits = repetition_penalty(logits, ids, penalty)
    return logits.argmax(dim=-1, keepdim=True)


class Greedy(TokenRule):
    help = "the most likely token"

    def choose(self, logits, ids, opts, generator=None) -> torch.Tensor:
        return most_likely(logits, ids, opts.repetition_penalty)
