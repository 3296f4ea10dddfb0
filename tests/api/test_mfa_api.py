"""TOTP multi-factor: enrolment, login with a code or a recovery code, replay, disabling, and
mandatory MFA for administrators."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pyotp

from clarity.auth.models import Role
from tests.conftest import PASSWORD, Harness, bearer

Factory = Callable[..., Awaitable[Harness]]


def _wrong_code(secret: str) -> str:
    """A six-digit code that is not valid now (nor one step either side)."""
    totp = pyotp.TOTP(secret)
    for candidate in ("000000", "123456", "999999", "424242"):
        if not totp.verify(candidate, valid_window=2):
            return candidate
    raise AssertionError("unreachable: four codes all valid")


async def _login(h: Harness, email: str, **extra: Any) -> httpx.Response:
    return await h.client.post(
        "/api/v1/auth/login", json={"email": email, "password": PASSWORD, **extra}
    )


async def _enrol(h: Harness, token: str) -> tuple[str, list[str]]:
    """Enrol and confirm; return the secret and the recovery codes."""
    enrol = await h.client.post("/api/v1/auth/mfa/enroll", headers=bearer(token))
    assert enrol.status_code == 200, enrol.text
    secret = enrol.json()["secret"]
    uri = enrol.json()["provisioning_uri"]
    assert uri.startswith("otpauth://totp/")
    assert f"secret={secret}" in uri
    assert "issuer=Clarity" in uri
    confirm = await h.client.post(
        "/api/v1/auth/mfa/confirm", json={"code": pyotp.TOTP(secret).now()}, headers=bearer(token)
    )
    assert confirm.status_code == 200, confirm.text
    codes: list[str] = confirm.json()["recovery_codes"]
    return secret, codes


async def test_enrol_confirm_and_log_in_with_a_code(h: Harness) -> None:
    email, _ = await h.user(Role.clinician)
    token = (await h.login(email))["access_token"]
    secret, codes = await _enrol(h, token)
    assert len(codes) == 10
    assert len(set(codes)) == 10

    # Confirming ends the one-factor session.
    me = await h.client.get("/api/v1/auth/me", headers=bearer(token))
    assert me.status_code == 401
    assert me.json()["code"] == "token_revoked"

    without = await _login(h, email)
    assert without.status_code == 401
    assert without.json()["code"] == "mfa_required"
    assert "access_token" not in without.text

    wrong = await _login(h, email, totp_code=_wrong_code(secret))
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "invalid_credentials"

    code = pyotp.TOTP(secret).now()
    right = await _login(h, email, totp_code=code)
    assert right.status_code == 200, right.text
    me = await h.client.get("/api/v1/auth/me", headers=bearer(right.json()["access_token"]))
    assert me.status_code == 200
    assert me.json()["mfa_enabled"] is True

    replay = await _login(h, email, totp_code=code)
    assert replay.status_code == 401
    assert replay.json()["code"] == "invalid_credentials"

    # The next step's code (accepted: one step of drift either way) works, once.
    later = pyotp.TOTP(secret).at(time.time() + 30)
    assert later != code
    assert (await _login(h, email, totp_code=later)).status_code == 200

    # A wrong password is refused even with a good code.
    bad_password = await h.client.post(
        "/api/v1/auth/login",
        json={
            "email": email,
            "password": PASSWORD + "x",
            "totp_code": pyotp.TOTP(secret).at(time.time() - 30),
        },
    )
    assert bad_password.status_code == 401


async def test_recovery_codes_work_once_each(h: Harness) -> None:
    email, _ = await h.user(Role.researcher)
    _, codes = await _enrol(h, (await h.login(email))["access_token"])

    first = await _login(h, email, recovery_code=codes[0])
    assert first.status_code == 200, first.text
    again = await _login(h, email, recovery_code=codes[0])
    assert again.status_code == 401
    assert again.json()["code"] == "invalid_credentials"
    other = await _login(h, email, recovery_code=codes[1].upper())
    assert other.status_code == 200
    made_up = await _login(h, email, recovery_code="0000abcd-ffff0000")
    assert made_up.status_code == 401


async def test_disable_needs_password_and_code(h: Harness) -> None:
    email, _ = await h.user(Role.clinician)
    secret, _ = await _enrol(h, (await h.login(email))["access_token"])
    totp = pyotp.TOTP(secret)
    token = (await _login(h, email, totp_code=totp.now())).json()["access_token"]
    auth = bearer(token)

    for body in (
        {"password": PASSWORD + "x", "code": totp.now()},
        {"password": PASSWORD, "code": _wrong_code(secret)},
    ):
        refused = await h.client.post("/api/v1/auth/mfa/disable", json=body, headers=auth)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "wrong_credentials"
    missing = await h.client.post(
        "/api/v1/auth/mfa/disable", json={"password": PASSWORD}, headers=auth
    )
    assert missing.status_code == 422
    assert (await _login(h, email)).json()["code"] == "mfa_required"  # still on

    done = await h.client.post(
        "/api/v1/auth/mfa/disable", json={"password": PASSWORD, "code": totp.now()}, headers=auth
    )
    assert done.status_code == 204, done.text
    plain = await _login(h, email)
    assert plain.status_code == 200
    me = await h.client.get("/api/v1/auth/me", headers=bearer(plain.json()["access_token"]))
    assert me.json()["mfa_enabled"] is False


async def test_enrolment_is_refused_when_already_enabled(h: Harness) -> None:
    email, _ = await h.user(Role.clinician)
    secret, _ = await _enrol(h, (await h.login(email))["access_token"])
    token = (await _login(h, email, totp_code=pyotp.TOTP(secret).now())).json()["access_token"]
    again = await h.client.post("/api/v1/auth/mfa/enroll", headers=bearer(token))
    assert again.status_code == 409
    assert again.json()["code"] == "mfa_already_enabled"


async def test_admins_without_mfa_may_only_enrol_when_it_is_mandatory(
    harness_factory: Factory,
) -> None:
    h = await harness_factory(mfa_required_for_admins=True)
    email, _ = await h.user(Role.admin)
    login = await _login(h, email)
    assert login.status_code == 200
    assert login.json()["mfa_enrolment_required"] is True
    token = login.json()["access_token"]

    users = await h.client.get("/api/v1/users", headers=bearer(token))
    assert users.status_code == 403
    assert users.json()["code"] == "mfa_enrolment_required"
    audit = await h.client.get("/api/v1/audit", headers=bearer(token))
    assert audit.status_code == 403
    assert audit.json()["code"] == "mfa_enrolment_required"
    me = await h.client.get("/api/v1/auth/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["role"] == "admin"

    # Refreshing does not shed the restriction.
    refreshed = await h.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": login.json()["refresh_token"]}
    )
    assert refreshed.status_code == 200
    assert refreshed.json()["mfa_enrolment_required"] is True
    users = await h.client.get("/api/v1/users", headers=bearer(refreshed.json()["access_token"]))
    assert users.status_code == 403

    # Enrolling with that token lifts it at the next login (with a code).
    secret, _ = await _enrol(h, refreshed.json()["access_token"])
    full = await _login(h, email, totp_code=pyotp.TOTP(secret).now())
    assert full.status_code == 200
    assert full.json()["mfa_enrolment_required"] is False
    users = await h.client.get("/api/v1/users", headers=bearer(full.json()["access_token"]))
    assert users.status_code == 200

    # Other roles are not asked to enrol.
    clinician, _ = await h.user(Role.clinician)
    assert (await _login(h, clinician)).json()["mfa_enrolment_required"] is False
