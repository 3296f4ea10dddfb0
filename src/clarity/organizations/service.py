"""Organization look-ups used by the CLI and by embedded mode's first start."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clarity.organizations.models import Organization


async def get_or_create(session: AsyncSession, name: str) -> Organization:
    org = await session.scalar(select(Organization).where(Organization.name == name))
    if org is None:
        org = Organization(name=name)
        session.add(org)
        await session.flush()
    return org


async def ensure_default(session: AsyncSession, name: str) -> Organization | None:
    """Create the default organization when there is none yet (embedded mode)."""
    count = await session.scalar(select(func.count()).select_from(Organization))
    if count:
        return None
    return await get_or_create(session, name)
