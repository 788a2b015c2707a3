"""Who is asking, as far as rate limits care: the socket peer, or, only when that peer is a
trusted proxy (``QUARTERS_TRUSTED_PROXIES``), the right-most untrusted X-Forwarded-For hop."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from quarters.errors import InvalidValue

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str) -> tuple[Network, ...]:
    """Comma- or space-separated IPs/CIDRs; ValueError names a bad entry."""
    networks = []
    for item in value.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise InvalidValue(code="settings.trusted_proxies", pointer="trusted_proxies",
                               params={"value": item[:80]}) from None
    return tuple(networks)


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(address, networks: Iterable[Network]) -> bool:  # noqa: ANN001
    return address is not None and any(address in n for n in networks)


def client_address(peer: str | None, forwarded: list[str], trusted: tuple[Network, ...]) -> str:
    """The client's address: ``peer`` unless it is a trusted proxy; then walk X-Forwarded-For
    from the right, skipping trusted hops, and take the first untrusted one. A malformed hop
    ends the walk at the last trusted hop seen (what the proxy itself vouched for)."""
    peer = peer or "unknown"
    current = _address(peer)
    if not _trusted(current, trusted):
        return peer
    hops = [h for header in forwarded for h in header.split(",") if h.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        current = address
        if not _trusted(address, trusted):
            break
    return str(current)


def request_client(request) -> str:  # noqa: ANN001
    """The client address of a request: the socket peer, or X-Forwarded-For behind one of
    ``QUARTERS_TRUSTED_PROXIES``."""
    return client_address(request.client.host if request.client else None,
                          request.headers.getlist("x-forwarded-for"),
                          request.app.state.settings.trusted_networks)
