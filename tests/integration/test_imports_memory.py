"""A generated Apple Health export of over a million records imports through ``clarity
import`` (a real process) with a peak resident memory under 300 MB and exact counts.

The peak is the child's own high-water mark (``ru_maxrss``), read by a small launcher
process whose only child is the import, so no other process of the test run counts.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from clarity.auth.models import Role
from tests.api.test_biometrics_ingest import new_patient
from tests.api.test_imports_api import stored
from tests.conftest import BACKEND, Harness
from tests.integration.test_imports_resume import _env
from tests.support.apple_health import write_export

RECORDS = 1_000_001
PEAK_LIMIT_BYTES = 300 * 1000 * 1000
LAUNCHER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:])\n"
    "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(code)\n"
)


@pytest.mark.timeout(900)
async def test_a_million_record_apple_health_export_imports_in_bounded_memory(
    h: Harness, database_url: str, tmp_path: Path
) -> None:
    if BACKEND != "sqlite":
        pytest.skip("measured in the SQLite run: the reader and importer are the same code")
    token = await h.token_for(Role.clinician)
    patient_id = await new_patient(h, token)
    export = tmp_path / "export.xml"
    expected = await asyncio.to_thread(write_export, export, RECORDS)
    assert expected.records > 1_000_000

    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LAUNCHER,
        sys.executable,
        "-m",
        "clarity.cli",
        "import",
        str(export),
        "--patient",
        patient_id,
        "--format",
        "apple_health",
        env=_env(database_url),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=840)
    elapsed = time.perf_counter() - started
    output = " ".join(out.decode().split())
    assert process.returncode == 0, output
    peak = int(output.rsplit("PEAK_RSS_KB", 1)[1].split()[0]) * 1024
    print(
        f"\nApple Health export, {export.stat().st_size / 1e6:.0f} MB, {RECORDS:,} records: "
        f"imported in {elapsed:.1f} s, peak RSS {peak / 1e6:.1f} MB"
    )
    assert peak < PEAK_LIMIT_BYTES, output

    accepted = sum(expected.streams.values())
    assert (
        f"{expected.yielded:,} records read, {accepted:,} stored, 0 duplicate, "
        f"{expected.unreadable:,} rejected" in output
    ), output
    for kind, count in expected.skipped.items():
        assert f"{kind} {count:,}" in output, (kind, output)
    assert await stored(h, patient_id) == accepted
