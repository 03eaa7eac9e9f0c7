"""Which URLs and addresses the fetcher may reach (QUALITY.md, security case 7).

Only public, unicast addresses, unless the operator allows a network or a host
name with `VEDIKA_FETCH_ALLOW` (intranets). Three rules make the spellings moot:

- a host written as a number is read the way the C resolver reads it: decimal
  (`2130706433`), octal (`0177.0.0.1`), hex (`0x7f.1`), short (`127.1`), with or
  without a trailing dot or percent-encoding;
- an IPv4 address hidden inside IPv6 (mapped `::ffff:a.b.c.d` in any spelling,
  compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) is judged as IPv4;
- names are judged by every address they resolve to, at connect time, by the
  fetcher's network backend (so DNS rebinding meets the same check).

Cloud metadata addresses stay blocked even when an allow-list covers them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)
from urllib.parse import unquote

import httpx

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

MAX_URL_CHARS = 4096

# Cloud instance metadata (AWS/GCP/Azure, AWS IPv6, ECS task metadata, Alibaba).
ALWAYS_BLOCKED: frozenset[IPAddress] = frozenset(
    ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)
_NAT64 = ip_network("64:ff9b::/96")
_NAT64_LOCAL = ip_network("64:ff9b:1::/48")
_PART = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_HOST_ENTRY = re.compile(r"^(\*\.|\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_-]+)*\.?$")


class FetchError(Exception):
    """A URL could not be fetched; the message says why, for a person."""


class Blocked(FetchError):
    """A URL or address the fetcher refuses to reach."""


def parse_host_ip(host: str) -> IPAddress | None:
    """The address a host names when it is written as one, in any spelling; else None."""
    h = unquote(host).strip().lower()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    if ":" in h:
        h = h.split("%", 1)[0]  # an IPv6 zone id (fe80::1%eth0)
        try:
            return IPv6Address(h)
        except ValueError:
            return None
    return _ipv4_any_spelling(h[:-1] if h.endswith(".") else h)


def _ipv4_any_spelling(h: str) -> IPv4Address | None:
    parts = h.split(".")
    if not 1 <= len(parts) <= 4 or not all(_PART.match(p) for p in parts):
        return None
    nums: list[int] = []
    for part in parts:
        if part.startswith("0x"):
            nums.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if any(c not in "01234567" for c in part):
                return None  # not octal: the resolver treats it as a name, so do we
            nums.append(int(part, 8))
        else:
            nums.append(int(part))
    *head, last = nums
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    return IPv4Address(value * 256 ** (4 - len(head)) + last)


def embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if int(ip) >> 32 == 0:  # ::a.b.c.d (deprecated "compatible"), also :: and ::1
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def is_public(ip: IPAddress) -> bool:
    """Globally routable unicast, after unwrapping IPv4 hidden in IPv6."""
    if ip in ALWAYS_BLOCKED:
        return False
    if isinstance(ip, IPv6Address):
        if ip in _NAT64_LOCAL:
            return False
        inner = embedded_ipv4(ip)
        if inner is not None:
            return is_public(inner)
    return bool(ip.is_global) and not ip.is_multicast


def check_allow_entry(entry: str) -> str:
    """Validate one `VEDIKA_FETCH_ALLOW` entry: a CIDR, an address, or a host name
    (`intranet.example`, `*.corp.example`). Returns it normalised."""
    value = entry.strip().lower()
    try:
        return str(ip_network(value, strict=False))
    except ValueError:
        pass
    if _HOST_ENTRY.match(value) and parse_host_ip(value.lstrip("*.")) is None:
        return value.rstrip(".")
    raise ValueError(f"{entry!r} is neither a network (10.0.0.0/8), an address nor a host name")


@dataclass(frozen=True, slots=True)
class NetPolicy:
    """What may be reached: public addresses, plus the operator's allow-list."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: tuple[str, ...] = ()  # exact names, or suffixes written `*.corp.example`

    @classmethod
    def from_entries(cls, entries: list[str]) -> NetPolicy:
        networks: list[IPNetwork] = []
        hosts: list[str] = []
        for entry in entries:
            value = check_allow_entry(entry)
            try:
                networks.append(ip_network(value, strict=False))
            except ValueError:
                hosts.append(value)
        return cls(tuple(networks), tuple(hosts))

    def host_trusted(self, host: str) -> bool:
        """The operator named this host: whatever it resolves to is theirs to allow."""
        name = unquote(host).strip().lower().rstrip(".")
        for entry in self.hosts:
            if entry.startswith("*.") and name.endswith(entry[1:]):
                return True
            if name == entry:
                return True
        return False

    def address_allowed(self, ip: IPAddress, *, trusted_host: bool = False) -> bool:
        inner = embedded_ipv4(ip) if isinstance(ip, IPv6Address) else None
        if ip in ALWAYS_BLOCKED or inner in ALWAYS_BLOCKED:
            return False
        if trusted_host:
            return True
        for net in self.networks:
            if ip in net or (inner is not None and inner in net):
                return True
        return is_public(ip)

    def check_address(self, ip: IPAddress, host: str, *, trusted_host: bool = False) -> None:
        if not self.address_allowed(ip, trusted_host=trusted_host):
            raise Blocked(
                f"{host} is a private, local or reserved address ({ip}); Vedika does not "
                "fetch those (an operator can allow intranet hosts with VEDIKA_FETCH_ALLOW)."
            )

    def check_url(self, url: str | httpx.URL) -> httpx.URL:
        """Refuse what can be refused from the URL alone; the address of a name is
        checked again when the connection is made."""
        if isinstance(url, str) and len(url) > MAX_URL_CHARS:
            raise Blocked("That URL is too long to fetch.")
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url.strip())
        except (httpx.InvalidURL, TypeError, ValueError):
            raise Blocked("That is not a valid URL.") from None
        if parsed.scheme not in ("http", "https"):
            raise Blocked(f"Only http and https URLs can be fetched, not {parsed.scheme or '?'}:.")
        if parsed.userinfo:
            raise Blocked("URLs with a user name or password in them (user@host) are refused.")
        host = parsed.host
        if not host:
            raise Blocked("That URL has no host.")
        trusted = self.host_trusted(host)
        ip = parse_host_ip(host)
        if ip is not None:
            self.check_address(ip, host, trusted_host=trusted)
        elif not trusted:
            name = unquote(host).lower().rstrip(".")
            if name == "localhost" or name.endswith((".localhost", ".internal", ".local")):
                raise Blocked(f"{host} is a local name; Vedika does not fetch local addresses.")
        return parsed
