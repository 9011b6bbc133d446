"""`glassformer serve` on the command line: it binds, serves and says what goes wrong."""

import re
import signal
import socket
import subprocess
import sys

import httpx
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
