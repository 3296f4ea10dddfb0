"""The one way to reach the database: engine, sessions, base model and tenancy scoping.

Tenancy is enforced here, once, rather than by each query remembering to filter: every
model with an ``organization_id`` (the :class:`TenantScoped` mixin) is filtered by the
session's organization on every ORM SELECT/UPDATE/DELETE, and new rows are stamped with it
(or refused if they name another one). A session without an organization refuses to
touch tenant data at all unless it was opened explicitly as a system session (CLI,
login lookup, audit verification).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, MetaData, Uuid, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    with_loader_criteria,
)
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from clarity.config import Settings

ORG_KEY = "organization_id"
SYSTEM_KEY = "system"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: timestamps must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), uuid.UUID: Uuid()}


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TenantScoped:
    """Rows that belong to one organization; scoped automatically by the session."""

    @declared_attr
    def organization_id(cls) -> Mapped[uuid.UUID]:
        return mapped_column(ForeignKey("organizations.id"), index=True)


class TenancyViolation(RuntimeError):
    """A session tried to reach tenant data without an organization, or another one's."""


@event.listens_for(Session, "do_orm_execute")
def _scope_to_organization(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return
    if state.execution_options.get("all_organizations"):
        return  # explicit, greppable escape for cross-tenant checks (e.g. email uniqueness)
    info = state.session.info
    org_id = info.get(ORG_KEY)
    if org_id is None:
        if info.get(SYSTEM_KEY):
            return
        if _touches_tenant_data(state):
            raise TenancyViolation("tenant data queried without an organization scope")
        return
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantScoped,
            lambda cls: cls.organization_id == org_id,
            include_aliases=True,
            track_closure_variables=False,
        )
    )


def _touches_tenant_data(state: ORMExecuteState) -> bool:
    return any(
        isinstance(mapper.class_, type) and issubclass(mapper.class_, TenantScoped)
        for mapper in state.all_mappers
    )


@event.listens_for(Session, "before_flush")
def _stamp_organization(session: Session, _ctx: Any, _instances: Any) -> None:
    org_id = session.info.get(ORG_KEY)
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, TenantScoped):
            continue
        if org_id is None:
            if session.info.get(SYSTEM_KEY) and obj.organization_id is not None:
                continue
            raise TenancyViolation("tenant row written without an organization scope")
        if obj.organization_id is None:
            obj.organization_id = org_id
        elif obj.organization_id != org_id:
            raise TenancyViolation("tenant row written into another organization")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(settings: Settings) -> AsyncEngine:
    """A pooled engine. SQLite (embedded mode) gets one shared connection so that writers in
    this process queue in the pool instead of failing on SQLite's single-writer lock."""
    if settings.is_sqlite:
        pool: dict[str, Any] = {"poolclass": StaticPool}
        if settings.sqlite_path is not None:
            settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            pool = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60}
        engine = create_async_engine(
            settings.database_url,
            echo=settings.database_echo,
            hide_parameters=True,  # values are PHI: keep them out of logs and error texts
            connect_args={"timeout": 30},
            **pool,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        settings.database_url,
        echo=settings.database_echo,
        hide_parameters=True,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_pre_ping=True,
    )


class Database:
    """Engine plus session factory, opened and closed by the app's lifespan or the CLI."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(settings)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(
        self, organization_id: uuid.UUID | None = None, *, system: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """A unit of work scoped to one organization (or, explicitly, to none: system)."""
        async with self.sessionmaker() as session:
            session.info[ORG_KEY] = organization_id
            session.info[SYSTEM_KEY] = system
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


def scope_session(session: AsyncSession, organization_id: uuid.UUID) -> None:
    """Bind a request's session to the caller's organization once they are authenticated."""
    session.info[ORG_KEY] = organization_id
    session.info[SYSTEM_KEY] = False
