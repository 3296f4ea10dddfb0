"""The one way to reach the cache: Redis when configured, an in-process store otherwise.

Lockout counters, rate limits and token revocations live here so that replicas agree.
If Redis fails while the service runs, the cache degrades instead of failing requests: it
serves from the in-process store, reports itself down to readiness, probes Redis in the
background, and when Redis is back replays the writes (revocations) made meanwhile.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from clarity.logging import get_logger

log = get_logger(__name__)


@dataclass
class LocalStore:
    """In-process key/value store with per-key expiry (monotonic clock)."""

    _data: dict[str, tuple[str, float | None]] = field(default_factory=dict)

    def _live(self, key: str) -> tuple[str, float | None] | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] is not None and item[1] <= time.monotonic():
            del self._data[key]
            return None
        return item

    def get(self, key: str) -> str | None:
        item = self._live(key)
        return None if item is None else item[0]

    def set(self, key: str, value: str, ttl: float | None) -> None:
        self._purge_if_large()
        self._data[key] = (value, None if ttl is None else time.monotonic() + ttl)

    def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def incr(self, key: str, ttl: float) -> tuple[int, float]:
        item = self._live(key)
        if item is None:
            self.set(key, "1", ttl)
            return 1, ttl
        count = int(item[0]) + 1
        self._data[key] = (str(count), item[1])
        return count, self.ttl(key)

    def ttl(self, key: str) -> float:
        item = self._live(key)
        if item is None or item[1] is None:
            return 0.0
        return max(0.0, item[1] - time.monotonic())

    def _purge_if_large(self, limit: int = 100_000) -> None:
        if len(self._data) < limit:
            return
        now = time.monotonic()
        expired = [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]
        for key in expired:
            del self._data[key]


@dataclass
class _Pending:
    key: str
    value: str | None  # None means delete
    expires_at: float | None


class Cache:
    """Async cache facade. All keys get the configured prefix."""

    def __init__(self, redis_url: str | None, prefix: str = "", retry_seconds: float = 1.0):
        self.prefix = prefix
        self.local = LocalStore()
        self.retry_seconds = retry_seconds
        self._redis: Redis | None = None
        if redis_url:
            self._redis = Redis.from_url(
                redis_url,
                decode_responses=True,
                socket_timeout=0.5,
                socket_connect_timeout=0.5,
                retry=Retry(NoBackoff(), 0),
            )
        self._redis_up = self._redis is not None
        self._pending: list[_Pending] = []
        self._probe: asyncio.Task[None] | None = None

    @property
    def backend(self) -> str:
        return "redis" if self._redis is not None else "in-process"

    @property
    def degraded(self) -> bool:
        return self._redis is not None and not self._redis_up

    async def connect(self) -> None:
        if self._redis is not None:
            try:
                await self._redis.ping()
            except (RedisError, OSError):
                self._mark_down("connect")

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        if self._redis is not None:
            await self._redis.aclose()

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _mark_down(self, op: str) -> None:
        if self._redis_up:
            log.warning("cache.degraded", operation=op, fallback="in-process")
        self._redis_up = False
        if self._probe is None or self._probe.done():
            # A fresh context: the probe outlives the request that noticed the failure.
            self._probe = asyncio.get_running_loop().create_task(
                self._reconnect(), context=contextvars.Context()
            )

    async def _reconnect(self) -> None:
        assert self._redis is not None
        while True:
            await asyncio.sleep(self.retry_seconds)
            replayed = 0
            try:
                await self._redis.ping()
                # Writes made during the replay land in a fresh list: loop until none are left.
                while self._pending:
                    batch, self._pending = self._pending, []
                    try:
                        await self._replay(batch)
                    except BaseException:
                        self._pending = batch + self._pending
                        raise
                    replayed += len(batch)
            except (RedisError, OSError):
                continue
            self._redis_up = True
            log.info("cache.recovered", replayed=replayed)
            return

    async def _replay(self, batch: list[_Pending]) -> None:
        assert self._redis is not None
        now = time.monotonic()
        async with self._redis.pipeline(transaction=False) as pipe:
            for item in batch:
                if item.value is None:
                    pipe.delete(self._k(item.key))
                elif item.expires_at is None:
                    pipe.set(self._k(item.key), item.value)
                elif item.expires_at > now:
                    pipe.set(self._k(item.key), item.value, px=int((item.expires_at - now) * 1000))
            await pipe.execute()

    def _use_redis(self) -> Redis | None:
        return self._redis if self._redis_up else None

    async def get(self, key: str) -> str | None:
        redis = self._use_redis()
        if redis is not None:
            try:
                value = await redis.get(self._k(key))
                return None if value is None else str(value)
            except (RedisError, OSError):
                self._mark_down("get")
        return self.local.get(key)

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        redis = self._use_redis()
        if redis is not None:
            try:
                await redis.set(self._k(key), value, px=None if ttl is None else int(ttl * 1000))
                return
            except (RedisError, OSError):
                self._mark_down("set")
        self.local.set(key, value, ttl)
        if self._redis is not None:
            expires = None if ttl is None else time.monotonic() + ttl
            self._pending.append(_Pending(key, value, expires))

    async def delete(self, key: str) -> None:
        redis = self._use_redis()
        if redis is not None:
            try:
                await redis.delete(self._k(key))
                return
            except (RedisError, OSError):
                self._mark_down("delete")
        self.local.delete(key)
        if self._redis is not None:
            self._pending.append(_Pending(key, None, None))

    async def incr(self, key: str, ttl: float) -> tuple[int, float]:
        """Count an event in a fixed window; returns (count, seconds until the window ends)."""
        redis = self._use_redis()
        if redis is not None:
            try:
                async with redis.pipeline(transaction=True) as pipe:
                    pipe.incr(self._k(key))
                    pipe.expire(self._k(key), max(1, int(ttl)), nx=True)
                    pipe.pttl(self._k(key))
                    count, _, pttl = await pipe.execute()
                return int(count), max(0.0, pttl / 1000)
            except (RedisError, OSError):
                self._mark_down("incr")
        return self.local.incr(key, ttl)

    async def ping(self) -> bool:
        """True when the configured backend answers (the in-process store always does)."""
        if self._redis is None:
            return True
        if not self._redis_up:
            return False
        try:
            await self._redis.ping()
            return True
        except (RedisError, OSError):
            self._mark_down("ping")
            return False
