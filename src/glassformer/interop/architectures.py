"""The architecture table: every foreign family glassformer reads or writes, in one place.

Each entry maps a family's foreign names onto ours: the keys of a Hugging Face `config.json`
and of a GGUF file's metadata (after the `{arch}.` prefix that `general.architecture` names)
onto our config fields, and its tensor names onto our parameter names, one `Row` per tensor:

    Row("blocks.{i}.attn.qkv.weight",                                  ours
        hf="model.layers.{i}.self_attn.{q,k,v}_proj.weight",           Hugging Face (and export)
        gguf="blk.{i}.attn_{q,k,v}.weight", gguf_fix=LLAMA_CPP_ROTARY)  GGUF, with its transform

`{i}` runs over the blocks (`{j}` over a decoder's), `{p}` over `weight` and `bias`, and
`{q,k,v}` names the parts that are stacked, in order, into our one fused tensor (and split
back on export). Everything else about a family is a `Key` (where a config value lives, its
default, how its values translate), the settings it always has (`fixed`), the foreign
settings we refuse (`refuse`), and a hook for what only that family needs (BERT's heads are
found from its tensors). The loaders (`convert.py` for folders, `gguf.py`), the export
(`export.py`) and `checkpoint.load`'s detection read this table; none of them names a family.

    >>> by_hf_type("llama", "x").hf_class, by_gguf_arch("llama", "x").gguf_arch
    ('LlamaForCausalLM', 'llama')
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from glassformer.errors import UserError
from glassformer.interop.bert import bert_export, bert_heads
from glassformer.interop.llama import check_llama_gguf, check_rotary_hf, rotary_export
from glassformer.interop.marian import check_marian_hf, marian_export
from glassformer.interop.transforms import LLAMA_CPP_ROTARY, ROW, TRANSPOSE, Transform, qkv_sizes

REQUIRED = object()  # a Key without a default: the file must have it


@dataclass(frozen=True)
class Key:
    """Where one config value lives: the first of `names` present (dotted = nested), else
    `default` (None: leave our field's default); `values` translates theirs -> ours."""

    names: tuple[str, ...]
    default: object = REQUIRED
    values: dict | None = None


def key(*names: str, default=REQUIRED, values: dict | None = None) -> Key:
    return Key(names, default, values)


@dataclass(frozen=True)
class Row:
    """One of our tensors and its names abroad (None: that format has no such tensor).

    `when` names the config switch the tensor exists under (e.g. an untied LM head); `head`
    marks a tensor that sits outside the family's name prefix; `split` sizes the stacked parts
    on export (default: equal)."""

    ours: str
    hf: str | None = None
    gguf: str | None = None
    hf_fix: Transform | None = None
    gguf_fix: Transform | None = None
    when: Callable | None = None
    head: bool = False
    split: Callable | None = None


@dataclass(frozen=True)
class Architecture:
    """One family as Hugging Face (and llama.cpp) store it; see the module docstring."""

    name: str  # config.json's model_type
    title: str  # how messages name it
    family: str  # our model family (models/registry.py)
    hf_class: str  # the transformers class an export names
    fixed: dict  # our config fields this architecture always has (checked again on export)
    hf_config: dict[str, Key]  # our field -> config.json key
    rows: tuple[Row, ...]
    refuse: dict[str, object] = field(default_factory=dict)  # config.json key -> the one value
    hf_prefix: str = ""  # a name prefix that some savers write and some do not
    hf_bare: str | None = None  # the class whose export has no prefix
    hf_ignore: tuple[str, ...] = ()  # buffers and copies a folder may hold (fnmatch patterns)
    hf_check: Callable | None = None  # (config.json, tensors, source) -> extra config fields
    hf_export: Callable | None = None  # our config -> more config.json keys
    gguf_arch: str | None = None  # general.architecture, if llama.cpp writes this family
    gguf_config: dict[str, Key] = field(default_factory=dict)  # keys after "{gguf_arch}."
    gguf_check: Callable | None = None  # (get, tensor(name), names, config, source) -> config
    gguf_ignore: tuple[str, ...] = ()  # tensors the gguf_check reads (not parameters)
    tokenizer_files: tuple[str, ...] = ("tokenizer.json",)  # what glassformer.load tries first


def untied(c) -> bool:
    return not c.tie_weights


# what no exported model may use: the foreign classes do not have it
PLAIN = {"attn_scale": True, "qk_norm": False, "cosine_attn": False, "logit_softcap": 0.0}
PLAIN |= {"qk_norm_weight": False, "qkv_bias": False}

GELU = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu"}
GPT2 = Architecture(
    name="gpt2",
    title="GPT-2",
    family="gpt",
    hf_class="GPT2LMHeadModel",
    fixed={"pos_emb": "learned", "norm": "layernorm", "norm_position": "pre", "bias": True}
    | {"causal": True, "dropout": 0.0}
    | PLAIN,
    hf_config={
        "vocab_size": key("vocab_size", default=50257),
        "block_size": key("n_positions", default=1024),
        "n_layer": key("n_layer", default=12),
        "n_head": key("n_head", default=12),
        "n_embd": key("n_embd", default=768),
        "mlp_hidden": key("n_inner", default=None),  # null: 4 x n_embd
        "norm_eps": key("layer_norm_epsilon", default=1e-5),
        "activation": key(
            "activation_function",
            default="gelu_new",
            values=GELU | {"relu": "relu", "silu": "silu", "swish": "silu"},
        ),
        "tie_weights": key("tie_word_embeddings", default=True),
    },
    refuse={
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
    },
    hf_prefix="transformer.",  # GPT2LMHeadModel writes it, a bare GPT2Model (the hub's) not
    hf_ignore=("h.*.attn.bias", "h.*.attn.masked_bias"),  # the causal mask, stored as a buffer
    hf_export=lambda c: (
        {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
        | {"bos_token_id": c.vocab_size - 1, "eos_token_id": c.vocab_size - 1}
    ),
    rows=(
        Row("tok_emb.weight", hf="wte.weight"),
        Row("pos_emb.weight", hf="wpe.weight"),
        Row("blocks.{i}.ln_1.{p}", hf="h.{i}.ln_1.{p}"),
        Row("blocks.{i}.attn.qkv.weight", hf="h.{i}.attn.c_attn.weight", hf_fix=TRANSPOSE),
        Row("blocks.{i}.attn.qkv.bias", hf="h.{i}.attn.c_attn.bias"),
        Row("blocks.{i}.attn.proj.weight", hf="h.{i}.attn.c_proj.weight", hf_fix=TRANSPOSE),
        Row("blocks.{i}.attn.proj.bias", hf="h.{i}.attn.c_proj.bias"),
        Row("blocks.{i}.ln_2.{p}", hf="h.{i}.ln_2.{p}"),
        Row("blocks.{i}.mlp.fc.weight", hf="h.{i}.mlp.c_fc.weight", hf_fix=TRANSPOSE),
        Row("blocks.{i}.mlp.fc.bias", hf="h.{i}.mlp.c_fc.bias"),
        Row("blocks.{i}.mlp.proj.weight", hf="h.{i}.mlp.c_proj.weight", hf_fix=TRANSPOSE),
        Row("blocks.{i}.mlp.proj.bias", hf="h.{i}.mlp.c_proj.bias"),
        Row("ln_f.{p}", hf="ln_f.{p}"),
        Row("lm_head.weight", hf="lm_head.weight", when=untied, head=True),
    ),
    tokenizer_files=("vocab.json", "tokenizer.json"),
)

ROPE_GGUF = {"none": "none", "linear": "linear"}  # llama3's is the rope_freqs tensor
LLAMA = Architecture(
    name="llama",
    title="Llama",
    family="gpt",
    hf_class="LlamaForCausalLM",
    fixed={"pos_emb": "rotary", "norm": "rmsnorm", "norm_position": "pre", "bias": False}
    | {"activation": "swiglu", "causal": True, "dropout": 0.0}
    | PLAIN,
    hf_config={
        "vocab_size": key("vocab_size"),
        "block_size": key("max_position_embeddings", default=2048),
        "n_layer": key("num_hidden_layers"),
        "n_head": key("num_attention_heads"),
        "n_kv_head": key("num_key_value_heads", default=None),
        "n_embd": key("hidden_size"),
        "mlp_hidden": key("intermediate_size"),
        "rope_theta": key("rope_parameters.rope_theta", "rope_theta", default=10000.0),
        "norm_eps": key("rms_norm_eps", default=1e-6),
        "activation": key("hidden_act", default="silu", values={"silu": "swiglu"}),
        "tie_weights": key("tie_word_embeddings", default=False),
    },
    refuse={"attention_bias": False, "mlp_bias": False},
    hf_check=check_rotary_hf,  # rope_scaling: linear, llama3
    hf_export=lambda c: {"head_dim": c.head_dim} | rotary_export(c),
    gguf_arch="llama",
    gguf_config={
        "vocab_size": key("vocab_size", default=None),  # else the tokenizer's length
        "block_size": key("context_length", default=2048),
        "n_layer": key("block_count"),
        "n_head": key("attention.head_count"),
        "n_kv_head": key("attention.head_count_kv", default=None),
        "n_embd": key("embedding_length"),
        "mlp_hidden": key("feed_forward_length"),
        "rope_theta": key("rope.freq_base", default=10000.0),
        "rope_scaling": key("rope.scaling.type", default="none", values=ROPE_GGUF),
        "rope_factor": key("rope.scaling.factor", default=1.0),
        "norm_eps": key("attention.layer_norm_rms_epsilon"),
    },
    gguf_check=check_llama_gguf,  # and Llama 3's rope_freqs tensor
    gguf_ignore=("rope_freqs.weight",),
    rows=(
        Row("tok_emb.weight", hf="model.embed_tokens.weight", gguf="token_embd.weight"),
        Row(
            "blocks.{i}.ln_1.weight",
            hf="model.layers.{i}.input_layernorm.weight",
            gguf="blk.{i}.attn_norm.weight",
        ),
        Row(
            "blocks.{i}.attn.qkv.weight",  # (C + 2 * nkv * hs, C)
            hf="model.layers.{i}.self_attn.{q,k,v}_proj.weight",
            gguf="blk.{i}.attn_{q,k,v}.weight",
            gguf_fix=LLAMA_CPP_ROTARY,
            split=qkv_sizes,
        ),
        Row(
            "blocks.{i}.attn.proj.weight",
            hf="model.layers.{i}.self_attn.o_proj.weight",
            gguf="blk.{i}.attn_output.weight",
        ),
        Row(
            "blocks.{i}.ln_2.weight",
            hf="model.layers.{i}.post_attention_layernorm.weight",
            gguf="blk.{i}.ffn_norm.weight",
        ),
        Row(
            "blocks.{i}.mlp.fc.weight",  # (2 * H, C): SwiGLU's gate, then up
            hf="model.layers.{i}.mlp.{gate,up}_proj.weight",
            gguf="blk.{i}.ffn_{gate,up}.weight",
        ),
        Row(
            "blocks.{i}.mlp.proj.weight",
            hf="model.layers.{i}.mlp.down_proj.weight",
            gguf="blk.{i}.ffn_down.weight",
        ),
        Row("ln_f.weight", hf="model.norm.weight", gguf="output_norm.weight"),
        Row("lm_head.weight", hf="lm_head.weight", gguf="output.weight", when=untied, head=True),
    ),
)

# Mistral without a sliding window is Llama under another name (llama.cpp writes it as llama)
MISTRAL = replace(
    LLAMA,
    name="mistral",
    title="Mistral",
    hf_class="MistralForCausalLM",
    refuse=LLAMA.refuse | {"sliding_window": None},
    gguf_arch=None,
)

# Qwen2 / Qwen2.5: Llama with biases on the q, k and v projections (not on o_proj). llama.cpp
# rotates Qwen's heads in halves as we do (NEOX rotary), so its q/k rows are not permuted.
_QWEN_ROWS = tuple(
    replace(
        row,
        ours="blocks.{i}.attn.qkv.{p}",
        hf="model.layers.{i}.self_attn.{q,k,v}_proj.{p}",
        gguf="blk.{i}.attn_{q,k,v}.{p}",
        gguf_fix=None,
    )
    if row.ours == "blocks.{i}.attn.qkv.weight"
    else row
    for row in LLAMA.rows
)
QWEN2 = replace(
    LLAMA,
    name="qwen2",
    title="Qwen2",
    hf_class="Qwen2ForCausalLM",
    fixed=LLAMA.fixed | {"qkv_bias": True},
    refuse={"use_sliding_window": False},
    gguf_arch="qwen2",
    rows=_QWEN_ROWS,
)

# Qwen3: Llama with an RMSNorm (a gain of head size) on each head's query and key before
# rotary; unpermuted like Qwen2, without its biases
_QK_NORM_ROWS = (
    Row(
        "blocks.{i}.attn.q_norm",
        hf="model.layers.{i}.self_attn.q_norm.weight",
        gguf="blk.{i}.attn_q_norm.weight",
    ),
    Row(
        "blocks.{i}.attn.k_norm",
        hf="model.layers.{i}.self_attn.k_norm.weight",
        gguf="blk.{i}.attn_k_norm.weight",
    ),
)
QWEN3 = replace(
    LLAMA,
    name="qwen3",
    title="Qwen3",
    hf_class="Qwen3ForCausalLM",
    fixed=LLAMA.fixed | {"qk_norm": True, "qk_norm_weight": True},
    refuse={"attention_bias": False, "use_sliding_window": False},
    gguf_arch="qwen3",
    rows=tuple(replace(row, gguf_fix=None) for row in LLAMA.rows) + _QK_NORM_ROWS,
)

_ENC = "encoder.layer.{i}."
BERT = Architecture(
    name="bert",
    title="BERT",
    family="encoder",
    hf_class="BertModel",
    fixed={"pos_emb": "learned", "norm": "layernorm", "norm_position": "post", "bias": True}
    | {"dropout": 0.0}
    | PLAIN,
    hf_config={
        "vocab_size": key("vocab_size", default=30522),
        "block_size": key("max_position_embeddings", default=512),
        "n_layer": key("num_hidden_layers", default=12),
        "n_head": key("num_attention_heads", default=12),
        "n_embd": key("hidden_size", default=768),
        "mlp_hidden": key("intermediate_size", default=None),
        "norm_eps": key("layer_norm_eps", default=1e-12),
        "activation": key(
            "hidden_act", default="gelu", values=GELU | {"relu": "relu", "silu": "silu"}
        ),
        "type_vocab_size": key("type_vocab_size", default=2),
        "pad_id": key("pad_token_id", default=None),
        "tie_weights": key("tie_word_embeddings", default=True),
    },
    refuse={"position_embedding_type": "absolute"},
    hf_prefix="bert.",  # with a head on top
    hf_bare="BertModel",
    hf_ignore=("embeddings.position_ids",),  # a buffer of 0..n-1, not a weight
    hf_check=bert_heads,
    hf_export=bert_export,
    tokenizer_files=(),  # a WordPiece vocab.txt: interop/sentence.py reads it
    rows=(
        Row("tok_emb.weight", hf="embeddings.word_embeddings.weight"),
        Row("pos_emb.weight", hf="embeddings.position_embeddings.weight"),
        Row(
            "type_emb.weight",
            hf="embeddings.token_type_embeddings.weight",
            when=lambda c: c.type_vocab_size > 0,
        ),
        Row("ln_emb.{p}", hf="embeddings.LayerNorm.{p}"),
        Row("blocks.{i}.attn.qkv.{p}", hf=_ENC + "attention.self.{query,key,value}.{p}"),
        Row("blocks.{i}.attn.proj.{p}", hf=_ENC + "attention.output.dense.{p}"),
        Row("blocks.{i}.ln_1.{p}", hf=_ENC + "attention.output.LayerNorm.{p}"),
        Row("blocks.{i}.mlp.fc.{p}", hf=_ENC + "intermediate.dense.{p}"),
        Row("blocks.{i}.mlp.proj.{p}", hf=_ENC + "output.dense.{p}"),
        Row("blocks.{i}.ln_2.{p}", hf=_ENC + "output.LayerNorm.{p}"),
        Row("pooler.{p}", hf="pooler.dense.{p}", when=lambda c: c.pooler),
        Row(
            "mlm.dense.{p}",
            hf="cls.predictions.transform.dense.{p}",
            when=lambda c: c.mlm_head,
            head=True,
        ),
        Row(
            "mlm.norm.{p}",
            hf="cls.predictions.transform.LayerNorm.{p}",
            when=lambda c: c.mlm_head,
            head=True,
        ),
        Row("mlm.decoder.bias", hf="cls.predictions.bias", when=lambda c: c.mlm_head, head=True),
        Row(
            "mlm.decoder.weight",
            hf="cls.predictions.decoder.weight",
            when=lambda c: c.mlm_head and not c.tie_weights,
            head=True,
        ),
        Row("classifier.{p}", hf="classifier.{p}", when=lambda c: c.n_classes > 0, head=True),
    ),
)

_E, _D = "model.encoder.layers.{i}.", "model.decoder.layers.{j}."
MARIAN = Architecture(
    name="marian",
    title="Marian",
    family="seq2seq",
    hf_class="MarianMTModel",
    fixed={"pos_emb": "sinusoidal", "sinusoid_layout": "halves", "norm_position": "post"}
    | {"norm": "layernorm", "bias": True, "tie_weights": True, "head_bias": True}
    | {"norm_eps": 1e-5, "cross_attention": "full", "dropout": 0.0}
    | PLAIN,
    hf_config={
        "vocab_size": key("vocab_size", default=58101),
        "block_size": key("max_position_embeddings", default=1024),
        "n_layer": key("encoder_layers", default=6),
        "n_dec_layer": key("decoder_layers", "encoder_layers", default=6),
        "n_head": key("encoder_attention_heads", default=8),
        "n_embd": key("d_model", default=512),
        "mlp_hidden": key("encoder_ffn_dim", default=2048),
        "activation": key(
            "activation_function",
            default="gelu",
            values={"swish": "silu"} | GELU | {"relu": "relu", "silu": "silu"},
        ),
        "emb_scale": key("scale_embedding", default=False, values={True: "sqrt_d", False: "none"}),
        "pad_id": key("pad_token_id", default=58100),
        "bos_id": key("decoder_start_token_id", "pad_token_id", default=58100),
        "eos_id": key("eos_token_id", default=0),
    },
    refuse={
        "normalize_before": False,  # pre-norm variants
        "add_final_layer_norm": False,
        "share_encoder_decoder_embeddings": True,  # one vocabulary for source and target
    },
    hf_ignore=(
        "model.encoder.embed_tokens.weight",  # copies of model.shared
        "model.decoder.embed_tokens.weight",
        "model.encoder.embed_positions.weight",  # the fixed sinusoidal table, recomputed
        "model.decoder.embed_positions.weight",
    ),
    hf_check=check_marian_hf,
    hf_export=marian_export,
    tokenizer_files=(),  # SentencePiece: not read by glassformer.load
    rows=(
        Row("tok_emb.weight", hf="model.shared.weight"),
        Row("lm_head.bias", hf="final_logits_bias", hf_fix=ROW, head=True),
        Row("enc_blocks.{i}.attn.qkv.{p}", hf=_E + "self_attn.{q,k,v}_proj.{p}"),
        Row("enc_blocks.{i}.attn.proj.{p}", hf=_E + "self_attn.out_proj.{p}"),
        Row("enc_blocks.{i}.ln_1.{p}", hf=_E + "self_attn_layer_norm.{p}"),
        Row("enc_blocks.{i}.mlp.fc.{p}", hf=_E + "fc1.{p}"),
        Row("enc_blocks.{i}.mlp.proj.{p}", hf=_E + "fc2.{p}"),
        Row("enc_blocks.{i}.ln_2.{p}", hf=_E + "final_layer_norm.{p}"),
        Row("dec_blocks.{j}.attn.qkv.{p}", hf=_D + "self_attn.{q,k,v}_proj.{p}"),
        Row("dec_blocks.{j}.attn.proj.{p}", hf=_D + "self_attn.out_proj.{p}"),
        Row("dec_blocks.{j}.ln_self.{p}", hf=_D + "self_attn_layer_norm.{p}"),
        Row("dec_blocks.{j}.cross.q.{p}", hf=_D + "encoder_attn.q_proj.{p}"),
        Row("dec_blocks.{j}.cross.kv.{p}", hf=_D + "encoder_attn.{k,v}_proj.{p}"),
        Row("dec_blocks.{j}.cross.proj.{p}", hf=_D + "encoder_attn.out_proj.{p}"),
        Row("dec_blocks.{j}.ln_cross.{p}", hf=_D + "encoder_attn_layer_norm.{p}"),
        Row("dec_blocks.{j}.mlp.fc.{p}", hf=_D + "fc1.{p}"),
        Row("dec_blocks.{j}.mlp.proj.{p}", hf=_D + "fc2.{p}"),
        Row("dec_blocks.{j}.ln_mlp.{p}", hf=_D + "final_layer_norm.{p}"),
    ),
)

# the order is the order of preference on export: the first whose shape fits is written
ARCHITECTURES = {a.name: a for a in (GPT2, LLAMA, BERT, MARIAN, MISTRAL, QWEN2, QWEN3)}


def by_hf_type(model_type, source) -> Architecture:
    """The entry for a config.json's `model_type`, or one sentence naming what is supported."""
    if model_type not in ARCHITECTURES:
        raise UserError(
            f"{source}: model_type {model_type!r} is not one glassformer reads; "
            f"supported: {', '.join(sorted(ARCHITECTURES))}"
        )
    return ARCHITECTURES[model_type]


def by_gguf_arch(arch, source) -> Architecture:
    """The entry for a GGUF file's `general.architecture`, or one sentence naming the supported."""
    for a in ARCHITECTURES.values():
        if a.gguf_arch is not None and a.gguf_arch == arch:
            return a
    known = sorted({a.gguf_arch for a in ARCHITECTURES.values() if a.gguf_arch})
    raise UserError(
        f"{source} holds a {arch!r} model; glassformer reads GGUF files of the "
        f"architectures {', '.join(known)}."
    )


def mismatch(arch: Architecture, config) -> tuple[str, object, object] | None:
    """The first setting of `config` that `arch` cannot express, as (field, theirs, ours), or
    None when the foreign class computes the same function.

    >>> from glassformer.models.config import GPTConfig
    >>> mismatch(GPT2, GPTConfig(norm="rmsnorm"))
    ('norm', 'layernorm', 'rmsnorm')
    """
    for name, value in arch.fixed.items():
        if name != "dropout" and getattr(config, name) != value:
            return name, value, getattr(config, name)
    if "emb_scale" not in arch.hf_config and config.embedding_scale != 1.0:
        return "emb_scale", "none", config.emb_scale
    activations = arch.hf_config["activation"].values
    if config.activation not in activations.values():
        return "activation", sorted(set(activations.values())), config.activation
    return None


def exports_as(config, family: str) -> Architecture | None:
    """The first entry of `family` that computes what `config` does (a Llama with q/k/v
    biases is Qwen2), else the first whose position scheme and norm are those of `config`."""
    shaped = [
        a
        for a in ARCHITECTURES.values()
        if a.family == family and all(getattr(config, k) == a.fixed[k] for k in ("pos_emb", "norm"))
    ]
    exact = [a for a in shaped if mismatch(a, config) is None]
    return (exact or shaped or [None])[0]
