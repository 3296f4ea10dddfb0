"""Webhook URLs: what may be registered and where a delivery may connect (SSRF guard).

Only ``http`` and ``https`` URLs with a host are accepted. When private addresses are
blocked (``CLARITY_WEBHOOK_BLOCK_PRIVATE``, on in production unless set), a URL whose host
is, or resolves to, a loopback, private (RFC 1918, RFC 4193), link-local, carrier-grade
NAT, multicast, reserved or unspecified address is refused, at registration and again
before each delivery (DNS may change in between), and the delivery then connects to the
very address that was checked (:func:`pin`), so a second lookup answered differently (DNS
rebinding) cannot send it elsewhere. Redirects are never followed.

Logs and API answers show :func:`display_url`: scheme, host, port and path only, never
the query string or credentials, which receivers often use to carry tokens.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, urlsplit, urlunsplit

from clarity.errors import AppError

MAX_URL_LENGTH: Final = 2000
SCHEMES: Final = frozenset({"http", "https"})
_CGNAT: Final = ipaddress.ip_network("100.64.0.0/10")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedAddress(Exception):
    """The URL's host is or resolves to an address deliveries may not reach."""


def _invalid(detail: str) -> AppError:
    return AppError(422, "invalid_webhook_url", detail)


def parse(url: str) -> SplitResult:
    """The URL split into parts, or a 422 saying what is wrong (the URL is not echoed)."""
    if len(url) > MAX_URL_LENGTH:
        raise _invalid(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises on a malformed port
    except ValueError:
        raise _invalid("The URL is malformed.") from None
    if parts.scheme.lower() not in SCHEMES:
        raise _invalid("The URL must start with http:// or https://.")
    if not parts.hostname:
        raise _invalid("The URL has no host.")
    if port == 0:
        raise _invalid("The URL's port must be between 1 and 65535.")
    if parts.fragment:
        raise _invalid("The URL must not have a fragment (#...).")
    return parts


def display_url(url: str) -> str:
    """The URL without credentials, query string or fragment (safe to log and show)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None else f"{host}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path}"


def is_blocked(address: IPAddress) -> bool:
    """Whether ``address`` is one a webhook may not reach when private addresses are blocked."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT)
    )


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def default_port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme.lower() == "https" else 80)


async def _checked_addresses(parts: SplitResult) -> list[IPAddress]:
    try:
        addresses = await resolve(parts.hostname or "", default_port(parts))
    except OSError:
        raise BlockedAddress("unresolvable") from None
    if not addresses or any(is_blocked(a) for a in addresses):
        raise BlockedAddress("blocked_address")
    return addresses


async def check_reachable(url: str) -> None:
    """Raise :class:`BlockedAddress` when the URL's host is or resolves to a blocked
    address, or does not resolve at all (an unresolvable host is refused too)."""
    await _checked_addresses(urlsplit(url))


@dataclass(frozen=True)
class Pinned:
    """A URL whose host is replaced by a checked address, with what the request must carry
    so that the receiver still sees its own name: the ``Host`` header and, for https, the
    TLS server name (used for SNI and for verifying the certificate)."""

    url: str
    host_header: str
    server_name: str


async def pin(url: str) -> Pinned:
    """Check the URL as :func:`check_reachable` does and pin it to the first address."""
    parts = urlsplit(url)
    address = (await _checked_addresses(parts))[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    userinfo, _, host_port = parts.netloc.rpartition("@")
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    return Pinned(
        url=urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")),
        host_header=host_port,
        server_name=parts.hostname or "",
    )
