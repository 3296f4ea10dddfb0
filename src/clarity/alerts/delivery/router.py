"""The alert stream (clinicians and admins) and webhook management (admins)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from clarity.alerts.delivery import endpoints
from clarity.alerts.delivery.schemas import (
    DeliveryOut,
    DeliveryPage,
    DeliveryStatus,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
)
from clarity.alerts.delivery.service import AlertDelivery
from clarity.alerts.delivery.sse import AlertStream
from clarity.audit.service import AuditActor, record
from clarity.auth.dependencies import Principal, RuntimeDep, SessionDep, require
from clarity.auth.permissions import Permission
from clarity.auth.tokens import InvalidToken
from clarity.errors import AppError
from clarity.runtime import Runtime

stream_router = APIRouter(prefix="/alerts", tags=["alerts"])
webhooks_router = APIRouter(prefix="/webhooks", tags=["webhooks"])
Reader = Annotated[Principal, require(Permission.alerts_read)]
Admin = Annotated[Principal, require(Permission.webhooks_manage)]
EVENT_STREAM = "text/event-stream"


def _delivery(request: Request) -> AlertDelivery:
    delivery: AlertDelivery = request.app.state.alert_delivery
    return delivery


def _token_expiry(request: Request, runtime: Runtime) -> datetime:
    """When the caller's access token (already verified) expires: the stream ends then."""
    _, _, token = request.headers.get("authorization", "").partition(" ")
    try:
        return runtime.tokens.decode(token.strip(), "access").expires_at
    except InvalidToken:
        raise AppError(401, "invalid_token", "The access token is invalid or expired.") from None


def _parse_last_event_id(value: str | None) -> uuid.UUID | None:
    if value is None or not value.strip():
        return None
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise AppError(
            400, "invalid_last_event_id", "Last-Event-ID must be an event id from this stream."
        ) from None


@stream_router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {EVENT_STREAM: {}}, "description": "Server-Sent Events"},
        406: {"description": "The request does not accept text/event-stream."},
    },
)
async def alert_stream(
    request: Request,
    principal: Reader,
    runtime: RuntimeDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Alerts of the patients the caller may see, as they happen (Server-Sent Events):
    ``alert.raised``, ``alert.acknowledged``, ``alert.resolved``, ``alert.escalated``.
    Send ``Accept: text/event-stream``; reconnect with ``Last-Event-ID`` to catch up."""
    if EVENT_STREAM not in request.headers.get("accept", ""):
        raise AppError(
            406, "not_acceptable", "This is an event stream: send Accept: text/event-stream."
        )
    resume_after = _parse_last_event_id(last_event_id)
    expires_at = _token_expiry(request, runtime)
    # Audited once, when the stream opens; the session is closed before streaming starts.
    async with runtime.db.session(principal.organization_id) as session:
        record(
            session,
            "alert.stream.open",
            resource_type="alert_stream",
            details={"resume": resume_after is not None},
            actor=AuditActor(
                actor_id=principal.user_id,
                actor_role=principal.role,
                organization_id=principal.organization_id,
                client_address=request.state.client_address,
                request_id=request.state.request_id,
            ),
        )
        await session.commit()
    stream = AlertStream(
        db=runtime.db,
        cache=runtime.cache,
        broadcaster=_delivery(request).broadcaster,
        principal=principal,
        expires_at=expires_at,
        heartbeat_seconds=runtime.settings.sse_heartbeat_seconds,
        last_event_id=resume_after,
    )
    return StreamingResponse(
        stream.events(),
        media_type=EVENT_STREAM,
        headers={"X-Accel-Buffering": "no"},  # reverse proxies: do not buffer the stream
    )


@webhooks_router.post("", response_model=WebhookCreated, status_code=status.HTTP_201_CREATED)
async def create_webhook(
    body: WebhookCreate, principal: Admin, runtime: RuntimeDep, session: SessionDep
) -> WebhookCreated:
    """Register a receiver. The signing secret is in this answer only: store it now."""
    endpoint, secret = await endpoints.create(
        session, principal, body, block_private=runtime.settings.webhook_blocks_private
    )
    return WebhookCreated(**endpoints.to_out(endpoint).model_dump(), secret=secret)


@webhooks_router.get("", response_model=list[WebhookOut])
async def list_webhooks(_: Admin, session: SessionDep) -> list[WebhookOut]:
    found = await endpoints.list_endpoints(session)
    await session.commit()
    return [endpoints.to_out(e) for e in found]


@webhooks_router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: uuid.UUID, _: Admin, session: SessionDep) -> Response:
    await endpoints.delete(session, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@webhooks_router.get("/{webhook_id}/deliveries", response_model=DeliveryPage)
async def list_deliveries(
    webhook_id: uuid.UUID,
    _: Admin,
    session: SessionDep,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DeliveryPage:
    """Newest first, with attempts, the last status code and error: dead letters stay here
    until retried or the endpoint is removed."""
    rows, total = await endpoints.deliveries(session, webhook_id, status, limit, offset)
    items = [DeliveryOut.model_validate(r) for r in rows]
    return DeliveryPage(items=items, total=total, limit=limit, offset=offset)


@webhooks_router.post("/deliveries/{delivery_id}/retry", response_model=DeliveryOut)
async def retry_delivery(
    delivery_id: uuid.UUID, request: Request, _: Admin, session: SessionDep
) -> DeliveryOut:
    """Requeue a dead delivery: a fresh series of attempts, the first one now."""
    delivery = await endpoints.retry(session, delivery_id)
    _delivery(request).wake_sender()
    return DeliveryOut.model_validate(delivery)
