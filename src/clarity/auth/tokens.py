"""JWT access and refresh tokens (pure: no database, no web).

HS256 only, with issuer, audience and type checked on every decode, so a token with
``alg: none``, another key, another audience, an expired one, or a refresh token presented
as an access token (or the reverse) is refused.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt

ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]
REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "type", "iss", "aud", "sid", "org"]


class InvalidToken(Exception):
    """The token is malformed, forged, expired, or of the wrong type or audience."""


@dataclass(frozen=True)
class TokenClaims:
    subject: uuid.UUID
    organization_id: uuid.UUID
    session_id: uuid.UUID
    jti: uuid.UUID
    role: str
    type: TokenType
    issued_at: datetime
    expires_at: datetime
    mfa_setup_only: bool = False


@dataclass
class TokenCodec:
    """Encodes and verifies tokens. Verified tokens are remembered (bounded LRU) so a token
    presented again skips the signature and parsing work; expiry is still checked each time."""

    secret: str
    issuer: str
    audience: str
    max_remembered: int = 10_000
    _verified: OrderedDict[tuple[str, str], TokenClaims] = field(
        default_factory=OrderedDict, repr=False
    )

    def encode(
        self,
        *,
        kind: TokenType,
        subject: uuid.UUID,
        organization_id: uuid.UUID,
        session_id: uuid.UUID,
        role: str,
        lifetime: timedelta,
        mfa_setup_only: bool = False,
        now: datetime | None = None,
    ) -> tuple[str, TokenClaims]:
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        claims = TokenClaims(
            subject=subject,
            organization_id=organization_id,
            session_id=session_id,
            jti=uuid.uuid4(),
            role=role,
            type=kind,
            issued_at=issued,
            expires_at=issued + lifetime,
            mfa_setup_only=mfa_setup_only,
        )
        payload: dict[str, Any] = {
            "sub": str(subject),
            "org": str(organization_id),
            "sid": str(session_id),
            "jti": str(claims.jti),
            "role": role,
            "type": kind,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": int(issued.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
        }
        if mfa_setup_only:
            payload["mfa_setup"] = True
        return jwt.encode(payload, self.secret, algorithm=ALGORITHM), claims

    def decode(self, token: str, expected_type: TokenType) -> TokenClaims:
        key = (token, expected_type)
        remembered = self._verified.get(key)
        if remembered is not None:
            if remembered.expires_at > datetime.now(UTC):
                self._verified.move_to_end(key)
                return remembered
            del self._verified[key]
            raise InvalidToken("ExpiredSignatureError")
        claims = self._verify(token, expected_type)
        self._verified[key] = claims
        if len(self._verified) > self.max_remembered:
            self._verified.popitem(last=False)
        return claims

    def _verify(self, token: str, expected_type: TokenType) -> TokenClaims:
        try:
            payload = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": REQUIRED_CLAIMS},
            )
            if payload["type"] != expected_type:
                raise InvalidToken(f"expected a {expected_type} token")
            return TokenClaims(
                subject=uuid.UUID(payload["sub"]),
                organization_id=uuid.UUID(payload["org"]),
                session_id=uuid.UUID(payload["sid"]),
                jti=uuid.UUID(payload["jti"]),
                role=str(payload["role"]),
                type=expected_type,
                issued_at=datetime.fromtimestamp(payload["iat"], UTC),
                expires_at=datetime.fromtimestamp(payload["exp"], UTC),
                mfa_setup_only=bool(payload.get("mfa_setup", False)),
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from exc
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidToken("malformed claims") from exc
