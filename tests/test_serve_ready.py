"""`glassformer serve` prints its URL only once the URL accepts connections.

A client that connects the moment the "serving ... at http://..." line appears must get in,
even while another process keeps a core busy (the case where the line once came before
listen() and the connection was refused). No sleeps: the test reacts to the line itself;
the timeouts are only a safety net against a hung server.
"""

import queue
import re
import signal
import socket
import subprocess
import sys
import threading

import pytest
from test_serve_cli import _checkpoint

STARTS = 20
SAFETY_S = 120  # a hung server fails the test instead of hanging it


def _lines(stream) -> queue.Queue:
    """The lines of `stream` as they come (a thread reads it), then None at its end."""
    found: queue.Queue = queue.Queue()

    def read() -> None:
        for line in stream:
            found.put(line)
        found.put(None)

    threading.Thread(target=read, daemon=True).start()
    return found


def _announced(lines: queue.Queue) -> tuple[str, int]:
    """(host, port) from the serving line; everything before it is kept for the message."""
    seen = []
    while (line := lines.get(timeout=SAFETY_S)) is not None:
        seen.append(line)
        found = re.search(r"at http://(127\.0\.0\.1):(\d+)/ \(explorer\)", line)
        if found:
            return found.group(1), int(found.group(2))
    raise AssertionError("the server exited without announcing a URL:\n" + "".join(seen))


def _get_models(host: str, port: int) -> str:
    """GET /v1/models over a plain socket, connected at once; the status line."""
    with socket.create_connection((host, port), timeout=SAFETY_S) as conn:
        conn.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    return reply.split(b"\r\n", 1)[0].decode()


@pytest.mark.slow  # 20 starts of the CLI: about 5 s each on a busy 2-core machine
def test_the_announced_url_accepts_a_connection_at_once(tmp_path):
    ckpt = _checkpoint(tmp_path / "tiny")
    cmd = [sys.executable, "-m", "glassformer", "serve", "--model", str(ckpt), "--port", "0"]
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # a core kept busy
    refused = []
    try:
        for start in range(STARTS):
            proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
            try:
                host, port = _announced(_lines(proc.stderr))
                try:
                    status = _get_models(host, port)
                except ConnectionRefusedError:
                    refused.append(start)
                    continue
                assert status.split()[1] == "200", status
            finally:
                proc.send_signal(signal.SIGINT)
                proc.wait(SAFETY_S)
    finally:
        busy.kill()
        busy.wait()
    assert not refused, f"refused right after the URL was printed, {len(refused)} of {STARTS}"
