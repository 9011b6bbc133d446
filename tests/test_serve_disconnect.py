"""A client that leaves in the middle of its request body (issue 26, D5): the server logs one
line for it, never a traceback, and goes on serving."""

import logging
import socket
import threading

import httpx
import torch

from glassformer import GPT, GPTConfig
from glassformer.serve import BackgroundServer, create_app
from glassformer.tokenizers import CharTokenizer

TEXT = "the quick brown fox jumps over the lazy dog. " * 4


class _Records(logging.Handler):
    """Every record of the server's log, kept; `wait(n)` until there are n."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.arrived = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.arrived:
            self.records.append(record)
            self.arrived.notify_all()

    def wait(self, n: int, seconds: float = 60) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.records) >= n, seconds), self.records


def test_a_client_that_leaves_mid_body_is_one_log_line_and_no_traceback():
    tok = CharTokenizer.train(TEXT)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=2,
                          n_embd=16)).eval()  # fmt: skip
    app = create_app(model, tok, "tiny", max_batch=2, max_tokens_cap=20)
    server = BackgroundServer(app)  # configures uvicorn's loggers: listen after this
    log = logging.getLogger("uvicorn.error")
    records = _Records()
    log.addHandler(records)
    try:
        with server as url:
            host, port = url.removeprefix("http://").split(":")
            for n in range(1, 4):  # three clients: Content-Length 1000, 14 bytes, gone
                with socket.create_connection((host, int(port))) as s:
                    s.sendall(
                        b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                        b"application/json\r\nContent-Length: 1000\r\n\r\n" + b'{"prompt": "th'
                    )
                records.wait(n)  # the server noticed this client leaving
            r = httpx.post(url + "/v1/completions", timeout=30,
                           json={"prompt": "the", "max_tokens": 3, "temperature": 0})  # fmt: skip
            assert r.status_code == 200
    finally:
        log.removeHandler(records)
    lines = [(r.levelname, r.getMessage()) for r in records.records]
    assert all(r.exc_info is None for r in records.records), lines  # no traceback
    assert len(lines) == 3, lines
    assert all("closed the connection after 14 of 1000 bytes" in m for _, m in lines), lines
