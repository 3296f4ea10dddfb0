"""Password hashing (argon2id) and the password policy (pure: no database, no web)."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn.frequency_lists import FREQUENCY_LISTS

_hasher = PasswordHasher()  # argon2id with the library's RFC 9106 "low memory" profile

# A fixed hash to verify against when the account does not exist, so that an unknown email
# costs the same time as a wrong password (no user enumeration by timing).
_DUMMY_HASH = _hasher.hash("clarity-timing-equaliser-not-a-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-cost check; a missing hash still spends one verification."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    # The 30,000 most common passwords from leaked sets, as shipped and maintained by zxcvbn.
    return frozenset(FREQUENCY_LISTS["passwords"])


def policy_violations(password: str, email: str, min_length: int = 12) -> list[str]:
    """Why a password is refused; an empty list means it is acceptable."""
    problems: list[str] = []
    if len(password) < min_length:
        problems.append(f"must be at least {min_length} characters long")
    if len(password) > 1024:
        problems.append("must be at most 1024 characters long")
    lowered = password.lower()
    if lowered in _common_passwords():
        problems.append("is in a list of commonly used passwords")
    local_part = email.split("@", 1)[0].lower()
    if len(local_part) >= 3 and local_part in lowered:
        problems.append("must not contain the account's email name")
    return problems
