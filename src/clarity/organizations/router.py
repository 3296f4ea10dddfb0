"""The caller's own organization."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from clarity.auth.dependencies import Principal, SessionDep, require
from clarity.auth.permissions import Permission
from clarity.errors import not_found
from clarity.organizations.models import Organization
from clarity.organizations.schemas import OrganizationOut

router = APIRouter(prefix="/organization", tags=["organization"])


@router.get("", response_model=OrganizationOut)
async def current_organization(
    principal: Annotated[Principal, require(Permission.organization_read)], session: SessionDep
) -> OrganizationOut:
    org = await session.get(Organization, principal.organization_id)
    if org is None:
        raise not_found("organization")
    return OrganizationOut.model_validate(org)
