"""Components proven against independent implementations and closed formulas."""

import math

import pytest
import torch

from glassformer.models.config import GPTConfig
from glassformer.models.gpt import GPT
from glassformer.nn.attention import SelfAttention
from glassformer.nn.embedding import sinusoidal_table
from glassformer.nn.hooks import HookPoint
from glassformer.nn.norm import LayerNorm
from glassformer.nn.rotary import Rotary

TOL = 1e-5


def _attention(causal: bool, impl: str, C=24, nh=3, **kw) -> SelfAttention:
    cfg = GPTConfig(n_embd=C, n_head=nh, causal=causal, attn_impl=impl, **kw)
    torch.manual_seed(0)
    attn = SelfAttention(cfg).eval()
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_(0, 0.3)
    return attn


def _torch_mha(ours: SelfAttention, C: int, nh: int) -> torch.nn.MultiheadAttention:
    mha = torch.nn.MultiheadAttention(C, nh, bias=True, batch_first=True).eval()
    with torch.no_grad():
        mha.in_proj_weight.copy_(ours.qkv.weight)  # (3C, C): q, k, v stacked, as ours
        mha.in_proj_bias.copy_(ours.qkv.bias)
        mha.out_proj.weight.copy_(ours.proj.weight)
        mha.out_proj.bias.copy_(ours.proj.bias)
    return mha


@pytest.mark.parametrize("impl", ["sdpa", "explicit"])
@pytest.mark.parametrize("masking", ["none", "causal", "padding", "causal+padding"])
def test_attention_equals_torch_multihead_attention(impl, masking):
    B, T, C, nh = 3, 7, 24, 3
    causal = "causal" in masking
    ours = _attention(causal, impl, C, nh)
    mha = _torch_mha(ours, C, nh)
    x = torch.randn(B, T, C, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([7, 4, 1])
    keep = torch.arange(T)[None, :] < lengths[:, None]  # (B, T) True = real token
    ours_mask = keep[:, None, None, :] if "padding" in masking else None  # (B, 1, 1, T)
    # torch's masks mean the opposite: True = may NOT attend
    attn_mask = torch.ones(T, T, dtype=torch.bool).triu(1) if causal else None
    kpm = ~keep if "padding" in masking else None
    with torch.no_grad():
        got = ours(x, torch.arange(T), ours_mask)
        expected, _ = mha(x, x, x, attn_mask=attn_mask, key_padding_mask=kpm, need_weights=False)
    assert (got - expected).abs().max().item() <= TOL


def test_pattern_hook_sees_the_masked_pattern():
    ours = _attention(False, "sdpa")
    seen = {}
    ours.hook_pattern.add_hook(lambda p, name: seen.setdefault("p", p))
    keep = torch.tensor([[True, True, False, False]])[:, None, None, :]  # (1, 1, 1, 4)
    ours(torch.randn(1, 4, 24), torch.arange(4), keep)
    pattern = seen["p"]  # (1, nh, 4, 4)
    assert torch.allclose(pattern.sum(-1), torch.ones(1, 3, 4))
    assert pattern[..., 2:].abs().max().item() == 0.0


@pytest.mark.parametrize("shape", [(5,), (3, 16), (2, 4, 33)])
@pytest.mark.parametrize("eps", [1e-5, 1e-12])
def test_layernorm_equals_torch(shape, eps):
    dim = shape[-1]
    ours, ref = LayerNorm(dim, eps=eps), torch.nn.LayerNorm(dim, eps=eps)
    with torch.no_grad():
        ours.weight.normal_(), ours.bias.normal_()
        ref.weight.copy_(ours.weight), ref.bias.copy_(ours.bias)
    x = torch.randn(*shape) * 3 + 1
    assert (ours(x) - ref(x)).abs().max().item() <= TOL


@pytest.mark.parametrize("n_pos,d", [(50, 16), (7, 6), (128, 64)])
def test_sinusoidal_table_equals_closed_formula(n_pos, d):
    table = sinusoidal_table(n_pos, d)
    for pos in range(n_pos):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


def test_sinusoidal_halves_layout_is_the_same_table_reordered():
    """Marian/fairseq put all sines first, then all cosines: the same numbers, other order."""
    inter, halves = sinusoidal_table(20, 8), sinusoidal_table(20, 8, layout="halves")
    assert torch.equal(halves[:, :4], inter[:, 0::2])
    assert torch.equal(halves[:, 4:], inter[:, 1::2])


def test_rotary_scores_depend_only_on_relative_offset():
    hs, n = 16, 64
    rot = Rotary(hs, n)
    gen = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, hs, generator=gen), torch.randn(1, 1, 1, hs, generator=gen)

    def score(i: int, j: int) -> float:
        qi = rot(q, torch.tensor([i]))
        kj = rot(k, torch.tensor([j]))
        return (qi * kj).sum().item()

    for offset in (0, 1, 5, -3, 17):
        scores = [score(p + offset, p) for p in range(max(0, -offset), 40, 7)]
        assert max(scores) - min(scores) <= 1e-4, offset
    assert abs(score(5, 0) - score(6, 0)) > 1e-3  # the offset itself does matter


