"""Hugging Face Llama folders (`config.json` + `model.safetensors` + `tokenizer.json`) in.

The same architecture as the GGUF route (`gguf.py`), under Hugging Face's names; its W_q and
W_k rows are already in the "rotate half" order that our `Rotary` uses, so nothing is permuted:

    Hugging Face Llama                              glassformer GPT (Llama configuration)
    model.embed_tokens.weight                       tok_emb.weight
    model.layers.{i}.input_layernorm.weight         blocks.{i}.ln_1.weight
    model.layers.{i}.self_attn.{q,k,v}_proj.weight  blocks.{i}.attn.qkv.weight   [q; k; v]
    model.layers.{i}.self_attn.o_proj.weight        blocks.{i}.attn.proj.weight
    model.layers.{i}.post_attention_layernorm       blocks.{i}.ln_2.weight
    model.layers.{i}.mlp.{gate,up}_proj.weight      blocks.{i}.mlp.fc.weight     [gate; up]
    model.layers.{i}.mlp.down_proj.weight           blocks.{i}.mlp.proj.weight
    model.norm.weight                               ln_f.weight
    lm_head.weight (absent when tied)               lm_head.weight
"""

import json
from pathlib import Path

import torch

from glassformer.errors import UserError
from glassformer.interop.folder import (
    check_consumed,
    load_exact,
    read_hf_config,
    read_hf_weights,
    take,
)
from glassformer.models.config import GPTConfig
from glassformer.models.gpt import GPT
from glassformer.tokenizers.pretrained_bpe import PretrainedBPE


