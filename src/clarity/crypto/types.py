"""SQLAlchemy column types that encrypt PHI on the way in and decrypt it on the way out.

Why here and not in each service: a column declared ``EncryptedText("patients.family_name")``
can never be written in clear by a forgotten code path, and the context string becomes the
associated data, so a ciphertext copied into another column fails instead of being read.

The keyring is process-wide (a column type has no request to reach the runtime through):
the app and the CLI call :func:`configure_keyring` once at start-up; using an encrypted
column before that raises :class:`KeyringNotConfigured`.

Encrypted columns are opaque to SQL: comparing, ordering or searching them would compare
random ciphertexts and silently match nothing, so every operator except ``IS [NOT] NULL``
raises :class:`EncryptedColumnNotComparable`. Look rows up by a blind index column instead
(:class:`clarity.crypto.fields.BlindIndex`). Migrations declare these columns as plain
``sa.Text()``: the stored value is ASCII text.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Text
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.operators import OperatorType
from sqlalchemy.types import TypeDecorator

from clarity.crypto.fields import CryptoError, DecryptionFailed, Keyring

__all__ = [
    "EncryptedColumnNotComparable",
    "EncryptedDate",
    "EncryptedText",
    "KeyringNotConfigured",
    "configure_keyring",
    "current_keyring",
]

_T = TypeVar("_T")

_keyring: Keyring | None = None


class KeyringNotConfigured(CryptoError, RuntimeError):
    """An encrypted column was used before the app or CLI configured the keyring."""


class EncryptedColumnNotComparable(CryptoError, TypeError):
    """SQL comparison on an encrypted column, which could never match; use a blind index."""


def configure_keyring(keyring: Keyring | None) -> Keyring | None:
    """Set the process-wide keyring (``None`` clears it); returns the previous one."""
    global _keyring
    previous, _keyring = _keyring, keyring
    return previous


def current_keyring() -> Keyring:
    """The configured keyring, or :class:`KeyringNotConfigured`."""
    if _keyring is None:
        raise KeyringNotConfigured(
            "encrypted column used before configure_keyring(): "
            "the app or CLI must load CLARITY_ENCRYPTION_KEYS at start-up"
        )
    return _keyring


_NULL_TESTS = (operators.is_, operators.is_not)
_NULLABLE_EQ = (operators.eq, operators.ne)


class _OpaqueComparator(TypeDecorator.Comparator[_T]):
    """Only ``IS NULL`` / ``IS NOT NULL`` (also spelled ``== None``) make sense on ciphertext."""

    __slots__ = ()

    def _refuse(self, op: OperatorType, other: tuple[Any, ...]) -> None:
        if op in _NULL_TESTS or (op in _NULLABLE_EQ and len(other) == 1 and other[0] is None):
            return
        context = getattr(self.expr.type, "context", "?")
        raise EncryptedColumnNotComparable(
            f"encrypted column {context!r} cannot be compared, ordered or searched in SQL; "
            "look it up through its blind index column"
        )

    def operate(self, op: OperatorType, *other: Any, **kwargs: Any) -> ColumnElement[Any]:
        self._refuse(op, other)
        return super().operate(op, *other, **kwargs)

    def reverse_operate(self, op: OperatorType, other: Any, **kwargs: Any) -> ColumnElement[_T]:
        self._refuse(op, (other,))
        return super().reverse_operate(op, other, **kwargs)


class _Encrypted(TypeDecorator[_T], Generic[_T]):
    """Text column holding ``v1:kid:nonce:ciphertext``, sealed for one context."""

    impl = Text
    cache_ok = True  # the only state is the context string, part of the cache key
    comparator_factory = _OpaqueComparator

    def __init__(self, context: str) -> None:
        if not context:
            raise ValueError("an encryption context such as 'patients.family_name' is required")
        super().__init__()
        self.context = context

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.context!r})"

    def _to_text(self, value: _T) -> str:
        raise NotImplementedError

    def _from_text(self, text: str) -> _T:
        raise NotImplementedError

    def process_bind_param(self, value: _T | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return current_keyring().encrypt(self._to_text(value), self.context)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> _T | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise DecryptionFailed(f"stored value in {self.context!r} is not text")
        return self._from_text(current_keyring().decrypt(value, self.context))


class EncryptedText(_Encrypted[str]):
    """A ``str`` stored encrypted, e.g. ``EncryptedText("patients.family_name")``."""

    cache_ok = True  # SQLAlchemy reads this per class, not through inheritance

    @property
    def python_type(self) -> type[str]:
        return str

    def _to_text(self, value: str) -> str:
        if not isinstance(value, str):
            raise TypeError(f"{self.context!r} accepts str only, not {type(value).__name__}")
        return value

    def _from_text(self, text: str) -> str:
        return text


class EncryptedDate(_Encrypted[date]):
    """A ``datetime.date`` (e.g. date of birth) stored encrypted as its ISO form."""

    cache_ok = True

    @property
    def python_type(self) -> type[date]:
        return date

    def _to_text(self, value: date) -> str:
        # datetime is a date subclass: refuse it rather than silently keep the time part.
        if not isinstance(value, date) or isinstance(value, datetime):
            raise TypeError(
                f"{self.context!r} accepts datetime.date only, not {type(value).__name__}"
            )
        return value.isoformat()

    def _from_text(self, text: str) -> date:
        try:
            return date.fromisoformat(text)
        except ValueError:  # its message would echo the decrypted text
            raise DecryptionFailed(f"decrypted value in {self.context!r} is not a date") from None
