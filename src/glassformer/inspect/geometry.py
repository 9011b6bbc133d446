"""Embedding geometry: how close vectors are, who their neighbours are, a 2-D map.

    cos(a, b) = a . b / (|a| |b|)        1: same direction, 0: unrelated, -1: opposite

A 2-D map keeps the two directions along which the vectors vary most (principal component
analysis): centre the vectors, take the singular value decomposition X = U S V^T, and plot
X V[:, :2]. Distances on the map are only an approximation of those in the full space; the
page says how much of the variance the two axes keep.
"""

import torch
import torch.nn.functional as F


def cosine_matrix(x: torch.Tensor) -> torch.Tensor:
    """(N, D) -> (N, N) pairwise cosine similarities."""
    unit = F.normalize(x.float(), dim=-1)
    return unit @ unit.T


def nearest(
    queries: torch.Tensor, pool: torch.Tensor, k: int, exclude: list[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k rows of `pool` (M, D) most cosine-similar to each query (N, D) -> (sims, idx).

    `exclude[i]` is a pool row to leave out for query i (the query itself), or -1 for none.
    """
    sims = F.normalize(queries.float(), dim=-1) @ F.normalize(pool.float(), dim=-1).T  # (N, M)
    if exclude is not None:
        rows = torch.arange(len(exclude))
        cols = torch.tensor(exclude)
        keep = cols >= 0
        sims[rows[keep], cols[keep]] = float("-inf")
    return sims.topk(min(k, pool.size(0) - (exclude is not None)), dim=-1)


def pca_2d(x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(N, D) -> ((N, 2) coordinates, fraction of the variance the two axes explain).

    Each axis's sign is fixed so that its largest loading is positive (deterministic maps).
    """
    x = x.float() - x.float().mean(dim=0)
    _, s, vh = torch.linalg.svd(x, full_matrices=False)  # vh: (min(N, D), D)
    axes = vh[:2]  # (2, D)
    flip = torch.sign(axes.gather(1, axes.abs().argmax(dim=1, keepdim=True)))  # (2, 1)
    axes = axes * torch.where(flip == 0, torch.ones_like(flip), flip)
    coords = x @ axes.T  # (N, 2)
    if coords.size(1) < 2:  # a single vector, or all identical: pad the missing axis
        coords = F.pad(coords, (0, 2 - coords.size(1)))
    total = (s**2).sum()
    explained = float((s[:2] ** 2).sum() / total) if total > 0 else 0.0
    return coords, explained


def geometry(vectors: torch.Tensor, labels: list[str], neighbours: list[list]) -> dict:
    """The part of an embeddings view shared by tokens and sentences."""
    coords, explained = pca_2d(vectors)
    return {
        "labels": labels,
        "similarity": torch.round(cosine_matrix(vectors), decimals=4).tolist(),
        "pca": torch.round(coords, decimals=4).tolist(),
        "pca_explained": round(explained, 4),
        "neighbours": neighbours,
    }
