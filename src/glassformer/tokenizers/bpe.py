"""Byte-level BPE tokenizer (GPT-2 style): train, encode, decode, save, load.

The vocabulary is a rank table `bytes -> id` (the 256 single bytes, then learned tokens in
the order they were learned) plus special tokens (`<|endoftext|>`, the last id). Every text
is first turned into UTF-8 bytes, so any text round-trips: typos, accents, emoji, CJK,
newlines, NUL, even lone surrogates.

    >>> tok = BPETokenizer.train("the cat, the hat, the bat", vocab_size=260)
    >>> tok.vocab_size, tok.eot_id
    (260, 259)
    >>> ids = tok.encode("the rat")
    >>> tok.decode(ids)
    'the rat'

Two encoders, proven identical by the tests:

- `encode(..., reference=True)`: pure Python (`bpe_encode.py`), the code to read;
- `encode(...)` (the default): the same ranks handed to tiktoken's Rust core via
  `to_tiktoken()`; no download is needed, the `tiktoken.Encoding` is built from our ranks.

File format (after the header line `glassformer-tokenizer bpe v1`)::

    pattern <JSON string: the pre-tokenization regex>
    tokens <N>
    <id> <token bytes in hex>          N lines, ids increasing (0..N-1 when trained here)
    special <M>
    <id> <JSON string>                 M lines
"""

import codecs
import json
import os
from collections.abc import Callable, Sequence
from functools import cached_property

import regex
import tiktoken

from glassformer.core.files import atomic_write_text
from glassformer.errors import UserError
from glassformer.tokenizers.bpe_encode import ReferenceEncoder, bpe_merge
from glassformer.tokenizers.bpe_train import train_bpe
from glassformer.tokenizers.fileformat import (
    TokenizerFormatError,
    header_line,
    read_tokenizer_file,
    vocab_path,
)
from glassformer.tokenizers.pretokenize import GPT2_PATTERN
from glassformer.tokenizers.special import AllOr, SpecialTokens

EOT = "<|endoftext|>"


def _surrogatepass_or_replace(err: UnicodeError) -> tuple[str, int]:
    """Decode error handler: bytes of a lone surrogate give it back; other bad bytes give U+FFFD."""
    try:
        return codecs.lookup_error("surrogatepass")(err)
    except UnicodeDecodeError:
        return codecs.lookup_error("replace")(err)


codecs.register_error("glassformer_surrogatepass_or_replace", _surrogatepass_or_replace)


def render_token(token: bytes) -> str:
    """A token as printable text: invalid UTF-8 as U+FFFD, control characters as `\\u000a`."""
    text = token.decode("utf-8", errors="replace")
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


