"""Password hashing (argon2id) and the password policy."""

from __future__ import annotations

from zxcvbn.frequency_lists import FREQUENCY_LISTS

from clarity.auth.passwords import hash_password, policy_violations, verify_password

GOOD = "violet-harbour-tangent-42"
EMAIL = "jane.doe@example.org"


def test_hash_is_argon2id_and_verifies() -> None:
    digest = hash_password(GOOD)
    assert digest.startswith("$argon2id$")
    assert GOOD not in digest
    assert verify_password(digest, GOOD) is True


def test_hashes_are_salted() -> None:
    assert hash_password(GOOD) != hash_password(GOOD)


def test_wrong_password_fails() -> None:
    assert verify_password(hash_password(GOOD), GOOD + "x") is False


def test_missing_hash_never_verifies() -> None:
    assert verify_password(None, GOOD) is False
    # Not even the password behind the dummy hash used for timing equalisation.
    assert verify_password(None, "clarity-timing-equaliser-not-a-password") is False


def test_garbage_hash_fails_without_raising() -> None:
    assert verify_password("not-a-hash", GOOD) is False


def test_too_short_is_refused() -> None:
    problems = policy_violations("Xq7#vB2!mK9", EMAIL)  # 11 characters
    assert problems == ["must be at least 12 characters long"]


def test_common_password_is_refused() -> None:
    common = next(p for p in FREQUENCY_LISTS["passwords"] if len(p) >= 12)
    problems = policy_violations(common, EMAIL)
    assert problems == ["is in a list of commonly used passwords"]


def test_common_password_check_ignores_case() -> None:
    common = next(p for p in FREQUENCY_LISTS["passwords"] if len(p) >= 12)
    assert "is in a list of commonly used passwords" in policy_violations(common.upper(), EMAIL)


def test_password_containing_email_name_is_refused() -> None:
    problems = policy_violations("xx-JANE.DOE-quartz-99", EMAIL)
    assert problems == ["must not contain the account's email name"]


def test_good_password_passes() -> None:
    assert policy_violations(GOOD, EMAIL) == []
