"""Running Alembic from code (``clarity migrate``, tests) with the settings' database URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from clarity.crypto.types import EncryptedDate, EncryptedText
from clarity.database import UTCDateTime

MIGRATIONS = Path(__file__).parent / "migrations"


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Write UTCDateTime as a plain timezone-aware DateTime: migrations stay self-contained."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, EncryptedText | EncryptedDate):
        return "sa.Text()"  # ciphertext: the migration needs no keys
    return False


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


class SchemaOutOfDate(RuntimeError):
    """The database is not at the migrations' head; the message says what to run."""


async def check_at_head(engine: AsyncEngine) -> None:
    """Refuse to serve on a schema older (or newer) than this code's migrations."""
    script = ScriptDirectory(str(MIGRATIONS))
    heads = set(script.get_heads())

    def current(conn: Connection) -> set[str]:
        return set(MigrationContext.configure(conn).get_current_heads())

    async with engine.connect() as conn:
        at = await conn.run_sync(current)
    if at != heads:
        found = ", ".join(sorted(at)) or "an empty database"
        raise SchemaOutOfDate(
            f"database schema is at {found}, this code needs {', '.join(sorted(heads))}: "
            "run `clarity migrate`"
        )
