"""Webhook signatures: HMAC-SHA256 over the timestamp and the body (pure, no I/O).

The scheme follows the one Stripe documents for its webhooks ("Check the webhook
signatures", https://docs.stripe.com/webhooks#verify-manually), with our header names:

* ``X-Clarity-Timestamp``: the moment of sending, in whole Unix seconds;
* ``X-Clarity-Signature``: ``v1=<hex>``, where ``<hex>`` is the lowercase hexadecimal
  HMAC-SHA256 (RFC 2104, FIPS 180-4) keyed with the endpoint's secret (its UTF-8 bytes)
  over ``f"{timestamp}.{body}"``, the body being the exact bytes sent. Several
  comma-separated ``v1=`` values may appear; one matching is enough.

Signing the timestamp with the body is what defeats replay: a receiver checks the
signature, then refuses a timestamp outside its tolerance (:data:`DEFAULT_TOLERANCE`), so
a captured request cannot be sent again later. Comparison is in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

SCHEME: Final = "v1"
DEFAULT_TOLERANCE: Final = 300  # seconds either side of the receiver's clock
SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - a label, not a secret


def new_secret() -> str:
    """A fresh endpoint secret: 256 random bits, URL-safe, recognisable by its prefix."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hexadecimal HMAC-SHA256 of ``f"{timestamp}.".encode() + body``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The value of ``X-Clarity-Signature``."""
    return f"{SCHEME}={signature(secret, timestamp, body)}"


def _candidates(header: str) -> list[str]:
    found: list[str] = []
    for part in header.split(","):
        scheme, sep, value = part.strip().partition("=")
        if sep and scheme == SCHEME and value:
            found.append(value)
    return found


def verify(
    secret: str,
    header: str,
    timestamp: str,
    body: bytes,
    *,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE,
) -> bool:
    """True when ``header`` holds a valid ``v1`` signature of ``body`` at ``timestamp``
    and ``timestamp`` is within ``tolerance`` seconds of ``now`` (Unix seconds)."""
    if not (timestamp.isascii() and timestamp.isdigit()):
        return False
    sent = int(timestamp)
    if abs(now - sent) > tolerance:
        return False
    expected = signature(secret, sent, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in _candidates(header))
