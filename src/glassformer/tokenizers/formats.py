"""BPE vocabularies in other projects' formats: GPT-2 files, tiktoken files, HF tokenizer.json.

- **GPT-2** (`vocab.json` + `merges.txt`, as OpenAI and Hugging Face write them): tokens are
  strings in which every byte is shown as one printable character (`bytes_to_unicode`: the
  space byte 0x20 is `Ġ`, newline is `Ċ`), e.g. `{"Ġthe": 262}` and a merge line `Ġ the`.
- **tiktoken** (`.tiktoken`): one line per token, `<base64 of the bytes> <rank>`.
- **Hugging Face** `tokenizer.json`: a BPE model whose merges reproduce tiktoken's rule.
  tiktoken merges the adjacent pair whose *concatenation* has the lowest rank, so every way
  of splitting a token into two tokens becomes a merge, ordered by the token's rank;
  `ignore_merges` makes a chunk that is itself a token encode as that token, as tiktoken does.

    >>> bytes_to_unicode()[ord(" ")], bytes_to_unicode()[ord("a")]
    ('Ġ', 'a')
"""

import base64
import binascii
import json
import os
from functools import cache
from pathlib import Path

from glassformer.core.files import atomic_write_text
from glassformer.errors import UserError
from glassformer.tokenizers.bpe import BPETokenizer
from glassformer.tokenizers.fileformat import TokenizerFormatError
from glassformer.tokenizers.pretokenize import GPT2_PATTERN


@cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (printable Latin-1 bytes map to themselves)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    table = {b: chr(b) for b in printable}
    shift = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shift)
            shift += 1
    return table


def _read_text(path: str | os.PathLike, what: str) -> str:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no {what} at {path}; pass the path of an existing {what}.")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise TokenizerFormatError(f"{path} is not UTF-8 text, so it is not a {what}.") from None


def load_gpt2_files(
    vocab_json: str | os.PathLike, merges_txt: str | os.PathLike, pattern: str = GPT2_PATTERN
) -> BPETokenizer:
    """Load GPT-2-style `vocab.json` + `merges.txt`; tokens no merge produces are special."""
    try:
        vocab = json.loads(_read_text(vocab_json, "vocab.json"))
    except json.JSONDecodeError:
        raise TokenizerFormatError(
            f"{vocab_json} is not valid JSON, so not a vocab.json."
        ) from None
    if not isinstance(vocab, dict) or not all(isinstance(i, int) for i in vocab.values()):
        raise TokenizerFormatError(f"{vocab_json} is not a JSON object of token -> integer id.")
    merged = set()
    for n, line in enumerate(_read_text(merges_txt, "merges.txt").splitlines()):
        if (n == 0 and line.startswith("#version")) or not line:
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(p in vocab for p in parts) or "".join(parts) not in vocab:
            raise TokenizerFormatError(
                f"{merges_txt} line {n + 1} ({line!r}) is not a merge of two tokens of "
                f"{vocab_json} into a third; pass the merges.txt that belongs to that vocab.json."
            )
        merged.add("".join(parts))
    byte_of = {c: b for b, c in bytes_to_unicode().items()}
    ranks: dict[bytes, int] = {}
    special: dict[str, int] = {}
    for token, i in vocab.items():
        if (len(token) == 1 and token in byte_of) or token in merged:
            ranks[bytes(byte_of[c] for c in token)] = i
        else:
            special[token] = i
    return BPETokenizer(ranks, special, pattern)


def load_tiktoken_file(
    path: str | os.PathLike,
    pattern: str = GPT2_PATTERN,
    special_tokens: dict[str, int] | None = None,
) -> BPETokenizer:
    """Load a tiktoken rank file (`<base64 token> <rank>` per line)."""
    ranks: dict[bytes, int] = {}
    for n, line in enumerate(_read_text(path, "tiktoken rank file").splitlines()):
        if not line:
            continue
        try:
            encoded, rank = line.split(" ")
            token = base64.b64decode(encoded, validate=True)
            ranks_before = len(ranks)
            ranks[token] = int(rank)
        except (ValueError, binascii.Error):
            raise TokenizerFormatError(
                f"{path} line {n + 1} is not '<base64 token> <rank>'; pass a .tiktoken file."
            ) from None
        if len(ranks) == ranks_before:
            raise TokenizerFormatError(f"{path} line {n + 1} repeats a token listed earlier.")
    return BPETokenizer(ranks, special_tokens, pattern)


def save_tiktoken_file(tokenizer: BPETokenizer, path: str | os.PathLike) -> None:
    """Write the mergeable ranks in tiktoken's format (special tokens are not part of it)."""
    lines = (
        f"{base64.b64encode(t).decode()} {i}"
        for t, i in sorted(tokenizer.ranks.items(), key=lambda kv: kv[1])
    )
    atomic_write_text(path, "\n".join(lines) + "\n")


def hf_merges(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """Every split of every token into two tokens, ordered by the token's rank (tiktoken's rule).

    >>> hf_merges({b"a": 0, b"b": 1, b"c": 2, b"ab": 3, b"bc": 4, b"abc": 5})
    [(b'a', b'b'), (b'b', b'c'), (b'a', b'bc'), (b'ab', b'c')]
    """
    merges = []
    for token, _ in sorted(ranks.items(), key=lambda kv: kv[1]):
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in ranks and right in ranks:
                merges.append((left, right))
    return merges


def hf_tokenizer_json(tokenizer: BPETokenizer) -> dict:
    """A Hugging Face `tokenizer.json` (as a dict) that encodes exactly like `tokenizer`."""
    return byte_level_json(tokenizer.ranks, tokenizer.special.tokens, tokenizer.pattern)


def byte_level_json(ranks: dict[bytes, int], special: dict[str, int], pattern: str) -> dict:
    """A byte-level BPE `tokenizer.json` (as a dict): merges by tiktoken's rule (`hf_merges`),
    `pattern` as a Split before ByteLevel, `special` as added tokens. A byte that `ranks`
    lacks is dropped by the Hugging Face tokenizer, as `PretrainedBPE` drops it."""
    to_char = bytes_to_unicode()

    def show(token: bytes) -> str:
        return "".join(to_char[b] for b in token)

    byte_level = {"add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    split = {"type": "Split", "pattern": {"Regex": pattern}}
    split |= {"behavior": "Isolated", "invert": False}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False}
            | {"normalized": False, "special": True}
            for s, i in special.items()
        ],
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [split, {"type": "ByteLevel", **byte_level}],
        },
        "post_processor": None,
        "decoder": {"type": "ByteLevel", **byte_level},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": True,
            "vocab": {show(t): i for t, i in sorted(ranks.items(), key=lambda kv: kv[1])},
            "merges": [[show(a), show(b)] for a, b in hf_merges(ranks)],
        },
    }


def save_hf_tokenizer_json(tokenizer: BPETokenizer, path: str | os.PathLike) -> None:
    """Write `tokenizer.json` for `tokenizers.Tokenizer.from_file` / `PreTrainedTokenizerFast`."""
    atomic_write_text(path, json.dumps(hf_tokenizer_json(tokenizer), ensure_ascii=False))
