"""Logits processors: reshape the next-token distribution before choosing from it.

Each takes logits (B, V) and returns logits (B, V); removed tokens get -inf.

    temperature T: logits / T       T < 1 sharpens, T > 1 flattens, T -> 0 approaches argmax
    top-k k:       keep the k highest logits
    top-p p:       keep the smallest set of most likely tokens whose probabilities sum to >= p
"""

import torch


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
    return logits.masked_fill(logits < kth, float("-inf"))


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
    return logits.masked_fill(drop, float("-inf"))
