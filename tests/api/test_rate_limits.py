"""Rate limits: per client address, on credential endpoints, and per authenticated user."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from clarity.auth.models import Role
from tests.conftest import PASSWORD, Harness, bearer

HarnessFactory = Callable[..., Awaitable[Harness]]


def _assert_rate_limited(response: httpx.Response, window: int = 60) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "rate_limited"
    retry = response.headers["retry-after"]
    assert retry.isdigit(), retry
    assert 1 <= int(retry) <= window


async def test_per_address_limit_answers_429_with_retry_after(
    harness_factory: HarnessFactory,
) -> None:
    h = await harness_factory(rate_limit_per_ip=5, rate_limit_window_seconds=60)
    for _ in range(5):
        response = await h.client.get("/api/v1/auth/me")
        assert response.status_code == 401  # counted, but under the limit
    limited = await h.client.get("/api/v1/auth/me")
    _assert_rate_limited(limited)
    # The limited answer still carries the usual hygiene headers.
    assert limited.headers["x-request-id"]
    assert limited.headers["x-content-type-options"] == "nosniff"
    # Any API route counts against the same address.
    _assert_rate_limited(
        await h.client.post("/api/v1/auth/login", json={"email": "a@b.example.org"})
    )


async def test_health_probes_are_not_rate_limited(harness_factory: HarnessFactory) -> None:
    h = await harness_factory(rate_limit_per_ip=5, rate_limit_window_seconds=60)
    for _ in range(12):
        response = await h.client.get("/health/live")
        assert response.status_code == 200
    # Probes did not use up the address's budget either.
    for _ in range(5):
        assert (await h.client.get("/api/v1/auth/me")).status_code == 401
    _assert_rate_limited(await h.client.get("/api/v1/auth/me"))
    assert (await h.client.get("/health/live")).status_code == 200


async def test_login_attempts_have_a_stricter_limit(harness_factory: HarnessFactory) -> None:
    h = await harness_factory(rate_limit_login=3, rate_limit_window_seconds=60)
    email, _ = await h.user()
    for _ in range(3):
        response = await h.client.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD + "x"}
        )
        assert response.status_code == 401
    # Even the right password is refused once the address is over the login limit.
    fourth = await h.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    _assert_rate_limited(fourth)
    # Other API routes are not affected by the login limit.
    assert (await h.client.get("/api/v1/auth/me")).status_code == 401


async def test_per_user_limit_applies_to_authenticated_requests(
    harness_factory: HarnessFactory,
) -> None:
    h = await harness_factory(rate_limit_per_user=3, rate_limit_window_seconds=60)
    token = await h.token_for(Role.clinician)
    for _ in range(3):
        assert (await h.client.get("/api/v1/auth/me", headers=bearer(token))).status_code == 200
    _assert_rate_limited(await h.client.get("/api/v1/auth/me", headers=bearer(token)))

    # The budget is per account: another user from the same address still gets through.
    other = await h.token_for(Role.clinician)
    assert (await h.client.get("/api/v1/auth/me", headers=bearer(other))).status_code == 200
