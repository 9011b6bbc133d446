"""GPT-2 <-> our `GPT`: the same architecture, different names and one transposition.

    Hugging Face GPT-2                        glassformer GPT
    transformer.wte.weight                    tok_emb.weight (and the tied lm_head)
    transformer.wpe.weight                    pos_emb.weight
    transformer.h.{i}.ln_1 / ln_2             blocks.{i}.ln_1 / ln_2
    transformer.h.{i}.attn.c_attn  (C, 3C)    blocks.{i}.attn.qkv   (3C, C)
    transformer.h.{i}.attn.c_proj  (C, C)     blocks.{i}.attn.proj  (C, C)
    transformer.h.{i}.mlp.c_fc     (C, 4C)    blocks.{i}.mlp.fc     (4C, C)
    transformer.h.{i}.mlp.c_proj   (4C, C)    blocks.{i}.mlp.proj   (C, 4C)
    transformer.ln_f                          ln_f

GPT-2's `Conv1D` computes `x @ W + b` with W stored (in, out); a `Linear` computes `x @ W.T + b`
with W stored (out, in), hence the transposes. GPT-2's activation `gelu_new` is GELU with the
tanh approximation (`gelu_tanh` here); its LayerNorm eps is `layer_norm_epsilon` (1e-5).
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
from glassformer.tokenizers.formats import load_gpt2_files
from glassformer.tokenizers.hf_json import load_tokenizer_json

# Hugging Face activation names <-> ours (gelu_new and gelu_pytorch_tanh are the same function)
_ACT_FROM_HF = {
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu": "gelu",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
}
_ACT_TO_HF = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu", "silu": "silu"}
_CONV1D = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
_OURS = {"attn.c_attn": "attn.qkv", "attn.c_proj": "attn.proj", "mlp.c_fc": "mlp.fc"}
_OURS["mlp.c_proj"] = "mlp.proj"


def gpt2_config(hf: dict, source: str | Path) -> GPTConfig:
    """Our GPTConfig for a GPT-2 `config.json` (rejecting options we do not implement)."""
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
        if hf.get(flag):
            raise UserError(f"{source}: GPT-2 option {flag}=true is not supported by glassformer")
    if hf.get("scale_attn_weights", True) is False:
        raise UserError(f"{source}: GPT-2 option scale_attn_weights=false is not supported")
    act = hf.get("activation_function", "gelu_new")
    if act not in _ACT_FROM_HF:
        raise UserError(f"{source}: GPT-2 activation {act!r} has no glassformer equivalent")
    n_embd = hf.get("n_embd", 768)
    n_inner = hf.get("n_inner") or 4 * n_embd
    return GPTConfig(
        vocab_size=hf.get("vocab_size", 50257),
        block_size=hf.get("n_positions", 1024),
        n_layer=hf.get("n_layer", 12),
        n_head=hf.get("n_head", 12),
        n_embd=n_embd,
        mlp_ratio=n_inner / n_embd,
        dropout=0.0,
        bias=True,
        pos_emb="learned",
        norm="layernorm",
        norm_position="pre",
        norm_eps=hf.get("layer_norm_epsilon", 1e-5),
        activation=_ACT_FROM_HF[act],
        tie_weights=hf.get("tie_word_embeddings", True),
    )


def gpt2_from_hf(hf: dict, weights: dict[str, torch.Tensor], source: str | Path) -> GPT:
    """Build our GPT from a GPT-2 config and its safetensors tensors."""
    config = gpt2_config(hf, source)
    # GPT2LMHeadModel prefixes "transformer."; a bare GPT2Model (e.g. the hub's gpt2) does not
    weights = {k.removeprefix("transformer."): v for k, v in weights.items()}
    for name in [k for k in weights if k.endswith((".attn.bias", ".attn.masked_bias"))]:
        del weights[name]  # old checkpoints store the causal mask as a buffer: not a weight
    lm_head = weights.pop("lm_head.weight", None)
    state = {
        "tok_emb.weight": take(weights, "wte.weight", source),
        "pos_emb.weight": take(weights, "wpe.weight", source),
        "ln_f.weight": take(weights, "ln_f.weight", source),
        "ln_f.bias": take(weights, "ln_f.bias", source),
    }
    for i in range(config.n_layer):
        for ln in ("ln_1", "ln_2"):
            for p in ("weight", "bias"):
                state[f"blocks.{i}.{ln}.{p}"] = take(weights, f"h.{i}.{ln}.{p}", source)
        for hf_name in _CONV1D:
            ours = f"blocks.{i}.{_OURS[hf_name]}"
            state[f"{ours}.weight"] = take(weights, f"h.{i}.{hf_name}.weight", source).t()
            state[f"{ours}.bias"] = take(weights, f"h.{i}.{hf_name}.bias", source)
    check_consumed(weights, source)
    if not config.tie_weights:
        if lm_head is None:
            raise UserError(f"{source}: missing tensor 'lm_head.weight' (the head is not tied)")
        state["lm_head.weight"] = lm_head
    model = GPT(config)
    load_exact(model, state, source)
    return model


def _check_exportable(config: GPTConfig) -> None:
    wanted = {
        "pos_emb": "learned",
        "norm": "layernorm",
        "norm_position": "pre",
        "bias": True,
        "causal": True,
        "attn_scale": True,
        "qk_norm": False,
        "cosine_attn": False,
        "logit_softcap": 0.0,
    }
    for field, value in wanted.items():
        if getattr(config, field) != value:
            raise UserError(
                f"GPT-2 has model.{field}={value!r}, this model has "
                f"{getattr(config, field)!r}; only GPT-2-shaped models can be exported"
            )
    if config.embedding_scale != 1.0:
        raise UserError("GPT-2 adds its token embeddings unscaled; set model.emb_scale=none")
    if config.activation not in _ACT_TO_HF:
        raise UserError(f"GPT-2 has no {config.activation!r} activation; this model cannot export")


def gpt2_to_hf(model: GPT) -> tuple[dict, dict[str, torch.Tensor]]:
    """The GPT-2 `config.json` and `GPT2LMHeadModel` tensors for our GPT."""
    c = model.config
    _check_exportable(c)
    hidden = model.blocks[0].mlp.fc.out_features if c.n_layer else int(4 * c.n_embd)
    hf = {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": c.vocab_size,
        "n_positions": c.block_size,
        "n_embd": c.n_embd,
        "n_layer": c.n_layer,
        "n_head": c.n_head,
        "n_inner": hidden,
        "activation_function": _ACT_TO_HF[c.activation],
        "layer_norm_epsilon": c.norm_eps,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "tie_word_embeddings": c.tie_weights,
        "bos_token_id": c.vocab_size - 1,
        "eos_token_id": c.vocab_size - 1,
    }
    sd = model.state_dict()
    out = {
        "transformer.wte.weight": sd["tok_emb.weight"],
        "transformer.wpe.weight": sd["pos_emb.weight"],
        "transformer.ln_f.weight": sd["ln_f.weight"],
        "transformer.ln_f.bias": sd["ln_f.bias"],
    }
    if not c.tie_weights:
        out["lm_head.weight"] = sd["lm_head.weight"]
    for i in range(c.n_layer):
        for ln in ("ln_1", "ln_2"):
            for p in ("weight", "bias"):
                out[f"transformer.h.{i}.{ln}.{p}"] = sd[f"blocks.{i}.{ln}.{p}"]
        for hf_name in _CONV1D:
            ours = f"blocks.{i}.{_OURS[hf_name]}"
            out[f"transformer.h.{i}.{hf_name}.weight"] = sd[f"{ours}.weight"].t()
            out[f"transformer.h.{i}.{hf_name}.bias"] = sd[f"{ours}.bias"]
    return hf, out


def is_hf_folder(path: Path) -> bool:
    """True for a folder whose config.json names a Hugging Face `model_type`."""
    config = Path(path) / "config.json"
    if not config.is_file():  # also never opens a FIFO or a device named config.json
        return False
    try:
        return "model_type" in json.loads(config.read_text("utf-8"))
    except (OSError, ValueError, TypeError, RecursionError):
        return False


def load_gpt2_folder(path: str | Path):
    """`model, tokenizer` from a Hugging Face GPT-2 folder: weights + vocab.json/merges.txt,
    or tokenizer.json alone (also the char vocabulary of a glassformer export).

    This is what lets `glassformer generate --model PATH` run real GPT-2 weights.
    """
    path = Path(path)
    hf = read_hf_config(path)
    if hf.get("model_type") != "gpt2":
        raise UserError(
            f"{path} holds a Hugging Face {hf.get('model_type')!r} model, not GPT-2; "
            "glassformer.load reads GPT-2 folders (interop.from_hf reads the model alone)"
        )
    model = gpt2_from_hf(hf, read_hf_weights(path), path).eval()
    if (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
        return model, load_gpt2_files(path / "vocab.json", path / "merges.txt")
    if (path / "tokenizer.json").is_file():  # transformers 5 writes this file alone
        eos = hf.get("eos_token_id")
        return model, load_tokenizer_json(
            path / "tokenizer.json", eos, None, hf.get("bos_token_id")
        )
    raise UserError(
        f"{path} has no tokenizer.json (nor vocab.json and merges.txt); copy the model's "
        "tokenizer files beside its config.json"
    )
