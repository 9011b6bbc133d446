"""Attention patterns: for every layer and head, where each position looks.

    pattern[h, i, j] = softmax_j(q_i . k_j / sqrt(hs) + mask[i, j])      rows sum to 1

`attention_view` (decoder-only), `encoder_attention_view` (bidirectional: every position
sees every other) and `seq2seq_attention_view` (encoder self-attention, decoder
self-attention and cross-attention, where target positions query the source) run the model
once, caching every ``*.pattern`` hook point, and return plain data the renderers draw:

    {"kind": "attention", "tokens": [...], "maps": [{"name": "blocks.0.attn.pattern",
     "queries": [...], "keys": [...], "heads": [[[p, ...], ...], ...]}, ...]}
"""

import torch

from glassformer.inspect.cache import hook_points, hooks, run_with_cache
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
    return _self_attention_page("Attention patterns", text, tokenizer, ids, cache, names, head)


@torch.no_grad()
def encoder_attention_view(
    model, tokenizer, text: str, layer: int | None = None, head: int | None = None
) -> dict:
    """The self-attention patterns of an encoder (`Encoder.encode`, so with or without a
    masked-LM head) on `text`, optionally one layer and/or one head."""
    n_layer, n_head = model.config.n_layer, model.config.n_head
    check_layer_head(layer, head, n_layer, n_head)
    ids = encode_prompt(tokenizer, text, model.config.block_size)
    names = [n for n in _pattern_names(model) if layer is None or n.split(".")[-3] == str(layer)]
    cache: dict[str, torch.Tensor] = {}
    keep = {n: (lambda x, _hook, n=n: cache.__setitem__(n, x)) for n in names}
    with hooks(model, keep):
        model.encode(as_batch(ids, model))
    title = "Encoder self-attention patterns"
    return _self_attention_page(title, text, tokenizer, ids, cache, names, head)


def _self_attention_page(title, text, tokenizer, ids, cache, names, head) -> dict:
    """The page data of self-attention patterns `cache[name]` (1, nh, T, T), one map a name."""
    labels = token_labels(tokenizer, ids)
    maps = []
    for name in names:
        pattern = cache[name][0]  # (nh, T, T)
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
        "title": title,
        "text": text,
        "tokens": labels,
        "ids": ids,
        "maps": maps,
    }


@torch.no_grad()
def seq2seq_attention_view(
    model, src_ids: list[int], tgt_ids: list[int], src_labels: list[str], tgt_labels: list[str]
) -> dict:
    """Every attention pattern of an encoder-decoder on one (source, target) pair.

    Encoder maps are source x source, decoder self-attention target x target, and
    cross-attention target (queries) x source (keys): which source tokens each target token
    reads while it is being produced.
    """
    device = next(model.parameters()).device
    src = torch.tensor([src_ids], device=device)  # (1, S)
    tgt = torch.tensor([tgt_ids], device=device)  # (1, T)
    names = _pattern_names(model)
    _, cache = run_with_cache(model, src, tgt, names=names)
    maps = []
    for name in names:
        pattern = cache[name][0]  # (nh, Tq, Tk)
        cross = "cross" in name  # decoder queries, encoder keys
        encoder = name.startswith("enc")
        queries = src_labels if encoder else tgt_labels
        maps.append(
            {
                "name": name,
                "layer": int(name.split(".")[-3]),
                "attention": "cross" if cross else "self",
                "queries": queries,
                "keys": src_labels if (encoder or cross) else tgt_labels,
                "head_ids": list(range(pattern.size(0))),
                "heads": [rounded(p) for p in pattern],
            }
        )
    return {
        "kind": "attention",
        "title": "Attention patterns (encoder, decoder, cross-attention)",
        "text": " ".join(src_labels) + "  ->  " + " ".join(tgt_labels),
        "tokens": tgt_labels,
        "maps": maps,
    }
