"""TOTP (RFC 6238, via pyotp) and one-time recovery codes (pure: no database, no web)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import pyotp

ISSUER = "Clarity"
RECOVERY_CODE_COUNT = 10


def new_secret() -> str:
    return str(pyotp.random_base32())


def provisioning_uri(secret: str, account: str) -> str:
    return str(pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=ISSUER))


def verify_totp(secret: str, code: str) -> bool:
    """Accept the current 30-second step and one step either side (clock drift)."""
    return bool(pyotp.TOTP(secret).verify(code, valid_window=1))


def new_recovery_codes() -> list[str]:
    return [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODE_COUNT)]


def hash_recovery_code(code: str, key: str) -> str:
    # The codes carry 64 random bits, so a keyed hash suffices (no slow hash needed).
    normalized = code.strip().lower().replace(" ", "")
    return hmac.new(key.encode(), normalized.encode(), hashlib.sha256).hexdigest()


def consume_recovery_code(code: str, key: str, hashes: list[str]) -> list[str] | None:
    """The remaining hashes if the code matched one (which is used up), else None."""
    digest = hash_recovery_code(code, key)
    for stored in hashes:
        if hmac.compare_digest(stored, digest):
            return [h for h in hashes if h != stored]
    return None
