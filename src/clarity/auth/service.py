"""Identity logic: login with lockout and MFA, token rotation, sessions, passwords, MFA.

No user enumeration: an unknown email, a wrong password and a deactivated account get the
same answer after the same work (one argon2 verification), and lockout counts failures per
email whether or not the account exists. Emails never reach the cache or the audit log in
clear: they are keyed with HMAC first.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.audit.service import AuditActor, bind_actor, record
from clarity.auth import mfa, profiles
from clarity.auth.dependencies import Principal, revoked_key
from clarity.auth.models import AuthSession, RefreshToken, Role, User
from clarity.auth.passwords import (
    hash_password,
    needs_rehash,
    policy_violations,
    verify_password,
)
from clarity.auth.schemas import TokenPair
from clarity.auth.tokens import InvalidToken, TokenClaims, TokenType
from clarity.database import SYSTEM_KEY, scope_session, utcnow
from clarity.errors import AppError
from clarity.http import retry_after
from clarity.runtime import Runtime


@dataclass(frozen=True)
class ClientInfo:
    address: str | None
    user_agent: str | None
    request_id: str | None


def email_key(runtime: Runtime, email: str) -> str:
    """A keyed hash of the email: correlates attempts without storing the address."""
    secret = runtime.settings.secret_key.get_secret_value().encode()
    return hmac.new(secret, email.strip().lower().encode(), hashlib.sha256).hexdigest()[:32]


def check_password_policy(runtime: Runtime, password: str, email: str) -> None:
    problems = policy_violations(password, email, runtime.settings.password_min_length)
    if problems:
        raise AppError(
            422,
            "weak_password",
            "The password " + "; ".join(problems) + ".",
            extra={"errors": [{"field": "password", "message": p} for p in problems]},
        )


def _invalid_credentials() -> AppError:
    return AppError(401, "invalid_credentials", "Email or password is incorrect.")


async def login(
    runtime: Runtime,
    session: AsyncSession,
    *,
    email: str,
    password: str,
    totp_code: str | None,
    recovery_code: str | None,
    client: ClientInfo,
) -> TokenPair:
    settings = runtime.settings
    cache = runtime.cache
    key = email_key(runtime, email)
    session.info[SYSTEM_KEY] = True  # the account's organization is not known yet
    anonymous = AuditActor(client_address=client.address, request_id=client.request_id)

    locked_until = await cache.get(f"lock:{key}")
    if locked_until is not None:
        record(
            session,
            "auth.login",
            outcome="locked",
            severity="warning",
            details={"email_key": key},
            actor=anonymous,
        )
        await session.commit()
        remaining = float(locked_until) - utcnow().timestamp()
        raise AppError(
            423,
            "account_locked",
            "Too many failed attempts; this account is locked for a while. Try again later.",
            headers={"Retry-After": retry_after(remaining)},
        )

    user = await session.scalar(select(User).where(User.email == email.strip().lower()))
    password_ok = verify_password(user.password_hash if user else None, password)
    actor = (
        AuditActor(user.id, user.role, user.organization_id, client.address, client.request_id)
        if user is not None
        else anonymous
    )
    failure_reason = None
    if user is None or not password_ok or not user.is_active:
        failure_reason = "bad_credentials"
    elif user.mfa_enabled:
        if totp_code is None and recovery_code is None:
            raise AppError(
                401,
                "mfa_required",
                "This account uses multi-factor authentication: send totp_code "
                "(or recovery_code) with the email and password.",
            )
        if not await _second_factor_ok(runtime, user, totp_code, recovery_code):
            failure_reason = "bad_second_factor"

    if failure_reason is not None:
        count, _ = await cache.incr(f"fail:{key}", settings.lockout_window_seconds)
        record(
            session,
            "auth.login",
            outcome="failure",
            severity="warning",
            resource_type="user" if user else None,
            resource_id=user.id if user else None,
            details={"reason": failure_reason, "email_key": key},
            actor=actor,
        )
        if count >= settings.lockout_threshold:
            until = utcnow().timestamp() + settings.lockout_window_seconds
            await cache.set(f"lock:{key}", str(until), ttl=settings.lockout_window_seconds)
            await cache.delete(f"fail:{key}")
            record(
                session,
                "auth.lockout",
                outcome="locked",
                severity="high",
                resource_type="user" if user else None,
                resource_id=user.id if user else None,
                details={"email_key": key, "failures": count},
                actor=actor,
            )
        await session.commit()
        raise _invalid_credentials()

    assert user is not None
    await cache.delete(f"fail:{key}")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    scope_session(session, user.organization_id)
    auth_session = AuthSession(
        user_id=user.id,
        organization_id=user.organization_id,
        expires_at=utcnow() + timedelta(days=settings.refresh_token_days),
        client_address=client.address,
        user_agent=(client.user_agent or "")[:256] or None,
    )
    session.add(auth_session)
    await session.flush()
    setup_only = (
        settings.mfa_required_for_admins and user.role == Role.admin and not user.mfa_enabled
    )
    pair = _issue_pair(runtime, session, user, auth_session, mfa_setup_only=setup_only)
    record(
        session,
        "auth.login",
        resource_type="user",
        resource_id=user.id,
        details={"session_id": str(auth_session.id), "mfa": user.mfa_enabled},
        actor=actor,
    )
    await session.commit()
    await profiles.touch(cache, user.id)
    return pair


async def _second_factor_ok(
    runtime: Runtime, user: User, totp_code: str | None, recovery_code: str | None
) -> bool:
    assert user.mfa_secret is not None
    if totp_code is not None:
        if not mfa.verify_totp(user.mfa_secret, totp_code):
            return False
        # A code works once: remember it for longer than its validity window.
        replay_key = f"totp:{user.id}:{totp_code}"
        if await runtime.cache.get(replay_key) is not None:
            return False
        await runtime.cache.set(replay_key, "1", ttl=120)
        return True
    assert recovery_code is not None
    remaining = mfa.consume_recovery_code(
        recovery_code, runtime.settings.secret_key.get_secret_value(), user.mfa_recovery_hashes
    )
    if remaining is None:
        return False
    user.mfa_recovery_hashes = remaining
    return True


def _issue_pair(
    runtime: Runtime,
    session: AsyncSession,
    user: User,
    auth_session: AuthSession,
    *,
    mfa_setup_only: bool = False,
) -> TokenPair:
    settings = runtime.settings
    access_lifetime = timedelta(minutes=settings.access_token_minutes)

    def encode(kind: TokenType, lifetime: timedelta) -> tuple[str, TokenClaims]:
        return runtime.tokens.encode(
            kind=kind,
            subject=user.id,
            organization_id=user.organization_id,
            session_id=auth_session.id,
            role=user.role,
            lifetime=lifetime,
            mfa_setup_only=mfa_setup_only,
        )

    access, _ = encode("access", access_lifetime)
    refresh, refresh_claims = encode("refresh", timedelta(days=settings.refresh_token_days))
    session.add(
        RefreshToken(
            jti=refresh_claims.jti,
            session_id=auth_session.id,
            issued_at=refresh_claims.issued_at,
            expires_at=refresh_claims.expires_at,
        )
    )
    return TokenPair(
        access_token=access,
        refresh_token=refresh,
        expires_in=int(access_lifetime.total_seconds()),
        mfa_enrolment_required=mfa_setup_only,
    )


async def refresh(
    runtime: Runtime, session: AsyncSession, token: str, client: ClientInfo
) -> TokenPair:
    invalid = AppError(
        401, "invalid_token", "The refresh token is invalid or expired; log in again."
    )
    try:
        claims = runtime.tokens.decode(token, "refresh")
    except InvalidToken:
        raise invalid from None
    scope_session(session, claims.organization_id)
    actor = AuditActor(
        claims.subject, claims.role, claims.organization_id, client.address, client.request_id
    )
    now = utcnow()
    claimed = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.jti == claims.jti, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        known = await session.get(RefreshToken, claims.jti)
        if known is None:
            raise invalid
        # A used token came back: it was copied. End the whole family.
        await revoke_session_ids(runtime, session, [claims.session_id], "refresh_reuse")
        record(
            session,
            "auth.refresh_reuse",
            outcome="denied",
            severity="high",
            resource_type="session",
            resource_id=claims.session_id,
            actor=actor,
        )
        await session.commit()
        raise AppError(
            401,
            "refresh_token_reused",
            "This refresh token was already used; the session has been ended. Log in again.",
        )
    auth_session = await session.get(AuthSession, claims.session_id)
    user = await session.get(User, claims.subject)
    if (
        auth_session is None
        or auth_session.revoked_at is not None
        or auth_session.expires_at <= now
        or user is None
        or not user.is_active
    ):
        await session.rollback()
        raise invalid
    auth_session.last_used_at = now
    pair = _issue_pair(runtime, session, user, auth_session, mfa_setup_only=claims.mfa_setup_only)
    record(
        session, "auth.refresh", resource_type="session", resource_id=auth_session.id, actor=actor
    )
    await session.commit()
    return pair


async def revoke_session_ids(
    runtime: Runtime, session: AsyncSession, session_ids: list[uuid.UUID], reason: str
) -> None:
    """Mark sessions revoked in the database and in the cache checked on every request."""
    if not session_ids:
        return
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id.in_(session_ids), AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    ttl = runtime.settings.access_token_minutes * 60 + 60
    for sid in session_ids:
        await runtime.cache.set_mirrored(revoked_key(sid), reason, ttl=ttl)


async def active_session_ids(
    session: AsyncSession, user_id: uuid.UUID, *, except_id: uuid.UUID | None = None
) -> list[uuid.UUID]:
    query = select(AuthSession.id).where(
        AuthSession.user_id == user_id,
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > utcnow(),
    )
    if except_id is not None:
        query = query.where(AuthSession.id != except_id)
    return list((await session.scalars(query)).all())


async def revoke_user_sessions(
    runtime: Runtime,
    session: AsyncSession,
    user_id: uuid.UUID,
    reason: str,
    *,
    except_id: uuid.UUID | None = None,
) -> int:
    ids = await active_session_ids(session, user_id, except_id=except_id)
    await revoke_session_ids(runtime, session, ids, reason)
    return len(ids)


async def logout(runtime: Runtime, session: AsyncSession, principal: Principal) -> None:
    await revoke_session_ids(runtime, session, [principal.session_id], "logout")
    record(session, "auth.logout", resource_type="session", resource_id=principal.session_id)
    await session.commit()


async def current_user(session: AsyncSession, principal: Principal) -> User:
    user = await session.get(User, principal.user_id)
    if user is None or not user.is_active:
        raise AppError(401, "not_authenticated", "This account no longer exists or is inactive.")
    return user


async def change_password(
    runtime: Runtime,
    session: AsyncSession,
    principal: Principal,
    current_password: str,
    new_password: str,
) -> int:
    user = await current_user(session, principal)
    if not verify_password(user.password_hash, current_password):
        record(
            session,
            "auth.password_change",
            outcome="failure",
            resource_type="user",
            resource_id=user.id,
            severity="warning",
        )
        await session.commit()
        raise AppError(403, "wrong_password", "The current password is incorrect.")
    check_password_policy(runtime, new_password, user.email)
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    ended = await revoke_user_sessions(
        runtime, session, user.id, "password_changed", except_id=principal.session_id
    )
    record(
        session,
        "auth.password_change",
        resource_type="user",
        resource_id=user.id,
        details={"other_sessions_ended": ended},
    )
    await session.commit()
    await profiles.touch(runtime.cache, user.id)
    return ended


async def list_sessions(session: AsyncSession, principal: Principal) -> list[AuthSession]:
    ids = await active_session_ids(session, principal.user_id)
    if not ids:
        return []
    rows = await session.scalars(
        select(AuthSession).where(AuthSession.id.in_(ids)).order_by(AuthSession.created_at)
    )
    return list(rows.all())


async def revoke_own_session(
    runtime: Runtime, session: AsyncSession, principal: Principal, session_id: uuid.UUID
) -> None:
    target = await session.get(AuthSession, session_id)
    if target is None or target.user_id != principal.user_id:
        raise AppError(404, "not_found", "No such session.")
    await revoke_session_ids(runtime, session, [session_id], "revoked_by_user")
    record(session, "auth.session_revoke", resource_type="session", resource_id=session_id)
    await session.commit()


async def mfa_enroll(session: AsyncSession, principal: Principal) -> tuple[str, str]:
    user = await current_user(session, principal)
    if user.mfa_enabled:
        raise AppError(409, "mfa_already_enabled", "Disable multi-factor first to re-enrol.")
    user.mfa_secret = mfa.new_secret()
    record(session, "auth.mfa_enroll", resource_type="user", resource_id=user.id)
    await session.commit()
    return user.mfa_secret, mfa.provisioning_uri(user.mfa_secret, user.email)


async def mfa_confirm(
    runtime: Runtime, session: AsyncSession, principal: Principal, code: str
) -> list[str]:
    user = await current_user(session, principal)
    if user.mfa_enabled or user.mfa_secret is None:
        raise AppError(409, "mfa_not_pending", "Start with POST /api/v1/auth/mfa/enroll.")
    if not mfa.verify_totp(user.mfa_secret, code):
        raise AppError(422, "invalid_mfa_code", "The code does not match; check the clock.")
    codes = mfa.new_recovery_codes()
    key = runtime.settings.secret_key.get_secret_value()
    user.mfa_recovery_hashes = [mfa.hash_recovery_code(c, key) for c in codes]
    user.mfa_enabled = True
    # Sessions opened with one factor (enrolment-only tokens included) end here: the next
    # login asks for the code.
    await revoke_user_sessions(runtime, session, user.id, "mfa_enabled")
    record(session, "auth.mfa_enabled", resource_type="user", resource_id=user.id)
    await session.commit()
    await profiles.touch(runtime.cache, user.id)
    return codes


async def mfa_disable(
    runtime: Runtime, session: AsyncSession, principal: Principal, password: str, code: str
) -> None:
    user = await current_user(session, principal)
    if not user.mfa_enabled or user.mfa_secret is None:
        raise AppError(409, "mfa_not_enabled", "Multi-factor authentication is not enabled.")
    if not (
        verify_password(user.password_hash, password) and mfa.verify_totp(user.mfa_secret, code)
    ):
        record(
            session,
            "auth.mfa_disable",
            outcome="failure",
            severity="warning",
            resource_type="user",
            resource_id=user.id,
        )
        await session.commit()
        raise AppError(403, "wrong_credentials", "Password or code is incorrect.")
    if runtime.settings.mfa_required_for_admins and user.role == Role.admin:
        raise AppError(409, "mfa_mandatory", "Multi-factor is mandatory for administrators.")
    user.mfa_enabled = False
    user.mfa_secret = None
    user.mfa_recovery_hashes = []
    record(
        session, "auth.mfa_disabled", resource_type="user", resource_id=user.id, severity="warning"
    )
    await session.commit()
    await profiles.touch(runtime.cache, user.id)


async def register_patient(
    runtime: Runtime, session: AsyncSession, email: str, password: str, client: ClientInfo
) -> None:
    """Self-registration (patients only, off by default). Silent when the email is taken."""
    from clarity.organizations.service import get_or_create
    from clarity.users.service import create_user

    settings = runtime.settings
    if not settings.self_registration:
        raise AppError(403, "registration_disabled", "Self-registration is turned off here.")
    check_password_policy(runtime, password, email)
    session.info[SYSTEM_KEY] = True
    org = await get_or_create(session, settings.default_organization)
    scope_session(session, org.id)
    bind_actor(session, AuditActor(None, None, org.id, client.address, client.request_id))
    try:
        await create_user(runtime, session, email=email, password=password, role=Role.patient)
    except AppError as exc:
        if exc.code != "email_taken":
            raise
        await session.rollback()
        return
    await session.commit()
