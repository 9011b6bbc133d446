"""Hooks that edit activations: zero-ablate an attention head, patch in another run's values.

Use them with `glassformer.inspect.hooks(model, {cache_name: hook})`:

    >>> _, clean = run_with_cache(model, clean_ids, names=["blocks.1.resid_pre"])
    >>> with hooks(model, {"blocks.0.attn.z": zero_head(2)}):          # doctest: +SKIP
    ...     ablated_logits, _ = model(idx)                              # head 0.2 silenced
    >>> with hooks(model, {"blocks.1.resid_pre": patch(clean["blocks.1.resid_pre"],
    ...                                                 (slice(None), 4))}):   # doctest: +SKIP
    ...     patched_logits, _ = model(corrupt_ids)                  # position 4 from clean run

Zeroing head h's z removes exactly its term from the attention output: with W_O the output
projection, attn_out = sum_h z_h @ W_O[:, h*hs:(h+1)*hs]^T + b_O, so the ablated output is
attn_out - z_h @ W_O[:, h*hs:(h+1)*hs]^T (tests/test_hooks.py checks this).
"""

import torch

from glassformer.nn.hooks import HookFn


def zero_head(head: int) -> HookFn:
    """A hook for ``blocks.L.attn.z`` (B, nh, T, hs) that zeroes the output of one head."""

    def ablate(z: torch.Tensor, _name: str) -> torch.Tensor:
        z = z.clone()
        z[:, head] = 0.0  # (B, T, hs) of head `head`
        return z

    return ablate


def patch(source: torch.Tensor, index: tuple | slice | None = None) -> HookFn:
    """A hook that replaces the activation by `source` (everywhere, or only at `index`).

    `index` selects what to take from `source`, e.g. ``(slice(None), 4)`` is position 4 of a
    (B, T, C) activation and ``(slice(None), 2)`` is head 2 of a (B, nh, T, hs) one.
    """

    def replace(x: torch.Tensor, _name: str) -> torch.Tensor:
        if source.shape != x.shape:
            raise ValueError(
                f"cannot patch {_name}: the source has shape {tuple(source.shape)}, the "
                f"activation {tuple(x.shape)}; run both inputs with the same length"
            )
        if index is None:
            return source.to(x.dtype)
        x = x.clone()
        x[index] = source[index].to(x.dtype)
        return x

    return replace
