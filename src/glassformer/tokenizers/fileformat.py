"""The tokenizer file format: a versioned text file, written atomically
(`core/files.py`).

Every tokenizer file starts with one header line naming its kind and format version::

    glassformer-tokenizer bpe v1

so that `load_tokenizer(path)` can dispatch on it and an old or foreign file is refused
with one clear sentence instead of a crash deep inside a parser. The body is kind-specific
text (see `char.py` and `bpe.py`). Next to every model file a human-readable dump is written
with the suffix `.vocab` (a checkpoint folder holds `tokenizer.model` + `tokenizer.vocab`).

Example: `read_tokenizer_file("t.model", "char")` on a file whose first line is
`glassformer-tokenizer char v1` returns the remaining lines; on a file whose first line is
`glassformer-tokenizer char v9` it raises `TokenizerFormatError`.
"""

import os
from pathlib import Path

from glassformer.errors import UserError

MAGIC = "glassformer-tokenizer"
FORMAT_VERSION = "v1"


class TokenizerFormatError(UserError):
    """A file that should hold a tokenizer is malformed, truncated or of another format."""


def header_line(kind: str) -> str:
    """First line of a tokenizer file: `header_line("bpe") -> "glassformer-tokenizer bpe v1"`."""
    return f"{MAGIC} {kind} {FORMAT_VERSION}"


def vocab_path(path: str | os.PathLike) -> Path:
    """The human-readable dump: `vocab_path("ckpt/tokenizer.model") -> ckpt/tokenizer.vocab`."""
    return Path(path).with_suffix(".vocab")


def resolve_model_path(path: str | os.PathLike) -> Path:
    """A tokenizer file, or a checkpoint folder holding one as `tokenizer.model`."""
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.model"
    if not path.is_file():
        raise UserError(
            f"no tokenizer file at {path}; pass a tokenizer file written by glassformer "
            "or a checkpoint folder that contains tokenizer.model."
        )
    return path


def read_header(path: str | os.PathLike) -> tuple[str, list[str]]:
    """Read a tokenizer file; return its kind (`"char"`, `"bpe"`) and the lines after the header."""
    path = resolve_model_path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise TokenizerFormatError(
            f"{path} is not a glassformer tokenizer file (it is not UTF-8 text, byte {e.start}); "
            "pass the tokenizer.model written by `glassformer tokenizer train` or a checkpoint."
        ) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    parts = lines[0].split(" ") if lines else []
    if len(parts) != 3 or parts[0] != MAGIC:
        raise TokenizerFormatError(
            f"{path} is not a glassformer tokenizer file (its first line should start with "
            f"'{MAGIC}'); pass the tokenizer.model written by glassformer or a checkpoint folder."
        )
    if parts[2] != FORMAT_VERSION:
        raise TokenizerFormatError(
            f"{path} uses tokenizer format {parts[2]} but this glassformer reads "
            f"{FORMAT_VERSION}; upgrade glassformer or re-train the tokenizer."
        )
    return parts[1], lines[1:]


def read_tokenizer_file(path: str | os.PathLike, kind: str) -> list[str]:
    """Read a tokenizer file that must be of `kind`; return the lines after the header."""
    found, lines = read_header(path)
    if found != kind:
        raise TokenizerFormatError(
            f"{path} holds a '{found}' tokenizer, not a '{kind}' one; "
            "use glassformer.tokenizers.load_tokenizer(path) to load any kind."
        )
    return lines
