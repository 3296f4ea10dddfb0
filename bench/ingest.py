"""Ingestion and query benchmark on PostgreSQL: how close ingestion gets to the database's
own ceiling, and how fast a month of minute data comes back.

In one run, on a fresh PostgreSQL database and one real server (``clarity serve``):

(a) the JSON batch API end to end: ``POST /api/v1/patients/{id}/biometrics`` over HTTP with
    100,000-sample batches (validation, dedup, audit, event) — samples/s;
(b) file import: ``clarity import`` of the same rows written as a generic CSV — samples/s;
(c) a raw COPY of the same rows straight into ``biometric_samples`` — the ceiling;

then prints the ratios a/c and b/c (goal a/c >= 0.5). It then loads the rest of
``--patients`` patients (x ``--days`` days of minute heart rate, by COPY), and measures the
latency (median, p95) of "30 days of minute data, one stream, one patient" as raw samples
(the whole range, NDJSON-streamed) and as hourly aggregates (goal p95 < 50 ms).

    python bench/ingest.py [--patients 100] [--days 30] [--measured-patients 4]
        [--postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test]

These machines are noisy: compare the ratios, measured in the same run, not the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_auth_me import EMAIL, PASSWORD, clarity, free_port, wait_ready

BATCH = 100_000
STREAM = "heart_rate"
SOURCE = "bench-watch"


def minute_rows(days: int, end: datetime) -> list[tuple[datetime, float]]:
    """``days`` of minute heart rate ending at ``end``: a daily rhythm, deterministic."""
    start = end - timedelta(days=days)
    count = days * 1440
    return [
        (start + timedelta(minutes=i), float(55 + (i % 1440) // 48 + (i * 7919) % 11))
        for i in range(count)
    ]


def batches(rows: list[tuple[datetime, float]]) -> Iterator[bytes]:
    for first in range(0, len(rows), BATCH):
        chunk = rows[first : first + BATCH]
        yield orjson.dumps(
            {
                "client_batch_id": f"bench-{uuid.uuid4().hex}",
                "samples": [
                    {
                        "stream": STREAM,
                        "ts": ts.isoformat(),
                        "value": v,
                        "unit": "/min",
                        "source": SOURCE,
                    }
                    for ts, v in chunk
                ],
            }
        )


def write_csv(path: Path, rows: list[tuple[datetime, float]]) -> None:
    with path.open("w") as out:
        out.write("time,hr\n")
        for ts, v in rows:
            out.write(f"{ts.isoformat()},{v}\n")


async def admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(statement))
    await engine.dispose()


async def copy_rows(
    url: str, org_id: uuid.UUID, patient_ids: list[uuid.UUID], rows: list[tuple[datetime, float]]
) -> float:
    """Raw COPY of ``rows`` for each patient into biometric_samples; returns seconds."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    batch_id = uuid.uuid4()
    try:
        started = time.perf_counter()
        for patient_id in patient_ids:
            await conn.copy_records_to_table(
                "biometric_samples",
                records=[(org_id, patient_id, STREAM, ts, v, SOURCE, batch_id) for ts, v in rows],
                columns=[
                    "organization_id",
                    "patient_id",
                    "stream",
                    "ts",
                    "value",
                    "source",
                    "batch_id",
                ],
            )
        return time.perf_counter() - started
    finally:
        await conn.close()


async def create_patients(
    client: httpx.AsyncClient, headers: dict[str, str], count: int, mrn_prefix: str
) -> list[str]:
    """``count`` synthetic patients with consent to wearable data; their ids."""
    ids = []
    for n in range(count):
        created = await client.post(
            "/api/v1/patients",
            json={
                "given_name": "Bench",
                "family_name": "Patient",
                "birth_date": "1970-01-01",
                "timezone": "Europe/Oslo",
                "mrn": f"{mrn_prefix}-{n}",
            },
            headers=headers,
        )
        created.raise_for_status()
        patient_id = created.json()["id"]
        (
            await client.post(
                f"/api/v1/patients/{patient_id}/consents",
                json={"category": "wearable_data", "granted": True},
                headers=headers,
            )
        ).raise_for_status()
        ids.append(patient_id)
    return ids


async def api_setup(base: str, patients: int) -> tuple[str, list[str]]:
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        login = await client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
        token = login.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        return token, await create_patients(client, headers, patients, "BENCH")