def llama_config(hf: dict, source: str | Path) -> GPTConfig:
    """Our GPTConfig for a Llama `config.json` (refusing options we do not implement)."""
    rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        raise UserError(
            f"{source} uses rotary scaling {rope.get('rope_type', rope.get('type'))!r}; "
            "glassformer implements plain rotary positions only."
        )
    for flag in ("attention_bias", "mlp_bias"):
        if hf.get(flag):
            raise UserError(f"{source}: the Llama option {flag}=true is not supported.")
    if hf.get("hidden_act", "silu") != "silu":
        raise UserError(f"{source}: Llama activation {hf['hidden_act']!r} is not SwiGLU's silu.")
    n_embd, n_head = hf["hidden_size"], hf["num_attention_heads"]
    if hf.get("head_dim", n_embd // n_head) != n_embd // n_head:
        raise UserError(f"{source}: a head size other than hidden_size / heads is not supported.")
    return GPTConfig(
        vocab_size=hf["vocab_size"],
        block_size=hf.get("max_position_embeddings", 2048),
        n_layer=hf["num_hidden_layers"],
        n_head=n_head,
        n_kv_head=hf.get("num_key_value_heads") or n_head,
        n_embd=n_embd,
        mlp_hidden=hf["intermediate_size"],
        dropout=0.0,
        bias=False,
        pos_emb="rotary",
        rope_theta=float(rope.get("rope_theta", hf.get("rope_theta", 10000.0))),
        norm="rmsnorm",
        norm_eps=hf.get("rms_norm_eps", 1e-6),
        activation="swiglu",
        tie_weights=hf.get("tie_word_embeddings", False),
    )


def llama_from_hf(hf: dict, weights: dict[str, torch.Tensor], source: str | Path) -> GPT:
    """Our GPT with the weights of a Hugging Face Llama (names in the table at the top)."""
    try:
        config = llama_config(hf, source)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{source}/config.json is not a valid Llama config ({e}).") from None
    sd = {"tok_emb.weight": take(weights, "model.embed_tokens.weight", source)}
    sd["ln_f.weight"] = take(weights, "model.norm.weight", source)
    if not config.tie_weights:
        sd["lm_head.weight"] = take(weights, "lm_head.weight", source)
    weights.pop("lm_head.weight", None)  # a tied copy some savers write anyway
    for i in range(config.n_layer):
        hf_, ours = f"model.layers.{i}.", f"blocks.{i}."
        attn = [take(weights, f"{hf_}self_attn.{p}_proj.weight", source) for p in "qkv"]
        mlp = [take(weights, f"{hf_}mlp.{p}_proj.weight", source) for p in ("gate", "up")]
        sd[ours + "ln_1.weight"] = take(weights, hf_ + "input_layernorm.weight", source)
        sd[ours + "attn.qkv.weight"] = torch.cat(attn)  # (C + 2 * nkv * hs, C)
        sd[ours + "attn.proj.weight"] = take(weights, hf_ + "self_attn.o_proj.weight", source)
        sd[ours + "ln_2.weight"] = take(weights, hf_ + "post_attention_layernorm.weight", source)
        sd[ours + "mlp.fc.weight"] = torch.cat(mlp)  # (2 * H, C)
        sd[ours + "mlp.proj.weight"] = take(weights, hf_ + "mlp.down_proj.weight", source)
    check_consumed(weights, source)
    model = GPT(config)
    load_exact(model, sd, source)
    return model.eval()


def load_llama_folder(path: str | Path) -> tuple[GPT, PretrainedBPE]:
    """`model, tokenizer` from a Hugging Face Llama folder (weights, config, tokenizer.json)."""
    path = Path(path)
    hf = read_hf_config(path)
    model = llama_from_hf(hf, read_hf_weights(path), path)
    if not (path / "tokenizer.json").is_file():
        raise UserError(f"{path} has no tokenizer.json; copy the model's tokenizer beside it.")
    eos, bos = (hf.get(key) for key in ("eos_token_id", "bos_token_id"))
    eos = eos[0] if isinstance(eos, list) else eos  # the first of several stop ids
    tokenizer = PretrainedBPE.from_tokenizer_json(
        path / "tokenizer.json", eos, _chat_template(path), bos
    )
    return model, tokenizer


def _chat_template(path: Path) -> str | None:
    """The template of `chat_template.jinja`, or of `tokenizer_config.json`, or None."""
    if (path / "chat_template.jinja").is_file():
        return (path / "chat_template.jinja").read_text(encoding="utf-8")
    try:
        config = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    template = config.get("chat_template") if isinstance(config, dict) else None
    return template if isinstance(template, str) else None


def llama_exportable(config: GPTConfig) -> str | None:
    """None if `config` is Llama-shaped (LlamaForCausalLM computes the same function), else
    the first setting that differs, as "model.FIELD=value"."""
    wanted = {
        "pos_emb": "rotary",
        "norm": "rmsnorm",
        "norm_position": "pre",
        "activation": "swiglu",
        "bias": False,
        "causal": True,
        "attn_scale": True,
        "qk_norm": False,
        "cosine_attn": False,
        "logit_softcap": 0.0,
        "embedding_scale": 1.0,
    }
    for field, value in wanted.items():
        if getattr(config, field) != value:
            return f"model.{field}={getattr(config, field)!r} (Llama has {value!r})"
    return None


def llama_to_hf(model: GPT) -> tuple[dict, dict[str, torch.Tensor]]:
    """The Llama `config.json` and `LlamaForCausalLM` tensors of our Llama-shaped GPT (the
    table at the top, read right to left: qkv and the gated fc split back into their parts)."""
    c = model.config
    hs, kv = c.head_dim, c.kv_heads * c.head_dim
    hidden = model.blocks[0].mlp.proj.in_features if c.n_layer else 0
    hf = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "vocab_size": c.vocab_size,
        "hidden_size": c.n_embd,
        "intermediate_size": hidden,
        "num_hidden_layers": c.n_layer,
        "num_attention_heads": c.n_head,
        "num_key_value_heads": c.kv_heads,
        "head_dim": hs,
        "max_position_embeddings": c.block_size,
        "rms_norm_eps": c.norm_eps,
        "rope_theta": c.rope_theta,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": c.tie_weights,
    }
    sd = model.state_dict()
    out = {
        "model.embed_tokens.weight": sd["tok_emb.weight"],
        "model.norm.weight": sd["ln_f.weight"],
    }
    if not c.tie_weights:
        out["lm_head.weight"] = sd["lm_head.weight"]
    for i in range(c.n_layer):
        hf_, ours = f"model.layers.{i}.", f"blocks.{i}."
        # copies: safetensors refuses tensors that share memory
        q, k, v = (t.clone() for t in sd[ours + "attn.qkv.weight"].split((c.n_embd, kv, kv)))
        gate, up = (t.clone() for t in sd[ours + "mlp.fc.weight"].chunk(2))  # 2 x (H, C)
        out[hf_ + "input_layernorm.weight"] = sd[ours + "ln_1.weight"]
        out[hf_ + "self_attn.q_proj.weight"] = q
        out[hf_ + "self_attn.k_proj.weight"] = k
        out[hf_ + "self_attn.v_proj.weight"] = v
        out[hf_ + "self_attn.o_proj.weight"] = sd[ours + "attn.proj.weight"]
        out[hf_ + "post_attention_layernorm.weight"] = sd[ours + "ln_2.weight"]
        out[hf_ + "mlp.gate_proj.weight"] = gate
        out[hf_ + "mlp.up_proj.weight"] = up
        out[hf_ + "mlp.down_proj.weight"] = sd[ours + "mlp.proj.weight"]
    return hf, out
