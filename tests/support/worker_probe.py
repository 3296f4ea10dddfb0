"""A test handler for ``clarity worker`` processes (``CLARITY_WORKER_HANDLERS=
tests.support.worker_probe:register``), steered by files in ``CLARITY_TEST_PROBE_DIR``.

* Every delivery it sees is appended to ``deliveries.log`` (one JSON line: event id, key,
  sequence number, process id), before anything else: deliveries, duplicates included.
* ``probe.event`` events have an effect: a row in :data:`effects`, written in one
  transaction with the :class:`ProcessedEvent` marker and skipped when the marker exists
  (idempotent by event id), so duplicated effects would show as two rows.
* A delivery stalls (sleeps until the process is killed) when a file ``stall-<key>``
  exists and this delivery is the one that renames it to ``stalled-<key>`` (once): for
  ``probe.event`` before its effect, for the alert topics after the alert consumer
  (registered before this hook) has committed.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Uuid, insert
from sqlalchemy.exc import IntegrityError

from clarity.alerts.models import ProcessedEvent
from clarity.runtime import Runtime
from clarity.worker.registry import Registry

TOPIC = "probe.event"
CONSUMER = "worker-probe"
ALERT_TOPICS = ("assessment.submitted", "biometrics.batch_accepted")

metadata = MetaData()
effects = Table(
    "worker_probe_effects",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("event_id", Uuid(), nullable=False),
    Column("key", String(64), nullable=False),
    Column("n", Integer, nullable=False),
    Column("pid", Integer, nullable=False),
)


def probe_dir() -> Path:
    return Path(os.environ["CLARITY_TEST_PROBE_DIR"])


def _record(payload: dict[str, Any]) -> None:
    line = orjson.dumps(
        {
            "event_id": payload.get("event_id"),
            "topic": payload.get("event_type"),
            "key": payload.get("partition_key"),
            "n": payload.get("n"),
            "pid": os.getpid(),
        }
    )
    fd = os.open(probe_dir() / "deliveries.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line + b"\n")
    finally:
        os.close(fd)


async def _stall_if_asked(payload: dict[str, Any]) -> None:
    key = str(payload.get("partition_key"))
    try:
        os.rename(probe_dir() / f"stall-{key}", probe_dir() / f"stalled-{key}")
    except FileNotFoundError:
        return
    (probe_dir() / f"stalled-{key}").write_text(f"{os.getpid()} {payload.get('event_id')}\n")
    await asyncio.sleep(3600)  # until the test kills this process


def register(registry: Registry, runtime: Runtime) -> None:
    async def probe(payload: dict[str, Any]) -> None:
        _record(payload)
        await _stall_if_asked(payload)
        event_id = uuid.UUID(str(payload["event_id"]))
        async with runtime.db.session(system=True) as session:
            if await session.get(ProcessedEvent, (CONSUMER, event_id)) is not None:
                return
            session.add(ProcessedEvent(consumer=CONSUMER, event_id=event_id))
            await session.execute(
                insert(effects).values(
                    event_id=event_id,
                    key=str(payload["partition_key"]),
                    n=int(payload["n"]),
                    pid=os.getpid(),
                )
            )
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()  # another delivery committed it first

    async def watch(payload: dict[str, Any]) -> None:
        _record(payload)
        await _stall_if_asked(payload)

    registry.on(TOPIC, probe, name="probe")
    for topic in ALERT_TOPICS:
        registry.on(topic, watch, name="probe-watch")
