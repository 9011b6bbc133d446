"""benchmarks/bert_vs_gpt.py: its measurement code on a tiny budget gives sane values, each
model reads only what it should, and the GPT's candidate scoring is its own likelihood."""

import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from glassformer.tokenizers.symbols import SPECIALS


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bert_vs_gpt.py"
    spec = importlib.util.spec_from_file_location("bert_vs_gpt", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def models(bench):
    from glassformer.train.corpus import embedded_corpus

    return bench.train_both(embedded_corpus()[:20_000], steps=3, log=lambda msg: None)


def test_measurements_are_sane(bench, models):
    results = bench.measure(models, n_windows=40, n_rescored=4)
    fim, cont = results["fill-in-the-middle"], results["continuation"]
    same = results["fill-in-the-middle, first 4 windows"]
    assert len(fim) == 3 and len(same) == 3 and len(cont) == 3
    for r in (*fim.values(), *same.values(), *cont.values()):
        assert 0.0 <= r["accuracy"] <= 1.0 and math.isfinite(r.get("loss", 0.0))
        assert r.get("loss", 1.0) > 0
    V = models.vocab.vocab_size
    assert fim["gpt (left side only, 1 pass)"]["loss"] < 1.5 * math.log(V)  # near uniform or better
    assert "| fill-in-the-middle | encoder (both sides, 1 pass) |" in bench.markdown(results)
    gen = bench.continue_text(models, torch.tensor(models.vocab.encode("def main():")), 5)
    assert gen["prompt"] == "def main():" and len(gen["gpt"]) <= 5 and len(gen["encoder"]) <= 5


def test_each_model_reads_what_it_should(bench, models):
    gen = torch.Generator().manual_seed(1)
    x = bench.windows(models.val_ids, 3, bench.T, gen)  # (3, T)
    original = x.clone()
    pos = bench.MIDDLE
    with torch.no_grad():
        full = models.gpt(x)[0]  # causal: position pos - 1 sees only x[:, :pos]
        assert torch.allclose(bench.gpt_at(models.gpt, x, pos), full[:, pos - 1], atol=1e-5)
        right_changed = x.clone()
        right_changed[:, pos + 1 :] = x[:, pos + 1 :].flip(1)
        before = bench.encoder_at(models.encoder, x, pos)
        assert not torch.equal(before, bench.encoder_at(models.encoder, right_changed, pos))
        hidden_changed = x.clone()  # what sits at the hidden position is never read
        hidden_changed[:, pos] = (x[:, pos] + 1) % models.vocab.vocab_size
        assert torch.equal(before, bench.encoder_at(models.encoder, hidden_changed, pos))
    assert torch.equal(x, original)  # [MASK] went into a copy


def test_candidate_scoring_is_the_likelihood_of_the_window(bench, models):
    x = bench.windows(models.val_ids, 2, bench.T, torch.Generator().manual_seed(2))
    pos, n = bench.MIDDLE, len(SPECIALS)
    with torch.no_grad():
        scores = bench.gpt_rescored(models.gpt, x, pos, n)  # (2, V)
        logp = F.log_softmax(models.gpt(x[:, :-1])[0], -1)  # (2, T - 1, V)
    assert torch.isinf(scores[:, :n]).all()  # special symbols are never candidates
    for i in range(2):  # the true character's score: log p of x[pos:] given what precedes
        expected = sum(logp[i, t - 1, x[i, t]].item() for t in range(pos, bench.T))
        assert scores[i, x[i, pos]].item() == pytest.approx(expected, rel=1e-4)
