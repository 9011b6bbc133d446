"""What the Llama-style entries of the architecture table need beyond names: rotary scaling.

Llama is our GPT in its Llama configuration (rotary positions, RMSNorm, SwiGLU, no biases,
grouped-query attention); the table (`architectures.py`) maps its Hugging Face and GGUF names.
What a name table cannot say is read here: rotary scaling, which the two formats store
differently.

- A Hugging Face `config.json` names it: `rope_scaling` (transformers 5: `rope_parameters`)
  of type `linear` (a factor) or `llama3` (factor, low_freq_factor, high_freq_factor,
  original_max_position_embeddings).
- A GGUF file names linear scaling in metadata (`{arch}.rope.scaling.type`, `.factor`), but
  llama.cpp's converter stores Llama 3's as a tensor, `rope_freqs.weight`: the divisor of each
  rotary frequency. It computes it from the config's factors and always from an original
  context of 8192 (it looks for `original_max_position_embeddings` at the config's top level,
  where Llama 3 does not put it). We take the factor as the largest divisor, the other
  parameters as every Llama 3.x release has them (low 1, high 4, 8192), and check that they
  give the stored divisors back; a file they do not is refused in one sentence.

A head size other than width / heads, or rotary on part of each head, is refused: glassformer
does not implement them yet.

    >>> check_rotary_hf({"hidden_size": 8, "num_attention_heads": 2}, {}, "x")
    {}
    >>> check_rotary_hf({"hidden_size": 8, "num_attention_heads": 2,
    ...     "rope_scaling": {"rope_type": "linear", "factor": 4.0}}, {}, "x")
    {'rope_scaling': 'linear', 'rope_factor': 4.0}
"""

from dataclasses import replace

import torch

from glassformer.errors import UserError
from glassformer.nn.rotary import RotaryScaling, llama3_divisors, rotary_frequencies

# config.json's llama3 keys -> our fields, with the values transformers assumes when absent
LLAMA3_KEYS = {
    "factor": ("rope_factor", None),
    "low_freq_factor": ("rope_low_freq_factor", 1.0),
    "high_freq_factor": ("rope_high_freq_factor", 4.0),
    "original_max_position_embeddings": ("rope_original_context", 8192),
}


def check_rotary_hf(hf: dict, weights: dict, source) -> dict:
    """Our rotary-scaling fields from a `config.json` (none: {}); another scaling type or
    another head size is refused in one sentence."""
    rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    kind = rope.get("rope_type", rope.get("type", "default"))
    n_embd, n_head = hf["hidden_size"], hf["num_attention_heads"]
    if hf.get("head_dim") not in (None, n_embd // n_head):
        raise UserError(f"{source}: a head size other than hidden_size / heads is not supported.")
    if kind == "default":
        return {}
    if kind not in ("linear", "llama3") or "factor" not in rope:
        raise UserError(
            f"{source} uses rotary scaling {kind!r}; glassformer implements linear and llama3 "
            "rotary scaling (with a factor) only."
        )
    if kind == "linear":
        return {"rope_scaling": "linear", "rope_factor": float(rope["factor"])}
    fields = {"rope_scaling": "llama3"}
    for theirs, (ours, default) in LLAMA3_KEYS.items():
        fields[ours] = rope.get(theirs, default)
    fields["rope_original_context"] = int(fields["rope_original_context"])
    return fields


def rotary_export(c) -> dict:
    """The `rope_scaling` entry of a config.json for our config's rotary scaling ({}: none).

    >>> from glassformer.models.config import GPTConfig
    >>> rotary_export(GPTConfig(pos_emb="rotary", rope_scaling="linear", rope_factor=2.0))
    {'rope_scaling': {'rope_type': 'linear', 'factor': 2.0}}
    """
    if c.rope_scaling == "none":
        return {}
    scaling = {"rope_type": c.rope_scaling, "factor": c.rope_factor}
    if c.rope_scaling == "llama3":
        scaling |= {theirs: getattr(c, ours) for theirs, (ours, _) in LLAMA3_KEYS.items()}
    return {"rope_scaling": scaling}


def check_llama_gguf(get, tensor, names: set[str], config, source):
    """Our config with the file's Llama 3 rotary scaling (the `rope_freqs` tensor) read in;
    partial rotary, another head size or a scaling we cannot reproduce is refused."""
    hs = config.head_dim
    if int(get("rope.dimension_count") or hs) != hs or int(get("attention.key_length") or hs) != hs:
        raise UserError(
            f"{source} rotates only part of each head or uses a head size other than "
            "width / heads; glassformer implements full-head rotary only."
        )
    if "rope_freqs.weight" not in names:
        return config
    if config.rope_scaling != "none":
        raise UserError(
            f"{source} has both {config.rope_scaling} rotary scaling and a rope_freqs tensor; "
            "glassformer reads one of the two."
        )
    stored = tensor("rope_freqs.weight").double().flatten()  # (hs/2,): each frequency's divisor
    scaling = RotaryScaling("llama3", factor=float(stored.max()))
    inv_freq = rotary_frequencies(hs, config.rope_theta, RotaryScaling())
    if stored.shape != inv_freq.shape or not torch.allclose(
        llama3_divisors(inv_freq, scaling), stored, rtol=1e-5, atol=0.0
    ):
        raise UserError(
            f"{source}: its rope_freqs tensor is not Llama 3's rotary scaling (factor "
            f"{scaling.factor:g}, low 1, high 4, original context 8192); glassformer cannot "
            "reproduce these frequencies."
        )
    return replace(config, rope_scaling="llama3", rope_factor=scaling.factor)
