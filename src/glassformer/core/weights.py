"""Weights in and out of safetensors files, checked tensor by tensor.

A model's weights are its state dict with each tied tensor stored once (a GPT whose LM head
is its token embedding stores `tok_emb.weight` only). Loading names the first missing,
unexpected, misshapen, mistyped (a float tensor relabelled I32 in the header) or non-finite
tensor instead of failing deep inside `load_state_dict` or loading garbage. Safetensors
holds no code: reading it never runs anything.
"""

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file

from glassformer.core.checked_paths import check_input_file
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


def save_weights(
    model: torch.nn.Module, file: Path, metadata: dict[str, str] | None = None
) -> None:
    """Write `stored_weights(model)` to `file` atomically (`metadata`: text in its header)."""
    weights = {k: v.cpu() for k, v in stored_weights(model).items()}
    atomic_write(file, lambda tmp: save_file(weights, str(tmp), metadata=metadata))


def parse_weights(data: bytes, file: Path) -> dict[str, torch.Tensor]:
    """The tensors of the safetensors bytes `data` read from `file`."""
    try:
        return load(data)
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{file} is not a readable safetensors file ({e})") from None


def weights_metadata(data: bytes) -> dict[str, str]:
    """The text metadata in the header of safetensors bytes `data` ({} if none or unreadable).

    The header is an 8-byte little-endian length, then that many bytes of JSON.
    """
    try:
        n = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + n]) if 0 < n <= len(data) - 8 else {}
    except (ValueError, RecursionError):
        return {}
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return meta if isinstance(meta, dict) else {}


def load_weights(model: torch.nn.Module, file: Path) -> None:
    """Load safetensors weights into `model`, naming any missing, extra or misshapen tensor."""
    data = check_input_file(file, "weights").read_bytes()  # a FIFO or device is never opened
    load_weight_dict(model, parse_weights(data, file), file)


def load_weight_dict(model: torch.nn.Module, weights: dict[str, torch.Tensor], file: Path) -> None:
    """Check `weights` (read from `file`) against `model` tensor by tensor, then load them."""
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
        want = expected[name].dtype
        if tensor.dtype.is_floating_point != want.is_floating_point or (
            not want.is_floating_point and tensor.dtype != want
        ):
            raise UserError(
                f"{file} is damaged: tensor {name!r} is stored as {tensor.dtype}, the model "
                f"needs {want}; restore the file or retrain"
            )
        if tensor.dtype.is_floating_point and not torch.isfinite(tensor).all():
            raise UserError(
                f"{file} holds NaN or infinite values in tensor {name!r}; the run that wrote "
                "it diverged, so use an earlier checkpoint or retrain with a lower learning rate"
            )
    model.load_state_dict(weights, strict=False)
