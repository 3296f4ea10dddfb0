"""``clarity audit verify`` as a real process against the test database: tampering shows."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import text

from clarity.auth.models import Role
from tests.conftest import PASSWORD, TEST_SECRET, Harness, bearer


async def _verify(database_url: str, cwd: Path) -> tuple[int, str]:
    """Run the CLI; return its exit status and its output (stdout and stderr, unwrapped)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARITY_")}
    env.update(
        CLARITY_DATABASE_URL=database_url,
        CLARITY_SECRET_KEY=TEST_SECRET,
        CLARITY_ENVIRONMENT="test",
        COLUMNS="200",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "clarity.cli",
        "audit",
        "verify",
        env=env,
        cwd=cwd,  # away from any .env file of the checkout
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode is not None
    return process.returncode, " ".join(out.decode().split())


async def _make_records(h: Harness) -> list[int]:
    """Some audit records through the API; their ids, oldest first."""
    email, _ = await h.user(Role.clinician)
    for _ in range(3):
        await h.login(email)
    failed = await h.client.post(
        "/api/v1/auth/login", json={"email": email, "password": PASSWORD + "-no"}
    )
    assert failed.status_code == 401
    admin = await h.token_for(Role.admin)
    assert (await h.client.get("/api/v1/users", headers=bearer(admin))).status_code == 200
    return await _ids(h)


async def _ids(h: Harness) -> list[int]:
    async with h.runtime.db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT id FROM audit_events ORDER BY id"))
        return [row[0] for row in rows]


async def _sql(h: Harness, statement: str, **params: Any) -> None:
    async with h.runtime.db.engine.begin() as conn:
        result = await conn.execute(text(statement), params)
        assert result.rowcount == 1, statement


async def test_intact_edited_and_deleted_records(
    h: Harness, database_url: str, tmp_path: Path
) -> None:
    ids = await _make_records(h)
    assert len(ids) >= 6

    code, output = await _verify(database_url, tmp_path)
    assert code == 0, output
    assert "intact" in output
    assert f"{len(ids)} records verified" in output

    # Edit one record: its own hash no longer matches.
    edited = ids[2]
    async with h.runtime.db.engine.connect() as conn:
        original = (
            await conn.execute(text("SELECT action FROM audit_events WHERE id = :i"), {"i": edited})
        ).scalar_one()
    await _sql(h, "UPDATE audit_events SET action = 'user.read' WHERE id = :i", i=edited)
    code, output = await _verify(database_url, tmp_path)
    assert code == 1, output
    assert f"BROKEN at record {edited}:" in output
    assert "record edited" in output
    assert "intact" not in output

    # Put it back: intact again.
    await _sql(h, "UPDATE audit_events SET action = :a WHERE id = :i", a=original, i=edited)
    code, output = await _verify(database_url, tmp_path)
    assert code == 0, output

    # Delete a middle record: the link of the one after it breaks.
    await _sql(h, "DELETE FROM audit_events WHERE id = :i", i=ids[3])
    code, output = await _verify(database_url, tmp_path)
    assert code == 1, output
    assert f"BROKEN at record {ids[4]}:" in output
    assert "deleted" in output
    assert "3 records before it verified" in output


async def test_deleting_the_newest_record_is_detected(
    h: Harness, database_url: str, tmp_path: Path
) -> None:
    ids = await _make_records(h)
    code, output = await _verify(database_url, tmp_path)
    assert code == 0, output

    await _sql(h, "DELETE FROM audit_events WHERE id = :i", i=ids[-1])
    code, output = await _verify(database_url, tmp_path)
    assert code == 1, output
    assert f"BROKEN at record {ids[-2]}:" in output
    assert "newest records deleted" in output


async def test_an_empty_log_is_intact(h: Harness, database_url: str, tmp_path: Path) -> None:
    assert await _ids(h) == []
    code, output = await _verify(database_url, tmp_path)
    assert code == 0, output
    assert "0 records verified" in output
