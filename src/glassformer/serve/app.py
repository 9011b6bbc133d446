"""`create_app`: the FastAPI application of `glassformer serve`.

    app = create_app(model, tokenizer, name="default", max_batch=8)
    uvicorn.run(app, host="127.0.0.1", port=8000)        # or BackgroundServer (server.py)

It starts the worker thread (worker.py, which drives generate's engine) and mounts the OpenAI
endpoints (openai_api.py) and the explorer (explorer.py). Errors of every kind leave in OpenAI's
JSON shape (errors.py). FastAPI's own /docs pages are off: they load their scripts from a CDN.
"""

from contextlib import asynccontextmanager

from fastapi import FastAPI

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
) -> FastAPI:
    """The app serving `model` under the id `name`; see `glassformer serve --help`."""
    worker = Worker(model, tokenizer, max_batch)
    state = ServerState(worker, tokenizer, name, api_key, max_tokens_cap, max_body)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        worker.close()

    app = FastAPI(
        title="glassformer", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    for kind, handler in HANDLERS.items():
        app.add_exception_handler(kind, handler)
    app.include_router(openai_api.router(state))
    app.include_router(explorer.router(state))
    app.state.glassformer = state
    return app
