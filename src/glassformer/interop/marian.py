"""Marian (Hugging Face `MarianMTModel`) <-> our `Seq2Seq`: the original transformer layout.

    Hugging Face Marian                                 glassformer Seq2Seq
    model.shared (= encoder/decoder embed_tokens)       tok_emb (and the tied lm_head)
    final_logits_bias (1, vocab)                        lm_head.bias
    model.encoder.layers.{i}.self_attn.q|k|v_proj       enc_blocks.{i}.attn.qkv   (fused)
    model.encoder.layers.{i}.self_attn.out_proj         enc_blocks.{i}.attn.proj
    model.encoder.layers.{i}.self_attn_layer_norm       enc_blocks.{i}.ln_1
    model.encoder.layers.{i}.fc1 | fc2                  enc_blocks.{i}.mlp.fc | mlp.proj
    model.encoder.layers.{i}.final_layer_norm           enc_blocks.{i}.ln_2
    model.decoder.layers.{i}.self_attn.q|k|v_proj       dec_blocks.{i}.attn.qkv   (fused)
    model.decoder.layers.{i}.self_attn_layer_norm       dec_blocks.{i}.ln_self
    model.decoder.layers.{i}.encoder_attn.q_proj        dec_blocks.{i}.cross.q
    model.decoder.layers.{i}.encoder_attn.k|v_proj      dec_blocks.{i}.cross.kv   (fused)
    model.decoder.layers.{i}.encoder_attn_layer_norm    dec_blocks.{i}.ln_cross
    model.decoder.layers.{i}.fc1 | fc2 | final_ln       dec_blocks.{i}.mlp.fc | proj | ln_mlp

Marian's positions are the sinusoidal table with all sines first, then all cosines
(`sinusoid_layout="halves"`); they are computed, not stored. Token embeddings are scaled by
sqrt(d_model) when `scale_embedding` is set (our `emb_scale`) (the released opus-mt models do).
"""

from pathlib import Path

import torch

from glassformer.errors import UserError
from glassformer.interop.folder import check_consumed, load_exact, take
from glassformer.models.seq2seq import Seq2Seq, Seq2SeqConfig

