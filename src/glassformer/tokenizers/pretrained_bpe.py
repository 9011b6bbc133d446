"""A pretrained model's byte-level BPE vocabulary (from a GGUF file or a `tokenizer.json`).

Llama-family models, SmolLM2 and GPT-2 all use byte-level BPE, so their vocabularies run on
our `BPETokenizer` (readable reference + tiktoken fast path). What such a vocabulary adds:

- tokens are spelled in GPT-2's byte alphabet (`Ġthe` is the bytes ` the`, see
  `formats.bytes_to_unicode`) and ids are given by the file, specials included (SmolLM2:
  `<|endoftext|>` 0, `<|im_start|>` 1, `<|im_end|>` 2, then the 256 bytes, then the merges);
- the pre-tokenizer pattern is named by the file (`tokenizer.ggml.pre`), see `PATTERNS`;
- the end-of-sequence id (where generation stops) is the file's, not `<|endoftext|>`;
- a vocabulary may lack some single bytes (SmolLM2 has no token for 21 of them: six control
  characters, 0xC0/0xC1, 0xF1, 0xF2, 0xF5-0xFF). Such bytes are dropped from each chunk before
  merging, exactly as the Hugging Face tokenizer does (`"!\\x04!"` encodes as the token `!!`);
  internally they get placeholder ids above `vocab_size` that never reach the caller;
- a chat template (Jinja) travels with the vocabulary, as `chat_template.py` renders it.

Merging by rank (tiktoken: lowest-ranked concatenation first) equals merging by the file's
merge list (Hugging Face) when every merge's result has a larger id than the previous merge's;
`from_byte_level` checks that and refuses a vocabulary where it does not hold.

    >>> tok = PretrainedBPE.from_byte_level(
    ...     [chr(i) for i in range(33, 127)] + ["Ġ", "Ġa", "<eos>"], [1] * 96 + [3], ["Ġ a"],
    ...     pattern_for("gpt2"), eos_id=96)
    >>> tok.encode(" a!"), tok.vocab_size, tok.eot_id
    ([95, 0], 97, 96)

File format (after the header line `glassformer-tokenizer pretrained-bpe v1`)::

    pattern <JSON string>
    vocab_size <N>
    eos <id or -1>
    bos <id or -1>
    chat_template <JSON string or null>
    tokens <K>
    <id> <token bytes in hex>          K lines, ids increasing
    special <M>
    <id> <JSON string>                 M lines
"""

import json
import os
from collections.abc import Sequence
from pathlib import Path

from glassformer.core.files import atomic_write_text
from glassformer.errors import UserError
from glassformer.tokenizers.bpe import BPETokenizer, render_token
from glassformer.tokenizers.fileformat import (
    TokenizerFormatError,
    header_line,
    read_tokenizer_file,
    vocab_path,
)
from glassformer.tokenizers.formats import bytes_to_unicode
from glassformer.tokenizers.pretokenize import GPT2_PATTERN
from glassformer.tokenizers.special import AllOr

LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# tokenizer.ggml.pre -> pattern, as transformers' GGUF loader maps them; any other name
# (SmolLM2's "smollm", "gpt2", "starcoder", ...) gets GPT-2's ByteLevel pattern, as there
PATTERNS = {name: LLAMA3_PATTERN for name in ("llama3", "llama-v3", "llama-bpe", "smaug-bpe")}


def pattern_for(pre: str | None) -> str:
    """The pre-tokenizer pattern a GGUF's `tokenizer.ggml.pre` names (GPT-2's by default)."""
    return PATTERNS.get(pre or "", GPT2_PATTERN)


CONTROL, USER_DEFINED = 3, 4  # llama.cpp token types that are matched whole, never merged


