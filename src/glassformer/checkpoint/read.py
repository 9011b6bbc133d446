"""`load(path)`: a model and its tokenizer from any folder glassformer reads.

    checkpoint folder (config.json names the family)   -> build the family, load the weights
    Hugging Face GPT-2 folder (config.json: model_type) -> interop/gpt2.py

Each problem with a folder ends in one sentence naming it and the fix (`UserError`): not a
folder, a missing file, an unknown family or format version, an invalid config, a tensor
that does not fit (`core/weights.py` names it).
"""

import json
from pathlib import Path

import torch
from torch import nn

from glassformer.checkpoint.write import FORMAT_VERSION
from glassformer.core.weights import load_weights
from glassformer.errors import UserError
from glassformer.interop.gpt2 import is_hf_folder, load_gpt2_folder
from glassformer.models.registry import FAMILIES, build, family_of
from glassformer.tokenizers import Tokenizer, load_tokenizer
from glassformer.tokenizers.symbols import SymbolVocab


def read_meta(path: str | Path) -> dict:
    """The config.json of checkpoint folder `path`, checked: a known format, family and model."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"no such checkpoint folder: {path}; pass a folder that training wrote")
    for name in ("config.json", "model.safetensors"):
        if not (path / name).is_file():
            raise UserError(
                f"{path} is not a glassformer checkpoint ({name} is missing); "
                "pass the --out folder of a training run"
            )
    cfg_path = path / "config.json"
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{cfg_path} is not valid JSON ({e}); retrain or restore it") from None
    if not isinstance(meta, dict):
        raise UserError(f"{cfg_path} does not hold a JSON object; retrain or restore it")
    if "model_type" in meta:
        raise UserError(
            f"{path} is a Hugging Face folder, not a glassformer checkpoint; "
            "load it with glassformer.load"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"{cfg_path} has format_version {meta.get('format_version')!r}, this glassformer "
            f"reads version {FORMAT_VERSION}; use the glassformer that wrote it or retrain"
        )
    family = meta.get("family")
    if family not in FAMILIES:
        raise UserError(
            f"{cfg_path} names the model family {family!r}, which this glassformer does not "
            f"know ({', '.join(FAMILIES)}); use the glassformer that wrote it or retrain"
        )
    try:
        FAMILIES[family].config_class.from_dict(meta["model"])
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise UserError(f"{cfg_path} has an invalid model config ({e!r}); retrain") from None
    return meta


def load(
    path: str | Path, device: str | torch.device = "cpu", family: str | None = None
) -> tuple[nn.Module, Tokenizer]:
    """`model, tokenizer` from `path`, the model in eval mode on `device`.

    `family` (e.g. "gpt" for a command that generates text) refuses a folder of another one.
    """
    path = Path(path)
    if is_hf_folder(path):  # e.g. the released gpt2 weights
        model, tokenizer = load_gpt2_folder(path)
        _expect(path, family_of(model), family)
        return model.to(device).eval(), tokenizer
    meta = read_meta(path)
    _expect(path, meta["family"], family)
    model = build(meta["family"], meta["model"])
    load_weights(model, path / "model.safetensors")
    return model.to(device).eval(), _tokenizer(path)


def _expect(path: Path, found: str, wanted: str | None) -> None:
    if wanted is not None and found != wanted:
        raise UserError(
            f"{path} holds a {found!r} model, not a {wanted!r} one; "
            f"pass a checkpoint folder of the {wanted} family"
        )


def _tokenizer(path: Path) -> Tokenizer:
    if (path / "tokenizer.model").is_file():
        return load_tokenizer(path / "tokenizer.model")
    if (path / "vocab.json").is_file():  # a task folder of glassformer before the one format
        return SymbolVocab.from_vocab_json(path / "vocab.json")
    raise UserError(
        f"{path} has no tokenizer.model; copy the tokenizer of its training run into it or retrain"
    )


def load_trainer_state(path: str | Path) -> dict:
    """The optimizer, step and RNG states a run saved (read with weights_only=True)."""
    file = Path(path) / "trainer_state.pt"
    if not file.is_file():
        raise UserError(
            f"cannot resume: {path} has no trainer_state.pt; train into it without --resume"
        )
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception:
        raise UserError(
            f"{file} is not a readable trainer state; delete it and train without --resume"
        ) from None
