"""Decoding strategies: processors by hand, beam and greedy equal to Hugging Face, seeds."""

import math

import pytest
import torch
import torch.nn.functional as F

import glassformer
from glassformer import GPT, GPTConfig
from glassformer.errors import UserError
from glassformer.generate import generate_tokens
from glassformer.generate.context import Context
from glassformer.generate.options import GenerationOptions
from glassformer.generate.processors import (
    apply_temperature,
    min_p_filter,
    repetition_penalty,
    top_k_filter,
    top_p_filter,
)
from glassformer.generate.search import beam_search, contrastive_search
from glassformer.inspect import run_with_cache
from glassformer.tokenizers import CharTokenizer

INF = float("inf")


# ---- processors on distributions computed by hand ------------------------------------------


def _logits(*probs: float) -> torch.Tensor:
    return torch.tensor([probs]).log()


def test_temperature_divides_logits():
    out = torch.softmax(apply_temperature(_logits(0.2, 0.8), 0.5), -1)
    # p^(1/T) renormalised: 0.04 / (0.04 + 0.64), 0.64 / 0.68
    torch.testing.assert_close(out, torch.tensor([[0.04 / 0.68, 0.64 / 0.68]]))


def test_top_k_keeps_the_k_largest():
    out = top_k_filter(torch.tensor([[1.0, 4.0, 3.0, 2.0]]), 2)
    assert out.tolist() == [[-INF, 4.0, 3.0, -INF]]
    assert top_k_filter(torch.tensor([[1.0, 2.0]]), 0).tolist() == [[1.0, 2.0]]  # 0: no limit


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = (0.5, 0.3, 0.15, 0.05)
    kept = lambda p: torch.isfinite(top_p_filter(_logits(*probs), p))[0].tolist()  # noqa: E731
    assert kept(0.5) == [True, False, False, False]  # 0.5 alone reaches 0.5
    assert kept(0.7) == [True, True, False, False]  # 0.5 < 0.7 <= 0.8
    assert kept(0.95) == [True, True, True, False]  # 0.8 < 0.95 <= 0.95
    assert kept(1.0) == [True, True, True, True]
    renorm = torch.softmax(top_p_filter(_logits(*probs), 0.7), -1)
    torch.testing.assert_close(renorm, torch.tensor([[0.625, 0.375, 0.0, 0.0]]))


def test_min_p_keeps_tokens_above_a_fraction_of_the_top():
    probs = (0.5, 0.3, 0.15, 0.05)
    kept = lambda m: torch.isfinite(min_p_filter(_logits(*probs), m))[0].tolist()  # noqa: E731
    assert kept(0.2) == [True, True, True, False]  # threshold 0.1
    assert kept(0.5) == [True, True, False, False]  # threshold 0.25
    assert kept(1.0) == [True, False, False, False]


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits():
    out = repetition_penalty(torch.tensor([[2.0, -1.0, 3.0, 0.5]]), torch.tensor([[0, 1, 1]]), 2.0)
    assert out.tolist() == [[1.0, -2.0, 3.0, 0.5]]


# ---- a small model with varied predictions --------------------------------------------------


def _model(seed=0, vocab=64, block=64, **kw) -> GPT:
    torch.manual_seed(seed)
    cfg = GPTConfig(
        vocab_size=vocab, block_size=block, n_layer=2, n_head=2, n_embd=32,
        activation="gelu_tanh", **kw,
    )  # fmt: skip
    model = GPT(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(std=0.3)
    return model


@pytest.fixture(scope="module")
def model() -> GPT:
    return _model()


@pytest.fixture(scope="module")
def hf_model(model):
    transformers = pytest.importorskip("transformers")
    from glassformer.interop.export import hf_model as to_hf_pair

    config, tensors = to_hf_pair(model)  # the same random weights in GPT-2's layout
    config = {k: v for k, v in config.items() if k not in ("architectures", "model_type")}
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(**config)).eval()
    hf.load_state_dict(tensors, strict=False)  # lm_head is tied to wte
    return hf


def _generate(model, idx, max_new_tokens, **options):
    return generate_tokens(model, idx, GenerationOptions(max_new_tokens, **options))


def _prompt(seed, n=6, vocab=64):
    return torch.randint(0, vocab, (1, n), generator=torch.Generator().manual_seed(seed))


