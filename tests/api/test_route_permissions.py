"""Deny by default: every route declares a permission or a named public reason, and the
undeclared ones really are refused (walked from the live app, not from a hand-kept list)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from fastapi import APIRouter, Depends
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from clarity.app import OPEN_NON_API_ROUTES, undeclared_routes, walk_routes
from clarity.auth.dependencies import declared_access, get_runtime
from clarity.auth.models import Role
from clarity.auth.permissions import Permission, role_has
from clarity.auth.tokens import TokenCodec
from tests.conftest import Harness, bearer

PUBLIC_ROUTES = frozenset(
    {
        "/health/live",
        "/health/ready",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/register",
        "/docs",
    }
)
EXPECTED_NON_API_ROUTES = frozenset({"/openapi.json", "/static/docs"})
# Routes no role but admin may reach; they must be refused to everyone else.
ADMIN_ONLY_PREFIXES = ("/api/v1/users", "/api/v1/audit")
_PARAM = re.compile(r"\{[^}]+\}")


def _api_routes(h: Harness) -> list[tuple[str, APIRoute]]:
    return [(path, r) for path, r in walk_routes(h.app.routes) if isinstance(r, APIRoute)]


def _declared(route: APIRoute) -> list[str]:
    return declared_access([d.call for d in route.dependant.dependencies if d.call is not None])


def _calls(h: Harness) -> list[tuple[str, str, str]]:
    """(method, concrete url, declared access) of every non-public API route."""
    calls: list[tuple[str, str, str]] = []
    for path, route in _api_routes(h):
        access = _declared(route)
        if access == ["public"]:
            continue
        url = _PARAM.sub(lambda _: str(uuid.uuid4()), path)
        calls.extend((method, url, access[0]) for method in sorted(route.methods or ()))
    return calls


async def test_every_route_declares_exactly_one_access_rule(h: Harness) -> None:
    public: set[str] = set()
    undeclared: list[str] = []
    non_api: set[str] = set()
    for path, route in walk_routes(h.app.routes):
        if not isinstance(route, APIRoute):
            non_api.add(path)
            continue
        access = _declared(route)
        if not access:
            undeclared.append(f"{sorted(route.methods or ())} {path}")
        assert len(access) <= 1, f"{path} declares several access rules: {access}"
        if access == ["public"]:
            public.add(path)
    assert undeclared == []
    assert public == PUBLIC_ROUTES
    assert non_api == EXPECTED_NON_API_ROUTES == OPEN_NON_API_ROUTES


async def test_walk_sees_every_documented_operation(h: Harness) -> None:
    walked = {
        (path, method.lower()) for path, route in _api_routes(h) for method in (route.methods or ())
    }
    documented = {
        (path, method)
        for path, operations in h.app.openapi()["paths"].items()
        for method in operations
    }
    assert documented, "the OpenAPI document lists no operations"
    assert documented <= walked, f"not walked: {sorted(documented - walked)}"
    # The admin routes are among them, so the deny sweeps below are not vacuous.
    assert any(p.startswith("/api/v1/users/{user_id}") for p, _ in walked)
    assert any(p == "/api/v1/audit/export" for p, _ in walked)


async def test_every_protected_route_refuses_a_missing_or_bad_token(h: Harness) -> None:
    calls = _calls(h)
    assert len(calls) >= 15
    forged, _ = TokenCodec(
        "another-secret-key-that-is-long-enough-987", "clarity", "clarity-api"
    ).encode(
        kind="access",
        subject=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        role=Role.admin,
        lifetime=timedelta(minutes=5),
    )
    for method, url, _ in calls:
        missing = await h.client.request(method, url)
        assert missing.status_code == 401, (method, url, missing.status_code, missing.text)
        assert missing.json()["code"] == "not_authenticated", (method, url)
        assert missing.headers["www-authenticate"] == "Bearer"
        for token in ("not-a-jwt", forged):
            bad = await h.client.request(method, url, headers=bearer(token))
            assert bad.status_code == 401, (method, url, bad.status_code, bad.text)
            assert bad.json()["code"] == "invalid_token", (method, url)


def _patient_scoped(url: str) -> bool:
    return url.startswith("/api/v1/patients/") and not url.endswith("/break-glass")


@pytest.mark.parametrize("role", [Role.patient, Role.clinician, Role.researcher])
async def test_roles_are_refused_what_they_lack(h: Harness, role: Role) -> None:
    token = await h.token_for(role)
    denied = [(m, u) for m, u, access in _calls(h) if not role_has(role, Permission(access))]
    denied_urls = {u for _, u in denied}
    for prefix in ADMIN_ONLY_PREFIXES:
        assert any(u.startswith(prefix) for u in denied_urls), f"{prefix} not denied to {role}"
    for method, url in denied:
        response = await h.client.request(method, url, headers=bearer(token))
        assert response.status_code in {401, 403, 404}, (method, url, response.status_code)
        # Patient-scoped routes answer 404 so that a record's existence does not leak.
        expected = (404, "not_found") if _patient_scoped(url) else (403, "forbidden")
        assert response.status_code == expected[0], (method, url, response.text)
        assert response.json()["code"] == expected[1]
    # The refusals came from the role, not from a dead token.
    me = await h.client.get("/api/v1/auth/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["role"] == role.value


async def test_patient_is_never_given_admin_routes(h: Harness) -> None:
    patient = await h.token_for(Role.patient)
    admin = await h.token_for(Role.admin)
    admin_calls = [(m, u) for m, u, _ in _calls(h) if u.startswith(ADMIN_ONLY_PREFIXES)]
    assert len(admin_calls) >= 7  # users: 5 operations, audit: 2
    for method, url in admin_calls:
        response = await h.client.request(method, url, headers=bearer(patient))
        assert not 200 <= response.status_code < 300, (method, url, response.status_code)
        assert response.status_code in {401, 403, 404}, (method, url, response.status_code)
    # ...while an admin gets through to the same GET collections.
    for url in ("/api/v1/users", "/api/v1/audit", "/api/v1/audit/export"):
        assert (await h.client.get(url, headers=bearer(admin))).status_code == 200, url


async def test_undeclared_routes_are_reported(h: Harness) -> None:
    assert undeclared_routes(h.app) == []

    async def leaky() -> dict[str, str]:
        return {"oops": "open"}

    h.app.add_api_route("/api/v1/leaky", leaky, methods=["GET"])
    # A dependency that is not an access declaration does not count as one.
    h.app.add_api_route(
        "/api/v1/leaky-dep", leaky, methods=["POST"], dependencies=[Depends(get_runtime)]
    )
    inner = APIRouter(prefix="/inner")
    inner.add_api_route("/deep", leaky, methods=["DELETE"])
    outer = APIRouter(prefix="/outer")
    outer.include_router(inner)
    h.app.include_router(outer, prefix="/api/v1")

    async def raw(_: Request) -> PlainTextResponse:
        return PlainTextResponse("raw")

    h.app.add_route("/raw", raw)

    missing = undeclared_routes(h.app)
    assert "['GET'] /api/v1/leaky" in missing
    assert "['POST'] /api/v1/leaky-dep" in missing
    assert "['DELETE'] /api/v1/outer/inner/deep" in missing
    assert "/raw" in missing
    assert len(missing) == 4
