"""What the Llama entry of the architecture table needs beyond names: the settings we refuse.

Llama is our GPT in its Llama configuration (rotary positions, RMSNorm, SwiGLU, no biases,
grouped-query attention); the table (`architectures.py`) maps its Hugging Face and GGUF names.
What a name table cannot say is checked here: rotary scaling (Llama 3's `rope_scaling`,
llama.cpp's `rope_freqs` tensor) and a head size other than width / heads, both of which
glassformer does not implement yet.

    >>> check_llama_hf({"hidden_size": 8, "num_attention_heads": 2}, {}, "x")
    {}
"""

from glassformer.errors import UserError


def check_llama_hf(hf: dict, weights: dict, source) -> dict:
    """Refuse a Llama `config.json` with rotary scaling or another head size (no extra fields)."""
    rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    kind = rope.get("rope_type", rope.get("type", "default"))
    if kind != "default":
        raise UserError(
            f"{source} uses rotary scaling {kind!r}; glassformer implements plain rotary "
            "positions only."
        )
    n_embd, n_head = hf["hidden_size"], hf["num_attention_heads"]
    if hf.get("head_dim", n_embd // n_head) != n_embd // n_head:
        raise UserError(f"{source}: a head size other than hidden_size / heads is not supported.")
    return {}


def check_llama_gguf(get, tensor_names: set[str], config, source) -> None:
    """Refuse a Llama GGUF that rotates part of each head, or scales its rotary frequencies."""
    hs = config.head_dim
    if int(get("rope.dimension_count") or hs) != hs or int(get("attention.key_length") or hs) != hs:
        raise UserError(
            f"{source} rotates only part of each head or uses a head size other than "
            "width / heads; glassformer implements full-head rotary only."
        )
    scaling = get("rope.scaling.type") or "none"
    if scaling != "none" or "rope_freqs.weight" in tensor_names:
        raise UserError(
            f"{source} uses rotary scaling ({scaling if scaling != 'none' else 'rope_freqs'}); "
            "glassformer implements plain rotary positions only."
        )
