"""The audit API: what a login leaves behind, filters, pagination, NDJSON export, the chain."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from clarity.audit import service as audit
from clarity.audit.models import AuditEvent
from clarity.auth.models import Role
from tests.conftest import PASSWORD, Harness, bearer

HEX64 = re.compile(r"^[0-9a-f]{64}$")


async def _search(h: Harness, token: str, **params: Any) -> dict[str, Any]:
    response = await h.client.get("/api/v1/audit", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _admin_and_logins(h: Harness) -> tuple[str, uuid.UUID, uuid.UUID]:
    """An admin token; one successful and one failed login of a clinician."""
    admin = await h.token_for(Role.admin)
    email, user_id = await h.user(Role.clinician)
    ok = await h.client.post(
        "/api/v1/auth/login",
        json={"email": email, "password": PASSWORD},
        headers={"X-Request-ID": "req-login-ok-1"},
    )
    assert ok.status_code == 200
    bad = await h.client.post(
        "/api/v1/auth/login",
        json={"email": email, "password": PASSWORD + "-wrong"},
        headers={"X-Request-ID": "req-login-bad-2"},
    )
    assert bad.status_code == 401
    return admin, user_id, await h.org()


async def test_logins_are_recorded_with_actor_address_request_and_hashes(h: Harness) -> None:
    admin, user_id, _ = await _admin_and_logins(h)
    items = (await _search(h, admin, action="auth.login", actor_id=str(user_id)))["items"]
    by_outcome = {item["outcome"]: item for item in items}
    assert set(by_outcome) == {"success", "failure"}
    success, failure = by_outcome["success"], by_outcome["failure"]
    assert success["request_id"] == "req-login-ok-1"
    assert failure["request_id"] == "req-login-bad-2"
    for item in (success, failure):
        assert item["actor_id"] == str(user_id)
        assert item["actor_role"] == "clinician"
        assert item["client_address"] == "127.0.0.1"
        assert item["resource_type"] == "user"
        assert item["resource_id"] == str(user_id)
        assert HEX64.match(item["hash"])
        assert HEX64.match(item["prev_hash"])
        assert item["hash"] != item["prev_hash"]
    assert failure["severity"] == "warning"
    assert failure["details"]["reason"] == "bad_credentials"
    assert "email_key" in failure["details"]
    assert "@" not in json.dumps([success, failure])  # no email in clear, no password
    assert PASSWORD not in json.dumps([success, failure])


async def test_filters(h: Harness) -> None:
    admin, user_id, _ = await _admin_and_logins(h)
    everything = (await _search(h, admin, limit=1000))["items"]
    assert len(everything) >= 3

    logins = (await _search(h, admin, action="auth.login"))["items"]
    assert logins
    assert all(i["action"] == "auth.login" for i in logins)
    assert len(logins) == sum(1 for i in everything if i["action"] == "auth.login")

    mine = (await _search(h, admin, actor_id=str(user_id)))["items"]
    assert len(mine) == 2
    assert all(i["actor_id"] == str(user_id) for i in mine)
    nobody = (await _search(h, admin, actor_id=str(uuid.uuid4())))["items"]
    assert nobody == []

    on_user = (await _search(h, admin, resource_type="user", resource_id=str(user_id)))["items"]
    # Both logins name the user as actor and resource; its creation names it as resource.
    assert {i["action"] for i in on_user} == {"auth.login", "user.create"}
    assert {i["id"] for i in mine} < {i["id"] for i in on_user}
    assert (await _search(h, admin, resource_type="session"))["items"] == []

    # since is inclusive, until exclusive, both on occurred_at.
    pivot = mine[1]
    at = datetime.fromisoformat(pivot["occurred_at"])
    since = (await _search(h, admin, since=at.isoformat(), limit=1000))["items"]
    until = (await _search(h, admin, until=at.isoformat(), limit=1000))["items"]
    assert pivot["id"] in {i["id"] for i in since}
    assert pivot["id"] not in {i["id"] for i in until}
    assert all(datetime.fromisoformat(i["occurred_at"]) >= at for i in since)
    assert all(datetime.fromisoformat(i["occurred_at"]) < at for i in until)
    assert mine[0]["id"] in {i["id"] for i in until}
    window = await _search(
        h,
        admin,
        since=(at - timedelta(hours=2)).isoformat(),
        until=(at - timedelta(hours=1)).isoformat(),
    )
    assert window["items"] == []
    naive = await h.client.get(
        "/api/v1/audit", params={"since": "2024-01-01T00:00:00"}, headers=bearer(admin)
    )
    assert naive.status_code == 422


async def test_pagination_with_after_id(h: Harness) -> None:
    admin, user_id, _ = await _admin_and_logins(h)
    email = (await h.client.get(f"/api/v1/users/{user_id}", headers=bearer(admin))).json()["email"]
    for _ in range(4):
        await h.login(email)
    # A filter keeps the set fixed while paging (each query is itself audited).
    everything = [i["id"] for i in (await _search(h, admin, action="auth.login"))["items"]]
    assert len(everything) == 7

    seen: list[int] = []
    after: int | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"action": "auth.login", "limit": 2}
        if after is not None:
            params["after_id"] = after
        page = await _search(h, admin, **params)
        pages += 1
        items = page["items"]
        assert len(items) <= 2
        seen.extend(i["id"] for i in items)
        if len(items) == 2:
            assert page["next_after_id"] == items[-1]["id"]
        else:
            assert page["next_after_id"] is None
        after = page["next_after_id"]
        if after is None:
            break
        assert pages < 10, "pagination does not end"
    assert seen == everything  # in id order, no overlap, nothing skipped
    assert pages == 4
    past_the_end = await _search(h, admin, action="auth.login", after_id=everything[-1])
    assert past_the_end == {"items": [], "next_after_id": None}


async def test_export_streams_every_record_as_ndjson(h: Harness) -> None:
    admin, _, org_id = await _admin_and_logins(h)
    await h.user(Role.clinician, org="Some other clinic")  # not to be exported
    response = await h.client.get("/api/v1/audit/export", headers=bearer(admin))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.text.endswith("\n")
    lines = [json.loads(line) for line in response.text.splitlines()]
    async with h.runtime.db.session(system=True) as session:
        count = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.organization_id == org_id)
        )
    assert len(lines) == count
    assert [line["id"] for line in lines] == sorted(line["id"] for line in lines)
    assert {"auth.login", "audit.export"} <= {line["action"] for line in lines}
    assert all(HEX64.match(line["hash"]) for line in lines)

    # The export honours the same filters.
    filtered = await h.client.get(
        "/api/v1/audit/export", params={"action": "auth.login"}, headers=bearer(admin)
    )
    rows = [json.loads(line) for line in filtered.text.splitlines()]
    assert rows
    assert {r["action"] for r in rows} == {"auth.login"}


async def test_clinician_cannot_read_the_audit_log(h: Harness) -> None:
    clinician = await h.token_for(Role.clinician)
    for url in ("/api/v1/audit", "/api/v1/audit/export"):
        response = await h.client.get(url, headers=bearer(clinician))
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden"


async def test_chain_is_intact_after_the_requests(h: Harness) -> None:
    admin, _, _ = await _admin_and_logins(h)
    await _search(h, admin)
    export = await h.client.get("/api/v1/audit/export", headers=bearer(admin))
    assert export.status_code == 200
    async with h.runtime.db.session(system=True) as session:
        total = await session.scalar(select(func.count()).select_from(AuditEvent))
        checked, broken = await audit.verify(session)
    assert broken is None
    assert checked == total
    assert checked >= 5
