"""Adding a decoding strategy is one new file and one registry line, and nothing else.

The toy below ("always the second most likely token") is written exactly as such a file would
be; the fixture adds its line to the registry. Then it runs through every entry point without
any other change: generate_tokens, generate (a batch too), stream, a multi-turn Session, the
CLI's --strategy choices and help, and chat.
"""

import io

import pytest
import torch

import glassformer
from glassformer import GPT, GPTConfig
from glassformer.checkpoint import save
from glassformer.cli import main
from glassformer.errors import UserError
from glassformer.generate import GenerationOptions, Session, generate_tokens
from glassformer.generate.strategies import STRATEGIES
from glassformer.generate.strategy import TokenRule
from glassformer.tokenizers import CharTokenizer

# ---- the new file: generate/second_best.py ----------------------------------------------


class SecondBest(TokenRule):
    help = "always the second most likely token"

    def choose(self, logits, ids, opts, generator=None):
        return logits.topk(2, dim=-1).indices[:, 1:]  # (B, 1)


# ---- the registry line: "second": SecondBest(), in generate/strategies.py ---------------


@pytest.fixture
def second(monkeypatch):
    monkeypatch.setitem(STRATEGIES, "second", SecondBest())


CHARS = "abcdefghijklmnopqrstuvwxyz .,:\n"


@pytest.fixture(scope="module")
def tok() -> CharTokenizer:
    return CharTokenizer("".join(sorted(set(CHARS))))


@pytest.fixture(scope="module")
def model(tok) -> GPT:
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=24, n_layer=2, n_head=2, n_embd=32)
    model = GPT(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(std=0.3)  # confident, varied predictions
    return model


def _by_hand(model, ids: list[int], n: int) -> list[int]:
    """n tokens, each the second most likely after the whole text so far (no cache)."""
    ids = list(ids)
    for _ in range(n):
        logits, _ = model(torch.tensor([ids[-model.config.block_size :]]))
        ids.append(int(logits[0, -1].topk(2).indices[1]))
    return ids


def test_the_toy_strategy_runs_through_ids_text_batches_and_streams(second, model, tok):
    prompt = tok.encode("to be")
    out = generate_tokens(model, torch.tensor([prompt]), GenerationOptions(10, "second"))
    assert out[0].tolist() == _by_hand(model, prompt, 10)
    text = glassformer.generate(model, tok, "to be", max_new_tokens=10, strategy="second")
    assert text == tok.decode(_by_hand(model, prompt, 10)[len(prompt) :])
    assert "".join(glassformer.stream(model, tok, "to be", 10, strategy="second")) == text
    prompts = ["to be", "or", "not to be, that"]  # a left-padded batch, as a TokenRule
    batch = glassformer.generate(model, tok, prompts, max_new_tokens=8, strategy="second")
    assert batch == [
        glassformer.generate(model, tok, p, max_new_tokens=8, strategy="second") for p in prompts
    ]
    greedy = generate_tokens(model, torch.tensor([prompt]), GenerationOptions(10))
    assert not torch.equal(out, greedy)


def test_the_toy_strategy_in_a_session_keeps_its_cache_across_turns(second, model, tok):
    session = Session(model, tok, strategy="second", max_new_tokens=6)
    session.feed("to be")
    first = "".join(session.stream())
    row = session.seq.rows[0]
    session.feed(" or not")
    fed = row.fed
    again = "".join(session.stream())
    assert session.seq.rows[0] is row  # the same row of the engine (and KV cache)
    assert fed == len(tok.encode("to be")) + 5  # kept: only the new tokens are fed next
    assert session.finish_reason == "length"
    assert first + again == tok.decode(session.ids[5:11] + session.ids[18:])
    # each turn equals the strategy run by hand over the whole conversation so far
    history = tok.encode("to be") + session.ids[5:11] + tok.encode(" or not")
    assert session.ids == _by_hand(model, history, 6)


def test_options_name_the_registered_strategies(second):
    with pytest.raises(UserError, match="greedy, sample, beam, contrastive, second"):
        GenerationOptions(strategy="third")
    GenerationOptions(strategy="second", decode_dtype="bfloat16")  # a TokenRule: allowed
    with pytest.raises(UserError, match=r"num_return_sequences .*\(beam\), not 'second'"):
        GenerationOptions(strategy="second", num_return_sequences=2)


@pytest.fixture(scope="module")
def checkpoint(model, tok, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "toy"
    save(out, model, tok)
    return out


def test_the_cli_offers_the_toy_strategy_in_generate_and_chat(
    second, model, tok, checkpoint, capsys, monkeypatch
):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # unwrapped
    assert "second: always the second most likely token" in help_text
    flags = ["--model", str(checkpoint), "--strategy", "second", "--max-new-tokens", "7"]
    assert main(["generate", "--prompt", "to be", *flags]) == 0
    expect = glassformer.generate(model, tok, "to be", max_new_tokens=7, strategy="second")
    assert capsys.readouterr().out == "to be" + expect + "\n"
    monkeypatch.setattr("sys.stdin", io.StringIO("to be\nor not\n"))
    assert main(["chat", *flags]) == 0
    replies = capsys.readouterr().out.splitlines()
    assert replies[0] == glassformer.generate(
        model, tok, "to be\n", max_new_tokens=7, strategy="second", stop=["\n"]
    )
    assert len(replies) == 2