class BPETokenizer:
    """Byte-level BPE with a GPT-2-style pre-tokenizer and tiktoken-compatible ranks."""

    def __init__(
        self,
        ranks: dict[bytes, int],
        special_tokens: dict[str, int] | None = None,
        pattern: str = GPT2_PATTERN,
    ) -> None:
        if len(set(ranks.values())) != len(ranks) or min(ranks.values(), default=0) < 0:
            raise TokenizerFormatError(
                "two tokens share one rank (or a rank is negative); each token needs its own id."
            )
        missing = [b for b in range(256) if bytes([b]) not in ranks]
        if missing:
            raise TokenizerFormatError(
                f"the vocabulary lacks the single byte {missing[0]}, so some text cannot be "
                "encoded; a byte-level BPE vocabulary must contain all 256 bytes."
            )
        special_tokens = dict(special_tokens or {})
        rank_ids = set(ranks.values())
        clash = [s for s, i in special_tokens.items() if i in rank_ids or i < 0]
        if clash:
            raise TokenizerFormatError(
                f"special token {clash[0]!r} has id {special_tokens[clash[0]]}, which an ordinary "
                "token already uses; give special tokens ids of their own."
            )
        self.ranks = ranks
        self.pattern = pattern
        self.special = SpecialTokens(special_tokens)
        self.decoder: dict[int, bytes] = {i: t for t, i in ranks.items()}
        self.decoder.update({i: s.encode("utf-8") for s, i in special_tokens.items()})
        try:
            self.reference = ReferenceEncoder(ranks, pattern)
        except regex.error as e:
            raise TokenizerFormatError(
                f"the pre-tokenization pattern is not a valid regular expression ({e}); "
                "use a pattern the `regex` package accepts, such as GPT2_PATTERN."
            ) from None

    # ---- training ------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        text: str,
        vocab_size: int,
        pattern: str = GPT2_PATTERN,
        progress: Callable[[int], None] | None = None,
    ) -> "BPETokenizer":
        """Learn `vocab_size - 257` merges from `text`; `<|endoftext|>` takes the last id.

        If the text runs out of pairs first, the vocabulary is smaller than asked.
        """
        if vocab_size < 257:
            raise UserError(
                f"vocab_size {vocab_size} is too small for byte-level BPE; use at least 257 "
                "(256 bytes + <|endoftext|>)."
            )
        if not text:
            raise UserError("cannot train a BPE tokenizer on empty text; pass a non-empty corpus.")
        vocab = train_bpe(text, vocab_size - 1, pattern, progress)
        ranks = {token: i for i, token in enumerate(vocab)}
        return cls(ranks, {EOT: len(vocab)}, pattern)

    # ---- sizes and special ids -----------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """One more than the largest id (special tokens included): the embedding table's size."""
        return max(self.decoder) + 1

    @property
    def eot_id(self) -> int | None:
        """The id of `<|endoftext|>`, or None if this vocabulary has no such token."""
        return self.special.tokens.get(EOT)

    # ---- encoding ------------------------------------------------------------------------

    @cached_property
    def _tiktoken(self) -> tiktoken.Encoding:
        return self.to_tiktoken()

    def to_tiktoken(self, name: str = "glassformer-bpe") -> tiktoken.Encoding:
        """A `tiktoken.Encoding` built from our ranks, pattern and special tokens (no download)."""
        return tiktoken.Encoding(
            name=name,
            pat_str=self.pattern,
            mergeable_ranks=self.ranks,
            special_tokens=self.special.tokens,
        )

    def encode_ordinary(self, text: str, reference: bool = False) -> list[int]:
        """Encode `text` as plain text: special-token strings get no special treatment."""
        if reference or not _is_utf8_encodable(text):
            return self.reference.encode(text)  # tiktoken would replace lone surrogates
        return self._tiktoken.encode_ordinary(text)

    def encode(
        self,
        text: str,
        allowed_special: AllOr = (),
        disallowed_special: AllOr = "all",
        reference: bool = False,
    ) -> list[int]:
        """Encode `text`, handling special tokens like tiktoken (see `special.py`).

        By default, text containing a special token's string raises
        `DisallowedSpecialTokenError`; `allowed_special="all"` encodes it as the special id.
        """
        allowed, disallowed = self.special.resolve(allowed_special, disallowed_special)
        self.special.check(text, disallowed)
        if not allowed:
            return self.encode_ordinary(text, reference)
        if not reference and _is_utf8_encodable(text):
            return self._tiktoken.encode(text, allowed_special=allowed, disallowed_special=())
        ids: list[int] = []
        for part in self.special.split(text, allowed):
            if part in allowed:
                ids.append(self.special.tokens[part])
            else:
                ids.extend(self.reference.encode(part))
        return ids

    def encode_bytes(self, data: bytes) -> list[int]:
        """Encode arbitrary bytes (e.g. a file that is not UTF-8); `decode_bytes` gives them back.

        Uses the reference encoder; valid UTF-8 gives the same ids as `encode_ordinary`.
        """
        return self.reference.encode_bytes(data)

    def encode_batch(
        self,
        texts: Sequence[str],
        allowed_special: AllOr = (),
        disallowed_special: AllOr = "all",
        num_threads: int = 8,
    ) -> list[list[int]]:
        """Encode many texts at once on tiktoken's thread pool."""
        allowed, disallowed = self.special.resolve(allowed_special, disallowed_special)
        for text in texts:
            self.special.check(text, disallowed)
        if not all(_is_utf8_encodable(t) for t in texts):
            return [self.encode(t, allowed, ()) for t in texts]
        texts = list(texts)
        if not allowed:
            return self._tiktoken.encode_ordinary_batch(texts, num_threads=num_threads)
        return self._tiktoken.encode_batch(
            texts, num_threads=num_threads, allowed_special=allowed, disallowed_special=()
        )

    # ---- decoding ------------------------------------------------------------------------

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        """The bytes that `ids` stand for (special tokens as their UTF-8 strings)."""
        decoder = self.decoder
        try:
            return b"".join([decoder[i] for i in ids])
        except KeyError as e:
            raise UserError(
                f"token id {e.args[0]} is outside this tokenizer's vocabulary "
                f"(0..{self.vocab_size - 1}); decode ids produced by this tokenizer."
            ) from None

    def decode(self, ids: Sequence[int]) -> str:
        """The text of `ids`; byte sequences that are not valid UTF-8 become U+FFFD.

        The one exception: the 3-byte form of a lone surrogate (which `encode` produces for
        such text) decodes back to that surrogate, so every string round-trips.
        """
        return self.decode_bytes(ids).decode("utf-8", errors="glassformer_surrogatepass_or_replace")

    # ---- inspection ----------------------------------------------------------------------

    def parents(self, token_id: int) -> tuple[int, int] | None:
        """The two tokens whose merge made `token_id` (None for single bytes and special tokens).

        Found as tiktoken does: BPE the token's bytes using only the tokens learned before it.
        """
        token = self.decoder[token_id]
        if token_id in self.special.by_id or len(token) == 1:
            return None
        parts = bpe_merge(token, self.ranks, max_rank=token_id)
        if len(parts) != 2:
            return None
        return self.ranks[parts[0]], self.ranks[parts[1]]

    def vocab_dump(self) -> str:
        """minbpe-style listing: `[t][he] -> [the] 300`, bytes as `[a] 97`, specials last."""
        lines = []
        for i in sorted(self.ranks.values()):
            token = render_token(self.decoder[i])
            parents = self.parents(i)
            if parents is None:
                lines.append(f"[{token}] {i}")
            else:
                left, right = (render_token(self.decoder[p]) for p in parents)
                lines.append(f"[{left}][{right}] -> [{token}] {i}")
        lines.extend(f"[{s}] {i} (special)" for s, i in self.special.tokens.items())
        return "\n".join(lines) + "\n"

    # ---- files ---------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the model file `path` and the human-readable dump `path` with suffix `.vocab`."""
        lines = [
            header_line("bpe"),
            f"pattern {json.dumps(self.pattern)}",
            f"tokens {len(self.ranks)}",
        ]
        lines.extend(f"{i} {self.decoder[i].hex()}" for i in sorted(self.ranks.values()))
        lines.append(f"special {len(self.special)}")
        lines.extend(f"{i} {json.dumps(s)}" for s, i in self.special.tokens.items())
        atomic_write_text(path, "\n".join(lines) + "\n")
        atomic_write_text(vocab_path(path), self.vocab_dump())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "BPETokenizer":
        lines = read_tokenizer_file(path, "bpe")
        try:
            return cls._parse(lines)
        except UserError as e:
            raise TokenizerFormatError(
                f"{path} is damaged: {e} Re-train or re-save the tokenizer."
            ) from None
        except (ValueError, TypeError, StopIteration):
            raise TokenizerFormatError(
                f"{path} is truncated or damaged (a line does not match the bpe v1 format); "
                "re-train or re-save the tokenizer."
            ) from None

    @classmethod
    def _parse(cls, lines: list[str]) -> "BPETokenizer":
        it = iter(lines)
        key, value = next(it).split(" ", 1)
        pattern = json.loads(value)
        if key != "pattern" or not isinstance(pattern, str):
            raise ValueError("pattern")
        key, value = next(it).split(" ", 1)
        if key != "tokens":
            raise ValueError("tokens")
        ranks: dict[bytes, int] = {}
        previous = -1
        for _ in range(int(value)):
            i, hexbytes = next(it).split(" ")
            if int(i) <= previous:
                raise TokenizerFormatError(
                    f"token id {i} follows id {previous} (a duplicate or out-of-order rank)."
                )
            previous = int(i)
            token = bytes.fromhex(hexbytes)
            if token in ranks:
                raise TokenizerFormatError(
                    f"token {token!r} is listed twice (ids {ranks[token]} and {i})."
                )
            ranks[token] = previous
        key, value = next(it).split(" ", 1)
        if key != "special":
            raise ValueError("special")
        special: dict[str, int] = {}
        for _ in range(int(value)):
            i, name = next(it).split(" ", 1)
            name = json.loads(name)
            if not isinstance(name, str) or name in special:
                raise TokenizerFormatError(
                    f"special token line {i} is a duplicate or not a string."
                )
            special[name] = int(i)
        if next(it, None) is not None:
            raise ValueError("trailing lines")
        return cls(ranks, special, pattern)


def _is_utf8_encodable(text: str) -> bool:
    """False if `text` holds lone surrogates (which UTF-8 cannot encode)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
