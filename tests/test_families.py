"""The families of the architecture table, each proven equal to transformers (issue 23).

Per family a tiny random model is built in transformers (2 layers, width 64, 4 query and 2
key/value heads of size 16, a vocabulary of 100), saved as a Hugging Face folder
(`save_pretrained` + a tokenizer.json) and written as a GGUF the way llama.cpp's converter
writes it (`convert_hf_to_gguf.py`: its metadata keys and tensor names, the per-head q/k row
permutation for the `llama` architecture only, Llama 3's `rope_freqs` tensor computed as the
converter computes it). `glassformer.load` reads both; against the transformers model:

- fp32 logits over 160 tokens within 1e-5 (max |Δ| printed; measured 2.3e-6 to 2.6e-6),
- 20 greedy tokens identical on two prompts,
- the KV cache against full forward passes: identical tokens, logits within 1e-5,
- `to_hf` back to a folder that transformers loads: logits within 1e-5.

The norms' gains and the Qwen2 biases are randomised (transformers starts them at 1 and 0,
which would hide a tensor mapped to the wrong place), and the rotary-scaled Llamas are also
checked to differ from plain rotary by far more than the tolerance.
"""

import json
import math

import pytest
import torch

import glassformer
from glassformer.errors import UserError
from glassformer.generate import GenerationOptions, generate_tokens
from glassformer.interop import to_hf
from glassformer.interop.architectures import by_gguf_arch, by_hf_type
from glassformer.nn.kv_cache import KVCache
from glassformer.tokenizers.formats import bytes_to_unicode
from glassformer.tokenizers.hf_json import tokenizer_json
from glassformer.tokenizers.pretrained_bpe import PretrainedBPE, pattern_for

transformers = pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")

V, C, HEADS, KV_HEADS, HS, FFN, LAYERS = 100, 64, 4, 2, 16, 96, 2
# the smallest byte-level vocabulary our GGUF reader takes: an end-of-text id and 99 bytes
TOKENS = ["<|endoftext|>"] + [bytes_to_unicode()[b] for b in range(33, 33 + V - 1)]
TOL = 1e-5

LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}
LLAMA3 |= {"original_max_position_embeddings": 8192}
# name: (transformers class, its config, GGUF architecture)
FAMILIES = {
    "llama3": (
        "LlamaForCausalLM",
        dict(rope_scaling=LLAMA3, max_position_embeddings=16384, tie_word_embeddings=True),
        "llama",
    ),
    "llama-linear": (
        "LlamaForCausalLM",
        dict(rope_scaling={"rope_type": "linear", "factor": 4.0}, max_position_embeddings=512),
        "llama",
    ),
    "qwen2": ("Qwen2ForCausalLM", dict(max_position_embeddings=512), "qwen2"),
    "qwen3": ("Qwen3ForCausalLM", dict(max_position_embeddings=512, head_dim=HS), "qwen3"),
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls on a shared 2-core machine: 1 thread is faster
    yield
    torch.set_num_threads(threads)


def reference(name: str):
    """The family's tiny transformers model, seeded, its 1-D tensors (gains, biases) random."""
    cls, extra, _ = FAMILIES[name]
    config_cls = getattr(transformers, cls.replace("ForCausalLM", "Config"))
    config = config_cls(
        vocab_size=V, hidden_size=C, intermediate_size=FFN, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, rope_theta=10000.0,
        rms_norm_eps=1e-6, initializer_range=0.1, **({"tie_word_embeddings": False} | extra),
    )  # fmt: skip
    torch.manual_seed(0)
    model = getattr(transformers, cls)(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 1:
                p.add_(0.3 * torch.randn_like(p))
    return model


def llama_cpp_permute(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """llama.cpp's converter's `permute`: each head's rows (rotate-half pairs i, i + hs/2)
    reordered to adjacent pairs (2i, 2i + 1), (n_head * hs, C) -> same."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_freqs(hf_config) -> torch.Tensor:
    """`rope_freqs.weight` as llama.cpp's converter computes it (float32 frequencies, and the
    original context from the config's top level: 8192 for every Llama 3 config)."""
    rope = hf_config.rope_parameters
    base, dim = rope["rope_theta"], hf_config.head_dim
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    old = getattr(hf_config, "original_max_position_embeddings", None) or 8192
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < old / high:
            factors.append(1)
        elif wavelen > old / low:
            factors.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return torch.tensor(factors, dtype=torch.float32)


def write_gguf(path, model, arch: str) -> None:
    """`model` as llama.cpp's converter writes it (F32 tensors)."""
    c, sd = model.config, model.state_dict()
    w = gguf.GGUFWriter(str(path), arch)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(C)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_freq_base(c.rope_parameters["rope_theta"])
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_key_length(HS)
    w.add_value_length(HS)
    w.add_vocab_size(V)
    if arch == "llama":
        w.add_rope_dimension_count(HS)
    if c.rope_parameters["rope_type"] == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(c.rope_parameters["factor"])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre({"llama": "llama-bpe"}.get(arch, arch))
    w.add_token_list(TOKENS)
    w.add_token_types([3] + [1] * (V - 1))
    w.add_token_merges([])
    w.add_eos_token_id(0)
    tensors = {"token_embd.weight": sd["model.embed_tokens.weight"]}
    tensors["output_norm.weight"] = sd["model.norm.weight"]
    if not c.tie_word_embeddings:
        tensors["output.weight"] = sd["lm_head.weight"]
    if c.rope_parameters["rope_type"] == "llama3":
        tensors["rope_freqs.weight"] = llama3_rope_freqs(c)
    gguf_names = {
        "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
        "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
        "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
        "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    }  # fmt: skip
    for name, t in sd.items():
        if not name.startswith("model.layers."):
            continue
        i, rest = name.removeprefix("model.layers.").split(".", 1)
        module, kind = rest.rsplit(".", 1)
        if arch == "llama" and module in ("self_attn.q_proj", "self_attn.k_proj"):
            t = llama_cpp_permute(t, HEADS if module == "self_attn.q_proj" else KV_HEADS)
        tensors[f"blk.{i}.{gguf_names[module]}.{kind}"] = t
    for name, t in tensors.items():
        w.add_tensor(name, t.detach().float().contiguous().numpy())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_folder(path, model) -> None:
    """`save_pretrained` plus the tokenizer.json of the same 100 tokens."""
    model.save_pretrained(path)
    tokenizer = PretrainedBPE.from_byte_level(TOKENS, [3] + [1] * (V - 1), [], pattern_for(None), 0)
    (path / "tokenizer.json").write_text(json.dumps(tokenizer_json(tokenizer)))


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request, tmp_path_factory):
    """(name, transformers model, {"folder": ours, "gguf": ours}) for one family."""
    name = request.param
    ref = reference(name)
    folder = tmp_path_factory.mktemp(name)
    write_folder(folder, ref)
    path = tmp_path_factory.mktemp(name) / f"{name}.gguf"
    write_gguf(path, ref, FAMILIES[name][2])
    return name, ref, {"folder": glassformer.load(folder)[0], "gguf": glassformer.load(path)[0]}


PROMPT = torch.randint(0, V, (2, 160), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("source", ["folder", "gguf"])
def test_logits_equal_transformers(family, source):
    name, ref, ours = family
    model = ours[source]
    with torch.no_grad():
        want = ref(PROMPT).logits
        delta = (model(PROMPT)[0] - want).abs().max().item()
    print(f"\n{name} from {source}: max |logits - transformers| = {delta:.1e}")
    assert delta <= TOL
    if model.config.rope_scaling != "none":  # the scaling is what made them equal
        plain = type(model)(
            model.config.__class__(**model.config.to_dict() | {"rope_scaling": "none"})
        )
        plain.load_state_dict(model.state_dict())
        with torch.no_grad():
            assert (plain.eval()(PROMPT)[0] - want).abs().max().item() > 100 * TOL


@pytest.mark.parametrize("source", ["folder", "gguf"])
def test_greedy_and_kv_cache_equal_transformers(family, source):
    name, ref, ours = family
    model = ours[source]
    idx = PROMPT[:, :12]
    opts = GenerationOptions(max_new_tokens=20, strategy="greedy")
    got = generate_tokens(model, idx, opts)
    with torch.no_grad():
        want = ref.generate(
            input_ids=idx, attention_mask=torch.ones_like(idx), max_new_tokens=20,
            min_new_tokens=20, do_sample=False, pad_token_id=0, eos_token_id=None,
        )  # fmt: skip
    assert torch.equal(got, want)
    uncached = generate_tokens(model, idx, GenerationOptions(max_new_tokens=20, use_cache=False))
    assert torch.equal(got, uncached)
    c = model.config
    cache = KVCache(c.n_layer, 2, c.kv_heads, got.size(1), c.head_dim)
    with torch.no_grad():
        steps = [model(idx, cache=cache)[0]]
        for t in range(idx.size(1), got.size(1)):
            steps.append(model(got[:, t : t + 1], cache=cache)[0])
        full = model(got)[0]
    assert (torch.cat(steps, dim=1) - full).abs().max().item() <= TOL


def test_export_loads_in_transformers(family, tmp_path):
    name, ref, ours = family
    to_hf(ours["gguf"], tmp_path)
    again = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(again).__name__ == FAMILIES[name][0]
    with torch.no_grad():
        delta = (again(PROMPT).logits - ref(PROMPT).logits).abs().max().item()
    print(f"\n{name} exported: max |logits - transformers| = {delta:.1e}")
    assert delta <= TOL


def test_unknown_architecture_names_every_family():
    with pytest.raises(
        UserError, match="supported: bert, gpt2, llama, marian, mistral, qwen2, qwen3"
    ):
        by_hf_type("gemma3_text", "x")
    with pytest.raises(UserError, match=r"architectures llama, qwen2, qwen3\.$"):
        by_gguf_arch("gemma3", "x.gguf")


def test_rotary_scaling_glassformer_cannot_reproduce_is_one_sentence(tmp_path):
    """A rope_freqs tensor off Llama 3's schedule, and a yarn-scaled config, are refused."""
    ref = reference("llama3")
    path = tmp_path / "odd.gguf"
    ref.config.rope_parameters["high_freq_factor"] = 2.0  # llama.cpp would store other divisors
    write_gguf(path, ref, "llama")
    with pytest.raises(UserError, match="rope_freqs tensor is not Llama 3's rotary scaling"):
        glassformer.load(path)
    write_folder(tmp_path, ref)
    saved = json.loads((tmp_path / "config.json").read_text())
    saved["rope_parameters"] = {"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0}
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(UserError, match="uses rotary scaling 'yarn'; glassformer implements"):
        glassformer.load(tmp_path)
