"""Field-level encryption at rest for PHI, and blind indexes for equality lookup (pure module).

Why: a database dump, backup or replica must not reveal names, dates of birth or note text.
Each value is sealed with AES-256-GCM under the newest key of a :class:`Keyring` and stored
as one compact ASCII string::

    v1:<kid>:<nonce, urlsafe base64>:<ciphertext + 16-byte tag, urlsafe base64>

The nonce is 96 random bits, fresh for every value, so equal plaintexts never look equal.
The associated data binds the ciphertext to its *context* (e.g. ``"patients.family_name"``),
its format version and its key id, so a value copied into another column, or relabelled
with another key id, fails to decrypt instead of being read as the wrong field.

Because encryption is randomized, an encrypted column cannot be searched. Columns that need
equality lookup (an MRN) also store a :class:`BlindIndex` value: an HMAC-SHA256 of the
normalized value under a *separate* index key. See :class:`BlindIndex` for why its keys are
versioned too.

Configured keys are given as ``"kid:base64,kid:base64"`` (newest first; see
:func:`parse_key_list`). Nothing here logs, and no exception message ever contains a
plaintext, a ciphertext or key material: only key ids and positions.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "FORMAT_VERSION",
    "KEY_BYTES",
    "BlindIndex",
    "CryptoError",
    "DecryptionFailed",
    "KeyConfigurationError",
    "Keyring",
    "MalformedCiphertext",
    "UnknownKeyId",
    "kid_of",
    "new_key",
    "normalize_identifier",
    "parse_key_list",
]

FORMAT_VERSION = "v1"
KEY_BYTES = 32  # AES-256; also the HMAC-SHA256 index key length
NONCE_BYTES = 12  # 96 bits: the GCM nonce size that needs no extra hashing
TAG_BYTES = 16

_KID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_B64 = re.compile(r"[A-Za-z0-9_-]*")
_AAD_PREFIX = b"clarity.field."
_INDEX_PREFIX = b"clarity.blind-index.v1\x00"


class CryptoError(Exception):
    """Base of every error raised here; messages never carry plaintext or key material."""


class KeyConfigurationError(CryptoError, ValueError):
    """The configured keys cannot be used (bad format, wrong length, duplicate id)."""


class UnknownKeyId(CryptoError):
    """A stored value names a key id that this keyring does not hold (a retired key?)."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        super().__init__(
            f"value was encrypted with key id {kid!r}, which is not in the configured keyring"
        )


class DecryptionFailed(CryptoError):
    """Authentication failed: tampered value, wrong context, or wrong key material."""


class MalformedCiphertext(DecryptionFailed):
    """The stored string is not in the ``v1:kid:nonce:ciphertext`` form at all."""


# --------------------------------------------------------------------------- key material


def new_key() -> str:
    """A fresh random 32-byte key as urlsafe base64 (44 characters), for ``clarity keys``."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict urlsafe base64 (padding optional): stray characters are an error, not ignored."""
    body = text.rstrip("=")
    if not _B64.fullmatch(body) or len(text) - len(body) > 2:
        raise ValueError("not urlsafe base64")
    try:
        data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not urlsafe base64") from exc
    if _b64encode(data) != body:  # unused trailing bits set: one value, one spelling
        raise ValueError("not canonical urlsafe base64")
    return data


def _check_kid(kid: str) -> None:
    if not _KID.fullmatch(kid):
        raise KeyConfigurationError(
            "key ids must be 1-32 characters of letters, digits, '-' or '_'"
        )


def _check_keys(keys: Sequence[tuple[str, bytes]], what: str) -> None:
    if not keys:
        raise KeyConfigurationError(f"{what} needs at least one key")
    seen_kids: set[str] = set()
    seen_material: set[bytes] = set()
    for kid, material in keys:
        _check_kid(kid)
        if kid in seen_kids:
            raise KeyConfigurationError(f"{what} lists key id {kid!r} twice")
        if len(material) != KEY_BYTES:
            raise KeyConfigurationError(f"{what} key {kid!r} is not {KEY_BYTES} bytes")
        if material in seen_material:
            raise KeyConfigurationError(f"{what} key {kid!r} repeats another key's material")
        seen_kids.add(kid)
        seen_material.add(material)


