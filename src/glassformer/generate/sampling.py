"""Autoregressive decoding: append one token at a time, each chosen from the model's logits.

    for each new token:
        logits = model(ids[-block_size:])[:, -1]      # scores for the next token
        greedy: next = argmax(logits)
        sample: next ~ softmax(top_p(top_k(logits / temperature)))
        ids = ids + [next]

A prompt longer than the context is cropped to its last `block_size` tokens (the model can
not see more); as generation goes on, the window slides the same way.
"""

import torch

from glassformer.generate.processors import apply_temperature, top_k_filter, top_p_filter


def check_sampling_args(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise ValueError with one clear sentence for out-of-range decoding options."""
    if not temperature >= 0 or temperature == float("inf"):  # also rejects NaN
        raise ValueError(f"temperature must be a number >= 0 (0 means greedy), got {temperature}")
    if top_k is not None and top_k < 0:
        raise ValueError(f"top-k must be >= 0 (0 means no limit), got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top-p must be in (0, 1], got {top_p}")


def next_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Choose the next id from logits (B, V) -> (B, 1). Temperature 0 means greedy."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = apply_temperature(logits.float(), temperature)
    if top_k:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)


@torch.no_grad()
def generate_ids(
    model: torch.nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eot_id: int | None = None,
    generator: torch.Generator | None = None,
):
    """Yield new ids (B, 1) one step at a time; stops early when every row produced `eot_id`."""
    check_sampling_args(temperature, top_k, top_p)
    block_size = model.config.block_size
    done = torch.zeros(idx.size(0), 1, dtype=torch.bool, device=idx.device)
    for _ in range(max_new_tokens):
        logits, _ = model(idx[:, -block_size:])  # (B, T, V)
        nxt = next_token(logits[:, -1, :], temperature, top_k, top_p, generator)  # (B, 1)
        idx = torch.cat((idx, nxt), dim=1)
        yield nxt
        if eot_id is not None:
            done |= nxt == eot_id
            if done.all():
                return
