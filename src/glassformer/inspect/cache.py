"""Run a model and keep (or replace) the activations that flow past its hook points.

Every `HookPoint` module of a model has a dotted module name such as
``blocks.0.attn.hook_pattern``. The *cache name* of that activation is the same name with
the ``hook_`` prefix dropped from its last part — this is the one place that mapping lives:

    hook module name                 cache name
    hook_embed                       embed              (B, T, C) token embeddings
    hook_pos_embed                   pos_embed          (T, C)
    blocks.0.hook_resid_pre          blocks.0.resid_pre (B, T, C)
    blocks.0.attn.hook_pattern       blocks.0.attn.pattern   (B, nh, T, T)
    blocks.0.attn.hook_z             blocks.0.attn.z    (B, nh, T, hs)
    blocks.0.mlp.hook_post           blocks.0.mlp.post  (B, T, hidden)
    hook_logits                      logits             (B, T, vocab)

It works for any `nn.Module` that contains HookPoints (decoder, encoder, encoder-decoder:
a cross-attention pattern is cached under its own module path, e.g.
``decoder.blocks.0.cross_attn.pattern``).

    >>> logits, cache = run_with_cache(model, idx, names=["blocks.0.attn.pattern"])
    >>> cache["blocks.0.attn.pattern"].shape          # doctest: +SKIP
    torch.Size([1, 4, 12, 12])

Only the names asked for get a hook, so the attention pattern is only materialised (the
explicit attention path) when it is asked for; with `names=None` everything is cached.
Values are raw: nothing is folded, centred or normalised.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn

from glassformer.nn.hooks import HookFn, HookPoint

PREFIX = "hook_"


def cache_name(hook_name: str) -> str:
    """``blocks.0.attn.hook_pattern`` -> ``blocks.0.attn.pattern`` (drop the hook_ prefix)."""
    head, _, last = hook_name.rpartition(".")
    last = last.removeprefix(PREFIX)
    return f"{head}.{last}" if head else last


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a `torch.compile` or DistributedDataParallel wrapper (names match)."""
    while True:
        inner = getattr(model, "_orig_mod", None)
        if inner is None and isinstance(model, nn.parallel.DistributedDataParallel):
            inner = model.module
        if inner is None:
            return model
        model = inner


def hook_points(model: nn.Module) -> dict[str, HookPoint]:
    """Every HookPoint of `model`, keyed by its cache name, in forward-definition order."""
    model = unwrap(model)
    return {
        cache_name(name): module
        for name, module in model.named_modules()
        if isinstance(module, HookPoint)
    }


def _select(
    points: Mapping[str, HookPoint], names: Iterable[str] | Callable[[str], bool] | None
) -> list[str]:
    if names is None:
        return list(points)
    if callable(names):
        return [n for n in points if names(n)]
    names = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in points]
    if unknown:
        raise ValueError(
            f"{unknown[0]!r} is not a hook point of this model; known names look like "
            f"{', '.join(list(points)[:6])}, ... (see glassformer.inspect.hook_points(model))"
        )
    return names


@contextmanager
def hooks(model: nn.Module, fns: Mapping[str, HookFn]) -> Iterator[None]:
    """Attach `fn(tensor, hook_name)` at each cache name for the duration of the block.

    A hook returns None to leave the activation alone or a tensor to use instead:

    >>> with hooks(model, {"blocks.0.attn.z": zero_head(1)}):      # doctest: +SKIP
    ...     logits, _ = model(idx)
    """
    points = hook_points(model)
    _select(points, list(fns))  # fail before attaching anything
    handles = [points[name].add_hook(fn) for name, fn in fns.items()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def run_with_cache(
    model: nn.Module,
    *inputs,
    names: Iterable[str] | Callable[[str], bool] | None = None,
    detach: bool = True,
    **kwargs,
) -> tuple[object, dict[str, torch.Tensor]]:
    """`model(*inputs, **kwargs)`, returning `(output, cache)`.

    `names`: the cache names to keep (a list, one name, or a predicate such as
    ``lambda n: n.endswith("resid_post")``); None keeps every hook point. The output is
    whatever the model returns (for a GPT, `(logits, loss)`).
    """
    cache: dict[str, torch.Tensor] = {}

    def keeper(name: str) -> HookFn:
        def keep(x: torch.Tensor, _hook_name: str) -> None:
            cache[name] = x.detach() if detach else x

        return keep

    selected = _select(hook_points(model), names)
    with hooks(model, {name: keeper(name) for name in selected}):
        out = model(*inputs, **kwargs)
    return out, cache
