"""Measurements on a trained model that the loss alone does not show.

- `prefix_loss`: the loss of predicting the token after a prefix from that prefix alone, the
  way generation uses a model. For a causal model it equals the ordinary per-position loss;
  a model trained without the mask, which peeked at the answer, is caught out here.
  With `shuffle`, the prefix before the last token is put in random order first: a model
  that cannot tell word order scores the same either way.
- `attention_stats`: the entropy of each attention row and how many rows are saturated
  (one key takes > 99% of the weight), read at the `hook_pattern` hook points.
- `grad_norms`: the gradient norm of the loss on one fixed batch, before any clipping.
"""

import math

import torch

from glassformer.core.device import autocast


def fixed_batch(run, split: str = "val", n: int = 32, seed: int = 12345):
    """The same `n` windows (x, y) of a split of `run` (a `LanguageModelRun`) on every call,
    on the run's device."""
    batches = run.val_batches if split == "val" else run.train_batches
    x, y = batches.sample(n, torch.Generator().manual_seed(seed))
    return x.to(run.device), y.to(run.device)  # (n, T) each


@torch.no_grad()
def prefix_loss(model, x, y, lengths, shuffle: torch.Generator | None = None) -> float:
    """Mean over `lengths` L of the loss of y[:, L-1] given only x[:, :L].

    With x = [3, 5, 7, 9, 2, ...] and L = 4 the model sees [3, 5, 7, 9] and is scored on
    predicting y[:, 3] = 2; nothing after position 3 is in its input.
    """
    was_training = model.training
    model.eval()
    losses = []
    for length in lengths:
        ctx = x[:, :length].clone()  # (B, L)
        if shuffle is not None and length > 2:
            for row in ctx:  # permute the first L - 1 tokens of each window on its own
                perm = torch.randperm(length - 1, generator=shuffle).to(ctx.device)
                row[: length - 1] = row[: length - 1][perm]
        logits, _ = model(ctx)  # (B, L, V)
        last = logits[:, -1].float()  # (B, V)
        losses.append(torch.nn.functional.cross_entropy(last, y[:, length - 1]).item())
    model.train(was_training)
    return sum(losses) / len(losses)


def prefix_lengths(block_size: int, n: int = 8) -> list[int]:
    """`n` prefix lengths spread evenly over 1..block_size: 64 -> [8, 16, ..., 64]."""
    return [max(1, round(block_size * (i + 1) / n)) for i in range(n)]


@torch.no_grad()
def attention_stats(run, n: int = 16) -> dict:
    """Mean attention entropy (nats), its maximum for the same rows, saturated fraction."""
    model = run.model
    patterns = []
    handles = [
        point.add_hook(lambda t, name: patterns.append(t.detach().float()))
        for name, point in model.hook_points.items()
        if name.endswith("attn.hook_pattern")
    ]
    was_training = model.training
    model.eval()
    try:
        x, _ = fixed_batch(run, n=n)
        with autocast(run.precision, run.device):
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    p = torch.stack(patterns)  # (layers, B, nh, T, T)
    entropy = -(p * p.clamp_min(1e-12).log()).sum(-1)  # (layers, B, nh, T)
    T = p.shape[-1]
    # uniform attention over the keys a row may see: log(t + 1) when causal, log(T) if not
    keys = torch.arange(1, T + 1) if model.config.causal else torch.full((T,), T)
    uniform = keys[1:].float().log().mean().item()  # row 0 of a causal model has no choice
    return {
        "attn_entropy": entropy[..., 1:].mean().item(),
        "attn_entropy_uniform": uniform,
        "attn_saturated": (p.amax(-1)[..., 1:] > 0.99).float().mean().item(),
    }


def grad_norms(run, n: int = 16) -> dict:
    """Gradient norm of the loss on a fixed train batch (fp32, before clipping)."""
    model = run.model
    x, y = fixed_batch(run, "train", n=n)
    model.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    loss.backward()
    total = math.sqrt(
        sum(p.grad.float().pow(2).sum().item() for p in model.parameters() if p.grad is not None)
    )
    qkv = [b.attn.qkv.weight.grad for b in model.blocks]
    attn = math.sqrt(sum(g.float().pow(2).sum().item() for g in qkv))
    model.zero_grad(set_to_none=True)
    return {"grad_norm": total, "grad_norm_qkv": attn}
