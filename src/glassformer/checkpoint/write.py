"""`save`: the one checkpoint writer, for every model family.

    >>> save("runs/tiny", model, tokenizer, meta={"train": {...}, "data": {...}})  # doctest: +SKIP

writes config.json = `{"format_version": 1, "family": "gpt", "model": model.config.to_dict(),
"train": ..., "data": ...}` beside the weights, the tokenizer and a model card, all as one
unit (manifest.py: staged, committed by the manifest, then moved in). Weights or a trainer
state holding NaN or infinity are never saved: the folder keeps its previous checkpoint.
"""

import json
import math
import shutil
from pathlib import Path

import torch
from torch import nn

from glassformer.checkpoint.card import model_card
from glassformer.checkpoint.manifest import STAGING, apply, commit, recover
from glassformer.core.checked_paths import check_output_dir
from glassformer.core.files import atomic_write, atomic_write_text, fsync_dir
from glassformer.core.weights import save_weights
from glassformer.errors import UserError
from glassformer.models.registry import family_of
from glassformer.tokenizers import Tokenizer

FORMAT_VERSION = 1
FILES = ("config.json", "model.safetensors", "tokenizer.model", "README.md", "trainer_state.pt")
# a run folder: the checkpoint and the records beside it (never an input of the run)
RUN_FILES = (*FILES, "manifest.json", "tokenizer.vocab", "metrics.jsonl", "loss.png")
# files of an earlier save that this one may not rewrite (deleted so no other step lingers)
OBSOLETE = ("trainer_state.pt", "tokenizer.vocab", "vocab.json")


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
    tensors, numbers, dicts and lists; its "step" goes into the manifest and the weights'
    header) is what `load_trainer_state` returns.
    """
    out_dir = check_output_dir(out_dir, files=FILES, flag="checkpoint folder")
    family = family_of(model)
    config = {"format_version": FORMAT_VERSION, "family": family, "model": model.config.to_dict()}
    config.update({k: v for k, v in (meta or {}).items() if k not in config})
    step = None if trainer_state is None else trainer_state.get("step")
    _check_finite(model.state_dict(), "the weights", out_dir)
    if trainer_state is not None:
        _check_finite(trainer_state, "the optimizer state", out_dir)
    try:
        config_text = json.dumps(config, indent=2, allow_nan=False) + "\n"
    except ValueError:
        raise UserError(
            f"not saving to {out_dir}: its config.json would hold NaN or infinity (a loss of a "
            "diverged run?); lower the learning rate and retrain"
        ) from None

    out_dir.mkdir(parents=True, exist_ok=True)
    recover(out_dir, OBSOLETE)  # a save killed earlier: finished or discarded first
    staging = out_dir / STAGING
    staging.mkdir()
    fsync_dir(out_dir)
    try:
        header = None if step is None else {"step": str(step)}
        save_weights(model, staging / "model.safetensors", metadata=header)
        tokenizer.save(staging / "tokenizer.model")
        atomic_write_text(staging / "config.json", config_text)
        atomic_write_text(staging / "README.md", card or model_card(family, model, config))
        if trainer_state is not None:
            atomic_write(staging / "trainer_state.pt", lambda tmp: torch.save(trainer_state, tmp))
        manifest = commit(staging, step)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # nothing committed: the old save stays
        raise
    apply(out_dir, manifest, OBSOLETE)


def _check_finite(tree, what: str, out_dir: Path) -> None:
    """Refuse to save `tree` (tensors in dicts and lists) if a float in it is NaN or infinite."""
    if isinstance(tree, dict):
        items = tree.values()
    elif isinstance(tree, list | tuple):
        items = tree
    else:
        items = ()
    for item in items:
        _check_finite(item, what, out_dir)
    bad = (
        isinstance(tree, torch.Tensor)
        and tree.is_floating_point()
        and not torch.isfinite(tree).all()
    ) or (isinstance(tree, float) and not math.isfinite(tree))
    if bad:
        raise UserError(
            f"not saving to {out_dir}: {what} hold NaN or infinite values (training diverged); "
            "the previous checkpoint there is left as it was; lower the learning rate"
        )
