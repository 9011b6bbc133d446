"""`save`: the one checkpoint writer, for every model family.

    >>> save("runs/tiny", model, tokenizer, meta={"train": {...}, "data": {...}})  # doctest: +SKIP

writes config.json = `{"format_version": 1, "family": "gpt", "model": model.config.to_dict(),
"train": ..., "data": ...}` beside the weights, the tokenizer and a model card.
"""

import json
from pathlib import Path

import torch
from torch import nn

from glassformer.checkpoint.card import model_card
from glassformer.core.files import atomic_write, atomic_write_text
from glassformer.core.weights import save_weights
from glassformer.errors import UserError
from glassformer.models.registry import family_of
from glassformer.tokenizers import Tokenizer

FORMAT_VERSION = 1


def save(
    out_dir: str | Path,
    model: nn.Module,
    tokenizer: Tokenizer,
    meta: dict | None = None,
    trainer_state: dict | None = None,
    card: str | None = None,
) -> None:
    """Write `model` and `tokenizer` as the checkpoint folder `out_dir` (created if missing).

    `meta`'s sections go into config.json beside the model's config; its own "format_version",
    "family" and "model" keys are ignored (the model is the truth), so a `RunConfig.to_dict()`
    can be passed as it is. `card` replaces the generated README.md; `trainer_state` (plain
    tensors, numbers, dicts and lists) is what `load_trainer_state` returns.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"cannot save a checkpoint to {out_dir}: it is a file; pass a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    family = family_of(model)
    config = {"format_version": FORMAT_VERSION, "family": family, "model": model.config.to_dict()}
    config.update({k: v for k, v in (meta or {}).items() if k not in config})
    save_weights(model, out_dir / "model.safetensors")
    tokenizer.save(out_dir / "tokenizer.model")
    atomic_write_text(out_dir / "config.json", json.dumps(config, indent=2) + "\n")
    atomic_write_text(out_dir / "README.md", card or model_card(family, model, config))
    if trainer_state is not None:
        atomic_write(out_dir / "trainer_state.pt", lambda tmp: torch.save(trainer_state, tmp))
