"""The logit lens: read the residual stream after each layer as if it were the last.

The LM head turns the final residual stream into next-token scores. Applying the same final
norm and head to the stream after block L (nostalgebraist, 2020) shows what the model would
predict if it stopped there — early layers often guess the current token, later ones refine:

    lens_L = softmax(lm_head(ln_f(resid_post[L])))          (T, vocab) for each L

Row ``embed`` reads the stream before any block (token + position embedding); `layer`
keeps only the row of block `layer` (`inspect logit-lens --layer L`).
"""

import torch

from glassformer.inspect.cache import run_with_cache
from glassformer.inspect.selection import check_layer_head
from glassformer.inspect.text import as_batch, encode_prompt, token_label, token_labels


@torch.no_grad()
def logit_lens_view(model, tokenizer, text: str, top: int = 5, layer: int | None = None) -> dict:
    """For each layer (or only block `layer`) and position: the `top` tokens with their
    probabilities.

    Each cell also gives the probability and rank of the token that really comes next (when
    the text has one), so a learner sees at which layer the right answer appears.
    """
    n_layer = model.config.n_layer
    check_layer_head(layer, None, n_layer, 1)  # before any work
    ids = encode_prompt(tokenizer, text, model.config.block_size)
    names = ["blocks.0.resid_pre"] + [f"blocks.{L}.resid_post" for L in range(n_layer)]
    labels = ["embed"] + [f"block {L}" for L in range(n_layer)]
    if layer is not None:
        names, labels = names[layer + 1 : layer + 2], labels[layer + 1 : layer + 2]
    _, cache = run_with_cache(model, as_batch(ids, model), names=names)
    rows = []
    for label, name in zip(labels, names, strict=True):
        probs = torch.softmax(model.logits(model.ln_f(cache[name][0])).float(), dim=-1)  # (T, V)
        values, indices = probs.topk(min(top, probs.size(-1)), dim=-1)  # (T, top)
        cells = []
        for t in range(len(ids)):
            cell = {
                "top": [
                    [token_label(tokenizer, int(i)), round(float(p), 4)]
                    for p, i in zip(values[t], indices[t], strict=True)
                ]
            }
            if t + 1 < len(ids):
                nxt = ids[t + 1]
                cell["next_prob"] = round(float(probs[t, nxt]), 4)
                cell["next_rank"] = int((probs[t] > probs[t, nxt]).sum()) + 1
            cells.append(cell)
        rows.append({"layer": label, "cells": cells})
    return {
        "kind": "logit_lens",
        "title": "Logit lens",
        "text": text,
        "tokens": token_labels(tokenizer, ids),
        "ids": ids,
        "rows": rows,
    }
