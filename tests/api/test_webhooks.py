"""Webhooks through the real app and a real HTTP receiver on 127.0.0.1: endpoint management
(admins only, secret shown once and stored encrypted), signed deliveries, retries with
backoff, dead letters visible and retried through the API, the severity filter, the SSRF
guard, and logs that never hold the URL's query string or the secret."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import orjson
import pytest
from sqlalchemy import func, select, text

from clarity.alerts.delivery import urls
from clarity.alerts.delivery.feed import ALERT_TOPICS, AlertEvent, alert_events_after
from clarity.alerts.delivery.webhooks import deliver_due, record_deliveries
from clarity.alerts.events import emit_raised
from clarity.alerts.models import Alert, WebhookDelivery, WebhookEndpoint
from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from clarity.database import utcnow
from tests.api.test_assessments_api import PATIENT, new_patient
from tests.conftest import Harness, bearer

T = TypeVar("T")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signed_ok: bool


@dataclass
class Receiver:
    """A webhook receiver: a real HTTP server in its own thread. It checks each request's
    signature with its own HMAC code (not Clarity's), records it, and answers the next
    scripted status (then ``default``)."""

    statuses: list[int] = field(default_factory=list)
    default: int = 200
    secret: str | None = None
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver.answer(self.path, headers, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return None

        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/clarity"

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            stamp = headers.get("x-clarity-timestamp", "")
            expected = ""
            if self.secret is not None:
                message = stamp.encode() + b"." + body
                digest = hmac.new(self.secret.encode(), message, hashlib.sha256).hexdigest()
                expected = f"v1={digest}"
            fresh = stamp.isdigit() and abs(time.time() - int(stamp)) <= 300
            signed_ok = fresh and hmac.compare_digest(
                expected, headers.get("x-clarity-signature", "")
            )
            self.received.append(Received(path, headers, body, signed_ok))
            return self.statuses.pop(0) if self.statuses else self.default

    def count(self) -> int:
        with self._lock:
            return len(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()


async def eventually(check: Callable[[], Awaitable[T | None]], within: float = 15.0) -> T:
    """Poll ``check`` until it answers something (the background loops run on their own)."""
    deadline = time.monotonic() + within
    while True:
        found = await check()
        if found is not None:
            return found
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


async def raise_alert(
    h: Harness, org_id: uuid.UUID, patient_id: str, *, severity: str = "critical"
) -> tuple[str, str]:
    """A real alert row and its ``alert.raised`` event, committed together and published;
    answers (alert id, event id)."""
    now = utcnow()
    async with h.runtime.db.session(org_id) as session:
        alert = Alert(
            id=uuid.uuid4(),
            patient_id=uuid.UUID(patient_id),
            rule_id="phq9-item9-positive",
            rule_version=1,
            rule_name="PHQ-9 item 9 endorsed",
            severity=severity,
            dedup_key=f"test:{uuid.uuid4()}",
            status="open",
            fired_at=now,
            episode_start=now,
            summary="PHQ-9 item phq9_9 answered 1 (threshold >= 1)",
            evidence={},
            escalation_level=0,
            created_at=now,
        )
        session.add(alert)
        await session.flush()
        event_id = emit_raised(session, alert)
        await session.commit()
    await h.drain_events()
    return str(alert.id), str(event_id)


async def register(h: Harness, admin: str, url: str, **extra: Any) -> dict[str, Any]:
    response = await h.client.post(
        "/api/v1/webhooks", json={"url": url, **extra}, headers=bearer(admin)
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def deliveries(h: Harness, admin: str, webhook_id: str, **params: str) -> list[Any]:
    response = await h.client.get(
        f"/api/v1/webhooks/{webhook_id}/deliveries", params=params, headers=bearer(admin)
    )
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


@dataclass
class Clinic:
    org_id: uuid.UUID
    admin: str
    clinician: str
    patient_id: str


async def clinic(h: Harness) -> Clinic:
    admin = await h.token_for(Role.admin)
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    return Clinic(await h.org(), admin, clinician, patient_id)


async def test_admin_registers_lists_and_removes_endpoints(h: Harness) -> None:
    c = await clinic(h)
    url = "https://hooks.example.org/in?token=query-canary-7731"
    created = await register(h, c.admin, url, description="pager", min_severity="high")
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert created["url"] == "https://hooks.example.org/in"
    assert created["min_severity"] == "high"

    listed = await h.client.get("/api/v1/webhooks", headers=bearer(c.admin))
    assert listed.status_code == 200
    (shown,) = listed.json()
    assert shown["id"] == created["id"]
    assert "secret" not in shown
    assert secret not in listed.text
    assert "query-canary-7731" not in listed.text

    async with h.runtime.db.session(system=True) as session:
        raw = (await session.execute(text("SELECT secret FROM webhook_endpoints"))).scalar_one()
        trail = " ".join(
            orjson.dumps(row.details).decode() + str(row.resource_id)
            for row in await session.scalars(
                select(AuditEvent).where(AuditEvent.action.like("webhook.%"))
            )
        )
    assert secret not in raw  # encrypted at rest
    assert created["id"] in trail
    assert secret not in trail
    assert "hooks.example.org" not in trail

    gone = await h.client.delete(f"/api/v1/webhooks/{created['id']}", headers=bearer(c.admin))
    assert gone.status_code == 204
    again = await h.client.delete(f"/api/v1/webhooks/{created['id']}", headers=bearer(c.admin))
    assert again.status_code == 404
    assert (await h.client.get("/api/v1/webhooks", headers=bearer(c.admin))).json() == []


BAD_REGISTRATIONS: list[tuple[dict[str, Any], str]] = [
    ({"url": "ftp://hooks.example.org/in"}, "invalid_webhook_url"),
    ({"url": "hooks.example.org/in"}, "invalid_webhook_url"),
    ({"url": "https://"}, "invalid_webhook_url"),
    ({"url": "https://hooks.example.org/in", "min_severity": "urgent"}, "validation_error"),
    ({"url": "https://hooks.example.org/in", "secret": "mine"}, "validation_error"),
    ({}, "validation_error"),
]


async def test_bad_registrations_are_refused_and_store_nothing(h: Harness) -> None:
    admin = await h.token_for(Role.admin)
    for body, code in BAD_REGISTRATIONS:
        response = await h.client.post("/api/v1/webhooks", json=body, headers=bearer(admin))
        assert response.status_code == 422, (body, response.text)
        assert response.json()["code"] == code, body
        if "url" in body:
            assert body["url"] not in response.text or body["url"] == "https://"
    assert (await h.client.get("/api/v1/webhooks", headers=bearer(admin))).json() == []


async def test_only_admins_manage_webhooks(h: Harness) -> None:
    for role in (Role.clinician, Role.researcher, Role.patient):
        token = await h.token_for(role)
        for method, url in (
            ("GET", "/api/v1/webhooks"),
            ("POST", "/api/v1/webhooks"),
            ("DELETE", f"/api/v1/webhooks/{uuid.uuid4()}"),
            ("GET", f"/api/v1/webhooks/{uuid.uuid4()}/deliveries"),
            ("POST", f"/api/v1/webhooks/deliveries/{uuid.uuid4()}/retry"),
        ):
            response = await h.client.request(
                method, url, headers=bearer(token), json={"url": "https://x.example.org/"}
            )
            assert response.status_code == 403, (role, method, url, response.text)


async def test_an_alert_reaches_the_receiver_signed_with_ids_only(
    h: Harness, receiver: Receiver
) -> None:
    c = await clinic(h)
    created = await register(h, c.admin, receiver.url)
    receiver.secret = created["secret"]
    alert_id, event_id = await raise_alert(h, c.org_id, c.patient_id)

    async def arrived() -> Received | None:
        return receiver.received[0] if receiver.count() else None

    got = await eventually(arrived)
    assert got.signed_ok
    assert got.path == "/hooks/clarity"
    assert got.headers["x-clarity-event"] == "alert.raised"
    assert got.headers["content-type"] == "application/json"
    body = orjson.loads(got.body)
    assert body["event_id"] == event_id
    assert body["alert_id"] == alert_id
    assert body["patient_id"] == c.patient_id
    assert body["organization_id"] == str(c.org_id)
    assert body["rule_id"] == "phq9-item9-positive"
    assert body["severity"] == "critical"
    assert body["event_type"] == "alert.raised"
    for value in PATIENT.values():
        assert value not in got.body.decode()

    async def delivered() -> list[Any] | None:
        rows = await deliveries(h, c.admin, created["id"])
        return rows if rows and rows[0]["status"] == "delivered" else None

    (row,) = await eventually(delivered)
    assert row["id"] == got.headers["x-clarity-delivery"]
    assert row["attempts"] == 1
    assert row["last_status_code"] == 200
    assert row["last_error"] is None
    assert row["event_id"] == event_id
    assert receiver.count() == 1


async def test_a_failing_receiver_gets_retries_until_it_answers(
    h: Harness, receiver: Receiver
) -> None:
    c = await clinic(h)
    created = await register(h, c.admin, receiver.url)
    receiver.secret = created["secret"]
    receiver.statuses = [500, 302]  # a redirect is a failure too: never followed
    await raise_alert(h, c.org_id, c.patient_id)

    async def failed_once() -> Any:
        rows = await deliveries(h, c.admin, created["id"])
        return rows[0] if rows and rows[0]["attempts"] == 1 else None

    first = await eventually(failed_once)
    assert first["status"] == "pending"
    assert first["last_status_code"] == 500
    assert first["last_error"] == "http_500"
    # The background loop retries only when the backoff (about 10 s) is over: not yet.
    assert receiver.count() == 1

    later = utcnow() + timedelta(hours=1)
    assert await deliver_due(h.runtime, now=later) == 1
    (second,) = await deliveries(h, c.admin, created["id"])
    assert (second["status"], second["attempts"], second["last_status_code"]) == (
        "pending",
        2,
        302,
    )
    assert await deliver_due(h.runtime, now=later) == 0  # not due again yet
    assert await deliver_due(h.runtime, now=later + timedelta(minutes=1)) == 1
    (third,) = await deliveries(h, c.admin, created["id"])
    assert (third["status"], third["attempts"], third["last_status_code"]) == (
        "delivered",
        3,
        200,
    )
    assert third["last_error"] is None
    assert receiver.count() == 3
    assert all(r.signed_ok for r in receiver.received)
    assert len({r.headers["x-clarity-delivery"] for r in receiver.received}) == 1
    assert len({r.body for r in receiver.received}) == 1


async def test_dead_letters_are_listed_and_can_be_retried(
    harness_factory: Any, receiver: Receiver
) -> None:
    h: Harness = await harness_factory(webhook_max_attempts=3)
    c = await clinic(h)
    created = await register(h, c.admin, receiver.url)
    receiver.secret = created["secret"]
    receiver.default = 500
    await raise_alert(h, c.org_id, c.patient_id)

    async def failed_once() -> Any:
        rows = await deliveries(h, c.admin, created["id"])
        return rows[0] if rows and rows[0]["attempts"] == 1 else None

    row = await eventually(failed_once)
    retry_url = f"/api/v1/webhooks/deliveries/{row['id']}/retry"
    early = await h.client.post(retry_url, headers=bearer(c.admin))
    assert early.status_code == 409
    assert early.json()["code"] == "delivery_not_dead"

    later = utcnow()
    for _ in range(2):
        later += timedelta(days=1)
        assert await deliver_due(h.runtime, now=later) == 1
    assert await deliver_due(h.runtime, now=later + timedelta(days=30)) == 0  # dead: no more
    (dead,) = await deliveries(h, c.admin, created["id"], status="dead")
    assert (dead["attempts"], dead["last_status_code"], dead["last_error"]) == (3, 500, "http_500")
    assert await deliveries(h, c.admin, created["id"], status="pending") == []
    assert receiver.count() == 3

    receiver.default = 200
    retried = await h.client.post(retry_url, headers=bearer(c.admin))
    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 0)

    async def delivered() -> Any:
        rows = await deliveries(h, c.admin, created["id"], status="delivered")
        return rows[0] if rows else None

    done = await eventually(delivered)  # the retry woke the background sender
    assert (done["attempts"], done["last_status_code"]) == (1, 200)
    assert receiver.count() == 4
    async with h.runtime.db.session(system=True) as session:
        actions = list(
            await session.scalars(
                select(AuditEvent.action).where(AuditEvent.action == "webhook.delivery.retry")
            )
        )
    assert actions == ["webhook.delivery.retry"]


async def test_min_severity_filters_and_recording_is_idempotent(
    h: Harness, receiver: Receiver
) -> None:
    c = await clinic(h)
    everything = await register(h, c.admin, receiver.url)
    urgent = await register(h, c.admin, receiver.url, min_severity="critical")
    receiver.secret = everything["secret"]
    await raise_alert(h, c.org_id, c.patient_id, severity="warning")

    async def delivered() -> Any:
        rows = await deliveries(h, c.admin, everything["id"], status="delivered")
        return rows or None

    await eventually(delivered)
    assert await deliveries(h, c.admin, urgent["id"]) == []

    # Recording the same events again (another process, a restart) adds nothing.
    async with h.runtime.db.session(system=True) as session:
        rows = (await session.execute(alert_events_after(0, 100))).all()
    events = [AlertEvent.from_row(r) for r in rows]
    assert [e.topic for e in events] == ["alert.raised"]
    assert events[0].topic in ALERT_TOPICS
    assert await record_deliveries(h.runtime.db, events) == 0
    async with h.runtime.db.session(system=True) as session:
        count = await session.scalar(select(func.count()).select_from(WebhookDelivery))
    assert count == 1


async def test_another_clinics_admin_sees_and_retries_nothing(
    h: Harness, receiver: Receiver
) -> None:
    c = await clinic(h)
    created = await register(h, c.admin, receiver.url)
    receiver.secret = created["secret"]
    await raise_alert(h, c.org_id, c.patient_id)

    async def one() -> Any:
        rows = await deliveries(h, c.admin, created["id"])
        return rows[0] if rows else None

    row = await eventually(one)
    other = await h.token_for(Role.admin, org="Other clinic")
    listed = await h.client.get("/api/v1/webhooks", headers=bearer(other))
    assert listed.json() == []
    for method, url in (
        ("GET", f"/api/v1/webhooks/{created['id']}/deliveries"),
        ("DELETE", f"/api/v1/webhooks/{created['id']}"),
        ("POST", f"/api/v1/webhooks/deliveries/{row['id']}/retry"),
    ):
        response = await h.client.request(method, url, headers=bearer(other))
        assert response.status_code == 404, (method, url, response.text)
        assert response.json()["code"] == "not_found"


async def test_private_addresses_are_refused_when_blocked(
    harness_factory: Any, receiver: Receiver
) -> None:
    h: Harness = await harness_factory(webhook_block_private=True)
    c = await clinic(h)
    refused = await h.client.post(
        "/api/v1/webhooks", json={"url": receiver.url}, headers=bearer(c.admin)
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "webhook_address_refused"
    assert receiver.url not in refused.text

    # An endpoint stored before the rule (or whose name now resolves to a private address)
    # is refused again at delivery time: nothing is sent.
    async with h.runtime.db.session(c.org_id) as session:
        session.add(
            WebhookEndpoint(
                url=receiver.url, secret="whsec_x", created_at=utcnow() - timedelta(seconds=1)
            )
        )
        await session.commit()
    await raise_alert(h, c.org_id, c.patient_id)

    async def attempted() -> Any:
        async with h.runtime.db.session(system=True) as session:
            row = await session.scalar(select(WebhookDelivery))
        return row if row is not None and row.attempts == 1 else None

    row = await eventually(attempted)
    assert (row.status, row.last_error, row.last_status_code) == (
        "pending",
        "blocked_address",
        None,
    )
    assert receiver.count() == 0


async def test_a_delivery_connects_to_the_address_it_checked(
    harness_factory: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name is resolved and checked once per delivery, and the request
    goes to that very address (the name itself never resolves here: a second lookup would
    fail), carrying the receiver's own name in the Host header."""
    lookups: list[str] = []

    async def resolve(host: str, port: int) -> list[Any]:
        lookups.append(host)
        assert host == "receiver.example"
        return [ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(urls, "resolve", resolve)
    monkeypatch.setattr(urls, "is_blocked", lambda address: False)  # stands for a public one
    h: Harness = await harness_factory(webhook_block_private=True)
    c = await clinic(h)
    port = receiver.server.server_address[1]
    created = await register(h, c.admin, f"http://receiver.example:{port}/hooks/clarity")
    receiver.secret = created["secret"]
    lookups.clear()
    await raise_alert(h, c.org_id, c.patient_id)

    async def arrived() -> Received | None:
        return receiver.received[0] if receiver.count() else None

    got = await eventually(arrived)
    assert got.signed_ok
    assert got.headers["host"] == f"receiver.example:{port}"
    assert lookups == ["receiver.example"]  # checked once, then connected to that address


async def test_logs_hold_neither_the_query_string_nor_the_secret(
    h: Harness, receiver: Receiver, caplog: pytest.LogCaptureFixture, capsys: Any
) -> None:
    c = await clinic(h)
    created = await register(h, c.admin, receiver.url + "?token=query-canary-5512")
    receiver.secret = created["secret"]
    receiver.statuses = [503]
    await raise_alert(h, c.org_id, c.patient_id)

    async def failed() -> Any:
        rows = await deliveries(h, c.admin, created["id"])
        return rows[0] if rows and rows[0]["attempts"] == 1 else None

    await eventually(failed)
    await deliver_due(h.runtime, now=utcnow() + timedelta(hours=1))
    assert receiver.received[-1].path == "/hooks/clarity?token=query-canary-5512"
    logs = caplog.text + capsys.readouterr().err
    assert "webhook.attempt_failed" in logs
    assert "webhook.delivered" in logs
    assert "query-canary-5512" not in logs
    assert created["secret"] not in logs
