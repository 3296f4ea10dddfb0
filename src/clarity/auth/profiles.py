"""Account profiles served without a database round trip, and still never stale.

``GET /auth/me`` is the most frequent call a front end makes. Each process keeps the
profiles it served in a small LRU map, stamped with a version token kept as a mirrored
cache key (read locally, synced through Redis pub/sub; the token is random, never PHI, so
no personal data goes to Redis). Out of sync, the profile is read from the database. Every change
to an account calls :func:`touch` after its commit, which replaces the token, so every
replica reloads on its next read. A reader stamps what it loaded with the token it saw
*before* loading, so a change that lands mid-read is never hidden behind the new token.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict

from clarity.auth.models import User
from clarity.auth.schemas import UserOut
from clarity.cache import Cache, mirrored_key
from clarity.database import Database

MAX_PROFILES = 10_000
# user id -> (version token, profile, its JSON body)
_profiles: OrderedDict[uuid.UUID, tuple[str, UserOut, bytes]] = OrderedDict()


VERSION_TTL = 86_400.0  # an unread version may lapse: the next read starts a new one


def _key(user_id: uuid.UUID) -> str:
    return mirrored_key(f"user:ver:{user_id}")


async def touch(cache: Cache, user_id: uuid.UUID) -> None:
    """Mark the account changed (call after the change is committed)."""
    await cache.set_mirrored(_key(user_id), uuid.uuid4().hex, ttl=VERSION_TTL)


async def load(
    cache: Cache, db: Database, organization_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[UserOut, bytes] | None:
    """The account's profile and its JSON, from this process's map when still current.

    On a miss it opens its own short session: do not call it while holding the request's
    session (embedded SQLite has one connection)."""
    version, in_sync = cache.get_mirrored(_key(user_id))
    if version is not None and in_sync:
        cached = _profiles.get(user_id)
        if cached is not None and cached[0] == version:
            _profiles.move_to_end(user_id)
            return cached[1], cached[2]
    if version is None:
        version = uuid.uuid4().hex
        await cache.set_mirrored(_key(user_id), version, ttl=VERSION_TTL)
    async with db.session(organization_id) as session:
        user = await session.get(User, user_id)
    if user is None:
        _profiles.pop(user_id, None)
        return None
    profile = UserOut.model_validate(user)
    body = profile.model_dump_json().encode()
    _profiles[user_id] = (version, profile, body)
    if len(_profiles) > MAX_PROFILES:
        _profiles.popitem(last=False)
    return profile, body
