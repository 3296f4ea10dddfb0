"""Encryption at rest for PHI fields: keyrings, blind indexes and SQLAlchemy column types."""

from clarity.crypto.fields import (
    BlindIndex,
    CryptoError,
    DecryptionFailed,
    KeyConfigurationError,
    Keyring,
    MalformedCiphertext,
    UnknownKeyId,
    new_key,
    normalize_identifier,
)

__all__ = [
    "BlindIndex",
    "CryptoError",
    "DecryptionFailed",
    "KeyConfigurationError",
    "Keyring",
    "MalformedCiphertext",
    "UnknownKeyId",
    "new_key",
    "normalize_identifier",
]
