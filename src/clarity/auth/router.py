"""Identity endpoints under /api/v1/auth (thin: parsing and status codes only)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from clarity.auth import profiles, service
from clarity.auth.dependencies import (
    Principal,
    RuntimeDep,
    SessionDep,
    public,
    require,
)
from clarity.auth.permissions import Permission
from clarity.auth.schemas import (
    ChangePasswordRequest,
    LoginRequest,
    Message,
    MfaCode,
    MfaDisableRequest,
    MfaEnrolment,
    RecoveryCodes,
    RefreshRequest,
    RegisterRequest,
    SessionOut,
    TokenPair,
    UserOut,
)
from clarity.errors import AppError
from clarity.http import exceeded, too_many

router = APIRouter(prefix="/auth", tags=["auth"])
Own = Annotated[Principal, require(Permission.own_account)]


def _client(request: Request) -> service.ClientInfo:
    return service.ClientInfo(
        address=request.state.client_address,
        user_agent=request.headers.get("user-agent"),
        request_id=request.state.request_id,
    )


async def login_rate_limit(request: Request, runtime: RuntimeDep) -> None:
    """Stricter per-address limit on credential endpoints than on the rest of the API."""
    settings = runtime.settings
    reset = await exceeded(
        runtime.cache,
        f"rl:login:{request.state.client_address}",
        settings.rate_limit_login,
        settings.rate_limit_window_seconds,
    )
    if reset is not None:
        raise too_many("Too many login attempts from this address; wait and try again.", reset)


LoginLimited = [public("credential exchange"), Depends(login_rate_limit)]


@router.post(
    "/login",
    response_model=TokenPair,
    dependencies=LoginLimited,
    responses={401: {}, 423: {}, 429: {}},
)
async def login(
    body: LoginRequest, request: Request, runtime: RuntimeDep, session: SessionDep
) -> TokenPair:
    """Exchange email and password (and a TOTP or recovery code when MFA is on) for tokens."""
    return await service.login(
        runtime,
        session,
        email=body.email,
        password=body.password,
        totp_code=body.totp_code,
        recovery_code=body.recovery_code,
        client=_client(request),
    )


@router.post("/refresh", response_model=TokenPair, dependencies=LoginLimited)
async def refresh(
    body: RefreshRequest, request: Request, runtime: RuntimeDep, session: SessionDep
) -> TokenPair:
    """Rotate: the refresh token is spent and a new pair returned. Reuse ends the session."""
    return await service.refresh(runtime, session, body.refresh_token, _client(request))


@router.post(
    "/register",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Message,
    dependencies=[
        public("patient self-registration, off unless enabled"),
        Depends(login_rate_limit),
    ],
)
async def register(
    body: RegisterRequest, request: Request, runtime: RuntimeDep, session: SessionDep
) -> Message:
    """Patients create their own account, when the clinic has turned this on."""
    await service.register_patient(runtime, session, body.email, body.password, _client(request))
    # Same answer whether or not the address was already registered (no enumeration).
    return Message(detail="If this address was not registered yet, the account now exists.")


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(principal: Own, runtime: RuntimeDep, session: SessionDep) -> None:
    """End this session: its access and refresh tokens stop working at once."""
    await service.logout(runtime, session, principal)


@router.get("/me", response_model=UserOut)
async def me(principal: Own, runtime: RuntimeDep) -> Response:
    """The signed-in account (served from the profile cache: the hottest route)."""
    found = await profiles.load(
        runtime.cache, runtime.db, principal.organization_id, principal.user_id
    )
    if found is None or not found[0].is_active:
        raise AppError(401, "not_authenticated", "This account no longer exists or is inactive.")
    return Response(found[1], media_type="application/json")


@router.post("/password", response_model=Message)
async def change_password(
    body: ChangePasswordRequest, principal: Own, runtime: RuntimeDep, session: SessionDep
) -> Message:
    """Change the password; every other session of this account ends."""
    ended = await service.change_password(
        runtime, session, principal, body.current_password, body.new_password
    )
    return Message(detail=f"Password changed; {ended} other session(s) ended.")


@router.get("/sessions", response_model=list[SessionOut])
async def list_sessions(principal: Own, session: SessionDep) -> list[SessionOut]:
    rows = await service.list_sessions(session, principal)
    return [
        SessionOut.model_validate(row).model_copy(
            update={"current": row.id == principal.session_id}
        )
        for row in rows
    ]


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_session(
    session_id: uuid.UUID, principal: Own, runtime: RuntimeDep, session: SessionDep
) -> None:
    await service.revoke_own_session(runtime, session, principal, session_id)


@router.post("/mfa/enroll", response_model=MfaEnrolment)
async def mfa_enroll(principal: Own, session: SessionDep) -> MfaEnrolment:
    """Start TOTP enrolment: scan the URI in an authenticator app, then confirm a code."""
    secret, uri = await service.mfa_enroll(session, principal)
    return MfaEnrolment(secret=secret, provisioning_uri=uri)


@router.post("/mfa/confirm", response_model=RecoveryCodes)
async def mfa_confirm(
    body: MfaCode, principal: Own, runtime: RuntimeDep, session: SessionDep
) -> RecoveryCodes:
    """Turn MFA on with a first code. Returns recovery codes once; all sessions end, so
    log in again with a code."""
    return RecoveryCodes(
        recovery_codes=await service.mfa_confirm(runtime, session, principal, body.code)
    )


@router.post("/mfa/disable", status_code=status.HTTP_204_NO_CONTENT)
async def mfa_disable(
    body: MfaDisableRequest, principal: Own, runtime: RuntimeDep, session: SessionDep
) -> None:
    await service.mfa_disable(runtime, session, principal, body.password, body.code)
