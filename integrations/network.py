"""Where outbound calls may go: public addresses, unless the practice allows private ones.

A practice document names URLs and hosts that the worker then calls with credentials (the EHR,
the SMS provider, the SMTP relay, Healthie, a webhook sink). Pointed at 169.254.169.254, at
loopback or at the private network, the worker would carry those credentials, or fetch cloud
metadata, for whoever wrote the document. So every connection is checked against the address
it actually goes to, after name resolution and at connect time (a name that resolved to a
public address when the practice was applied may resolve to a private one later: DNS
rebinding). `network.allow_private` lets a practice reach loopback and private ranges (the
local demo, the tests, an EHR on the clinic's own network); link-local addresses (the cloud
metadata service among them), multicast, unspecified and reserved ranges are never reached.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

from integrations.settings import NetworkSettings

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Kinds of address that `network.allow_private` opens; every other special kind stays closed.
OPENED_BY_ALLOW_PRIVATE = frozenset({"loopback", "private"})
# RFC 6052's well-known NAT64 prefix embeds an IPv4 address in the last 32 bits.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class DestinationRefused(Exception):
    """An outbound call to an address the practice's network settings do not allow.

    Deliberately not an OSError (nor a requests exception): neither urllib3 nor the adapters'
    transport handling may take it for a passing outage and retry it. It is permanent until the
    practice document changes. The message names the host and the kind of address, never a
    path or a query.
    """


def address_kind(address: IpAddress) -> str | None:
    """None for a public address; else 'loopback', 'private', 'link-local' or 'reserved'."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address_kind(address.ipv4_mapped)
        if address in _NAT64:
            return address_kind(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"  # 169.254.169.254 (cloud metadata), fe80::/10
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return "reserved"
    if address.is_private or not address.is_global:
        return "private"  # RFC 1918, fc00::/7, 100.64.0.0/10 and the other non-global ranges
    return None


def host_kind(host: str | None) -> str | None:
    """The kind of a host as written (an address literal, or 'localhost'), without resolving
    it: what `practice apply` can say before any call is made. None for other names."""
    name = (host or "").strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return "loopback"  # RFC 6761: always the loopback interface
    try:
        return address_kind(ipaddress.ip_address(name))
    except ValueError:
        return None


def refusal(kind: str | None, network: NetworkSettings) -> str | None:
    """Why an address of this kind may not be reached under these settings, or None."""
    if kind is None or (network.allow_private and kind in OPENED_BY_ALLOW_PRIVATE):
        return None
    if kind in OPENED_BY_ALLOW_PRIVATE:
        return f"a {kind} address (set network.allow_private, with a reason, to allow it)"
    return f"a {kind} address, which is never called"


def checked_addresses(host: str, port: int, network: NetworkSettings) -> list[tuple]:
    """Resolve `host` now and return getaddrinfo's entries, every one of them allowed.

    A name with any refused address is refused as a whole: a public answer mixed with a
    private one is the shape of a rebinding attack, not of a real service.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])  # drop an IPv6 zone id
        why = refusal(address_kind(address), network)
        if why:
            raise DestinationRefused(f"{host} resolves to {why}")
    return infos


def connect_checked(host: str, port: int, timeout: float | None, network: NetworkSettings,
                    source_address: tuple[str, int] | None = None,
                    socket_options: Sequence[tuple] | None = None) -> socket.socket:
    """A TCP connection to `host`, made to an address checked just before connecting (so the
    address checked is the address connected to). Raises DestinationRefused or OSError."""
    last_error: OSError | None = None
    for family, kind, proto, _name, address in checked_addresses(host, port, network):
        sock = socket.socket(family, kind, proto)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            if isinstance(timeout, int | float):  # else a library's "default" sentinel
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(address)
            return sock
        except OSError as error:
            sock.close()
            last_error = error
    raise last_error or OSError(f"no address to connect to for {host}")
