"""BERT (and MiniLM, which is a small BERT) <-> our `Encoder`.

    Hugging Face BERT                                  glassformer Encoder
    embeddings.word_embeddings                         tok_emb
    embeddings.position_embeddings                     pos_emb
    embeddings.token_type_embeddings                   type_emb
    embeddings.LayerNorm                               ln_emb
    encoder.layer.{i}.attention.self.query|key|value   blocks.{i}.attn.qkv   (fused: q, k, v)
    encoder.layer.{i}.attention.output.dense           blocks.{i}.attn.proj
    encoder.layer.{i}.attention.output.LayerNorm       blocks.{i}.ln_1       (post-norm)
    encoder.layer.{i}.intermediate.dense               blocks.{i}.mlp.fc
    encoder.layer.{i}.output.dense                     blocks.{i}.mlp.proj
    encoder.layer.{i}.output.LayerNorm                 blocks.{i}.ln_2
    pooler.dense                                       pooler
    cls.predictions.transform.dense | .LayerNorm       mlm.dense | mlm.norm
    cls.predictions.bias (decoder tied to embeddings)  mlm.decoder.bias
    classifier                                         classifier

Heads are found from the tensors present; with a head the names carry a `bert.` prefix.
"""

from pathlib import Path

import torch

from glassformer.errors import UserError
from glassformer.interop.folder import check_consumed, load_exact, take
from glassformer.models.encoder import Encoder, EncoderConfig

_ACT_FROM_HF = {"gelu": "gelu", "gelu_new": "gelu_tanh", "relu": "relu", "silu": "silu"}
_ACT_TO_HF = {v: k for k, v in _ACT_FROM_HF.items()}


def _renames(n_layer: int) -> dict[str, str]:
    """our name -> Hugging Face name (without the `bert.` prefix) for every plain tensor."""
    names = {
        "tok_emb.weight": "embeddings.word_embeddings.weight",
        "pos_emb.weight": "embeddings.position_embeddings.weight",
        "type_emb.weight": "embeddings.token_type_embeddings.weight",
        "ln_emb.weight": "embeddings.LayerNorm.weight",
        "ln_emb.bias": "embeddings.LayerNorm.bias",
        "pooler.weight": "pooler.dense.weight",
        "pooler.bias": "pooler.dense.bias",
    }
    for i in range(n_layer):
        hf, ours = f"encoder.layer.{i}.", f"blocks.{i}."
        for p in ("weight", "bias"):
            names[f"{ours}attn.proj.{p}"] = f"{hf}attention.output.dense.{p}"
            names[f"{ours}ln_1.{p}"] = f"{hf}attention.output.LayerNorm.{p}"
            names[f"{ours}mlp.fc.{p}"] = f"{hf}intermediate.dense.{p}"
            names[f"{ours}mlp.proj.{p}"] = f"{hf}output.dense.{p}"
            names[f"{ours}ln_2.{p}"] = f"{hf}output.LayerNorm.{p}"
    return names


_HEAD_NAMES = {
    "mlm.dense.weight": "cls.predictions.transform.dense.weight",
    "mlm.dense.bias": "cls.predictions.transform.dense.bias",
    "mlm.norm.weight": "cls.predictions.transform.LayerNorm.weight",
    "mlm.norm.bias": "cls.predictions.transform.LayerNorm.bias",
    "mlm.decoder.bias": "cls.predictions.bias",
    "classifier.weight": "classifier.weight",
    "classifier.bias": "classifier.bias",
}


def bert_config(hf: dict, weights: dict[str, torch.Tensor], source) -> EncoderConfig:
    """Our EncoderConfig for a BERT `config.json`; heads are inferred from the tensors."""
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise UserError(f"{source}: only absolute position embeddings are supported")
    act = hf.get("hidden_act", "gelu")
    if act not in _ACT_FROM_HF:
        raise UserError(f"{source}: BERT activation {act!r} has no glassformer equivalent")
    C = hf.get("hidden_size", 768)
    classifier = weights.get("classifier.weight")
    return EncoderConfig(
        vocab_size=hf.get("vocab_size", 30522),
        block_size=hf.get("max_position_embeddings", 512),
        n_layer=hf.get("num_hidden_layers", 12),
        n_head=hf.get("num_attention_heads", 12),
        n_embd=C,
        mlp_ratio=hf.get("intermediate_size", 4 * C) / C,
        dropout=0.0,
        norm_eps=hf.get("layer_norm_eps", 1e-12),
        activation=_ACT_FROM_HF[act],
        type_vocab_size=hf.get("type_vocab_size", 2),
        pad_id=hf.get("pad_token_id") or 0,
        mlm_head="cls.predictions.bias" in weights,
        pooler="pooler.dense.weight" in weights,
        n_classes=0 if classifier is None else classifier.shape[0],
        tie_weights=hf.get("tie_word_embeddings", True),
    )


