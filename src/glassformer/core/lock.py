"""One run per folder: an advisory lock on `FOLDER/.lock`, held while a run writes there.

    with FolderLock("runs/x", "training"):
        ...   # a second `glassformer train --out runs/x` now stops at once, in one sentence

The lock is `fcntl.flock` on a file inside the folder, so the kernel releases it when the
process ends, however it ends (a kill -9 leaves no stale lock behind). The file holds the
holder's pid and what it does, for the message the second run prints.
"""

import fcntl
import os
from pathlib import Path

from glassformer.errors import UserError

LOCK_NAME = ".lock"


class FolderLock:
    """An exclusive advisory lock on `folder` (created if missing) for `what` ("training")."""

    def __init__(self, folder: str | os.PathLike, what: str):
        self.folder, self.what = Path(folder), what
        self._fd: int | None = None

    def acquire(self) -> "FolderLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise UserError(
                f"{self.folder} is in use by {holder}; wait for it to finish or pass another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} ({self.what})\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
