"""The safe fetcher against SSRF (QUALITY.md case 7): every spelling refused, every
redirect hop checked, the resolved address checked at connect time, caps on bytes,
decompression and time.

No test here can reach beyond loopback: the fetchers use a network backend that
connects to loopback only and records every address it was asked for, so a bug in
the guard fails a test instead of sending traffic anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import ip_address
from typing import Any

import httpcore
import pytest

from tests.fakes.search import FakeSearch
from vedika.netpolicy import (
    Blocked,
    FetchError,
    IPAddress,
    NetPolicy,
    check_allow_entry,
    is_public,
    parse_host_ip,
)
from vedika.sources.fetcher import FetchLimits, SafeFetcher


class LoopbackOnly(httpcore.AsyncNetworkBackend):
    """Connects to loopback only; records every address it was asked to reach."""

    def __init__(self) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.attempts: list[str] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.attempts.append(host)
        if not ip_address(host).is_loopback:
            raise httpcore.ConnectError(f"the test network refuses {host}")
        return await self.inner.connect_tcp(host, port, timeout=timeout)

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("no unix sockets in tests")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


NAMES: dict[str, list[str]] = {
    "loopback.test": ["127.0.0.1"],
    "meta.test": ["169.254.169.254"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "mixed.test": ["93.184.216.34", "10.0.0.1"],
    "private6.test": ["fd00::1"],
    "pages.test": ["127.0.0.1"],
}


class Resolver:
    def __init__(self, names: dict[str, list[str]] | None = None) -> None:
        self.names = names or NAMES
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.calls.append(host)
        if host not in self.names:
            raise OSError(f"unknown test name {host}")
        return [ip_address(a) for a in self.names[host]]


def make(
    allow: list[str] | None = None, limits: FetchLimits | None = None, resolver: Any = None
) -> tuple[SafeFetcher, LoopbackOnly]:
    net = LoopbackOnly()
    fetcher = SafeFetcher(
        NetPolicy.from_entries(allow or []),
        limits or FetchLimits(timeout=10),
        resolver=resolver or Resolver(),
        network=net,
    )
    return fetcher, net


# 70 URLs that must never be fetched: loopback, metadata, private and carrier-grade
# ranges in every spelling, IPv4 inside IPv6, user@host tricks, other schemes.
PAYLOADS = [
    "http://127.0.0.1/",
    "http://127.0.0.1:8000/",
    "http://127.1/",
    "http://127.0.1/",
    "http://0177.0.0.1/",
    "http://0x7f.0.0.1/",
    "http://0x7f000001/",
    "http://2130706433/",
    "http://017700000001/",
    "http://0x7f.1/",
    "http://127.000.000.001/",
    "http://127.0.0.1./",
    "http://%31%32%37.0.0.1/",
    "http://127。0。0。1/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://api.localhost/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]/",
    "http://[0000:0000:0000:0000:0000:ffff:7f00:0001]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[::127.0.0.1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:7f00:1::]/",
    "http://[2002:a9fe:a9fe::]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/",
    "http://169.254.43518/",
    "http://[fd00:ec2::254]/",
    "http://169.254.170.2/v2/credentials",
    "http://100.100.100.200/latest/meta-data/",
    "http://10.0.0.1/",
    "http://012.0.0.1/",
    "http://10.255.255.254/",
    "http://172.16.0.1/",
    "http://172.31.255.254/",
    "http://192.168.0.1/",
    "http://192.168.1.1:8080/admin",
    "http://0xc0a80001/",
    "http://3232235521/",
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    "http://0.0.0.0/",
    "http://0/",
    "http://0.0.0.0:22/",
    "http://[::]/",
    "http://[fc00::1]/",
    "http://[fd12:3456:789a::1]/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://198.18.0.1/",
    "http://user@127.0.0.1/",
    "http://user:pass@example.com/",
    "http://example.com@127.0.0.1/",
    "http://127.0.0.1#@example.com/",
    "http://127.0.0.1:80\\@example.com/",
    "https://attacker.example@169.254.169.254/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://example.com/file",
    "dict://127.0.0.1:11211/stats",
    "data:text/html,<script>alert(1)</script>",
    "javascript:alert(1)",
    "ws://127.0.0.1/",
    "//127.0.0.1/",
    "127.0.0.1",
    "http:///etc/passwd",
    # names whose addresses are private (resolved through the test resolver)
    "http://loopback.test/",
    "http://meta.test/latest/meta-data/",
    "http://mapped.test/",
    "http://mixed.test/",
    "http://private6.test/",
]


def test_the_corpus_is_large_enough() -> None:
    assert len(PAYLOADS) >= 40 and len(set(PAYLOADS)) == len(PAYLOADS)


@pytest.mark.parametrize("url", PAYLOADS)
async def test_ssrf_payload_is_refused_without_connecting(url: str) -> None:
    fetcher, net = make()
    try:
        with pytest.raises(Blocked) as err:
            await fetcher.fetch(url)
    finally:
        await fetcher.aclose()
    assert net.attempts == []
    assert err.value.args[0].endswith(".") and "Traceback" not in err.value.args[0]


@pytest.mark.parametrize(
    ("host", "ip"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("[::ffff:7f00:1]", "::ffff:7f00:1"),
        ("fe80::1%eth0", "fe80::1"),
        ("example.com", None),
        ("08.0.0.1", None),
        ("1.2.3.4.5", None),
    ],
)
def test_host_spellings(host: str, ip: str | None) -> None:
    parsed = parse_host_ip(host)
    assert (str(parsed) if parsed else None) == ip


def test_public_addresses_pass_and_hidden_private_ones_do_not() -> None:
    assert is_public(ip_address("93.184.216.34"))
    assert is_public(ip_address("2606:4700::1111"))
    assert is_public(ip_address("::ffff:93.184.216.34"))
    for hidden in ("::ffff:10.0.0.1", "64:ff9b::c0a8:1", "2002:c0a8:1::", "::10.0.0.1"):
        assert not is_public(ip_address(hidden)), hidden


def test_allow_list_entries_are_validated() -> None:
    assert check_allow_entry("10.0.0.0/8") == "10.0.0.0/8"
    assert check_allow_entry("127.0.0.1") == "127.0.0.1/32"
    assert check_allow_entry("*.Corp.Example") == "*.corp.example"
    for bad in ("http://x", "10.0.0.0/33", "a b", ""):
        with pytest.raises(ValueError):
            check_allow_entry(bad)


async def test_loopback_is_blocked_without_the_allow_list(search: FakeSearch) -> None:
    url = f"{search.base_url}/pages/lake-veyra"
    fetcher, net = make()
    with pytest.raises(Blocked):
        await fetcher.fetch(url)
    await fetcher.aclose()
    allowed, net = make(allow=["127.0.0.1/32"])
    page = await allowed.fetch(url)
    await allowed.aclose()
    assert page.status == 200 and "312 metres" in page.text()
    assert net.attempts == ["127.0.0.1"]


async def test_names_are_checked_at_connect_time(search: FakeSearch) -> None:
    """A name is judged by what it resolves to, when connecting: proof that the guard
    sits in the connection path, not only in front of the URL."""
    url = f"http://pages.test:{search.port}/pages/lake-veyra"
    resolver = Resolver()
    fetcher, net = make(resolver=resolver)
    with pytest.raises(Blocked, match="private, local or reserved"):
        await fetcher.fetch(url)
    await fetcher.aclose()
    assert resolver.calls == ["pages.test"] and net.attempts == []
    by_name, net = make(allow=["pages.test"], resolver=Resolver())
    page = await by_name.fetch(url)
    await by_name.aclose()
    assert "Lake Veyra" in page.text() and net.attempts == ["127.0.0.1"]


async def test_allow_listed_names_still_never_reach_metadata() -> None:
    fetcher, net = make(allow=["*.test"], resolver=Resolver())
    with pytest.raises(Blocked):
        await fetcher.fetch("http://meta.test/latest/meta-data/")
    await fetcher.aclose()
    assert net.attempts == []


async def test_dns_rebinding_gets_one_lookup_and_that_address() -> None:
    """The name is resolved once; the connection goes to the address that was checked,
    so a second answer (127.0.0.1) is never used."""

    class Rebinding:
        def __init__(self) -> None:
            self.calls = 0

        async def __call__(self, host: str, port: int) -> list[IPAddress]:
            self.calls += 1
            return [ip_address("93.184.216.34" if self.calls == 1 else "127.0.0.1")]

    rebinding = Rebinding()
    fetcher, net = make(resolver=rebinding)
    with pytest.raises(FetchError):
        await fetcher.fetch("http://rebind.test/")
    await fetcher.aclose()
    assert rebinding.calls == 1 and net.attempts == ["93.184.216.34"]

    class LoopbackFirst(Rebinding):
        async def __call__(self, host: str, port: int) -> list[IPAddress]:
            self.calls += 1
            return [ip_address("127.0.0.1" if self.calls == 1 else "93.184.216.34")]

    fetcher, net = make(resolver=LoopbackFirst())
    with pytest.raises(Blocked):
        await fetcher.fetch("http://rebind.test/")
    await fetcher.aclose()
    assert net.attempts == []


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{port}/pages/lake-veyra",
        "http://[::1]:{port}/pages/lake-veyra",
        "http://localhost:{port}/pages/lake-veyra",
        "http://169.254.169.254/latest/meta-data/",
        "http://0xa9fea9fe/latest/meta-data/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://10.0.0.1/",
        "http://meta.test/",
        "http://user@127.0.0.1:{port}/pages/lake-veyra",
        "file:///etc/passwd",
        "gopher://127.0.0.1:{port}/",
    ],
)
async def test_every_redirect_hop_is_checked(search: FakeSearch, target: str) -> None:
    fetcher, net = make(allow=["127.0.0.1/32"])
    url = f"{search.base_url}/redirect?to={target.format(port=search.port)}"
    with pytest.raises(Blocked):
        await fetcher.fetch(url)
    await fetcher.aclose()
    assert net.attempts == ["127.0.0.1"]  # the first hop only


async def test_redirects_are_followed_up_to_the_limit(search: FakeSearch) -> None:
    fetcher, _net = make(allow=["127.0.0.1/32"], limits=FetchLimits(max_redirects=2))
    page = await fetcher.fetch(f"{search.base_url}/chain/1")  # two redirects
    assert page.url.endswith("/pages/lake-veyra")
    with pytest.raises(FetchError, match="more than 2 times"):
        await fetcher.fetch(f"{search.base_url}/chain/2")
    await fetcher.aclose()


@pytest.mark.parametrize(
    ("slug", "words"),
    [
        ("big", "larger than"),
        ("gzip-bomb", "larger than"),
        ("binary", "not a web page"),
        ("missing", "status 404"),
    ],
)
async def test_caps_and_refusals(search: FakeSearch, slug: str, words: str) -> None:
    fetcher, _net = make(allow=["127.0.0.1/32"], limits=FetchLimits(max_bytes=1_000_000))
    with pytest.raises(FetchError, match=words):
        await fetcher.fetch(f"{search.base_url}/pages/{slug}")
    await fetcher.aclose()


async def test_time_cap(search: FakeSearch) -> None:
    """The page answers after 60 s; the fetch gives up after 1 s (no timing assertion)."""
    fetcher, _net = make(allow=["127.0.0.1/32"], limits=FetchLimits(timeout=1))
    with pytest.raises(FetchError, match="longer than 1 s"):
        await fetcher.fetch(f"{search.base_url}/pages/slow")
    await fetcher.aclose()


async def test_plain_text_pages(search: FakeSearch) -> None:
    fetcher, _net = make(allow=["127.0.0.1/32"])
    page = await fetcher.fetch(f"{search.base_url}/pages/plain")
    await fetcher.aclose()
    assert page.content_type == "text/plain" and "41 metres" in page.text()