def test_cosine_attention_matches_its_formula_and_learns_its_temperature():
    B, T, C, nh = 2, 5, 16, 2
    fresh = SelfAttention(GPTConfig(n_embd=C, n_head=nh, cosine_attn=True))
    assert torch.allclose(fresh.log_temp.exp(), torch.full((nh,), 10.0))
    attn = _attention(True, "explicit", C, nh, cosine_attn=True)
    with torch.no_grad():
        attn.log_temp.copy_(torch.tensor([math.log(3.0), math.log(0.5)]))
    x = torch.randn(B, T, C, generator=torch.Generator().manual_seed(2))
    seen = {}
    attn.hook_pattern.add_hook(lambda p, name: seen.setdefault("p", p))
    out = attn(x, torch.arange(T))

    q, k, _ = attn.qkv(x).split(C, dim=2)
    q = q.view(B, T, nh, C // nh).transpose(1, 2)
    k = k.view(B, T, nh, C // nh).transpose(1, 2)
    cos = torch.nn.functional.cosine_similarity(q[:, :, :, None], k[:, :, None], dim=-1)
    scores = cos * torch.tensor([3.0, 0.5]).view(1, nh, 1, 1)  # (B, nh, T, T)
    scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    assert (seen["p"] - scores.softmax(-1)).abs().max().item() <= TOL

    fused = _attention(True, "sdpa", C, nh, cosine_attn=True)
    fused.load_state_dict(attn.state_dict())
    assert (fused(x, torch.arange(T)) - out).abs().max().item() <= TOL
    out.square().sum().backward()
    assert attn.log_temp.grad is not None and attn.log_temp.grad.abs().sum() > 0


def test_cosine_attention_gpt_trains():
    cfg = GPTConfig(vocab_size=8, block_size=8, n_layer=1, n_head=2, n_embd=16, cosine_attn=True)
    torch.manual_seed(0)
    model = GPT(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ids = torch.arange(8).repeat(4, 2)[:, :9]  # a repeating pattern 0..7
    losses = []
    for _ in range(60):
        _, loss = model(ids[:, :-1], ids[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_hookpoint_identity():
    assert torch.equal(HookPoint()(torch.ones(2)), torch.ones(2))


@pytest.mark.parametrize("scale", [1.0, 0.5, 0.0])
def test_residual_scale_weighs_the_skip_path(scale):
    from glassformer.nn.block import Block

    cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)
    cfg.residual_scale = scale
    block = Block(cfg).eval()
    x, pos = torch.randn(2, 5, 8), torch.arange(5)
    with torch.no_grad():
        mid = scale * x + block.attn(block.ln_1(x), pos)  # (B, T, C)
        expected = scale * mid + block.mlp(block.ln_2(mid))
        torch.testing.assert_close(block(x, pos), expected)
    with pytest.raises(ValueError, match="residual_scale"):
        GPTConfig(residual_scale=1.5)
