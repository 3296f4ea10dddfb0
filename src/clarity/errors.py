"""One error format for every 4xx and 5xx: ``application/problem+json`` (RFC 9457).

Each problem has a stable ``type`` (``urn:clarity:problem:<code>``) and ``code`` that
clients can switch on. Validation errors name the field but never echo the input (it may
be PHI). A 500 carries the request id and nothing else.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from clarity.logging import redact_text

PROBLEM_JSON = "application/problem+json"


class AppError(Exception):
    """An expected failure with a stable code, turned into a problem response."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}


def not_found(resource: str = "resource") -> AppError:
    return AppError(404, "not_found", f"The {resource} does not exist or is not yours to see.")


def problem(
    status: int,
    code: str,
    detail: str | None = None,
    *,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:clarity:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    if request_id:
        body["request_id"] = request_id
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem(
        exc.status,
        exc.code,
        exc.detail,
        request_id=_request_id(request),
        headers=exc.headers,
        extra=exc.extra,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No such route."
    return problem(
        exc.status_code,
        code,
        detail,
        request_id=_request_id(request),
        headers=dict(exc.headers) if exc.headers else None,
    )


def _without_input(message: str, value: Any) -> str:
    """Validation messages must not echo what was sent (it may be PHI)."""
    if isinstance(value, str) and len(value) >= 3:
        message = message.replace(value, "[value]")
    return redact_text(message)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": ".".join(str(part) for part in err.get("loc", ())),
            "message": _without_input(err.get("msg", "invalid"), err.get("input")),
            "type": err.get("type", "value_error"),
        }
        for err in exc.errors()
    ]
    fields = ", ".join(e["field"] for e in errors)
    return problem(
        422,
        "validation_error",
        f"The request is invalid: check {fields}.",
        request_id=_request_id(request),
        extra={"errors": errors},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # Unexpected exceptions are caught by the request middleware (clarity.http), which
    # answers a bare 500 carrying the request id, with the usual headers.
