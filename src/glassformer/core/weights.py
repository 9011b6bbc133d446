"""Weights in and out of safetensors files, checked tensor by tensor.

A model's weights are its state dict with each tied tensor stored once (a GPT whose LM head
is its token embedding stores `tok_emb.weight` only). Loading names the first missing,
unexpected or misshapen tensor instead of failing deep inside `load_state_dict`.
"""

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from glassformer.core.files import atomic_write
from glassformer.errors import UserError


def stored_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with each tied tensor stored once (e.g. a GPT's lm_head = tok_emb)."""
    seen: set[int] = set()
    tied = set()
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            tied.add(name)
        seen.add(id(p))
    return {k: v.detach().contiguous() for k, v in model.state_dict().items() if k not in tied}


def save_weights(model: torch.nn.Module, file: Path) -> None:
    """Write `stored_weights(model)` to `file` atomically."""
    weights = {k: v.cpu() for k, v in stored_weights(model).items()}
    atomic_write(file, lambda tmp: save_file(weights, str(tmp)))


def load_weights(model: torch.nn.Module, file: Path) -> None:
    """Load safetensors weights into `model`, naming any missing, extra or misshapen tensor."""
    try:
        weights = load_file(str(file))
    except (SafetensorError, OSError) as e:
        raise UserError(f"{file} is not a readable safetensors file ({e})") from None
    expected = stored_weights(model)
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        what = f"missing tensor {missing[0]!r}" if missing else f"unexpected tensor {extra[0]!r}"
        raise UserError(f"{file} does not match its config.json: {what}")
    for name, tensor in weights.items():
        if tensor.shape != expected[name].shape:
            raise UserError(
                f"{file} does not match its config.json: tensor {name!r} has shape "
                f"{tuple(tensor.shape)}, the config needs {tuple(expected[name].shape)}"
            )
    model.load_state_dict(weights, strict=False)
