"""Field encryption and blind indexes: sealed values round-trip, and nothing else opens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from clarity.crypto.fields import (
    BlindIndex,
    DecryptionFailed,
    KeyConfigurationError,
    Keyring,
    MalformedCiphertext,
    UnknownKeyId,
    kid_of,
    new_key,
    normalize_identifier,
    parse_key_list,
)

K1 = os.urandom(32)
K2 = os.urandom(32)
I1 = os.urandom(32)
I2 = os.urandom(32)
CTX = "patients.family_name"
SECRET = "Zoë Ångström-Okafor"

old_ring = Keyring([("k1", K1)])
ring = Keyring([("k2", K2), ("k1", K1)])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.parametrize(
    "plaintext",
    [
        "Ada Lovelace",
        "",
        "Zoë Ωμέγα 漢字 🧠 \x00 tab\tnewline\n",
        "Patient reports low mood. " * 4000,  # ~100 kB note
    ],
    ids=["ascii", "empty", "unicode", "long"],
)
def test_round_trip(plaintext: str) -> None:
    sealed = ring.encrypt(plaintext, CTX)
    assert sealed.isascii()
    assert ring.decrypt(sealed, CTX) == plaintext


def test_serialized_form_is_compact_versioned_and_names_the_newest_key() -> None:
    sealed = ring.encrypt(SECRET, CTX)
    version, kid, nonce, ciphertext = sealed.split(":")
    assert (version, kid) == ("v1", "k2")
    assert len(unb64(nonce)) == 12
    assert len(unb64(ciphertext)) == len(SECRET.encode()) + 16  # GCM: no padding, 16-byte tag
    assert "=" not in sealed
    assert SECRET not in sealed
    assert kid_of(sealed) == "k2"


def test_is_standard_aes_256_gcm_with_the_documented_associated_data() -> None:
    """A value sealed by hand with AESGCM opens, so other tools can read the format."""
    nonce = os.urandom(12)
    aad = b"clarity.field.v1\x00k1\x00" + CTX.encode()
    body = AESGCM(K1).encrypt(nonce, SECRET.encode(), aad)
    handmade = f"v1:k1:{b64(nonce).rstrip('=')}:{b64(body).rstrip('=')}"
    assert ring.decrypt(handmade, CTX) == SECRET
    _, _, n, c = ring.encrypt(SECRET, CTX).split(":")
    aad2 = b"clarity.field.v1\x00k2\x00" + CTX.encode()
    assert AESGCM(K2).decrypt(unb64(n), unb64(c), aad2) == SECRET.encode()


def test_two_encryptions_of_the_same_value_differ() -> None:
    first, second = ring.encrypt(SECRET, CTX), ring.encrypt(SECRET, CTX)
    assert first != second
    assert first.split(":")[2] != second.split(":")[2]  # fresh nonce each time
    assert ring.decrypt(first, CTX) == ring.decrypt(second, CTX) == SECRET


def test_value_copied_into_another_column_does_not_decrypt() -> None:
    sealed = ring.encrypt(SECRET, CTX)
    with pytest.raises(DecryptionFailed) as info:
        ring.decrypt(sealed, "patients.given_name")
    assert SECRET not in str(info.value)
    assert sealed not in str(info.value)


def flip(text: str, index: int) -> str:
    """Change one base64 character so that the decoded bytes change."""
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


@pytest.mark.parametrize("part", [2, 3], ids=["nonce", "ciphertext"])
@pytest.mark.parametrize("position", [0, 5, -2])
def test_tampering_is_detected(part: int, position: int) -> None:
    pieces = ring.encrypt(SECRET, CTX).split(":")
    pieces[part] = flip(pieces[part], position % len(pieces[part]))
    with pytest.raises(DecryptionFailed) as info:
        ring.decrypt(":".join(pieces), CTX)
    assert SECRET not in str(info.value)


def test_relabelling_with_another_known_kid_fails() -> None:
    sealed = ring.encrypt(SECRET, CTX)
    with pytest.raises(DecryptionFailed):
        ring.decrypt(sealed.replace(":k2:", ":k1:", 1), CTX)


def test_truncated_tag_is_detected() -> None:
    version, kid, nonce, ciphertext = ring.encrypt(SECRET, CTX).split(":")
    body = unb64(ciphertext)
    shortened = f"{version}:{kid}:{nonce}:{b64(body[:-1]).rstrip('=')}"
    with pytest.raises(DecryptionFailed):
        ring.decrypt(shortened, CTX)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "Ada Lovelace",
        "v2:k1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA",
        "v1:k1:AAAAAAAAAAAAAAAA",
        "v1:k1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA:extra",
        "v1:k 1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA",
        "v1:k1:AAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA",  # 6-byte nonce
        "v1:k1:AAAAAAAAAAAAAAAA:AAAA",  # shorter than a tag
        "v1:k1:AAAAAAA!AAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA",  # not base64
        "v1:k1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAA",  # impossible base64 length
        "v1:k1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAB",  # unused trailing bits set
        "v1:k1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA===",  # over-padded
    ],
)
def test_malformed_values_are_refused(stored: str) -> None:
    with pytest.raises(MalformedCiphertext):
        ring.decrypt(stored, CTX)


def test_unknown_kid_names_the_kid_and_never_the_plaintext() -> None:
    stranger = Keyring([("k9", os.urandom(32))])
    sealed = stranger.encrypt(SECRET, CTX)
    with pytest.raises(UnknownKeyId) as info:
        ring.decrypt(sealed, CTX)
    assert info.value.kid == "k9"
    assert "'k9'" in str(info.value)
    assert SECRET not in str(info.value)
    assert sealed.split(":")[3] not in str(info.value)


def test_empty_context_is_refused() -> None:
    with pytest.raises(ValueError, match="context"):
        ring.encrypt(SECRET, "")
    with pytest.raises(ValueError, match="context"):
        ring.decrypt(ring.encrypt(SECRET, CTX), "")


def test_rotation_old_key_still_decrypts_and_needs_rotation() -> None:
    legacy = old_ring.encrypt(SECRET, CTX)
    assert ring.decrypt(legacy, CTX) == SECRET
    assert ring.needs_rotation(legacy) is True
    assert old_ring.needs_rotation(legacy) is False

    fresh = ring.encrypt(SECRET, CTX)
    assert ring.needs_rotation(fresh) is False

    rotated = ring.rotate(legacy, CTX)
    assert kid_of(rotated) == "k2"
    assert ring.needs_rotation(rotated) is False
    assert ring.rotate(rotated, CTX) == rotated  # already current: untouched

    retired = Keyring([("k2", K2)])  # once every value is rotated, k1 can go
    assert retired.decrypt(rotated, CTX) == SECRET
    with pytest.raises(UnknownKeyId):
        retired.decrypt(legacy, CTX)
    assert retired.needs_rotation(legacy) is True  # unknown kid: still not current


def test_rotation_keeps_the_context_binding() -> None:
    legacy = old_ring.encrypt(SECRET, CTX)
    with pytest.raises(DecryptionFailed):
        ring.rotate(legacy, "patients.mrn")


def test_from_setting_parses_newest_first_with_or_without_padding() -> None:
    setting = f" k2:{b64(K2)} , k1:{b64(K1).rstrip('=')} ,"
    parsed = Keyring.from_setting(setting)
    assert parsed.primary_kid == "k2"
    assert parsed.kids == ("k2", "k1")
    assert parsed.decrypt(ring.encrypt(SECRET, CTX), CTX) == SECRET
    assert parsed.decrypt(old_ring.encrypt(SECRET, CTX), CTX) == SECRET
    assert parse_key_list(setting) == [("k2", K2), ("k1", K1)]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("", "no keys"),
        (" , ", "no keys"),
        (b64(K1), "entry 1"),
        (f"k1:{b64(K1)},:{b64(K2)}", "entry 2"),
        ("k1:", "entry 1"),
        (f"k1:{b64(K1)[:-3]}*", "'k1' is not urlsafe base64"),
        (f"k1:{b64(os.urandom(16))}", "'k1' is not 32 bytes"),
        (f"k1:{b64(os.urandom(48))}", "'k1' is not 32 bytes"),
        (f"k1:{b64(K1)},k1:{b64(K2)}", "'k1' twice"),
        (f"k1:{b64(K1)},k2:{b64(K1)}", "'k2' repeats"),
        (f"key one:{b64(K1)}", "key ids"),
        (f"{'k' * 33}:{b64(K1)}", "key ids"),
    ],
)
def test_bad_settings_are_refused_without_echoing_keys(setting: str, message: str) -> None:
    with pytest.raises(KeyConfigurationError, match=message) as info:
        Keyring.from_setting(setting)
    assert b64(K1)[:20] not in str(info.value)
    assert b64(K2)[:20] not in str(info.value)


def test_repr_shows_key_ids_only() -> None:
    text = repr(ring) + repr(BlindIndex([("i1", I1)]))
    assert "k2" in text
    assert "i1" in text
    for key in (K1, K2, I1):
        assert b64(key)[:12] not in text
        assert key.hex()[:12] not in text


def test_new_key_is_32_random_bytes_usable_in_the_setting() -> None:
    first, second = new_key(), new_key()
    assert first != second
    assert len(base64.urlsafe_b64decode(first)) == 32
    generated = Keyring.from_setting(f"k3:{first},k2:{second}")
    assert generated.decrypt(generated.encrypt(SECRET, CTX), CTX) == SECRET


# --------------------------------------------------------------------------- blind index

MRN_CTX = "patients.mrn"
FULL_WIDTH = "".join(chr(ord(c) + 0xFEE0) for c in "AB-12345")  # compatibility forms
index = BlindIndex([("i1", I1)])


def test_blind_index_is_deterministic_and_keyed_hmac_sha256() -> None:
    token = index.compute("AB-12345", MRN_CTX)
    assert token == index.compute("AB-12345", MRN_CTX)
    kid, mac = token.split(":")
    assert kid == "i1"
    ctx = MRN_CTX.encode()
    message = b"clarity.blind-index.v1\x00" + len(ctx).to_bytes(4, "big") + ctx + b"AB-12345"
    assert unb64(mac) == hmac.new(I1, message, hashlib.sha256).digest()
    assert "AB-12345" not in token


@pytest.mark.parametrize("variant", ["ab-12345", "  AB-12345\t", "\n ab-12345 ", FULL_WIDTH])
def test_blind_index_normalizes(variant: str) -> None:
    assert index.compute(variant, MRN_CTX) == index.compute("AB-12345", MRN_CTX)


def test_normalize_identifier_keeps_inner_characters() -> None:
    assert normalize_identifier("  ab 12-3 ") == "AB 12-3"
    assert index.compute("AB 123", MRN_CTX) != index.compute("AB123", MRN_CTX)


def test_blind_index_differs_by_key_value_and_context() -> None:
    token = index.compute("AB-12345", MRN_CTX)
    same_kid_other_key = BlindIndex([("i1", I2)])
    assert same_kid_other_key.compute("AB-12345", MRN_CTX) != token
    assert index.compute("AB-12346", MRN_CTX) != token
    assert index.compute("AB-12345", "patients.mrn:org-2") != token


def test_blind_index_custom_normalizer_and_empty_value() -> None:
    exact = index.compute("ab", MRN_CTX, normalize=lambda value: value)
    assert exact != index.compute("AB", MRN_CTX, normalize=lambda value: value)
    with pytest.raises(ValueError, match="empty"):
        index.compute("   ", MRN_CTX)


def test_blind_index_rotation_via_versioned_keys() -> None:
    legacy_token = index.compute("AB-12345", MRN_CTX)
    rotated = BlindIndex([("i2", I2), ("i1", I1)])
    candidates = rotated.candidates(" ab-12345 ", MRN_CTX)
    assert candidates[0] == rotated.compute("AB-12345", MRN_CTX)
    assert candidates[0].startswith("i2:")
    assert candidates[1] == legacy_token  # old rows still found during rotation
    assert rotated.needs_rotation(legacy_token) is True
    assert rotated.needs_rotation(candidates[0]) is False
    with pytest.raises(ValueError, match="malformed"):
        rotated.needs_rotation("no-colon-here")


def test_blind_index_parses_its_own_setting() -> None:
    parsed = BlindIndex.from_setting(f"i2:{b64(I2)},i1:{b64(I1)}")
    assert parsed.primary_kid == "i2"
    assert parsed.kids == ("i2", "i1")
    assert parsed.candidates("AB-12345", MRN_CTX)[1] == index.compute("AB-12345", MRN_CTX)
