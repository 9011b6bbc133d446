"""The corpus downloader, against a file server on 127.0.0.1 (there is no internet here)."""

import dataclasses
import functools
import hashlib
import http.server
import threading

import pytest

from glassformer import datasets
from glassformer.cli import main
from glassformer.datasets import fetch
from glassformer.errors import UserError


@pytest.fixture
def file_server(tmp_path):
    """Serve tmp_path/www over HTTP on a free loopback port; yields (base_url, folder)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", www
    server.shutdown()
    server.server_close()


def test_download_verifies_checksum_and_caches(
    file_server, shakespeare, tmp_path, capsys, monkeypatch
):
    # The repository holds an excerpt, not the whole corpus: describe the excerpt's digest and
    # size, so the real download path (stream, size cap, digest, rename, cache) checks it.
    excerpt = shakespeare.read_bytes()
    known = dataclasses.replace(
        datasets.DATASETS["shakespeare"],
        sha256=hashlib.sha256(excerpt).hexdigest(),
        size=len(excerpt),
    )
    monkeypatch.setitem(datasets.DATASETS, "shakespeare", known)
    url, www = file_server
    (www / "input.txt").write_bytes(shakespeare.read_bytes())
    dest = tmp_path / "data"
    assert main(["data", "shakespeare", "--url", f"{url}/input.txt", "--dir", str(dest)]) == 0
    path = dest / "tinyshakespeare.txt"
    assert capsys.readouterr().out.strip() == str(path)
    assert path.read_bytes() == shakespeare.read_bytes()
    (www / "input.txt").unlink()  # a second fetch uses the verified cached copy
    assert fetch("shakespeare", url=f"{url}/input.txt", dest_dir=dest) == path


def test_corrupted_download_leaves_nothing(file_server, tmp_path, capsys):
    url, www = file_server
    (www / "input.txt").write_text("First Citizen:\nthis is not the real file\n")
    dest = tmp_path / "data"
    assert main(["data", "shakespeare", "--url", f"{url}/input.txt", "--dir", str(dest)]) == 2
    err = capsys.readouterr().err
    assert "corrupted" in err and "Traceback" not in err
    assert not dest.exists()  # not even the folder it would have made


def test_unreachable_server_is_one_clear_error(file_server, tmp_path):
    url, _ = file_server
    with pytest.raises(UserError, match="could not download"):
        fetch("shakespeare", url=f"{url}/missing.txt", dest_dir=tmp_path / "d")
    assert not (tmp_path / "d").exists()
