"""Liveness and readiness probes, including a broker that is down."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tests.conftest import Harness

HarnessFactory = Callable[..., Awaitable[Harness]]
# Nothing listens on port 1: connecting is refused at once.
DEAD_BROKER = "amqp://guest:guest@127.0.0.1:1/"


def _assert_check(check: dict[str, object], status: str) -> None:
    assert check["status"] == status
    latency = check["latency_ms"]
    assert isinstance(latency, int | float)
    assert not isinstance(latency, bool)
    assert latency >= 0


async def test_live_is_ok(h: Harness) -> None:
    response = await h.client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_reports_each_dependency_up(h: Harness) -> None:
    response = await h.client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "broker"}
    for check in body["checks"].values():
        _assert_check(check, "up")
    expected_cache = "in-process" if h.runtime.settings.redis_url is None else "redis"
    assert body["checks"]["cache"]["backend"] == expected_cache
    assert body["checks"]["broker"]["backend"] == "in-process"


async def test_broker_down_only_degrades_by_default(harness_factory: HarnessFactory) -> None:
    h = await harness_factory(broker_url=DEAD_BROKER)
    response = await h.client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    _assert_check(body["checks"]["broker"], "down")
    assert body["checks"]["broker"]["backend"] == "rabbitmq"
    _assert_check(body["checks"]["database"], "up")
    _assert_check(body["checks"]["cache"], "up")
    # Liveness does not depend on the broker.
    assert (await h.client.get("/health/live")).status_code == 200


async def test_required_broker_down_is_503(harness_factory: HarnessFactory) -> None:
    h = await harness_factory(broker_url=DEAD_BROKER, ready_requires=["database", "broker"])
    response = await h.client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    _assert_check(body["checks"]["broker"], "down")
    _assert_check(body["checks"]["database"], "up")
