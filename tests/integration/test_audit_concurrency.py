"""Concurrent transactions append to one audit chain without forking it."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from clarity.audit import service as audit
from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from tests.conftest import PASSWORD, Harness


async def test_concurrent_logins_keep_the_chain_intact(h: Harness) -> None:
    emails = [(await h.user(Role.clinician))[0] for _ in range(4)]
    attempts = [
        h.client.post(
            "/api/v1/auth/login",
            json={"email": email, "password": PASSWORD if i % 2 else PASSWORD + "-wrong"},
        )
        for i in range(5)
        for email in emails
    ]
    responses = await asyncio.gather(*attempts)
    assert sorted({r.status_code for r in responses}) == [200, 401]

    async with h.runtime.db.session(system=True) as session:
        checked, broken = await audit.verify(session)
        logins = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "auth.login")
        )
    assert broken is None, broken
    assert logins == len(attempts)
    assert checked >= len(attempts) + len(emails)  # logins plus the user.create records
