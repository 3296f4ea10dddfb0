"""The audit hash chain detects edits, deletions in the middle and deletions at the end."""

from __future__ import annotations

from typing import Any

from clarity.audit.chain import GENESIS_HASH, ChainRecord, record_hash, verify_chain


def build_chain(n: int) -> list[ChainRecord]:
    records: list[ChainRecord] = []
    prev = GENESIS_HASH
    for i in range(1, n + 1):
        content: dict[str, Any] = {"action": f"action-{i}", "actor": "u1", "seq": i}
        digest = record_hash(content, prev)
        records.append(ChainRecord(id=i, content=content, prev_hash=prev, hash=digest))
        prev = digest
    return records


def test_intact_chain_verifies() -> None:
    records = build_chain(5)
    checked, broken = verify_chain(records, records[-1].id, records[-1].hash)
    assert checked == 5
    assert broken is None


def test_edited_record_is_detected_and_named() -> None:
    records = build_chain(5)
    target = records[2]
    edited = ChainRecord(
        id=target.id,
        content={**target.content, "action": "something else"},
        prev_hash=target.prev_hash,
        hash=target.hash,
    )
    records[2] = edited
    checked, broken = verify_chain(records, records[-1].id, records[-1].hash)
    assert broken is not None
    assert broken.record_id == 3
    assert "edited" in broken.reason
    assert checked == 2


def test_deleted_middle_record_names_the_record_after_the_gap() -> None:
    records = build_chain(5)
    del records[2]  # id 3
    checked, broken = verify_chain(records, records[-1].id, records[-1].hash)
    assert broken is not None
    assert broken.record_id == 4
    assert "deleted" in broken.reason
    assert checked == 2


def test_deleted_newest_records_are_detected_via_the_head() -> None:
    records = build_chain(5)
    head_id, head_hash = records[-1].id, records[-1].hash
    for keep in (4, 3, 0):
        checked, broken = verify_chain(records[:keep], head_id, head_hash)
        assert checked == keep
        assert broken is not None
        assert "newest records deleted" in broken.reason
        assert broken.record_id == (keep or None)


def test_empty_chain_with_genesis_head_is_fine() -> None:
    assert verify_chain([], None, GENESIS_HASH) == (0, None)


def test_empty_chain_with_a_recorded_head_is_broken() -> None:
    records = build_chain(1)
    _, broken = verify_chain([], records[0].id, records[0].hash)
    assert broken is not None


def test_record_hash_is_deterministic_and_key_order_independent() -> None:
    a = {"action": "login", "actor": "u1", "details": {"x": 1}}
    b = {"details": {"x": 1}, "actor": "u1", "action": "login"}
    assert record_hash(a, GENESIS_HASH) == record_hash(a, GENESIS_HASH)
    assert record_hash(a, GENESIS_HASH) == record_hash(b, GENESIS_HASH)
    assert len(record_hash(a, GENESIS_HASH)) == 64


def test_record_hash_depends_on_content_and_previous_hash() -> None:
    content = {"action": "login"}
    base = record_hash(content, GENESIS_HASH)
    assert record_hash({"action": "logout"}, GENESIS_HASH) != base
    assert record_hash(content, "1" * 64) != base
