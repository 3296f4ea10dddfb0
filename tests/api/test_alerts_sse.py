"""The alert stream, served by uvicorn on 127.0.0.1 (the ASGI test transport buffers whole
responses, so it cannot show events arriving): events as they are committed, only to
clinicians of the patient's care team and to admins, one audit record per stream,
Last-Event-ID replay, heartbeats, the end of the stream when the session ends, and the
whole pipeline from a PHQ-9 submitted through the API to the stream and a webhook."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from sqlalchemy import func, select

from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from tests.api.test_assessments_api import PATIENT, new_patient, phq9, submit
from tests.api.test_webhooks import Receiver, deliveries, eventually, raise_alert, register
from tests.conftest import Harness, bearer

STREAM = "/api/v1/alerts/stream"
ACCEPT = {"Accept": "text/event-stream"}


@contextlib.asynccontextmanager
async def served(h: Harness) -> AsyncIterator[httpx.AsyncClient]:
    """The harness's app (already started) behind a real HTTP server, and a client of it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        h.app, lifespan="off", log_config=None, access_log=False, timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn has a flag, not an event
                await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        await task
        sock.close()


class Events:
    """Reads Server-Sent Events from a streaming response, in the current task."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.comments: list[str] = []

    async def _next(self, want_comment: str | None) -> dict[str, str]:
        fields: dict[str, str] = {}
        async for line in self.lines:
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                if want_comment is not None and self.comments[-1] == want_comment:
                    return {}
                continue
            if not line:
                if "data" in fields:
                    return fields
                fields = {}  # a block without data (retry:, comments) dispatches nothing
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        raise EOFError("the stream ended")

    async def event(self, within: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            fields = await self._next(None)
        return {**fields, "data": orjson.loads(fields["data"])}

    async def comment(self, text: str, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            await self._next(text)

    async def ended(self, within: float = 10.0) -> bool:
        try:
            async with asyncio.timeout(within):
                await self._next(None)
        except EOFError:
            return True
        return False


@contextlib.asynccontextmanager
async def opened(client: httpx.AsyncClient, token: str, **headers: str) -> AsyncIterator[Events]:
    async with client.stream("GET", STREAM, headers={**ACCEPT, **bearer(token), **headers}) as r:
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("text/event-stream")
        events = Events(r)
        await events.comment("connected")  # subscribed: events from now on reach it
        yield events


async def stream_opens(h: Harness) -> int:
    async with h.runtime.db.session(system=True) as session:
        count = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "alert.stream.open")
        )
    return count or 0


async def test_events_reach_the_care_team_and_admins_only(h: Harness) -> None:
    org = await h.org()
    owner = await h.token_for(Role.clinician)
    outsider = await h.token_for(Role.clinician)
    admin = await h.token_for(Role.admin)
    mine = await new_patient(h, owner)
    theirs = await new_patient(h, outsider)
    async with (
        served(h) as client,
        opened(client, owner) as owner_events,
        opened(client, outsider) as outsider_events,
        opened(client, admin) as admin_events,
    ):
        alert_a, event_a = await raise_alert(h, org, mine)
        alert_b, event_b = await raise_alert(h, org, theirs, severity="high")

        got = await owner_events.event()
        assert (got["id"], got["event"]) == (event_a, "alert.raised")
        data = got["data"]
        assert data["alert_id"] == alert_a
        assert data["patient_id"] == mine
        assert data["rule_id"] == "phq9-item9-positive"
        assert data["severity"] == "critical"
        assert data["summary"] == "PHQ-9 item phq9_9 answered 1 (threshold >= 1)"
        assert data["fired_at"]
        assert not set(data) & {"given_name", "family_name", "mrn", "birth_date"}
        for value in PATIENT.values():
            assert value not in orjson.dumps(data).decode()

        # The outsider's first event is their own patient's: the owner's was held back.
        first = await outsider_events.event()
        assert (first["id"], first["data"]["alert_id"]) == (event_b, alert_b)
        assert [(await admin_events.event())["id"] for _ in range(2)] == [event_a, event_b]

        # ...and the owner never got the outsider's patient's alert.
        _, event_c = await raise_alert(h, org, mine, severity="warning")
        assert (await owner_events.event())["id"] == event_c
        assert (await admin_events.event())["id"] == event_c
    assert await stream_opens(h) == 3  # once per stream, not per event
    # Closed streams let go of their subscriptions.
    assert h.app.state.alert_delivery.broadcaster.listeners == 0


async def test_last_event_id_replays_what_was_missed(h: Harness) -> None:
    org = await h.org()
    owner = await h.token_for(Role.clinician)
    outsider = await h.token_for(Role.clinician)
    mine = await new_patient(h, owner)
    theirs = await new_patient(h, outsider)
    _, first = await raise_alert(h, org, mine)
    _, second = await raise_alert(h, org, mine, severity="high")
    await raise_alert(h, org, theirs)
    _, third = await raise_alert(h, org, mine, severity="info")
    async with served(h) as client:
        async with opened(client, owner, **{"Last-Event-ID": first}) as events:
            assert [(await events.event())["id"] for _ in range(2)] == [second, third]
            _, fourth = await raise_alert(h, org, mine)
            assert (await events.event())["id"] == fourth  # then live, once each
        async with opened(client, owner, **{"Last-Event-ID": str(uuid.uuid4())}) as events:
            await events.comment("replay unavailable: unknown Last-Event-ID")
            _, fifth = await raise_alert(h, org, mine)
            assert (await events.event())["id"] == fifth
        # Another clinic's event id replays nothing of ours (nor says whose it is).
        stranger = await h.token_for(Role.admin, org="Other clinic")
        async with opened(client, stranger, **{"Last-Event-ID": first}) as events:
            await events.comment("replay unavailable: unknown Last-Event-ID")
    bad = await h.client.get(
        STREAM, headers={**ACCEPT, **bearer(owner), "Last-Event-ID": "not-an-id"}
    )
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_last_event_id"


async def test_heartbeats_and_the_end_of_the_session_end_the_stream(
    harness_factory: Any,
) -> None:
    h: Harness = await harness_factory(sse_heartbeat_seconds=0.2)
    clinician = await h.token_for(Role.clinician)
    async with served(h) as client, opened(client, clinician) as events:
        await events.comment("heartbeat", within=5)
        await events.comment("heartbeat", within=5)
        logout = await h.client.post("/api/v1/auth/logout", headers=bearer(clinician))
        assert logout.status_code == 204
        assert await events.ended(within=5)


async def test_the_stream_refuses_who_may_not_see_alerts(h: Harness) -> None:
    assert (await h.client.get(STREAM, headers=ACCEPT)).status_code == 401
    for role in (Role.patient, Role.researcher):
        token = await h.token_for(role)
        refused = await h.client.get(STREAM, headers={**ACCEPT, **bearer(token)})
        assert refused.status_code == 403, role
    clinician = await h.token_for(Role.clinician)
    for accept in ({}, {"Accept": "application/json"}):
        wrong = await h.client.get(STREAM, headers={**accept, **bearer(clinician)})
        assert wrong.status_code == 406
        assert wrong.json()["code"] == "not_acceptable"
    assert await stream_opens(h) == 0


@pytest.fixture
def receiver() -> Any:
    found = Receiver()
    found.thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()


async def test_phq9_item9_submitted_through_the_api_reaches_the_stream_and_a_webhook(
    h: Harness, receiver: Receiver
) -> None:
    """The issue's acceptance test: nothing is staged by hand between the submission and
    what the stream and the receiver get."""
    clinician = await h.token_for(Role.clinician)
    admin = await h.token_for(Role.admin)
    patient_id = await new_patient(h, clinician)
    webhook = await register(h, admin, receiver.url, min_severity="critical")
    receiver.secret = webhook["secret"]
    async with served(h) as client, opened(client, clinician) as events:
        response = await submit(h, clinician, patient_id, "phq9", phq9(0, 1, 0, 1, 0, 0, 0, 0, 1))
        assert response.status_code == 201, response.text
        got = await events.event(within=20)
    assert got["event"] == "alert.raised"
    assert got["data"]["patient_id"] == patient_id
    assert got["data"]["rule_id"] == "phq9-item9-positive"
    assert got["data"]["severity"] == "critical"
    assert "item phq9_9 answered 1" in got["data"]["summary"]

    async def arrived() -> Any:
        return receiver.received[0] if receiver.count() else None

    delivered = await eventually(arrived, within=20)
    assert delivered.signed_ok
    assert delivered.headers["x-clarity-event"] == "alert.raised"
    body = orjson.loads(delivered.body)
    assert body["event_id"] == got["id"]
    assert body["alert_id"] == got["data"]["alert_id"]
    for value in PATIENT.values():
        assert value not in delivered.body.decode()

    async def recorded() -> Any:
        rows = await deliveries(h, admin, webhook["id"], status="delivered")
        return rows or None

    (row,) = await eventually(recorded)
    assert row["event_id"] == got["id"]
