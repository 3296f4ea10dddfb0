"""Managing a clinic's webhook endpoints and their deliveries (the admin API's service).

The signing secret is generated here, stored encrypted (``EncryptedText``) and returned
only by :func:`create`. Every change is audited; the audit details hold ids, never the URL
or the secret.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.alerts.delivery import urls
from clarity.alerts.delivery.schemas import DeliveryStatus, WebhookCreate, WebhookOut
from clarity.alerts.delivery.signing import new_secret
from clarity.alerts.models import WebhookDelivery, WebhookEndpoint
from clarity.audit.service import record
from clarity.auth.dependencies import Principal
from clarity.database import utcnow
from clarity.errors import AppError, not_found


def to_out(endpoint: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=endpoint.id,
        url=urls.display_url(endpoint.url),
        description=endpoint.description,
        min_severity=endpoint.min_severity,
        active=endpoint.active,
        created_at=endpoint.created_at,
    )


async def create(
    session: AsyncSession, principal: Principal, body: WebhookCreate, *, block_private: bool
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; answers it with its secret (shown to the caller once)."""
    url = urls.parse(body.url).geturl()
    if block_private:
        try:
            await urls.check_reachable(url)
        except urls.BlockedAddress:
            raise AppError(
                422,
                "webhook_address_refused",
                "The URL's host is a private, loopback or link-local address, or does not "
                "resolve; webhooks may only reach public addresses here.",
            ) from None
    secret = new_secret()
    endpoint = WebhookEndpoint(
        url=url,
        secret=secret,
        description=body.description,
        min_severity=body.min_severity,
        active=True,
        created_by=principal.user_id,
        created_at=utcnow(),
    )
    session.add(endpoint)
    await session.flush()
    record(
        session,
        "webhook.create",
        resource_type="webhook_endpoint",
        resource_id=endpoint.id,
        details={"min_severity": body.min_severity},
    )
    await session.commit()
    return endpoint, secret


async def list_endpoints(session: AsyncSession) -> list[WebhookEndpoint]:
    rows = await session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at))
    return list(rows.all())


async def get(session: AsyncSession, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise not_found("webhook")
    return endpoint


async def delete(session: AsyncSession, endpoint_id: uuid.UUID) -> None:
    """Remove the endpoint; its deliveries (dead letters included) go with it."""
    endpoint = await get(session, endpoint_id)
    await session.delete(endpoint)
    record(session, "webhook.delete", resource_type="webhook_endpoint", resource_id=endpoint_id)
    await session.commit()


async def deliveries(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    status: DeliveryStatus | None,
    limit: int,
    offset: int,
) -> tuple[list[WebhookDelivery], int]:
    """The endpoint's deliveries, newest first (a read of alert activity: audited)."""
    await get(session, endpoint_id)
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.scalars(
        query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
        .limit(limit)
        .offset(offset)
    )
    items = list(rows.all())
    record(
        session,
        "webhook.deliveries.read",
        resource_type="webhook_endpoint",
        resource_id=endpoint_id,
        details={"status": status},
    )
    await session.commit()
    return items, total


async def retry(session: AsyncSession, delivery_id: uuid.UUID) -> WebhookDelivery:
    """Give a dead delivery a fresh series of attempts, starting now."""
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise not_found("delivery")
    if delivery.status != "dead":
        raise AppError(
            409, "delivery_not_dead", "Only a dead delivery can be retried; this one is not."
        )
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    record(
        session,
        "webhook.delivery.retry",
        resource_type="webhook_delivery",
        resource_id=delivery_id,
        details={"endpoint_id": str(delivery.endpoint_id)},
    )
    await session.commit()
    return delivery
