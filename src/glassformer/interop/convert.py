"""Hugging Face folders in and out, for every family of the architecture table.

    >>> model = from_hf("path/to/gpt2")                 # doctest: +SKIP
    >>> to_hf(model, "path/to/export")                  # doctest: +SKIP
    >>> model, tokenizer = load_hf_folder("SmolLM2")    # doctest: +SKIP

`from_hf` picks the table entry by config.json's `model_type`; `to_hf` by our model's shape
(`exports_as`: position scheme and norm), then checks that the foreign class computes the
same function (`mismatch`). Neither names a family: the table does.
"""

from fnmatch import fnmatch
from pathlib import Path

import torch
from torch import nn

from glassformer.errors import UserError
from glassformer.interop.architectures import (
    ARCHITECTURES,
    Architecture,
    by_hf_type,
    exports_as,
    mismatch,
)
from glassformer.interop.folder import (
    check_consumed,
    load_exact,
    read_chat_template,
    read_hf_config,
    read_hf_weights,
    take,
    write_hf_folder,
)
from glassformer.interop.mapping import (
    check_refused,
    dotted,
    hf_config,
    hf_tensors,
    our_config,
    our_state,
)
from glassformer.models.registry import FAMILIES, family_of
from glassformer.tokenizers.formats import load_gpt2_files
from glassformer.tokenizers.hf_json import load_tokenizer_json

CONFIG_ERRORS = (KeyError, TypeError, ValueError, AttributeError, ZeroDivisionError)


def model_from_hf(hf: dict, weights: dict[str, torch.Tensor], source) -> nn.Module:
    """Our model (eval mode) for a parsed config.json and its tensors, by the table."""
    arch = by_hf_type(hf.get("model_type"), source)
    if arch.hf_prefix:  # the same tensors with and without the prefix of a model with a head
        weights = {k.removeprefix(arch.hf_prefix): v for k, v in weights.items()}
    for name in [k for k in weights if any(fnmatch(k, p) for p in arch.hf_ignore)]:
        del weights[name]
    get = dotted(hf)
    check_refused(arch, get, source)
    try:
        extra = arch.hf_check(hf, weights, source) if arch.hf_check else {}
        config = our_config(arch, get, source, "hf", extra)
    except CONFIG_ERRORS as e:
        raise UserError(f"{source}/config.json is not a valid {arch.title} config ({e}).") from None
    state = our_state(
        arch,
        config,
        "hf",
        lambda name: take(weights, name, source),
        lambda name: weights.pop(name, None),  # e.g. a tied head that some savers write anyway
    )
    check_consumed(weights, source)
    model = FAMILIES[arch.family].model_class(config)
    load_exact(model, state, source)
    return model.eval()


def from_hf(folder: str | Path) -> nn.Module:
    """Our model for a Hugging Face folder (`config.json` + `model.safetensors`), in eval mode."""
    hf = read_hf_config(folder)
    by_hf_type(hf.get("model_type"), folder)  # an unknown family before its weights are read
    return model_from_hf(hf, read_hf_weights(folder), folder)


def hf_pair(model: nn.Module, arch: Architecture) -> tuple[dict, dict[str, torch.Tensor]]:
    """The config.json and the tensors of `model` as `arch`'s transformers class loads them."""
    problem = mismatch(arch, model.config)
    if problem is not None:
        name, theirs, ours = problem
        raise UserError(
            f"{arch.title} has model.{name}={theirs!r}, this model has {ours!r}; "
            f"only {arch.title}-shaped models can be exported"
        )
    hf = hf_config(arch, model.config)
    prefix = "" if hf["architectures"][0] == arch.hf_bare else arch.hf_prefix
    return hf, hf_tensors(arch, model, prefix)


def to_hf(model: nn.Module, folder: str | Path) -> None:
    """Write `model` as a Hugging Face folder that `from_pretrained(folder)` loads."""
    family = family_of(model)
    entries = [a for a in ARCHITECTURES.values() if a.family == family]
    if not entries:
        raise UserError(f"{type(model).__name__} has no Hugging Face export")
    arch = exports_as(model.config, family) or entries[0]
    write_hf_folder(folder, *hf_pair(model, arch))


def load_hf_folder(path: str | Path):
    """`model, tokenizer` from a Hugging Face folder of a family whose tokenizer we read:
    the entry's `tokenizer_files`, in order (GPT-2's vocab.json + merges.txt, tokenizer.json).

    This is what lets `glassformer generate --model PATH` run real GPT-2 or SmolLM2 weights.
    """
    path = Path(path)
    hf = read_hf_config(path)
    arch = by_hf_type(hf.get("model_type"), path)
    if not arch.tokenizer_files:
        readable = ", ".join(a.name for a in ARCHITECTURES.values() if a.tokenizer_files)
        raise UserError(
            f"{path} holds a Hugging Face {arch.name!r} model; glassformer.load reads "
            f"{readable} folders (interop.from_hf reads the model alone)"
        )
    model = model_from_hf(hf, read_hf_weights(path), path)
    eos, bos = hf.get("eos_token_id"), hf.get("bos_token_id")
    eos = eos[0] if isinstance(eos, list) else eos  # the first of several stop ids
    for name in arch.tokenizer_files:
        if name == "vocab.json" and (path / name).is_file() and (path / "merges.txt").is_file():
            return model, load_gpt2_files(path / "vocab.json", path / "merges.txt")
        if name == "tokenizer.json" and (path / name).is_file():
            template = read_chat_template(path)
            return model, load_tokenizer_json(path / name, eos, template, bos)
    wanted = [n.replace("vocab.json", "vocab.json and merges.txt") for n in arch.tokenizer_files]
    raise UserError(
        f"{path} has no {' nor '.join(wanted)}; copy the model's tokenizer files beside its "
        "config.json"
    )
