"""WordPiece: BERT's tokenizer, from a `vocab.txt` (one token per line, id = line number).

Three steps, each matching Hugging Face `tokenizers` (`BertNormalizer`, `BertPreTokenizer`,
`WordPiece`) so that ids are identical:

1. **Normalize**: drop NUL, U+FFFD and control characters; turn any whitespace into a space;
   put spaces around CJK ideographs (each becomes its own word); if lower-casing, strip
   accents (NFD, then drop non-spacing marks) and lower-case character by character.
2. **Pre-tokenize**: split on whitespace, and split off every punctuation character.
3. **Greedy longest match**: cut each word into the longest prefix found in the vocabulary,
   then the longest `##`-continuation, and so on; a word that cannot be cut (or is longer than
   100 characters) becomes `[UNK]`.

    >>> tok = WordPieceTokenizer.from_vocab("vocab.txt")   # e.g. BERT / MiniLM uncased
    >>> tok.tokenize("Héllo, tokenizers!")
    ['hello', ',', 'token', '##izer', '##s', '!']
    >>> tok.encode("Héllo")                                # [CLS] hello [SEP]
    [101, 7592, 102]

Special tokens written in the text (`[MASK]`, exactly as in the vocabulary) are kept whole,
as Hugging Face does; `encode_ordinary` treats them as plain text and adds no `[CLS]`/`[SEP]`.

`eot_id` is None: a BERT vocabulary has no end-of-text token. `[SEP]` (`sep_id`) separates
segments and closes every `encode`, so a decoder that stopped at it would stop at each
segment; Hugging Face's `BertTokenizer` likewise has no `eos_token`.

File format (after the header line `glassformer-tokenizer wordpiece v1`)::

    lowercase <JSON bool>
    strip_accents <JSON bool or null: null follows lowercase>
    tokens <N>
    <id> <JSON string>                 N lines, ids increasing
"""

import json
import os
import unicodedata
from pathlib import Path

import regex

from glassformer.core.files import atomic_write_text
from glassformer.errors import UserError
from glassformer.tokenizers.fileformat import (
    TokenizerFormatError,
    header_line,
    read_tokenizer_file,
    vocab_path,
)

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# CJK Unified Ideographs blocks, as in BERT's `_is_chinese_char`.
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
_ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def is_cjk(c: str) -> bool:
    cp = ord(c)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def is_punctuation(c: str) -> bool:
    """ASCII punctuation (incl. symbols like `$` and `^`) or any Unicode `P*` category."""
    return c in _ASCII_PUNCTUATION or unicodedata.category(c).startswith("P")


def is_control(c: str) -> bool:
    return c not in "\t\n\r" and unicodedata.category(c).startswith("C")


def normalize(text: str, lowercase: bool = True, strip_accents: bool | None = None) -> str:
    """BERT normalization: `normalize("Héllo\\tWORLD 中文") -> "hello world  中  文 "`."""
    strip_accents = lowercase if strip_accents is None else strip_accents
    out = []
    for c in text:
        if c == "\0" or c == "\ufffd" or is_control(c):
            continue
        if c.isspace():
            out.append(" ")
        elif is_cjk(c):
            out.append(f" {c} ")
        else:
            out.append(c)
    text = "".join(out)
    if strip_accents:
        text = "".join(
            c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn"
        )
    if lowercase:
        text = "".join(c.lower() for c in text)  # per character, like Rust's char::to_lowercase
    return text


def pre_tokenize(text: str) -> list[str]:
    """Split on whitespace and around punctuation: `"hi, you!" -> ["hi", ",", "you", "!"]`."""
    words = []
    for word in text.split():
        start = 0
        for i, c in enumerate(word):
            if is_punctuation(c):
                if i > start:
                    words.append(word[start:i])
                words.append(c)
                start = i + 1
        if start < len(word):
            words.append(word[start:])
    return words


