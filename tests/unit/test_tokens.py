"""JWT codec: only well-formed HS256 tokens of the right key, issuer, audience and type pass."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from clarity.auth.tokens import InvalidToken, TokenCodec, TokenType

SECRET = "unit-test-secret-key-" + "0123456789abcdef" * 3  # 68 bytes: no key-length warnings
codec = TokenCodec(secret=SECRET, issuer="clarity", audience="clarity-api")


def issue(kind: TokenType = "access", c: TokenCodec = codec, **kw: Any) -> str:
    token, _ = c.encode(
        kind=kind,
        subject=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        role="clinician",
        lifetime=timedelta(minutes=15),
        **kw,
    )
    return token


def valid_payload() -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    return {
        "sub": str(uuid.uuid4()),
        "org": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "jti": str(uuid.uuid4()),
        "role": "admin",
        "type": "access",
        "iss": "clarity",
        "aud": "clarity-api",
        "iat": now,
        "exp": now + 900,
    }


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_round_trip() -> None:
    subject, org, sid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    token, issued = codec.encode(
        kind="refresh",
        subject=subject,
        organization_id=org,
        session_id=sid,
        role="admin",
        lifetime=timedelta(days=1),
        mfa_setup_only=True,
    )
    claims = codec.decode(token, "refresh")
    assert claims == issued
    assert (claims.subject, claims.organization_id, claims.session_id) == (subject, org, sid)
    assert claims.role == "admin"
    assert claims.type == "refresh"
    assert claims.mfa_setup_only is True
    assert claims.expires_at - claims.issued_at == timedelta(days=1)


def test_hand_built_valid_token_is_accepted() -> None:
    # Proves the payload helper below is valid, so the rejections test only what they change.
    token = jwt.encode(valid_payload(), SECRET, algorithm="HS256")
    assert codec.decode(token, "access").role == "admin"


def test_alg_none_is_rejected() -> None:
    token = jwt.encode(valid_payload(), None, algorithm="none")
    with pytest.raises(InvalidToken, match="InvalidAlgorithm"):
        codec.decode(token, "access")


def test_hand_built_alg_none_with_empty_signature_is_rejected() -> None:
    header = b64(b'{"alg":"none","typ":"JWT"}')
    body = b64(json.dumps(valid_payload()).encode())
    with pytest.raises(InvalidToken, match="InvalidAlgorithm"):
        codec.decode(f"{header}.{body}.", "access")


def test_hs512_with_the_right_secret_is_rejected() -> None:
    token = jwt.encode(valid_payload(), SECRET, algorithm="HS512")
    with pytest.raises(InvalidToken, match="InvalidAlgorithm"):
        codec.decode(token, "access")


def test_wrong_key_is_rejected() -> None:
    other = TokenCodec(secret=SECRET[::-1], issuer=codec.issuer, audience=codec.audience)
    with pytest.raises(InvalidToken, match="InvalidSignature"):
        codec.decode(issue(c=other), "access")


def test_wrong_audience_is_rejected() -> None:
    other = TokenCodec(secret=SECRET, issuer="clarity", audience="someone-else")
    with pytest.raises(InvalidToken, match="InvalidAudience"):
        codec.decode(issue(c=other), "access")


def test_wrong_issuer_is_rejected() -> None:
    other = TokenCodec(secret=SECRET, issuer="evil", audience="clarity-api")
    with pytest.raises(InvalidToken, match="InvalidIssuer"):
        codec.decode(issue(c=other), "access")


def test_expired_is_rejected() -> None:
    token = issue(now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(InvalidToken, match="ExpiredSignature"):
        codec.decode(token, "access")


@pytest.mark.parametrize(("kind", "expected"), [("refresh", "access"), ("access", "refresh")])
def test_wrong_type_is_rejected(kind: TokenType, expected: TokenType) -> None:
    with pytest.raises(InvalidToken, match=f"expected a {expected} token"):
        codec.decode(issue(kind), expected)


def test_tampered_payload_is_rejected() -> None:
    header, body, signature = issue().split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert payload["role"] == "clinician"
    payload["role"] = "admin"
    forged = f"{header}.{b64(json.dumps(payload).encode())}.{signature}"
    with pytest.raises(InvalidToken, match="InvalidSignature"):
        codec.decode(forged, "access")


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "jti", "type", "iss", "aud", "sid", "org"])
def test_missing_required_claim_is_rejected(claim: str) -> None:
    payload = valid_payload()
    del payload[claim]
    token = jwt.encode(payload, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        codec.decode(token, "access")


def test_malformed_claim_is_rejected() -> None:
    payload = valid_payload()
    payload["sub"] = "not-a-uuid"
    with pytest.raises(InvalidToken, match="malformed claims"):
        codec.decode(jwt.encode(payload, SECRET, algorithm="HS256"), "access")


@pytest.mark.parametrize("garbage", ["", "garbage", "a.b.c", "x" * 500])
def test_garbage_is_rejected(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        codec.decode(garbage, "access")