def bert_from_hf(hf: dict, weights: dict[str, torch.Tensor], source: str | Path) -> Encoder:
    weights = {k.removeprefix("bert."): v for k, v in weights.items()}
    weights.pop("embeddings.position_ids", None)  # a buffer of 0..n-1, not a weight
    decoder_bias = weights.pop("cls.predictions.decoder.bias", None)  # tied to .bias
    if decoder_bias is not None:
        weights.setdefault("cls.predictions.bias", decoder_bias)
    config = bert_config(hf, weights, source)
    decoder = weights.pop("cls.predictions.decoder.weight", None)
    state = {}
    for ours, theirs in {**_renames(config.n_layer), **_HEAD_NAMES}.items():
        if theirs in weights or not _optional(ours):
            state[ours] = take(weights, theirs, source)
    for i in range(config.n_layer):
        qkv = [f"encoder.layer.{i}.attention.self.{n}" for n in ("query", "key", "value")]
        for p in ("weight", "bias"):
            parts = [take(weights, f"{name}.{p}", source) for name in qkv]
            state[f"blocks.{i}.attn.qkv.{p}"] = torch.cat(parts, dim=0)  # (3C, ...)
    if config.mlm_head and not config.tie_weights:
        if decoder is None:
            raise UserError(f"{source}: missing tensor 'cls.predictions.decoder.weight'")
        state["mlm.decoder.weight"] = decoder
    check_consumed(weights, source)
    model = Encoder(config)
    load_exact(model, state, source)
    return model


def _optional(ours: str) -> bool:
    """Tensors that exist only with some heads (or token types); the config says which."""
    return ours.split(".")[0] in ("mlm", "pooler", "classifier", "type_emb")


def _check_exportable(c: EncoderConfig) -> None:
    wanted = {"pos_emb": "learned", "norm": "layernorm", "norm_position": "post", "bias": True}
    wanted.update({"qk_norm": False, "cosine_attn": False, "attn_scale": True})
    for field, value in wanted.items():
        if getattr(c, field) != value:
            raise UserError(
                f"BERT has model.{field}={value!r}, this encoder has {getattr(c, field)!r}; "
                "only BERT-shaped encoders can be exported"
            )
    if c.embedding_scale != 1.0:
        raise UserError("BERT adds its token embeddings unscaled; set model.emb_scale=none")
    if c.activation not in _ACT_TO_HF:
        raise UserError(f"BERT has no {c.activation!r} activation; this encoder cannot export")


def bert_to_hf(model: Encoder) -> tuple[dict, dict[str, torch.Tensor]]:
    """The BERT `config.json` and tensors for our encoder (BertForMaskedLM / ...Classification
    / BertModel, by its heads)."""
    c = model.config
    _check_exportable(c)
    arch = "BertModel"
    if c.n_classes:
        arch = "BertForSequenceClassification"
    elif c.mlm_head:
        arch = "BertForMaskedLM"
    prefix = "" if arch == "BertModel" else "bert."
    hf = {
        "model_type": "bert",
        "architectures": [arch],
        "vocab_size": c.vocab_size,
        "hidden_size": c.n_embd,
        "num_hidden_layers": c.n_layer,
        "num_attention_heads": c.n_head,
        "intermediate_size": model.blocks[0].mlp.fc.out_features if c.n_layer else 4 * c.n_embd,
        "hidden_act": _ACT_TO_HF[c.activation],
        "max_position_embeddings": c.block_size,
        "type_vocab_size": c.type_vocab_size,
        "layer_norm_eps": c.norm_eps,
        "pad_token_id": c.pad_id,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "tie_word_embeddings": c.tie_weights,
    }
    if c.n_classes:
        hf["num_labels"] = c.n_classes
    sd = model.state_dict()
    out = {}
    for ours, theirs in _renames(c.n_layer).items():
        if ours in sd:
            out[prefix + theirs] = sd[ours]
    for ours, theirs in _HEAD_NAMES.items():
        if ours in sd:
            out[theirs] = sd[ours]
    if c.mlm_head and not c.tie_weights:
        out["cls.predictions.decoder.weight"] = sd["mlm.decoder.weight"]
    for i in range(c.n_layer):
        for p in ("weight", "bias"):
            q, k, v = sd[f"blocks.{i}.attn.qkv.{p}"].chunk(3, dim=0)
            for name, t in (("query", q), ("key", k), ("value", v)):
                out[f"{prefix}encoder.layer.{i}.attention.self.{name}.{p}"] = t
    return hf, out