class WordPieceTokenizer:
    """BERT-style WordPiece tokenizer over a fixed vocabulary."""

    max_input_chars_per_word = 100
    prefix = "##"
    eot_id: int | None = None

    def __init__(
        self, vocab: dict[str, int], lowercase: bool = True, strip_accents: bool | None = None
    ) -> None:
        missing = [t for t in SPECIAL_TOKENS if t not in vocab]
        if missing:
            raise TokenizerFormatError(
                f"the WordPiece vocabulary lacks {missing[0]}; BERT vocabularies must contain "
                f"{', '.join(SPECIAL_TOKENS)}."
            )
        self.vocab = vocab
        self.inverse = {i: t for t, i in vocab.items()}
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.special_ids = {vocab[t] for t in SPECIAL_TOKENS}
        self._special_regex = regex.compile("|".join(regex.escape(t) for t in SPECIAL_TOKENS))
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
            vocab[t] for t in SPECIAL_TOKENS
        )

    @classmethod
    def from_vocab(
        cls, path: str | os.PathLike, lowercase: bool = True, strip_accents: bool | None = None
    ) -> "WordPieceTokenizer":
        """Load a BERT `vocab.txt`: one token per line, the id is the line number."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"no vocabulary file at {path}; pass the path of a BERT vocab.txt.")
        try:
            tokens = path.read_bytes().decode("utf-8").split("\n")
        except UnicodeDecodeError:
            raise TokenizerFormatError(
                f"{path} is not UTF-8 text; pass a BERT vocab.txt."
            ) from None
        if tokens and tokens[-1] == "":
            tokens.pop()
        vocab: dict[str, int] = {}
        for i, token in enumerate(tokens):
            token = token.rstrip("\r")
            if token in vocab:
                raise TokenizerFormatError(
                    f"{path} lists {token!r} twice (lines {vocab[token] + 1} and {i + 1}); "
                    "each token of a vocab.txt must be unique."
                )
            vocab[token] = i
        return cls(vocab, lowercase, strip_accents)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def wordpiece(self, word: str) -> list[str]:
        """Greedy longest match: `wordpiece("tokenizers") -> ["token", "##izer", "##s"]`."""
        if len(word) > self.max_input_chars_per_word:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else self.prefix + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            else:
                return ["[UNK]"]
            pieces.append(piece)
            start = end
        return pieces

    def _tokenize_plain(self, text: str) -> list[str]:
        text = normalize(text, self.lowercase, self.strip_accents)
        return [piece for word in pre_tokenize(text) for piece in self.wordpiece(word)]

    def tokenize(self, text: str) -> list[str]:
        """The WordPiece tokens of `text` (special tokens written in the text stay whole)."""
        tokens: list[str] = []
        start = 0
        for m in self._special_regex.finditer(text):
            tokens.extend(self._tokenize_plain(text[start : m.start()]))
            tokens.append(m.group())
            start = m.end()
        tokens.extend(self._tokenize_plain(text[start:]))
        return tokens

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Ids of `text`, wrapped as `[CLS] … [SEP]` unless `add_special_tokens=False`."""
        ids = [self.vocab[t] for t in self.tokenize(text)]
        return [self.cls_id, *ids, self.sep_id] if add_special_tokens else ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Ids of `text` as plain text: no `[CLS]`/`[SEP]`, and `[MASK]` in it is 3 tokens."""
        return [self.vocab[t] for t in self._tokenize_plain(text)]

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        """Join tokens with spaces and glue `##` continuations: `[7592, 999] -> "hello !"`."""
        unknown = [i for i in ids if i not in self.inverse]
        if unknown:
            raise UserError(
                f"token id {unknown[0]} is not in this WordPiece vocabulary; decode ids "
                "produced by this tokenizer."
            )
        tokens = [
            self.inverse[i] for i in ids if not (skip_special_tokens and i in self.special_ids)
        ]
        return " ".join(tokens).replace(" " + self.prefix, "")

    # ---- files ---------------------------------------------------------------------------

    def decode_bytes(self, ids: list[int]) -> bytes:
        """`decode(ids)` as UTF-8: whole characters only (a token is never part of one)."""
        return self.decode(ids).encode("utf-8", "surrogatepass")

    def save(self, path: str | os.PathLike) -> None:
        """Write `path` and `path` with suffix `.vocab` (one `id<TAB>token` per line)."""
        order = sorted(self.inverse)
        lines = [
            header_line("wordpiece"),
            f"lowercase {json.dumps(self.lowercase)}",
            f"strip_accents {json.dumps(self.strip_accents)}",
            f"tokens {len(order)}",
            *(f"{i} {json.dumps(self.inverse[i])}" for i in order),
        ]
        atomic_write_text(path, "\n".join(lines) + "\n")
        dump = "".join(f"{i}\t{json.dumps(self.inverse[i])}\n" for i in order)
        atomic_write_text(vocab_path(path), dump)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "WordPieceTokenizer":
        lines = read_tokenizer_file(path, "wordpiece")
        try:
            options = {}
            for line, key in zip(lines[:3], ("lowercase", "strip_accents", "tokens"), strict=True):
                found, value = line.split(" ", 1)
                if found != key:
                    raise ValueError(key)
                options[key] = json.loads(value)
            if not isinstance(options["lowercase"], bool) or options["strip_accents"] not in (
                True,
                False,
                None,
            ):
                raise ValueError("options")
            if len(lines) != 3 + options["tokens"]:
                raise ValueError("tokens")
            vocab: dict[str, int] = {}
            for line in lines[3:]:
                i, token = line.split(" ", 1)
                token = json.loads(token)
                if not isinstance(token, str) or token in vocab:
                    raise ValueError(f"token {i}")
                vocab[token] = int(i)
        except (ValueError, TypeError, KeyError):
            raise TokenizerFormatError(
                f"{path} is truncated or damaged (a line does not match the wordpiece v1 "
                "format); re-save the tokenizer."
            ) from None
        return cls(vocab, options["lowercase"], options["strip_accents"])
