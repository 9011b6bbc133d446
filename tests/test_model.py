"""The GPT and its parts: shapes, both attention paths, norms, positions, the loss."""

import math

import pytest
import torch
import torch.nn.functional as F

from glassformer import GPT, GPTConfig
from glassformer.nn.attention import attention_pattern
from glassformer.nn.embedding import sinusoidal_table
from glassformer.nn.norm import LayerNorm, RMSNorm
from glassformer.nn.rotary import Rotary

VARIANTS = [
    {},
    {"pos_emb": "rotary", "norm": "rmsnorm", "activation": "swiglu", "tie_weights": False},
    {"pos_emb": "sinusoidal", "norm_position": "post", "activation": "relu"},
    {"pos_emb": "none", "qk_norm": True, "logit_softcap": 15.0, "activation": "relu2"},
    {"norm": "rmsnorm-noaffine", "bias": False, "zero_init_proj": True},
]


def tiny(**kw) -> GPTConfig:
    return GPTConfig(vocab_size=37, block_size=16, n_layer=2, n_head=2, n_embd=16, **kw)


@pytest.mark.parametrize("kw", VARIANTS)
def test_shapes_loss_and_backward(kw):
    torch.manual_seed(0)
    model = GPT(tiny(**kw))
    idx = torch.randint(0, 37, (3, 16))
    logits, loss = model(idx, idx)
    assert logits.shape == (3, 16, 37)
    expected = F.cross_entropy(logits.reshape(-1, 37), idx.reshape(-1))
    assert torch.allclose(loss, expected)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("kw", VARIANTS)
def test_fused_and_explicit_attention_agree(kw):
    torch.manual_seed(0)
    fast = GPT(tiny(**kw)).eval()
    slow = GPT(tiny(attn_impl="explicit", **kw)).eval()
    slow.load_state_dict(fast.state_dict())
    idx = torch.randint(0, 37, (2, 16))
    assert torch.allclose(fast(idx)[0], slow(idx)[0], atol=1e-5)


def test_causality_future_tokens_do_not_change_past_logits():
    torch.manual_seed(0)
    model = GPT(tiny()).eval()
    a = torch.randint(0, 37, (1, 16))
    b = a.clone()
    b[0, 10:] = (b[0, 10:] + 1) % 37
    la, lb = model(a)[0], model(b)[0]
    assert torch.allclose(la[0, :10], lb[0, :10], atol=1e-6)
    assert not torch.allclose(la[0, 10:], lb[0, 10:])


def test_non_causal_model_sees_the_future():
    torch.manual_seed(0)
    model = GPT(tiny(causal=False)).eval()
    a = torch.randint(0, 37, (1, 16))
    b = a.clone()
    b[0, -1] = (b[0, -1] + 1) % 37
    assert not torch.allclose(model(a)[0][0, 0], model(b)[0][0, 0])


def test_attention_pattern_is_masked_softmax():
    torch.manual_seed(0)
    q, k = torch.randn(1, 2, 5, 4), torch.randn(1, 2, 5, 4)
    p = attention_pattern(q, k, causal=True, scale=0.5)
    assert torch.allclose(p.sum(-1), torch.ones(1, 2, 5))
    assert (p.triu(1) == 0).all()
    scores = (q @ k.transpose(-1, -2)) * 0.5
    assert torch.allclose(p[0, 0, 1, :2], torch.softmax(scores[0, 0, 1, :2], -1))


def test_tied_weights_share_storage_and_untied_do_not():
    tied, untied = GPT(tiny()), GPT(tiny(tie_weights=False))
    assert tied.lm_head.weight is tied.tok_emb.weight
    assert untied.lm_head.weight is not untied.tok_emb.weight


def test_sequence_longer_than_context_is_refused():
    with pytest.raises(ValueError, match="longer than the context"):
        GPT(tiny())(torch.zeros(1, 17, dtype=torch.long))


def test_layernorm_and_rmsnorm_match_their_formulas():
    x = torch.randn(4, 8)
    ln = LayerNorm(8)
    torch.nn.init.normal_(ln.weight)
    torch.nn.init.normal_(ln.bias)
    ref = torch.nn.LayerNorm(8)
    ref.load_state_dict(ln.state_dict())
    assert torch.allclose(ln(x), ref(x), atol=1e-6)
    rms = RMSNorm(8, eps=1e-6)
    manual = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
    assert torch.allclose(rms(x), manual, atol=1e-6)


def test_sinusoidal_table_closed_formula():
    table = sinusoidal_table(50, 16)
    pos, i = 37, 3
    assert math.isclose(table[pos, 2 * i], math.sin(pos / 10000 ** (2 * i / 16)), abs_tol=1e-6)
    assert math.isclose(table[pos, 2 * i + 1], math.cos(pos / 10000 ** (2 * i / 16)), abs_tol=1e-6)


def test_rotary_scores_depend_only_on_offset():
    torch.manual_seed(0)
    rot = Rotary(8, 64)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(pq, pk):
        return (rot(q, torch.tensor([pq])) * rot(k, torch.tensor([pk]))).sum().item()

    assert math.isclose(score(5, 2), score(40, 37), abs_tol=1e-5)
    assert not math.isclose(score(5, 2), score(5, 4), abs_tol=1e-3)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=10, n_head=3)
    with pytest.raises(ValueError, match="pos_emb"):
        GPTConfig(pos_emb="xpos")
