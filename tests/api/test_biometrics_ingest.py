"""Biometric ingestion through the real app: idempotent batches, duplicates discarded by the
database, per-row rejections that keep the good rows, consent, NDJSON, a 100,000-sample
batch, who may upload, one audit record and one event per batch."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select, text

from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from clarity.biometrics.models import BiometricBatch, BiometricSample
from clarity.events import InProcessBus
from tests.conftest import Harness, bearer

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
PATIENT = {
    "given_name": "Quillon",
    "family_name": "Vexmarrow",
    "birth_date": "1961-07-14",
    "timezone": "Europe/Oslo",
}


def url(patient_id: str) -> str:
    return f"/api/v1/patients/{patient_id}/biometrics"


def minutes(start: int, count: int, stream: str = "heart_rate", value: float = 60.0) -> list[Any]:
    unit = "/min" if stream == "heart_rate" else None
    return [
        {
            "stream": stream,
            "ts": (T0 + timedelta(minutes=start + i)).isoformat(),
            "value": value,
            "unit": unit,
            "source": "watch-1",
        }
        for i in range(count)
    ]


async def new_patient(h: Harness, token: str, *, consent: bool = True) -> str:
    response = await h.client.post(
        "/api/v1/patients",
        json={**PATIENT, "mrn": f"MRN-{uuid.uuid4().hex[:8]}"},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    patient_id: str = response.json()["id"]
    if consent:
        await set_consent(h, token, patient_id, granted=True)
    return patient_id


async def set_consent(h: Harness, token: str, patient_id: str, *, granted: bool) -> None:
    response = await h.client.post(
        f"/api/v1/patients/{patient_id}/consents",
        json={"category": "wearable_data", "granted": granted},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text


async def send(h: Harness, token: str, patient_id: str, batch_id: str, samples: list[Any]) -> Any:
    return await h.client.post(
        url(patient_id),
        json={"client_batch_id": batch_id, "samples": samples},
        headers=bearer(token),
    )


async def sample_count(h: Harness) -> int:
    async with h.runtime.db.session(system=True) as session:
        return int(await session.scalar(select(func.count()).select_from(BiometricSample)) or 0)


async def audit_actions(h: Harness, patient_id: str, prefix: str) -> list[str]:
    async with h.runtime.db.session(system=True) as session:
        rows = await session.scalars(
            select(AuditEvent.action).where(
                AuditEvent.resource_id == patient_id, AuditEvent.action.startswith(prefix)
            )
        )
        return list(rows.all())


async def test_resending_a_batch_returns_the_original_receipt_and_stores_nothing(
    h: Harness,
) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    first = await send(h, clinician, patient_id, "b-1", minutes(0, 50))
    assert first.status_code == 201, first.text
    receipt = first.json()
    assert (receipt["accepted"], receipt["duplicate"], receipt["rejected"]) == (50, 0, 0)
    assert receipt["replayed"] is False
    assert await sample_count(h) == 50

    # Same id, even with different content: the original receipt, nothing written.
    again = await send(h, clinician, patient_id, "b-1", minutes(100, 10))
    assert again.status_code == 200
    replay = again.json()
    assert replay["replayed"] is True
    assert {k: v for k, v in replay.items() if k != "replayed"} == {
        k: v for k, v in receipt.items() if k != "replayed"
    }
    assert await sample_count(h) == 50
    async with h.runtime.db.session(system=True) as session:
        batches = await session.scalar(select(func.count()).select_from(BiometricBatch))
    assert batches == 1


async def test_overlapping_batches_do_not_duplicate(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    assert (await send(h, clinician, patient_id, "a", minutes(0, 60))).status_code == 201
    overlap = await send(h, clinician, patient_id, "b", minutes(30, 60))
    assert overlap.status_code == 201
    body = overlap.json()
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (30, 30, 0)
    assert await sample_count(h) == 90

    # The same time from another source is another sample; a repeat inside a batch is not.
    other_source = [{**s, "source": "ring-2"} for s in minutes(0, 5)]
    mixed = await send(h, clinician, patient_id, "c", other_source + other_source[:2])
    assert (mixed.json()["accepted"], mixed.json()["duplicate"]) == (5, 2)
    assert await sample_count(h) == 95


async def test_bad_rows_are_named_and_good_rows_kept(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    good = minutes(0, 3)
    rows: list[Any] = [
        good[0],
        {**good[1], "ts": "2026-01-05 09:30"},  # no zone
        {**good[1], "value": 400},  # out of range
        {**good[1], "unit": "furlongs"},
        {**good[1], "stream": "mood_ring"},
        {**good[1], "ts": future},
        {k: v for k, v in good[1].items() if k != "source"},
        "not an object",
        {**good[1], "value": "fast"},
        good[1],
        {"stream": "sleep_stage", "ts": good[2]["ts"], "value": "REM", "source": "watch-1"},
        {"stream": "sleep_stage", "ts": good[2]["ts"], "value": 7, "source": "watch-2"},
        {
            "stream": "skin_temperature",
            "ts": good[2]["ts"],
            "value": 33.1,
            "unit": "degC",
            "source": "watch-1",
        },
    ]
    response = await send(h, clinician, patient_id, "mixed", rows)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["received"], body["accepted"], body["rejected"]) == (13, 4, 9)
    assert [(r["index"], r["reason"], r["field"]) for r in body["rejections"]] == [
        (1, "bad_format", "ts"),
        (2, "out_of_range", "value"),
        (3, "unknown_unit", "unit"),
        (4, "unknown_stream", "stream"),
        (5, "future_time", "ts"),
        (6, "missing_field", "source"),
        (7, "bad_format", None),
        (8, "bad_format", "value"),
        (11, "out_of_range", "value"),
    ]
    assert "furlongs" not in response.text
    assert "mood_ring" not in response.text
    assert await sample_count(h) == 4
    async with h.runtime.db.session(system=True) as session:
        stage = await session.scalar(
            select(BiometricSample.value).where(BiometricSample.stream == "sleep_stage")
        )
    assert stage == 3.0  # rem


async def test_consent_withdrawal_blocks_ingestion(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    never = await new_patient(h, clinician, consent=False)
    refused = await send(h, clinician, never, "x", minutes(0, 5))
    assert refused.status_code == 403
    assert refused.json()["code"] == "consent_required"

    patient_id = await new_patient(h, clinician)
    assert (await send(h, clinician, patient_id, "before", minutes(0, 5))).status_code == 201
    await set_consent(h, clinician, patient_id, granted=False)
    after = await send(h, clinician, patient_id, "after", minutes(10, 5))
    assert after.status_code == 403
    assert after.json()["code"] == "consent_required"
    assert await sample_count(h) == 5
    async with h.runtime.db.session(system=True) as session:
        batches = await session.scalar(select(func.count()).select_from(BiometricBatch))
    assert batches == 1


async def test_ndjson_batches(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    lines = [orjson.dumps({"client_batch_id": "nd-1"})]
    lines += [orjson.dumps(row) for row in minutes(0, 20, stream="steps", value=12)]
    lines.insert(5, b"{not json")
    body = b"\n".join(lines) + b"\n"
    response = await h.client.post(
        url(patient_id),
        content=body,
        headers={**bearer(clinician), "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert (receipt["accepted"], receipt["rejected"]) == (20, 1)
    assert receipt["rejections"] == [{"index": 4, "reason": "bad_format", "field": None}]
    assert await sample_count(h) == 20

    resent = await h.client.post(
        url(patient_id),
        content=body,
        headers={**bearer(clinician), "Content-Type": "application/x-ndjson"},
    )
    assert resent.status_code == 200
    assert resent.json()["replayed"] is True

    for bad in (b"", b'{"samples": []}\n', b"[1]\n"):
        refused = await h.client.post(
            url(patient_id),
            content=bad,
            headers={**bearer(clinician), "Content-Type": "application/x-ndjson"},
        )
        assert refused.status_code == 422, bad
    wrong_type = await h.client.post(
        url(patient_id), content=body, headers={**bearer(clinician), "Content-Type": "text/csv"}
    )
    assert wrong_type.status_code == 415
    assert await sample_count(h) == 20


async def test_a_batch_of_100000_samples_is_accepted(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    samples = [
        {
            "stream": "activity_counts",
            "ts": (start + timedelta(minutes=i)).isoformat(),
            "value": i % 500,
            "source": "actiwatch",
        }
        for i in range(100_000)
    ]
    body = orjson.dumps({"client_batch_id": "big", "samples": samples})
    assert len(body) > 1_048_576  # over the general body limit, within the ingest limit
    response = await h.client.post(
        url(patient_id),
        content=body,
        headers={**bearer(clinician), "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["accepted"] == 100_000
    assert await sample_count(h) == 100_000

    too_many = orjson.dumps({"client_batch_id": "huge", "samples": samples + samples[:1]})
    refused = await h.client.post(
        url(patient_id),
        content=too_many,
        headers={**bearer(clinician), "Content-Type": "application/json"},
    )
    assert refused.status_code == 413
    assert refused.json()["code"] == "batch_too_large"


async def test_the_ingest_body_limit_is_its_own(harness_factory: Any) -> None:
    h: Harness = await harness_factory(max_ingest_bytes=2000)
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    refused = await send(h, clinician, patient_id, "big", minutes(0, 100))
    assert refused.status_code == 413
    assert refused.json()["code"] == "payload_too_large"
    assert (await send(h, clinician, patient_id, "small", minutes(0, 2))).status_code == 201


async def test_who_may_upload(h: Harness) -> None:
    admin = await h.token_for(Role.admin)
    owner = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, owner)
    other_record = await new_patient(h, owner)

    email, user_id = await h.user(Role.patient)
    linked = await h.client.post(
        f"/api/v1/patients/{patient_id}/account",
        json={"user_id": str(user_id)},
        headers=bearer(admin),
    )
    assert linked.status_code == 204, linked.text
    patient = (await h.login(email))["access_token"]
    own = await send(h, patient, patient_id, "own", minutes(0, 3))
    assert own.status_code == 201, own.text
    assert (await send(h, admin, patient_id, "admin", minutes(3, 3))).status_code == 201

    outsiders = {
        "clinician off the team": await h.token_for(Role.clinician),
        "researcher": await h.token_for(Role.researcher),
        "patient, another record": patient,
    }
    for who, token in outsiders.items():
        target = other_record if who.startswith("patient") else patient_id
        refused = await send(h, token, target, f"x-{who}", minutes(10, 3))
        assert refused.status_code == 404, who
        assert refused.json()["code"] == "not_found", who
    assert (await send(h, admin, str(uuid.uuid4()), "nobody", minutes(0, 1))).status_code == 404
    assert await sample_count(h) == 6


async def test_one_audit_record_and_one_event_per_batch(h: Harness) -> None:
    bus = h.runtime.bus
    assert isinstance(bus, InProcessBus)
    events: list[dict[str, Any]] = []

    async def handler(payload: dict[str, Any]) -> None:
        events.append(payload)

    bus.subscribe("biometrics.batch_accepted", handler)
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    rows = minutes(0, 30) + minutes(0, 10, stream="steps", value=40)
    first = await send(h, clinician, patient_id, "ev-1", rows)
    assert first.status_code == 201
    assert await audit_actions(h, patient_id, "biometrics.") == ["biometrics.ingest"]
    async with h.runtime.db.session(system=True) as session:
        details = await session.scalar(
            select(AuditEvent.details).where(AuditEvent.action == "biometrics.ingest")
        )
    assert details is not None
    assert (details["accepted"], details["rejected"]) == (40, 0)

    await h.drain_events()
    assert len(events) == 1
    event = events[0]
    assert event["event_type"] == "biometrics.batch_accepted"
    assert event["patient_id"] == patient_id
    assert event["batch_id"] == first.json()["batch_id"]
    assert event["streams"] == ["heart_rate", "steps"]
    assert event["start"] == T0.isoformat()
    assert event["end"] == (T0 + timedelta(minutes=29)).isoformat()
    assert event["accepted"] == 40
    assert "value" not in orjson.dumps(event).decode().replace('"values"', "")

    # A resend: audited as a replay, no new event; a batch adding nothing: no event.
    assert (await send(h, clinician, patient_id, "ev-1", rows)).status_code == 200
    assert (await send(h, clinician, patient_id, "ev-2", rows)).status_code == 201
    await h.drain_events()
    assert len(events) == 1
    assert sorted(await audit_actions(h, patient_id, "biometrics.")) == [
        "biometrics.batch_replayed",
        "biometrics.ingest",
        "biometrics.ingest",
    ]


async def test_malformed_batches_are_422_and_write_nothing(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    for body in (
        b"{not json",
        b"[]",
        b'{"client_batch_id": "x"}',
        b'{"client_batch_id": "", "samples": []}',
        b'{"client_batch_id": 5, "samples": []}',
        b'{"client_batch_id": "x", "samples": {}}',
    ):
        response = await h.client.post(
            url(patient_id),
            content=body,
            headers={**bearer(clinician), "Content-Type": "application/json"},
        )
        assert response.status_code == 422, body
        assert response.json()["code"] == "invalid_batch"
    assert await sample_count(h) == 0


async def test_postgres_partitions_samples_by_month(h: Harness) -> None:
    if h.runtime.settings.is_sqlite:
        pytest.skip("partitioning is PostgreSQL only; SQLite has the same table unpartitioned")
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    # This month has its own partition (the migration makes them around its run time).
    month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    recent = [
        {**row, "ts": (month + timedelta(minutes=i)).isoformat()}
        for i, row in enumerate(minutes(0, 3))
    ]
    old = {**minutes(0, 1)[0], "ts": "2002-05-01T00:00:00Z"}
    assert (await send(h, clinician, patient_id, "p", [*recent, old])).status_code == 201
    async with h.runtime.db.engine.connect() as conn:
        partitions = await conn.scalar(
            text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'biometric_samples'::regclass")
        )
        monthly = await conn.scalar(
            text(f"SELECT count(*) FROM biometric_partitions.biometric_samples_{month:%Y_%m}")  # noqa: S608
        )
        default = await conn.scalar(
            text("SELECT count(*) FROM biometric_partitions.biometric_samples_default")
        )
    assert partitions is not None
    assert partitions > 12
    assert (monthly, default) == (3, 1)


async def test_concurrent_resends_store_the_batch_once(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    rows = minutes(0, 500)
    responses = await asyncio.gather(
        *(send(h, clinician, patient_id, "race", rows) for _ in range(4))
    )
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 201]
    assert len({r.json()["batch_id"] for r in responses}) == 1
    assert await sample_count(h) == 500
