"""Task checkpoints: one folder per trained task model, like `glassformer train`'s folders.

    DIR/model.safetensors   the weights (tied tensors once)
    DIR/config.json         {"family": "encoder" | "seq2seq" | "lstm", "task": ..., "model": {...},
                             "results": {held-out numbers}}
    DIR/tokenizer.model     the task's symbols (`tokenizers/symbols.py`; older folders: vocab.json)
    DIR/metrics.jsonl       the training records

Loading checks the family before anything else and then every tensor's name and shape
(`train/checkpoint.py: load_weights`), so a wrong folder gives one sentence naming the tensor.
"""

import json
from pathlib import Path

import torch

from glassformer.core.files import atomic_write_text
from glassformer.core.weights import load_weights, save_weights
from glassformer.errors import UserError
from glassformer.tokenizers.symbols import SymbolVocab

FORMAT_VERSION = 1


def _families() -> dict[str, tuple[type, type]]:
    """family name -> (model class, config class)."""
    from glassformer.models.encoder import Encoder, EncoderConfig
    from glassformer.models.lstm import LSTMConfig, LSTMLanguageModel
    from glassformer.models.seq2seq import Seq2Seq, Seq2SeqConfig

    return {
        "encoder": (Encoder, EncoderConfig),
        "seq2seq": (Seq2Seq, Seq2SeqConfig),
        "lstm": (LSTMLanguageModel, LSTMConfig),
    }


def save_task_model(
    out_dir: Path, model: torch.nn.Module, task: str, vocab: SymbolVocab, results: dict
) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    family = next(f for f, (cls, _) in _families().items() if isinstance(model, cls))
    save_weights(model, out_dir / "model.safetensors")
    vocab.save(out_dir / "tokenizer.model")
    meta = {
        "format_version": FORMAT_VERSION,
        "family": family,
        "task": task,
        "model": model.config.to_dict(),
        "results": results,
    }
    atomic_write_text(out_dir / "config.json", json.dumps(meta, indent=2) + "\n")


def load_task_model(path: str | Path, family: str | None = None):
    """`model, vocab, meta` from a task checkpoint folder; `family` checks what it holds."""
    path = Path(path)
    cfg_path = path / "config.json"
    if not cfg_path.is_file() or not (path / "model.safetensors").is_file():
        raise UserError(f"{path} is not a task checkpoint (config.json or weights missing)")
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
        found = meta.get("family", "gpt")
    except (ValueError, AttributeError) as e:
        raise UserError(f"{cfg_path} is not a valid config ({e}); retrain") from None
    families = _families()
    if family is not None and found != family:
        raise UserError(f"{path} holds a {found!r} model, not {family!r}; pass a {family} folder")
    if found not in families:
        raise UserError(f"{path} holds a {found!r} model; load it with glassformer.load instead")
    model_cls, config_cls = families[found]
    try:
        config = config_cls.from_dict(meta["model"])
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{cfg_path} has an invalid model config ({e}); retrain") from None
    model = model_cls(config)
    load_weights(model, path / "model.safetensors")
    old = (path / "vocab.json").is_file() and not (path / "tokenizer.model").is_file()
    vocab = (
        SymbolVocab.from_vocab_json(path / "vocab.json")
        if old
        else SymbolVocab.load(path / "tokenizer.model")
    )
    return model.eval(), vocab, meta
