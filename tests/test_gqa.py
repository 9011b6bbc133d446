"""Grouped-query attention and the Llama block: a reference by hand and Hugging Face Llama."""

import math

import pytest
import torch

from glassformer.models.config import GPTConfig
from glassformer.models.gpt import GPT
from glassformer.nn.attention import SelfAttention
from glassformer.nn.kv_cache import KVCache
from glassformer.nn.mlp import MLP

TOL = 1e-5


def _gqa(impl: str, C=32, nh=4, nkv=2, **kw) -> SelfAttention:
    cfg = GPTConfig(n_embd=C, n_head=nh, n_kv_head=nkv, attn_impl=impl, bias=False, **kw)
    torch.manual_seed(0)
    attn = SelfAttention(cfg).eval()
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_(0, 0.3)
    return attn


@pytest.mark.parametrize("impl", ["sdpa", "explicit"])
@pytest.mark.parametrize("nkv", [1, 2, 4])
def test_gqa_equals_keys_and_values_repeated_by_hand(impl, nkv):
    B, T, C, nh = 2, 7, 32, 4
    hs, group = C // nh, nh // nkv
    attn = _gqa(impl, nkv=nkv)
    assert attn.qkv.weight.shape == ((nh + 2 * nkv) * hs, C)
    x = torch.randn(B, T, C, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = attn(x, torch.arange(T))
        q, k, v = (x @ attn.qkv.weight.T).split((C, nkv * hs, nkv * hs), dim=-1)
        q = q.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, nkv, hs).transpose(1, 2)  # (B, nkv, T, hs)
        v = v.view(B, T, nkv, hs).transpose(1, 2)
        heads = []
        for h in range(nh):  # query head h reads K/V head h // group
            scores = q[:, h] @ k[:, h // group].transpose(-2, -1) / math.sqrt(hs)  # (B, T, T)
            future = torch.ones(T, T, dtype=torch.bool).triu(1)
            pattern = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
            heads.append(pattern @ v[:, h // group])  # (B, T, hs)
        expected = torch.cat(heads, dim=-1) @ attn.proj.weight.T  # (B, T, C)
    assert (got - expected).abs().max().item() <= TOL


def test_gqa_config_is_checked():
    with pytest.raises(ValueError, match="multiple of n_kv_head"):
        GPTConfig(n_head=4, n_kv_head=3)
    assert GPTConfig(n_head=4, n_kv_head=0).kv_heads == 4  # 0: plain multi-head attention
    assert GPTConfig(n_head=4, n_kv_head=4).kv_heads == 4


def test_mlp_hidden_sets_the_width_exactly():
    cfg = GPTConfig(n_embd=48, activation="swiglu", mlp_hidden=100)
    mlp = MLP(cfg)
    assert mlp.fc.weight.shape == (200, 48) and mlp.proj.weight.shape == (48, 100)
    derived = MLP(GPTConfig(n_embd=48, activation="swiglu"))  # 2/3 of 4 x 48 = 128
    assert derived.proj.weight.shape == (48, 128)


# --- our GPT with Llama's choices equals transformers' LlamaForCausalLM --------------------


def _llama_pair(tie: bool, theta: float):
    transformers = pytest.importorskip("transformers")
    V, C, L, nh, nkv, hidden = 61, 32, 2, 4, 2, 40
    ref_cfg = transformers.LlamaConfig(
        vocab_size=V,
        hidden_size=C,
        intermediate_size=hidden,
        num_hidden_layers=L,
        num_attention_heads=nh,
        num_key_value_heads=nkv,
        max_position_embeddings=64,
        rms_norm_eps=1e-5,
        rope_theta=theta,
        tie_word_embeddings=tie,
        attention_bias=False,
        mlp_bias=False,
    )
    torch.manual_seed(0)
    ref = transformers.LlamaForCausalLM(ref_cfg).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in ref.parameters():  # norms near 1, everything else random
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2 + (1.0 if p.dim() == 1 else 0.0))
    ours = GPT(
        GPTConfig(
            vocab_size=V,
            block_size=64,
            n_layer=L,
            n_head=nh,
            n_kv_head=nkv,
            n_embd=C,
            mlp_hidden=hidden,
            bias=False,
            pos_emb="rotary",
            rope_theta=theta,
            norm="rmsnorm",
            norm_eps=1e-5,
            activation="swiglu",
            tie_weights=tie,
        )
    ).eval()
    sd = {k: v for k, v in ref.state_dict().items()}
    mine = {
        "tok_emb.weight": sd["model.embed_tokens.weight"],
        "ln_f.weight": sd["model.norm.weight"],
    }
    if not tie:
        mine["lm_head.weight"] = sd["lm_head.weight"]
    for i in range(L):
        hf, b = f"model.layers.{i}.", f"blocks.{i}."
        a = hf + "self_attn."
        mine[b + "attn.qkv.weight"] = torch.cat(
            [sd[a + "q_proj.weight"], sd[a + "k_proj.weight"], sd[a + "v_proj.weight"]]
        )
        mine[b + "attn.proj.weight"] = sd[a + "o_proj.weight"]
        mine[b + "mlp.fc.weight"] = torch.cat(
            [sd[hf + "mlp.gate_proj.weight"], sd[hf + "mlp.up_proj.weight"]]
        )
        mine[b + "mlp.proj.weight"] = sd[hf + "mlp.down_proj.weight"]
        mine[b + "ln_1.weight"] = sd[hf + "input_layernorm.weight"]
        mine[b + "ln_2.weight"] = sd[hf + "post_attention_layernorm.weight"]
    missing, unexpected = ours.load_state_dict(mine, strict=False)
    assert not unexpected and set(missing) <= ({"lm_head.weight"} if tie else set())
    return ours, ref


@pytest.mark.parametrize("tie,theta", [(False, 10000.0), (True, 100000.0)])
def test_llama_logits_equal_hugging_face(tie, theta):
    ours, ref = _llama_pair(tie, theta)
    ids = torch.randint(0, 61, (2, 24), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = ref(ids).logits
        got, _ = ours(ids)
    assert (got - expected).abs().max().item() <= TOL


def test_llama_with_our_kv_cache_equals_hugging_face_and_no_cache():
    ours, ref = _llama_pair(False, 100000.0)
    ids = torch.randint(0, 61, (2, 20), generator=torch.Generator().manual_seed(3))
    cache = KVCache.for_model(ours, batch=2, capacity=64)
    assert cache.k.shape == (2, 2, 2, 64, 8)  # (n_layer, B, n_kv_head, capacity, hs)
    with torch.no_grad():
        expected = ref(ids).logits
        full, _ = ours(ids)
        steps = [ours(ids[:, :12], cache=cache)[0]]  # prefill, then one token at a time
        steps += [ours(ids[:, t : t + 1], cache=cache)[0] for t in range(12, 20)]
    cached = torch.cat(steps, dim=1)
    assert (cached - expected).abs().max().item() <= TOL
    assert (cached - full).abs().max().item() <= TOL
