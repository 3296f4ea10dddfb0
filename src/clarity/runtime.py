"""What a running Clarity holds: settings, database, cache, event bus, token codec.

The app factory builds one :class:`Runtime` (nothing connects yet) and its lifespan starts
and stops it; the CLI does the same through :func:`open_runtime`. So there is exactly one
way to reach each backing service, chosen by configuration.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from clarity.auth.tokens import TokenCodec
from clarity.cache import Cache
from clarity.config import Settings
from clarity.crypto.fields import BlindIndex, Keyring
from clarity.crypto.types import configure_keyring
from clarity.database import Database
from clarity.events import EventBus, create_bus
from clarity.outbox.relay import OutboxRelay


@dataclass
class Runtime:
    settings: Settings
    db: Database
    cache: Cache
    bus: EventBus
    tokens: TokenCodec
    keyring: Keyring
    blind_index: BlindIndex
    outbox: OutboxRelay

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        settings.check_production()
        db = Database(settings)
        bus = create_bus(
            settings.broker_url, prefix=settings.broker_prefix, partitions=settings.event_partitions
        )
        return cls(
            settings=settings,
            db=db,
            cache=Cache(settings.redis_url, settings.cache_prefix, settings.cache_retry_seconds),
            bus=bus,
            tokens=TokenCodec(
                settings.secret_key.get_secret_value(), settings.jwt_issuer, settings.jwt_audience
            ),
            keyring=Keyring.from_setting(settings.encryption_keys.get_secret_value()),
            blind_index=BlindIndex.from_setting(settings.blind_index_keys.get_secret_value()),
            outbox=OutboxRelay(db, bus),
        )

    async def start(self, *, relay: bool = True) -> None:
        """Connect; ``relay``: also publish the outbox from this process (servers and
        workers do; short CLI commands leave their events to them, so that in-process
        consumers, which live in the server, receive them)."""
        # Encrypted columns read the process-wide keyring (one keyring per process).
        configure_keyring(self.keyring)
        await self.cache.connect()
        await self.bus.start()
        if relay:
            self.outbox.start()

    async def stop(self) -> None:
        await self.outbox.stop()
        await self.bus.stop()
        await self.cache.close()
        await self.db.dispose()


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    runtime = Runtime.build(settings)
    await runtime.start(relay=False)
    try:
        yield runtime
    finally:
        await runtime.stop()
