"""BPE at speed, proven exact: reference == fast path == tiktoken, special tokens, scaling."""

import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glassformer.errors import UserError
from glassformer.tokenizers import BPETokenizer, DisallowedSpecialTokenError
from glassformer.tokenizers.bpe_encode import bpe_merge
from glassformer.tokenizers.bpe_train import train_bpe

MULTILINGUAL = (
    "The quick brown fox — naïve café, Ångström! 中文分词测试，你好世界。日本語のテキスト。"
    "한국어 텍스트. Привет, мир! Ελληνικά. مرحبا بالعالم. 🤖🎉👩‍👩‍👧 aaaa aaaaaaaa 1234567\n\t"
)
ALPHABET = (
    list("abcdeé a\n\t  .,!?'’0123") + list("中文日本語한국어Привет🤖👩‍\u0301\x00") + [" ", "  "]
)


def fuzz_texts(n: int, seed: int = 0) -> list[str]:
    """Random texts over a mixed alphabet (runs, contractions, whitespace, multi-byte)."""
    rng = random.Random(seed)
    pieces = ALPHABET + ["'s", "'ll", " the", "aaaa", "\n\n", "   ", "ab" * 5]
    return ["".join(rng.choices(pieces, k=rng.randint(0, 60))) for _ in range(n)]


@pytest.fixture(scope="module")
def shakespeare_text(shakespeare: Path) -> str:
    return shakespeare.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def shakespeare_bpe(shakespeare_text: str) -> BPETokenizer:
    return BPETokenizer.train(shakespeare_text, 4096)


@pytest.fixture(scope="module")
def small_bpe() -> BPETokenizer:
    extra = {"<|pad|>": 1000, "<|im_start|>": 1001, "<|im_end|>": 1002}
    tok = BPETokenizer.train(MULTILINGUAL * 3 + " ".join(fuzz_texts(200, seed=1)), 600)
    return BPETokenizer(tok.ranks, tok.special.tokens | extra, tok.pattern)


def test_reference_equals_fast_equals_tiktoken_on_shakespeare(shakespeare_text, shakespeare_bpe):
    tok = shakespeare_bpe
    reference = tok.encode(shakespeare_text, reference=True)
    assert tok.encode(shakespeare_text) == reference
    assert tok.to_tiktoken().encode_ordinary(shakespeare_text) == reference
    assert tok.decode(reference) == shakespeare_text
    assert len(reference) < len(shakespeare_text) / 3  # 4096 tokens compress Shakespeare > 3x


@pytest.mark.parametrize("name", ["small_bpe", "shakespeare_bpe"])
def test_reference_equals_fast_on_fuzzed_text(name, request):
    tok: BPETokenizer = request.getfixturevalue(name)
    enc = tok.to_tiktoken()
    for text in fuzz_texts(500):
        reference = tok.encode_ordinary(text, reference=True)
        assert enc.encode_ordinary(text) == reference, text
        assert tok.encode_ordinary(text) == reference
        assert tok.decode(reference) == text


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_reference_equals_tiktoken_on_arbitrary_text(small_bpe, text):
    assert small_bpe.encode_ordinary(
        text, reference=True
    ) == small_bpe.to_tiktoken().encode_ordinary(text)


def test_bpe_merge_uses_lowest_rank_then_leftmost():
    ranks = {b"a": 0, b"b": 1, b"c": 2, b"ab": 3, b"abc": 4, b"bc": 5}
    assert bpe_merge(b"abcab", ranks) == [b"abc", b"ab"]
    assert bpe_merge(b"bcbc", ranks) == [b"bc", b"bc"]
    assert bpe_merge(b"abc", ranks, max_rank=4) == [b"ab", b"c"]
    assert bpe_merge(b"", ranks) == [] and bpe_merge(b"a", ranks) == [b"a"]


def test_tie_break_is_smallest_pair():
    # (98, 99) "bc" and (120, 121) "xy" both occur twice: the smaller pair (98, 99) wins.
    assert train_bpe("xy\nbc\nxy\nbc", 257)[256:] == [b"bc"]
    assert train_bpe("bc\nxy\nbc\nxy", 257)[256:] == [b"bc"]


