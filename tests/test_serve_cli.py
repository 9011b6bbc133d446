"""`glassformer serve` on the command line: it binds, serves and says what goes wrong."""

import re
import signal
import socket
import subprocess
import sys

import httpx
import pytest
import torch

from glassformer import GPT, GPTConfig
from glassformer.checkpoint import save
from glassformer.cli import main
from glassformer.tokenizers import CharTokenizer


def _checkpoint(path):
    tok = CharTokenizer("abcdefghijklmnopqrstuvwxyz :\n")
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=16)
    save(path, GPT(cfg).eval(), tok)
    return path


def test_serve_answers_over_http_and_stops(tmp_path):
    ckpt = _checkpoint(tmp_path / "tiny")
    cmd = [sys.executable, "-m", "glassformer", "serve", "--model", str(ckpt), "--port", "0"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # "serving 'tiny' at http://127.0.0.1:PORT/ (explorer) ..."
            found = re.search(r"at (http://127\.0\.0\.1:\d+)/ \(explorer\)", line)
            if found:
                break
        url = found.group(1)
        assert httpx.get(url + "/v1/models").json()["data"][0]["id"] == "tiny"
        r = httpx.post(url + "/v1/completions", json={"prompt": "ab", "max_tokens": 5})
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 5
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: uvicorn shuts down, then the CLI says so
        assert proc.wait(20) == 130


def test_public_host_without_key_warns_and_a_busy_port_is_one_sentence(tmp_path, capsys):
    busy = socket.socket()
    busy.bind(("0.0.0.0", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        args = ["serve", "--model", str(tmp_path / "missing"), "--host", "0.0.0.0"]
        assert main([*args, "--port", str(port)]) == 2
    finally:
        busy.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("warning: listening on 0.0.0.0 without --api-key")
    assert err[1].startswith(f"glassformer: error: cannot listen on 0.0.0.0:{port}")
    assert len(err) == 2


def test_bad_limits_are_user_errors(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path), "--max-batch", "0"]) == 2
    assert "--max-batch must be at least 1" in capsys.readouterr().err


def test_cors_and_decode_dtype_reach_the_app(tmp_path, monkeypatch, capsys):
    """`--cors` lets that origin's preflight through (and no other), `--decode-dtype` makes
    the worker decode on a copy in that dtype; checked on the app the command would serve."""
    import uvicorn
    from fastapi.testclient import TestClient

    ckpt = _checkpoint(tmp_path / "tiny")
    seen = {}

    def serve(self, sockets=None):  # instead of serving: look at the app it was given
        app = self.config.app
        seen["engine"] = app.state.glassformer.worker.engine
        with TestClient(app) as client:
            for origin in ("http://good.example", "http://evil.example"):
                r = client.options(
                    "/v1/completions",
                    headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
                )
                seen[origin] = r.headers.get("access-control-allow-origin")

    monkeypatch.setattr(uvicorn.Server, "run", serve)
    args = ["serve", "--model", str(ckpt), "--port", "0", "--cors", "http://good.example"]
    assert main([*args, "--decode-dtype", "bfloat16"]) == 0
    assert seen["http://good.example"] == "http://good.example"
    assert seen["http://evil.example"] is None
    decoder = seen["engine"].ctx.decode_model
    assert decoder is not None and next(decoder.parameters()).dtype == torch.bfloat16
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:  # argparse's choices: one line, status 2
        main(["serve", "--model", str(ckpt), "--decode-dtype", "int3"])
    assert exit_.value.code == 2 and "--decode-dtype" in capsys.readouterr().err
