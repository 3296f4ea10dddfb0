"""TOTP verification and one-time recovery codes."""

from __future__ import annotations

import pyotp

from clarity.auth.mfa import (
    RECOVERY_CODE_COUNT,
    consume_recovery_code,
    hash_recovery_code,
    new_recovery_codes,
    new_secret,
    verify_totp,
)

KEY = "recovery-hmac-key"


def test_current_totp_code_verifies() -> None:
    secret = new_secret()
    assert verify_totp(secret, pyotp.TOTP(secret).now()) is True


def test_wrong_totp_code_fails() -> None:
    secret = new_secret()
    code = pyotp.TOTP(secret).now()
    wrong = f"{(int(code) + 500_000) % 1_000_000:06d}"
    assert verify_totp(secret, wrong) is False
    assert verify_totp(secret, "") is False


def test_recovery_codes_are_ten_and_unique() -> None:
    codes = new_recovery_codes()
    assert len(codes) == RECOVERY_CODE_COUNT == 10
    assert len(set(codes)) == 10


def test_recovery_code_is_consumed_once() -> None:
    codes = new_recovery_codes()
    hashes = [hash_recovery_code(c, KEY) for c in codes]
    remaining = consume_recovery_code(codes[3], KEY, hashes)
    assert remaining is not None
    assert len(remaining) == 9
    assert hash_recovery_code(codes[3], KEY) not in remaining
    assert consume_recovery_code(codes[3], KEY, remaining) is None


def test_unknown_recovery_code_is_refused() -> None:
    hashes = [hash_recovery_code(c, KEY) for c in new_recovery_codes()]
    assert consume_recovery_code("0000abcd-ffff1234", KEY, hashes) is None


def test_recovery_code_hash_depends_on_key() -> None:
    assert hash_recovery_code("abcd1234-ef567890", KEY) != hash_recovery_code(
        "abcd1234-ef567890", "another-key"
    )


def test_recovery_code_hash_normalizes_case_and_spaces() -> None:
    digest = hash_recovery_code("abcd1234-ef567890", KEY)
    assert hash_recovery_code("  ABCD1234-EF567890 ", KEY) == digest
    assert hash_recovery_code("abcd 1234-ef56 7890", KEY) == digest
    assert consume_recovery_code("ABCD1234 - EF567890", KEY, [digest]) == []
