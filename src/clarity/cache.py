"""The one way to reach the cache: Redis when configured, an in-process store otherwise.

Three kinds of state live here so that replicas agree:

- **counters** (rate limits, lockout): :meth:`Cache.incr_many` counts several keys in one
  round trip (a Lua script on Redis);
- **plain keys** (locks, one-time-code replay guards): :meth:`get`, :meth:`set`, :meth:`delete`;
- **mirrored keys** (token revocations, account profile versions), read on every request:
  each process keeps a local mirror fed by Redis pub/sub, so reading one costs no round
  trip. :meth:`set_mirrored` writes to Redis and publishes; :meth:`get_mirrored` answers
  from the mirror and says whether the mirror is in sync (subscribed and loaded); when it
  is not, callers ask the database instead.

If Redis fails while the service runs, the cache degrades instead of failing requests: it
serves from the in-process store, reports itself down to readiness, probes Redis in the
background, and when Redis is back replays (and republishes) the writes made meanwhile.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from clarity.logging import get_logger

log = get_logger(__name__)

MIRROR_NAMESPACE = "m:"
MIRROR_CHANNEL = "mirror"

# INCR each key, start its window on the first hit, return count and remaining ms per key.
_INCR_MANY = """
local out = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, ARGV[i]) end
  out[#out + 1] = n
  out[#out + 1] = redis.call('PTTL', key)
end
return out
"""


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
    """A write made while Redis was down, replayed (and republished) when it returns."""

    key: str
    value: str | None  # None means delete
    expires_at: float | None
    mirrored: bool = False


class Cache:
    """Async cache facade. All keys get the configured prefix."""

    def __init__(self, redis_url: str | None, prefix: str = "", retry_seconds: float = 1.0):
        self.prefix = prefix
        self.local = LocalStore()
        self.mirror = LocalStore()
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
        self._incr_script = None if self._redis is None else self._redis.register_script(_INCR_MANY)
        self._redis_up = self._redis is not None
        self._pending: list[_Pending] = []
        self._probe: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._mirror_synced = asyncio.Event()

    @property
    def backend(self) -> str:
        return "redis" if self._redis is not None else "in-process"

    @property
    def degraded(self) -> bool:
        return self._redis is not None and not self._redis_up

    @property
    def mirror_in_sync(self) -> bool:
        return self._redis is None or self._mirror_synced.is_set()

    async def connect(self) -> None:
        if self._redis is None:
            return
        try:
            await self._redis.ping()
        except (RedisError, OSError):
            self._mark_down("connect")
        self._listener = _background(self._listen())
        try:  # give the mirror a moment to load so the first requests need no fallback
            await asyncio.wait_for(self._mirror_synced.wait(), timeout=2)
        except TimeoutError:
            log.warning("cache.mirror_not_synced", fallback="database")

    async def close(self) -> None:
        for task in (self._probe, self._listener):
            if task is not None:
                task.cancel()
        if self._redis is not None:
            await self._redis.aclose()

    def _k(self, key: str) -> str:
        return self.prefix + key

    # -- degraded mode -------------------------------------------------------------------

    def _mark_down(self, op: str) -> None:
        if self._redis_up:
            log.warning("cache.degraded", operation=op, fallback="in-process")
        self._redis_up = False
        if self._probe is None or self._probe.done():
            self._probe = _background(self._reconnect())

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
                ttl = None if item.expires_at is None else item.expires_at - now
                if ttl is not None and ttl <= 0:
                    continue
                self._queue_write(pipe, item.key, item.value, ttl, publish=item.mirrored)
            await pipe.execute()

    def _queue_write(
        self, pipe: Any, key: str, value: str | None, ttl: float | None, *, publish: bool
    ) -> None:
        if value is None:
            pipe.delete(self._k(key))
        else:
            pipe.set(self._k(key), value, px=None if ttl is None else max(1, int(ttl * 1000)))
        if publish:
            message = {"k": key, "v": value, "ttl": ttl}
            pipe.publish(self._k(MIRROR_CHANNEL), orjson.dumps(message))

    def _use_redis(self) -> Redis | None:
        return self._redis if self._redis_up else None

    # -- plain keys ----------------------------------------------------------------------

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
        await self._write(key, value, ttl, mirrored=False)

    async def delete(self, key: str) -> None:
        await self._write(key, None, None, mirrored=False)

    async def _write(
        self, key: str, value: str | None, ttl: float | None, *, mirrored: bool
    ) -> None:
        redis = self._use_redis()
        if redis is not None:
            try:
                async with redis.pipeline(transaction=False) as pipe:
                    self._queue_write(pipe, key, value, ttl, publish=mirrored)
                    await pipe.execute()
                return
            except (RedisError, OSError):
                self._mark_down("write")
        store = self.mirror if mirrored else self.local
        if value is None:
            store.delete(key)
        else:
            store.set(key, value, ttl)
        if self._redis is not None:
            expires = None if ttl is None else time.monotonic() + ttl
            self._pending.append(_Pending(key, value, expires, mirrored))

    # -- counters ------------------------------------------------------------------------

    async def incr(self, key: str, ttl: float) -> tuple[int, float]:
        """Count an event in a fixed window; returns (count, seconds until the window ends)."""
        return (await self.incr_many([key], ttl))[0]

    async def incr_many(self, keys: list[str], ttl: float) -> list[tuple[int, float]]:
        """Count one event for each key in one round trip; (count, seconds left) per key."""
        if self._use_redis() is not None and self._incr_script is not None:
            try:
                window_ms = max(1, int(ttl * 1000))
                flat = await self._incr_script(  # EVALSHA: the script body is sent once
                    keys=[self._k(k) for k in keys], args=[window_ms] * len(keys)
                )
                return [
                    (int(flat[i]), max(0.0, int(flat[i + 1]) / 1000))
                    for i in range(0, len(flat), 2)
                ]
            except (RedisError, OSError):
                self._mark_down("incr")
        return [self.local.incr(key, ttl) for key in keys]

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

    # -- mirrored keys -------------------------------------------------------------------

    def get_mirrored(self, key: str) -> tuple[str | None, bool]:
        """(value, in sync). Reads this process's mirror: no I/O. When the mirror is not in
        sync (Redis down or reconnecting) the value may miss other replicas' writes."""
        if self._redis is None:
            return self.local.get(key), True
        return self.mirror.get(key), self._mirror_synced.is_set()

    async def set_mirrored(self, key: str, value: str, ttl: float | None = None) -> None:
        """Write a mirrored key: here at once, in every other process through pub/sub."""
        if self._redis is None:
            self.local.set(key, value, ttl)
            return
        self.mirror.set(key, value, ttl)
        await self._write(key, value, ttl, mirrored=True)

    async def _listen(self) -> None:
        """Keep the mirror in sync: subscribe first, then load what exists, then follow."""
        assert self._redis is not None
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._k(MIRROR_CHANNEL))
                await self._load_mirror()
                self._mirror_synced.set()
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is not None:
                        self._apply(message["data"])
            except (RedisError, OSError):
                if self._mirror_synced.is_set():
                    log.warning("cache.mirror_lost", fallback="database")
                self._mirror_synced.clear()
                await asyncio.sleep(self.retry_seconds)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _load_mirror(self) -> None:
        assert self._redis is not None
        pattern = self._k(MIRROR_NAMESPACE) + "*"
        keys = [k async for k in self._redis.scan_iter(match=pattern, count=1000)]
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in chunk:
                    pipe.get(key)
                    pipe.pttl(key)
                values = await pipe.execute()
            for i, key in enumerate(chunk):
                value, pttl = values[2 * i], values[2 * i + 1]
                if value is not None:
                    ttl = None if pttl is None or pttl < 0 else pttl / 1000
                    self.mirror.set(key.removeprefix(self.prefix), value, ttl)

    def _apply(self, data: str) -> None:
        message = orjson.loads(data)
        if message["v"] is None:
            self.mirror.delete(message["k"])
        else:
            self.mirror.set(message["k"], message["v"], message["ttl"])


def mirrored_key(name: str) -> str:
    """Keys read through the mirror live in their own namespace (loaded on every start)."""
    return MIRROR_NAMESPACE + name


def _background(coroutine: Any) -> asyncio.Task[None]:
    # A fresh context: the task outlives the request that started it (and its request id).
    task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
        coroutine, context=contextvars.Context()
    )
    return task