def parse_key_list(value: str) -> list[tuple[str, bytes]]:
    """Parse ``"kid:base64,kid:base64"`` (newest first) into ``[(kid, 32 bytes), ...]``.

    Whitespace around entries is ignored; each key is 32 bytes of urlsafe base64 with or
    without ``=`` padding (what :func:`new_key` prints). Errors name the entry's position or
    key id, never the key.
    """
    entries = [part.strip() for part in value.split(",") if part.strip()]
    if not entries:
        raise KeyConfigurationError("no keys configured: expected 'kid:base64,kid:base64'")
    keys: list[tuple[str, bytes]] = []
    for position, entry in enumerate(entries, start=1):
        kid, sep, encoded = entry.partition(":")
        kid, encoded = kid.strip(), encoded.strip()
        if not sep or not kid or not encoded:
            raise KeyConfigurationError(f"key entry {position} is not of the form 'kid:base64'")
        _check_kid(kid)
        try:
            material = _b64decode(encoded)
        except ValueError:
            raise KeyConfigurationError(f"key {kid!r} is not urlsafe base64") from None
        keys.append((kid, material))
    return keys


# --------------------------------------------------------------------------- encryption


@dataclass(frozen=True, slots=True)
class _Sealed:
    kid: str
    nonce: bytes
    ciphertext: bytes


def _split(serialized: str) -> _Sealed:
    parts = serialized.split(":")
    if len(parts) != 4 or parts[0] != FORMAT_VERSION:
        raise MalformedCiphertext("stored value is not in the v1 encrypted format")
    _, kid, nonce_text, ct_text = parts
    if not _KID.fullmatch(kid):
        raise MalformedCiphertext("stored value has a malformed key id")
    try:
        nonce, ciphertext = _b64decode(nonce_text), _b64decode(ct_text)
    except ValueError:
        raise MalformedCiphertext("stored value is not valid base64") from None
    if len(nonce) != NONCE_BYTES or len(ciphertext) < TAG_BYTES:
        raise MalformedCiphertext("stored value has a truncated nonce or ciphertext")
    return _Sealed(kid, nonce, ciphertext)


def kid_of(serialized: str) -> str:
    """The key id a stored value was encrypted under (raises :class:`MalformedCiphertext`)."""
    return _split(serialized).kid


def _aad(kid: str, context: str) -> bytes:
    # Version and kid are bound too, so relabelling a value with another key id or format
    # version fails authentication rather than being tried under a different key.
    return _AAD_PREFIX + f"{FORMAT_VERSION}\x00{kid}\x00{context}".encode()


def _check_context(context: str) -> None:
    if not context:
        raise ValueError("an encryption context (e.g. 'patients.family_name') is required")


class Keyring:
    """Encryption keys by id: the first (newest) encrypts, every one of them decrypts.

    Rotation: put a new key first, keep the old ones listed until ``clarity keys rotate``
    has re-encrypted every value (:meth:`needs_rotation` finds them), then drop the old key.
    """

    __slots__ = ("_ciphers", "_primary")

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        _check_keys(keys, "encryption keyring")
        self._ciphers: dict[str, AESGCM] = {kid: AESGCM(material) for kid, material in keys}
        self._primary = keys[0][0]

    @classmethod
    def from_setting(cls, value: str) -> Keyring:
        """Build from ``CLARITY_ENCRYPTION_KEYS``: ``"kid:base64,kid:base64"``, newest first."""
        return cls(parse_key_list(value))

    @property
    def primary_kid(self) -> str:
        """The key id new values are encrypted under."""
        return self._primary

    @property
    def kids(self) -> tuple[str, ...]:
        """Every key id this keyring can decrypt, newest first."""
        return tuple(self._ciphers)

    def __repr__(self) -> str:  # never the key material
        return f"Keyring(kids={list(self._ciphers)!r})"

    def encrypt(self, plaintext: str, context: str) -> str:
        """Seal ``plaintext`` for ``context`` under the newest key, with a fresh nonce."""
        _check_context(context)
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._primary].encrypt(
            nonce, plaintext.encode("utf-8"), _aad(self._primary, context)
        )
        return f"{FORMAT_VERSION}:{self._primary}:{_b64encode(nonce)}:{_b64encode(sealed)}"

    def decrypt(self, serialized: str, context: str) -> str:
        """Open a stored value; raises :class:`UnknownKeyId` or :class:`DecryptionFailed`."""
        _check_context(context)
        sealed = _split(serialized)
        cipher = self._ciphers.get(sealed.kid)
        if cipher is None:
            raise UnknownKeyId(sealed.kid)
        try:
            plaintext = cipher.decrypt(sealed.nonce, sealed.ciphertext, _aad(sealed.kid, context))
        except InvalidTag:
            raise DecryptionFailed(
                f"value under key id {sealed.kid!r} failed authentication for context "
                f"{context!r}: tampered, copied from another field, or wrong key material"
            ) from None
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptionFailed("decrypted value is not UTF-8 text") from None

    def needs_rotation(self, serialized: str) -> bool:
        """True when the value is under a key other than the newest (including unknown ones)."""
        return _split(serialized).kid != self._primary

    def rotate(self, serialized: str, context: str) -> str:
        """Re-encrypt under the newest key; a value already under it is returned unchanged."""
        if not self.needs_rotation(serialized):
            return serialized
        return self.encrypt(self.decrypt(serialized, context), context)


