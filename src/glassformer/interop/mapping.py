"""Apply an entry of the architecture table: foreign config and tensors -> ours, and back.

The table (`architectures.py`) says where things are; this file does the moving, the same
way for every family and format ("hf" for a Hugging Face folder, "gguf" for llama.cpp's file):

    >>> from glassformer.interop.architectures import LLAMA
    >>> parts("model.layers.0.self_attn.{q,k,v}_proj.weight")[1]
    'model.layers.0.self_attn.k_proj.weight'
    >>> our_config(LLAMA, {"vocab_size": 10, "hidden_size": 8, "num_attention_heads": 2,
    ...     "num_hidden_layers": 1, "intermediate_size": 16}.get, "x", "hf").mlp_hidden
    16
"""

import dataclasses
import re
from collections.abc import Callable

import torch

from glassformer.errors import UserError
from glassformer.interop.architectures import REQUIRED, Architecture, Row
from glassformer.models.registry import FAMILIES
from glassformer.nn.mlp import mlp_hidden_size

_PARTS = re.compile(r"\{(\w+(?:,\w+)+)\}")  # {q,k,v}: the parts of one stacked tensor


def parts(name: str) -> list[str]:
    """The foreign names stacked into one of ours (`a.{q,k}.w` -> `a.q.w`, `a.k.w`)."""
    m = _PARTS.search(name)
    if m is None:
        return [name]
    return [name[: m.start()] + part + name[m.end() :] for part in m.group(1).split(",")]


def _instances(row: Row, config) -> list[dict[str, str]]:
    """The substitutions of a row: one per block (`{i}`, `{j}`) and per `{p}`."""
    subs = [{}]
    for mark, values in (
        ("{i}", range(config.n_layer)),
        ("{j}", range(getattr(config, "n_dec_layer", 0))),
        ("{p}", ("weight", "bias")),
    ):
        if mark in row.ours:
            subs = [s | {mark: str(v)} for s in subs for v in values]
    return subs


def _fill(pattern: str, sub: dict[str, str]) -> str:
    for mark, value in sub.items():
        pattern = pattern.replace(mark, value)
    return pattern


def dotted(d: dict) -> Callable:
    """A `get(name)` over a nested config.json: "rope_parameters.rope_theta" looks inside."""

    def get(name: str):
        value = d
        for part in name.split("."):
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    return get


def check_refused(arch: Architecture, get: Callable, source) -> None:
    """Refuse, in one sentence, a config.json setting the entry says we do not implement."""
    for name, accepted in arch.refuse.items():
        value = get(name)
        if value is None:
            continue
        same = bool(value) == accepted if isinstance(accepted, bool) else value == accepted
        if not same:
            raise UserError(
                f"{source}: the {arch.title} setting {name}={value!r} is not supported "
                f"(glassformer implements {accepted!r} only)."
            )


def our_config(arch: Architecture, get: Callable, source, fmt: str, extra: dict | None = None):
    """Our config from the foreign keys (`get(name)` -> value or None) of format `fmt`; a
    required key that is missing raises KeyError(name) for the caller to phrase."""
    cls = FAMILIES[arch.family].config_class
    types = {f.name: f.type for f in dataclasses.fields(cls)}
    values = dict(arch.fixed)
    for name, k in (arch.hf_config if fmt == "hf" else arch.gguf_config).items():
        value = next((v for v in map(get, k.names) if v is not None), None)
        if value is None:
            if k.default is REQUIRED:
                raise KeyError(k.names[0])
            if k.default is None:
                continue  # our default
            value = k.default
        if k.values is not None:
            if not isinstance(value, str | bool | int | float) or value not in k.values:
                raise UserError(
                    f"{source}: {arch.title} {k.names[0]} {value!r} has no glassformer "
                    f"equivalent (supported: {', '.join(map(str, k.values))})"
                )
            value = k.values[value]
        if types[name] is float and isinstance(value, int | float):
            value = float(value)
        elif types[name] is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        values[name] = value
    return cls(**(values | (extra or {})))


def our_state(
    arch: Architecture, config, fmt: str, take: Callable, drop: Callable
) -> dict[str, torch.Tensor]:
    """Our state dict from the foreign tensors: `take(name)` each one the rows name (stacked
    and transformed as they say); `drop(name)` one whose switch is off (a tied head's copy)."""
    state = {}
    for row in arch.rows:
        foreign = getattr(row, fmt)
        if foreign is None:
            continue
        fix = row.hf_fix if fmt == "hf" else row.gguf_fix
        for sub in _instances(row, config):
            names = parts(_fill(foreign, sub))
            if row.when is not None and not row.when(config):
                for name in names:
                    drop(name)
                continue
            tensors = [take(name) for name in names]
            t = tensors[0] if len(tensors) == 1 else torch.cat(tensors)
            state[_fill(row.ours, sub)] = t if fix is None else fix.read(t, config)
    return state


def _ours(config, name: str):
    """The value of our field `name` as the foreign config states it (derived ones resolved)."""
    if name == "mlp_hidden":
        return mlp_hidden_size(config)
    if name == "n_kv_head":
        return config.kv_heads
    if name == "emb_scale":
        return "sqrt_d" if config.embedding_scale != 1.0 else "none"
    return getattr(config, name)


def hf_config(arch: Architecture, config) -> dict:
    """The config.json for our `config`: the entry's keys read right to left."""
    out = {"model_type": arch.name, "architectures": [arch.hf_class]}
    for name, k in arch.hf_config.items():
        value = _ours(config, name)
        if k.values is not None:
            value = next(theirs for theirs, ours in k.values.items() if ours == value)
        out[next(n for n in k.names if "." not in n)] = value
    out |= {name: value for name, value in arch.refuse.items() if "." not in name}
    return out | (arch.hf_export(config) if arch.hf_export else {})


def hf_tensors(arch: Architecture, model, prefix: str) -> dict[str, torch.Tensor]:
    """Our model's tensors under the entry's Hugging Face names, stacked ones split apart."""
    c, sd, out = model.config, model.state_dict(), {}
    for row in arch.rows:
        if row.hf is None or (row.when is not None and not row.when(c)):
            continue
        for sub in _instances(row, c):
            t = sd[_fill(row.ours, sub)]
            t = t if row.hf_fix is None else row.hf_fix.write(t, c)
            names = parts(_fill(row.hf, sub))
            if len(names) > 1:  # copies: safetensors refuses tensors that share memory
                sizes = row.split(c) if row.split else t.shape[0] // len(names)
                pieces = [piece.clone() for piece in t.split(sizes)]
            else:
                pieces = [t]
            for name, piece in zip(names, pieces, strict=True):
                out[("" if row.head else prefix) + name] = piece
    return out
