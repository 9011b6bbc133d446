"""BPE vocabularies in and out: GPT-2 files, tiktoken files, Hugging Face tokenizer.json."""

import base64
import json
import random
from pathlib import Path

import pytest
import tiktoken.load
from tokenizers import ByteLevelBPETokenizer, Tokenizer

from glassformer.tokenizers import (
    BPETokenizer,
    TokenizerFormatError,
    load_gpt2_files,
    load_tiktoken_file,
    save_hf_tokenizer_json,
    save_tiktoken_file,
)
from glassformer.tokenizers.formats import bytes_to_unicode, hf_merges

MIXED = "Hello, wörld! naïve 中文 🤖 it's  two  spaces\n\ttab 1234 <|endoftext|> end\x00"


def fuzz_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    pieces = list("abcdeé .,!?'\n\t0123中文🤖") + ["'s", " the", "   ", "\n\n", "ing", " and"]
    return ["".join(rng.choices(pieces, k=rng.randint(0, 50))) for _ in range(n)]


@pytest.fixture(scope="module")
def corpus(shakespeare: Path) -> str:
    return shakespeare.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def bpe(corpus: str) -> BPETokenizer:
    return BPETokenizer.train(corpus + MIXED, 1500)


def test_bytes_to_unicode_is_gpt2s_table():
    table = bytes_to_unicode()
    assert len(set(table.values())) == 256
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ" and table[ord("a")] == "a"


def test_hf_merges_lists_every_split_by_rank():
    ranks = {b"a": 0, b"b": 1, b"c": 2, b"ab": 3, b"bc": 4, b"abc": 5}
    assert hf_merges(ranks) == [(b"a", b"b"), (b"b", b"c"), (b"a", b"bc"), (b"ab", b"c")]


def test_hf_tokenizer_json_encodes_identically(tmp_path: Path, corpus: str, bpe: BPETokenizer):
    save_hf_tokenizer_json(bpe, tmp_path / "tokenizer.json")
    hf = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert hf.encode(corpus).ids == bpe.encode(corpus)
    for text in fuzz_texts(300) + [MIXED]:
        ids = bpe.encode(text, allowed_special="all")
        assert hf.encode(text).ids == ids, text
        assert hf.decode(ids, skip_special_tokens=False) == text


def test_gpt2_files_from_hugging_face_encode_identically(tmp_path: Path, corpus: str):
    hf = ByteLevelBPETokenizer()
    hf.train_from_iterator(
        [corpus], vocab_size=1200, special_tokens=["<|endoftext|>"], show_progress=False
    )
    hf.save_model(str(tmp_path))
    ours = load_gpt2_files(tmp_path / "vocab.json", tmp_path / "merges.txt")
    assert ours.special.tokens == {"<|endoftext|>": 0}  # HF puts special tokens first
    assert ours.vocab_size == 1200 and ours.eot_id == 0
    assert ours.encode(corpus) == hf.encode(corpus).ids
    for text in fuzz_texts(300):
        assert ours.encode(text) == hf.encode(text).ids, text
        assert ours.decode(ours.encode(text)) == text
    ours.save(tmp_path / "tokenizer.model")  # ids with gaps survive our own format
    assert BPETokenizer.load(tmp_path / "tokenizer.model").encode(corpus) == ours.encode(corpus)


def test_gpt2_files_malformed(tmp_path: Path):
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 0, "b": 1}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\n")
    with pytest.raises(TokenizerFormatError, match="line 2"):
        load_gpt2_files(tmp_path / "vocab.json", tmp_path / "merges.txt")
    (tmp_path / "vocab.json").write_text("{not json")
    with pytest.raises(TokenizerFormatError, match="not valid JSON"):
        load_gpt2_files(tmp_path / "vocab.json", tmp_path / "merges.txt")


def test_tiktoken_file_round_trip(tmp_path: Path, corpus: str, bpe: BPETokenizer):
    save_tiktoken_file(bpe, tmp_path / "ours.tiktoken")
    assert tiktoken.load.load_tiktoken_bpe(str(tmp_path / "ours.tiktoken")) == bpe.ranks
    loaded = load_tiktoken_file(tmp_path / "ours.tiktoken", special_tokens=bpe.special.tokens)
    assert loaded.ranks == bpe.ranks and loaded.encode(corpus) == bpe.encode(corpus)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["not-base64! 0"], "not '<base64 token> <rank>'"),
        ([f"{base64.b64encode(b'a').decode()} x"], "not '<base64 token> <rank>'"),
        (
            [f"{base64.b64encode(bytes([b])).decode()} {b}" for b in range(256)] + ["YQ== 256"],
            "repeats",
        ),
        (
            [f"{base64.b64encode(bytes([b])).decode()} {b}" for b in range(255)],
            "lacks the single byte",
        ),
        (
            [f"{base64.b64encode(bytes([b])).decode()} {min(b, 9)}" for b in range(256)],
            "share one rank",
        ),
    ],
)
def test_tiktoken_file_malformed(tmp_path: Path, lines: list[str], message: str):
    (tmp_path / "bad.tiktoken").write_text("\n".join(lines) + "\n")
    with pytest.raises(TokenizerFormatError, match=message):
        load_tiktoken_file(tmp_path / "bad.tiktoken")
