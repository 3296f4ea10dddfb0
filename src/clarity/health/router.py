"""Liveness and readiness probes (public by name: orchestrators call them unauthenticated)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from clarity.auth.dependencies import RuntimeDep, public
from clarity.runtime import Runtime

router = APIRouter(prefix="/health", tags=["health"])
CHECK_TIMEOUT = 2.0


@router.get("/live", dependencies=[public("liveness probe")])
async def live() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


async def _database(runtime: Runtime) -> bool:
    async with runtime.db.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return True


async def _timed(check: Callable[[], Awaitable[bool]]) -> dict[str, object]:
    started = time.perf_counter()
    try:
        ok = await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except Exception:  # any failure of a dependency means "down", never a 500
        ok = False
    return {
        "status": "up" if ok else "down",
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }


@router.get(
    "/ready",
    dependencies=[public("readiness probe")],
    responses={503: {"description": "A required dependency is down."}},
)
async def ready(runtime: RuntimeDep) -> JSONResponse:
    """Database, cache and broker, each with status and latency. 503 when a required one
    (``CLARITY_READY_REQUIRES``, default: database) is down; others only degrade."""
    checks = {
        "database": lambda: _database(runtime),
        "cache": runtime.cache.ping,
        "broker": runtime.bus.ping,
    }
    results = dict(
        zip(checks, await asyncio.gather(*(_timed(c) for c in checks.values())), strict=True)
    )
    results["cache"]["backend"] = runtime.cache.backend
    results["broker"]["backend"] = runtime.bus.name
    required = set(runtime.settings.ready_requires)
    failing = [name for name, r in results.items() if r["status"] == "down"]
    blocking = [name for name in failing if name in required]
    status = "down" if blocking else ("degraded" if failing else "ok")
    return JSONResponse({"status": status, "checks": results}, status_code=503 if blocking else 200)
