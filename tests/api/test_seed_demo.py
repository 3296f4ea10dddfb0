"""`clarity seed-demo`'s work: demo accounts and synthetic patients, idempotent."""

from __future__ import annotations

from clarity.demo import DEMO_USERS, seed_patients, seed_users
from tests.conftest import Harness, bearer


async def test_seed_demo_creates_accounts_and_synthetic_patients_once(h: Harness) -> None:
    created = await seed_users(h.runtime)
    assert [new for *_, new in created] == [True] * len(DEMO_USERS)
    assert await seed_patients(h.runtime) == 2
    assert [new for *_, new in await seed_users(h.runtime)] == [False] * len(DEMO_USERS)
    assert await seed_patients(h.runtime) == 0

    email, password, _ = DEMO_USERS[1]  # the clinician
    token = (await h.login(email, password))["access_token"]
    listed = await h.client.get("/api/v1/patients", headers=bearer(token))
    patients = listed.json()["items"]
    assert sorted(p["mrn"] for p in patients) == ["DEMO-0001", "DEMO-0002"]
    assert all("SYNTHETIC DEMO RECORD" in p["flags"] for p in patients)
    first = next(p for p in patients if p["mrn"] == "DEMO-0001")
    trend = await h.client.get(
        f"/api/v1/patients/{first['id']}/assessments/trend",
        params={"instrument_id": "phq9"},
        headers=bearer(token),
    )
    assert trend.status_code == 200, trend.text

    email, password, _ = DEMO_USERS[3]  # the patient sees only the linked record
    token = (await h.login(email, password))["access_token"]
    mine = await h.client.get("/api/v1/patients", headers=bearer(token))
    assert [p["mrn"] for p in mine.json()["items"]] == ["DEMO-0001"]
