"""ALiBi (nn/alibi.py) through the position registry's score bias: the slopes and the bias
equal the paper's formula and BLOOM's (transformers) tensor, and a GPT with it gives the same
logits with and without the KV cache, left-padded, rolled past the context, on the explicit
path, and learns."""

import math
from types import SimpleNamespace

import pytest
import torch
from transformers.models.bloom.modeling_bloom import build_alibi_tensor

import glassformer
from glassformer import GPT, GPTConfig
from glassformer.cli import main
from glassformer.errors import UserError
from glassformer.generate import GenerationOptions, generate_tokens
from glassformer.generate.context import Context
from glassformer.nn.alibi import ALiBi, alibi_slopes
from glassformer.nn.kv_cache import KVCache
from glassformer.train.metrics import read_metrics

ATOL = 1e-5  # fp32 logits: cached vs full, padded vs alone, explicit vs fused


def paper_slopes(n: int) -> list[float]:
    """`get_slopes` of the paper's code (ofirpress/attention_with_linear_biases), retyped."""

    def power_of_2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n).is_integer():
        return power_of_2(n)
    closest = 2 ** math.floor(math.log2(n))
    return power_of_2(closest) + paper_slopes(2 * closest)[0::2][: n - closest]


def test_slopes_are_the_papers():
    assert alibi_slopes(4).tolist() == [1 / 4, 1 / 16, 1 / 64, 1 / 256]
    assert alibi_slopes(8).tolist() == [2.0**-i for i in range(1, 9)]
    assert alibi_slopes(6).tolist() == [1 / 4, 1 / 16, 1 / 64, 1 / 256, 1 / 2, 1 / 8]
    assert alibi_slopes(1).tolist() == [2.0**-8]
    for n in range(1, 65):
        ref = torch.tensor(paper_slopes(n), dtype=torch.float32)
        torch.testing.assert_close(alibi_slopes(n), ref, rtol=1e-6, atol=0)


def test_bias_is_minus_slope_times_distance():
    n, T = 5, 7
    slopes = torch.tensor(paper_slopes(n))
    ref = torch.empty(1, n, T, T)
    for h in range(n):
        for i in range(T):
            for j in range(T):
                ref[0, h, i, j] = -slopes[h] * abs(i - j)
    pos = torch.arange(T)
    torch.testing.assert_close(ALiBi(n)(pos, pos), ref, rtol=1e-6, atol=0)
    # a cache's keys: queries 10, 11 over keys 6..11 (a window that rolled)
    bias = ALiBi(n)(torch.arange(10, 12), torch.arange(6, 12))
    torch.testing.assert_close(bias, ref[:, :, 5:7, 1:7], rtol=1e-6, atol=0)
    # one row of positions per sequence: (B, nh, Tq, Tk)
    rows = torch.stack([pos, pos + 3])
    assert ALiBi(n)(rows, rows).shape == (2, n, T, T)
    torch.testing.assert_close(ALiBi(n)(rows, rows)[1:], ref)


@pytest.mark.parametrize("n_head", [1, 2, 3, 4, 6, 8, 12, 16, 20, 32])
def test_slopes_and_bias_equal_blooms(n_head):
    """BLOOM adds slope * key_position (its positions: the cumsum of its attention mask); the
    softmax ignores a per-query constant, so ours must equal it minus slope * query_position.
    Tolerance 1e-6 absolute (float32 products of the same slopes)."""
    T = 9
    bloom = build_alibi_tensor(torch.ones(1, T), n_head, torch.float32)  # (nh, 1, T)
    torch.testing.assert_close(alibi_slopes(n_head), bloom[:, 0, 1], rtol=1e-6, atol=0)
    ours = ALiBi(n_head)(torch.arange(T), torch.arange(T))[0]  # (nh, T, T)
    shifted = bloom[:, 0][:, None, :] - bloom[:, 0][:, :, None]  # (nh, Tq, Tk): k - q
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    torch.testing.assert_close(ours[:, causal], shifted[:, causal], rtol=0, atol=1e-6)
    # left padding: BLOOM's positions from its mask, ours from the cache's key positions
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1, 1], [1] * T])
    bloom = build_alibi_tensor(mask, n_head, torch.float32).view(2, n_head, T)
    cache = KVCache(1, 2, 1, T, 4, pad=(mask == 0).sum(1))
    k_pos = cache.key_positions(T)  # (B, T)
    ours = ALiBi(n_head)(k_pos, k_pos)  # (B, nh, T, T)
    shifted = bloom[:, :, None, :] - bloom[:, :, :, None]
    real = causal & mask.bool()[:, None, :] & mask.bool()[:, :, None]  # (B, Tq, Tk)
    for b in range(2):
        torch.testing.assert_close(ours[b][:, real[b]], shifted[b][:, real[b]], rtol=0, atol=1e-6)


