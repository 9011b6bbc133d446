"""A checkpoint folder changes as one unit: `manifest.json` names each file, written last.

    DIR/manifest.json   {"manifest_version": 1, "step": 250,
                         "files": {"model.safetensors": {"size": 431, "sha256": "9f2c..."}, ...}}

A save never writes over the folder's files one by one (a kill between the weights and the
trainer state would leave them a step apart). It writes the new files into `DIR/.staging/`,
each fsynced, then `.staging/manifest.json` last: that rename is the commit. Only then are
the files renamed into `DIR` (same file system: each rename is atomic), the manifest last,
the folder fsynced and `.staging/` removed.

    kill before the commit   .staging/ has no manifest: ignored by readers, deleted by the
                             next writer; DIR still holds the previous save, whole
    kill after the commit    .staging/manifest.json describes the new save: readers take
                             each file from .staging/ or, once moved, from DIR; the next
                             writer finishes the moves (`recover`)

A reader checks every file against the manifest (size and SHA-256) from the very bytes it
then uses, so a folder whose parts disagree (edited by hand, damaged on disk) is refused in
one sentence instead of loading half of one step and half of another. A folder without a
manifest (written before it existed) loads unchecked, as it always did.
"""

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from glassformer.core.checked_paths import check_input_file
from glassformer.core.files import atomic_write_text, fsync_dir, remove_stale_temps
from glassformer.errors import UserError

MANIFEST = "manifest.json"
STAGING = ".staging"
MANIFEST_VERSION = 1
RETRIES = 40  # a reader racing a save in progress reads again (0.05 s apart)


def describe_files(folder: Path, step: int | None) -> dict:
    """The manifest of the files in `folder`: `{"manifest_version", "step", "files"}`."""
    files = {}
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.name != MANIFEST:
            data = f.read_bytes()
            files[f.name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return {"manifest_version": MANIFEST_VERSION, "step": step, "files": files}


def commit(staging: Path, step: int | None) -> dict:
    """Write the manifest of the files in `staging` (the commit point); return it."""
    manifest = describe_files(staging, step)
    atomic_write_text(staging / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def apply(folder: Path, manifest: dict, obsolete: tuple[str, ...]) -> None:
    """Move the committed files of `folder/.staging` into `folder`, the manifest last.

    Files a save may write but this one did not (`obsolete`, e.g. the trainer state of an
    earlier run) are deleted, so no file of another step lingers beside the new ones.
    """
    staging = folder / STAGING
    for name in manifest["files"]:
        if (staging / name).exists():  # moved already if an earlier apply was interrupted
            os.replace(staging / name, folder / name)
    for name in obsolete:
        if name not in manifest["files"]:
            (folder / name).unlink(missing_ok=True)
    os.replace(staging / MANIFEST, folder / MANIFEST)
    fsync_dir(folder)
    shutil.rmtree(staging, ignore_errors=True)
    fsync_dir(folder)


def recover(folder: Path, obsolete: tuple[str, ...]) -> str | None:
    """Bring `folder` back to one consistent save after a killed writer; say what was done.

    Only a writer (holding the folder) calls this: readers never change a folder.
    """
    for place in (folder, folder / STAGING):
        remove_stale_temps(place)
    staging = folder / STAGING
    if not staging.is_dir():
        return None
    committed = staging / MANIFEST
    if committed.is_file():
        manifest = _parse(committed)
        apply(folder, manifest, obsolete)
        return f"completed the interrupted save of step {manifest['step']} in {folder}"
    shutil.rmtree(staging)
    fsync_dir(folder)
    return f"discarded an unfinished save in {folder}; its previous checkpoint is intact"


def _parse(path: Path) -> dict:
    try:
        manifest = json.loads(check_input_file(path, "manifest").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        manifest = None
    ok = (
        isinstance(manifest, dict)
        and manifest.get("manifest_version") == MANIFEST_VERSION
        and isinstance(manifest.get("files"), dict)
        and all(
            isinstance(v, dict)
            and isinstance(v.get("size"), int)
            and isinstance(v.get("sha256"), str)
            for v in manifest["files"].values()
        )
        and (manifest.get("step") is None or type(manifest["step"]) is int)
    )
    if not ok:
        raise UserError(
            f"{path} is not a valid checkpoint manifest; restore it, or delete it to load the "
            "folder's files unchecked"
        )
    return manifest


def _current(folder: Path) -> tuple[dict | None, dict[str, Path]]:
    """The manifest of the newest committed save and where each of its files is now."""
    staged = folder / STAGING / MANIFEST
    if staged.is_file():  # committed, being moved (or the writer was killed while moving)
        manifest = _parse(staged)
        where = {}
        for name in manifest["files"]:
            in_staging = folder / STAGING / name
            where[name] = in_staging if in_staging.exists() else folder / name
        return manifest, where
    if (folder / MANIFEST).is_file():
        manifest = _parse(folder / MANIFEST)
        return manifest, {name: folder / name for name in manifest["files"]}
    return None, {}


class Snapshot:
    """The files of one save of `folder`, read and checked against its manifest.

    `read(name)` returns the bytes of file `name` (one of `names`) as the save wrote them
    (checked), or the file as it is when the folder has no manifest (`manifest` is then
    None); `has(name)` says whether the save holds a file, `size(name)` how big it is.
    """

    def __init__(self, folder: Path, names: tuple[str, ...]):
        self.folder = folder
        for attempt in range(RETRIES):
            try:
                self.manifest, self.data, self.where = self._read(names)
                return
            except _Mismatch as e:
                problem = e
            # a writer may be moving files in: read again (at once if no save is under way,
            # since the one that was has just finished)
            if (folder / STAGING).is_dir():
                time.sleep(0.05)
            elif attempt >= 2:
                break
        raise UserError(
            f"the files of {folder} disagree: {problem} (a file was changed after the save); "
            f"restore it, or delete {MANIFEST} there to load the files as they are"
        ) from None

    def _read(self, names: tuple[str, ...]) -> tuple[dict | None, dict[str, bytes], dict]:
        manifest, where = _current(self.folder)
        data = {}
        for name in names:
            if manifest is not None and name not in manifest["files"]:
                continue
            path = where.get(name, self.folder / name)
            if manifest is None and not path.is_file():
                continue
            if manifest is not None and not path.exists():
                raise _Mismatch(f"{name}, named in {MANIFEST}, is missing")
            try:
                data[name] = check_input_file(path, "checkpoint file").read_bytes()
            except FileNotFoundError:  # moved away between the check and the read
                raise _Mismatch(f"{name}, named in {MANIFEST}, is missing") from None
            if manifest is not None:
                want = manifest["files"][name]
                if len(data[name]) != want["size"] or (
                    hashlib.sha256(data[name]).hexdigest() != want["sha256"]
                ):
                    raise _Mismatch(f"{name} is not the file {MANIFEST} names")
        return manifest, data, where

    @property
    def step(self) -> int | None:
        return None if self.manifest is None else self.manifest["step"]

    def has(self, name: str) -> bool:
        if self.manifest is not None:
            return name in self.manifest["files"]
        return name in self.data or self.path(name).is_file()

    def size(self, name: str) -> int:
        if self.manifest is not None:
            return self.manifest["files"][name]["size"]
        return len(self.data[name]) if name in self.data else self.path(name).stat().st_size

    def read(self, name: str) -> bytes:
        return self.data[name]

    def path(self, name: str) -> Path:
        """Where file `name` of this save lies now (in the folder, or still in .staging/)."""
        return self.where.get(name, self.folder / name)


class _Mismatch(Exception):
    pass
