"""Appending audit records in the same transaction as the change they record.

Code calls :func:`record` while it works; the records are chained and inserted when the
session commits (a ``before_commit`` hook), under a row lock on the chain head so that
concurrent transactions never fork the chain. A rolled-back transaction leaves no record.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from clarity.audit.chain import (
    GENESIS_HASH,
    ChainBreak,
    ChainRecord,
    ChainVerifier,
    record_hash,
)
from clarity.audit.models import AuditChainHead, AuditEvent
from clarity.database import ORG_KEY, utcnow

PENDING_KEY = "audit_pending"
ACTOR_KEY = "audit_actor"
HEAD_ID = 1


@dataclass(frozen=True)
class AuditActor:
    """Who is acting and from where; bound to a session once the caller is known."""

    actor_id: uuid.UUID | None = None
    actor_role: str | None = None
    organization_id: uuid.UUID | None = None
    client_address: str | None = None
    request_id: str | None = None


def bind_actor(session: AsyncSession, actor: AuditActor) -> None:
    session.info[ACTOR_KEY] = actor


def record(
    session: AsyncSession,
    action: str,
    *,
    outcome: str = "success",
    resource_type: str | None = None,
    resource_id: uuid.UUID | str | None = None,
    severity: str = "info",
    details: dict[str, Any] | None = None,
    actor: AuditActor | None = None,
) -> None:
    """Queue an audit record; it is written when (and only if) the session commits."""
    who = actor or session.info.get(ACTOR_KEY) or AuditActor()
    if who.organization_id is None and session.info.get(ORG_KEY) is not None:
        # Work done inside an organization belongs to it, even without a known actor.
        who = replace(who, organization_id=session.info[ORG_KEY])
    session.info.setdefault(PENDING_KEY, []).append(
        AuditEvent(
            event_id=uuid.uuid4(),
            occurred_at=utcnow(),
            organization_id=who.organization_id,
            actor_id=who.actor_id,
            actor_role=who.actor_role,
            client_address=who.client_address,
            request_id=who.request_id,
            action=action,
            outcome=outcome,
            resource_type=resource_type,
            resource_id=None if resource_id is None else str(resource_id),
            severity=severity,
            details=details or {},
        )
    )


def content_of(ev: AuditEvent) -> dict[str, Any]:
    """The fields a record's hash covers, in a form that survives a database round trip."""
    return {
        "event_id": str(ev.event_id),
        "organization_id": None if ev.organization_id is None else str(ev.organization_id),
        "occurred_at": ev.occurred_at.isoformat(),
        "actor_id": None if ev.actor_id is None else str(ev.actor_id),
        "actor_role": ev.actor_role,
        "action": ev.action,
        "resource_type": ev.resource_type,
        "resource_id": ev.resource_id,
        "outcome": ev.outcome,
        "severity": ev.severity,
        "client_address": ev.client_address,
        "request_id": ev.request_id,
        "details": ev.details,
    }


@event.listens_for(Session, "before_commit")
def _append_pending(session: Session) -> None:
    pending: list[AuditEvent] = session.info.pop(PENDING_KEY, [])
    if not pending:
        return
    head = session.execute(
        select(AuditChainHead).where(AuditChainHead.id == HEAD_ID).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        raise RuntimeError("audit chain head missing: run `clarity migrate`")
    prev = head.hash
    for ev in pending:
        ev.prev_hash = prev
        ev.hash = record_hash(content_of(ev), prev)
        prev = ev.hash
        session.add(ev)
    session.flush()
    head.last_event_id = pending[-1].id
    head.hash = prev


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)


async def _iter_chain(session: AsyncSession, batch: int = 2000) -> AsyncIterator[ChainRecord]:
    last = 0
    while True:
        rows = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.id > last).order_by(AuditEvent.id).limit(batch)
            )
        ).all()
        if not rows:
            return
        for ev in rows:
            yield ChainRecord(ev.id, content_of(ev), ev.prev_hash, ev.hash)
        last = rows[-1].id
        session.expunge_all()


async def verify(
    session: AsyncSession, on_progress: Callable[[int], None] | None = None
) -> tuple[int, ChainBreak | None]:
    """Stream the whole chain and return (records checked, first break or None)."""
    head = await session.get(AuditChainHead, HEAD_ID)
    head_id = None if head is None else head.last_event_id
    head_hash = GENESIS_HASH if head is None else head.hash
    verifier = ChainVerifier()
    async for rec in _iter_chain(session):
        broken = verifier.feed(rec)
        if broken is not None:
            return verifier.checked, broken
        if on_progress is not None:
            on_progress(verifier.checked)
    return verifier.checked, verifier.finish(head_id, head_hash)