def test_the_cache_knows_its_keys_positions_after_a_roll_and_with_padding():
    """Slot j holds the (seen - size + j)-th token fed, minus the row's padding. (A causal
    model's softmax would not notice a shift of all of them; the positions are right anyway.)"""
    cache = KVCache(
        n_layer=1, batch=2, n_kv_head=1, capacity=8, head_dim=2, pad=torch.tensor([0, 2])
    )
    assert cache.key_positions(3).tolist() == [[0, 1, 2], [0, 0, 0]]
    cache.begin(8)
    cache.end(8)
    cache.roll(3)  # 5 slots kept: the tokens fed 3rd..7th
    assert cache.key_positions(1).tolist() == [[3, 4, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6]]
    assert cache.positions(1).tolist() == [[8], [6]]  # the query: the last key's position


def _model(block: int = 96, seed: int = 0, **kw) -> GPT:
    torch.manual_seed(seed)
    cfg = dict(vocab_size=61, block_size=block, n_layer=2, n_head=4, n_embd=32, pos_emb="alibi")
    model = GPT(GPTConfig(**{**cfg, **kw})).eval()
    with torch.no_grad():  # larger weights than the init: confident, varied predictions
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(std=0.3)
    return model


def _greedy_logits(model, idx, steps, use_cache, pad=None):
    """(tokens (B, steps), logits (steps, B, V)) of greedy decoding, step by step."""
    ctx = Context(model, idx, pad, use_cache=use_cache)
    tokens, logits = [], []
    for _ in range(steps):
        lg = ctx.logits()
        nxt = lg.argmax(-1, keepdim=True)
        ctx.append(nxt)
        tokens.append(nxt)
        logits.append(lg)
    return torch.cat(tokens, 1), torch.stack(logits)


def test_the_registry_entry_builds_a_bias_and_nothing_else():
    model = _model()
    assert model.pos_emb is None and model.blocks[0].attn.rotation is None
    assert isinstance(model.blocks[0].attn.score_bias, ALiBi)
    assert not any("slopes" in k for k in model.state_dict())  # fixed: not in checkpoints
    for name in ("learned", "rotary", "none"):  # the other schemes: no bias at all
        assert GPT(GPTConfig(pos_emb=name)).blocks[0].attn.score_bias is None


def test_attention_equals_the_formula_by_hand():
    """Layer 0's pattern (explicit path, hook) == softmax(q k^T / sqrt(hs) - slope |i - j|)
    with the causal mask, from the hooked q and k; the hooked run's logits == the fused run's."""
    model = _model()
    ids = torch.randint(0, 61, (2, 10), generator=torch.Generator().manual_seed(1))
    (logits, _), cache = glassformer.run_with_cache(model, ids, names=lambda n: "attn." in n)
    torch.testing.assert_close(logits, model(ids)[0], atol=ATOL, rtol=0)  # hooked == fused
    q, k = cache["blocks.0.attn.q"], cache["blocks.0.attn.k"]  # (B, nh, T, hs)
    slopes = torch.tensor(paper_slopes(4))
    i = torch.arange(10)
    scores = q @ k.transpose(-1, -2) / math.sqrt(8) - slopes[:, None, None] * (i[:, None] - i)
    scores = scores.masked_fill(i[None, :] > i[:, None], float("-inf"))
    pattern = cache["blocks.0.attn.pattern"]  # (B, nh, T, T)
    torch.testing.assert_close(pattern, scores.softmax(-1), atol=ATOL, rtol=0)


@pytest.mark.parametrize("kw", [{}, {"n_kv_head": 2}, {"n_kv_head": 1}])
def test_explicit_path_equals_the_fused_kernel(kw):
    model = _model(**kw)
    explicit = _model(attn_impl="explicit", **kw)
    explicit.load_state_dict(model.state_dict())
    ids = torch.randint(0, 61, (3, 20), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(explicit(ids)[0], model(ids)[0], atol=ATOL, rtol=0)
    pad = torch.tensor([0, 5, 11])  # left-padded rows: mask and bias per row
    logits = []
    for m in (model, explicit):
        logits.append(m(ids, cache=KVCache.for_model(m, 3, 20, pad))[0])
    torch.testing.assert_close(logits[0], logits[1], atol=ATOL, rtol=0)


def test_forward_with_cache_in_chunks_equals_one_forward():
    model = _model()
    ids = torch.randint(0, 61, (3, 40), generator=torch.Generator().manual_seed(3))
    full, _ = model(ids)
    cache = KVCache.for_model(model, batch=3, capacity=40)
    parts = [model(ids[:, a:b], cache=cache)[0] for a, b in [(0, 17), (17, 18), (18, 31), (31, 40)]]
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=ATOL, rtol=0)


def test_prefill_then_decode_steps_equal_the_full_forward():
    model = _model()
    ids = torch.randint(0, 61, (2, 30), generator=torch.Generator().manual_seed(4))
    full, _ = model(ids)
    cache = KVCache.for_model(model, batch=2, capacity=30)
    steps = [model(ids[:, :12], cache=cache)[0]]
    steps += [model(ids[:, t : t + 1], cache=cache)[0] for t in range(12, 30)]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=ATOL, rtol=0)


