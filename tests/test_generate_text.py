"""Text out: streaming never splits a character, stop strings, the CLI verbs (generate, chat)."""

import random
import subprocess
import sys

import pytest
import torch

import glassformer
from glassformer import GPT, GPTConfig
from glassformer.checkpoint import save
from glassformer.cli import main
from glassformer.generate import GenerationOptions, generate_tokens
from glassformer.generate.streaming import TextStream, complete_prefix
from glassformer.tokenizers import BPETokenizer, CharTokenizer
from glassformer.train.config import RunConfig

TEXT = "héllo wörld, naïve café ☕ 日本語のテキスト 🙂 Ünïcödé ñ " * 8


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    return BPETokenizer.train(TEXT, vocab_size=270)  # few merges: characters split into bytes


def test_bpe_tokens_do_split_characters(bpe):
    """The premise: with this vocabulary some tokens hold part of a character."""
    ids = bpe.encode(TEXT)
    assert any(complete_prefix(bpe.decode_bytes([i])) < len(bpe.decode_bytes([i])) for i in ids)


def test_stream_pieces_are_whole_characters_and_join_to_decode(bpe):
    ids = bpe.encode(TEXT)
    stream = TextStream.for_tokenizer(bpe)
    pieces = [stream.push([i]) for i in ids] + [stream.finish()]
    assert "".join(pieces) == TEXT == bpe.decode(ids)
    assert all("\ufffd" not in p for p in pieces)  # never half a character
    assert sum(1 for p in pieces if p) < len(ids)  # some tokens had to wait for the next


def test_stream_equals_decode_on_any_token_sequence(bpe):
    """Random ids (invalid UTF-8 included): joined pieces == decode, in any chunking."""
    rng = random.Random(0)
    for _ in range(300):
        ids = [rng.randrange(bpe.vocab_size) for _ in range(rng.randrange(1, 12))]
        stream = TextStream.for_tokenizer(bpe)
        out, i = [], 0
        while i < len(ids):
            n = rng.randrange(1, 4)
            out.append(stream.push(ids[i : i + n]))
            i += n
        out.append(stream.finish())
        assert "".join(out) == bpe.decode(ids), ids


def test_stop_strings_cut_before_and_hold_back_partial_matches():
    stream = TextStream(
        decode_bytes=lambda ids: "".join(chr(i) for i in ids).encode(), stop=["END", "\n\n"]
    )
    assert stream.push([ord("a"), ord("b"), ord("E")]) == "ab"  # "E" may start "END"
    assert stream.push([ord("X")]) == "EX"  # it did not
    assert stream.push([ord("E"), ord("N")]) == ""
    assert stream.push([ord("D"), ord("z")]) == ""  # stop: nothing after it
    assert stream.stopped and stream.finish() == ""


def _bpe_model(bpe, seed=0) -> GPT:
    torch.manual_seed(seed)
    cfg = GPTConfig(vocab_size=bpe.vocab_size, block_size=48, n_layer=2, n_head=2, n_embd=32)
    return GPT(cfg).eval()


def test_stream_joins_to_generate_and_to_decoded_ids(bpe):
    model = _bpe_model(bpe)
    kw = dict(max_new_tokens=30, strategy="sample", seed=4, temperature=1.0)
    pieces = list(glassformer.stream(model, bpe, "café", **kw))
    text = glassformer.generate(model, bpe, "café", **kw)
    assert "".join(pieces) == text
    idx = torch.tensor([bpe.encode("café")])
    opts = GenerationOptions(stop_ids=(bpe.eot_id,), **kw)
    ids = generate_tokens(model, idx, opts)[0, idx.size(1) :].tolist()
    if bpe.eot_id in ids:
        ids = ids[: ids.index(bpe.eot_id)]
    assert text == bpe.decode(ids)


def test_generate_cuts_at_a_stop_string():
    tok = CharTokenizer("abc\n")
    model = GPT(GPTConfig(vocab_size=4, block_size=16, n_layer=1, n_head=1, n_embd=8)).eval()
    full = glassformer.generate(model, tok, "ab", max_new_tokens=40, strategy="sample", seed=0)
    stop = full[5:7]
    cut = glassformer.generate(
        model, tok, "ab", max_new_tokens=40, strategy="sample", seed=0, stop=[stop]
    )
    assert cut == full[: full.index(stop)]


