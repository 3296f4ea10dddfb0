"""Redis dies while the service runs: requests keep being served from the in-process
fallback, readiness reports the cache down, and when Redis returns the service reconnects
by itself and replays the revocations made meanwhile."""

from __future__ import annotations

import asyncio
import uuid

import jwt
import pytest
from redis.asyncio import Redis

from clarity.auth.dependencies import revoked_key
from clarity.auth.models import Role
from tests.conftest import Harness, bearer
from tests.integration.conftest import REDIS_SERVER, RedisProcess

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


async def _ready(h: Harness) -> dict[str, object]:
    response = await h.client.get("/health/ready")
    assert response.status_code == 200  # the cache is not required: degraded, not down
    body: dict[str, object] = response.json()
    return body


async def test_service_survives_redis_outage_and_recovers(
    harness_factory: object, redis_process: RedisProcess
) -> None:
    h: Harness = await harness_factory(  # type: ignore[operator]
        redis_url=redis_process.url, cache_retry_seconds=0.2
    )
    email, _ = await h.user(Role.clinician)
    await h.login(email)
    assert (await _ready(h))["checks"]["cache"]["status"] == "up"  # type: ignore[index]

    redis_process.stop()

    # Logins and authenticated requests go on, served from the in-process fallback.
    tokens = await h.login(email)
    me = await h.client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    ready = await _ready(h)
    assert ready["status"] == "degraded"
    assert ready["checks"]["cache"]["status"] == "down"  # type: ignore[index]

    # A logout during the outage takes effect at once on this replica ...
    out = await h.client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))
    assert out.status_code == 204
    me = await h.client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 401

    redis_process.start()
    for _ in range(50):
        await asyncio.sleep(0.2)
        ready = await _ready(h)
        if ready["checks"]["cache"]["status"] == "up":  # type: ignore[index]
            break
    assert ready["status"] == "ok", "cache did not recover without a restart"

    # ... and reaches Redis once it is back, so other replicas see it too.
    sid = jwt.decode(tokens["access_token"], options={"verify_signature": False})["sid"]
    client = Redis.from_url(redis_process.url, decode_responses=True)
    replayed = await client.get(h.runtime.cache.prefix + revoked_key(uuid.UUID(sid)))
    await client.aclose()
    assert replayed == "logout", "the revocation made during the outage was not replayed"

    # Login works against the recovered Redis and counts go there again.
    again = await h.login(email)
    me = await h.client.get("/api/v1/auth/me", headers=bearer(again["access_token"]))
    assert me.status_code == 200
    assert not h.runtime.cache.degraded
