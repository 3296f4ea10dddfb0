"""``clarity keys rotate`` as a real process: after rotation old and new data read back,
the raw rows are under the new key, and the old key can be dropped."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from sqlalchemy import text

from clarity.auth.models import Role
from clarity.config import DEFAULT_BLIND_INDEX_KEYS, DEFAULT_ENCRYPTION_KEYS
from clarity.crypto.fields import new_key
from tests.api.test_patients import create
from tests.conftest import TEST_SECRET, Harness, bearer

NEW_DATA_KEY = "k2:" + new_key()
NEW_INDEX_KEY = "i2:" + new_key()
BOTH = {
    "encryption_keys": f"{NEW_DATA_KEY},{DEFAULT_ENCRYPTION_KEYS}",
    "blind_index_keys": f"{NEW_INDEX_KEY},{DEFAULT_BLIND_INDEX_KEYS}",
}


async def _keys(database_url: str, cwd: Path, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARITY_")}
    env.update(
        CLARITY_DATABASE_URL=database_url,
        CLARITY_SECRET_KEY=TEST_SECRET,
        CLARITY_ENVIRONMENT="test",
        CLARITY_ENCRYPTION_KEYS=BOTH["encryption_keys"],
        CLARITY_BLIND_INDEX_KEYS=BOTH["blind_index_keys"],
        COLUMNS="200",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "clarity.cli",
        "keys",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode is not None
    return process.returncode, " ".join(out.decode().split())


async def test_rotation_keeps_old_and_new_data_readable(
    harness_factory: object, database_url: str, tmp_path: Path
) -> None:
    old: Harness = await harness_factory()  # type: ignore[operator]
    clinician_email, _ = await old.user(Role.clinician)
    before = await create(old, (await old.login(clinician_email))["access_token"], mrn="ROT-1")

    # Both keys configured, newest first: new writes use k2, old values still read.
    both: Harness = await harness_factory(**BOTH)  # type: ignore[operator]
    token = (await both.login(clinician_email))["access_token"]
    after = await create(both, token, mrn="ROT-2", given_name="Newkeyname")

    status, output = await _keys(database_url, tmp_path, "rotate", "--check")
    assert status == 1, output
    assert "patients.given_name dev1" in output

    status, output = await _keys(database_url, tmp_path, "rotate")
    assert status == 0, output
    assert "rotated patients.given_name: 1" in output
    assert "rotated patients.mrn_index: 1" in output
    assert (await _keys(database_url, tmp_path, "rotate", "--check"))[0] == 0

    async with both.runtime.db.engine.connect() as conn:
        raw = (await conn.execute(text("SELECT given_name, mrn_index FROM patients"))).all()
    assert all(r[0].startswith("v1:k2:") and r[1].startswith("i2:") for r in raw), raw

    # The old keys are gone: everything still reads, and MRN lookup still works.
    new_only = {"encryption_keys": NEW_DATA_KEY, "blind_index_keys": NEW_INDEX_KEY}
    fresh: Harness = await harness_factory(**new_only)  # type: ignore[operator]
    token = (await fresh.login(clinician_email))["access_token"]
    for patient in (before, after):
        read = await fresh.client.get(f"/api/v1/patients/{patient['id']}", headers=bearer(token))
        assert read.status_code == 200
        assert read.json()["given_name"] == patient["given_name"]
        assert read.json()["birth_date"] == patient["birth_date"]
    found = await fresh.client.get(
        "/api/v1/patients", params={"mrn": "rot-1"}, headers=bearer(token)
    )
    assert [p["id"] for p in found.json()["items"]] == [before["id"]]


async def test_new_key_prints_a_usable_entry(database_url: str, tmp_path: Path) -> None:
    status, output = await _keys(database_url, tmp_path, "new", "--kid", "k9")
    assert status == 0
    assert output.startswith("k9:")
    assert len(output.split(":", 1)[1]) >= 43
