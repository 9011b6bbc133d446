"""The KV cache never changes the answer: cached decoding == recomputing the whole prefix."""

import pytest
import torch

from glassformer import GPT, GPTConfig
from glassformer.generate import GenerationOptions, generate_tokens
from glassformer.generate.context import Context
from glassformer.generate.greedy import Greedy
from glassformer.nn.kv_cache import KVCache

POS = ["learned", "rotary", "sinusoidal", "none"]


def _model(pos_emb: str, block: int = 96, seed: int = 0, **kw) -> GPT:
    torch.manual_seed(seed)
    cfg = GPTConfig(
        vocab_size=61, block_size=block, n_layer=2, n_head=2, n_embd=32, pos_emb=pos_emb, **kw
    )
    model = GPT(cfg).eval()
    with torch.no_grad():  # larger weights than the init: confident, varied predictions
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(std=0.3)
    return model


def _greedy_logits(model, idx, steps, use_cache):
    """(tokens (steps,), logits (steps, V)) of greedy decoding, step by step."""
    ctx = Context(model, idx, use_cache=use_cache)
    tokens, logits = [], []
    for _ in range(steps):
        lg = ctx.logits()
        nxt = lg.argmax(-1, keepdim=True)
        ctx.append(nxt)
        tokens.append(nxt)
        logits.append(lg)
    return torch.cat(tokens, 1), torch.cat(logits)


@pytest.mark.parametrize("pos_emb", ["learned", "rotary"])
def test_greedy_with_cache_equals_without_20_prompts_64_steps(pos_emb):
    model = _model(pos_emb)
    gen = torch.Generator().manual_seed(1)
    worst = 0.0
    for length in (1, 4, 11, 20):  # 4 batches of 5 prompts: 20 prompts
        prompts = torch.randint(0, 61, (5, length), generator=gen)
        a, la = _greedy_logits(model, prompts, 64, use_cache=True)
        b, lb = _greedy_logits(model, prompts, 64, use_cache=False)
        assert torch.equal(a, b), f"prompts of length {length}: tokens differ"
        worst = max(worst, (la - lb).abs().max().item())
    assert worst < 1e-5, worst


@pytest.mark.parametrize("pos_emb", POS)
def test_model_forward_with_cache_in_chunks_equals_one_forward(pos_emb):
    model = _model(pos_emb)
    ids = torch.randint(0, 61, (3, 40), generator=torch.Generator().manual_seed(2))
    full, _ = model(ids)
    cache = KVCache.for_model(model, batch=3, capacity=40)
    parts = [model(ids[:, a:b], cache=cache)[0] for a, b in [(0, 17), (17, 18), (18, 31), (31, 40)]]
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=0)
    assert cache.size == cache.seen == 40


def test_explicit_attention_path_and_hooks_see_the_cached_keys():
    model = _model("rotary", attn_impl="explicit")
    ids = torch.randint(0, 61, (1, 12), generator=torch.Generator().manual_seed(3))
    full, _ = model(ids)
    cache = KVCache.for_model(model, batch=1, capacity=model.config.block_size)
    model(ids[:, :11], cache=cache)
    seen = []
    h = model.blocks[0].attn.hook_pattern.add_hook(lambda x, name: seen.append(x.shape))
    last, _ = model(ids[:, 11:], cache=cache)
    h.remove()
    torch.testing.assert_close(last[:, -1], full[:, -1], atol=1e-5, rtol=0)
    assert seen == [torch.Size([1, 2, 1, 12])]  # one query, twelve keys


def test_continuing_from_a_returned_context_equals_one_long_call():
    model = _model("learned")
    prompt = torch.randint(0, 61, (2, 7), generator=torch.Generator().manual_seed(4))

    def decode(ctx, opts):  # greedy steps on a kept Context, as a conversation continues
        for _ in range(opts.max_new_tokens):
            nxt = Greedy().choose(ctx.logits(), ctx.ids, opts)  # (B, 1)
            ctx.append(nxt)
            yield nxt

    opts = GenerationOptions(max_new_tokens=30)
    one = torch.cat(list(decode(Context(model, prompt), opts)), 1)
    ctx = Context(model, prompt)
    first = torch.cat(list(decode(ctx, GenerationOptions(max_new_tokens=12))), 1)
    rest = torch.cat(list(decode(ctx, GenerationOptions(max_new_tokens=18))), 1)
    assert torch.equal(torch.cat((first, rest), 1), one)
    # and a continuation with new user tokens == a fresh run over the whole history
    extra = torch.randint(0, 61, (2, 5), generator=torch.Generator().manual_seed(5))
    ctx.append(extra)
    cont = torch.cat(list(decode(ctx, GenerationOptions(max_new_tokens=10))), 1)
    history = torch.cat((prompt, one, extra), 1)
    fresh = torch.cat(list(decode(Context(model, history, use_cache=False), opts)), 1)
    assert torch.equal(cont, fresh[:, :10])


