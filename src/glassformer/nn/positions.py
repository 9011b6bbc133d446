"""Position schemes: how a transformer tells positions apart. One registry, one entry a scheme.

Attention by itself is blind to order (a weighted sum does not change when its terms are
reordered), so every model picks one way to say where a token is. A scheme acts in one of
three places:

- `embedding`: a vector per position added to the token embeddings before the first block
  (learned, sinusoidal: embedding.py);
- `rotation`: a transform of the queries and keys inside every self-attention layer
  (rotary: rotary.py);
- `score_bias`: a number per head, query and key added to the attention scores of every
  self-attention layer, computed from the query's and the key's positions (alibi: alibi.py).
  The key positions come from the KV cache when there is one (after a roll or with left
  padding they are not 0..Tk-1); attention hands the bias to SDPA as its float mask.

`grid` marks a scheme for the patches of an image (nn/patches.py): a patch has a row and a
column, which the config gives as `config.grid` (rows, cols). Only the vision transformer
(models/vit.py) has a grid; the text families offer the `SEQUENCE_POSITIONS`.

`max_length` says whether the scheme has a table of `block_size` rows. Then no position may
reach `block_size`, and a generation longer than the context re-encodes its last `block_size`
tokens. Without a table (rotary, alibi, none) positions count on, and the KV cache can roll (a
sliding window: generate/context.py reads this flag).

Adding a scheme = its module in its own file, one entry in `POSITIONS`, and its case in
tests/test_positions.py (a grid scheme's: tests/test_vit.py); the text configs' `pos_emb`
choices are the registry's sequence schemes, the ViT's all of them. ALiBi came that way:
alibi.py, the `alibi` entry below, tests/test_alibi.py.

    >>> sorted(POSITIONS)
    ['alibi', 'learned', 'learned-2d', 'none', 'rotary', 'sinusoidal', 'sinusoidal-2d']
    >>> SEQUENCE_POSITIONS
    ('learned', 'sinusoidal', 'rotary', 'alibi', 'none')
    >>> POSITIONS["learned"].max_length, POSITIONS["rotary"].max_length
    (True, False)
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from glassformer.nn.alibi import ALiBi
from glassformer.nn.embedding import LearnedPositions, SinusoidalPositions
from glassformer.nn.patches import LearnedGridPositions, SinusoidalGridPositions
from glassformer.nn.rotary import Rotary, RotaryScaling

# every factory is called with the model's config (nn/config.py: TransformerConfig)
Factory = Callable[[Any], nn.Module]


@dataclass(frozen=True)
class PositionScheme:
    """`embedding(config)`: (T,) or (B, T) positions -> (..., T, C) vectors added to the tokens;
    `rotation(config)`: (x (B, nh, T, hs), positions) -> x at those positions, for q and k;
    `score_bias(config)`: (query positions (Tq,) or (B, Tq), key positions (Tk,) or (B, Tk))
    -> (B or 1, nh, Tq, Tk) added to the attention scores."""

    max_length: bool
    embedding: Factory | None = None
    rotation: Factory | None = None
    score_bias: Factory | None = None
    grid: bool = False  # positions of image patches on a (rows, cols) grid: config.grid

    def make_embedding(self, config) -> nn.Module | None:
        return None if self.embedding is None else self.embedding(config)

    def make_rotation(self, config) -> nn.Module | None:
        return None if self.rotation is None else self.rotation(config)

    def make_score_bias(self, config) -> nn.Module | None:
        return None if self.score_bias is None else self.score_bias(config)


POSITIONS: dict[str, PositionScheme] = {
    "learned": PositionScheme(
        max_length=True, embedding=lambda c: LearnedPositions(c.block_size, c.n_embd)
    ),
    "sinusoidal": PositionScheme(
        max_length=True,
        embedding=lambda c: SinusoidalPositions(c.block_size, c.n_embd, layout=c.sinusoid_layout),
    ),
    "rotary": PositionScheme(
        max_length=False,
        rotation=lambda c: Rotary(c.head_dim, c.block_size, c.rope_theta, RotaryScaling.of(c)),
    ),
    "alibi": PositionScheme(max_length=False, score_bias=lambda c: ALiBi(c.n_head)),
    "none": PositionScheme(max_length=False),
    "learned-2d": PositionScheme(
        max_length=True, grid=True, embedding=lambda c: LearnedGridPositions(*c.grid, c.n_embd)
    ),
    "sinusoidal-2d": PositionScheme(
        max_length=True, grid=True, embedding=lambda c: SinusoidalGridPositions(*c.grid, c.n_embd)
    ),
}
# the schemes of a sequence of tokens: what the text families offer as `pos_emb`
SEQUENCE_POSITIONS = tuple(name for name, scheme in POSITIONS.items() if not scheme.grid)
