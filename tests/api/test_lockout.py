"""Account lockout after repeated failed logins: 423 with Retry-After, no enumeration, expiry,
reset on success, and what the audit log records (never the email in clear)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy import select

from clarity.audit.models import AuditEvent
from tests.conftest import PASSWORD, Harness

HarnessFactory = Callable[..., Awaitable[Harness]]
WRONG = PASSWORD + "-wrong"


async def _attempt(h: Harness, email: str, password: str) -> httpx.Response:
    return await h.client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def _audit_events(h: Harness) -> list[AuditEvent]:
    async with h.runtime.db.session(system=True) as session:
        rows = await session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        return list(rows.all())


def _assert_locked(response: httpx.Response, window: int) -> None:
    assert response.status_code == 423, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "account_locked"
    assert 1 <= int(response.headers["retry-after"]) <= window


async def test_threshold_failures_lock_even_the_right_password(
    harness_factory: HarnessFactory,
) -> None:
    h = await harness_factory(lockout_threshold=3, lockout_window_seconds=2)
    email, _ = await h.user()
    for _ in range(3):
        response = await _attempt(h, email, WRONG)
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_credentials"

    _assert_locked(await _attempt(h, email, PASSWORD), window=2)
    # Locked means locked: more wrong attempts get the same 423, not a 401.
    _assert_locked(await _attempt(h, email, WRONG), window=2)


async def test_unknown_email_locks_out_the_same_way(harness_factory: HarnessFactory) -> None:
    h = await harness_factory(lockout_threshold=3, lockout_window_seconds=60)
    known, _ = await h.user()
    unknown = "nobody-at-all@clinic.example.org"

    async def statuses(email: str) -> list[int]:
        return [(await _attempt(h, email, WRONG)).status_code for _ in range(5)]

    known_statuses = await statuses(known)
    unknown_statuses = await statuses(unknown)
    assert known_statuses == unknown_statuses == [401, 401, 401, 423, 423]


async def test_failures_count_per_address_whatever_the_case(
    harness_factory: HarnessFactory,
) -> None:
    h = await harness_factory(lockout_threshold=3, lockout_window_seconds=60)
    email, _ = await h.user()
    for variant in (email.upper(), f"  {email}  ", email.title()):
        assert (await _attempt(h, variant, WRONG)).status_code == 401
    _assert_locked(await _attempt(h, email, PASSWORD), window=60)
    # Another account is not affected.
    other, _ = await h.user()
    assert (await _attempt(h, other, PASSWORD)).status_code == 200


async def test_lock_expires_after_the_window(harness_factory: HarnessFactory) -> None:
    h = await harness_factory(lockout_threshold=3, lockout_window_seconds=2)
    email, _ = await h.user()
    for _ in range(3):
        await _attempt(h, email, WRONG)
    _assert_locked(await _attempt(h, email, PASSWORD), window=2)

    await asyncio.sleep(2.2)
    response = await _attempt(h, email, PASSWORD)
    assert response.status_code == 200, response.text
    assert response.json()["access_token"]


async def test_successful_login_resets_the_failure_counter(
    harness_factory: HarnessFactory,
) -> None:
    # A long window so that only the reset (not expiry) can clear the counter.
    h = await harness_factory(lockout_threshold=3, lockout_window_seconds=60)
    email, _ = await h.user()
    for _ in range(2):
        assert (await _attempt(h, email, WRONG)).status_code == 401
    assert (await _attempt(h, email, PASSWORD)).status_code == 200
    # Without the reset, the next failure would be the third and lock the account.
    for _ in range(2):
        assert (await _attempt(h, email, WRONG)).status_code == 401
    assert (await _attempt(h, email, PASSWORD)).status_code == 200


async def test_lockout_is_audited_without_the_email(harness_factory: HarnessFactory) -> None:
    h = await harness_factory(lockout_threshold=3, lockout_window_seconds=60)
    email = "lockout.target.qv@clinic.example.org"
    await h.user(email=email)
    unknown = "ghost.account.qv@clinic.example.org"
    for address in (email, unknown):
        for _ in range(3):
            await _attempt(h, address, WRONG)
        _assert_locked(await _attempt(h, address, PASSWORD), window=60)

    events = await _audit_events(h)
    failures = [e for e in events if e.action == "auth.login" and e.outcome == "failure"]
    assert len(failures) == 6
    assert all(e.severity == "warning" for e in failures)
    lockouts = [e for e in events if e.action == "auth.lockout"]
    assert len(lockouts) == 2
    assert all(e.severity == "high" for e in lockouts)
    assert all(e.details.get("failures") == 3 for e in lockouts)
    # The known account is named by id; the unknown one by nothing but the keyed hash.
    assert {e.resource_type for e in lockouts} == {"user", None}
    keys = {e.details["email_key"] for e in lockouts}
    assert len(keys) == 2
    assert {e.details["email_key"] for e in failures} == keys
    locked = [e for e in events if e.action == "auth.login" and e.outcome == "locked"]
    assert len(locked) == 2

    for event in events:
        text = repr(event.details).lower()
        for secret in (email, unknown, "lockout.target.qv", "ghost.account.qv", PASSWORD):
            assert secret.lower() not in text, (event.action, event.details)
