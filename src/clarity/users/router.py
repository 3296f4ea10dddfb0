"""Admin user management within the admin's own organization."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from clarity.auth.dependencies import Principal, RuntimeDep, SessionDep, require
from clarity.auth.models import Role
from clarity.auth.permissions import Permission
from clarity.auth.schemas import UserOut
from clarity.users import service
from clarity.users.schemas import UserCreate, UserPage, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])
Reader = Annotated[Principal, require(Permission.users_read)]
Manager = Annotated[Principal, require(Permission.users_manage)]


@router.get("", response_model=UserPage)
async def list_users(
    _: Reader,
    session: SessionDep,
    role: Role | None = None,
    active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> UserPage:
    users, total = await service.list_users(
        session, role=role, active=active, limit=limit, offset=offset
    )
    await session.commit()
    return UserPage(
        items=[UserOut.model_validate(u) for u in users], total=total, limit=limit, offset=offset
    )


@router.post("", response_model=UserOut, status_code=status.HTTP_201_CREATED)
async def create_user(
    body: UserCreate, _: Manager, runtime: RuntimeDep, session: SessionDep
) -> UserOut:
    user = await service.create_user(
        runtime, session, email=body.email, password=body.password, role=body.role
    )
    await session.commit()
    return UserOut.model_validate(user)


@router.get("/{user_id}", response_model=UserOut)
async def get_user(user_id: uuid.UUID, _: Reader, session: SessionDep) -> UserOut:
    user = await service.get_user(session, user_id)
    await session.commit()
    return UserOut.model_validate(user)


@router.patch("/{user_id}", response_model=UserOut)
async def update_user(
    user_id: uuid.UUID,
    body: UserUpdate,
    principal: Manager,
    runtime: RuntimeDep,
    session: SessionDep,
) -> UserOut:
    """Change role or active state; the user's sessions end so the change applies at once."""
    user = await service.update_user(
        runtime, session, principal, user_id, role=body.role, is_active=body.is_active
    )
    return UserOut.model_validate(user)


@router.post("/{user_id}/deactivate", response_model=UserOut)
async def deactivate_user(
    user_id: uuid.UUID, principal: Manager, runtime: RuntimeDep, session: SessionDep
) -> UserOut:
    user = await service.update_user(
        runtime, session, principal, user_id, role=None, is_active=False
    )
    return UserOut.model_validate(user)
