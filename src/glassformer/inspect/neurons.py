"""The neuron view: which tokens and contexts make one MLP neuron fire.

Each hidden unit n of an MLP computes act(w_n . x + b_n) at every position: it asks one
question of the (normalised) residual stream, and its activation is the answer. Running a
text through the model and ranking positions by that activation shows what the question is
about — a letter, a word ending, a position after a quote, ...

    acts = cache["blocks.L.mlp.post"][..., n]        (positions,): neuron n of layer L
"""

import torch

from glassformer.errors import UserError
from glassformer.inspect.cache import run_with_cache
from glassformer.inspect.text import token_label

BEFORE, AFTER = 12, 4  # tokens of context shown around each top activation


@torch.no_grad()
def neuron_activations(model, ids: list[int], layer: int, batch: int = 16) -> torch.Tensor:
    """Activations of every neuron of layer `layer` at every position: (len(ids), hidden)."""
    block = model.config.block_size
    device = next(model.parameters()).device
    name = f"blocks.{layer}.mlp.post"
    out = []
    chunks = [ids[i : i + block] for i in range(0, len(ids), block)]
    for i in range(0, len(chunks), batch):
        group = chunks[i : i + batch]
        width = len(group[0])
        full = [c for c in group if len(c) == width]
        idx = torch.tensor(full, device=device)  # (b, T)
        _, cache = run_with_cache(model, idx, names=[name])
        out.append(cache[name].reshape(-1, cache[name].size(-1)))  # (b * T, hidden)
        for rest in group[len(full) :]:  # the last, shorter chunk
            _, cache = run_with_cache(model, torch.tensor([rest], device=device), names=[name])
            out.append(cache[name][0])
    return torch.cat(out).float().cpu()


def neuron_view(
    model,
    tokenizer,
    corpus: str,
    layer: int,
    neuron: int | None = None,
    top: int = 12,
    max_chars: int = 20_000,
) -> dict:
    """Top contexts and top tokens of neuron `neuron` of layer `layer` over `corpus`.

    With no `neuron`, the one with the largest activation anywhere in the corpus is shown.
    """
    if not 0 <= layer < model.config.n_layer:
        raise UserError(
            f"--layer {layer} does not exist: this model has layers 0..{model.config.n_layer - 1}"
        )
    ids = tokenizer.encode(corpus[:max_chars])
    if len(ids) < 2:
        raise UserError("the text to scan is too short; pass a longer --text (or none)")
    acts = neuron_activations(model, ids, layer)  # (N, hidden)
    hidden = acts.size(1)
    if neuron is None:
        neuron = int(acts.max(dim=0).values.argmax())
    elif not 0 <= neuron < hidden:
        raise UserError(
            f"--neuron {neuron} does not exist: layer {layer} has neurons 0..{hidden - 1}"
        )
    a = acts[:, neuron]  # (N,)
    contexts = []
    for p in a.topk(min(top, len(ids))).indices.tolist():
        lo, hi = max(0, p - BEFORE), min(len(ids), p + AFTER + 1)
        contexts.append(
            {
                "activation": round(float(a[p]), 4),
                "tokens": [token_label(tokenizer, i) for i in ids[lo:hi]],
                "acts": [round(float(v), 4) for v in a[lo:hi]],
                "focus": p - lo,
            }
        )
    id_tensor = torch.tensor(ids)
    counts = torch.bincount(id_tensor, minlength=int(id_tensor.max()) + 1)
    sums = torch.bincount(id_tensor, weights=a.double(), minlength=counts.numel())
    mean = torch.where(counts > 0, sums / counts.clamp(min=1), torch.tensor(float("-inf")))
    best = mean.topk(min(10, int((counts > 0).sum()))).indices.tolist()
    return {
        "kind": "neurons",
        "title": f"Neuron {neuron} of layer {layer}",
        "layer": layer,
        "neuron": neuron,
        "hidden": hidden,
        "scanned_tokens": len(ids),
        "max_activation": round(float(a.max()), 4),
        "contexts": contexts,
        "top_tokens": [
            [token_label(tokenizer, i), round(float(mean[i]), 4), int(counts[i])] for i in best
        ],
    }
