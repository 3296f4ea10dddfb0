"""Streamed export of a patient's samples as CSV and Parquet through the real app: columns,
order, file name without PHI, audit before streaming, and 90 days of minute data (129,600
rows) read back equal to the stored rows, produced page by page."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq  # type: ignore[import-untyped]
from sqlalchemy import select

from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from clarity.biometrics import export
from clarity.biometrics.models import BiometricSample
from clarity.biometrics.queries import Window
from clarity.biometrics.service import store_samples
from clarity.biometrics.streams import Sample
from tests.api.test_biometrics_ingest import PATIENT, new_patient, send
from tests.conftest import Harness, bearer

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def url(patient_id: str) -> str:
    return f"/api/v1/patients/{patient_id}/biometrics/export"


async def small_series(h: Harness, token: str, patient_id: str) -> None:
    samples = (
        [
            {
                "stream": "heart_rate",
                "ts": (T0 + timedelta(minutes=i)).isoformat(),
                "value": 60 + i,
                "source": "watch-1",
            }
            for i in range(5)
        ]
        + [
            {
                "stream": "steps",
                "ts": (T0 + timedelta(minutes=i)).isoformat(),
                "value": 10 * i,
                "source": "phone, left pocket",
            }  # a comma, quoted by the CSV writer
            for i in range(3)
        ]
        + [
            {"stream": "generic", "ts": T0.isoformat(), "value": 1.5, "unit": "mg", "source": "x"},
            {
                "stream": "steps",
                "ts": (T0 - timedelta(minutes=1)).isoformat(),
                "value": 1,
                "source": "watch-1",
            },  # before the range
        ]
    )
    response = await send(h, token, patient_id, uuid.uuid4().hex, samples)
    assert response.status_code == 201, response.text


RANGE = {"start": "2026-01-05T00:00:00Z", "end": "2026-01-06T00:00:00Z"}


async def test_csv_export_of_two_streams(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    await small_series(h, clinician, patient_id)
    response = await h.client.get(
        url(patient_id),
        params={"format": "csv", "streams": "steps,heart_rate", **RANGE},
        headers=bearer(clinician),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition == (f'attachment; filename="biometrics-{patient_id}-20260105-20260106.csv"')
    for phi in (PATIENT["given_name"], PATIENT["family_name"], PATIENT["birth_date"]):
        assert phi not in disposition
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["stream", "ts", "value", "unit", "source"]
    assert rows[1:] == [
        ["steps", "2026-01-05T00:00:00Z", "0.0", "{steps}", "phone, left pocket"],
        ["steps", "2026-01-05T00:01:00Z", "10.0", "{steps}", "phone, left pocket"],
        ["steps", "2026-01-05T00:02:00Z", "20.0", "{steps}", "phone, left pocket"],
    ] + [
        ["heart_rate", f"2026-01-05T00:0{i}:00Z", f"{60 + i}.0", "/min", "watch-1"]
        for i in range(5)
    ]

    # Every stream when none is named; generic has no unit.
    everything = await h.client.get(
        url(patient_id), params={"format": "csv", **RANGE}, headers=bearer(clinician)
    )
    lines = list(csv.reader(io.StringIO(everything.text)))[1:]
    assert len(lines) == 9
    assert ["generic", "2026-01-05T00:00:00Z", "1.5", "", "x"] in lines

    async with h.runtime.db.session(system=True) as session:
        audited = (
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.resource_id == patient_id, AuditEvent.action == "biometrics.read"
                )
            )
        ).all()
    assert [e.details["view"] for e in audited] == ["export", "export"]
    assert audited[0].details == {
        "view": "export",
        "format": "csv",
        "streams": ["steps", "heart_rate"],
        "start": "2026-01-05T00:00:00+00:00",
        "end": "2026-01-06T00:00:00+00:00",
    }


async def test_parquet_export_reads_back(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    await small_series(h, clinician, patient_id)
    response = await h.client.get(
        url(patient_id),
        params={"format": "parquet", "streams": "heart_rate,generic", **RANGE},
        headers=bearer(clinician),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    assert response.headers["content-disposition"].endswith('-20260105-20260106.parquet"')
    table = pq.read_table(io.BytesIO(response.content))
    assert table.column_names == ["stream", "ts", "value", "unit", "source"]
    assert str(table.schema.field("ts").type) == "timestamp[us, tz=UTC]"
    assert table.to_pylist() == [
        {
            "stream": "heart_rate",
            "ts": T0 + timedelta(minutes=i),
            "value": 60.0 + i,
            "unit": "/min",
            "source": "watch-1",
        }
        for i in range(5)
    ] + [{"stream": "generic", "ts": T0, "value": 1.5, "unit": None, "source": "x"}]

    # An empty range is a valid file with no rows.
    empty = await h.client.get(
        url(patient_id),
        params={
            "format": "parquet",
            "start": "2025-01-01T00:00:00Z",
            "end": "2025-02-01T00:00:00Z",
        },
        headers=bearer(clinician),
    )
    assert empty.status_code == 200
    assert pq.read_table(io.BytesIO(empty.content)).num_rows == 0


async def test_export_is_refused_before_anything_streams(h: Harness) -> None:
    owner = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, owner)
    await small_series(h, owner, patient_id)
    for role in (Role.clinician, Role.researcher):
        refused = await h.client.get(
            url(patient_id),
            params={"format": "csv", **RANGE},
            headers=bearer(await h.token_for(role)),
        )
        assert refused.status_code == 404
        assert refused.json()["code"] == "not_found"
        assert "heart_rate" not in refused.text


DAYS = 90


async def _store_minutes(h: Harness, patient_id: str) -> list[tuple[datetime, float]]:
    """90 days of minute heart rate, stored directly (the ingestion API is tested elsewhere)."""
    series = [
        (T0 + timedelta(minutes=i), float(50 + (i * 7919) % 60) + 0.25) for i in range(DAYS * 1440)
    ]
    org_id = await h.org()
    async with h.runtime.db.session(org_id) as session:
        stored = await store_samples(
            session,
            org_id,
            uuid.UUID(patient_id),
            uuid.uuid4(),
            [Sample("heart_rate", ts, value, "watch-1") for ts, value in series],
        )
        await session.commit()
    assert stored == len(series)
    return series


async def test_90_days_of_minute_data_stream_in_pages(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    series = await _store_minutes(h, patient_id)
    params = {
        "streams": "heart_rate",
        "start": "2026-01-05T00:00:00Z",
        "end": (T0 + timedelta(days=DAYS)).isoformat(),
    }

    as_csv = await h.client.get(
        url(patient_id), params={"format": "csv", **params}, headers=bearer(clinician)
    )
    assert as_csv.status_code == 200
    lines = as_csv.text.splitlines()
    assert len(lines) == 1 + len(series) == 1 + 129_600
    assert lines[1] == "heart_rate,2026-01-05T00:00:00Z,50.25,/min,watch-1"
    last_ts, last_value = series[-1]
    assert lines[-1] == f"heart_rate,{last_ts:%Y-%m-%dT%H:%M:%SZ},{last_value!r},/min,watch-1"

    as_parquet = await h.client.get(
        url(patient_id), params={"format": "parquet", **params}, headers=bearer(clinician)
    )
    assert as_parquet.status_code == 200
    parquet = pq.ParquetFile(io.BytesIO(as_parquet.content))
    assert parquet.metadata.num_rows == len(series)
    assert parquet.metadata.num_row_groups == -(-len(series) // export.EXPORT_PAGE)
    table = parquet.read()
    async with h.runtime.db.session(await h.org()) as session:
        stored = (
            await session.execute(
                select(BiometricSample.ts, BiometricSample.value)
                .where(BiometricSample.patient_id == uuid.UUID(patient_id))
                .order_by(BiometricSample.ts)
            )
        ).all()
    assert list(
        zip(table.column("ts").to_pylist(), table.column("value").to_pylist(), strict=True)
    ) == [(ts, value) for ts, value in stored]
    assert set(table.column("source").to_pylist()) == {"watch-1"}

    # Driven directly, the generators yield at most one page per chunk: memory is bounded
    # by the page size, not by the range (each page is read in its own session).
    org_id = await h.org()
    window = Window(uuid.UUID(patient_id), "heart_rate", T0, T0 + timedelta(days=DAYS))
    pages = -(-len(series) // export.EXPORT_PAGE)

    sizes: list[int] = []
    rows = 0
    async for chunk in export.csv_chunks(h.runtime.db, org_id, [window]):
        sizes.append(len(chunk))
        rows += chunk.count(b"\n")
    assert rows == 1 + len(series)
    assert len(sizes) == 1 + pages  # the header, then one chunk per page
    assert max(sizes) < 2 * sum(sizes) / pages

    parts: list[bytes] = [
        part async for part in export.parquet_chunks(h.runtime.db, org_id, [window])
    ]
    assert len(parts) == pages + 1  # one row group per page, then the footer
    assert pq.read_table(io.BytesIO(b"".join(parts))).num_rows == len(series)
    assert max(len(p) for p in parts) < 2 * sum(len(p) for p in parts) / pages
