"""Hash chain over audit records (pure: no database, no web).

Each record's hash covers its own content and the previous record's hash, so editing a
record breaks its own hash and deleting one breaks the link of the record after it. The
chain head (last id and hash) is kept apart, so deleting the newest record shows too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

GENESIS_HASH = "0" * 64


def record_hash(content: Mapping[str, Any], prev_hash: str) -> str:
    """SHA-256 of the canonical JSON of the content (sorted keys) and the previous hash."""
    canonical = orjson.dumps(dict(content), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical).hexdigest()


@dataclass(frozen=True)
class ChainRecord:
    id: int
    content: Mapping[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainBreak:
    record_id: int | None
    reason: str


class ChainVerifier:
    """Checks records fed in id order, one at a time, so a chain of any length streams."""

    def __init__(self) -> None:
        self.checked = 0
        self._expected_prev = GENESIS_HASH
        self._last_id: int | None = None

    def feed(self, rec: ChainRecord) -> ChainBreak | None:
        if rec.prev_hash != self._expected_prev:
            return ChainBreak(
                rec.id, "link to the previous record broken (a record before it was deleted)"
            )
        if record_hash(rec.content, rec.prev_hash) != rec.hash:
            return ChainBreak(rec.id, "content does not match its hash (record edited)")
        self._expected_prev = rec.hash
        self._last_id = rec.id
        self.checked += 1
        return None

    def finish(self, head_id: int | None, head_hash: str) -> ChainBreak | None:
        if self._last_id != head_id or self._expected_prev != head_hash:
            return ChainBreak(
                self._last_id, "chain ends before its recorded head (newest records deleted)"
            )
        return None


def verify_chain(
    records: Iterable[ChainRecord], head_id: int | None, head_hash: str
) -> tuple[int, ChainBreak | None]:
    """Check records in id order; return how many were checked and the first break, if any."""
    verifier = ChainVerifier()
    for rec in records:
        broken = verifier.feed(rec)
        if broken is not None:
            return verifier.checked, broken
    return verifier.checked, verifier.finish(head_id, head_hash)
