"""Atomic file writes: a reader sees the old file or the new one, never half of one.

    write(tmp) -> fsync(tmp) -> rename(tmp, path) -> fsync(folder)

The temporary file lies in the same folder as `path` (a rename is atomic only within one
file system), is named `.NAME.PID.RANDOM.tmp` and is removed if anything fails; a process
killed mid-write leaves it behind, and `remove_stale_temps` deletes those whose process is
gone. Files get the umask's mode (0644 under the usual umask 022), as `open` creates them,
even when the writer creates them private (safetensors writes 0600). Syncing the folder
after the rename makes the new name itself durable: after a power cut the file is the old
one or the new one, not missing.
"""

import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

from glassformer.errors import UserError

TEMP_NAME = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$")


def temp_path(path: Path) -> Path:
    """A fresh temporary name beside `path` (two writers never share one)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def fsync_file(path: str | os.PathLike) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make the names in `folder` (renames, new files) durable."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the rename still happened
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call `write(tmp_path)`, fsync the result, rename it to `path` and sync the folder."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(
            f"cannot write {path}: folder {path.parent} does not exist; create it first"
        )
    tmp = temp_path(path)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
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


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (the only way to read it)
    os.umask(mask)
    return mask


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files in `folder` whose writing process no longer runs.

    `.model.safetensors.4242.0a1b2c3d.tmp` is stale once process 4242 is gone (killed in
    the middle of a write); a live writer's temporary file is left alone. Returns the
    deleted paths.
    """
    removed = []
    for entry in Path(folder).iterdir() if Path(folder).is_dir() else ():
        match = TEMP_NAME.match(entry.name)
        if match and entry.is_file() and not _alive(int(match.group(1))):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process writes one file at a time, inside atomic_write
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