def test_greedy_with_cache_equals_without():
    model = _model()
    gen = torch.Generator().manual_seed(5)
    for length in (1, 7, 20):
        prompts = torch.randint(0, 61, (4, length), generator=gen)
        a, la = _greedy_logits(model, prompts, 40, use_cache=True)
        b, lb = _greedy_logits(model, prompts, 40, use_cache=False)
        assert torch.equal(a, b), length
        torch.testing.assert_close(la, lb, atol=ATOL, rtol=0)


def test_left_padded_batch_equals_each_prompt_alone():
    model = _model()
    gen = torch.Generator().manual_seed(6)
    prompts = [torch.randint(0, 61, (n,), generator=gen) for n in (3, 9, 1, 6)]
    width = max(len(p) for p in prompts)
    idx = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros_like(idx)
    for b, p in enumerate(prompts):
        idx[b, width - len(p) :], mask[b, width - len(p) :] = p, 1
    # logits of the prefill: each row's real positions == that prompt alone
    cache = KVCache.for_model(model, len(prompts), width, pad=(mask == 0).sum(1))
    batch_logits, _ = model(idx, cache=cache)
    assert torch.isfinite(batch_logits).all()
    for b, p in enumerate(prompts):
        alone, _ = model(p[None])
        torch.testing.assert_close(batch_logits[b, width - len(p) :], alone[0], atol=ATOL, rtol=0)
    # and 20 greedy tokens, with and without the cache
    for use_cache in (True, False):
        out = generate_tokens(model, idx, GenerationOptions(20, use_cache=use_cache), mask)
        for b, p in enumerate(prompts):
            alone = generate_tokens(model, p[None], GenerationOptions(20))
            assert torch.equal(out[b, width:], alone[0, len(p) :]), (b, use_cache)


@pytest.mark.parametrize("prompt_len", [15, 16, 17])  # context - 1, context, context + 1
def test_sliding_window_at_the_context_boundary(prompt_len):
    """No table: the cache rolls past the context, as with rotary; cached == uncached."""
    model = _model(block=16)
    prompt = torch.randint(0, 61, (1, prompt_len), generator=torch.Generator().manual_seed(7))
    a, la = _greedy_logits(model, prompt, 6, use_cache=True)
    b, lb = _greedy_logits(model, prompt, 6, use_cache=False)
    assert torch.equal(a, b)
    torch.testing.assert_close(la, lb, atol=ATOL, rtol=0)


def test_left_padded_batch_rolling_past_the_context():
    """Padding and a rolled window together: the cache's per-row key positions."""
    model = _model(block=8)
    gen = torch.Generator().manual_seed(9)
    idx = torch.randint(0, 61, (3, 6), generator=gen)
    pad = torch.tensor([0, 2, 5])
    a, la = _greedy_logits(model, idx, 14, use_cache=True, pad=pad)
    b, lb = _greedy_logits(model, idx, 14, use_cache=False, pad=pad)
    assert torch.equal(a, b)
    torch.testing.assert_close(la, lb, atol=ATOL, rtol=0)
    for row in range(3):  # each row alone: the same tokens
        alone, _ = _greedy_logits(model, idx[row : row + 1, pad[row] :], 14, use_cache=True)
        assert torch.equal(alone[0], a[row]), row


def test_half_precision_runs_the_fused_kernel_with_the_bias_in_its_dtype():
    """fp16 on the CPU takes SDPA's main path (bf16 has its own fp32 one): the float32 bias
    must become the kernel's dtype. Tolerance: 2% (fp16) and 10% (bf16) of the largest logit."""
    model = _model()
    ids = torch.randint(0, 61, (2, 12), generator=torch.Generator().manual_seed(10))
    full, _ = model(ids)
    for dtype, tol in ((torch.float16, 0.02), (torch.bfloat16, 0.1)):
        low = _model().to(dtype)
        logits, _ = low(ids)
        assert logits.dtype == dtype
        assert (logits.float() - full).abs().max() < tol * full.abs().max(), dtype


def test_train_with_alibi_learns_and_generates(tmp_path, small_corpus):
    out = tmp_path / "run"
    args = ["train", "--preset", "tiny", "--quiet", "--out", str(out), "--data", str(small_corpus)]
    assert main([*args, "--max-steps", "40", "--model.pos_emb", "alibi"]) == 0
    vals = [r["val_loss"] for r in read_metrics(out / "metrics.jsonl") if "val_loss" in r]
    assert vals[-1] < vals[0] - 0.3, vals
    model, tok = glassformer.load(out)
    assert model.config.pos_emb == "alibi"
    text = glassformer.generate(model, tok, "the ", max_new_tokens=40)  # past block_size 32
    assert isinstance(text, str) and len(text) > 0
    cached = glassformer.generate(model, tok, "the ", max_new_tokens=40, use_cache=False)
    assert cached == text


def test_help_lists_alibi(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = capsys.readouterr().out
    assert "alibi" in help_text


def test_tensor_parallel_refuses_a_score_bias():
    from glassformer.train.parallel import TensorParallel

    mesh = SimpleNamespace(size=lambda: 2)
    with pytest.raises(UserError, match="pos_emb alibi"):
        TensorParallel(_model(), mesh)