async def post_batches(
    base: str, token: str, patient_ids: list[str], bodies: list[bytes], concurrency: int
) -> float:
    """Send every body for every patient, ``concurrency`` requests in flight; seconds."""
    jobs = [(p, b) for p in patient_ids for b in bodies]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)

        async def worker() -> None:
            while not queue.empty():
                patient_id, body = queue.get_nowait()
                response = await client.post(
                    f"/api/v1/patients/{patient_id}/biometrics", content=body, headers=headers
                )
                if response.status_code != 201:
                    raise RuntimeError(f"upload failed: {response.status_code}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--measured-patients", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=60, help="latency requests per kind")
    parser.add_argument(
        "--postgres",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/test",
        help="URL of a PostgreSQL database the benchmark may create a database beside",
    )
    args = parser.parse_args()

    name = f"clarity_bench_{uuid.uuid4().hex[:10]}"
    url = args.postgres.rsplit("/", 1)[0] + "/" + name
    asyncio.run(admin(args.postgres, f'CREATE DATABASE "{name}"'))
    workdir = Path(tempfile.mkdtemp(prefix="clarity-bench-ingest-"))
    port = free_port()
    env = {
        **os.environ,
        "CLARITY_DATABASE_URL": url,
        "CLARITY_SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnop",
        "CLARITY_RATE_LIMIT_PER_IP": "100000000",
        "CLARITY_RATE_LIMIT_PER_USER": "100000000",
        "CLARITY_LOG_LEVEL": "WARNING",
    }
    server = None
    try:
        clarity(env, "migrate")
        clarity(env, "create-user", "--email", EMAIL, "--password", PASSWORD, "--role", "clinician")
        server = subprocess.Popen(
            [sys.executable, "-m", "clarity.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        wait_ready(base)
        token, patient_ids = asyncio.run(api_setup(base, args.patients))
        end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
        rows = minute_rows(args.days, end)
        k = args.measured_patients
        bodies = list(batches(rows))
        n_samples = len(rows) * k

        a_seconds = asyncio.run(
            post_batches(base, token, patient_ids[:k], bodies, args.concurrency)
        )
        org_id = asyncio.run(_org_of(url))
        c_seconds = asyncio.run(
            copy_rows(url, org_id, [uuid.UUID(p) for p in patient_ids[k : 2 * k]], rows)
        )
        csv_path, mapping_path = workdir / "rows.csv", workdir / "mapping.json"
        write_csv(csv_path, rows)
        mapping_path.write_text(
            orjson.dumps(
                {"timestamp": "time", "columns": {"hr": STREAM}, "units": {STREAM: "/min"}}
            ).decode()
        )
        b_wall = sum(
            import_file(env, csv_path, mapping_path, patient_id)
            for patient_id in patient_ids[2 * k : 3 * k]
        )
        b_seconds = asyncio.run(_job_seconds(url))
        a_rate, b_rate, c_rate = (n_samples / t for t in (a_seconds, b_seconds, c_seconds))
        print(f"rows: {args.days} days of minute {STREAM} x {k} patients = {n_samples} samples")
        print(f"(a) JSON batch API end to end : {a_rate:>10.0f} samples/s")
        print(
            f"(b) file import (generic CSV) : {b_rate:>10.0f} samples/s "
            f"(the jobs' own time; {n_samples / b_wall:.0f}/s counting CLI start-up)"
        )
        print(f"(c) raw COPY (ceiling)        : {c_rate:>10.0f} samples/s")
        print(f"ratio a/c: {a_rate / c_rate:.2f} (goal >= 0.50)   ratio b/c: {b_rate / c_rate:.2f}")

        rest = [uuid.UUID(p) for p in patient_ids[3 * k :]]
        asyncio.run(copy_rows(url, org_id, rest, rows))
        asyncio.run(admin(url, "ANALYZE biometric_samples"))
        total = len(rows) * len(patient_ids)
        print(f"loaded: {len(patient_ids)} patients x {args.days} days = {total} samples")
        start, stop = rows[0][0], rows[-1][0] + timedelta(minutes=1)
        asyncio.run(latencies(base, token, patient_ids, start, stop, 5))  # warm-up
        measured = asyncio.run(latencies(base, token, patient_ids, start, stop, args.repeats))
        for name, label in (("raw", "raw samples, whole range"), ("hourly", "hourly aggregates")):
            values = measured[name]
            print(
                f"{label:<26}: median {statistics.median(values):7.1f} ms   "
                f"p95 {p95(values):7.1f} ms   ({len(values)} requests)"
            )
        goal = "meets" if p95(measured["hourly"]) < 50 else "MISSES"
        print(f"hourly aggregate p95 {goal} the goal of < 50 ms")
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
        asyncio.run(admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


def import_file(env: dict[str, str], path: Path, mapping: Path, patient_id: str) -> float:
    """``clarity import`` of a generic CSV for one patient (a subprocess, as an operator
    would run it); returns seconds."""
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "clarity.cli",
            "import",
            str(path),
            "--patient",
            patient_id,
            "--format",
            "generic_csv",
            "--mapping",
            str(mapping),
            "--source",
            SOURCE,
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


async def latencies(
    base: str, token: str, patient_ids: list[str], start: datetime, end: datetime, repeats: int
) -> dict[str, list[float]]:
    """Milliseconds per request: the whole range of raw samples (NDJSON-streamed) and its
    hourly aggregates, for one stream of one patient, cycling over patients."""
    headers = {"Authorization": f"Bearer {token}"}
    window = {"stream": STREAM, "start": start.isoformat(), "end": end.isoformat()}
    out: dict[str, list[float]] = {"raw": [], "hourly": []}
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        for n in range(repeats):
            patient_id = patient_ids[n % len(patient_ids)]
            began = time.perf_counter()
            raw = await client.get(
                f"/api/v1/patients/{patient_id}/biometrics/samples",
                params=window,
                headers={**headers, "Accept": "application/x-ndjson"},
            )
            rows = raw.content.count(b"\n")
            out["raw"].append((time.perf_counter() - began) * 1000)
            if raw.status_code != 200 or rows < 30 * 1440:
                raise RuntimeError(f"raw read failed: {raw.status_code}, {rows} rows")
            began = time.perf_counter()
            hourly = await client.get(
                f"/api/v1/patients/{patient_id}/biometrics/aggregates",
                params={**window, "bucket": "1h"},
                headers=headers,
            )
            out["hourly"].append((time.perf_counter() - began) * 1000)
            if hourly.status_code != 200:
                raise RuntimeError(f"aggregate read failed: {hourly.status_code}")
    return out


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18]


async def _job_seconds(url: str) -> float:
    """Running time the import jobs recorded themselves (parsing to commit, no start-up)."""
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        seconds: Any = (
            await conn.execute(text("SELECT sum(seconds_running) FROM import_jobs"))
        ).scalar_one()
    await engine.dispose()
    return float(seconds)


async def _org_of(url: str) -> uuid.UUID:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        org: Any = (await conn.execute(text("SELECT id FROM organizations LIMIT 1"))).scalar_one()
    await engine.dispose()
    return uuid.UUID(str(org))


if __name__ == "__main__":
    raise SystemExit(main())
