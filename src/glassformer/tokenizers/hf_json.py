"""Our tokenizers as a Hugging Face `tokenizer.json`, and such a file read back.

    CharTokenizer    -> a BPE model with one token per character and no merges, no
                        pre-tokenizer, the Fuse decoder (ids = our ids: the sorted alphabet)
    BPETokenizer     -> byte-level BPE (formats.hf_tokenizer_json), specials as added tokens
    PretrainedBPE    -> the same, from the model's own ranks, pattern and specials

Reading (`load_tokenizer_json`) takes either form: the char form back to a CharTokenizer, any
byte-level BPE (ours, GPT-2's, Llama's, as transformers 5 writes them without vocab.json and
merges.txt) to a PretrainedBPE.

    >>> from glassformer.tokenizers.char import CharTokenizer
    >>> data = tokenizer_json(CharTokenizer("ab\\n"))
    >>> data["model"]["vocab"], data["decoder"]
    ({'\\n': 0, 'a': 1, 'b': 2}, {'type': 'Fuse'})
"""

import json
import os
from pathlib import Path

from glassformer.tokenizers.bpe import BPETokenizer
from glassformer.tokenizers.char import CharTokenizer
from glassformer.tokenizers.fileformat import TokenizerFormatError
from glassformer.tokenizers.formats import byte_level_json, hf_tokenizer_json
from glassformer.tokenizers.pretrained_bpe import PretrainedBPE


def char_json(tokenizer: CharTokenizer) -> dict:
    """A character vocabulary as a merge-free BPE: each character is its own token."""
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "Fuse"},  # join the characters (not with spaces)
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": {c: i for i, c in enumerate(tokenizer.chars)},
            "merges": [],
        },
    }


def tokenizer_json(tokenizer) -> dict:
    """The `tokenizer.json` (as a dict) that encodes text to the same ids as `tokenizer`."""
    if isinstance(tokenizer, CharTokenizer):
        return char_json(tokenizer)
    if isinstance(tokenizer, BPETokenizer):
        return hf_tokenizer_json(tokenizer)
    if isinstance(tokenizer, PretrainedBPE):
        return byte_level_json(tokenizer.ranks, tokenizer.special_tokens, tokenizer.pattern)
    raise TokenizerFormatError(
        f"a {type(tokenizer).__name__} has no Hugging Face tokenizer.json form; "
        "export a model with a char or BPE tokenizer"
    )


def token_string(tokenizer, token_id: int | None) -> str | None:
    """The text of special token `token_id` (e.g. "<|endoftext|>"), None if it has none."""
    if token_id is None:
        return None
    if isinstance(tokenizer, PretrainedBPE):
        specials = tokenizer.special_tokens
    elif isinstance(tokenizer, BPETokenizer):
        specials = tokenizer.special.tokens
    else:
        return None
    return next((s for s, i in specials.items() if i == token_id), None)


def is_char_json(data: dict) -> bool:
    """True for the form `char_json` writes: merge-free BPE, no pre-tokenizer, Fuse decoder."""
    model = data.get("model") or {}
    return (
        model.get("type") == "BPE"
        and not model.get("merges")
        and data.get("pre_tokenizer") is None
        and (data.get("decoder") or {}).get("type") == "Fuse"
        and not data.get("added_tokens")
    )


def load_tokenizer_json(
    path: str | os.PathLike,
    eos_id: int | None,
    chat_template: str | None = None,
    bos_id: int | None = None,
):
    """A CharTokenizer for the char form, else a PretrainedBPE (`from_tokenizer_json`)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise TokenizerFormatError(
            f"{path} is not a readable tokenizer.json ({e}); re-save the tokenizer."
        ) from None
    if isinstance(data, dict) and is_char_json(data):
        vocab = data["model"].get("vocab") or {}
        if sorted(vocab.values()) != list(range(len(vocab))) or any(len(c) != 1 for c in vocab):
            raise TokenizerFormatError(
                f"{path} has a merge-free vocabulary that is not one character per id 0..N-1."
            )
        return CharTokenizer("".join(sorted(vocab, key=vocab.__getitem__)))
    return PretrainedBPE.from_tokenizer_json(path, eos_id, chat_template, bos_id)
