"""Checkpoint folders: everything the next command needs, written atomically.

    DIR/model.safetensors   the weights (tied LM head stored once)
    DIR/config.json         the RunConfig (model + train + data) and the model family
    DIR/tokenizer.model     the tokenizer (+ tokenizer.vocab, a human-readable dump)
    DIR/trainer_state.pt    optimizer, step, RNG states (loaded with weights_only=True)
    DIR/README.md           a short model card

Each file is written to a temporary name, fsync'ed and renamed over the old one, so a crash
leaves either the old file or the new one, never half of one.
"""

import json
from pathlib import Path

import torch

from glassformer.core.files import atomic_write, atomic_write_text
from glassformer.core.weights import load_weights, save_weights
from glassformer.errors import UserError
from glassformer.models.gpt import GPT
from glassformer.models.lstm import LSTMConfig
from glassformer.train.config import RunConfig

FORMAT_VERSION = 1


def save_model(out_dir: Path, model: GPT, config: RunConfig, tokenizer) -> None:
    """Write weights, config, tokenizer and model card (not the trainer state)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_weights(model, out_dir / "model.safetensors")
    family = "lstm" if isinstance(config.model, LSTMConfig) else "gpt"
    meta = {"format_version": FORMAT_VERSION, "family": family, **config.to_dict()}
    atomic_write_text(out_dir / "config.json", json.dumps(meta, indent=2) + "\n")
    tokenizer.save(out_dir / "tokenizer.model")
    atomic_write_text(out_dir / "README.md", _model_card(model, config))


def _model_card(model: GPT, config: RunConfig) -> str:
    m = config.model
    if isinstance(m, LSTMConfig):
        return (
            "# glassformer LSTM language model (the baseline of "
            "benchmarks/transformer_vs_lstm.py)\n\n"
            f"- {model.num_params() / 1e6:.2f}M parameters: {m.n_layer} LSTM layers, "
            f"width {m.n_embd}, vocabulary {m.vocab_size}\n"
        )
    return (
        "# glassformer GPT checkpoint\n\n"
        f"- {model.num_params() / 1e6:.2f}M parameters: {m.n_layer} layers, {m.n_head} heads, "
        f"width {m.n_embd}, context {m.block_size}, vocabulary {m.vocab_size}\n"
        f"- positions: {m.pos_emb}; norm: {m.norm} ({m.norm_position}-norm); "
        f"MLP activation: {m.activation}\n"
        f"- trained on: {config.data.path or 'the embedded Python documentation'} "
        f"({config.data.tokenizer} tokenizer)\n\n"
        "Use it:\n\n"
        "    glassformer generate --model THIS_FOLDER --prompt 'Hello'\n\n"
        "or in Python: `model, tokenizer = glassformer.load('THIS_FOLDER')`.\n"
    )


def save_trainer_state(out_dir: Path, state: dict) -> None:
    atomic_write(Path(out_dir) / "trainer_state.pt", lambda tmp: torch.save(state, tmp))


def load_trainer_state(out_dir: Path) -> dict:
    path = Path(out_dir) / "trainer_state.pt"
    if not path.exists():
        raise UserError(
            f"cannot resume: {out_dir} has no trainer_state.pt; train into it without --resume"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise UserError(
            f"{path} is not a readable trainer state; delete it and train without --resume"
        ) from None


def read_config(path: Path) -> RunConfig:
    """The RunConfig of checkpoint folder `path`, with a clear error if it is not one."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"no such checkpoint folder: {path}; pass --model a folder from train")
    cfg_path = path / "config.json"
    if not cfg_path.exists() or not (path / "model.safetensors").exists():
        raise UserError(
            f"{path} is not a glassformer checkpoint (config.json or model.safetensors is "
            "missing); pass the --out folder of a training run"
        )
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
        if meta.get("family", "gpt") != "gpt":
            raise UserError(
                f"{path} holds a {meta['family']!r} model, not a GPT; "
                "use the command for that family"
            )
        return RunConfig.from_dict(meta)
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{cfg_path} is not a valid glassformer config ({e}); retrain") from None



def load(path: str | Path, device: str | torch.device = "cpu"):
    """`model, tokenizer = glassformer.load(DIR)`: a checkpoint folder, in eval mode."""
    from glassformer.interop.gpt2 import is_hf_folder, load_gpt2_folder
    from glassformer.tokenizers import load_tokenizer

    path = Path(path)
    if is_hf_folder(path):  # a Hugging Face GPT-2 folder, e.g. the released gpt2 weights
        model, tokenizer = load_gpt2_folder(path)
        return model.to(device).eval(), tokenizer
    config = read_config(path)
    model = GPT(config.model)
    load_weights(model, path / "model.safetensors")
    tokenizer = load_tokenizer(path / "tokenizer.model")
    return model.to(device).eval(), tokenizer
