"""`glassformer serve`: an OpenAI-compatible HTTP API and a live explorer, for any model.

    worker.py       Worker: the thread that owns the model and drives generate's engine for
                    every request (continuous batching: one forward per step for all; prompts
                    that arrive together prefilled together); text pieces and stop strings
    params.py       the request body (size cap, UTF-8, JSON) and typed parameters
    chat.py         messages -> prompt: the model's chat template, or a plain transcript
    choices.py      the n choices of a request, their events, OpenAI's logprob shapes
    shapes.py       a completion vs a chat completion: how each writes its JSON
    openai_api.py   /v1/models, /v1/completions, /v1/chat/completions (JSON and SSE)
    explorer.py     / (the page in assets/) and /v1/inspect (tokens, next token, attention,
                    logit lens)
    errors.py       OpenAI's error shape;  state.py  what the endpoints share (limits, key)
    app.py          create_app;  server.py  uvicorn in the foreground or a background thread

docs/serving.md shows the commands, clients and measured load.
"""

from glassformer.serve.app import create_app
from glassformer.serve.server import BackgroundServer

__all__ = ["BackgroundServer", "create_app"]