@pytest.mark.parametrize("pos_emb", POS)
@pytest.mark.parametrize("prompt_len", [15, 16, 17])  # context - 1, context, context + 1
def test_sliding_window_at_the_context_boundary(pos_emb, prompt_len):
    """Learned/sinusoidal re-encode the last 16 tokens; rotary/none roll the cache. Either way
    the cached path equals the uncached definition, token for token, with close logits."""
    model = _model(pos_emb, block=16)
    prompt = torch.randint(0, 61, (1, prompt_len), generator=torch.Generator().manual_seed(6))
    a, la = _greedy_logits(model, prompt, 6, use_cache=True)
    b, lb = _greedy_logits(model, prompt, 6, use_cache=False)
    assert torch.equal(a, b)
    torch.testing.assert_close(la, lb, atol=1e-5, rtol=0)


@pytest.mark.parametrize("pos_emb", ["rotary", "alibi"])
def test_rolling_cache_is_sliding_window_attention(pos_emb):
    """Past the context, rotary (or ALiBi) + rolling cache == a banded mask of width block_size
    over the whole history, computed here directly with the explicit attention formula."""
    model = _model(pos_emb, block=8)
    ids = torch.randint(0, 61, (1, 20), generator=torch.Generator().manual_seed(7))
    ctx = Context(model, ids[:, :8])
    cached = [ctx.logits()]
    for t in range(8, 20):
        ctx.append(ids[:, t : t + 1])
        cached.append(ctx.logits())
    # reference: every block by hand with the band as an explicit mask
    N = 20
    i = torch.arange(N)
    band = (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - 8)
    x = model.tok_emb(ids)
    with torch.no_grad():
        for block in model.blocks:
            x = block(x, i, mask=band)
        ref = model.logits(model.ln_f(x))[0, 7:]  # logits after tokens 8..20
    torch.testing.assert_close(torch.cat(cached), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("pos_emb", ["learned", "rotary"])
def test_left_padded_batch_equals_each_prompt_alone(pos_emb):
    model = _model(pos_emb)
    gen = torch.Generator().manual_seed(8)
    prompts = [torch.randint(0, 61, (n,), generator=gen) for n in (3, 9, 1, 6)]
    width = max(len(p) for p in prompts)
    idx = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros_like(idx)
    for b, p in enumerate(prompts):
        idx[b, width - len(p) :], mask[b, width - len(p) :] = p, 1
    for use_cache in (True, False):
        opts = GenerationOptions(20, use_cache=use_cache)
        out = generate_tokens(model, idx, opts, attention_mask=mask)
        for b, p in enumerate(prompts):
            alone = generate_tokens(model, p[None], GenerationOptions(20))
            assert torch.equal(out[b, width:], alone[0, len(p) :]), (b, use_cache)


def test_padded_batch_logits_equal_alone_within_1e_5():
    model = _model("learned")
    a = torch.tensor([[5, 6, 7, 8, 9]])
    b = torch.tensor([[0, 0, 3, 4, 2]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])
    pad = (mask == 0).sum(1)
    cache = KVCache.for_model(model, batch=2, capacity=5, pad=pad)
    batch_logits, _ = model(torch.cat((a, b)), cache=cache)
    alone, _ = model(b[:, 2:])
    torch.testing.assert_close(batch_logits[1, 2:], alone[0], atol=1e-5, rtol=0)
    assert torch.isfinite(batch_logits).all()  # padding queries see themselves: no NaN


def test_cache_overflow_is_a_clear_error():
    model = _model("learned", block=8)
    cache = KVCache.for_model(model, batch=1, capacity=model.config.block_size)
    model(torch.zeros(1, 8, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="holds 8 tokens"):
        model(torch.zeros(1, 1, dtype=torch.long), cache=cache)


@pytest.mark.parametrize("pos_emb", ["learned", "rotary"])
def test_history_past_the_context_before_the_first_step(pos_emb):
    """Tokens appended before the prefill may already overflow: same as without cache."""
    model = _model(pos_emb, block=8)
    gen = torch.Generator().manual_seed(9)
    cached = Context(model, torch.randint(0, 61, (2, 5), generator=gen))
    cached.append(torch.randint(0, 61, (2, 9), generator=gen))  # 14 > 8 tokens
    plain = Context(model, cached.ids[:, :5], use_cache=False)
    plain.append(cached.ids[:, 5:])
    torch.testing.assert_close(cached.logits(), plain.logits(), atol=1e-5, rtol=0)
