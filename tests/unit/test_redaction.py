"""PHI redaction in log lines: patterns in free text and known PHI keys anywhere."""

from __future__ import annotations

from typing import Any

import pytest

from clarity.logging import REDACTED, redact_phi, redact_text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("contact jane.doe+tag@example.org today", "jane.doe+tag@example.org"),
        ("ssn 123-45-6789 on file", "123-45-6789"),
        ("call +1 (555) 123-4567 now", "+1 (555) 123-4567"),
        ("call 555-123-4567 now", "555-123-4567"),
        ("born 1984-03-02, admitted", "1984-03-02"),
        ("born 03/02/1984 in Ohio", "03/02/1984"),
    ],
)
def test_phi_patterns_are_masked(text: str, secret: str) -> None:
    redacted = redact_text(text)
    assert secret not in redacted
    assert redacted == text.replace(secret, REDACTED)


@pytest.mark.parametrize(
    "text",
    [
        "user logged in after 3 attempts",
        "request 9f1c2e4a-7b3d-4c5e-8f6a-0b1c2d3e4f5a finished",
        "org 12345678-1234-4234-8234-123456789012 created",  # all-digit UUID groups
        "nil 00000000-0000-0000-0000-000000000000",
        "at 2026-11-25T17:00:00Z",
        "at 2026-11-25T17:00:00.123456+00:00",
        "duration_ms 12.5 status 200",
    ],
)
def test_ordinary_text_uuids_and_timestamps_are_kept(text: str) -> None:
    assert redact_text(text) == text


def run_processor(event: dict[str, Any]) -> dict[str, Any]:
    return dict(redact_phi(None, "info", event))


@pytest.mark.parametrize(
    "key",
    ["email", "password", "name", "date_of_birth", "token", "refresh_token", "Authorization"],
)
def test_known_phi_keys_are_masked(key: str) -> None:
    out = run_processor({"event": "user.updated", key: "anything at all", "status": 200})
    assert out == {"event": "user.updated", key: REDACTED, "status": 200}


def test_nested_dicts_and_lists_are_masked() -> None:
    out = run_processor(
        {
            "event": "patient.imported",
            "patient": {"name": "Jane Doe", "mrn": "A-1", "id": "p-1", "meta": {"dob": 1984}},
            "contacts": [{"phone": "anything"}, "mail bob@example.com"],
            "emails": ["a@example.org", "ok"],
        }
    )
    assert out["patient"] == {
        "name": REDACTED,
        "mrn": REDACTED,
        "id": "p-1",
        "meta": {"dob": REDACTED},
    }
    assert out["contacts"] == [{"phone": REDACTED}, f"mail {REDACTED}"]
    assert out["emails"] == [REDACTED, "ok"]


def test_event_message_itself_is_scanned() -> None:
    out = run_processor({"event": "login failed for bob@example.com", "count": 3})
    assert out == {"event": f"login failed for {REDACTED}", "count": 3}


def test_a_list_under_a_phi_key_is_masked_whole() -> None:
    out = run_processor({"email": ["a@example.org", "b@example.org"]})
    assert out == {"email": REDACTED}
