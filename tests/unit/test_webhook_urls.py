"""Webhook URL rules (what may be registered, what a delivery may reach, what is shown) and
the retry schedule."""

from __future__ import annotations

import ipaddress
import itertools
from datetime import timedelta
from typing import Any

import pytest

from clarity.alerts.delivery import urls
from clarity.alerts.delivery.webhooks import RETRY_SCHEDULE, retry_delay
from clarity.errors import AppError


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/hook",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "example.org/hook",
        "http:///nohost",
        "https://example.org:99999/x",
        "https://example.org:0/x",
        "https://example.org/x#frag",
        "https://example.org/" + "a" * 2000,
    ],
)
def test_refused_urls_are_a_422_that_does_not_echo_them(url: str) -> None:
    with pytest.raises(AppError) as caught:
        urls.parse(url)
    assert caught.value.status == 422
    assert caught.value.code == "invalid_webhook_url"
    assert url not in caught.value.detail


def test_http_and_https_urls_are_accepted() -> None:
    assert urls.parse("https://hooks.example.org/in?token=x").hostname == "hooks.example.org"
    assert urls.parse("HTTP://127.0.0.1:8080/in").port == 8080


def test_display_url_drops_credentials_query_and_fragment() -> None:
    shown = urls.display_url("https://user:pw@hooks.example.org:8443/in/x?token=s3cret#f")
    assert shown == "https://hooks.example.org:8443/in/x"
    assert urls.display_url("http://[::1]:9000/a?b=c") == "http://[::1]:9000/a"


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),  # cloud metadata
        ("100.64.0.1", True),  # carrier-grade NAT
        ("0.0.0.0", True),  # noqa: S104 - a test value
        ("224.0.0.1", True),
        ("::1", True),
        ("fd00::1", True),
        ("fe80::1", True),
        ("::ffff:127.0.0.1", True),
        ("93.184.215.14", False),
        ("2606:4700:4700::1111", False),
    ],
)
def test_private_loopback_and_link_local_addresses_are_blocked(address: str, blocked: bool) -> None:
    assert urls.is_blocked(ipaddress.ip_address(address)) is blocked


async def test_check_reachable_refuses_loopback_literals_and_unresolvable_hosts() -> None:
    with pytest.raises(urls.BlockedAddress):
        await urls.check_reachable("http://127.0.0.1:8080/in")
    with pytest.raises(urls.BlockedAddress):
        await urls.check_reachable("http://localhost:8080/in")
    with pytest.raises(urls.BlockedAddress):
        await urls.check_reachable("https://no-such-host.invalid/in")  # RFC 2606: never resolves
    await urls.check_reachable("https://93.184.215.14/in")  # a public literal: no DNS needed


def test_retry_delays_follow_the_schedule_with_bounded_jitter() -> None:
    lowest = [retry_delay(n, lambda: 0.0) for n in range(1, 9)]
    highest = [retry_delay(n, lambda: 1.0) for n in range(1, 9)]
    middle = [retry_delay(n, lambda: 0.5) for n in range(1, 9)]
    schedule = [*RETRY_SCHEDULE, RETRY_SCHEDULE[-1], RETRY_SCHEDULE[-1]]
    assert middle == [timedelta(seconds=s) for s in schedule]
    assert lowest == [timedelta(seconds=s * 0.8) for s in schedule]
    assert highest == [timedelta(seconds=s * 1.2) for s in schedule]
    assert all(a < b for a, b in itertools.pairwise(middle[:6]))
    real = retry_delay(1)
    assert timedelta(seconds=8) <= real <= timedelta(seconds=12)


async def test_pin_replaces_the_host_by_the_checked_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = {
        "receiver.example": ["93.184.215.14"],
        "v6.example": ["2606:4700:4700::1111"],
    }

    async def resolve(host: str, port: int) -> list[Any]:
        return [ipaddress.ip_address(a) for a in answers[host]]

    monkeypatch.setattr(urls, "resolve", resolve)
    pinned = await urls.pin("https://receiver.example/hooks/in?token=t")
    assert pinned == urls.Pinned(
        "https://93.184.215.14/hooks/in?token=t", "receiver.example", "receiver.example"
    )
    pinned = await urls.pin("http://user:pw@v6.example:8080/in")
    assert pinned.url == "http://user:pw@[2606:4700:4700::1111]:8080/in"
    assert pinned.host_header == "v6.example:8080"
    answers["receiver.example"] = ["93.184.215.14", "10.0.0.7"]  # one private answer
    with pytest.raises(urls.BlockedAddress):
        await urls.pin("https://receiver.example/in")
