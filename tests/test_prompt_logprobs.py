"""Prompt log-probabilities from the engine's prefill (what `echo` with `logprobs` returns):
log p(prompt[i] | prompt[:i]) for every prompt token after the first, equal to log_softmax of
a plain full forward (fp32, 1e-5), the same in a batched prefill as alone, and with
`prefill_only` no token is chosen."""

import pytest
import torch

from glassformer import GPT, GPTConfig
from glassformer.generate import Engine, Finish, Generation, GenerationOptions, Token
from glassformer.generate.context import PREFILL_CHUNK


def _model(pos_emb: str = "rotary", block: int = 96) -> GPT:
    torch.manual_seed(0)
    cfg = GPTConfig(
        vocab_size=61, block_size=block, n_layer=2, n_head=2, n_embd=32, pos_emb=pos_emb
    )
    model = GPT(cfg).eval()
    with torch.no_grad():  # larger weights than the init: confident, varied predictions
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(std=0.3)
    return model


def _reference(model, ids: torch.Tensor, k: int):
    """log_softmax of one plain forward: (chosen (T-1,), top values (T-1, k), top ids)."""
    with torch.no_grad():
        logits, _ = model(ids[None])
    logp = torch.log_softmax(logits[0, :-1].float(), dim=-1)
    values, top = logp.topk(k, dim=-1)
    return logp.gather(1, ids[1:, None])[:, 0], values, top


def _prompts(lengths, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 61, (n,), generator=g) for n in lengths]


@pytest.mark.parametrize("pos_emb", ["learned", "rotary"])
@pytest.mark.parametrize("use_cache", [True, False])
def test_prompt_logprobs_equal_log_softmax_of_a_full_forward(pos_emb, use_cache):
    model = _model(pos_emb)
    engine = Engine(model, use_cache=use_cache)
    prompts = _prompts([1, 5, 17, 40])
    # one batched prefill
    gens = [Generation(p, GenerationOptions(3), prompt_logprobs=4) for p in prompts]
    events = list(engine.stream(gens))
    worst = 0.0
    for p, gen in zip(prompts, gens, strict=True):
        assert len(gen.prompt_scores) == p.numel() - 1
        if p.numel() == 1:
            continue
        chosen, values, top = _reference(model, p, 4)
        got = torch.tensor([lp for lp, _ in gen.prompt_scores])
        worst = max(worst, (got - chosen).abs().max().item())
        for t, (_, alts) in enumerate(gen.prompt_scores):
            assert [i for i, _ in alts] == top[t].tolist()
            ref = values[t].tolist()
            worst = max(worst, max(abs(v - r) for (_, v), r in zip(alts, ref, strict=True)))
    assert worst < 1e-5, worst
    assert sum(isinstance(e, Token) for e in events) == 3 * len(prompts)  # decoding went on


def test_batched_prefill_scores_equal_each_prompt_alone():
    model = _model()
    prompts = _prompts([3, 30, 12, 8], seed=2)
    together = [Generation(p, GenerationOptions(1), prompt_logprobs=2) for p in prompts]
    list(Engine(model).stream(together))
    worst = 0.0
    for p, gen in zip(prompts, together, strict=True):
        alone = Generation(p, GenerationOptions(1), prompt_logprobs=2)
        list(Engine(model).stream([alone]))
        a = torch.tensor([lp for lp, _ in gen.prompt_scores])
        b = torch.tensor([lp for lp, _ in alone.prompt_scores])
        worst = max(worst, (a - b).abs().max().item())
        for (_, x), (_, y) in zip(gen.prompt_scores, alone.prompt_scores, strict=True):
            assert [i for i, _ in x] == [i for i, _ in y]
            worst = max(worst, max(abs(u - v) for (_, u), (_, v) in zip(x, y, strict=True)))
    assert worst < 1e-5, worst


def test_a_long_prompt_is_scored_across_prefill_chunks():
    model = _model("rotary", block=PREFILL_CHUNK + 200)
    (p,) = _prompts([PREFILL_CHUNK + 100], seed=3)
    gen = Generation(p, GenerationOptions(1), prompt_logprobs=0)
    list(Engine(model).stream([gen]))
    chosen, _, _ = _reference(model, p, 1)
    got = torch.tensor([lp for lp, _ in gen.prompt_scores])
    assert got.shape == chosen.shape
    assert (got - chosen).abs().max().item() < 1e-5
    assert all(top is None for _, top in gen.prompt_scores)  # k = 0: no alternatives


def test_prefill_only_chooses_no_token_and_the_others_decode_on():
    model = _model()
    a, b = _prompts([6, 9], seed=4)
    only = Generation(a, GenerationOptions(5), prompt_logprobs=0, prefill_only=True)
    other = Generation(b, GenerationOptions(5))
    shapes = []
    handle = model.hook_logits.add_hook(lambda x, name: shapes.append(tuple(x.shape)))
    try:
        events = list(Engine(model).stream([only, other]))
    finally:
        handle.remove()
    # the prompt that is not scored keeps the last-position fast path: its own batch
    assert shapes[:2] == [(1, 1, 61), (1, 6, 61)] and shapes[2:] == [(1, 1, 61)] * 4
    assert [e.reason for e in events if isinstance(e, Finish) and e.seq is only] == ["length"]
    assert not [e for e in events if isinstance(e, Token) and e.seq is only]
    assert len(only.prompt_scores) == 5 and only.new == []
    assert len([e for e in events if isinstance(e, Token) and e.seq is other]) == 5
    assert other.prompt_scores is None  # not asked: the fast path
