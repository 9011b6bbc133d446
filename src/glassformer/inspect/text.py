"""Text in, ids out, and the labels the views print under each token.

A label shows a token exactly, with the invisible made visible: a space is drawn as ``·``
and a newline as ``⏎`` (so ``" the"`` reads ``·the``).
"""

import sys

import torch

from glassformer.errors import UserError


def token_label(tokenizer, token_id: int) -> str:
    """The text of one token, spaces and newlines made visible."""
    text = tokenizer.decode([token_id])
    return text.replace(" ", "·").replace("\n", "⏎").replace("\t", "⇥") or "∅"


def token_labels(tokenizer, ids: list[int]) -> list[str]:
    return [token_label(tokenizer, i) for i in ids]


def encode_prompt(tokenizer, text: str, block_size: int) -> list[int]:
    """`text` as ids, cropped to the model's context (said on stderr); never empty."""
    ids = tokenizer.encode(text)
    if not ids:
        raise UserError("the text is empty; pass --text with at least one character")
    if len(ids) > block_size:
        print(
            f"note: the text is {len(ids)} tokens, longer than the model's context of "
            f"{block_size}; using its last {block_size} tokens",
            file=sys.stderr,
        )
        ids = ids[-block_size:]
    return ids


def as_batch(ids: list[int], model: torch.nn.Module) -> torch.Tensor:
    device = next(model.parameters()).device
    return torch.tensor([ids], device=device)  # (1, T)


def rounded(t: torch.Tensor, digits: int = 4) -> list:
    """A tensor as nested lists of floats rounded for a compact JSON page."""
    return torch.round(t.detach().float().cpu(), decimals=digits).tolist()
