"""Logits processors: reshape the next-token distribution before choosing from it.

Each takes logits (B, V) and returns logits (B, V); removed tokens get -inf. Sampling applies
them in this order (the order Hugging Face uses too):

    repetition penalty r:  for tokens already in the text: logit / r if logit > 0 else logit * r
    temperature T:         logits / T       T < 1 sharpens, T > 1 flattens, T -> 0 is argmax
    top-k k:               keep the k highest logits
    top-p p:               keep the smallest set of most likely tokens whose mass reaches p
    min-p m:               keep tokens whose probability is at least m x the top probability

A worked example with probabilities (0.5, 0.3, 0.15, 0.05): top-k 2 keeps the first two;
top-p 0.7 keeps the first two as well (0.5 < 0.7 <= 0.8); min-p 0.2 keeps the tokens with
p >= 0.1, the first three.
"""

import torch

NEG_INF = float("-inf")


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of each row (ties at the k-th value are kept too).

    >>> top_k_filter(torch.tensor([[1.0, 3.0, 2.0]]), 2)
    tensor([[-inf, 3., 2.]])
    """
    if k <= 0 or k >= logits.size(-1):
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (B, 1)
    return logits.masked_fill(logits < kth, NEG_INF)


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering: keep the most likely tokens until their mass reaches p.

    >>> top_p_filter(torch.tensor([[0.0, 1.0, 2.0]]).log(), 0.6)  # probs 0, 1/3, 2/3
    tensor([[  -inf,   -inf, 0.6931]])
    """
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (B, V)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above
    drop_sorted = mass_before >= p  # the top token always has mass_before 0 and stays
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, NEG_INF)


def min_p_filter(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Keep tokens with probability >= min_p * (the most likely token's probability).

    >>> min_p_filter(torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log(), 0.2)
    tensor([[-0.6931, -1.2040, -1.8971,    -inf]])
    """
    if min_p <= 0.0:
        return logits
    probs = torch.softmax(logits, dim=-1)  # (B, V)
    threshold = min_p * probs.max(dim=-1, keepdim=True).values  # (B, 1)
    return logits.masked_fill(probs < threshold, NEG_INF)


def repetition_penalty(logits: torch.Tensor, ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's penalty (Keskar et al. 2019) on every token that occurs in `ids` (B, T).

    A positive logit is divided by `penalty`, a negative one multiplied, so the token always
    becomes less likely when penalty > 1.

    >>> repetition_penalty(torch.tensor([[2.0, -1.0, 3.0]]), torch.tensor([[0, 1]]), 2.0)
    tensor([[ 1., -2.,  3.]])
    """
    if penalty == 1.0:
        return logits
    seen = logits.gather(-1, ids)  # (B, T): the logits of the tokens already used
    seen = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits.scatter(-1, ids, seen)
