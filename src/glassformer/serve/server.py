"""Running the app: uvicorn in the foreground (`glassformer serve`) or in a background thread.

    with BackgroundServer(create_app(model, tokenizer, "mine")) as url:   # a free port
        OpenAI(base_url=url + "/v1", api_key="none").completions.create(...)

The background form serves a model from a notebook or a test while the same process goes on.
"""

import ipaddress
import threading

import uvicorn


def is_loopback(host: str) -> bool:
    """Is `host` reachable from this machine only (127.0.0.1, ::1, localhost)?"""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def config(
    app, host: str, port: int, log_level: str = "info", access_log: bool = False
) -> uvicorn.Config:
    """uvicorn's settings; no line per request unless `access_log` (it costs CPU per request)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=5,
    )


class BackgroundServer:
    """uvicorn in a daemon thread; `url` once started (port 0 picks a free port)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        self.server = uvicorn.Server(config(app, host, port, log_level))
        self.thread = threading.Thread(target=self.server.run, name="glassformer-http", daemon=True)
        self.url = ""

    def start(self) -> str:
        self.thread.start()
        while not self.server.started:  # set once its sockets listen: the url accepts
            if not self.thread.is_alive():
                raise RuntimeError("the server did not start (see its log above)")
            self.thread.join(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