def test_greedy_equals_hugging_face(model, hf_model):
    for seed in range(5):
        idx = _prompt(seed, n=3 + seed)
        eos = hf_model.generation_config.eos_token_id  # 63: the exported config's last id
        ours = _generate(model, idx, 24, stop_ids=(eos,))
        theirs = hf_model.generate(idx, max_new_tokens=24, do_sample=False, pad_token_id=eos)
        assert torch.equal(ours[:, : theirs.size(1)], theirs), seed
        assert (ours[:, theirs.size(1) :] == eos).all()  # HF stops early, we fill with eos
        plain = _generate(model, idx, 24)  # without a stop id: the same up to the eos
        assert torch.equal(plain[:, : theirs.size(1)], theirs)


@pytest.mark.parametrize("early_stopping", [False, True, "never"])
@pytest.mark.parametrize("length_penalty", [1.0, -1.0, 2.0])
def test_beam_search_equals_hugging_face(model, hf_model, early_stopping, length_penalty):
    for seed in range(3):
        idx = _prompt(seed)
        # a stop id that the search actually meets: a token from the middle of its best beam
        opts = GenerationOptions(12, "beam", num_beams=3)
        free = beam_search(Context(model, idx), opts)[0].ids[6:]
        eos = int(free[len(free) // 2])
        opts = GenerationOptions(
            12, "beam", num_beams=3, length_penalty=length_penalty,
            early_stopping=early_stopping, stop_ids=(eos,), num_return_sequences=3,
        )  # fmt: skip
        ours = beam_search(Context(model, idx), opts)
        theirs = hf_model.generate(
            idx, max_new_tokens=12, num_beams=3, do_sample=False, eos_token_id=eos,
            pad_token_id=eos, length_penalty=length_penalty, early_stopping=early_stopping,
            num_return_sequences=3, output_scores=True, return_dict_in_generate=True,
        )  # fmt: skip
        for i, hyp in enumerate(ours):
            row = theirs.sequences[i]
            assert torch.equal(hyp.ids, row[: len(hyp.ids)]), (seed, i)
            assert (row[len(hyp.ids) :] == eos).all()
            assert hyp.score == pytest.approx(float(theirs.sequences_scores[i]), abs=1e-4)
        tensor_out = _generate(model, idx, 12, **{k: getattr(opts, k) for k in (
            "strategy", "num_beams", "length_penalty", "early_stopping", "stop_ids",
            "num_return_sequences")})  # fmt: skip
        assert torch.equal(tensor_out, theirs.sequences)


def test_beam_scores_are_recomputed_sums_of_log_probs(model):
    idx = _prompt(11)
    for lp in (1.0, 0.0, 2.0):
        opts = GenerationOptions(10, "beam", num_beams=4, num_return_sequences=4, length_penalty=lp)
        hyps = beam_search(Context(model, idx), opts)
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        for h in hyps:
            logits, _ = model(h.ids[None, :-1])  # no cache: the plain forward
            logp = F.log_softmax(logits[0, idx.size(1) - 1 :], -1)  # (new, V)
            total = logp.gather(-1, h.ids[idx.size(1) :, None]).sum().item()
            assert h.logprob == pytest.approx(total, abs=1e-4)
            assert h.score == pytest.approx(total / h.length**lp, abs=1e-4)


def test_beam_width_one_equals_greedy(model):
    for seed in range(4):
        idx = _prompt(seed)
        beam = _generate(model, idx, 20, strategy="beam", num_beams=1)
        assert torch.equal(beam, _generate(model, idx, 20))


def test_beam_without_cache_equals_with_cache(model):
    idx = _prompt(3)
    a = _generate(model, idx, 12, strategy="beam", num_beams=3, use_cache=True)
    b = _generate(model, idx, 12, strategy="beam", num_beams=3, use_cache=False)
    assert torch.equal(a, b)


def test_contrastive_search_equals_the_formula_recomputed_without_cache(model):
    idx = _prompt(5)
    k, alpha = 4, 0.6
    opts = GenerationOptions(12, "contrastive", top_k=k, penalty_alpha=alpha)
    ours = torch.cat(list(contrastive_search(Context(model, idx), opts)), 1)[0].tolist()

    def hidden(ids):  # last layer after the final norm, no cache
        _, cache = run_with_cache(model, ids, names=["final"])
        return cache["final"][0]  # (T, C)

    seq = idx[0].tolist()
    for _ in range(12):
        logits, _ = model(torch.tensor([seq]))
        probs = torch.softmax(logits[0, -1], -1)
        top_p, top_ids = torch.topk(probs, k)
        context = F.normalize(hidden(torch.tensor([seq])), dim=-1)
        scores = []
        for p, t in zip(top_p.tolist(), top_ids.tolist(), strict=True):
            h = F.normalize(hidden(torch.tensor([seq + [t]]))[-1], dim=-1)
            scores.append((1 - alpha) * p - alpha * (context @ h).max().item())
        seq.append(top_ids[max(range(k), key=scores.__getitem__)].item())
    assert ours == seq[idx.size(1) :]


def test_contrastive_with_alpha_zero_is_greedy(model):
    idx = _prompt(6)
    a = _generate(model, idx, 15, strategy="contrastive", penalty_alpha=0.0, top_k=5)
    assert torch.equal(a, _generate(model, idx, 15))


def test_sampling_same_seed_same_tokens_and_temperature_zero_is_greedy(model):
    idx = _prompt(7)
    kw = dict(strategy="sample", temperature=1.3, top_k=20, top_p=0.9, min_p=0.01)
    a = _generate(model, idx, 30, seed=123, **kw)
    assert torch.equal(a, _generate(model, idx, 30, seed=123, **kw))
    assert not torch.equal(a, _generate(model, idx, 30, seed=124, **kw))
    cold = _generate(model, idx, 30, strategy="sample", temperature=0.0, seed=1)
    assert torch.equal(cold, _generate(model, idx, 30))


def test_sampling_follows_the_processed_distribution(model):
    """top_k=1 sampling is greedy; a sampled token is always inside the top-p nucleus."""
    idx = _prompt(8)
    assert torch.equal(
        _generate(model, idx, 10, strategy="sample", top_k=1, seed=0), _generate(model, idx, 10)
    )
    logits, _ = model(idx)
    nucleus = torch.isfinite(top_p_filter(logits[:, -1], 0.5))[0]
    for seed in range(20):
        t = _generate(model, idx, 1, strategy="sample", top_p=0.5, seed=seed)[0, -1]
        assert nucleus[t]


def test_stop_ids_end_rows_and_fill_them(model):
    idx = torch.cat((_prompt(1), _prompt(2)))
    free = _generate(model, idx, 10)
    stop = int(free[0, 6 + 3])  # the 4th new token of row 0
    out = _generate(model, idx, 10, stop_ids=(stop,))
    row0 = out[0, 6:].tolist()
    first = row0.index(stop)
    assert first <= 3 and all(t == stop for t in row0[first:])


def test_text_api_same_seed_same_text_and_batch_equals_alone(model):
    tok = CharTokenizer("".join(chr(ord("A") + i) for i in range(64)))
    kw = dict(strategy="sample", temperature=0.9, seed=5)
    a = glassformer.generate(model, tok, "ABCD", max_new_tokens=25, **kw)
    assert a == glassformer.generate(model, tok, "ABCD", max_new_tokens=25, **kw)
    assert len(a) == 25 and set(a) <= set(tok.chars)
    prompts = ["ABCD", "Q", "HELLOWORLD"]
    batch = glassformer.generate(model, tok, prompts, max_new_tokens=20)
    assert batch == [glassformer.generate(model, tok, p, max_new_tokens=20) for p in prompts]
    assert "".join(glassformer.stream(model, tok, "ABCD", 25, **kw)) == a
    with_cache = glassformer.generate(model, tok, "XYZ", max_new_tokens=20)
    assert with_cache == glassformer.generate(model, tok, "XYZ", max_new_tokens=20, use_cache=False)


@pytest.mark.parametrize(
    "options, words",
    [
        (dict(strategy="sample", temperature=-1.0), "temperature"),
        (dict(strategy="sample", temperature=math.nan), "temperature"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(top_k=-1), "top_k"),
        (dict(strategy="beam", num_beams=0), "num_beams"),
        (dict(max_new_tokens=0), "max_new_tokens"),
        (dict(max_new_tokens=-3), "max_new_tokens"),
        (dict(strategy="nucleus"), "strategy"),
        (dict(min_p=2.0), "min_p"),
        (dict(repetition_penalty=0.0), "repetition_penalty"),
        (dict(penalty_alpha=1.5), "penalty_alpha"),
    ],
)
def test_bad_options_are_one_clear_user_error(model, options, words):
    tok = CharTokenizer("".join(chr(ord("A") + i) for i in range(64)))
    options = {"max_new_tokens": 5, **options}
    with pytest.raises(UserError, match=words):
        glassformer.generate(model, tok, "AB", **options)
    with pytest.raises(UserError, match=words):
        generate_tokens(model, torch.tensor([[1, 2]]), GenerationOptions(**options))


def test_empty_prompt_without_start_token_is_a_user_error(model):
    tok = CharTokenizer("".join(chr(ord("A") + i) for i in range(64)))
    with pytest.raises(UserError, match="prompt is empty"):
        glassformer.generate(model, tok, "", max_new_tokens=5)
    with pytest.raises(UserError, match="LongTensor"):
        _generate(model, torch.zeros(1, 0, dtype=torch.long), 5)