_ACT_FROM_HF = {"gelu": "gelu", "gelu_new": "gelu_tanh", "relu": "relu", "swish": "silu"}
_ACT_FROM_HF["silu"] = "silu"
_ACT_TO_HF = {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu", "silu": "swish"}


def _renames(n_enc: int, n_dec: int) -> dict[str, str]:
    """our name -> Marian name for every tensor that is only renamed."""
    names = {}
    for i in range(n_enc):
        hf, ours = f"model.encoder.layers.{i}.", f"enc_blocks.{i}."
        for p in ("weight", "bias"):
            names[f"{ours}attn.proj.{p}"] = f"{hf}self_attn.out_proj.{p}"
            names[f"{ours}ln_1.{p}"] = f"{hf}self_attn_layer_norm.{p}"
            names[f"{ours}mlp.fc.{p}"] = f"{hf}fc1.{p}"
            names[f"{ours}mlp.proj.{p}"] = f"{hf}fc2.{p}"
            names[f"{ours}ln_2.{p}"] = f"{hf}final_layer_norm.{p}"
    for i in range(n_dec):
        hf, ours = f"model.decoder.layers.{i}.", f"dec_blocks.{i}."
        for p in ("weight", "bias"):
            names[f"{ours}attn.proj.{p}"] = f"{hf}self_attn.out_proj.{p}"
            names[f"{ours}ln_self.{p}"] = f"{hf}self_attn_layer_norm.{p}"
            names[f"{ours}cross.q.{p}"] = f"{hf}encoder_attn.q_proj.{p}"
            names[f"{ours}cross.proj.{p}"] = f"{hf}encoder_attn.out_proj.{p}"
            names[f"{ours}ln_cross.{p}"] = f"{hf}encoder_attn_layer_norm.{p}"
            names[f"{ours}mlp.fc.{p}"] = f"{hf}fc1.{p}"
            names[f"{ours}mlp.proj.{p}"] = f"{hf}fc2.{p}"
            names[f"{ours}ln_mlp.{p}"] = f"{hf}final_layer_norm.{p}"
    return names


def _fused(n_enc: int, n_dec: int) -> dict[str, list[str]]:
    """our fused projection -> the Marian projections stacked into it, in order."""
    fused = {}
    for i in range(n_enc):
        hf = f"model.encoder.layers.{i}.self_attn."
        fused[f"enc_blocks.{i}.attn.qkv"] = [hf + n for n in ("q_proj", "k_proj", "v_proj")]
    for i in range(n_dec):
        hf = f"model.decoder.layers.{i}."
        fused[f"dec_blocks.{i}.attn.qkv"] = [
            f"{hf}self_attn.{n}" for n in ("q_proj", "k_proj", "v_proj")
        ]
        fused[f"dec_blocks.{i}.cross.kv"] = [f"{hf}encoder_attn.{n}" for n in ("k_proj", "v_proj")]
    return fused


def marian_config(hf: dict, source) -> Seq2SeqConfig:
    if hf.get("normalize_before") or hf.get("add_final_layer_norm"):
        raise UserError(f"{source}: pre-norm Marian variants are not supported")
    if not hf.get("share_encoder_decoder_embeddings", True):
        raise UserError(f"{source}: separate source/target vocabularies are not supported")
    d = hf.get("d_model", 512)
    heads, layers = hf.get("encoder_attention_heads", 8), hf.get("encoder_layers", 6)
    if hf.get("decoder_attention_heads", heads) != heads:
        raise UserError(f"{source}: encoder and decoder must have the same number of heads")
    if hf.get("decoder_ffn_dim", 2048) != hf.get("encoder_ffn_dim", 2048):
        raise UserError(f"{source}: encoder and decoder must have the same MLP width")
    act = hf.get("activation_function", "gelu")
    if act not in _ACT_FROM_HF:
        raise UserError(f"{source}: Marian activation {act!r} has no glassformer equivalent")
    pad = hf.get("pad_token_id", 58100)
    return Seq2SeqConfig(
        vocab_size=hf.get("vocab_size", 58101),
        block_size=hf.get("max_position_embeddings", 1024),
        n_layer=layers,
        n_dec_layer=hf.get("decoder_layers", layers),
        n_head=heads,
        n_embd=d,
        mlp_ratio=hf.get("encoder_ffn_dim", 2048) / d,
        dropout=0.0,
        pos_emb="sinusoidal",
        sinusoid_layout="halves",
        emb_scale="sqrt_d" if hf.get("scale_embedding", False) else "none",
        norm_position="post",
        norm_eps=1e-5,
        activation=_ACT_FROM_HF[act],
        head_bias=True,
        tie_weights=True,
        pad_id=pad,
        bos_id=hf.get("decoder_start_token_id", pad),
        eos_id=hf.get("eos_token_id", 0),
    )


def marian_from_hf(hf: dict, weights: dict[str, torch.Tensor], source: str | Path) -> Seq2Seq:
    config = marian_config(hf, source)
    shared = take(weights, "model.shared.weight", source)
    for name in ("model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"):
        weights.pop(name, None)  # copies of model.shared
    for name in ("model.encoder.embed_positions.weight", "model.decoder.embed_positions.weight"):
        weights.pop(name, None)  # the fixed sinusoidal table, recomputed here
    head = weights.pop("lm_head.weight", None)
    if head is not None and not torch.equal(head, shared):
        raise UserError(f"{source}: an untied lm_head.weight is not supported")
    state = {
        "tok_emb.weight": shared,
        "lm_head.bias": take(weights, "final_logits_bias", source).reshape(-1),
    }
    for ours, theirs in _renames(config.n_layer, config.n_dec_layer).items():
        state[ours] = take(weights, theirs, source)
    for ours, parts in _fused(config.n_layer, config.n_dec_layer).items():
        for p in ("weight", "bias"):
            state[f"{ours}.{p}"] = torch.cat([take(weights, f"{n}.{p}", source) for n in parts])
    check_consumed(weights, source)
    model = Seq2Seq(config)
    load_exact(model, state, source)
    return model


def marian_to_hf(model: Seq2Seq) -> tuple[dict, dict[str, torch.Tensor]]:
    """The MarianMTModel `config.json` and tensors for a Marian-shaped Seq2Seq."""
    c = model.config
    wanted = {"pos_emb": "sinusoidal", "sinusoid_layout": "halves", "norm_position": "post"}
    wanted.update({"norm": "layernorm", "bias": True, "tie_weights": True, "head_bias": True})
    wanted.update({"qk_norm": False, "cosine_attn": False, "attn_scale": True, "norm_eps": 1e-5})
    wanted["cross_attention"] = "full"
    for field, value in wanted.items():
        if getattr(c, field) != value:
            raise UserError(
                f"Marian has model.{field}={value!r}, this model has {getattr(c, field)!r}; "
                "only Marian-shaped models can be exported"
            )
    if c.activation not in _ACT_TO_HF:
        raise UserError(f"Marian has no {c.activation!r} activation; this model cannot export")
    ffn = model.enc_blocks[0].mlp.fc.out_features
    hf = {
        "model_type": "marian",
        "architectures": ["MarianMTModel"],
        "vocab_size": c.vocab_size,
        "decoder_vocab_size": c.vocab_size,
        "d_model": c.n_embd,
        "encoder_layers": c.n_layer,
        "decoder_layers": c.n_dec_layer,
        "encoder_attention_heads": c.n_head,
        "decoder_attention_heads": c.n_head,
        "encoder_ffn_dim": ffn,
        "decoder_ffn_dim": ffn,
        "activation_function": _ACT_TO_HF[c.activation],
        "max_position_embeddings": c.block_size,
        "scale_embedding": c.embedding_scale != 1.0,
        "dropout": 0.0,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "pad_token_id": c.pad_id,
        "decoder_start_token_id": c.bos_id,
        "eos_token_id": c.eos_id,
        "share_encoder_decoder_embeddings": True,
        "tie_word_embeddings": True,
    }
    sd = model.state_dict()
    out = {
        "model.shared.weight": sd["tok_emb.weight"],
        "final_logits_bias": sd["lm_head.bias"][None],
    }
    for ours, theirs in _renames(c.n_layer, c.n_dec_layer).items():
        out[theirs] = sd[ours]
    for ours, parts in _fused(c.n_layer, c.n_dec_layer).items():
        for p in ("weight", "bias"):
            for name, t in zip(parts, sd[f"{ours}.{p}"].chunk(len(parts)), strict=True):
                out[f"{name}.{p}"] = t
    return hf, out
