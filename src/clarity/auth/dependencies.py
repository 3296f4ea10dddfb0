"""FastAPI dependencies: the request's database session, the caller, and access checks.

Every route declares exactly one of :func:`require` (a permission) or :func:`public` (a
named exception: health, login, ...). The app factory refuses to start if a route declares
neither, and a test walks the routes to prove it: deny by default.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.audit.service import AuditActor, bind_actor
from clarity.auth.models import AuthSession
from clarity.auth.patient_access import may_reach_patient
from clarity.auth.permissions import Permission, role_has
from clarity.auth.tokens import InvalidToken, TokenClaims
from clarity.cache import mirrored_key
from clarity.database import scope_session
from clarity.errors import AppError, not_found
from clarity.runtime import Runtime

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="Access token from POST /api/v1/auth/login (paste the access_token value).",
)


# Dependencies are ``async def`` on purpose: FastAPI runs plain ``def`` ones in a thread pool,
# a thread hop that costs more than the work they do.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request. It is scoped to the caller's organization as soon as the
    caller is known, whichever of the two FastAPI resolves first (see :func:`authenticate`).
    A session of an anonymous request reaches no tenant data."""
    runtime: Runtime = request.app.state.runtime
    async with runtime.db.session() as session:
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is not None:
            _bind(session, principal, request)
        request.state.db_session = session
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    organization_id: uuid.UUID
    role: str
    session_id: uuid.UUID
    token_id: uuid.UUID
    mfa_setup_only: bool = False


def _unauthenticated(code: str, detail: str) -> AppError:
    return AppError(401, code, detail, headers={"WWW-Authenticate": "Bearer"})


def revoked_key(session_id: uuid.UUID) -> str:
    return mirrored_key(f"revoked:sid:{session_id}")


def _bind(session: AsyncSession, principal: Principal, request: Request) -> None:
    scope_session(session, principal.organization_id)
    bind_actor(
        session,
        AuditActor(
            actor_id=principal.user_id,
            actor_role=principal.role,
            organization_id=principal.organization_id,
            client_address=request.state.client_address,
            request_id=request.state.request_id,
        ),
    )


async def _revoked_in_database(runtime: Runtime, claims: TokenClaims) -> bool:
    async with runtime.db.session(claims.organization_id) as session:
        revoked = await session.scalar(
            select(AuthSession.revoked_at).where(AuthSession.id == claims.session_id)
        )
    return revoked is not None


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Validate the bearer token and check that its session is not revoked (the per-account
    rate limit is counted by the request middleware, with the per-address one).

    Kept to two sub-dependencies and no cache round trip: it runs on every request."""
    if credentials is None:
        raise _unauthenticated("not_authenticated", "Send an access token: Authorization: Bearer.")
    runtime: Runtime = request.app.state.runtime
    try:
        claims = runtime.tokens.decode(credentials.credentials, "access")
    except InvalidToken:
        raise _unauthenticated(
            "invalid_token", "The access token is invalid or expired; log in or refresh."
        ) from None
    revoked, in_sync = runtime.cache.get_mirrored(revoked_key(claims.session_id))
    if revoked is not None or (not in_sync and await _revoked_in_database(runtime, claims)):
        # Out of sync, another replica's revocation may not have reached us: ask the database.
        raise _unauthenticated("token_revoked", "This session has ended; log in again.")
    principal = Principal(
        user_id=claims.subject,
        organization_id=claims.organization_id,
        role=claims.role,
        session_id=claims.session_id,
        token_id=claims.jti,
        mfa_setup_only=claims.mfa_setup_only,
    )
    request.state.principal = principal
    session: AsyncSession | None = getattr(request.state, "db_session", None)
    if session is not None:
        _bind(session, principal, request)
    return principal


def require(permission: Permission) -> Any:
    """Declare the permission a route needs; yields the authenticated Principal."""

    async def check_permission(
        principal: Annotated[Principal, Depends(authenticate)],
    ) -> Principal:
        if principal.mfa_setup_only and permission is not Permission.own_account:
            raise AppError(
                403,
                "mfa_enrolment_required",
                "Enrol in multi-factor authentication (POST /api/v1/auth/mfa/enroll) first.",
            )
        if not role_has(principal.role, permission):
            raise AppError(403, "forbidden", f"Your role lacks the '{permission}' permission.")
        return principal

    check_permission.required_permission = permission  # type: ignore[attr-defined]
    return Depends(check_permission)


def public(reason: str) -> Any:
    """Declare a route open without authentication, and say why."""

    async def open_route() -> None:
        return None

    open_route.public_reason = reason  # type: ignore[attr-defined]
    return Depends(open_route)


def declared_access(dependencies: Collection[Callable[..., Any]]) -> list[str]:
    """The permissions/public markers among a route's dependency callables."""
    found: list[str] = []
    for call in dependencies:
        if hasattr(call, "required_permission"):
            found.append(str(call.required_permission))
        elif hasattr(call, "public_reason"):
            found.append("public")
    return found


def ensure_patient_access(
    principal: Principal,
    patient_id: uuid.UUID,
    *,
    care_team: Collection[uuid.UUID],
    own_patient_id: uuid.UUID | None = None,
    identified: bool = True,
) -> None:
    """The hook for patient-scoped routes: raise 404 (not 403) when the caller may not see."""
    if not may_reach_patient(
        role=principal.role,
        user_id=principal.user_id,
        own_patient_id=own_patient_id,
        patient_id=patient_id,
        care_team=care_team,
        identified=identified,
    ):
        raise not_found("patient")
