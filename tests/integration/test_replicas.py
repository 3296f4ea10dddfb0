"""Two replicas of the service sharing one database and one Redis agree at once: a logout
on one is refused on the other, and an account change on one shows on the other."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from clarity.auth.models import Role
from tests.conftest import Harness, bearer
from tests.integration.conftest import REDIS_SERVER, RedisProcess

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


async def _replicas(harness_factory: object, redis: RedisProcess) -> tuple[Harness, Harness]:
    shared = {"redis_url": redis.url, "cache_prefix": f"replicas-{uuid.uuid4().hex}:"}
    first: Harness = await harness_factory(**shared)  # type: ignore[operator]
    second: Harness = await harness_factory(**shared)  # type: ignore[operator]
    return first, second


async def _eventually(check: object, seconds: float = 2.0) -> bool:
    """Pub/sub is asynchronous: allow it a moment (it takes milliseconds)."""
    for _ in range(int(seconds / 0.02)):
        if await check():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.02)
    return False


async def test_logout_on_one_replica_is_refused_on_the_other(
    harness_factory: object, redis_process: RedisProcess
) -> None:
    a, b = await _replicas(harness_factory, redis_process)
    email, _ = await a.user(Role.clinician)
    tokens = await a.login(email)
    headers = bearer(tokens["access_token"])
    assert (await b.client.get("/api/v1/auth/me", headers=headers)).status_code == 200

    assert (await a.client.post("/api/v1/auth/logout", headers=headers)).status_code == 204

    async def refused_on_b() -> bool:
        return (await b.client.get("/api/v1/auth/me", headers=headers)).status_code == 401

    assert await _eventually(refused_on_b)


async def test_account_change_on_one_replica_shows_on_the_other(
    harness_factory: object, redis_process: RedisProcess
) -> None:
    a, b = await _replicas(harness_factory, redis_process)
    admin = (await a.login((await a.user(Role.admin))[0]))["access_token"]
    email, user_id = await a.user(Role.clinician)
    before = await b.login(email)
    me = await b.client.get("/api/v1/auth/me", headers=bearer(before["access_token"]))
    assert me.json()["role"] == "clinician"  # replica b now holds the profile

    changed = await a.client.patch(
        f"/api/v1/users/{user_id}", json={"role": "researcher"}, headers=bearer(admin)
    )
    assert changed.status_code == 200
    after = await b.login(email)

    async def new_role_on_b() -> bool:
        me = await b.client.get("/api/v1/auth/me", headers=bearer(after["access_token"]))
        return bool(me.json()["role"] == "researcher")

    assert await _eventually(new_role_on_b)


async def test_a_replica_started_later_loads_existing_revocations(
    harness_factory: object, redis_process: RedisProcess
) -> None:
    shared = {"redis_url": redis_process.url, "cache_prefix": f"late-{uuid.uuid4().hex}:"}
    a: Harness = await harness_factory(**shared)  # type: ignore[operator]
    email, _ = await a.user(Role.clinician)
    tokens = await a.login(email)
    headers = bearer(tokens["access_token"])
    assert (await a.client.post("/api/v1/auth/logout", headers=headers)).status_code == 204

    late: Harness = await harness_factory(**shared)  # type: ignore[operator]
    assert late.runtime.cache.mirror_in_sync
    me = await late.client.get("/api/v1/auth/me", headers=headers)
    assert me.status_code == 401
    assert me.json()["code"] == "token_revoked"
