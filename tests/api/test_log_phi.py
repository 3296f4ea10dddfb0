"""The PHI canary: drive real flows with recognisable values and prove none reaches the logs,
while the access log still says which route answered, how, and for which request."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from clarity.auth.models import Role
from clarity.logging import get_logger
from tests.conftest import Harness, bearer

HarnessFactory = Callable[..., Awaitable[Harness]]

CANARY_EMAIL = "canary.zqx@clinic.example.org"
CANARY_LOCAL = "canary.zqx"
CANARY_PASSWORD = "Zq-Canary-Passphrase-4471"
CANARY_NAME = "Zebulon Quixotic"
REQUEST_ID = "phi-canary-request-7"


def _json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for raw in text.splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


async def test_canary_values_never_reach_the_logs(
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    harness_factory: HarnessFactory,
) -> None:
    # The test client's own logger prints full URLs; only the application is under test.
    monkeypatch.setattr(logging.getLogger("httpx"), "disabled", True)
    h = await harness_factory()
    admin = await h.token_for(Role.admin)

    # An admin creates the canary user (and fails once with a name where an email belongs).
    created = await h.client.post(
        "/api/v1/users",
        json={"email": CANARY_EMAIL, "password": CANARY_PASSWORD, "role": "clinician"},
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    bad_create = await h.client.post(
        "/api/v1/users",
        json={"email": CANARY_NAME, "password": CANARY_PASSWORD, "role": "clinician"},
        headers=bearer(admin),
    )
    assert bad_create.status_code == 422

    # A failed login, a successful one, and a validation error carrying a name.
    failed = await h.client.post(
        "/api/v1/auth/login", json={"email": CANARY_EMAIL, "password": CANARY_PASSWORD + "!"}
    )
    assert failed.status_code == 401
    ok = await h.client.post(
        "/api/v1/auth/login",
        json={"email": CANARY_EMAIL, "password": CANARY_PASSWORD},
        headers={"X-Request-ID": REQUEST_ID},
    )
    assert ok.status_code == 200
    invalid = await h.client.post(
        "/api/v1/auth/login", json={"email": CANARY_NAME, "password": "x"}
    )
    assert invalid.status_code == 422
    assert "Zebulon" not in invalid.text

    # Reads by id: the access log must show the template, not the id.
    fetched = await h.client.get(f"/api/v1/users/{user_id}", headers=bearer(admin))
    assert fetched.status_code == 200
    # PHI in the path or the query string must not reach the access log either.
    in_path = await h.client.get("/api/v1/users/Zebulon-Quixotic", headers=bearer(admin))
    assert in_path.status_code == 422
    in_query = await h.client.get("/api/v1/users?role=Zebulon", headers=bearer(admin))
    assert in_query.status_code == 422
    me = await h.client.get("/api/v1/auth/me", headers=bearer(ok.json()["access_token"]))
    assert me.json()["email"] == CANARY_EMAIL  # the API itself may return it, logs may not

    out, err = capfd.readouterr()
    logs = out + err
    for canary in (CANARY_EMAIL, CANARY_LOCAL, "Zebulon", "Quixotic", CANARY_PASSWORD):
        assert canary.lower() not in logs.lower(), f"{canary!r} leaked into the logs"

    lines = _json_lines(err)
    access = [line for line in lines if line.get("event") == "request"]
    assert access, "no access log lines were written"
    for line in access:
        assert line["logger"] == "clarity.access"
        assert {"method", "route", "status", "duration_ms", "request_id"} <= line.keys()
        assert user_id not in json.dumps(line)
    routes = {(line["method"], line["route"], line["status"]) for line in access}
    assert ("GET", "/api/v1/users/{user_id}", 200) in routes
    assert ("POST", "/api/v1/users", 201) in routes
    assert ("POST", "/api/v1/auth/login", 401) in routes
    assert ("POST", "/api/v1/auth/login", 422) in routes
    assert ("GET", "/api/v1/auth/me", 200) in routes
    assert ("GET", "/api/v1/users/{user_id}", 422) in routes
    assert ("GET", "/api/v1/users", 422) in routes
    ours = [line for line in access if line["request_id"] == REQUEST_ID]
    assert [(line["route"], line["status"]) for line in ours] == [("/api/v1/auth/login", 200)]
    # Nothing the application itself logged names the raw id either.
    for line in lines:
        if str(line.get("logger", "")).startswith("clarity"):
            assert user_id not in json.dumps(line), line


async def test_direct_log_calls_are_redacted(
    capfd: pytest.CaptureFixture[str], harness_factory: HarnessFactory
) -> None:
    await harness_factory()  # configures logging as the app does
    log = get_logger("clarity.test.phi")
    log.info(
        "patient.contact",
        email=CANARY_EMAIL,
        date_of_birth="1984-03-07",
        comment=f"reach {CANARY_EMAIL}, born 1984-03-07 or 03/07/1984",
        visit_count=3,
    )
    log.warning(f"free text mentioning {CANARY_EMAIL} born 1984-03-07")

    _, err = capfd.readouterr()
    assert CANARY_EMAIL not in err
    assert CANARY_LOCAL not in err
    assert "1984-03-07" not in err
    assert "03/07/1984" not in err
    lines = [line for line in _json_lines(err) if line.get("logger") == "clarity.test.phi"]
    assert len(lines) == 2
    contact, free_text = lines
    assert contact["event"] == "patient.contact"
    assert contact["email"] == "[redacted]"
    assert contact["date_of_birth"] == "[redacted]"
    assert contact["comment"] == "reach [redacted], born [redacted] or [redacted]"
    assert contact["visit_count"] == 3  # non-PHI fields survive
    assert free_text["event"] == "free text mentioning [redacted] born [redacted]"
