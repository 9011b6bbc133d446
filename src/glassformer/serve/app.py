"""`create_app`: the FastAPI application of `glassformer serve`.

    app = create_app(model, tokenizer, name="default", max_batch=8)
    uvicorn.run(app, host="127.0.0.1", port=8000)        # or BackgroundServer (server.py)

It starts the worker thread (worker.py, which drives generate's engine) and mounts the OpenAI
endpoints (openai_api.py) and the explorer (explorer.py). Errors of every kind leave in OpenAI's
JSON shape (errors.py). FastAPI's own /docs pages are off: they load their scripts from a CDN.

`GET /health` answers 200 {"status": "ok"} without an API key (for a load balancer or a
container's health check). `cors` lists the origins whose browsers may call the API (Starlette's
CORSMiddleware: a preflight from one of them gets 200 and the Access-Control-Allow-* headers;
another origin gets none). `decode_dtype` runs the decode steps on a copy of the model in that
dtype (worker.py). Every response carries a `system_fingerprint` (`fingerprint`).
"""

import hashlib
from collections.abc import Sequence
from contextlib import asynccontextmanager
from importlib.metadata import version

import torch
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from glassformer.errors import UserError
from glassformer.generate import DECODE_DTYPES
from glassformer.serve import explorer, openai_api
from glassformer.serve.errors import HANDLERS
from glassformer.serve.state import ServerState
from glassformer.serve.worker import Worker


def create_app(
    model,
    tokenizer,
    name: str,
    api_key: str | None = None,
    max_batch: int = 8,
    max_tokens_cap: int = 1024,
    max_body: int = 2 * 2**20,
    cors: Sequence[str] = (),
    decode_dtype: str | None = None,
) -> FastAPI:
    """The app serving `model` under the id `name`; see `glassformer serve --help`."""
    if decode_dtype is not None and decode_dtype not in DECODE_DTYPES:
        raise UserError(
            f"the decode dtype must be one of {', '.join(DECODE_DTYPES)}, not {decode_dtype!r}"
        )
    worker = Worker(model, tokenizer, max_batch, decode_dtype)
    state = ServerState(worker, tokenizer, name, api_key, max_tokens_cap, max_body)
    state.fingerprint = fingerprint(model, name, decode_dtype)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        worker.close()

    app = FastAPI(
        title="glassformer", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    for kind, handler in HANDLERS.items():
        app.add_exception_handler(kind, handler)
    if cors:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors),
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    app.include_router(openai_api.router(state))
    app.include_router(explorer.router(state))
    app.state.glassformer = state
    return app


def fingerprint(model: torch.nn.Module, name: str, decode_dtype: str | None = None) -> str:
    """The `system_fingerprint` of every response: "fp_" and 16 hex digits of a BLAKE2b hash
    of the served name, glassformer's version, the decode dtype and every weight's name,
    shape, dtype and bytes. The same weights served the same way give the same fingerprint; a
    change of any of them (another fine-tune, another release) gives another."""
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{name}\0{version('glassformer')}\0{decode_dtype or 'float32'}".encode())
    for key, t in model.state_dict().items():
        h.update(f"\0{key}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return "fp_" + h.hexdigest()
