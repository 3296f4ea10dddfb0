"""Ingest-to-alert latency through the whole pipeline: API -> outbox -> RabbitMQ -> worker
-> rule engine -> alert -> Server-Sent Events, on PostgreSQL.

In one run, on a fresh PostgreSQL database and a RabbitMQ exchange/queues of its own
(a unique ``CLARITY_BROKER_PREFIX``, deleted afterwards): one ``clarity serve`` and
``--workers`` ``clarity worker`` processes. An admin adds the rule "heart rate above 120
for 10 minutes" (the default clinical pack stays in force beside it) and opens the alert
stream (``GET /api/v1/alerts/stream``) in a thread of its own. Then ``--patients``
simulated patients stream minute heart rate (plus activity counts with ``--activity``)
through ``POST /api/v1/patients/{id}/biometrics``, one sample per patient per simulated
minute, one simulated minute every ``--interval`` seconds (time is compressed: a minute of
data for every patient every ``--interval`` s, far more requests than wearables really
send, which upload every few minutes). Each patient has ``--episodes`` tachycardia
episodes (12 minutes above 120, staggered between patients), so the rule fires once per
episode, on the batch that completes ten minutes of hold.

Prints:

* ingest-to-alert latency, median and p99: from the moment the triggering batch is sent
  to the moment its ``alert.raised`` event arrives on the stream (goal: p99 < 1 s); the
  stream follows the outbox every ``CLARITY_ALERT_POLL_SECONDS`` (``--poll``), which is
  part of the latency;
* the API's own response time for the uploads (median, p99), as the baseline the
  pipeline's latency is measured against in the same run;
* rule evaluations per second: during the run (events processed by the alert consumer x
  the rules each event touches: offered load, not capacity), draining a backlog of
  ``--backlog`` batches per patient queued while no worker runs (capacity), and the pure
  engine (:func:`clarity.rules.engine.replay` over a day of minute data, in this process);
* correctness: alerts expected, raised, seen on the stream, lost and duplicated.

    python bench/alerts.py [--patients 200] [--episodes 2] [--interval 4.0] [--workers 1]
        [--activity] [--poll SECONDS] [--backlog 5]
        [--postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test]
        [--rabbit amqp://guest:guest@127.0.0.1:5672/]

These machines are noisy (2 shared cores run the server, the workers, PostgreSQL,
RabbitMQ and this client): compare the latency with the API's own response time measured
in the same run, not with another machine's numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clarity.alerts.needs import touched_by_batch
from clarity.config import Settings
from clarity.rules import Rule
from clarity.rules.engine import replay
from clarity.rules.pack import default_pack
from clarity.rules.signals import PatientSignals, Stream
from http_auth_me import clarity, free_port, wait_ready
from ingest import admin, create_patients

ORG = "Bench clinic"
ADMIN = ("bench.admin@bench.example.org", "Bench-Alerts-Admin-Check-7")
CLINICIAN = ("bench.clinician@bench.example.org", "Bench-Alerts-Clinician-Check-7")
SOURCE = "bench-watch"
EPISODE_MINUTES = 12  # above the threshold for 12 minutes: fires once, at minute 10
HOLD_MINUTES = 10
RULE: dict[str, Any] = {
    "id": "bench-hr-above-120",
    "name": "Heart rate above 120 for 10 minutes",
    "severity": "high",
    "condition": {
        "kind": "threshold_duration",
        "signal": "heart_rate",
        "op": ">",
        "value": 120,
        "duration": f"{HOLD_MINUTES}m",
    },
    "cooldown": "15m",
}


@dataclass
class Plan:
    """Who is above the threshold when, and which minute's batch completes each hold."""

    patients: int
    episodes: int
    minutes: int = 0
    starts: list[list[int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Episodes 30 minutes apart (beyond the 15-minute cooldown), staggered over 20 minutes.
        self.starts = [
            [2 + i % 20 + 30 * j for j in range(self.episodes)] for i in range(self.patients)
        ]
        self.minutes = 30 * self.episodes + 25

    def heart_rate(self, patient: int, minute: int) -> float:
        for start in self.starts[patient]:
            if start <= minute < start + EPISODE_MINUTES:
                return 130.0 + (minute * 7 + patient) % 9
        return 62.0 + (minute * 13 + patient * 7) % 23  # 62-84: never near 120

    def triggers(self, patient: int) -> list[int]:
        return [start + HOLD_MINUTES for start in self.starts[patient]]


@dataclass
class Seen:
    """Alert events read from the stream, by patient: (monotonic time, fired_at)."""

    events: dict[str, list[tuple[float, str]]] = field(default_factory=lambda: defaultdict(list))
    opened: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


def read_stream(base: str, token: str, seen: Seen) -> None:
    """Follow the alert stream in this thread (its own connection and parsing), recording
    when each ``alert.raised`` arrives."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    try:
        with (
            httpx.Client(base_url=base, timeout=httpx.Timeout(10, read=None)) as client,
            client.stream("GET", "/api/v1/alerts/stream", headers=headers) as response,
        ):
            if response.status_code != 200:
                seen.error = f"stream refused: {response.status_code}"
                seen.opened.set()
                return
            seen.opened.set()
            topic = ""
            for line in response.iter_lines():
                if seen.stop.is_set():
                    return
                if line.startswith("event: "):
                    topic = line[7:]
                elif line.startswith("data: ") and topic == "alert.raised":
                    data = orjson.loads(line[6:])
                    seen.events[data["patient_id"]].append((time.monotonic(), data["fired_at"]))
    except httpx.HTTPError as exc:
        if not seen.stop.is_set():
            seen.error = f"stream failed: {type(exc).__name__}"
            seen.opened.set()


async def login(client: httpx.AsyncClient, who: tuple[str, str]) -> dict[str, str]:
    response = await client.post("/api/v1/auth/login", json={"email": who[0], "password": who[1]})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def setup(base: str, patients: int) -> tuple[str, dict[str, str], list[str]]:
    """The rule (as admin), the patients with wearable consent (as clinician)."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        admin_auth = await login(client, ADMIN)
        (await client.post("/api/v1/alert-rules", json=RULE, headers=admin_auth)).raise_for_status()
        auth = await login(client, CLINICIAN)
        ids = await create_patients(client, auth, patients, "ALERT-BENCH")
        return admin_auth["Authorization"].split(" ", 1)[1], auth, ids


def batch(
    plan: Plan, patient: int, minute: int, at: dt.datetime, activity: bool, tag: str
) -> bytes:
    ts = at.isoformat()
    samples = [
        {
            "stream": "heart_rate",
            "ts": ts,
            "value": plan.heart_rate(patient, minute),
            "unit": "/min",
            "source": SOURCE,
        }
    ]
    if activity:
        samples.append(
            {
                "stream": "activity_counts",
                "ts": ts,
                "value": float((minute * 37 + patient * 11) % 400),
                "unit": "{count}",
                "source": SOURCE,
            }
        )
    return orjson.dumps({"client_batch_id": f"{tag}-{patient}-{minute}", "samples": samples})


@dataclass
class Run:
    sent_at: dict[tuple[int, int], float] = field(default_factory=dict)
    response_ms: list[float] = field(default_factory=list)
    behind: int = 0  # uploads sent more than one interval late
    failures: int = 0


async def stream_minutes(
    base: str,
    auth: dict[str, str],
    ids: list[str],
    plan: Plan,
    first: dt.datetime,
    minutes: range,
    interval: float,
    activity: bool,
    concurrency: int,
    tag: str,
    run: Run,
) -> None:
    """Send each simulated minute for every patient, one minute every ``interval`` s, the
    patients' uploads spread evenly over the interval (wearables do not all upload at the
    same instant); ``interval`` 0: everything as fast as ``concurrency`` allows."""
    headers = {**auth, "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        gate = asyncio.Semaphore(concurrency)

        async def send(patient: int, minute: int) -> None:
            body = batch(plan, patient, minute, first + dt.timedelta(minutes=minute), activity, tag)
            run.sent_at[(patient, minute)] = time.monotonic()  # due: client waits count too
            async with gate:
                began = time.monotonic()
                response = await client.post(
                    f"/api/v1/patients/{ids[patient]}/biometrics", content=body, headers=headers
                )
                run.response_ms.append((time.monotonic() - began) * 1000)
            if response.status_code != 201:
                run.failures += 1

        loop = asyncio.get_running_loop()
        step = interval / len(ids)
        due = loop.time()
        tasks: list[asyncio.Task[None]] = []
        for minute in minutes:
            for patient in range(len(ids)):
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -interval:
                    run.behind += 1  # the server cannot keep up with the offered load
                tasks.append(asyncio.create_task(send(patient, minute)))
                due += step
        await asyncio.gather(*tasks)


async def processed(url: str, since: float = 0.0) -> tuple[int, float | None, float | None]:
    """Events the alert consumer has processed since ``since`` (epoch seconds), and the
    first and last processing times."""
    rows = await query(
        url,
        "SELECT count(*), extract(epoch from min(processed_at)), "
        "extract(epoch from max(processed_at)) FROM processed_events "
        "WHERE consumer = 'alerts' AND processed_at >= to_timestamp($1)",
        since,
    )
    count, first, last = rows[0]
    return int(count), (float(first) if first else None), (float(last) if last else None)


async def query(url: str, statement: str, *args: Any) -> list[tuple[Any, ...]]:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        return [tuple(r) for r in await conn.fetch(statement, *args)]
    finally:
        await conn.close()


async def wait_processed(url: str, expected: int, limit: float) -> float:
    """Poll until the consumer has processed ``expected`` events; returns when (monotonic)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if (await processed(url))[0] >= expected:
            return time.monotonic()
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the workers did not process {expected} events in {limit:.0f} s")


async def delete_topology(url: str, prefix: str, partitions: int) -> None:
    import aio_pika

    connection = await aio_pika.connect(url, timeout=5)
    try:
        channel = await connection.channel()
        for partition in range(partitions):
            await channel.queue_delete(f"{prefix}.events.p{partition}")
        await channel.exchange_delete(f"{prefix}.events")
    finally:
        await connection.close()


def rules_per_batch(activity: bool) -> int:
    """How many rules in force one uploaded batch makes the consumer replay."""
    streams = ["heart_rate", *(["activity_counts"] if activity else [])]
    rules = [*default_pack(), Rule.model_validate(RULE)]
    return sum(1 for rule in rules if touched_by_batch(rule, streams))


def engine_rate(seconds: float = 2.0) -> tuple[float, int]:
    """Replays per second of the heart-rate rule over one day of minute data, in-process."""
    rule = Rule.model_validate(RULE)
    start = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    plan = Plan(1, 2)
    readings = [
        (start + dt.timedelta(minutes=m), plan.heart_rate(0, m % plan.minutes)) for m in range(1440)
    ]
    signals = PatientSignals(patient_id=uuid.uuid4(), streams={"heart_rate": Stream.of(readings)})
    count, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        replay(rule, signals, start, start + dt.timedelta(days=1), {})
        count += 1
    return count / (time.perf_counter() - began), 1440


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--episodes", type=int, default=2, help="tachycardia episodes each")
    parser.add_argument("--interval", type=float, default=4.0, help="seconds per sim. minute")
    parser.add_argument("--workers", type=int, default=1, help="clarity worker processes")
    parser.add_argument("--activity", action="store_true", help="also stream activity counts")
    parser.add_argument(
        "--poll", type=float, default=None, help="CLARITY_ALERT_POLL_SECONDS (server default)"
    )
    parser.add_argument("--backlog", type=int, default=5, help="batches per patient, drained")
    parser.add_argument("--concurrency", type=int, default=16, help="uploads in flight")
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rabbit", default="amqp://guest:guest@127.0.0.1:5672/")
    args = parser.parse_args()

    name = f"clarity_bench_{uuid.uuid4().hex[:10]}"
    url = args.postgres.rsplit("/", 1)[0] + "/" + name
    prefix = f"clarity-bench-{uuid.uuid4().hex[:8]}"
    asyncio.run(admin(args.postgres, f'CREATE DATABASE "{name}"'))
    port = free_port()
    env = {
        **os.environ,
        "CLARITY_DATABASE_URL": url,
        "CLARITY_SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnop",
        "CLARITY_BROKER_URL": args.rabbit,
        "CLARITY_BROKER_PREFIX": prefix,
        "CLARITY_EVENT_PARTITIONS": str(args.partitions),
        "CLARITY_RATE_LIMIT_PER_IP": "100000000",
        "CLARITY_RATE_LIMIT_PER_USER": "100000000",
        "CLARITY_LOG_LEVEL": "WARNING",
    }
    if args.poll is not None:
        env["CLARITY_ALERT_POLL_SECONDS"] = str(args.poll)
    poll = args.poll if args.poll is not None else Settings().alert_poll_seconds
    processes: list[subprocess.Popen[bytes]] = []
    seen = Seen()

    def start_workers() -> list[subprocess.Popen[bytes]]:
        started = [
            subprocess.Popen(
                [sys.executable, "-m", "clarity.cli", "worker", "--id", f"bench-{n}"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for n in range(args.workers)
        ]
        processes.extend(started)
        return started

    def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(60)
            processes.remove(worker)

    try:
        clarity(env, "migrate")
        clarity(
            env,
            "create-user",
            "--email",
            ADMIN[0],
            "--password",
            ADMIN[1],
            "--role",
            "admin",
            "--org",
            ORG,
        )
        clarity(
            env,
            "create-user",
            "--email",
            CLINICIAN[0],
            "--password",
            CLINICIAN[1],
            "--role",
            "clinician",
            "--org",
            ORG,
        )
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "clarity.cli", "serve", "--port", str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, timeout=90)
        workers = start_workers()
        admin_token, auth, ids = asyncio.run(setup(base, args.patients))
        reader = threading.Thread(target=read_stream, args=(base, admin_token, seen), daemon=True)
        reader.start()
        seen.opened.wait(30)
        if seen.error:
            raise RuntimeError(seen.error)

        plan = Plan(args.patients, args.episodes)
        backlog = max(0, args.backlog)
        total_minutes = plan.minutes + backlog
        first = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(
            minutes=total_minutes + 5
        )
        print(
            f"{args.patients} patients x {plan.minutes} simulated minutes of heart rate"
            f"{' + activity counts' if args.activity else ''}, one minute every "
            f"{args.interval:g} s ({args.patients / args.interval:.0f} uploads/s offered), "
            f"{args.workers} worker(s), {args.partitions} partitions, stream poll {poll:g} s"
        )
        run = Run()
        began = time.monotonic()
        asyncio.run(
            stream_minutes(
                base,
                auth,
                ids,
                plan,
                first,
                range(plan.minutes),
                args.interval,
                args.activity,
                args.concurrency,
                "run",
                run,
            )
        )
        sent = len(run.sent_at)
        asyncio.run(wait_processed(url, sent, 120))
        time.sleep(max(1.0, 3 * poll))  # the stream's last poll
        elapsed = time.monotonic() - began
        count, first_done, last_done = asyncio.run(processed(url))

        latencies: list[float] = []
        lost = duplicated = 0
        for n, patient_id in enumerate(ids):
            arrivals = seen.events.get(patient_id, [])
            expected = plan.triggers(n)
            fired = sorted(arrivals, key=lambda a: a[1])
            duplicated += max(0, len({a[1] for a in fired}) - len(expected))
            duplicated += len(fired) - len({a[1] for a in fired})
            by_time = {a[1]: a[0] for a in fired}
            for trigger in expected:
                fired_at = (first + dt.timedelta(minutes=trigger)).isoformat()
                if fired_at not in by_time:
                    lost += 1
                    continue
                latencies.append((by_time[fired_at] - run.sent_at[(n, trigger)]) * 1000)
        stored = asyncio.run(query(url, "SELECT count(*) FROM alerts"))[0][0]
        per_event = rules_per_batch(args.activity)

        print(
            f"uploads: {sent} in {elapsed:.0f} s, {run.failures} failed, "
            f"{run.behind} sent over one interval late"
        )
        print(
            f"API response time (baseline): median {statistics.median(run.response_ms):6.1f} ms"
            f"   p99 {percentile(run.response_ms, 0.99):6.1f} ms"
        )
        if latencies:
            p99 = percentile(latencies, 0.99)
            print(
                f"ingest-to-alert latency     : median {statistics.median(latencies):6.1f} ms"
                f"   p99 {p99:6.1f} ms   max {max(latencies):6.1f} ms  ({len(latencies)} alerts)"
            )
            print(
                f"p99 {'meets' if p99 < 1000 else 'MISSES'} the goal of < 1 s; "
                f"median / API median = "
                f"{statistics.median(latencies) / statistics.median(run.response_ms):.1f}"
            )
        expected_total = sum(len(plan.triggers(n)) for n in range(len(ids)))
        print(
            f"alerts: expected {expected_total}, stored {stored}, seen on the stream "
            f"{sum(len(v) for v in seen.events.values())}, lost {lost}, duplicated {duplicated}"
        )
        if first_done is not None and last_done is not None and last_done > first_done:
            rate = count / (last_done - first_done)
            print(
                f"during the run: {rate:.0f} events/s processed x {per_event} rule(s) each = "
                f"{rate * per_event:.0f} rule evaluations/s (offered load, not capacity)"
            )

        if backlog:
            stop_workers(workers)
            before = asyncio.run(processed(url))[0]
            queued = Run()
            asyncio.run(
                stream_minutes(
                    base,
                    auth,
                    ids,
                    plan,
                    first,
                    range(plan.minutes, plan.minutes + backlog),
                    0.0,
                    args.activity,
                    args.concurrency,
                    "backlog",
                    queued,
                )
            )
            target = before + len(queued.sent_at)
            since = time.time()
            workers = start_workers()
            asyncio.run(wait_processed(url, target, 600))
            drained, first_done, last_done = asyncio.run(processed(url, since))
            if first_done is not None and last_done is not None and last_done > first_done:
                rate = (drained - 1) / (last_done - first_done)
                print(
                    f"backlog drain: {drained} events queued while no worker ran, processed "
                    f"at {rate:.0f} events/s = {rate * per_event:.0f} rule evaluations/s "
                    f"(capacity of {args.workers} worker(s), from first to last event)"
                )
        replays, points = engine_rate()
        print(f"pure engine: {replays:.0f} rule evaluations/s (replay over {points} minutes)")
        return 0 if latencies and not lost and not duplicated else 1
    finally:
        seen.stop.set()
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        asyncio.run(delete_topology(args.rabbit, prefix, args.partitions))
        asyncio.run(admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    raise SystemExit(main())
