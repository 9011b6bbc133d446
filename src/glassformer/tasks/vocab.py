"""A fixed symbol vocabulary for the tasks: special tokens first, then characters or words.

    >>> v = Vocab.of_chars("ab")
    >>> v.encode("abba"), v.decode([5, 6, 2])
    ([5, 6, 6, 5], 'ab')

`decode` drops special tokens. Saved as `vocab.json` in a task checkpoint (a JSON list, the
id of a symbol is its index).
"""

import json
from pathlib import Path

from glassformer.core.files import atomic_write_text
from glassformer.errors import UserError

SPECIALS = ("[PAD]", "[BOS]", "[EOS]", "[MASK]", "[CLS]")
PAD, BOS, EOS, MASK, CLS = range(len(SPECIALS))


class Vocab:
    """Symbols <-> ids; `words=True` splits text on spaces instead of into characters."""

    def __init__(self, symbols: list[str], words: bool = False):
        self.symbols, self.words = list(symbols), words
        self.ids = {s: i for i, s in enumerate(self.symbols)}

    @classmethod
    def of_chars(cls, chars: str) -> "Vocab":
        return cls([*SPECIALS, *sorted(set(chars))])

    @classmethod
    def of_words(cls, words: list[str]) -> "Vocab":
        return cls([*SPECIALS, *sorted(set(words))], words=True)

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, text: str) -> list[int]:
        parts = text.split(" ") if self.words else list(text)
        try:
            return [self.ids[p] for p in parts]
        except KeyError as e:
            raise UserError(f"{e.args[0]!r} is not in this task's vocabulary") from None

    def decode(self, ids: list[int]) -> str:
        parts = [self.symbols[i] for i in ids if i >= len(SPECIALS)]
        return (" " if self.words else "").join(parts)

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps({"words": self.words, "symbols": self.symbols}) + "\n")

    @classmethod
    def load(cls, path: Path) -> "Vocab":
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(d["symbols"], d["words"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(f"{path} is not a task vocabulary ({e}); retrain the task") from None
