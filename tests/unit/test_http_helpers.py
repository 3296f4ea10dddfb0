"""Pure helpers of the request middleware: route templates, Retry-After, client address."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from clarity.http import client_address, retry_after, route_template


def _route(template: str) -> SimpleNamespace:
    return SimpleNamespace(path=template)


def test_route_template_names_path_parameters() -> None:
    scope: dict[str, Any] = {
        "route": _route("/users/{user_id}"),
        "path": "/api/v1/users/abc",
        "path_params": {"user_id": "abc"},
    }
    assert route_template(scope) == "/api/v1/users/{user_id}"


def test_route_template_names_several_parameters() -> None:
    scope: dict[str, Any] = {
        "route": _route("/orgs/{org_id}/patients/{patient_id}"),
        "path": "/api/v1/orgs/o1/patients/p2",
        "path_params": {"org_id": "o1", "patient_id": "p2"},
    }
    assert route_template(scope) == "/api/v1/orgs/{org_id}/patients/{patient_id}"


def test_route_template_is_positional_not_by_value() -> None:
    # A parameter whose value equals a fixed segment must not rename that segment.
    scope: dict[str, Any] = {
        "route": _route("/users/{user_id}"),
        "path": "/api/v1/users/users",
        "path_params": {"user_id": "users"},
    }
    assert route_template(scope) == "/api/v1/users/{user_id}"


def test_route_template_without_parameters_is_the_path() -> None:
    scope = {"route": _route("/health/live"), "path": "/health/live"}
    assert route_template(scope) == "/health/live"


def test_route_template_without_route_is_unmatched() -> None:
    scope: dict[str, Any] = {"path": "/api/v1/users/abc", "path_params": {"user_id": "abc"}}
    assert route_template(scope) == "unmatched"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.2, "1"), (1.5, "2"), (0, "1"), (-3, "1"), (1.0, "1"), (59.01, "60")],
)
def test_retry_after_rounds_up_to_at_least_one(seconds: float, expected: str) -> None:
    assert retry_after(seconds) == expected


def scope_with(headers: list[tuple[bytes, bytes]], client: Any = ("10.0.0.5", 5555)) -> Any:
    return {"type": "http", "headers": headers, "client": client}


FORWARDED = [(b"x-forwarded-for", b"203.0.113.9, 10.0.0.1")]


def test_client_address_ignores_forwarded_for_when_not_trusted() -> None:
    assert client_address(scope_with(FORWARDED), trust_forwarded_for=False) == "10.0.0.5"


def test_client_address_uses_first_forwarded_hop_when_trusted() -> None:
    assert client_address(scope_with(FORWARDED), trust_forwarded_for=True) == "203.0.113.9"


def test_client_address_falls_back_to_peer_when_trusted_but_absent() -> None:
    assert client_address(scope_with([]), trust_forwarded_for=True) == "10.0.0.5"


def test_client_address_without_client_is_unknown() -> None:
    assert client_address(scope_with([], client=None), trust_forwarded_for=False) == "unknown"
