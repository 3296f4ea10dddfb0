"""HTTP hygiene on every response: security headers, request ids, problem+json errors,
body size limit, bare 500s, CORS, and the offline API documentation."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from clarity.auth.dependencies import public
from tests.conftest import Harness

HarnessFactory = Callable[..., Awaitable[Harness]]
HEX32 = re.compile(r"^[0-9a-f]{32}$")
PROBLEM_FIELDS = {"type", "title", "status", "code", "request_id"}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = response.json()
    assert body.keys() >= PROBLEM_FIELDS
    assert body["type"] == f"urn:clarity:problem:{code}"
    assert body["status"] == status
    assert body["code"] == code
    assert isinstance(body["title"], str)
    assert body["title"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


# --- Security headers ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/auth/me", "/health/live", "/api/v1/no-such-route"])
async def test_api_responses_carry_security_headers(h: Harness, path: str) -> None:
    response = await h.client.get(path)
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert re.fullmatch(r"max-age=\d+; includeSubDomains", headers["strict-transport-security"])
    assert int(headers["strict-transport-security"].split(";")[0].split("=")[1]) > 0
    assert headers["cache-control"] == "no-store"
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp


# --- Request id ---------------------------------------------------------------------------


async def test_valid_request_id_is_echoed(h: Harness) -> None:
    sent = "client-trace_01.ABC"
    response = await h.client.get("/api/v1/auth/me", headers={"X-Request-ID": sent})
    assert response.headers["x-request-id"] == sent
    assert response.json()["request_id"] == sent


async def test_missing_request_id_is_generated(h: Harness) -> None:
    first = await h.client.get("/health/live")
    second = await h.client.get("/health/live")
    assert HEX32.match(first.headers["x-request-id"])
    assert HEX32.match(second.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize("bad", ["has spaces in it", "x" * 200, "semi;colon", 'quote"d'])
async def test_invalid_request_id_is_replaced(h: Harness, bad: str) -> None:
    response = await h.client.get("/api/v1/auth/me", headers={"X-Request-ID": bad})
    echoed = response.headers["x-request-id"]
    assert echoed != bad
    assert HEX32.match(echoed)
    assert response.json()["request_id"] == echoed


# --- Problem responses --------------------------------------------------------------------


async def test_unknown_route_is_a_404_problem(h: Harness) -> None:
    response = await h.client.get("/api/v1/definitely-not-here")
    assert_problem(response, 404, "not_found")


async def test_wrong_method_is_a_405_problem(h: Harness) -> None:
    response = await h.client.get("/api/v1/auth/login")
    assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]


async def test_validation_error_names_the_field_but_not_the_value(h: Harness) -> None:
    canary = "canary-value-xyz"
    response = await h.client.post(
        "/api/v1/auth/login", json={"email": canary, "password": "x", "totp_code": canary}
    )
    body = assert_problem(response, 422, "validation_error")
    errors = body["errors"]
    assert isinstance(errors, list)
    fields = {e["field"] for e in errors}
    assert fields == {"body.email", "body.totp_code"}
    assert all(e["message"] and e["type"] for e in errors)
    assert canary not in response.text


async def test_missing_field_and_malformed_json_are_validation_problems(h: Harness) -> None:
    missing = await h.client.post("/api/v1/auth/login", json={"email": "a@clinic.example.org"})
    body = assert_problem(missing, 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["body.password"]  # type: ignore[attr-defined]
    assert "a@clinic.example.org" not in missing.text

    malformed = await h.client.post(
        "/api/v1/auth/login",
        content=b'{"email": "broken-canary-xyz',
        headers={"Content-Type": "application/json"},
    )
    assert_problem(malformed, 422, "validation_error")
    assert "broken-canary-xyz" not in malformed.text


# --- Body size limit ----------------------------------------------------------------------


def _big_login_body(size: int = 5000) -> bytes:
    body = json.dumps({"email": "a@clinic.example.org", "password": "p" * size}).encode()
    assert len(body) > size
    return body


async def test_body_over_the_limit_with_content_length_is_413(
    harness_factory: HarnessFactory,
) -> None:
    h = await harness_factory(max_body_bytes=1000)
    body = _big_login_body()
    response = await h.client.post(
        "/api/v1/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 413, "payload_too_large")
    # A body under the limit is processed normally (here: a wrong login).
    small = await h.client.post(
        "/api/v1/auth/login", json={"email": "a@clinic.example.org", "password": "p"}
    )
    assert small.status_code == 401


async def test_invalid_content_length_is_a_400_problem(h: Harness) -> None:
    response = await h.client.post(
        "/api/v1/auth/login",
        content=b"{}",
        headers={"Content-Length": "not-a-number", "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "bad_request")


async def test_streamed_body_over_the_limit_is_413(harness_factory: HarnessFactory) -> None:
    h = await harness_factory(max_body_bytes=1000)
    body = _big_login_body()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 500):
            yield body[start : start + 500]

    request = h.client.build_request(
        "POST",
        "/api/v1/auth/login",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert "content-length" not in request.headers  # no declared size to reject early
    response = await h.client.send(request)
    assert_problem(response, 413, "payload_too_large")


# --- Unexpected errors --------------------------------------------------------------------


async def test_unexpected_exception_is_a_bare_500(
    capfd: pytest.CaptureFixture[str], harness_factory: HarnessFactory
) -> None:
    h = await harness_factory()

    async def boom() -> None:
        raise RuntimeError("secret-sql-detail")

    h.app.add_api_route("/boom", boom, dependencies=[public("test")])
    response = await h.client.get("/boom", headers={"X-Request-ID": "boom-request-1"})
    body = assert_problem(response, 500, "internal_error")
    assert body.keys() == PROBLEM_FIELDS
    assert body["request_id"] == "boom-request-1"
    assert response.headers["x-request-id"] == "boom-request-1"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "secret-sql-detail" not in response.text

    out, err = capfd.readouterr()
    logs = out + err
    assert "secret-sql-detail" not in logs
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    errors = [line for line in lines if line.get("event") == "request.unhandled_error"]
    assert errors
    assert errors[0]["error"] == "RuntimeError"
    assert errors[0]["request_id"] == "boom-request-1"
    access = [line for line in lines if line.get("event") == "request"]
    assert any(line["status"] == 500 and line["route"] == "/boom" for line in access)


# --- CORS ---------------------------------------------------------------------------------


async def test_cors_preflight_allows_only_configured_origins(
    harness_factory: HarnessFactory,
) -> None:
    h = await harness_factory(cors_origins=["https://app.example.org"])

    async def preflight(origin: str) -> httpx.Response:
        return await h.client.options(
            "/api/v1/auth/login",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Content-Type",
            },
        )

    allowed = await preflight("https://app.example.org")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.org"
    assert "POST" in allowed.headers["access-control-allow-methods"]

    refused = await preflight("https://evil.example.com")
    assert "access-control-allow-origin" not in refused.headers

    simple = await h.client.get("/health/live", headers={"Origin": "https://app.example.org"})
    assert simple.headers["access-control-allow-origin"] == "https://app.example.org"


async def test_no_cors_headers_without_configured_origins(h: Harness) -> None:
    response = await h.client.get("/health/live", headers={"Origin": "https://app.example.org"})
    assert "access-control-allow-origin" not in response.headers


# --- Documentation ------------------------------------------------------------------------


async def test_docs_are_served_from_bundled_assets(h: Harness) -> None:
    docs = await h.client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "/static/docs/swagger-ui-bundle.js" in docs.text
    assert "cdn.jsdelivr.net" not in docs.text

    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        response = await h.client.get(f"/static/docs/{asset}")
        assert response.status_code == 200, asset
        assert len(response.content) > 1000


async def test_openapi_declares_the_bearer_scheme(h: Harness) -> None:
    response = await h.client.get("/openapi.json")
    assert response.status_code == 200
    schemes = response.json()["components"]["securitySchemes"]
    assert schemes["bearer"]["type"] == "http"
    assert schemes["bearer"]["scheme"].lower() == "bearer"
