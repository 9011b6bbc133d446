"""Character-level tokenizer: one token per distinct character of the training corpus.

The simplest tokenizer there is, and the one nanoGPT's Shakespeare run uses::

    >>> tok = CharTokenizer.train("hello")
    >>> tok.chars
    'ehlo'
    >>> tok.encode("hell")
    [1, 0, 2, 2]
    >>> tok.decode([3, 2])
    'ol'

File format (after the header line `glassformer-tokenizer char v1`): one line
`chars <JSON string of the vocabulary in id order>`.
"""

import json
import os

from glassformer.core.files import atomic_write_text
from glassformer.errors import UserError
from glassformer.tokenizers.fileformat import (
    TokenizerFormatError,
    header_line,
    read_tokenizer_file,
    vocab_path,
)


class CharTokenizer:
    """Maps each character of a fixed alphabet to its index in the sorted alphabet."""

    eot_id: int | None = None

    def __init__(self, chars: str) -> None:
        if not chars:
            raise UserError(
                "a character tokenizer needs at least one character; train it on non-empty text."
            )
        if len(set(chars)) != len(chars):
            raise TokenizerFormatError(
                "the character vocabulary lists a character twice; each must appear once."
            )
        self.chars = chars
        self._stoi = {c: i for i, c in enumerate(chars)}

    @classmethod
    def train(cls, text: str) -> "CharTokenizer":
        """The vocabulary is the sorted set of characters in `text`."""
        if not text:
            raise UserError(
                "cannot train a character tokenizer on empty text; pass a non-empty corpus."
            )
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        stoi = self._stoi
        try:
            return [stoi[c] for c in text]
        except KeyError as e:
            raise UserError(
                f"the character {e.args[0]!r} is not in this tokenizer's vocabulary: a "
                "character-level model only knows the characters of its training corpus; "
                "remove it from the text "
                "or use a byte-level BPE tokenizer."
            ) from None

    def encode_ordinary(self, text: str) -> list[int]:
        """The same as `encode`: a character tokenizer has no special tokens."""
        return self.encode(text)

    def decode(self, ids: list[int]) -> str:
        chars, n = self.chars, len(self.chars)
        for i in ids:
            if not 0 <= i < n:
                raise UserError(
                    f"token id {i} is outside this tokenizer's vocabulary (0..{n - 1})."
                )
        return "".join(chars[i] for i in ids)

    def decode_bytes(self, ids: list[int]) -> bytes:
        """`decode(ids)` as UTF-8: whole characters only (a token is never part of one)."""
        return self.decode(ids).encode("utf-8", "surrogatepass")

    def save(self, path: str | os.PathLike) -> None:
        """Write `path` (the model) and `path` with suffix `.vocab` (one `id<TAB>char` per line)."""
        atomic_write_text(path, f"{header_line('char')}\nchars {json.dumps(self.chars)}\n")
        dump = "".join(f"{i}\t{json.dumps(c)}\n" for i, c in enumerate(self.chars))
        atomic_write_text(vocab_path(path), dump)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CharTokenizer":
        lines = read_tokenizer_file(path, "char")
        if len(lines) != 1 or not lines[0].startswith("chars "):
            raise TokenizerFormatError(
                f"{path} is truncated or damaged (expected one 'chars' line after the header); "
                "re-train or re-save the tokenizer."
            )
        try:
            chars = json.loads(lines[0][len("chars ") :])
        except json.JSONDecodeError:
            chars = None
        if not isinstance(chars, str):
            raise TokenizerFormatError(
                f"{path} is damaged (its 'chars' line is not a JSON string); "
                "re-train or re-save it."
            )
        return cls(chars)