# --------------------------------------------------------------------------- blind index


def normalize_identifier(value: str) -> str:
    """Identifier normal form for lookup (MRN): Unicode NFKC, trimmed, upper-cased.

    NFKC makes full-width or compatibility digits match their ASCII forms; internal
    punctuation and spaces are kept because clinics' MRN schemes differ on whether they
    are significant.
    """
    return unicodedata.normalize("NFKC", value).strip().upper()


class BlindIndex:
    """Deterministic HMAC-SHA256 tokens for equality lookup on an encrypted column.

    Stored form: ``"<kid>:<urlsafe base64 of the 32-byte MAC>"``. The MAC covers the
    context (so the same MRN gives unrelated tokens in different columns or tenants when
    the caller puts the organization in the context) and the normalized value.

    Why versioned index keys: an index key can never rotate *silently*: every stored token
    would stop matching and lookups would quietly find nothing. Instead each token carries
    its key id; lookups search :meth:`candidates` (one token per configured index key,
    newest first: ``WHERE mrn_index IN (...)``) so old and new tokens both match while
    ``clarity keys rotate`` rewrites rows whose token :meth:`needs_rotation`. Only when no
    row is left under an old index key may that key be removed from the setting. A unique
    constraint on the token column is only exact while a single index key is configured;
    during rotation, check for an existing row via :meth:`candidates` before inserting.

    The index key must be independent of every encryption key (its own setting). The
    token is keyed, so it resists dictionary attacks without the key, but it does reveal
    which rows share a value: index only what must be looked up.
    """

    __slots__ = ("_keys", "_primary")

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        _check_keys(keys, "blind index keyring")
        self._keys: dict[str, bytes] = dict(keys)
        self._primary = keys[0][0]

    @classmethod
    def from_setting(cls, value: str) -> BlindIndex:
        """Build from ``CLARITY_BLIND_INDEX_KEYS``: ``"kid:base64,..."``, newest first."""
        return cls(parse_key_list(value))

    @property
    def primary_kid(self) -> str:
        return self._primary

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def __repr__(self) -> str:  # never the key material
        return f"BlindIndex(kids={list(self._keys)!r})"

    def _token(self, kid: str, value: str, context: str, normalize: Callable[[str], str]) -> str:
        _check_context(context)
        normalized = normalize(value)
        if not normalized:
            raise ValueError("cannot build a blind index of an empty value")
        ctx = context.encode("utf-8")
        message = _INDEX_PREFIX + len(ctx).to_bytes(4, "big") + ctx + normalized.encode("utf-8")
        mac = hmac.new(self._keys[kid], message, hashlib.sha256).digest()
        return f"{kid}:{_b64encode(mac)}"

    def compute(
        self,
        value: str,
        context: str,
        normalize: Callable[[str], str] = normalize_identifier,
    ) -> str:
        """The token to store with a row: under the newest index key."""
        return self._token(self._primary, value, context, normalize)

    def candidates(
        self,
        value: str,
        context: str,
        normalize: Callable[[str], str] = normalize_identifier,
    ) -> list[str]:
        """Every token the value may be stored under (one per index key), for ``IN (...)``."""
        return [self._token(kid, value, context, normalize) for kid in self._keys]

    def needs_rotation(self, token: str) -> bool:
        """True when a stored token was made with an index key other than the newest."""
        kid, sep, _ = token.partition(":")
        if not sep or not _KID.fullmatch(kid):
            raise ValueError("stored blind index token is malformed")
        return kid != self._primary
