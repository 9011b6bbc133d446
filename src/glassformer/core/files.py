"""Atomic file writes: a reader sees the old file or the new one, never half of one.

    write(tmp) -> fsync(tmp) -> rename(tmp, path)

The temporary file lies in the same folder as `path` (a rename is atomic only within one
file system) and is removed if anything fails.
"""

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from glassformer.errors import UserError


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call `write(tmp_path)`, fsync the result and rename it to `path`."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(
            f"cannot write {path}: folder {path.parent} does not exist; create it first"
        )
    # a fresh name per write (two writers never share one); created with the umask's mode
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """`atomic_write` for UTF-8 text with '\\n' line ends."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)

    atomic_write(path, write)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
