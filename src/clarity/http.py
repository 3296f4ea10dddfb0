"""HTTP hygiene for every request, in one pure-ASGI pass (cheap on the hot path).

Request id (taken from ``X-Request-ID`` or generated, echoed, bound to every log line),
security headers, ``Cache-Control: no-store`` on the API, a body size limit, the per-client
rate limit, one access log line with the route template (never the raw path with ids),
and a bare problem+json 500 for anything unexpected.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from typing import Any

import structlog
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clarity.auth.tokens import InvalidToken, TokenCodec
from clarity.cache import Cache
from clarity.config import Settings
from clarity.errors import AppError, problem
from clarity.logging import get_logger

log = get_logger("clarity.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
_DOCS_PATHS = ("/docs", "/redoc", "/static/docs")
_API_CSP = b"default-src 'none'; frame-ancestors 'none'"
_DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; frame-ancestors 'none'"
)


class BodyTooLarge(StarletteHTTPException):
    """The streamed body passed the configured limit (an HTTP error so FastAPI re-raises it)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(413, f"The request body is larger than {limit} bytes.")


def client_address(scope: Scope, trust_forwarded_for: bool) -> str:
    if trust_forwarded_for:
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                forwarded: str = value.decode("latin-1")
                return forwarded.split(",")[0].strip()
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class RequestMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings, cache: Cache, tokens: TokenCodec) -> None:
        self.app = app
        self.settings = settings
        self.cache = cache
        self.tokens = tokens
        self._static_headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (
                b"strict-transport-security",
                f"max-age={settings.hsts_seconds}; includeSubDomains".encode(),
            ),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = self._request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        address = client_address(scope, self.settings.trust_forwarded_for)
        scope["state"]["client_address"] = address
        structlog.contextvars.bind_contextvars(request_id=request_id)
        path: str = scope["path"]
        is_docs = path.startswith(_DOCS_PATHS) or path == "/openapi.json"
        status_holder = [0]
        extra_headers = [
            *self._static_headers,
            (b"x-request-id", request_id.encode()),
            (b"content-security-policy", _DOCS_CSP if is_docs else _API_CSP),
        ]
        if not is_docs:
            extra_headers.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                message["headers"] = list(message.get("headers", [])) + extra_headers
            await send(message)

        try:
            rejection = await self._reject_early(scope, address, request_id)
            if rejection is not None:
                await rejection(scope, receive, send_with_headers)
                return
            await self.app(
                scope, self._limited(receive, self._body_limit(scope)), send_with_headers
            )
        except BodyTooLarge as exc:
            if status_holder[0] == 0:
                await self._too_large(request_id, exc.limit)(scope, receive, send_with_headers)
        except Exception as exc:
            # The exception class only: driver messages can quote SQL and values.
            log.error("request.unhandled_error", error=type(exc).__name__, exc_info=False)
            if status_holder[0] == 0:
                await problem(500, "internal_error", request_id=request_id)(
                    scope, receive, send_with_headers
                )
        finally:
            log.info(
                "request",
                method=scope["method"],
                route=route_template(scope),
                status=status_holder[0],
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")

    @staticmethod
    def _request_id(scope: Scope) -> str:
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                candidate: str = value.decode("latin-1")
                if _REQUEST_ID.match(candidate):
                    return candidate
                break
        return uuid.uuid4().hex

    def _body_limit(self, scope: Scope) -> int:
        """Biometric uploads (paths ending in ``/biometrics``) and file imports (``/imports``,
        streamed to disk) have their own, larger limits."""
        path = str(scope.get("path", "")).rstrip("/")
        if path.endswith("/biometrics"):
            return self.settings.max_ingest_bytes
        if path.endswith("/imports"):
            return self.settings.max_import_bytes
        return self.settings.max_body_bytes

    async def _reject_early(self, scope: Scope, address: str, request_id: str) -> Any:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self._body_limit(scope)
                except ValueError:
                    return problem(
                        400, "bad_request", "Invalid Content-Length header.", request_id=request_id
                    )
                if too_big:
                    return self._too_large(request_id, self._body_limit(scope))
        if scope["path"].startswith("/health/"):
            return None
        return await self._rate_limit(scope, address, request_id)

    async def _rate_limit(self, scope: Scope, address: str, request_id: str) -> Any:
        """Per-address and per-account limits, counted together in one cache round trip.
        The account is read from a valid bearer token (verified tokens are remembered by
        the codec, so authentication later costs nothing more)."""
        keys = [f"rl:ip:{address}"]
        subject = self._token_subject(scope)
        if subject is not None:
            keys.append(f"rl:user:{subject}")
        window = self.settings.rate_limit_window_seconds
        counts = await self.cache.incr_many(keys, window)
        limits = [self.settings.rate_limit_per_ip, self.settings.rate_limit_per_user]
        for (count, reset), limit in zip(counts, limits, strict=False):
            if count > limit:
                return rate_limited(reset, request_id)
        return None

    def _token_subject(self, scope: Scope) -> str | None:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer" or not token:
                    return None
                try:
                    return str(self.tokens.decode(token.strip(), "access").subject)
                except InvalidToken:
                    return None
        return None

    def _too_large(self, request_id: str, limit: int) -> Any:
        return problem(
            413,
            "payload_too_large",
            f"The request body is larger than {limit} bytes.",
            request_id=request_id,
        )

    def _limited(self, receive: Receive, limit: int) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return counted


def route_template(scope: Scope) -> str:
    """The matched route with its parameters named (``/users/{user_id}``), never raw ids.

    The matched route knows its own template; the request path supplies any prefix it
    was mounted under (same number of trailing segments)."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if route is None or template is None:
        return "unmatched"
    path: str = scope.get("path", "")
    if "{" not in template:
        return path
    tail = template.strip("/").split("/")
    segments = path.strip("/").split("/")
    prefix = segments[: max(0, len(segments) - len(tail))]
    return "/" + "/".join(prefix + tail)


def retry_after(reset_seconds: float) -> str:
    """Whole seconds until a window resets, never less than 1 (the Retry-After value)."""
    return str(max(1, math.ceil(reset_seconds)))


async def exceeded(cache: Cache, key: str, limit: int, window: int) -> float | None:
    """Count one request in ``key``'s fixed window (shared through the cache); return the
    seconds until the window resets when the limit is exceeded, else None."""
    count, reset = await cache.incr(key, window)
    return reset if count > limit else None


def too_many(detail: str, reset_seconds: float) -> AppError:
    return AppError(
        429, "rate_limited", detail, headers={"Retry-After": retry_after(reset_seconds)}
    )


def rate_limited(reset_seconds: float, request_id: str | None = None) -> Any:
    seconds = retry_after(reset_seconds)
    return problem(
        429,
        "rate_limited",
        f"Too many requests; retry after {seconds} seconds.",
        request_id=request_id,
        headers={"Retry-After": seconds},
    )