class PretrainedBPE:
    """Byte-level BPE with the ids, specials, EOS and chat template of a pretrained model."""

    kind = "pretrained-bpe"

    def __init__(
        self,
        ranks: dict[bytes, int],
        special_tokens: dict[str, int],
        pattern: str,
        vocab_size: int,
        eos_id: int | None,
        chat_template: str | None = None,
        bos_id: int | None = None,
    ) -> None:
        ids = [*ranks.values(), *special_tokens.values()]
        if ids and max(ids) >= vocab_size:
            raise TokenizerFormatError(
                f"token id {max(ids)} does not fit a vocabulary of {vocab_size}; "
                "the file's tokens and its vocabulary size disagree."
            )
        for what, i in (("end-of-sequence", eos_id), ("start-of-sequence", bos_id)):
            if i is not None and not 0 <= i < vocab_size:
                raise TokenizerFormatError(
                    f"the {what} id {i} is outside the vocabulary (0..{vocab_size - 1})."
                )
        self.missing = bytes(b for b in range(256) if bytes([b]) not in ranks)
        placeholders = {bytes([b]): vocab_size + k for k, b in enumerate(self.missing)}
        self.bpe = BPETokenizer(ranks | placeholders, special_tokens, pattern)
        self.ranks, self.pattern = ranks, pattern
        self._vocab_size, self.eos_id, self.bos_id = vocab_size, eos_id, bos_id
        self.chat_template = chat_template

    @classmethod
    def from_byte_level(
        cls,
        tokens: Sequence[str],
        token_types: Sequence[int] | None,
        merges: Sequence[str] | None,
        pattern: str,
        eos_id: int | None,
        chat_template: str | None = None,
        bos_id: int | None = None,
    ) -> "PretrainedBPE":
        """From a GGUF-style vocabulary: token strings in GPT-2's byte alphabet (id = index),
        llama.cpp token types (3 control, 4 user-defined: both become special tokens), the
        merge list (`"Ġ t"` lines, checked against the ids) and the pre-tokenizer pattern."""
        byte_of = {c: b for b, c in bytes_to_unicode().items()}
        types = list(token_types) if token_types is not None else [1] * len(tokens)
        ranks: dict[bytes, int] = {}
        special: dict[str, int] = {}
        for i, (token, kind) in enumerate(zip(tokens, types, strict=True)):
            if kind in (CONTROL, USER_DEFINED):
                special[token] = i
            elif all(c in byte_of for c in token) and token:
                ranks[bytes(byte_of[c] for c in token)] = i
            else:
                raise TokenizerFormatError(
                    f"token {i} ({token!r}) is not spelled in the byte-level alphabet; "
                    "this is not a byte-level BPE vocabulary."
                )
        check_merge_order(tokens, merges or [])
        return cls(ranks, special, pattern, len(tokens), eos_id, chat_template, bos_id)

    @classmethod
    def from_tokenizer_json(
        cls,
        path: str | os.PathLike,
        eos_id: int | None,
        chat_template: str | None = None,
        bos_id: int | None = None,
    ) -> "PretrainedBPE":
        """From a Hugging Face `tokenizer.json` holding a byte-level BPE model (Llama 3,
        SmolLM2, GPT-2 as `save_pretrained` writes them); added tokens become special tokens.

        The pre-tokenizer must be `ByteLevel` (GPT-2's pattern) or a `Split` on a regex
        followed by `ByteLevel` without its own regex; anything else is refused by name."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            model, pre = data["model"], data.get("pre_tokenizer") or {}
            vocab, merges = model["vocab"], model.get("merges", [])
            added = {t["content"]: t["id"] for t in data.get("added_tokens", [])}
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise TokenizerFormatError(
                f"{path} is not a readable tokenizer.json ({e}); re-save the tokenizer."
            ) from None
        if model.get("type") != "BPE" or data.get("normalizer") is not None:
            raise TokenizerFormatError(
                f"{path} is not a plain byte-level BPE tokenizer (model {model.get('type')!r}, "
                f"normalizer {data.get('normalizer')!r}); glassformer reads byte-level BPE only."
            )
        pattern = _hf_pattern(pre, path)
        tokens = [""] * (max([*vocab.values(), *added.values()]) + 1)
        types = [1] * len(tokens)
        for token, i in vocab.items():
            tokens[i] = token
        for token, i in added.items():
            tokens[i], types[i] = token, CONTROL
        merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
        return cls.from_byte_level(tokens, types, merges, pattern, eos_id, chat_template, bos_id)

    # ---- the tokenizer protocol ---------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    @property
    def eot_id(self) -> int | None:
        """The file's end-of-sequence id (SmolLM2: `<|im_end|>`), where generation stops."""
        return self.eos_id

    @property
    def special_tokens(self) -> dict[str, int]:
        return self.bpe.special.tokens

    def encode(
        self, text: str, allowed_special: AllOr = (), disallowed_special: AllOr = "all"
    ) -> list[int]:
        """The ids of `text`; special-token strings are handled as in `BPETokenizer.encode`
        (refused unless `allowed_special` names them; a rendered chat prompt passes "all")."""
        if self.lossless(text):
            return self.bpe.encode(text, allowed_special, disallowed_special)
        allowed, disallowed = self.bpe.special.resolve(allowed_special, disallowed_special)
        self.bpe.special.check(text, disallowed)
        ids: list[int] = []
        for part in self.bpe.special.split(text, allowed):
            if part in allowed:
                ids.append(self.bpe.special.tokens[part])
            else:
                ids.extend(self._encode_dropping(part))
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """The ids of `text` as plain text (special-token strings are just characters)."""
        if self.lossless(text):
            return self.bpe.encode_ordinary(text)
        return self._encode_dropping(text)

    def lossless(self, text: str) -> bool:
        """True if every byte of `text` has a token, so `decode(encode(text)) == text`."""
        if not self.missing:
            return True
        data = text.encode("utf-8", "surrogatepass")
        return len(data.translate(None, self.missing)) == len(data)

    def _encode_dropping(self, text: str) -> list[int]:
        """Pre-tokenize, drop the bytes without a token from each chunk, BPE what is left."""
        reference = self.bpe.reference
        ids: list[int] = []
        for chunk in reference.regex.findall(text):
            piece = chunk.encode("utf-8", "surrogatepass").translate(None, self.missing)
            if piece:
                ids.extend(reference.encode_piece(piece))
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """The text of `ids` (special tokens as their strings; broken UTF-8 as U+FFFD)."""
        self._check_ids(ids)
        return self.bpe.decode(ids)

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        """The bytes of `ids`: a streamed reply shows a character once all its bytes are in."""
        self._check_ids(ids)
        return self.bpe.decode_bytes(ids)

    def _check_ids(self, ids: Sequence[int]) -> None:
        bad = [i for i in ids if not 0 <= i < self._vocab_size]
        if bad:
            raise UserError(
                f"token id {bad[0]} is outside this tokenizer's vocabulary "
                f"(0..{self._vocab_size - 1}); decode ids produced by this tokenizer."
            )

    def template_tokens(self) -> dict[str, str]:
        """`bos_token` / `eos_token` as strings, the names chat templates use for them."""
        named = {"bos_token": self.bos_id, "eos_token": self.eos_id}
        return {name: self.decode([i]) for name, i in named.items() if i is not None}

    # ---- files --------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer file `path` and a `.vocab` listing (`<id> [token]` lines)."""
        lines = [
            header_line(self.kind),
            f"pattern {json.dumps(self.pattern)}",
            f"vocab_size {self._vocab_size}",
            f"eos {-1 if self.eos_id is None else self.eos_id}",
            f"bos {-1 if self.bos_id is None else self.bos_id}",
            f"chat_template {json.dumps(self.chat_template)}",
            f"tokens {len(self.ranks)}",
        ]
        by_id = sorted((i, t) for t, i in self.ranks.items())
        lines.extend(f"{i} {t.hex()}" for i, t in by_id)
        lines.append(f"special {len(self.special_tokens)}")
        lines.extend(f"{i} {json.dumps(s)}" for s, i in self.special_tokens.items())
        atomic_write_text(path, "\n".join(lines) + "\n")
        dump = [f"{i} [{render_token(t)}]" for i, t in by_id]
        dump.extend(f"{i} [{s}] (special)" for s, i in self.special_tokens.items())
        atomic_write_text(vocab_path(path), "\n".join(dump) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PretrainedBPE":
        lines = read_tokenizer_file(path, cls.kind)
        try:
            return cls._parse(lines)
        except (ValueError, TypeError, StopIteration, KeyError):
            raise TokenizerFormatError(
                f"{path} is truncated or damaged (a line does not match the {cls.kind} v1 "
                "format); save the tokenizer again."
            ) from None

    @classmethod
    def _parse(cls, lines: list[str]) -> "PretrainedBPE":
        it = iter(lines)

        def field(name: str) -> str:
            key, value = next(it).split(" ", 1)
            if key != name:
                raise ValueError(name)
            return value

        pattern = json.loads(field("pattern"))
        vocab_size = int(field("vocab_size"))
        eos, bos = int(field("eos")), int(field("bos"))
        template = json.loads(field("chat_template"))
        ranks: dict[bytes, int] = {}
        for _ in range(int(field("tokens"))):
            i, hexbytes = next(it).split(" ")
            ranks[bytes.fromhex(hexbytes)] = int(i)
        special: dict[str, int] = {}
        for _ in range(int(field("special"))):
            i, name = next(it).split(" ", 1)
            special[json.loads(name)] = int(i)
        if next(it, None) is not None or not isinstance(pattern, str):
            raise ValueError("trailing lines")
        eos_id, bos_id = (None if i < 0 else i for i in (eos, bos))
        return cls(ranks, special, pattern, vocab_size, eos_id, template, bos_id)


def _hf_pattern(pre: dict, path) -> str:
    """The one regex of a `tokenizer.json` pre-tokenizer (see `from_tokenizer_json`)."""
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    kinds = [step.get("type") for step in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        if not steps[0].get("add_prefix_space", False):
            return GPT2_PATTERN
    if kinds == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        split = steps[0]
        regex = split.get("pattern", {}).get("Regex")
        if regex and split.get("behavior") == "Isolated" and not split.get("invert"):
            return regex
    raise TokenizerFormatError(
        f"{path} pre-tokenizes with {' + '.join(map(str, kinds))}, which glassformer cannot "
        "express as one regex; it reads ByteLevel, or Split(regex) + ByteLevel."
    )


def check_merge_order(tokens: Sequence[str], merges: Sequence[str]) -> None:
    """Refuse merges whose results do not have increasing ids (ranks would then encode
    differently from the merge list), or that merge tokens the vocabulary lacks. Successive
    merges may make the same token (`formats.hf_merges` lists every split of a token).

    >>> check_merge_order(["a", "b", "ab", "abb"], ["a b", "ab b"])  # ids 2 then 3: fine
    >>> check_merge_order(["a", "b", "abb", "ab"], ["a b", "ab b"])  # 3 then 2: refused
    Traceback (most recent call last):
    ...
    glassformer.tokenizers.fileformat.TokenizerFormatError: merge 2 ('ab b') makes token 2, ...
    """
    index = {t: i for i, t in enumerate(tokens)}
    previous = -1
    for n, merge in enumerate(merges):
        left, _, right = merge.partition(" ")
        made = index.get(left + right)
        if made is None or left not in index or right not in index:
            raise TokenizerFormatError(
                f"merge {n + 1} ({merge!r}) is not a merge of two tokens into a third of the "
                "vocabulary; the file's merges and tokens do not belong together."
            )
        if made < previous:
            raise TokenizerFormatError(
                f"merge {n + 1} ({merge!r}) makes token {made}, which comes before the token of "
                "the merge ahead of it; glassformer encodes by token rank, so it cannot "
                "reproduce this merge order."
            )
        previous = made