# ---- the command line ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small char-level checkpoint written the way training writes one (random weights)."""
    tok = CharTokenizer("".join(sorted(set("abcdefghijklmnopqrstuvwxyz .,:\n"))))
    config = RunConfig()
    config.model = GPTConfig(
        vocab_size=tok.vocab_size, block_size=24, n_layer=2, n_head=2, n_embd=32
    )
    torch.manual_seed(0)
    model = GPT(config.model)
    out = tmp_path_factory.mktemp("ckpt") / "chatty"
    save(out, model, tok, meta=config.to_dict())
    return out


def test_cli_generate_stream_strategies_and_seed(checkpoint, capsys):
    base = ["generate", "--model", str(checkpoint), "--prompt", "to be", "--max-new-tokens", "12"]
    assert main([*base, "--seed", "1"]) == 0
    plain = capsys.readouterr().out
    assert main([*base, "--seed", "1", "--stream"]) == 0
    assert capsys.readouterr().out == plain and plain.startswith("to be")
    for flags in (
        ["--strategy", "greedy"],
        ["--strategy", "beam", "--num-beams", "3", "--length-penalty", "0.5"],
        ["--strategy", "contrastive", "--top-k", "3", "--penalty-alpha", "0.5"],
        ["--strategy", "sample", "--min-p", "0.05", "--repetition-penalty", "1.3"],
        ["--strategy", "greedy", "--no-cache"],
        ["--strategy", "greedy", "--decode-dtype", "bfloat16"],
        ["--strategy", "sample", "--decode-dtype", "int8", "--seed", "2"],
    ):
        assert main([*base, *flags]) == 0, flags
        assert capsys.readouterr().out.startswith("to be")


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--strategy", "beam", "--num-beams", "0"], "--num-beams"),
        (["--min-p", "3"], "--min-p"),
        (["--repetition-penalty", "0"], "--repetition-penalty"),
        (["--penalty-alpha", "2"], "--penalty-alpha"),
        (["--strategy", "beam", "--num-beams", "2", "--decode-dtype", "bfloat16"], "bfloat16"),
    ],
)
def test_cli_bad_generation_flags_exit_2(checkpoint, capsys, flags, words):
    assert main(["generate", "--model", str(checkpoint), "--stream", *flags]) == 2
    captured = capsys.readouterr()
    assert words in captured.err and "Traceback" not in captured.err
    assert captured.out == ""  # nothing half-written


def test_cli_empty_prompt_without_start_token_exits_2(checkpoint, capsys):
    assert main(["generate", "--model", str(checkpoint), "--prompt", ""]) == 2
    assert "prompt is empty" in capsys.readouterr().err


def test_chat_reads_piped_lines_keeps_context_and_notes_overflow(checkpoint):
    lines = "to be or not\nthat is the question\nwhether tis nobler\n"
    run = subprocess.run(
        [sys.executable, "-m", "glassformer", "chat", "--model", str(checkpoint),
         "--strategy", "greedy", "--max-new-tokens", "8"],
        input=lines, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    replies = run.stdout.splitlines()
    assert len(replies) == 3
    assert "longer than the model's context of 24" in run.stderr  # 3 turns > 24 tokens
    # the same replies as generating each turn from the whole conversation so far
    model, tok = glassformer.load(checkpoint)
    history = ""
    for line, reply in zip(lines.splitlines(), replies, strict=True):
        history += line + "\n"
        expect = glassformer.generate(model, tok, history, max_new_tokens=8, stop=["\n"])
        assert reply == expect
        history += expect + "\n"  # the reply's newline, or the one chat adds after a cut


def test_chat_rejects_beam(checkpoint, capsys):
    assert main(["chat", "--model", str(checkpoint), "--strategy", "beam"]) == 2
    assert "greedy or sample" in capsys.readouterr().err
