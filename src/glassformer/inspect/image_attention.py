"""Where a vision transformer looks: the class token's attention over the patches of an image.

The head of a ViT (models/vit.py) reads only the class token's final vector, and the class
token has no pixels of its own: whatever it knows about the image it gathered by attention.
Its row of each attention pattern, `pattern[h, 0, 1:]`, says how much of each patch it took
in that layer and head (the rest of the row, `pattern[h, 0, 0]`, is attention to itself).
Laid back on the patch grid, that row is a map over the image. A ViT that pools the mean of
the patches instead has no class token; its map is the attention each patch receives,
averaged over all queries.

    {"kind": "image_attention", "image": [[ink 0..1, ...], ...] (H x W), "grid": [rows, cols],
     "patch": P, "maps": [{"layer": 0, "head_ids": [0, ...], "heads": [rows x cols weights],
     "self": [weight on the class token per head]}, ...], "prediction": [[name, p], ...]}
"""

import torch

from glassformer.inspect.cache import hook_points, run_with_cache
from glassformer.inspect.selection import check_layer_head
from glassformer.inspect.text import rounded


@torch.no_grad()
def image_attention_view(
    model,
    pixels: torch.Tensor,
    ink: list[list[float]],
    class_names: list[str],
    source: str,
    layer: int | None = None,
    head: int | None = None,
) -> dict:
    """The attention maps of `model` (a `VisionTransformer`) on one image `pixels` (ch, H, W)
    as the model reads it; `ink` (H x W, 0..1) is how the page draws it, `source` says where
    the image came from (a sentence under the title)."""
    c = model.config
    check_layer_head(layer, head, c.n_layer, c.n_head)
    names = [n for n in hook_points(model) if n.endswith(".pattern")]
    names = [n for n in names if layer is None or n.split(".")[-3] == str(layer)]
    device = next(model.parameters()).device
    (logits, _), cache = run_with_cache(model, pixels[None].to(device), names=names)
    rows, cols = c.grid
    cls = c.pool == "cls"
    maps = []
    for name in names:
        pattern = cache[name][0].float()  # (nh, T, T)
        if cls:  # the class token's query (row 0) over the patch keys (1..N)
            weights, own = pattern[:, 0, 1:], pattern[:, 0, 0]  # (nh, N), (nh,)
        else:  # no class token: the attention each patch receives, mean over the queries
            weights, own = pattern.mean(dim=1), torch.zeros(pattern.size(0))  # (nh, N)
        heads = list(range(pattern.size(0))) if head is None else [head]
        maps.append(
            {
                "name": name,
                "layer": int(name.split(".")[-3]),
                "head_ids": heads,
                "heads": [rounded(weights[h].view(rows, cols)) for h in heads],
                "self": [round(own[h].item(), 4) for h in heads],
            }
        )
    probs = logits[0].float().softmax(-1)
    top = probs.topk(min(3, probs.numel()))
    return {
        "kind": "image_attention",
        "title": "Where the class token looks" if cls else "Attention each patch receives",
        "text": source,
        "image": ink,
        "grid": [rows, cols],
        "patch": c.patch_size,
        "query": "class token" if cls else "mean over all patches",
        "prediction": [
            [class_names[i], round(p, 4)]
            for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
        ],
        "maps": maps,
    }
