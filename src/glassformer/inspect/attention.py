"""Attention patterns: for every layer and head, where each position looks.

    pattern[h, i, j] = softmax_j(q_i . k_j / sqrt(hs) + mask[i, j])      rows sum to 1

`attention_view` runs the model once, caching every ``*.pattern`` hook point (self-attention,
and cross-attention in an encoder-decoder), and returns plain data the renderers draw:

    {"kind": "attention", "tokens": [...], "maps": [{"name": "blocks.0.attn.pattern",
     "queries": [...], "keys": [...], "heads": [[[p, ...], ...], ...]}, ...]}
"""

import torch

from glassformer.inspect.cache import hook_points, run_with_cache
from glassformer.inspect.selection import check_layer_head
from glassformer.inspect.text import as_batch, encode_prompt, rounded, token_labels


def _pattern_names(model) -> list[str]:
    return [n for n in hook_points(model) if n.endswith(".pattern")]


@torch.no_grad()
def attention_view(
    model, tokenizer, text: str, layer: int | None = None, head: int | None = None
) -> dict:
    """The attention patterns of `text` (optionally one layer and/or one head)."""
    n_layer, n_head = model.config.n_layer, model.config.n_head
    check_layer_head(layer, head, n_layer, n_head)
    ids = encode_prompt(tokenizer, text, model.config.block_size)
    names = _pattern_names(model)
    if layer is not None:
        names = [n for n in names if n.split(".")[-3] == str(layer)]
    _, cache = run_with_cache(model, as_batch(ids, model), names=names)
    labels = token_labels(tokenizer, ids)
    maps = []
    for name in names:
        pattern = cache[name][0]  # (nh, Tq, Tk)
        heads = list(range(pattern.size(0))) if head is None else [head]
        maps.append(
            {
                "name": name,
                "layer": int(name.split(".")[-3]),
                "queries": labels,
                "keys": labels,
                "head_ids": heads,
                "heads": [rounded(pattern[h]) for h in heads],
            }
        )
    return {
        "kind": "attention",
        "title": "Attention patterns",
        "text": text,
        "tokens": labels,
        "ids": ids,
        "maps": maps,
    }
