"""Reading the biometric store through the real app: raw pages and the NDJSON stream,
aggregates per bucket (hand-computed, local days across a DST change), latest values,
daily coverage with known gaps, bad parameters, and one audit record per read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select

from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from tests.api.test_biometrics_ingest import new_patient, send
from tests.conftest import Harness, bearer


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def sample(ts: datetime, value: float, source: str = "watch-1", stream: str = "heart_rate") -> Any:
    return {"stream": stream, "ts": ts.isoformat(), "value": value, "source": source}


async def upload(h: Harness, token: str, patient_id: str, samples: list[Any]) -> None:
    for start in range(0, len(samples), 50_000):
        chunk = samples[start : start + 50_000]
        response = await send(h, token, patient_id, uuid.uuid4().hex, chunk)
        assert response.status_code == 201, response.text
        assert response.json()["accepted"] == len(chunk)


async def get(h: Harness, token: str, patient_id: str, view: str, **params: Any) -> Any:
    return await h.client.get(
        f"/api/v1/patients/{patient_id}/biometrics/{view}", params=params, headers=bearer(token)
    )


async def ok(h: Harness, token: str, patient_id: str, view: str, **params: Any) -> Any:
    response = await get(h, token, patient_id, view, **params)
    assert response.status_code == 200, response.text
    return response.json()


async def reads_audited(h: Harness, patient_id: str) -> list[dict[str, Any]]:
    async with h.runtime.db.session(system=True) as session:
        rows = await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.resource_id == patient_id, AuditEvent.action == "biometrics.read")
            .order_by(AuditEvent.occurred_at)
        )
        return [dict(e.details) for e in rows.all()]


# A prepared series (Oslo is UTC+1 in January): heart rate from two sources.
JAN5 = [
    sample(utc(2026, 1, 5, 9, 0, 0), 60),
    sample(utc(2026, 1, 5, 9, 0, 30), 70),
    sample(utc(2026, 1, 5, 9, 0, 0), 50, source="ring-2"),
    sample(utc(2026, 1, 5, 9, 1, 10), 80),
    sample(utc(2026, 1, 5, 9, 7, 0), 90),
    sample(utc(2026, 1, 5, 10, 30, 0), 100),
    sample(utc(2026, 1, 5, 23, 30, 0), 40),  # 00:30 on 6 January in Oslo
    sample(utc(2026, 1, 4, 22, 59, 59), 30),  # before the range
    sample(utc(2026, 1, 6, 0, 0, 0), 30),  # at the range's (exclusive) end
]
JAN5_RANGE = {"start": "2026-01-05T00:00:00+01:00", "end": "2026-01-06T00:00:00Z"}


def buckets(body: dict[str, Any]) -> list[tuple[str, str, int, float, float, float, float]]:
    return [
        (b["start"], b["end"], b["count"], b["mean"], b["min"], b["max"], b["sum"])
        for b in body["buckets"]
    ]


async def test_aggregates_per_bucket_are_computed_by_hand(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    await upload(h, clinician, patient_id, JAN5)
    query = {"stream": "heart_rate", **JAN5_RANGE}

    minute = await ok(h, clinician, patient_id, "aggregates", bucket="1min", **query)
    assert minute["unit"] == "/min"
    assert minute["timezone"] == "Europe/Oslo"
    # Buckets without samples (09:02 to 09:06, ...) are absent, not zero.
    assert buckets(minute) == [
        ("2026-01-05T09:00:00Z", "2026-01-05T09:01:00Z", 3, 60.0, 50.0, 70.0, 180.0),
        ("2026-01-05T09:01:00Z", "2026-01-05T09:02:00Z", 1, 80.0, 80.0, 80.0, 80.0),
        ("2026-01-05T09:07:00Z", "2026-01-05T09:08:00Z", 1, 90.0, 90.0, 90.0, 90.0),
        ("2026-01-05T10:30:00Z", "2026-01-05T10:31:00Z", 1, 100.0, 100.0, 100.0, 100.0),
        ("2026-01-05T23:30:00Z", "2026-01-05T23:31:00Z", 1, 40.0, 40.0, 40.0, 40.0),
    ]
    five = await ok(h, clinician, patient_id, "aggregates", bucket="5min", **query)
    assert buckets(five)[:2] == [
        ("2026-01-05T09:00:00Z", "2026-01-05T09:05:00Z", 4, 65.0, 50.0, 80.0, 260.0),
        ("2026-01-05T09:05:00Z", "2026-01-05T09:10:00Z", 1, 90.0, 90.0, 90.0, 90.0),
    ]
    hour = await ok(h, clinician, patient_id, "aggregates", bucket="1h", **query)
    assert buckets(hour) == [
        ("2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z", 5, 70.0, 50.0, 90.0, 350.0),
        ("2026-01-05T10:00:00Z", "2026-01-05T11:00:00Z", 1, 100.0, 100.0, 100.0, 100.0),
        ("2026-01-05T23:00:00Z", "2026-01-06T00:00:00Z", 1, 40.0, 40.0, 40.0, 40.0),
    ]
    # Local days: the 23:30 UTC sample is on 6 January in Oslo.
    day = await ok(h, clinician, patient_id, "aggregates", bucket="1day", **query)
    assert buckets(day) == [
        ("2026-01-04T23:00:00Z", "2026-01-05T23:00:00Z", 6, 75.0, 50.0, 100.0, 450.0),
        ("2026-01-05T23:00:00Z", "2026-01-06T23:00:00Z", 1, 40.0, 40.0, 40.0, 40.0),
    ]


async def test_day_buckets_follow_oslo_across_the_23_hour_day(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    # Clocks in Oslo went from 02:00 to 03:00 on 29 March 2026 (01:00 UTC).
    day29 = [sample(utc(2026, 3, 28, 23) + timedelta(hours=i), 30) for i in range(23)]
    edges = [sample(utc(2026, 3, 28, 22, 59), 27), sample(utc(2026, 3, 29, 22), 25)]
    await upload(h, clinician, patient_id, day29 + edges)
    body = await ok(
        h,
        clinician,
        patient_id,
        "aggregates",
        stream="heart_rate",
        bucket="1day",
        start="2026-03-28T00:00:00Z",
        end="2026-03-31T00:00:00Z",
    )
    assert buckets(body) == [
        ("2026-03-27T23:00:00Z", "2026-03-28T23:00:00Z", 1, 27.0, 27.0, 27.0, 27.0),
        ("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", 23, 30.0, 30.0, 30.0, 690.0),
        ("2026-03-29T22:00:00Z", "2026-03-30T22:00:00Z", 1, 25.0, 25.0, 25.0, 25.0),
    ]
    # The same day seen by coverage: 23 hours, 1380 minute epochs, 23 of them present.
    coverage = await ok(
        h,
        clinician,
        patient_id,
        "coverage",
        stream="heart_rate",
        start="2026-03-28T23:00:00Z",
        end="2026-03-29T22:00:00Z",
    )
    (only,) = coverage["days"]
    assert (only["date"], only["hours"], only["expected"], only["present"]) == (
        "2026-03-29",
        23.0,
        1380,
        23,
    )


async def test_pages_cover_the_range_exactly_once(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    t0 = utc(2026, 2, 1)
    rows = [sample(t0 + timedelta(minutes=i), 60 + i % 50) for i in range(240)]
    # Another source at the same instants, and times with microseconds.
    rows += [sample(t0 + timedelta(minutes=i), 55, source="ring-2") for i in range(0, 240, 3)]
    rows += [sample(t0 + timedelta(minutes=i, microseconds=123_457), 61) for i in range(0, 240, 7)]
    rows.append(sample(t0 - timedelta(microseconds=1), 99))  # just before the range
    await upload(h, clinician, patient_id, rows)
    in_range = sorted(
        (datetime.fromisoformat(r["ts"]), r["source"], float(r["value"])) for r in rows[:-1]
    )

    seen: list[tuple[datetime, str, float]] = []
    params: dict[str, Any] = {
        "stream": "heart_rate",
        "start": z(t0),
        "end": z(t0 + timedelta(hours=4)),
        "limit": 37,
    }
    pages = 0
    while True:
        body = await ok(h, clinician, patient_id, "samples", **params)
        pages += 1
        assert len(body["items"]) <= 37
        seen += [(datetime.fromisoformat(i["ts"]), i["source"], i["value"]) for i in body["items"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == in_range
    assert pages == -(-len(in_range) // 37)
    assert body["unit"] == "/min"

    # NDJSON: the whole range in one streamed response, the same rows.
    streamed = await h.client.get(
        f"/api/v1/patients/{patient_id}/biometrics/samples",
        params={"stream": "heart_rate", "start": z(t0), "end": z(t0 + timedelta(hours=4))},
        headers={**bearer(clinician), "Accept": "application/x-ndjson"},
    )
    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in streamed.content.splitlines()]
    assert [(datetime.fromisoformat(x["ts"]), x["source"], x["value"]) for x in lines] == in_range
    assert {(x["stream"], x["unit"]) for x in lines} == {("heart_rate", "/min")}

    # One audit record per call, without values.
    audited = await reads_audited(h, patient_id)
    assert len(audited) == pages + 1
    assert audited[0]["view"] == "samples"
    assert audited[0]["count"] == 37
    assert audited[-1]["streamed"] is True
    assert "99" not in orjson.dumps(audited).decode()


async def test_latest_value_of_each_stream(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    assert await ok(h, clinician, patient_id, "latest") == []
    t0 = utc(2026, 4, 1, 8)
    await upload(
        h,
        clinician,
        patient_id,
        [
            sample(t0, 60),
            sample(t0 + timedelta(minutes=5), 61),
            sample(t0 + timedelta(minutes=9), 64, source="ring-2"),  # the newest heart rate
            sample(t0 + timedelta(minutes=7), 62),
            sample(t0, 120, stream="steps"),
            sample(t0 + timedelta(hours=1), 40, source="a-phone", stream="steps"),
            sample(t0 + timedelta(hours=1), 45, source="b-watch", stream="steps"),  # tie: "b" wins
            sample(t0 - timedelta(days=30), 36.5, stream="skin_temperature"),
        ],
    )
    body = await ok(h, clinician, patient_id, "latest")
    assert body == [
        {
            "stream": "heart_rate",
            "ts": "2026-04-01T08:09:00Z",
            "value": 64.0,
            "source": "ring-2",
            "unit": "/min",
        },
        {
            "stream": "skin_temperature",
            "ts": "2026-03-02T08:00:00Z",
            "value": 36.5,
            "source": "watch-1",
            "unit": "Cel",
        },
        {
            "stream": "steps",
            "ts": "2026-04-01T09:00:00Z",
            "value": 45.0,
            "source": "b-watch",
            "unit": "{steps}",
        },
    ]
    # Another patient's samples are not this patient's latest.
    other = await new_patient(h, clinician)
    assert await ok(h, clinician, other, "latest") == []
    audited = await reads_audited(h, patient_id)
    assert audited[-1] == {"view": "latest", "streams": ["heart_rate", "skin_temperature", "steps"]}


async def test_coverage_shows_known_gaps(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    day_start = utc(2026, 1, 4, 23)  # 5 January, 00:00 in Oslo; minute m of the day below
    missing = set(range(0, 30))  # a leading 30 minutes
    missing |= set(range(11 * 60, 13 * 60))  # 10:00-12:00 UTC: 120 minutes
    missing |= set(range(13 * 60 + 30, 13 * 60 + 50))  # 12:30-12:50 UTC: 20 minutes
    missing |= set(range(1440 - 90, 1440))  # a trailing 90 minutes, into the next day
    minutes_present = [m for m in range(1440) if m not in missing]
    rows = [sample(day_start + timedelta(minutes=m, seconds=m % 50), 70) for m in minutes_present]
    rows += [sample(day_start + timedelta(minutes=100, seconds=30), 71, source="ring-2")]
    await upload(h, clinician, patient_id, rows)
    params = {
        "stream": "heart_rate",
        "start": z(day_start),
        "end": z(day_start + timedelta(hours=30)),  # 06:00 on 6 January in Oslo
    }

    body = await ok(h, clinician, patient_id, "coverage", **params)
    assert (body["epoch_seconds"], body["gap_minutes"], body["timezone"]) == (60, 60, "Europe/Oslo")
    jan5, jan6 = body["days"]
    assert (jan5["date"], jan5["hours"], jan5["expected"], jan5["present"]) == (
        "2026-01-05",
        24.0,
        1440,
        1440 - 260,
    )
    assert jan5["fraction"] == (1440 - 260) / 1440
    assert jan5["gaps"] == [
        {"start": "2026-01-05T10:00:00Z", "end": "2026-01-05T12:00:00Z", "minutes": 120.0},
        {"start": "2026-01-05T21:30:00Z", "end": "2026-01-05T23:00:00Z", "minutes": 90.0},
    ]
    # The next day has no data: one gap from midnight to the end of the range.
    assert (jan6["date"], jan6["hours"], jan6["expected"], jan6["present"]) == (
        "2026-01-06",
        6.0,
        360,
        0,
    )
    assert jan6["gaps"] == [
        {"start": "2026-01-05T23:00:00Z", "end": "2026-01-06T05:00:00Z", "minutes": 360.0}
    ]
    assert (body["expected"], body["present"]) == (1800, 1180)

    # A lower threshold also reports the leading 30 and the 20 minutes.
    fine = await ok(h, clinician, patient_id, "coverage", gap_minutes=15, **params)
    assert [g["minutes"] for g in fine["days"][0]["gaps"]] == [30.0, 120.0, 20.0, 90.0]
    assert fine["days"][0]["gaps"][0]["start"] == "2026-01-04T23:00:00Z"
    # Hour epochs: every hour has a sample but 10:00, 11:00 and 22:00 UTC.
    hourly = await ok(h, clinician, patient_id, "coverage", epoch_seconds=3600, **params)
    assert (hourly["days"][0]["expected"], hourly["days"][0]["present"]) == (24, 21)


async def test_bad_parameters_are_422_naming_the_field(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, clinician)
    good = {"stream": "heart_rate", "start": "2026-01-05T00:00:00Z", "end": "2026-01-06T00:00:00Z"}
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("samples", {**good, "start": None}, "query.start"),
        ("samples", {**good, "start": "2026-01-05T00:00:00"}, "query.start"),
        ("samples", {**good, "end": "yesterday"}, "query.end"),
        ("samples", {**good, "end": "2026-01-05T00:00:00Z"}, "query.end"),
        ("samples", {**good, "end": "2027-02-01T00:00:00Z"}, "query.end"),
        ("samples", {**good, "stream": "mood_ring"}, "query.stream"),
        ("samples", {**good, "limit": 10_001}, "query.limit"),
        ("samples", {**good, "limit": 0}, "query.limit"),
        ("samples", {**good, "cursor": "not-a-cursor"}, "query.cursor"),
        ("aggregates", {**good, "bucket": "2h"}, "query.bucket"),
        ("aggregates", good, "query.bucket"),
        (
            "aggregates",
            {**good, "bucket": "1min", "end": "2026-03-01T00:00:00Z"},
            "query.bucket",
        ),
        ("coverage", {**good, "stream": "hrv_rmssd"}, "query.epoch_seconds"),
        ("coverage", {**good, "epoch_seconds": 0}, "query.epoch_seconds"),
        ("coverage", {**good, "gap_minutes": 0}, "query.gap_minutes"),
        ("export", {**good, "format": "xlsx"}, "query.format"),
        ("export", {**good, "format": "csv", "streams": "heart_rate,mood_ring"}, "query.streams"),
        ("export", {"format": "csv", "start": good["start"]}, "query.end"),
    ]
    for view, params, field in cases:
        response = await get(
            h, clinician, patient_id, view, **{k: v for k, v in params.items() if v is not None}
        )
        assert response.status_code == 422, (view, params, response.text)
        body = response.json()
        assert body["code"] == "validation_error"
        assert field in [e["field"] for e in body["errors"]], (view, params, body)
        assert "mood_ring" not in response.text
        assert "yesterday" not in response.text

    # A cursor from another range is refused too.
    t0 = utc(2026, 1, 5)
    await upload(
        h, clinician, patient_id, [sample(t0 + timedelta(minutes=i), 60) for i in range(3)]
    )
    first = await ok(h, clinician, patient_id, "samples", limit=1, **good)
    elsewhere = {**good, "start": "2026-02-01T00:00:00Z", "end": "2026-02-02T00:00:00Z"}
    moved = await get(h, clinician, patient_id, "samples", cursor=first["next_cursor"], **elsewhere)
    assert moved.status_code == 422
    # Nothing was read: no audit record for the refused calls (only the one page).
    assert len(await reads_audited(h, patient_id)) == 1


async def test_a_patient_reads_their_own_record_but_no_other(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    own = await new_patient(h, clinician)
    other = await new_patient(h, clinician)
    admin = await h.token_for(Role.admin)
    email, user_id = await h.user(Role.patient)
    linked = await h.client.post(
        f"/api/v1/patients/{own}/account", json={"user_id": str(user_id)}, headers=bearer(admin)
    )
    assert linked.status_code in {200, 201, 204}, linked.text
    patient = (await h.login(email))["access_token"]
    await upload(h, clinician, own, [sample(utc(2026, 1, 5, 9), 60)])
    assert len(await ok(h, patient, own, "latest")) == 1
    refused = await get(h, patient, other, "latest")
    assert refused.status_code == 404
    researcher = await h.token_for(Role.researcher)
    assert (await get(h, researcher, own, "latest")).status_code == 404
