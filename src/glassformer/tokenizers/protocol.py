"""The tokenizer protocol: what every tokenizer offers, whatever its kind.

    text ──encode──▶ ids ──decode──▶ text        save(path) ──▶ file ──load_tokenizer──▶ tokenizer

`CharTokenizer`, `BPETokenizer`, `WordPieceTokenizer` and `SymbolVocab` all implement it, so a
caller types its argument as `Tokenizer` and uses the attributes directly
(`tokenizer.eot_id`, never `getattr(tokenizer, "eot_id", None)`):

    >>> from glassformer.tokenizers import CharTokenizer
    >>> isinstance(CharTokenizer.train("hello"), Tokenizer)
    True

Two ways to encode, because a tokenizer with special tokens has two jobs:

- `encode(text)`: the ids a model is given for `text` (BERT's WordPiece wraps them in
  `[CLS] … [SEP]`; BPE refuses text that spells a special token, unless told otherwise);
- `encode_ordinary(text)`: `text` as plain text, nothing added and nothing special
  (`"<|endoftext|>"` inside a training corpus is just characters). The training data
  pipeline uses this one. For tokenizers without special tokens the two are the same.
"""

import os
from typing import Protocol, Self, runtime_checkable


@runtime_checkable
class Tokenizer(Protocol):
    """Text <-> ids, plus the file it is saved in (read back by `load_tokenizer`)."""

    @property
    def vocab_size(self) -> int:
        """Size of the embedding table: one more than the largest id."""
        ...

    @property
    def eot_id(self) -> int | None:
        """The end-of-text (EOS) id at which generation stops; None if there is none."""
        ...

    def encode(self, text: str) -> list[int]:
        """The ids of `text`, as a model is given them."""
        ...

    def encode_ordinary(self, text: str) -> list[int]:
        """The ids of `text` as plain text: no special tokens added or recognised."""
        ...

    def decode(self, ids: list[int]) -> str:
        """The text of `ids`."""
        ...

    def decode_bytes(self, ids: list[int]) -> bytes:
        """The UTF-8 bytes of `ids`. A byte-level token may hold part of a character, so a
        streamed piece can end inside one (generate/streaming.py keeps it until it is whole);
        for the other kinds this is `decode(ids)` encoded."""
        ...

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer file `path` (with a header line that `load_tokenizer` reads)."""
        ...

    @classmethod
    def load(cls, path: str | os.PathLike) -> Self:
        """Read a file of this kind (`load_tokenizer` picks the kind from the header)."""
        ...
