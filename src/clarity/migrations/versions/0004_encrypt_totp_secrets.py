"""Encrypt TOTP secrets at rest (users.mfa_secret becomes ciphertext text).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

from clarity.config import Settings
from clarity.crypto.fields import Keyring

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONTEXT = "users.mfa_secret"
users = sa.table("users", sa.column("id", sa.Uuid()), sa.column("mfa_secret", sa.Text()))


def _keyring() -> Keyring:
    # The configured keys (CLARITY_ENCRYPTION_KEYS), the same ones the service uses.
    return Keyring.from_setting(Settings().encryption_keys.get_secret_value())


def _convert(convert: Callable[[str], str]) -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(users.c.id, users.c.mfa_secret).where(users.c.mfa_secret.is_not(None))
    )
    for user_id, value in rows.all():
        bind.execute(users.update().where(users.c.id == user_id).values(mfa_secret=convert(value)))


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column(
            "mfa_secret",
            existing_type=sa.String(length=64),
            type_=sa.Text(),
            existing_nullable=True,
        )
    keyring = _keyring()
    _convert(lambda value: keyring.encrypt(value, CONTEXT))


def downgrade() -> None:
    keyring = _keyring()
    _convert(lambda value: keyring.decrypt(value, CONTEXT))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column(
            "mfa_secret",
            existing_type=sa.Text(),
            type_=sa.String(length=64),
            existing_nullable=True,
        )
