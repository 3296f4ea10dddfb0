"""``clarity worker`` processes against the real RabbitMQ and PostgreSQL: two share the
partitions and hand theirs back on SIGTERM; one killed (SIGKILL) inside a handler has its
event redelivered to the other once its lease expires, with the effect exactly once, the
patient's later events after it, and a PHQ-9 alert neither lost nor raised twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from clarity.alerts.models import Alert, ProcessedEvent
from clarity.auth.models import Role
from clarity.outbox.models import OutboxEvent
from clarity.outbox.service import enqueue
from clarity.worker.models import EventPartitionLease, EventWorker
from tests.api.test_assessments_api import new_patient, phq9, submit
from tests.conftest import BACKEND, TEST_SECRET, Harness
from tests.support import worker_probe
from tests.support.rabbitmq import (
    SHARED_RABBIT_URL,
    delete_topology,
    rabbit_reachable,
    unique_prefix,
)

pytestmark = [
    pytest.mark.skipif(
        BACKEND != "postgres",
        reason="several worker processes need PostgreSQL; SQLite is the embedded "
        "single-process mode, where the server handles events in-process",
    ),
    pytest.mark.skipif(
        not rabbit_reachable(), reason=f"RabbitMQ is not reachable at {SHARED_RABBIT_URL}"
    ),
]

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 8
LEASE_SECONDS = 3.0


@dataclass
class Cluster:
    database_url: str
    prefix: str
    probe_dir: Path
    engine: AsyncEngine
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLARITY_")}
        env.update(
            CLARITY_ENVIRONMENT="test",
            CLARITY_SECRET_KEY=TEST_SECRET,
            CLARITY_DATABASE_URL=self.database_url,
            CLARITY_BROKER_URL=SHARED_RABBIT_URL,
            CLARITY_BROKER_PREFIX=self.prefix,
            CLARITY_EVENT_PARTITIONS=str(PARTITIONS),
            CLARITY_WORKER_LEASE_SECONDS=str(LEASE_SECONDS),
            CLARITY_WORKER_HEARTBEAT_SECONDS="0.3",
            CLARITY_WORKER_HANDLERS="tests.support.worker_probe:register",
            CLARITY_TEST_PROBE_DIR=str(self.probe_dir),
            PYTHONPATH=str(ROOT),
        )
        return env

    def start(self, name: str) -> subprocess.Popen[bytes]:
        log = (self.probe_dir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "clarity.cli", "worker", "--id", name, "--concurrency", "4"],
            env=self.env(),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def log_of(self, name: str) -> str:
        return (self.probe_dir / f"{name}.log").read_text(errors="replace")

    async def holdings(self) -> dict[str, list[int]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(EventPartitionLease.worker_id, EventPartitionLease.partition).where(
                    EventPartitionLease.worker_id.is_not(None),
                    EventPartitionLease.expires_at > func.now(),
                )
            )
            held: dict[str, list[int]] = {}
            for worker, partition in rows:
                held.setdefault(str(worker), []).append(partition)
            return {w: sorted(p) for w, p in held.items()}

    def deliveries(self) -> list[dict[str, Any]]:
        path = self.probe_dir / "deliveries.log"
        if not path.exists():
            return []
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line]

    async def effects(self) -> list[Any]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(worker_probe.effects).order_by(worker_probe.effects.c.id)
            )
            return list(rows)


async def _wait_for(
    check: Callable[[], Awaitable[bool]], limit: float, what: str, cluster: Cluster
) -> float:
    began = time.monotonic()
    while not await check():
        if time.monotonic() - began > limit:
            logs = {name: cluster.log_of(name)[-3000:] for name in cluster.procs}
            raise AssertionError(f"timed out after {limit}s waiting for {what}; logs: {logs}")
        await asyncio.sleep(0.1)
    return time.monotonic() - began


async def _clean(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for table in (OutboxEvent, EventPartitionLease, EventWorker, ProcessedEvent):
            await conn.execute(delete(table))


@pytest.fixture
async def cluster(database_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(worker_probe.metadata.create_all)
    await _clean(engine)
    cluster = Cluster(database_url, unique_prefix(), tmp_path, engine)
    try:
        yield cluster
    finally:
        for proc in cluster.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        await _clean(engine)
        async with engine.begin() as conn:
            await conn.run_sync(worker_probe.metadata.drop_all)
        await engine.dispose()
        await delete_topology(SHARED_RABBIT_URL, cluster.prefix, PARTITIONS)


async def _two_workers(cluster: Cluster) -> float:
    cluster.start("w1")
    cluster.start("w2")

    async def shared() -> bool:
        held = await cluster.holdings()
        return sorted(map(len, held.values())) == [PARTITIONS // 2] * 2

    return await _wait_for(shared, 60, "two workers to share the partitions", cluster)


async def _all_published(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        left = await conn.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
        )
        return left == 0


def _stalled(cluster: Cluster) -> tuple[int, str] | None:
    for path in cluster.probe_dir.glob("stalled-*"):
        text = path.read_text().split()
        if len(text) == 2:
            return int(text[0]), text[1]
    return None


async def test_two_workers_share_partitions_and_hand_them_back(cluster: Cluster) -> None:
    shared_after = await _two_workers(cluster)
    held = await cluster.holdings()
    assert set(held) == {"w1", "w2"}
    assert sorted(held["w1"] + held["w2"]) == list(range(PARTITIONS))

    began = time.monotonic()
    cluster.procs["w2"].send_signal(signal.SIGTERM)
    assert cluster.procs["w2"].wait(30) == 0, cluster.log_of("w2")
    stopped = time.monotonic() - began

    async def all_in_w1() -> bool:
        return await cluster.holdings() == {"w1": list(range(PARTITIONS))}

    taken_over = await _wait_for(all_in_w1, 15, "w1 to take every partition", cluster)
    assert '"worker.stopped"' in cluster.log_of("w2")
    print(
        f"\nshared after {shared_after:.1f}s; w2 stopped in {stopped:.1f}s; "
        f"w1 held all {taken_over:.1f}s later"
    )


async def test_a_killed_workers_event_is_handled_by_the_other_exactly_once(
    cluster: Cluster,
) -> None:
    await _two_workers(cluster)
    keys = [str(uuid.uuid4()) for _ in range(6)]
    per_key = 12
    (cluster.probe_dir / f"stall-{keys[0]}").write_text("")  # its first event stalls
    async with AsyncSession(cluster.engine) as session:
        for n in range(per_key):
            for key in keys:
                enqueue(session, worker_probe.TOPIC, {"n": n}, key=key)
        await session.commit()

    async def stalled() -> bool:
        return _stalled(cluster) is not None

    await _wait_for(stalled, 30, "a worker to stall in the handler", cluster)
    stalled_at = _stalled(cluster)
    assert stalled_at is not None
    pid, event_id = stalled_at
    # Once the outbox is published, the kill hits the handler alone (a relay killed before
    # marking its batch published would publish it again: more duplicates, as allowed).
    await _wait_for(lambda: _all_published(cluster.engine), 30, "the outbox relay", cluster)
    victim = next(name for name, proc in cluster.procs.items() if proc.pid == pid)
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    cluster.procs[victim].wait(10)

    async def all_done() -> bool:
        return len(await cluster.effects()) >= len(keys) * per_key

    await _wait_for(all_done, 45, "every event's effect", cluster)
    recovered = time.monotonic() - killed
    await asyncio.sleep(1.0)  # a duplicate, if any, would land now

    effects = await cluster.effects()
    assert Counter(str(row.event_id) for row in effects).most_common(1)[0][1] == 1
    assert len(effects) == len(keys) * per_key
    for key in keys:
        assert [row.n for row in effects if row.key == key] == list(range(per_key)), key
    pids = [d["pid"] for d in cluster.deliveries() if d["event_id"] == event_id]
    assert len(pids) == 2, pids  # to the victim, killed in the handler; then once more
    assert pids[0] == pid
    assert pids[1] != pid  # to the surviving worker
    survivor = next(name for name in cluster.procs if name != victim)
    assert (await cluster.holdings()) == {survivor: list(range(PARTITIONS))}
    print(f"\nkilled {victim} in a handler; every event's effect done {recovered:.1f}s later")


async def test_a_worker_killed_after_the_alert_commit_raises_no_second_alert(
    harness_factory: Callable[..., Awaitable[Harness]], cluster: Cluster
) -> None:
    h = await harness_factory(
        broker_url=SHARED_RABBIT_URL, broker_prefix=cluster.prefix, event_partitions=PARTITIONS
    )
    clinician = await h.token_for(Role.clinician)
    patients = [await new_patient(h, clinician) for _ in range(3)]
    await _two_workers(cluster)
    (cluster.probe_dir / f"stall-{patients[0]}").write_text("")
    for patient_id in patients:
        response = await submit(h, clinician, patient_id, "phq9", phq9(1, 1, 0, 1, 0, 0, 1, 0, 2))
        assert response.status_code == 201, response.text

    async def stalled() -> bool:
        return _stalled(cluster) is not None

    await _wait_for(stalled, 30, "a worker to stall after the alert commit", cluster)
    stalled_at = _stalled(cluster)
    assert stalled_at is not None
    pid, event_id = stalled_at
    await _wait_for(lambda: _all_published(cluster.engine), 30, "the outbox relay", cluster)
    async with h.runtime.db.session(system=True) as session:
        assert await session.get(ProcessedEvent, ("alerts", uuid.UUID(event_id))) is not None
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()

    async def redelivered() -> bool:
        return [d["event_id"] for d in cluster.deliveries()].count(event_id) >= 2

    await _wait_for(redelivered, 30, "the stalled event to come again", cluster)
    recovered = time.monotonic() - killed

    async def alerts_per_patient() -> Counter[str]:
        async with h.runtime.db.session(system=True) as session:
            rows = await session.scalars(
                select(Alert.patient_id).where(Alert.rule_id == "phq9-item9-positive")
            )
            return Counter(str(p) for p in rows)

    async def all_alerts() -> bool:
        return len(await alerts_per_patient()) == len(patients)

    await _wait_for(all_alerts, 30, "an alert for every patient", cluster)
    await asyncio.sleep(1.0)
    assert await alerts_per_patient() == Counter({p: 1 for p in patients})
    print(f"\nkilled after the alert commit; redelivered {recovered:.1f}s later, no 2nd alert")
