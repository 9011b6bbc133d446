"""`ServerState`: what every endpoint reads: the worker, the tokenizer, the limits, the key."""

import asyncio
import hmac
import time
from dataclasses import dataclass, field

from fastapi import Depends, Request

from glassformer.generate import STRATEGIES
from glassformer.serve.choices import Mailbox
from glassformer.serve.errors import APIError
from glassformer.serve.worker import Worker


@dataclass
class ServerState:
    worker: Worker
    tokenizer: object
    name: str  # the model's id in /v1/models; requests naming another model get a 404
    api_key: str | None = None
    max_tokens_cap: int = 1024
    max_body: int = 2 * 2**20
    created: int = field(default_factory=lambda: int(time.time()))
    fingerprint: str = ""  # every response's system_fingerprint (app.py: fingerprint)
    _mailbox: Mailbox | None = None

    def mailbox(self) -> Mailbox:
        """The running event loop's mailbox for events from the worker thread."""
        loop = asyncio.get_running_loop()
        if self._mailbox is None or self._mailbox.loop is not loop:
            if self._mailbox is not None:
                self.worker.listeners.remove(self._mailbox.flush)
            self._mailbox = Mailbox(loop)
            self.worker.listeners.append(self._mailbox.flush)
        return self._mailbox

    @property
    def model(self):
        return self.worker.model

    @property
    def auth(self):
        """A FastAPI dependency: 401 unless the request carries `Authorization: Bearer KEY`."""

        async def check(request: Request) -> None:
            if self.api_key is None:
                return
            given = request.headers.get("authorization", "")
            scheme, _, key = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                key.strip().encode(), self.api_key.encode()
            ):
                raise APIError(
                    401,
                    "missing or wrong API key; send the server's --api-key as "
                    "'Authorization: Bearer KEY'",
                    code="invalid_api_key",
                )

        return Depends(check)

    def check_model(self, name: str | None) -> None:
        if name is not None and name != self.name:
            raise APIError(
                404,
                f"the model {name!r} does not exist; this server serves {self.name!r}",
                param="model",
                code="model_not_found",
            )

    def check_length(self, n: int, param: str) -> None:
        block = self.model.config.block_size
        if n > block:
            raise APIError(
                413,
                f"the {param} is {n} tokens, longer than the model's context of {block}; "
                "send a shorter one",
                param=param,
                code="context_length_exceeded",
            )

    def per_token(self, strategy: str) -> bool:
        return STRATEGIES[strategy].per_token

    def model_card(self) -> dict:
        return {
            "id": self.name,
            "object": "model",
            "created": self.created,
            "owned_by": "glassformer",
        }