def test_training_is_deterministic(small_bpe):
    again = BPETokenizer.train(MULTILINGUAL * 3 + " ".join(fuzz_texts(200, seed=1)), 600)
    assert again.ranks == small_bpe.ranks


def test_encode_batch_equals_encode(small_bpe):
    texts = fuzz_texts(100, seed=3) + ["x<|im_start|>y", "lone \ud800 surrogate"]
    expected = [small_bpe.encode(t, allowed_special="all") for t in texts]
    assert small_bpe.encode_batch(texts, allowed_special="all") == expected
    with pytest.raises(DisallowedSpecialTokenError):
        small_bpe.encode_batch(texts)


@pytest.mark.parametrize("reference", [False, True])
def test_special_tokens_cannot_be_injected(small_bpe, reference):
    tok = small_bpe
    assert len(tok.special) == 4
    for name, special_id in tok.special.tokens.items():
        text = f"x{name}y"
        with pytest.raises(DisallowedSpecialTokenError, match="allowed_special"):
            tok.encode(text, reference=reference)
        with pytest.raises(ValueError):  # tiktoken raises ValueError here; so do we
            tok.encode(text, reference=reference)
        allowed = tok.encode(text, allowed_special={name}, reference=reference)
        assert allowed == [*tok.encode("x"), special_id, *tok.encode("y")]
        assert tok.encode(text, allowed_special="all", reference=reference) == allowed
        plain = tok.encode_ordinary(text, reference=reference)
        assert special_id not in plain and tok.decode(plain) == text
        assert tok.encode(text, disallowed_special=(), reference=reference) == plain
        assert tok.encode(text, allowed_special="none", reference=reference) == plain
        with pytest.raises(DisallowedSpecialTokenError):
            tok.encode(text, allowed_special="none_raise", reference=reference)
    # Only the disallowed ones are checked; an allowed one passes, a non-listed one is plain.
    both = "<|pad|><|im_end|>"
    assert tok.encode(both, allowed_special={"<|pad|>"}, disallowed_special=())[0] == 1000
    with pytest.raises(UserError, match="does not have"):
        tok.encode("x", allowed_special={"<|nope|>"})


def test_special_tokens_checked_under_python_O(tmp_path: Path, small_bpe):
    small_bpe.save(tmp_path / "tok.model")
    script = textwrap.dedent(
        f"""
        import sys
        from glassformer.tokenizers import BPETokenizer, DisallowedSpecialTokenError
        if __debug__:
            sys.exit("not running under -O")
        tok = BPETokenizer.load({str(tmp_path / "tok.model")!r})
        for name in tok.special.tokens:
            for reference in (False, True):
                try:
                    tok.encode(f"x{{name}}y", reference=reference)
                except DisallowedSpecialTokenError:
                    continue
                sys.exit(f"{{name}} was not refused")
        print("ok", len(tok.special.tokens))
        """
    )
    out = subprocess.run(
        [sys.executable, "-O", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok 4"


def test_encode_bytes_round_trips_arbitrary_bytes(small_bpe):
    for data in [bytes(range(256)), b"\xff\xfe h\xc3\xa9llo \xed\xa0\x80", b"\xe4\xb8", b""]:
        assert small_bpe.decode_bytes(small_bpe.encode_bytes(data)) == data
    assert small_bpe.encode_bytes("naïve café".encode()) == small_bpe.encode("naïve café")


def best_seconds(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("reference", [True, False])
def test_repeated_character_scales_linearly(reference):
    # "a" runs are merged here ("aa", "aaaa", ...), so every length exercises real merging.
    tok = BPETokenizer.train("aaaa aaaaaaaa aaaaaaaaaaaaaaaa a aa " * 10 + MULTILINGUAL, 300)
    assert len(tok.encode("a" * 64)) < 16
    sizes = (20_000, 200_000)
    per_mb = [
        best_seconds(lambda n=n: tok.encode("a" * n, reference=reference)) / n * 1e6 for n in sizes
    ]
    # Linear: s/MB stays flat (10x the input, ~10x the time); quadratic would make s/MB 10x.
    # The heap adds a log factor and the machine is shared, so the bound is generous.
    assert per_mb[1] < 4 * per_mb[0] + 0.01, per_mb
