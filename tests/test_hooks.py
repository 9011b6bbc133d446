"""Hook points and run_with_cache: cached values equal the same quantities computed by hand,
and against torch.nn.MultiheadAttention (code we did not write) for the attention pattern."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from glassformer import GPT, GPTConfig
from glassformer.inspect import cache_name, hook_points, hooks, patch, run_with_cache, zero_head
from glassformer.nn.hooks import HookPoint

ATOL = 1e-5


def make_gpt(**overrides) -> GPT:
    torch.manual_seed(0)
    cfg = dict(vocab_size=23, block_size=16, n_layer=2, n_head=4, n_embd=32, bias=True)
    cfg.update(overrides)
    model = GPT(GPTConfig(**cfg)).eval()
    with torch.no_grad():  # give every weight (also zero-initialised biases) a random value
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.fixture
def idx() -> torch.Tensor:
    return torch.randint(0, 23, (2, 11), generator=torch.Generator().manual_seed(1))


def test_cache_names_drop_the_hook_prefix():
    assert cache_name("blocks.0.attn.hook_pattern") == "blocks.0.attn.pattern"
    assert cache_name("hook_embed") == "embed"
    assert cache_name("decoder.blocks.3.cross_attn.hook_z") == "decoder.blocks.3.cross_attn.z"
    names = set(hook_points(make_gpt()))
    for expected in (
        "embed",
        "pos_embed",
        "blocks.1.resid_pre",
        "blocks.1.resid_mid",
        "blocks.1.resid_post",
        "blocks.0.attn_out",
        "blocks.0.mlp_out",
        "blocks.0.attn.q",
        "blocks.0.attn.k",
        "blocks.0.attn.v",
        "blocks.0.attn.pattern",
        "blocks.0.attn.z",
        "blocks.0.mlp.pre",
        "blocks.0.mlp.post",
        "final",
        "logits",
    ):
        assert expected in names


def test_cache_keeps_only_what_was_asked_and_leaves_no_hooks(idx):
    model = make_gpt()
    (logits, _), cache = run_with_cache(model, idx, names=["blocks.1.resid_post", "logits"])
    assert set(cache) == {"blocks.1.resid_post", "logits"}
    assert torch.equal(cache["logits"], logits)
    _, cache = run_with_cache(model, idx, names=lambda n: n.endswith("attn.pattern"))
    assert set(cache) == {"blocks.0.attn.pattern", "blocks.1.attn.pattern"}
    assert all(not hp.hooks for hp in hook_points(model).values())
    with pytest.raises(ValueError, match="not a hook point"):
        run_with_cache(model, idx, names=["blocks.9.resid_post"])


def test_caching_does_not_change_the_output(idx):
    model = make_gpt()
    plain, _ = model(idx)  # fused SDPA path
    (cached, _), cache = run_with_cache(model, idx)  # explicit path (the pattern is asked for)
    torch.testing.assert_close(cached, plain, atol=ATOL, rtol=0)
    assert cache["blocks.0.attn.pattern"].shape == (2, 4, 11, 11)


@pytest.mark.parametrize("norm_position", ["pre", "post"])
def test_residual_stream_adds_up(idx, norm_position):
    model = make_gpt(norm_position=norm_position)
    (logits, _), c = run_with_cache(model, idx)
    torch.testing.assert_close(c["embed"] + c["pos_embed"], c["blocks.0.resid_pre"])
    for L, block in enumerate(model.blocks):
        pre, mid, post = (c[f"blocks.{L}.resid_{s}"] for s in ("pre", "mid", "post"))
        attn_out, mlp_out = c[f"blocks.{L}.attn_out"], c[f"blocks.{L}.mlp_out"]
        if norm_position == "pre":
            torch.testing.assert_close(mid, pre + attn_out, atol=0, rtol=0)
            torch.testing.assert_close(post, mid + mlp_out, atol=0, rtol=0)
        else:
            torch.testing.assert_close(mid, block.ln_1(pre + attn_out), atol=ATOL, rtol=0)
            torch.testing.assert_close(post, block.ln_2(mid + mlp_out), atol=ATOL, rtol=0)
        if L + 1 < len(model.blocks):
            assert torch.equal(post, c[f"blocks.{L + 1}.resid_pre"])
    last = c[f"blocks.{len(model.blocks) - 1}.resid_post"]
    torch.testing.assert_close(c["final"], model.ln_f(last))
    torch.testing.assert_close(logits, c["final"] @ model.lm_head.weight.T, atol=ATOL, rtol=0)


def test_mlp_neurons_by_hand(idx):
    model = make_gpt()
    _, c = run_with_cache(model, idx)
    mlp = model.blocks[0].mlp
    x = model.blocks[0].ln_2(c["blocks.0.resid_mid"])
    pre = x @ mlp.fc.weight.T + mlp.fc.bias
    torch.testing.assert_close(c["blocks.0.mlp.pre"], pre, atol=ATOL, rtol=0)
    torch.testing.assert_close(c["blocks.0.mlp.post"], F.gelu(pre), atol=ATOL, rtol=0)
    out = F.gelu(pre) @ mlp.proj.weight.T + mlp.proj.bias
    torch.testing.assert_close(c["blocks.0.mlp_out"], out, atol=ATOL, rtol=0)


def test_attention_pattern_is_the_explicit_softmax(idx):
    model = make_gpt()
    _, c = run_with_cache(model, idx)
    B, T = idx.shape
    for L, block in enumerate(model.blocks):
        attn = block.attn
        x = block.ln_1(c[f"blocks.{L}.resid_pre"])
        qkv = x @ attn.qkv.weight.T + attn.qkv.bias  # (B, T, 3C)
        q, k, v = (t.view(B, T, 4, 8).transpose(1, 2) for t in qkv.split(32, dim=-1))
        mask = torch.full((T, T), float("-inf")).triu(1)  # -inf above the diagonal
        pattern = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8) + mask, dim=-1)
        cached = c[f"blocks.{L}.attn.pattern"]
        torch.testing.assert_close(cached, pattern, atol=ATOL, rtol=0)
        torch.testing.assert_close(cached.sum(-1), torch.ones(B, 4, T), atol=ATOL, rtol=0)
        assert torch.all(cached.triu(1) == 0)  # causal: nothing from the future
        torch.testing.assert_close(c[f"blocks.{L}.attn.z"], pattern @ v, atol=ATOL, rtol=0)


def test_attention_pattern_matches_torch_multihead_attention(idx):
    """torch.nn.MultiheadAttention with our weights returns the same per-head weights."""
    model = make_gpt()
    _, c = run_with_cache(model, idx)
    attn = model.blocks[1].attn
    mha = nn.MultiheadAttention(32, 4, bias=True, batch_first=True).eval()
    with torch.no_grad():
        mha.in_proj_weight.copy_(attn.qkv.weight)
        mha.in_proj_bias.copy_(attn.qkv.bias)
        mha.out_proj.weight.copy_(attn.proj.weight)
        mha.out_proj.bias.copy_(attn.proj.bias)
    x = model.blocks[1].ln_1(c["blocks.1.resid_pre"])
    T = idx.size(1)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)  # True = may NOT attend
    out, weights = mha(x, x, x, attn_mask=future, average_attn_weights=False)
    torch.testing.assert_close(c["blocks.1.attn.pattern"], weights, atol=ATOL, rtol=0)
    torch.testing.assert_close(c["blocks.1.attn_out"], out, atol=ATOL, rtol=0)


def test_zero_ablating_a_head_removes_exactly_its_term(idx):
    model = make_gpt()
    _, clean = run_with_cache(model, idx, names=["blocks.0.attn.z", "blocks.0.attn_out"])
    head, hs = 2, 8
    with hooks(model, {"blocks.0.attn.z": zero_head(head)}):
        _, ablated = run_with_cache(model, idx, names=["blocks.0.attn.z", "blocks.0.attn_out"])
    assert torch.all(ablated["blocks.0.attn.z"][:, head] == 0)
    W_O = model.blocks[0].attn.proj.weight[:, head * hs : (head + 1) * hs]  # (C, hs)
    term = clean["blocks.0.attn.z"][:, head] @ W_O.T  # (B, T, C): head 2's contribution
    expected = clean["blocks.0.attn_out"] - term
    torch.testing.assert_close(ablated["blocks.0.attn_out"], expected, atol=ATOL, rtol=0)
    assert (ablated["blocks.0.attn_out"] - clean["blocks.0.attn_out"]).abs().max() > 1e-3
    assert all(not hp.hooks for hp in hook_points(model).values())


def test_patching_an_activation_from_another_run(idx):
    model = make_gpt()
    clean_ids, corrupt_ids = idx[:1], idx[1:]
    (clean_logits, _), clean = run_with_cache(model, clean_ids, names=["blocks.1.resid_pre"])
    corrupt_logits, _ = model(corrupt_ids)
    with hooks(model, {"blocks.1.resid_pre": patch(clean["blocks.1.resid_pre"])}):
        patched, _ = model(corrupt_ids)
    torch.testing.assert_close(patched, clean_logits, atol=ATOL, rtol=0)
    # the last block's output at one position: only that position's logits change
    _, clean = run_with_cache(model, clean_ids, names=["blocks.1.resid_post"])
    pos = 6
    one_position = patch(clean["blocks.1.resid_post"], (slice(None), pos))
    with hooks(model, {"blocks.1.resid_post": one_position}):
        patched, _ = model(corrupt_ids)
    torch.testing.assert_close(patched[:, pos], clean_logits[:, pos], atol=ATOL, rtol=0)
    keep = [t for t in range(idx.size(1)) if t != pos]
    torch.testing.assert_close(patched[:, keep], corrupt_logits[:, keep], atol=ATOL, rtol=0)


def test_run_with_cache_works_on_any_module_with_hook_points():
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)
            self.hook_hidden = HookPoint()

        def forward(self, x):
            return self.hook_hidden(self.lin(x)).relu()

    model = Tiny()
    x = torch.randn(2, 3)
    out, cache = run_with_cache(model, x)
    assert set(cache) == {"hidden"}
    torch.testing.assert_close(cache["hidden"], model.lin(x))
    torch.testing.assert_close(out, model.lin(x).relu())


def test_cross_attention_pattern_of_an_encoder_decoder():
    """Seq2Seq's cross-attention: rows sum to 1 over the source, padded source keys get 0, and
    the pattern equals softmax(q k^T / sqrt(hs)) with q from the decoder, k from the memory."""
    seq2seq = pytest.importorskip("glassformer.models.seq2seq")
    torch.manual_seed(0)
    cfg = seq2seq.Seq2SeqConfig(
        vocab_size=19, block_size=16, n_layer=1, n_dec_layer=2, n_head=2, n_embd=16
    )
    model = seq2seq.Seq2Seq(cfg).eval()
    src = torch.randint(0, 19, (2, 7))
    src_mask = torch.ones(2, 7, dtype=torch.long)
    src_mask[1, 5:] = 0  # the second source is two tokens shorter (padding)
    tgt = torch.randint(0, 19, (2, 5))
    names = hook_points(model)
    name = "dec_blocks.1.cross.pattern"
    assert name in names and "enc_blocks.0.attn.pattern" in names
    (logits, _), cache = run_with_cache(model, src, tgt, src_mask=src_mask, names=[name])
    plain, _ = model(src, tgt, src_mask=src_mask)
    torch.testing.assert_close(logits, plain, atol=ATOL, rtol=0)
    pattern = cache[name]  # (B, nh, T, S)
    assert pattern.shape == (2, 2, 5, 7)
    torch.testing.assert_close(pattern.sum(-1), torch.ones(2, 2, 5), atol=ATOL, rtol=0)
    assert torch.all(pattern[1, :, :, 5:] == 0)
    _, c = run_with_cache(
        model, src, tgt, src_mask=src_mask, names=["dec_blocks.1.cross.q", "dec_blocks.1.cross.k"]
    )
    scores = c["dec_blocks.1.cross.q"] @ c["dec_blocks.1.cross.k"].transpose(-2, -1) / math.sqrt(8)
    scores = scores.masked_fill(src_mask[:, None, None, :] == 0, float("-inf"))
    torch.testing.assert_close(pattern, torch.softmax(scores, dim=-1), atol=ATOL, rtol=0)


def test_hooks_work_through_torch_compile(idx):
    """A compiled model keeps its cache names; attaching hooks recompiles and still caches."""
    model = make_gpt()
    compiled = torch.compile(model, backend="aot_eager")
    plain, _ = model(idx)
    (logits, _), cache = run_with_cache(compiled, idx, names=["blocks.0.attn.pattern"])
    torch.testing.assert_close(logits, plain, atol=ATOL, rtol=0)
    assert cache["blocks.0.attn.pattern"].shape == (2, 4, 11, 11)
    again, _ = compiled(idx)
    torch.testing.assert_close(again, plain, atol=ATOL, rtol=0)
