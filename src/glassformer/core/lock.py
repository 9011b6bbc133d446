"""One run per folder: an advisory lock on `FOLDER/.lock`, held while a run writes there.

    with FolderLock("runs/x", "glassformer train"):
        ...   # a second `glassformer train --out runs/x` now stops at once, in one sentence

The lock is `fcntl.flock` on a file inside the folder, so the kernel releases it when the
process ends, however it ends (a kill -9 leaves no stale lock behind). The file holds the
holder's pid and what it does, for the message the second run prints. Releasing deletes
the file (and the folder, if the lock made it and it is still empty), so a run that stopped
at a mistake leaves nothing behind; a lock taken on a file that was deleted meanwhile is
taken again on the new one, so two holders never coexist.
"""

import contextlib
import fcntl
import os
from pathlib import Path

from glassformer.errors import UserError

LOCK_NAME = ".lock"


class FolderLock:
    """An exclusive advisory lock on `folder` (created if missing) for `what`."""

    def __init__(self, folder: str | os.PathLike, what: str):
        self.folder, self.what = Path(folder), what
        self._fd: int | None = None
        self._made_folder = False

    @property
    def path(self) -> Path:
        return self.folder / LOCK_NAME

    def acquire(self) -> "FolderLock":
        if not self.folder.exists():
            self.folder.mkdir(parents=True)
            self._made_folder = True
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
                os.close(fd)
                self._remove_made_folder()
                raise UserError(
                    f"{self.folder} is in use by {holder or 'another process'}; wait for it "
                    "to finish or pass another --out"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder released (and deleted) it as we opened it: again
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} ({self.what})\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)  # while still held: no one else has it
            os.close(self._fd)
            self._fd = None
            self._remove_made_folder()

    def _remove_made_folder(self) -> None:
        if self._made_folder:
            try:
                self.folder.rmdir()  # only if the run wrote nothing there
            except OSError:
                pass

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def lock_for_run(folder: str | os.PathLike, what: str):
    """The lock a training run holds on its --out folder: taken by the main process only
    (under torchrun every process runs the command; RANK 0 writes the folder)."""
    if os.environ.get("RANK", "0") != "0":
        return contextlib.nullcontext()
    return FolderLock(folder, what)
