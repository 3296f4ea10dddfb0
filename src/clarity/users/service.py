"""User administration within the caller's organization (the session is scoped to it)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.audit.service import record
from clarity.auth import profiles
from clarity.auth.dependencies import Principal
from clarity.auth.models import Role, User
from clarity.auth.passwords import hash_password
from clarity.auth.service import check_password_policy, revoke_user_sessions
from clarity.errors import AppError, not_found
from clarity.runtime import Runtime


async def create_user(
    runtime: Runtime,
    session: AsyncSession,
    *,
    email: str,
    password: str,
    role: Role,
    organization_id: uuid.UUID | None = None,
) -> User:
    """Create an account; the organization defaults to the session's scope."""
    email = email.strip().lower()
    check_password_policy(runtime, password, email)
    # Emails are unique across organizations (login does not name one): check globally.
    taken = await session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.email == email)
        .execution_options(all_organizations=True)
    )
    if taken:
        raise AppError(409, "email_taken", "An account with this email already exists.")
    user = User(email=email, password_hash=hash_password(password), role=role)
    if organization_id is not None:
        user.organization_id = organization_id
    session.add(user)
    await session.flush()
    record(
        session,
        "user.create",
        resource_type="user",
        resource_id=user.id,
        details={"role": role.value},
    )
    return user


async def list_users(
    session: AsyncSession,
    *,
    role: Role | None,
    active: bool | None,
    limit: int,
    offset: int,
) -> tuple[list[User], int]:
    query = select(User)
    if role is not None:
        query = query.where(User.role == role)
    if active is not None:
        query = query.where(User.is_active == active)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.scalars(
        query.order_by(User.created_at, User.id).limit(limit).offset(offset)
    )
    record(session, "user.list", resource_type="user", details={"count": total})
    return list(rows.all()), total


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise not_found("user")
    record(session, "user.read", resource_type="user", resource_id=user.id)
    return user


async def update_user(  # commits: the profile version must change after the commit
    runtime: Runtime,
    session: AsyncSession,
    principal: Principal,
    user_id: uuid.UUID,
    *,
    role: Role | None,
    is_active: bool | None,
) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise not_found("user")
    if user.id == principal.user_id and (
        (role is not None and role != Role.admin) or is_active is False
    ):
        raise AppError(
            409,
            "cannot_demote_self",
            "Administrators cannot demote or deactivate themselves; ask another admin.",
        )
    changes: dict[str, str] = {}
    if role is not None and role != user.role:
        changes["role"] = f"{user.role}->{role.value}"
        user.role = role
    if is_active is not None and is_active != user.is_active:
        changes["is_active"] = f"{user.is_active}->{is_active}"
        user.is_active = is_active
    if changes:
        # Tokens carry the role: end the user's sessions so the change applies at once.
        await revoke_user_sessions(runtime, session, user.id, "account_changed")
    action = "user.deactivate" if changes.get("is_active") == "True->False" else "user.update"
    record(session, action, resource_type="user", resource_id=user.id, details=changes)
    await session.commit()
    await profiles.touch(runtime.cache, user.id)
    return user
