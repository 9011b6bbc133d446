"""Hugging Face checkpoint folders: `config.json` + `model.safetensors`, read and written.

Hugging Face stores a model as a folder holding its config (a JSON object whose `model_type`
names the architecture) and its weights as a flat `{name: tensor}` safetensors file. The
architecture table (`architectures.py`) says how those tensors become ours and back; this
file only moves bytes and reports what is wrong in one sentence.
"""

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from glassformer.core.files import atomic_write, atomic_write_text
from glassformer.core.weights import stored_weights
from glassformer.errors import UserError


def is_hf_folder(path: Path) -> bool:
    """True for a folder whose config.json names a Hugging Face `model_type`."""
    config = Path(path) / "config.json"
    if not config.is_file():  # also never opens a FIFO or a device named config.json
        return False
    try:
        return "model_type" in json.loads(config.read_text("utf-8"))
    except (OSError, ValueError, TypeError, RecursionError):
        return False


def read_hf_config(folder: str | Path) -> dict:
    """The parsed `config.json` of a Hugging Face folder, with a clear error if there is none."""
    folder = Path(folder)
    path = folder / "config.json"
    if not path.is_file():
        raise UserError(
            f"{folder} is not a Hugging Face model folder (no config.json); pass the folder "
            "that save_pretrained wrote"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({e}); re-download or re-save it") from None
    if not isinstance(config, dict):
        raise UserError(f"{path} does not hold a JSON object; re-download or re-save it")
    return config


def read_hf_weights(folder: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of `model.safetensors` (fp32, on the CPU)."""
    path = Path(folder) / "model.safetensors"
    if not path.is_file():
        raise UserError(
            f"{folder} has no model.safetensors; this loader reads safetensors weights only "
            "(re-save the model with save_pretrained(..., safe_serialization=True))"
        )
    try:
        return {k: v.float() for k, v in load_file(str(path)).items()}
    except (SafetensorError, OSError) as e:
        raise UserError(f"{path} is not a readable safetensors file ({e})") from None


def write_hf_folder(folder: str | Path, config: dict, weights: dict[str, torch.Tensor]) -> None:
    """Write `config.json` and `model.safetensors` (atomically each) into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in weights.items()}
    atomic_write(
        folder / "model.safetensors",
        lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}),
    )
    atomic_write_text(folder / "config.json", json.dumps(config, indent=2) + "\n")


def read_chat_template(folder: str | Path) -> str | None:
    """The template of `chat_template.jinja`, or of `tokenizer_config.json`, or None."""
    folder = Path(folder)
    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text(encoding="utf-8")
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    template = config.get("chat_template") if isinstance(config, dict) else None
    return template if isinstance(template, str) else None


def take(weights: dict[str, torch.Tensor], name: str, source: str | Path) -> torch.Tensor:
    """Pop tensor `name` from `weights`, naming it in the error if the folder lacks it."""
    if name not in weights:
        raise UserError(f"{source}: missing tensor {name!r}; the folder is incomplete or damaged")
    return weights.pop(name)


def check_consumed(weights: dict[str, torch.Tensor], source: str | Path) -> None:
    """After mapping, any tensor left over is one this architecture has no place for."""
    if weights:
        name = sorted(weights)[0]
        raise UserError(
            f"{source}: unexpected tensor {name!r}; the weights do not match config.json"
        )


def load_exact(model: torch.nn.Module, state: dict[str, torch.Tensor], source) -> None:
    """Load `state` into `model`, naming the first missing, extra or misshapen tensor."""
    expected = stored_weights(model)  # tied tensors (e.g. the LM head) appear once
    for name, tensor in state.items():
        if name in expected and tensor.shape != expected[name].shape:
            raise UserError(
                f"{source}: tensor {name!r} has shape {tuple(tensor.shape)}, the config needs "
                f"{tuple(expected[name].shape)}"
            )
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        what = f"missing tensor {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
        raise UserError(f"{source}: {what}; the weights do not match config.json")
    model.load_state_dict(state, strict=False)
