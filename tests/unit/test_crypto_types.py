"""Encrypted column types against a real SQLite file: PHI never reaches the stored bytes."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from clarity.crypto.fields import DecryptionFailed, Keyring, UnknownKeyId, kid_of
from clarity.crypto.types import (
    EncryptedColumnNotComparable,
    EncryptedDate,
    EncryptedText,
    KeyringNotConfigured,
    configure_keyring,
    current_keyring,
)

K1 = ("k1", os.urandom(32))
K2 = ("k2", os.urandom(32))
FAMILY_NAME = "Ngözi-Łukasiewicz"
NOTE = "Reports intrusive thoughts about the bridge; safety plan reviewed. " * 50
BIRTH_DATE = date(1987, 3, 14)

metadata = sa.MetaData()
people = sa.Table(
    "people",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("family_name", EncryptedText("people.family_name")),
    sa.Column("given_name", EncryptedText("people.given_name")),
    sa.Column("note", EncryptedText("people.note")),
    sa.Column("birth_date", EncryptedDate("people.birth_date")),
)


@pytest.fixture(autouse=True)
def keyring() -> Iterator[Keyring]:
    ring = Keyring([K1])
    previous = configure_keyring(ring)
    yield ring
    configure_keyring(previous)


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "crypto.db"


@pytest.fixture
def engine(db_file: Path) -> Iterator[sa.Engine]:
    eng = sa.create_engine(f"sqlite:///{db_file}", hide_parameters=True)
    metadata.create_all(eng)
    yield eng
    eng.dispose()


def insert_person(engine: sa.Engine, **values: object) -> int:
    row = {"family_name": FAMILY_NAME, "given_name": "Ada", "note": NOTE}
    row["birth_date"] = BIRTH_DATE  # type: ignore[assignment]
    row.update(values)  # type: ignore[arg-type]
    with engine.begin() as conn:
        pk = conn.execute(people.insert().values(**row)).inserted_primary_key
    assert pk is not None
    return int(pk[0])


def raw_rows(db_file: Path) -> list[tuple[object, ...]]:
    """The stored row as plain sqlite3 sees it: no SQLAlchemy, no types, no keys."""
    with sqlite3.connect(db_file) as conn:
        return conn.execute(
            "SELECT id, family_name, given_name, note, birth_date FROM people"
        ).fetchall()


def test_round_trip_through_a_sqlite_file(engine: sa.Engine) -> None:
    pk = insert_person(engine)
    with engine.connect() as conn:
        row = conn.execute(sa.select(people).where(people.c.id == pk)).one()
    assert row.family_name == FAMILY_NAME
    assert row.given_name == "Ada"
    assert row.note == NOTE
    assert row.birth_date == BIRTH_DATE
    assert type(row.birth_date) is date


def test_plaintext_is_absent_from_the_stored_bytes(engine: sa.Engine, db_file: Path) -> None:
    insert_person(engine)
    engine.dispose()
    [(_, family, given, note, birth)] = raw_rows(db_file)
    for stored in (family, given, note, birth):
        assert isinstance(stored, str)
        assert stored.startswith("v1:k1:")
    assert isinstance(family, str)
    assert isinstance(note, str)
    assert isinstance(birth, str)
    assert FAMILY_NAME not in family
    assert NOTE[:30] not in note
    assert BIRTH_DATE.isoformat() not in birth
    file_bytes = db_file.read_bytes()
    for secret in (FAMILY_NAME, "Łukasiewicz", "intrusive thoughts", "1987-03-14"):
        assert secret.encode() not in file_bytes


def test_equal_values_are_stored_differently(engine: sa.Engine, db_file: Path) -> None:
    insert_person(engine)
    insert_person(engine)
    first, second = raw_rows(db_file)
    assert first[1] != second[1]
    assert first[4] != second[4]


def test_none_stays_null_and_is_null_queries_work(engine: sa.Engine, db_file: Path) -> None:
    pk = insert_person(engine, given_name=None, birth_date=None)
    [(_, _, given, _, birth)] = raw_rows(db_file)
    assert given is None
    assert birth is None
    with engine.connect() as conn:
        row = conn.execute(sa.select(people).where(people.c.given_name.is_(None))).one()
        also = conn.execute(sa.select(people.c.id).where(people.c.birth_date == None)).scalar()  # noqa: E711
        none = conn.execute(sa.select(people.c.id).where(people.c.family_name.is_(None))).all()
    assert row.id == pk
    assert row.given_name is None
    assert row.birth_date is None
    assert also == pk
    assert none == []


@pytest.mark.parametrize(
    "build",
    [
        lambda: people.c.family_name == FAMILY_NAME,
        lambda: people.c.family_name != FAMILY_NAME,
        lambda: "Dr " + people.c.family_name,
        lambda: people.c.family_name.in_([FAMILY_NAME]),
        lambda: people.c.family_name.like("Ng%"),
        lambda: people.c.family_name.startswith("Ng"),
        lambda: people.c.birth_date > BIRTH_DATE,
        lambda: people.c.family_name == people.c.given_name,
        lambda: people.c.family_name.desc(),
    ],
    ids=["eq", "ne", "reverse-concat", "in", "like", "startswith", "gt", "column", "order"],
)
def test_sql_comparisons_on_ciphertext_are_refused(build: object) -> None:
    assert callable(build)
    with pytest.raises(EncryptedColumnNotComparable, match="people") as info:
        build()
    assert FAMILY_NAME not in str(info.value)


def test_value_copied_into_another_column_fails_to_read(engine: sa.Engine, db_file: Path) -> None:
    insert_person(engine)
    engine.dispose()
    with sqlite3.connect(db_file) as conn:
        conn.execute("UPDATE people SET given_name = family_name")
    with engine.connect() as conn, pytest.raises(DecryptionFailed) as info:
        conn.execute(sa.select(people.c.given_name)).all()
    assert FAMILY_NAME not in str(info.value)


def test_tampered_stored_value_fails_to_read(engine: sa.Engine, db_file: Path) -> None:
    insert_person(engine)
    engine.dispose()
    [(_, family, *_)] = raw_rows(db_file)
    assert isinstance(family, str)
    tampered = family[:-3] + ("A" if family[-3] != "A" else "B") + family[-2:]
    with sqlite3.connect(db_file) as conn:
        conn.execute("UPDATE people SET family_name = ?", (tampered,))
    with engine.connect() as conn, pytest.raises(DecryptionFailed):
        conn.execute(sa.select(people.c.family_name)).all()


def test_use_before_configuration_is_a_clear_error_without_phi(engine: sa.Engine) -> None:
    configure_keyring(None)
    with pytest.raises(KeyringNotConfigured):
        current_keyring()
    with pytest.raises(StatementError) as info:
        insert_person(engine)
    assert isinstance(info.value.orig, KeyringNotConfigured)
    assert "configure_keyring" in str(info.value)
    assert FAMILY_NAME not in str(info.value)
    assert "Ada" not in str(info.value)


def test_wrong_python_types_are_refused_without_echoing_them(engine: sa.Engine) -> None:
    with pytest.raises(StatementError) as info:
        insert_person(engine, birth_date=datetime(1987, 3, 14, 9, 30))
    assert isinstance(info.value.orig, TypeError)
    assert "1987" not in str(info.value)
    with pytest.raises(StatementError) as info:
        insert_person(engine, family_name=12345)
    assert isinstance(info.value.orig, TypeError)
    assert "12345" not in str(info.value)


def test_context_is_required_and_part_of_the_cache_key() -> None:
    with pytest.raises(ValueError, match="context"):
        EncryptedText("")
    assert repr(EncryptedDate("patients.birth_date")) == "EncryptedDate('patients.birth_date')"
    assert EncryptedText("a")._static_cache_key != EncryptedText("b")._static_cache_key


def test_rotation_through_the_database(engine: sa.Engine, db_file: Path) -> None:
    """What ``clarity keys rotate`` does: read raw, re-seal stale values, write raw back."""
    pk = insert_person(engine)
    rotated_ring = Keyring([K2, K1])
    configure_keyring(rotated_ring)

    with engine.connect() as conn:  # old values still readable under the new keyring
        assert conn.execute(sa.select(people.c.family_name)).scalar_one() == FAMILY_NAME

    columns = [people.c.family_name, people.c.given_name, people.c.note, people.c.birth_date]
    with engine.begin() as conn:
        raw = conn.execute(
            sa.select(
                people.c.id, *(sa.type_coerce(col, sa.Text).label(col.key) for col in columns)
            )
        ).one()
        updates: dict[str, object] = {}
        for col in columns:
            stored = raw._mapping[col.key]
            assert isinstance(col.type, EncryptedText | EncryptedDate)
            context = col.type.context
            if stored is not None and rotated_ring.needs_rotation(stored):
                updates[col.key] = sa.type_coerce(rotated_ring.rotate(stored, context), sa.Text)
        assert set(updates) == {"family_name", "given_name", "note", "birth_date"}
        conn.execute(people.update().where(people.c.id == raw.id).values(**updates))

    engine.dispose()
    [(_, *stored_values)] = raw_rows(db_file)
    assert all(isinstance(v, str) and kid_of(v) == "k2" for v in stored_values)

    configure_keyring(Keyring([K2]))  # k1 retired: everything still reads
    with engine.connect() as conn:
        row = conn.execute(sa.select(people).where(people.c.id == pk)).one()
    assert (row.family_name, row.note, row.birth_date) == (FAMILY_NAME, NOTE, BIRTH_DATE)


def test_retired_key_still_in_use_names_the_kid(engine: sa.Engine) -> None:
    insert_person(engine)
    configure_keyring(Keyring([K2]))
    with engine.connect() as conn, pytest.raises(UnknownKeyId, match="'k1'") as info:
        conn.execute(sa.select(people.c.family_name)).all()
    assert FAMILY_NAME not in str(info.value)


class _Base(DeclarativeBase):
    metadata = sa.MetaData()


class Patient(_Base):
    __tablename__ = "patients"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    family_name: Mapped[str] = mapped_column(EncryptedText("patients.family_name"))
    birth_date: Mapped[date | None] = mapped_column(EncryptedDate("patients.birth_date"))
    mrn_index: Mapped[str] = mapped_column(sa.String(64), index=True)


async def test_orm_through_aiosqlite(db_file: Path) -> None:
    """The app's own path: async engine, ORM entity, update re-encrypts under the newest key."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{db_file}", hide_parameters=True)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_Base.metadata.create_all)
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(Patient).values(
                    id=uuid.uuid4(),
                    family_name=FAMILY_NAME,
                    birth_date=BIRTH_DATE,
                    mrn_index="i1:token",
                )
            )
        configure_keyring(Keyring([K2, K1]))
        async with engine.begin() as conn:
            patient = (await conn.execute(sa.select(Patient))).one()
            assert (patient.family_name, patient.birth_date) == (FAMILY_NAME, BIRTH_DATE)
            await conn.execute(
                sa.update(Patient).where(Patient.id == patient.id).values(family_name="Okafor")
            )
    finally:
        await engine.dispose()

    with sqlite3.connect(db_file) as conn:
        family, birth = conn.execute("SELECT family_name, birth_date FROM patients").fetchone()
    assert kid_of(family) == "k2"
    assert kid_of(birth) == "k1"
    assert "Okafor" not in family
