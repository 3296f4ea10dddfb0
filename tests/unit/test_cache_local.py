"""The in-process store (with expiry) and the Cache facade without Redis."""

from __future__ import annotations

import asyncio
import time

from clarity.cache import Cache, LocalStore

TTL = 0.2  # short, yet long enough that a loaded machine does not expire it early


def test_get_set_delete() -> None:
    store = LocalStore()
    assert store.get("k") is None
    store.set("k", "v", None)
    assert store.get("k") == "v"
    store.set("k", "w", None)
    assert store.get("k") == "w"
    store.delete("k")
    assert store.get("k") is None
    store.delete("never-set")  # no error


def test_value_expires_after_ttl() -> None:
    store = LocalStore()
    store.set("short", "v", TTL)
    store.set("forever", "v", None)
    assert store.get("short") == "v"
    assert 0 < store.ttl("short") <= TTL
    time.sleep(TTL * 1.5)
    assert store.get("short") is None
    assert store.get("forever") == "v"
    assert store.ttl("forever") == 0.0


def test_incr_counts_in_a_window_and_resets_after_it() -> None:
    store = LocalStore()
    assert store.incr("hits", TTL) == (1, TTL)
    count, remaining = store.incr("hits", TTL)
    assert count == 2
    assert 0 < remaining <= TTL
    assert store.incr("hits", TTL)[0] == 3
    assert store.incr("other", TTL)[0] == 1
    time.sleep(TTL * 1.5)
    assert store.incr("hits", TTL)[0] == 1


def test_incr_does_not_extend_the_window() -> None:
    store = LocalStore()
    store.incr("hits", 5.0)
    time.sleep(0.1)
    _, remaining = store.incr("hits", 5.0)
    assert remaining <= 4.9


async def test_in_process_cache() -> None:
    cache = Cache(None, prefix="t:")
    assert cache.backend == "in-process"
    assert cache.degraded is False
    await cache.connect()
    assert await cache.ping() is True
    assert await cache.get("k") is None
    await cache.set("k", "v")
    assert await cache.get("k") == "v"
    await cache.delete("k")
    assert await cache.get("k") is None
    assert (await cache.incr("n", 60))[0] == 1
    count, remaining = await cache.incr("n", 60)
    assert count == 2
    assert 0 < remaining <= 60
    await cache.close()


async def test_in_process_cache_ttl() -> None:
    cache = Cache(None)
    await cache.set("k", "v", ttl=TTL)
    assert await cache.get("k") == "v"
    await asyncio.sleep(TTL * 1.5)
    assert await cache.get("k") is None
