"""The decode fast path computes what the plain forward computes.

Reference: the model run over the whole history with no cache, the argmax of its last
position (`greedy_reference`). The fast path: `generate_tokens` (a cache sized to the
generation, the prefill in chunks, only the last position through the LM head).

Tokens must be identical. Logits agree to fp32 rounding, not bit for bit: a matrix product
of one row (a decode step, the last-position head) sums in another order than one of T rows
(the plain forward), so the two differ by a few units in the last place of the largest logits
(SmolLM2: 2e-5 after the prompt, 7e-5 after 24 steps, on logits up to 46). The tests bound the
gap relative to the largest logit: `relative_gap` <= 1e-5.
"""

import pytest
import torch

from glassformer import GPT, GPTConfig
from glassformer.errors import UserError
from glassformer.generate import GenerationOptions, generate_tokens
from glassformer.generate import context as context_module
from glassformer.generate.context import Context
from glassformer.generate.greedy import Greedy


def _llama(seed: int = 0, block: int = 256) -> GPT:
    """A small random model of SmolLM2's shape: GQA, rotary, RMSNorm, SwiGLU, tied head."""
    torch.manual_seed(seed)
    cfg = GPTConfig(
        vocab_size=97,
        block_size=block,
        n_layer=3,
        n_head=6,
        n_kv_head=2,
        n_embd=48,
        mlp_hidden=96,
        bias=False,
        pos_emb="rotary",
        rope_theta=1e5,
        norm="rmsnorm",
        activation="swiglu",
        tie_weights=True,
    )
    model = GPT(cfg).eval()
    with torch.no_grad():  # larger weights than the init: confident, varied predictions
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(std=0.3)
    return model


@torch.no_grad()
def greedy_reference(model: GPT, idx: torch.Tensor, steps: int):
    """(ids (B, T + steps), logits (steps, B, V)): a full forward, no cache, every step."""
    logits = []
    for _ in range(steps):
        last = model(idx)[0][:, -1]  # (B, V)
        logits.append(last)
        idx = torch.cat((idx, last.argmax(-1, keepdim=True)), dim=1)
    return idx, torch.stack(logits)


def relative_gap(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| over max |want|."""
    return ((got - want).abs().max() / want.abs().max()).item()


def _fast(model, idx, steps, **options):
    """(ids, logits (steps, B, V), context) of the fast path, step by step."""
    opts = GenerationOptions(max_new_tokens=steps, **options)
    ctx = Context(model, idx, room=steps, prefill_precision=opts.prefill_precision)
    logits = []
    with torch.no_grad():
        for _ in range(steps):
            logits.append(ctx.logits())
            ctx.append(Greedy().choose(logits[-1], ctx.ids, opts))
    return ctx.ids, torch.stack(logits), ctx


def test_greedy_ids_identical_and_logits_equal_to_fp32_rounding():
    model = _llama()
    gen = torch.Generator().manual_seed(1)
    for length in (1, 7, 30):
        idx = torch.randint(0, 97, (2, length), generator=gen)
        want, want_logits = greedy_reference(model, idx, 40)
        got, got_logits, _ = _fast(model, idx, 40)
        assert torch.equal(got, want), f"prompt of {length}: tokens differ"
        assert torch.equal(generate_tokens(model, idx, GenerationOptions(40)), want)
        assert relative_gap(got_logits, want_logits) <= 1e-5


def test_the_cache_holds_prompt_plus_new_tokens_not_the_context():
    model = _llama(block=4096)
    idx = torch.randint(0, 97, (1, 9), generator=torch.Generator().manual_seed(2))
    _, _, ctx = _fast(model, idx, 16)
    c = model.config
    assert ctx.cache.k.shape == (c.n_layer, 1, c.kv_heads, 9 + 16, c.head_dim)
    assert ctx.cache.size == 9 + 15  # the last chosen token is not fed yet


def test_a_later_turn_grows_the_cache_once_and_computes_the_same():
    model = _llama()
    gen = torch.Generator().manual_seed(3)
    idx = torch.randint(0, 97, (1, 5), generator=gen)
    _, _, ctx = _fast(model, idx, 4)  # room for 5 + 4 tokens
    assert ctx.cache.capacity == 9
    ctx.append(torch.randint(0, 97, (1, 6), generator=gen))  # a new turn: 15 tokens in all
    steps = []
    for _ in range(4):
        steps.append(ctx.logits())
        ctx.append(steps[-1].argmax(-1, keepdim=True))
    assert ctx.cache.capacity == 15 + 4  # grown once: this turn's tokens + the room
    want, want_logits = greedy_reference(model, ctx.ids[:, :15], 4)
    assert torch.equal(ctx.ids, want)
    assert relative_gap(torch.stack(steps), want_logits) <= 1e-5


def test_a_prompt_longer_than_a_chunk_is_fed_in_chunks(monkeypatch):
    model = _llama()
    idx = torch.randint(0, 97, (2, 50), generator=torch.Generator().manual_seed(4))
    want, want_logits = greedy_reference(model, idx, 5)
    monkeypatch.setattr(context_module, "PREFILL_CHUNK", 16)  # 50 = 16 + 16 + 16 + 2
    calls = []
    handle = model.blocks[0].hook_resid_pre.add_hook(lambda x, name: calls.append(x.size(1)))
    got, got_logits, _ = _fast(model, idx, 5)
    handle.remove()
    assert calls == [16, 16, 16, 2, 1, 1, 1, 1]
    assert torch.equal(got, want)
    assert relative_gap(got_logits, want_logits) <= 1e-5


def test_bf16_prefill_rounds_the_prompt_only():
    model = _llama()
    idx = torch.randint(0, 97, (1, 20), generator=torch.Generator().manual_seed(5))
    _, want_logits = greedy_reference(model, idx, 1)
    _, got_logits, ctx = _fast(model, idx, 1, prefill_precision="bf16")
    assert ctx.cache.k.dtype == torch.float32  # keys and values kept in the model's dtype
    delta = (got_logits - want_logits).abs().max().item()
    assert 0 < delta < 0.1 * want_logits.abs().max().item()  # rounded, not wrong


def test_unknown_prefill_precision_is_an_option_error():
    with pytest.raises(UserError, match="prefill_precision must be one of fp32, bf16, auto"):
        GenerationOptions(prefill_precision="fp16")


@pytest.mark.slow
@pytest.mark.parametrize("prompt", ["The capital of France is", "def fibonacci(n):"])
def test_smollm2_fast_path_equals_the_plain_forward(smollm2_gguf, prompt):
    from glassformer.interop.gguf import load_gguf

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matmuls on a shared machine: one thread is steadier
    try:
        model, tokenizer = load_gguf(smollm2_gguf)
        idx = torch.tensor([tokenizer.encode(prompt)])
        want, want_logits = greedy_reference(model, idx, 24)
        got, got_logits, _ = _fast(model, idx, 24)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(got, want), tokenizer.decode(got[0].tolist())
    delta = (got_logits - want_logits).abs().max().item()
    print(f"\nmax |fast - plain forward| over 24 steps of {prompt!r}: {delta:.1e}")
    assert relative_gap(got_logits, want_logits) <= 1e-5
