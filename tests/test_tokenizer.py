"""Character and BPE tokenizers: training, round trips, file format (issue 2)."""

from collections import Counter
from pathlib import Path

import pytest

from glassformer.errors import UserError
from glassformer.tokenizers import (
    BPETokenizer,
    CharTokenizer,
    TokenizerFormatError,
    load_tokenizer,
)
from glassformer.tokenizers.bpe_train import get_stats, merge, train_bpe
from glassformer.tokenizers.pretokenize import pretokenize

TRICKY = [
    "",
    "hello world",
    "Ths sentance has typos, and  double  spaces.",
    "café naïve Ångström déjà vu",
    "emoji 🤖👩‍👩‍👧 and flags 🇫🇷",
    "中文 日本語 한국어",
    "line one\nline two\r\n\n\ttabbed",
    "NUL \x00 inside",
    "combining e\u0301 and zero-width\u200bjoiner",
    "   leading and trailing   ",
    "<|endoftext|>-looking text is plain text for encode_ordinary",
]

CORPUS = "the cat sat on the mat. the cat ate the rat! 2024 was a year, and 1999 too.\n" * 20


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    return BPETokenizer.train(CORPUS, vocab_size=280)


def test_char_train_encode_decode():
    tok = CharTokenizer.train("hello")
    assert tok.chars == "ehlo" and tok.vocab_size == 4 and tok.eot_id is None
    assert tok.encode("hell") == [1, 0, 2, 2]
    assert tok.decode([3, 2]) == "ol"


def test_char_unknown_character_names_it():
    tok = CharTokenizer.train("abc")
    with pytest.raises(UserError, match=r"'z'.*only knows the characters of its training corpus"):
        tok.encode("abz")


def test_char_save_load(tmp_path: Path):
    tok = CharTokenizer.train('line\nwith "quotes" and \x00 NUL')
    tok.save(tmp_path / "tokenizer.model")
    assert (tmp_path / "tokenizer.vocab").read_text().count("\n") == tok.vocab_size
    loaded = load_tokenizer(tmp_path)  # a checkpoint folder works too
    assert isinstance(loaded, CharTokenizer) and loaded.chars == tok.chars


