"""A fixed symbol vocabulary, as the tasks use: special tokens first, then characters or words.

    >>> v = SymbolVocab.of_chars("ab")
    >>> v.encode("abba"), v.decode([5, 6, 2])
    ([5, 6, 6, 5], 'ab')
    >>> v.vocab_size, v.eot_id
    (7, 2)

`decode` drops special tokens; `eot_id` is `[EOS]` (every symbol vocabulary has it).

File format (after the header line `glassformer-tokenizer symbols v1`)::

    words <JSON bool: true splits text on spaces, false into characters>
    symbols <JSON list of strings: the id of a symbol is its index>

Task folders written before this format hold a `vocab.json`
(`{"words": ..., "symbols": [...]}`); `SymbolVocab.from_vocab_json(path)` reads those.
"""

import json
import os
from pathlib import Path

from glassformer.core.files import atomic_write_text
from glassformer.errors import UserError
from glassformer.tokenizers.fileformat import (
    TokenizerFormatError,
    header_line,
    read_tokenizer_file,
    vocab_path,
)

SPECIALS = ("[PAD]", "[BOS]", "[EOS]", "[MASK]", "[CLS]")
PAD, BOS, EOS, MASK, CLS = range(len(SPECIALS))


class SymbolVocab:
    """Symbols <-> ids; `words=True` splits text on spaces instead of into characters."""

    eot_id: int | None = EOS

    def __init__(self, symbols: list[str], words: bool = False):
        if list(symbols[: len(SPECIALS)]) != list(SPECIALS):
            raise TokenizerFormatError(
                f"a symbol vocabulary must start with the special tokens {', '.join(SPECIALS)}; "
                "build it with SymbolVocab.of_chars or SymbolVocab.of_words."
            )
        if len(set(symbols)) != len(symbols):
            raise TokenizerFormatError(
                "the symbol vocabulary lists a symbol twice; each must appear once."
            )
        self.symbols, self.words = list(symbols), words
        self.ids = {s: i for i, s in enumerate(self.symbols)}

    @classmethod
    def of_chars(cls, chars: str) -> "SymbolVocab":
        return cls([*SPECIALS, *sorted(set(chars))])

    @classmethod
    def of_words(cls, words: list[str]) -> "SymbolVocab":
        return cls([*SPECIALS, *sorted(set(words))], words=True)

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)

    def encode(self, text: str) -> list[int]:
        parts = text.split(" ") if self.words else list(text)
        try:
            return [self.ids[p] for p in parts]
        except KeyError as e:
            raise UserError(
                f"{e.args[0]!r} is not in this task's vocabulary; use only the symbols the "
                "task was trained on."
            ) from None

    def encode_ordinary(self, text: str) -> list[int]:
        """The same as `encode`: special tokens are never written in a task's text."""
        return self.encode(text)

    def decode(self, ids: list[int]) -> str:
        n = len(self.symbols)
        for i in ids:
            if not 0 <= i < n:
                raise UserError(f"token id {i} is outside this vocabulary (0..{n - 1}).")
        parts = [self.symbols[i] for i in ids if i >= len(SPECIALS)]
        return (" " if self.words else "").join(parts)

    def decode_bytes(self, ids: list[int]) -> bytes:
        """`decode(ids)` as UTF-8: whole characters only (a token is never part of one)."""
        return self.decode(ids).encode("utf-8", "surrogatepass")

    def save(self, path: str | os.PathLike) -> None:
        """Write `path` and `path` with suffix `.vocab` (one `id<TAB>symbol` per line)."""
        body = f"words {json.dumps(self.words)}\nsymbols {json.dumps(self.symbols)}\n"
        atomic_write_text(path, f"{header_line('symbols')}\n{body}")
        dump = "".join(f"{i}\t{json.dumps(s)}\n" for i, s in enumerate(self.symbols))
        atomic_write_text(vocab_path(path), dump)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SymbolVocab":
        lines = read_tokenizer_file(path, "symbols")
        if (
            len(lines) != 2
            or not lines[0].startswith("words ")
            or not lines[1].startswith("symbols ")
        ):
            raise TokenizerFormatError(
                f"{path} is truncated or damaged (expected a 'words' and a 'symbols' line after "
                "the header); re-save the vocabulary."
            )
        try:
            words = json.loads(lines[0][len("words ") :])
            symbols = json.loads(lines[1][len("symbols ") :])
        except json.JSONDecodeError:
            words = symbols = None
        return cls._checked(path, words, symbols)

    @classmethod
    def from_vocab_json(cls, path: str | os.PathLike) -> "SymbolVocab":
        """Read the `vocab.json` of a task folder written before the tokenizer file format."""
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise UserError(f"{path} is not a task vocabulary ({e}); retrain the task.") from None
        if not isinstance(d, dict):
            d = {}
        return cls._checked(path, d.get("words"), d.get("symbols"))

    @classmethod
    def _checked(cls, path, words, symbols) -> "SymbolVocab":
        if not isinstance(words, bool) or not (
            isinstance(symbols, list) and all(isinstance(s, str) for s in symbols)
        ):
            raise TokenizerFormatError(
                f"{path} is damaged ('words' must be true or false and 'symbols' a list of "
                "strings); re-save the vocabulary or retrain the task."
            )
        return cls(symbols, words)
