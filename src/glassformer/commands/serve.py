"""`glassformer serve`: a model behind an OpenAI-compatible HTTP API, and the live explorer.

    $ glassformer serve --model runs/shakespeare             # http://127.0.0.1:8000/
    $ glassformer serve --model smollm2 --max-batch 16 --port 8080

The explorer is the page at `/`; the API is under `/v1` (docs/serving.md).
"""

import argparse
import socket
import sys
from pathlib import Path

from glassformer.errors import UserError
from glassformer.generate.options import DECODE_DTYPES

BACKLOG = 2048  # uvicorn's default: connections queued before the loop accepts them


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a model: an OpenAI-compatible API and a live explorer in the browser",
        description="Serve --model over HTTP: POST /v1/completions and /v1/chat/completions "
        "(OpenAI's API, streaming included), the live explorer at /, and its JSON endpoints "
        "at /v1/inspect. Requests that arrive together are decoded together (continuous "
        "batching, up to --max-batch at once). Listens on 127.0.0.1 only unless --host says "
        "otherwise; put it behind a reverse proxy with TLS before exposing it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--model",
        required=True,
        metavar="DIR|FILE.gguf|NAME",
        help="a checkpoint folder, a .gguf file or a short name (smollm2)",
    )
    p.add_argument(
        "--name",
        default=None,
        help="the model's id in the API (default: the folder, file or short name)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (0: a free one)")
    p.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help="require 'Authorization: Bearer KEY' on every API request",
    )
    p.add_argument("--max-batch", type=int, default=8, metavar="N", help="requests decoded at once")
    p.add_argument(
        "--max-tokens-cap",
        type=int,
        default=1024,
        metavar="N",
        help="the largest max_tokens a request may ask for",
    )
    p.add_argument(
        "--cors",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let a web page from ORIGIN (e.g. http://localhost:3000) call the API from a "
        "browser (repeatable; default: none, same-origin only)",
    )
    p.add_argument(
        "--decode-dtype",
        choices=DECODE_DTYPES,
        default=None,
        help="run the one-token decode steps on a copy of the weights in this dtype (bfloat16, "
        "or int8 / int4 weight-only; CPU kernels); fewer bytes read per token, rounded logits "
        "(default: the model's own weights)",
    )
    p.add_argument("--access-log", action="store_true", help="log a line per request")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads per matrix product (default: torch's choice); 1 leaves the other "
        "cores to the HTTP side, which is faster for small models (docs/serving.md)",
    )
    p.set_defaults(func=run)


def bound_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, or a UserError saying why it cannot be (before the load)."""
    try:
        family, kind, proto = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][:3]
        sock = socket.socket(family, kind, proto)  # proto TCP: asyncio then sets TCP_NODELAY
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        raise _cannot_listen(host, port, e) from None
    return sock


def listen(sock: socket.socket, host: str, port: int) -> None:
    """Accept connections from now on: the kernel queues them until uvicorn's loop takes them,
    so a client that connects the moment the URL is printed gets in instead of a refusal."""
    try:
        sock.listen(BACKLOG)
    except OSError as e:
        raise _cannot_listen(host, port, e) from None


def _cannot_listen(host: str, port: int, e: OSError) -> UserError:
    return UserError(
        f"cannot listen on {host}:{port} ({e.strerror or e}); pick another --port or --host"
    )


def run(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from glassformer.checkpoint import load
    from glassformer.core.device import pick_device
    from glassformer.serve.app import create_app
    from glassformer.serve.server import config, is_loopback

    if args.max_batch < 1:
        raise UserError(f"--max-batch must be at least 1, got {args.max_batch}")
    if args.max_tokens_cap < 1:
        raise UserError(f"--max-tokens-cap must be at least 1, got {args.max_tokens_cap}")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be in 0..65535, got {args.port}")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be at least 1, got {args.threads}")
    if not is_loopback(args.host) and args.api_key is None:
        print(
            f"warning: listening on {args.host} without --api-key lets anyone who can reach "
            "this address use the model; set --api-key or serve behind a reverse proxy.",
            file=sys.stderr,
        )
    sock = bound_socket(args.host, args.port)  # a taken port fails before the load
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    model, tokenizer = load(args.model, pick_device(args.device), family="gpt")
    name = args.name or Path(args.model.rstrip("/")).stem
    app = create_app(
        model,
        tokenizer,
        name,
        api_key=args.api_key,
        max_batch=args.max_batch,
        max_tokens_cap=args.max_tokens_cap,
        cors=args.cors,
        decode_dtype=args.decode_dtype,
    )
    host, port = sock.getsockname()[:2]
    listen(sock, args.host, port)  # before the line below: a client may connect as it appears
    shown = f"[{host}]" if ":" in host else host
    print(
        f"serving {name!r} at http://{shown}:{port}/ (explorer) and http://{shown}:{port}/v1 "
        "(OpenAI API); Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.Server(config(app, args.host, port, access_log=args.access_log)).run(sockets=[sock])
    return 0
