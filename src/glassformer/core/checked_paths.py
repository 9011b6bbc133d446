"""Paths a command writes or reads, checked before any work is done.

    check_output_dir("runs/x", inputs=["corpus.txt"])    the --out folder of a run
    check_output_file("tok.model", inputs=["corpus.txt"])  a --out file
    check_input_file("corpus.txt", "--data")             a file to read

Each refuses in one sentence (`UserError`) what would otherwise fail halfway through a run
or quietly do harm:

- an output that is a device, a FIFO or a socket (writing "to" /dev/sda replaces the device
  node with a regular file when run as root), or one of the command's own inputs;
- a folder expected where a file is (and a file where a folder is), a path under a file,
  a dangling symbolic link, a place this user cannot write;
- an input that is not a regular file (a FIFO would block the reader forever, /dev/zero
  would fill the memory); these are refused from `os.stat`, without opening them.
"""

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from glassformer.errors import UserError


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _stat(path: Path) -> os.stat_result | None:
    """`os.stat(path)` (following links), None if nothing is there; refuses a dangling link."""
    try:
        return path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise UserError(
                f"{path} is a symbolic link to {os.readlink(path)}, which does not exist; "
                "remove the link or pass another path"
            ) from None
        return None
    except NotADirectoryError:
        raise UserError(f"cannot use {path}: a part of that path is a file, not a folder") from None
    except OSError as e:
        raise UserError(f"cannot use {path} ({e.strerror}); pass another path") from None


def _check_creatable(path: Path, flag: str) -> None:
    """`path` does not exist yet: its nearest existing ancestor must be a writable folder."""
    parent = path.parent
    while True:
        st = _stat(parent)
        if st is not None:
            break
        if parent == parent.parent:
            return
        parent = parent.parent
    if not stat.S_ISDIR(st.st_mode):
        raise UserError(
            f"cannot create {flag} {path}: {parent} is {_kind(st.st_mode)}, not a folder; "
            "pass a path in a folder"
        )
    _check_writable(parent, flag, path)


def _check_writable(folder: Path, flag: str, path: Path) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(
            f"cannot write {flag} {path}: the folder {folder} is not writable for this user; "
            "pass a path in a folder you can write"
        )
    try:
        read_only = os.statvfs(folder).f_flag & os.ST_RDONLY
    except OSError:
        read_only = False
    if read_only:
        raise UserError(
            f"cannot write {flag} {path}: {folder} is on a read-only file system; "
            "pass a path on a writable one"
        )


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def _check_not_input(path: Path, inputs: Iterable, flag: str) -> None:
    for given in inputs:
        if given and _same(path, Path(given)):
            raise UserError(
                f"{flag} {path} is also an input of this command; writing it would destroy "
                "the input, so pass another output path"
            )


def check_output_file(path: str | os.PathLike, inputs: Iterable = (), flag: str = "--out") -> Path:
    """`path` may be written as a file: a regular file (replaced) or a new name in a
    writable folder that exists. Returns `path`."""
    path = Path(path)
    st = _stat(path)
    if st is None:
        if not path.parent.is_dir():
            _check_creatable(path.parent, flag)  # names the file or read-only place in the way
            raise UserError(
                f"cannot write {flag} {path}: the folder {path.parent} does not exist; create it"
            )
        _check_writable(path.parent, flag, path)
    elif not stat.S_ISREG(st.st_mode):
        raise UserError(
            f"{flag} {path} is {_kind(st.st_mode)}, not a file glassformer may replace; "
            "pass the path of a file"
        )
    else:
        _check_writable(path.parent, flag, path)
    _check_not_input(path, inputs, flag)
    return path


def check_output_dir(
    path: str | os.PathLike, inputs: Iterable = (), files: Iterable[str] = (), flag: str = "--out"
) -> Path:
    """`path` may be used as an output folder: an existing writable folder, or a new one whose
    nearest existing ancestor is a writable folder. `files` are the names the command will
    write in it; each must be absent or a regular file, and none an input. Returns `path`."""
    path = Path(path)
    st = _stat(path)
    if st is None:
        _check_creatable(path, flag)
        return path
    if not stat.S_ISDIR(st.st_mode):
        raise UserError(
            f"{flag} {path} is {_kind(st.st_mode)}, but a folder is needed there; "
            "pass a folder (it is created if missing)"
        )
    _check_writable(path, flag, path)
    for name in files:
        check_output_file(path / name, inputs, flag)
    _check_not_input(path, inputs, flag)
    return path


def check_input_file(path: str | os.PathLike, flag: str) -> Path:
    """`path` is a regular file to read (checked with stat: a FIFO or device is never opened)."""
    path = Path(path)
    st = _stat(path)
    if st is None:
        raise UserError(f"{flag}: no such file: {path}; pass an existing file")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(
            f"{flag} {path} is {_kind(st.st_mode)}, not a regular file; pass a file to read"
        )
    return path