def test_get_stats_and_merge_docstring_examples():
    assert get_stats([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert merge([1, 2, 3, 1, 2], (1, 2), 4) == [4, 3, 4]
    assert merge([5, 5, 5], (5, 5), 6) == [6, 5]
    assert train_bpe("aaabdaaabac", 259)[256:] == [b"aa", b"ab", b"aaab"]


def naive_train(text: str, num_tokens: int) -> list[bytes]:
    """minbpe's loop (recount all pairs after each merge) with our tie-break, as a reference."""
    chunks = Counter(pretokenize(text))
    words = {chunk: list(chunk.encode()) for chunk in chunks}
    vocab = [bytes([i]) for i in range(256)]
    while len(vocab) < num_tokens:
        stats: dict[tuple[int, int], int] = {}
        for chunk, ids in words.items():
            get_stats(ids, stats, chunks[chunk])
        stats = {p: c for p, c in stats.items() if c > 0}
        if not stats:
            break
        pair = min(stats, key=lambda p: (-stats[p], p))
        token = vocab[pair[0]] + vocab[pair[1]]
        if token in vocab:
            new_id = vocab.index(token)
        else:
            new_id = len(vocab)
            vocab.append(token)
        words = {chunk: merge(ids, pair, new_id) for chunk, ids in words.items()}
    return vocab


@pytest.mark.parametrize(
    "text",
    [CORPUS, "aaaaaaaaaaaaaaaa bbbbbb aaaa ab ab ab", "abcabcab cab bca abc " * 7 + "zzzzzzzzz"],
)
def test_fast_trainer_matches_naive_trainer(text: str):
    assert train_bpe(text, 330) == naive_train(text, 330)


def test_train_vocab_size_counts_eot(bpe: BPETokenizer):
    assert bpe.vocab_size == 280 and bpe.eot_id == 279
    assert bpe.decode([bpe.eot_id]) == "<|endoftext|>"


def test_train_rejects_bad_arguments():
    with pytest.raises(UserError, match="at least 257"):
        BPETokenizer.train("abc", 100)
    with pytest.raises(UserError, match="empty"):
        BPETokenizer.train("", 300)


@pytest.mark.parametrize("text", TRICKY)
@pytest.mark.parametrize("reference", [False, True])
def test_bpe_round_trip(bpe: BPETokenizer, text: str, reference: bool):
    ids = bpe.encode_ordinary(text, reference=reference)
    assert bpe.decode(ids) == text
    assert bpe.decode_bytes(ids) == text.encode("utf-8")


def test_bpe_round_trip_lone_surrogate(bpe: BPETokenizer):
    text = "a\ud800b\udfff"
    assert bpe.decode(bpe.encode(text)) == text


def test_bpe_learned_tokens_compress(bpe: BPETokenizer):
    ids = bpe.encode("the cat sat on the mat.")
    assert len(ids) < len("the cat sat on the mat.") / 2


def test_decode_invalid_utf8_replaces():
    tok = BPETokenizer.train("abc", 257)
    assert tok.decode([0xE4, 0xB8]) == "\ufffd"  # a truncated 3-byte sequence
    assert tok.decode([0xFF, ord("a")]) == "\ufffda"
    with pytest.raises(UserError, match="outside this tokenizer's vocabulary"):
        tok.decode([5000])


def test_bpe_save_load(tmp_path: Path, bpe: BPETokenizer):
    bpe.save(tmp_path / "tokenizer.model")
    loaded = load_tokenizer(tmp_path / "tokenizer.model")
    assert isinstance(loaded, BPETokenizer)
    assert loaded.ranks == bpe.ranks and loaded.special.tokens == bpe.special.tokens
    assert loaded.pattern == bpe.pattern
    assert loaded.encode(CORPUS) == bpe.encode(CORPUS)
    dump = (tmp_path / "tokenizer.vocab").read_text()
    assert dump.splitlines()[256] == "[a][t] -> [at] 256"
    assert "<|endoftext|>" in dump
    assert not list(tmp_path.glob("*.tmp")), "atomic write left a temporary file behind"


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def good_lines(tmp_path: Path) -> list[str]:
    BPETokenizer.train("abcabc", 258).save(tmp_path / "good.model")
    return (tmp_path / "good.model").read_text().splitlines()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda lines: lines[:100], "truncated or damaged"),
        (lambda lines: [lines[0].replace("v1", "v7")] + lines[1:], "format v7"),
        (lambda lines: lines[:3] + [lines[3]] + lines[3:], "duplicate or out-of-order"),
        (lambda lines: ["hello world"] + lines[1:], "not a glassformer tokenizer file"),
        (lambda lines: lines[:-2] + ["special 1", '5 "<|endoftext|>"'], "already uses"),
        (lambda lines: [lines[0].replace("bpe", "char")] + lines[1:], "truncated or damaged"),
        (lambda lines: lines + ["junk"], "truncated or damaged"),
        (lambda lines: [lines[0], 'pattern "(unclosed"'] + lines[2:], "not a valid regular"),
    ],
)
def test_malformed_files_give_one_clear_error(tmp_path: Path, good_lines, damage, message):
    path = write_lines(tmp_path / "bad.model", damage(good_lines))
    with pytest.raises(TokenizerFormatError, match=message) as info:
        load_tokenizer(path)
    assert str(info.value).count(". ") <= 1 and str(info.value).endswith(".")


def test_non_utf8_and_missing_files(tmp_path: Path):
    bad = tmp_path / "binary.model"
    bad.write_bytes(b"glassformer-tokenizer bpe v1\n\xff\xfe\x00")
    with pytest.raises(TokenizerFormatError, match="not UTF-8"):
        load_tokenizer(bad)
    with pytest.raises(UserError, match="no tokenizer file"):
        load_tokenizer(tmp_path / "missing.model")
    with pytest.raises(UserError, match="no tokenizer file"):
        load_tokenizer(tmp_path)  # a folder without tokenizer.model
