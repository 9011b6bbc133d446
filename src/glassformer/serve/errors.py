"""Errors in OpenAI's JSON shape, so an OpenAI client raises its usual exception types.

HTTP 400  {"error": {"message": "temperature must be in [0, inf), got -1.0",
                     "type": "invalid_request_error", "param": "temperature", "code": null}}

400  a bad parameter (named in `param`), malformed JSON, a body that is not UTF-8
401  a missing or wrong API key (`--api-key`)
404  an unknown model or path
413  a prompt longer than the model's context, or a body over the size limit
500  the model failed on a request (the server keeps running)
"""

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

TYPES = {401: "authentication_error", 404: "not_found_error", 500: "server_error"}


class APIError(Exception):
    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict:
        kind = TYPES.get(self.status, "invalid_request_error")
        return {
            "error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}
        }

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


async def api_error(request: Request, exc: APIError) -> JSONResponse:
    return exc.response()


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Starlette's own errors (an unknown path, a wrong method) in the same shape."""
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return APIError(exc.status_code, message, code=None).response()


async def server_error(request: Request, exc: Exception) -> JSONResponse:
    return APIError(
        500, f"the server failed on this request ({type(exc).__name__}: {exc})"
    ).response()


HANDLERS = {APIError: api_error, HTTPException: http_error, Exception: server_error}
