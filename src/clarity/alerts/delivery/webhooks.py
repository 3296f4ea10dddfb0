"""Webhook deliveries: recorded for each alert event and endpoint, sent signed, retried,
then dead-lettered.

**Recording.** :func:`record_deliveries` adds one :class:`WebhookDelivery` per alert event
and active endpoint of the event's clinic whose ``min_severity`` the alert reaches
(endpoints registered after the event get none). ``(endpoint_id, event_id)`` is unique and
the insert skips existing pairs, so recording the same event again (another process, a
restart) changes nothing.

**Sending.** :func:`deliver_due` (the app's background loop, a worker, a test) claims due
deliveries with one conditional ``UPDATE`` that pushes their next attempt a lease into the
future (so concurrent processes never send one twice, and a crash mid-send only delays a
retry), then POSTs each without holding a database session: the body is the event's public
JSON (:func:`clarity.alerts.delivery.schemas.alert_message`), signed as described in
:mod:`clarity.alerts.delivery.signing`, with headers ``X-Clarity-Event``,
``X-Clarity-Delivery``, ``X-Clarity-Timestamp`` and ``X-Clarity-Signature``. A 2xx answer
delivers it; anything else (another status, a redirect, a timeout, a refused address) is
retried after :func:`retry_delay`, until ``CLARITY_WEBHOOK_MAX_ATTEMPTS`` attempts make it
``dead``: kept, listed by the API, and retried by hand.

Logs name deliveries and endpoints by id: never the URL (its query string may carry a
token), the secret or the body.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, cast
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite

from clarity import __version__
from clarity.alerts.delivery.feed import AlertEvent
from clarity.alerts.delivery.schemas import alert_message
from clarity.alerts.delivery.signing import signature_header
from clarity.alerts.delivery.urls import BlockedAddress, pin
from clarity.alerts.models import Alert, WebhookDelivery, WebhookEndpoint
from clarity.database import Database, utcnow
from clarity.logging import get_logger
from clarity.outbox.models import OutboxEvent
from clarity.rules.schema import SEVERITY_RANK
from clarity.runtime import Runtime

log = get_logger(__name__)
# httpx logs every request's full URL at INFO; a receiver's query string may hold a token.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

# Seconds to wait after the 1st, 2nd, ... failed attempt (the last repeats).
RETRY_SCHEDULE: Final = (10, 30, 120, 600, 3600, 21600)
JITTER: Final = 0.2  # each wait is the schedule's value times a random factor in [0.8, 1.2]
LEASE: Final = timedelta(seconds=120)  # a claimed delivery is retried after this if unsent
CONCURRENCY: Final = 8
USER_AGENT: Final = f"Clarity-Webhooks/{__version__}"

_jitter_source = random.SystemRandom()


def retry_delay(failures: int, uniform: Callable[[], float] = _jitter_source.random) -> timedelta:
    """The wait after the ``failures``-th failed attempt: a fixed, roughly exponential
    schedule (10 s to 6 h) with ±20 % random jitter so that receivers coming back from an
    outage are not hit by every retry at once (Brooker, "Exponential Backoff And Jitter",
    AWS Architecture Blog, 2015)."""
    base = RETRY_SCHEDULE[min(max(failures, 1), len(RETRY_SCHEDULE)) - 1]
    return timedelta(seconds=base * (1 - JITTER + 2 * JITTER * uniform()))


def _rank(severity: str) -> int:
    return SEVERITY_RANK.get(severity, -1)


async def record_deliveries(db: Database, events: Sequence[AlertEvent]) -> int:
    """Add the deliveries ``events`` call for (see the module doc); answers how many."""
    by_org: dict[uuid.UUID, list[AlertEvent]] = defaultdict(list)
    for event in events:
        if event.organization_id is not None and event.alert_id is not None:
            by_org[event.organization_id].append(event)
    if not by_org:
        return 0
    created = 0
    async with db.session(system=True) as session:
        for org, org_events in by_org.items():
            endpoints = (
                await session.execute(
                    select(
                        WebhookEndpoint.id, WebhookEndpoint.min_severity, WebhookEndpoint.created_at
                    ).where(WebhookEndpoint.organization_id == org, WebhookEndpoint.active)
                )
            ).all()
            if not endpoints:
                continue
            wanted = {e.alert_id for e in org_events}
            alerts = set(
                await session.scalars(
                    select(Alert.id).where(Alert.organization_id == org, Alert.id.in_(wanted))
                )
            )
            rows = [
                {
                    "id": uuid.uuid4(),
                    "organization_id": org,
                    "endpoint_id": endpoint.id,
                    "alert_id": event.alert_id,
                    "event_id": event.event_id,
                    "event_type": event.topic,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": utcnow(),
                    "created_at": utcnow(),
                }
                for event in org_events
                if event.alert_id in alerts
                for endpoint in endpoints
                if _rank(event.severity) >= _rank(endpoint.min_severity)
                and endpoint.created_at <= event.created_at
            ]
            if rows:
                created += await _insert_new(session, rows)
        await session.commit()
    return created


async def _insert_new(session: Any, rows: list[dict[str, Any]]) -> int:
    table = cast(Table, WebhookDelivery.__table__)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(table)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
        .returning(table.c.id)
    )
    return len((await session.execute(statement)).all())


@dataclass(frozen=True)
class Job:
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    secret: str
    event_type: str
    attempts: int
    payload: dict[str, Any] | None


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    status_code: int | None = None
    error: str | None = None
    permanent: bool = False  # no retry can succeed (the event is gone)


async def _claim(db: Database, now: datetime, limit: int) -> list[Job]:
    async with db.session(system=True) as session:
        due = list(
            await session.scalars(
                select(WebhookDelivery.id)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(limit)
            )
        )
        if not due:
            return []
        claimed = list(
            await session.scalars(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id.in_(due),
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= now,
                )
                .values(next_attempt_at=now + LEASE)
                .returning(WebhookDelivery.id),
                execution_options={"synchronize_session": False},
            )
        )
        rows = (
            await session.execute(
                select(WebhookDelivery, WebhookEndpoint)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(WebhookDelivery.id.in_(claimed))
            )
        ).all()
        event_ids = [d.event_id for d, _ in rows]
        found = await session.execute(
            select(OutboxEvent.event_id, OutboxEvent.payload).where(
                OutboxEvent.event_id.in_(event_ids)
            )
        )
        payloads: dict[uuid.UUID, dict[str, Any]] = {r.event_id: r.payload for r in found}
        jobs = [
            Job(d.id, e.id, e.url, e.secret, d.event_type, d.attempts, payloads.get(d.event_id))
            for d, e in rows
        ]
        await session.commit()
    return jobs


def signed_request(job: Job, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers of one attempt."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Clarity-Event": job.event_type,
        "X-Clarity-Delivery": str(job.delivery_id),
        "X-Clarity-Timestamp": str(timestamp),
        "X-Clarity-Signature": signature_header(job.secret, timestamp, body),
    }


async def attempt(client: httpx.AsyncClient, job: Job, *, block_private: bool) -> Outcome:
    """POST one delivery; never raises for what the receiver or the network does."""
    if job.payload is None:
        return Outcome(False, error="event_missing", permanent=True)
    url, extensions = job.url, {}
    body = orjson.dumps(alert_message(job.payload))
    headers = signed_request(job, body, int(time.time()))
    if block_private:
        try:
            pinned = await pin(job.url)
        except BlockedAddress as exc:
            return Outcome(False, error=str(exc))
        url, headers["Host"] = pinned.url, pinned.host_header
        if urlsplit(job.url).scheme.lower() == "https":
            extensions = {"sni_hostname": pinned.server_name}
    try:
        # Streamed and closed unread: the receiver's answer body is never loaded.
        async with client.stream(
            "POST", url, content=body, headers=headers, extensions=extensions
        ) as response:
            code = response.status_code
    except httpx.HTTPError as exc:
        return Outcome(False, error=type(exc).__name__)
    if 200 <= code < 300:
        return Outcome(True, status_code=code)
    return Outcome(False, status_code=code, error=f"http_{code}")


def _result_values(job: Job, outcome: Outcome, now: datetime, max_attempts: int) -> dict[str, Any]:
    attempts = job.attempts + 1
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
    }
    if outcome.delivered:
        values.update(status="delivered", delivered_at=utcnow(), next_attempt_at=now)
    elif outcome.permanent or attempts >= max_attempts:
        values.update(status="dead", next_attempt_at=now)
    else:
        values.update(status="pending", next_attempt_at=now + retry_delay(attempts))
    return values


def _log(job: Job, values: dict[str, Any]) -> None:
    fields = {
        "delivery_id": str(job.delivery_id),
        "endpoint_id": str(job.endpoint_id),
        "attempts": values["attempts"],
        "status_code": values["last_status_code"],
    }
    if values["status"] == "delivered":
        log.info("webhook.delivered", **fields)
    elif values["status"] == "dead":
        log.warning("webhook.dead", error=values["last_error"], **fields)
    else:
        log.info("webhook.attempt_failed", error=values["last_error"], **fields)


async def deliver_due(
    runtime: Runtime,
    *,
    now: datetime | None = None,
    client: httpx.AsyncClient | None = None,
    limit: int = 100,
) -> int:
    """Attempt every delivery due at ``now`` (default: now), at most ``limit``; answers
    how many were attempted. Safe to run in several processes at once."""
    now = now or utcnow()
    settings = runtime.settings
    jobs = await _claim(runtime.db, now, limit)
    if not jobs:
        return 0
    own = client is None
    http = client or httpx.AsyncClient(
        timeout=settings.webhook_timeout_seconds, follow_redirects=False
    )
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(job: Job) -> Outcome:
        async with gate:
            return await attempt(http, job, block_private=settings.webhook_blocks_private)

    try:
        outcomes = await asyncio.gather(*(one(job) for job in jobs))
    finally:
        if own:
            await http.aclose()
    async with runtime.db.session(system=True) as session:
        for job, outcome in zip(jobs, outcomes, strict=True):
            values = _result_values(job, outcome, now, settings.webhook_max_attempts)
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == job.delivery_id, WebhookDelivery.status == "pending")
                .values(**values),
                execution_options={"synchronize_session": False},
            )
            _log(job, values)
        await session.commit()
    return len(jobs)
