"""Webhook signatures: a vector computed here with the standard library, the verification
rules (wrong secret, changed body, stale timestamp, several signatures), and secrets."""

from __future__ import annotations

import hashlib
import hmac

from clarity.alerts.delivery.signing import (
    DEFAULT_TOLERANCE,
    SECRET_PREFIX,
    new_secret,
    signature,
    signature_header,
    verify,
)

SECRET = "whsec_test-0123456789abcdef"
TIMESTAMP = 1_767_225_600  # 2026-01-01T00:00:00Z
BODY = b'{"event_id":"7c2a4a8e-3f1d-4f43-9a55-0c1f8a6b9d21","event_type":"alert.raised"}'


def _independent(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.{body.decode()}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = _independent(SECRET, TIMESTAMP, BODY)
    assert signature(SECRET, TIMESTAMP, BODY) == expected
    assert signature_header(SECRET, TIMESTAMP, BODY) == f"v1={expected}"
    assert len(expected) == 64


def test_known_vector() -> None:
    # Computed outside Python: printf '%s' "$TIMESTAMP.$BODY" | openssl dgst -sha256 -hmac "$SECRET"
    assert signature(SECRET, TIMESTAMP, BODY) == (
        "982be359cd2db7da01419c44adbe94435c452714e1babe84ff0608a9ef7437c0"
    )


def test_verify_accepts_a_fresh_valid_signature() -> None:
    header = signature_header(SECRET, TIMESTAMP, BODY)
    assert verify(SECRET, header, str(TIMESTAMP), BODY, now=TIMESTAMP + 10)
    assert verify(SECRET, header, str(TIMESTAMP), BODY, now=TIMESTAMP - 10)


def test_verify_refuses_tampering_wrong_secret_and_stale_timestamps() -> None:
    header = signature_header(SECRET, TIMESTAMP, BODY)
    now = TIMESTAMP + 1
    assert not verify("whsec_other", header, str(TIMESTAMP), BODY, now=now)
    assert not verify(SECRET, header, str(TIMESTAMP), BODY + b" ", now=now)
    assert not verify(SECRET, header, str(TIMESTAMP + 1), BODY, now=now)
    late = TIMESTAMP + DEFAULT_TOLERANCE + 1
    assert not verify(SECRET, header, str(TIMESTAMP), BODY, now=late)
    assert verify(SECRET, header, str(TIMESTAMP), BODY, now=late, tolerance=DEFAULT_TOLERANCE + 1)


def test_verify_refuses_malformed_headers_and_timestamps() -> None:
    good = signature(SECRET, TIMESTAMP, BODY)
    now = TIMESTAMP
    for header in ("", good, f"v0={good}", "v1=", f"V1={good}", "v1"):
        assert not verify(SECRET, header, str(TIMESTAMP), BODY, now=now), header
    for stamp in ("", "abc", f" {TIMESTAMP}", f"+{TIMESTAMP}", f"{TIMESTAMP}.0", "١٢٣"):
        assert not verify(SECRET, f"v1={good}", stamp, BODY, now=now), stamp


def test_one_matching_signature_among_several_is_enough() -> None:
    good = signature(SECRET, TIMESTAMP, BODY)
    header = f"v1={'0' * 64}, v1={good}"
    assert verify(SECRET, header, str(TIMESTAMP), BODY, now=TIMESTAMP)


def test_new_secrets_are_prefixed_long_and_distinct() -> None:
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert secret.startswith(SECRET_PREFIX)
        assert len(secret) >= len(SECRET_PREFIX) + 43  # 32 random bytes, base64url
