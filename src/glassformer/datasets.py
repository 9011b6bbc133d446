"""Downloading known corpora into the cache, checked against a SHA-256 digest.

    >>> path = fetch("shakespeare")      # doctest: +SKIP
    >>> path.name
    'tinyshakespeare.txt'

The file is streamed to a temporary name, its digest checked, and only then renamed into
place: a failed or corrupted download never leaves a file that looks complete. A download
stops as soon as it grows past the corpus's known size, so a wrong `url` cannot fill the
disk.
"""

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from glassformer.core.checked_paths import check_output_dir
from glassformer.core.files import fsync_dir
from glassformer.core.paths import cache_dir
from glassformer.errors import UserError


@dataclass(frozen=True)
class Dataset:
    filename: str
    url: str
    sha256: str
    size: int
    about: str


DATASETS = {
    "shakespeare": Dataset(
        filename="tinyshakespeare.txt",
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        size=1_115_394,
        about="40,000 lines of Shakespeare (Karpathy's char-rnn corpus), 1.1 MB",
    ),
}


def fetch(name: str, url: str | None = None, dest_dir: Path | None = None, progress=None) -> Path:
    """Download dataset `name` (from `url` if given) into `dest_dir`; return its path."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    ds = DATASETS[name]
    dest_dir = Path(dest_dir) if dest_dir else cache_dir() / "data"
    check_output_dir(dest_dir, files=[ds.filename], flag="--dir")
    path = dest_dir / ds.filename
    if path.is_file() and _sha256(path) == ds.sha256:
        return path
    created = not dest_dir.exists()
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    digest = hashlib.sha256()
    try:
        try:
            with (
                urllib.request.urlopen(url or ds.url, timeout=60) as response,
                open(tmp, "wb") as f,
            ):
                received = 0
                while chunk := response.read(1 << 16):
                    received += len(chunk)
                    if received > ds.size:
                        raise UserError(
                            f"the download of {name} from {url or ds.url} is larger than the "
                            f"corpus ({ds.size:,} bytes); check the address given to --url"
                        )
                    digest.update(chunk)
                    f.write(chunk)
                    if progress:
                        progress(len(chunk))
                f.flush()
                os.fsync(f.fileno())
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise UserError(
                f"could not download {name} from {url or ds.url} ({e}); check the network, or "
                f"place the file at {path} yourself"
            ) from None
        if digest.hexdigest() != ds.sha256:
            raise UserError(
                f"the download of {name} is corrupted (SHA-256 {digest.hexdigest()[:12]}…, "
                f"expected {ds.sha256[:12]}…); try again or use another --url"
            )
        os.replace(tmp, path)
        fsync_dir(dest_dir)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if created:  # a failed download leaves nothing behind, not even its folder
            dest_dir.rmdir()
        raise
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
