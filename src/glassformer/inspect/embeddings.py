"""Token embeddings: the rows of the embedding table, compared with each other.

Each token id owns one row of the (vocab, d_model) table the model learned. Tokens used in
similar contexts end up with similar rows; `token_embeddings_view` shows the cosine
similarities among the tokens of a text, each token's nearest neighbours in the whole
vocabulary, and a 2-D PCA map. (Sentences, with the MiniLM encoder: `sentences.py`.)
"""

import torch

from glassformer.errors import UserError
from glassformer.inspect.geometry import geometry, nearest
from glassformer.inspect.text import token_label

MAX_TOKENS = 60


@torch.no_grad()
def token_embeddings_view(model, tokenizer, text: str | None, k: int = 5) -> dict:
    """Geometry of the distinct tokens of `text` (or of the whole vocabulary if it is small)."""
    table = model.tok_emb.weight.detach()  # (V, C)
    if text:
        ids = list(dict.fromkeys(tokenizer.encode(text)))  # distinct, in order of appearance
        if not ids:
            raise UserError("the text is empty; pass --text with some words")
    elif table.size(0) <= MAX_TOKENS * 2:
        ids = list(range(table.size(0)))
    else:
        raise UserError(
            f"this vocabulary has {table.size(0)} tokens, too many to draw; "
            "pass --text with the words to compare"
        )
    if len(ids) > MAX_TOKENS * 2:
        raise UserError(
            f"the text has {len(ids)} distinct tokens; pass at most {MAX_TOKENS * 2} to compare"
        )
    sims, idx = nearest(table[ids], table, k, exclude=ids)
    labels = [token_label(tokenizer, i) for i in ids]
    neighbours = [
        [
            [token_label(tokenizer, int(j)), round(float(s), 4)]
            for s, j in zip(srow, irow, strict=True)
        ]
        for srow, irow in zip(sims, idx, strict=True)
    ]
    return {
        "kind": "embeddings",
        "title": "Token embeddings",
        "subject": "tokens",
        "ids": ids,
        **geometry(table[ids], labels, neighbours),
    }
