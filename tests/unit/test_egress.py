"""The egress guard against real peers on loopback: SSRF attempts are refused, allowed targets are reached."""

import asyncio
import ssl
from collections.abc import Callable, Sequence

import httpx
import pytest
import pytest_asyncio

from services.executor.egress import EgressBlocked, EgressGuard
from tests.peers.https_server import HttpsPeer, Reply
from tests.peers.tls import make_local_ca

PEER_NAMES = ("public.test", "other.test", "hooks.slack.com", "localhost", "127.0.0.1")


class TcpPeer:
    """A plain TCP server on 127.0.0.1 that counts connections; echoes a line, or answers HTTP with 200."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        line = await reader.readline()
        if line.startswith(b"GET "):
            while (await reader.readline()).strip():
                pass
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nplain")
        else:
            writer.write(b"echo:" + line)
        await writer.drain()
        writer.close()


@pytest.fixture(scope="module")
def egress_ca(tmp_path_factory):
    return make_local_ca(tmp_path_factory.mktemp("egress-ca"))


@pytest.fixture
def egress_trusted(egress_ca, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(egress_ca.ca_bundle))
    return egress_ca


@pytest_asyncio.fixture
async def egress_peer(egress_trusted):
    async with HttpsPeer(egress_trusted, PEER_NAMES) as peer:
        yield peer


@pytest_asyncio.fixture
async def egress_tcp_peer():
    peer = TcpPeer()
    await peer.start()
    yield peer
    await peer.stop()


@pytest_asyncio.fixture
async def egress_guards():
    """Builds guards and closes their connection pools after the test."""
    made: list[EgressGuard] = []

    def make(allow_cidrs=(), host_overrides=None) -> EgressGuard:
        guard = EgressGuard(allow_cidrs, host_overrides)
        made.append(guard)
        return guard

    yield make
    for guard in made:
        await guard.aclose()


def allowed_guard(
    make: Callable[..., EgressGuard], peer: HttpsPeer, *, allow: Sequence[str] = ("127.0.0.1/32",)
) -> EgressGuard:
    """``public.test`` and ``other.test`` lead to the peer, and only 127.0.0.1 is allowed."""
    target = f"127.0.0.1:{peer.port}"
    return make(allow, {"public.test": target, "other.test": target})


# -- the SSRF battery -------------------------------------------------------------------------------

LOOPBACK_URLS = [
    "https://127.0.0.1:{port}/",
    "https://127.0.0.1.:{port}/",
    "https://localhost:{port}/",
    "https://LocalHost:{port}/",
    "https://localhost.:{port}/",
    "https://2130706433:{port}/",
    "https://017700000001:{port}/",
    "https://0x7f000001:{port}/",
    "https://0x7f.0.0.1:{port}/",
    "https://0x7f.1:{port}/",
    "https://127.1:{port}/",
    "https://127.0.1:{port}/",
    "https://0:{port}/",
    "https://0.0.0.0:{port}/",
    "https://[::1]:{port}/",
    "https://[::]:{port}/",
    "https://[::ffff:127.0.0.1]:{port}/",
    "https://[::ffff:7f00:1]:{port}/",
    "https://[0:0:0:0:0:ffff:127.0.0.1]:{port}/",
    "https://[::127.0.0.1]:{port}/",
    "https://[64:ff9b::127.0.0.1]:{port}/",
    "https://[2002:7f00:1::1]:{port}/",
    "https://[fe80::1%25lo]:{port}/",
    "https://hooks.slack.com@127.0.0.1:{port}/",
    "https://user:secret@localhost:{port}/",
    "https://loopback.test:{port}/",
    "https://LOOPBACK.TEST.:{port}/",
]


@pytest.mark.parametrize("url", LOOPBACK_URLS)
async def test_http_client_refuses_every_spelling_of_a_local_address(url, egress_peer, egress_guards):
    guard = egress_guards(host_overrides={"loopback.test": "127.0.0.1"})
    async with guard.http_client(timeout=5) as client:
        with pytest.raises(EgressBlocked, match="refused: it is an? (loopback|unspecified|link-local)"):
            await client.get(url.format(port=egress_peer.port))
    assert egress_peer.requests == []


async def test_a_client_made_outside_an_event_loop_is_guarded_too(egress_peer, egress_guards):
    # Made where no loop runs (here: a worker thread), the client gets a pool of its own: the same
    # guarded connector, opened by the loop of its first request.
    guard = egress_guards(["127.0.0.1/32"], host_overrides={"public.test": "127.0.0.1"})
    client = await asyncio.to_thread(guard.http_client, timeout=5)
    async with client:
        assert (await client.get(f"https://public.test:{egress_peer.port}/")).status_code == 200
        with pytest.raises(EgressBlocked):
            await client.get(f"https://127.0.0.2:{egress_peer.port}/")  # outside the allowance
    assert len(egress_peer.requests) == 1


LOOPBACK_HOSTS = [
    "localhost",
    "LOCALHOST",
    "localhost.",
    "[127.0.0.1]",
    "2130706433",
    "0177.0.0.1",
    "017700000001",
    "0X7F000001",
    "0177.1",
    "127.000.000.001",
    "::1",
    "[::ffff:127.0.0.1]",
    "::ffff:7f00:1",
    "１２７.０.０.１",  # fullwidth digits, folded by IDNA
    "１２７。０。０。１",  # ideographic full stops
    "ⓛⓞⓒⓐⓛⓗⓞⓢⓣ",
    "loopback.test",
]


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
async def test_open_connection_refuses_every_spelling_of_loopback(host, egress_tcp_peer, egress_guards):
    guard = egress_guards(host_overrides={"loopback.test": "127.0.0.1"})
    with pytest.raises(EgressBlocked, match="loopback address"):
        await guard.open_connection(host, egress_tcp_peer.port, timeout=5)
    with pytest.raises(EgressBlocked, match="loopback address"):
        await guard.connect_socket(host, egress_tcp_peer.port, timeout=5)
    assert egress_tcp_peer.connections == 0


BLOCKED_ADDRESSES = [
    ("10.0.0.1", "private address"),
    ("172.16.0.1", "private address"),
    ("172.31.255.254", "private address"),
    ("192.168.1.1", "private address"),
    ("169.254.1.1", "link-local"),
    ("169.254.169.254", "cloud metadata"),
    ("100.100.100.200", "cloud metadata"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("0.1.2.3", "unspecified"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.1", "benchmarking"),
    ("192.0.0.8", "IETF protocol"),
    ("192.0.2.1", "TEST-NET-1"),
    ("198.51.100.7", "TEST-NET-2"),
    ("203.0.113.9", "TEST-NET-3"),
    ("224.0.0.251", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fc00::1", "unique-local"),
    ("fd12:3456:789a::1", "unique-local"),
    ("fd00:ec2::254", "cloud metadata"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("::ffff:10.0.0.1", "private address (RFC 1918): 10.0.0.1, embedded in the IPv6 address as IPv4-mapped"),
    ("::ffff:169.254.169.254", "cloud metadata"),
    ("::192.168.0.1", "IPv4-compatible"),
    ("64:ff9b::a9fe:a9fe", "cloud metadata address (always blocked): 169.254.169.254, embedded"),
    ("64:ff9b::a00:1", "NAT64"),
    ("64:ff9b:1::c0a8:101", "local-use NAT64"),  # /96 layout of 192.168.1.1
    ("64:ff9b:1:a00:0:100::", "local-use NAT64"),  # /48 layout of 10.0.0.1
    ("2002:a9fe:a9fe::1", "6to4"),
    ("2002:c0a8:101::1", "6to4"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo (client)"),  # client 127.0.0.1, obfuscated
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "Teredo (client)"),  # client 10.0.0.1
    ("2001:db8::1", "documentation"),
]


@pytest.mark.parametrize(("address", "reason"), BLOCKED_ADDRESSES)
async def test_non_public_addresses_are_blocked(address, reason, egress_guards):
    guard = egress_guards()
    with pytest.raises(EgressBlocked) as raised:
        guard.check_address(address)
    assert reason in str(raised.value)
    with pytest.raises(EgressBlocked, match="refused"):
        await guard.resolve(address, 443)


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "100.100.100.200", "fd00:ec2::254", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe"],
)
async def test_metadata_addresses_stay_blocked_when_an_allowed_cidr_covers_them(address, egress_guards):
    guard = egress_guards(["0.0.0.0/0", "::/0", "169.254.0.0/16", "100.64.0.0/10", "fd00::/8"])
    with pytest.raises(EgressBlocked, match="cloud metadata"):
        guard.check_address(address)
    with pytest.raises(EgressBlocked, match="cloud metadata"):
        await guard.resolve(address, 80)


async def test_metadata_name_override_is_still_checked(egress_guards):
    guard = egress_guards(["169.254.0.0/16"], {"metadata.google.internal": "169.254.169.254"})
    with pytest.raises(
        EgressBlocked, match="'metadata.google.internal' \\(169.254.169.254\\).*cloud metadata"
    ):
        await guard.resolve("metadata.google.internal", 80)


async def test_public_addresses_pass_and_allowed_cidrs_open_only_their_ranges(egress_guards):
    guard = egress_guards("10.1.0.0/16, fd00:1::/32")
    for public in [
        "8.8.8.8",
        "2606:4700:4700::1111",
        "64:ff9b::808:808",
        "64:ff9b:1::808:808",
        "2002:808:808::1",
        "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo, client 8.8.8.8
        "10.1.2.3",
        "::ffff:10.1.2.3",
        "fd00:1::5",
    ]:
        guard.check_address(public)
    assert await guard.resolve("10.1.2.3", 8443) == ("10.1.2.3", 8443)
    for outside in ["10.2.0.1", "::ffff:10.2.0.1", "fd00:2::5", "127.0.0.1"]:
        with pytest.raises(EgressBlocked):
            guard.check_address(outside)


async def test_an_unresolvable_name_is_refused_with_a_clear_message(egress_guards):
    with pytest.raises(EgressBlocked, match="'no-such-host.invalid' refused: could not resolve the host"):
        await egress_guards().resolve("no-such-host.invalid", 443)


async def test_a_name_is_refused_if_any_of_its_addresses_is_blocked(egress_guards, monkeypatch):
    guard = egress_guards()

    async def mixed_lookup(name, port):
        return ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "10.0.0.7"]

    monkeypatch.setattr(guard, "_lookup", mixed_lookup)
    with pytest.raises(
        EgressBlocked, match=r"'split.example' \(10\.0\.0\.7\) refused: it is a private address"
    ):
        await guard.resolve("split.example", 443)


def test_a_malformed_override_or_cidr_is_a_configuration_error():
    with pytest.raises(ValueError, match="host override"):
        EgressGuard(host_overrides={"a.test": "not-an-ip"})
    with pytest.raises(ValueError, match="does not appear to be"):
        EgressGuard(["10.0.0.0/33"])


# -- redirects --------------------------------------------------------------------------------------


async def test_a_redirect_to_a_private_address_is_refused_and_not_followed(egress_peer, egress_guards):
    egress_peer.reply(
        "GET", "/hop", Reply(302, headers={"Location": f"https://127.0.0.2:{egress_peer.port}/"})
    )
    guard = allowed_guard(egress_guards, egress_peer)
    async with guard.http_client(timeout=5) as client:
        with pytest.raises(EgressBlocked, match=r"127\.0\.0\.2 refused: it is a loopback address"):
            await client.get("https://public.test/hop")
    assert [r.path for r in egress_peer.requests] == ["/hop"]


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("https://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("https://10.0.0.1/admin", "private address"),
        ("https://[::ffff:192.168.0.1]/", "private address"),
        ("https://[fd00::1]/", "unique-local"),
        ("http://public.test/downgrade", "plain HTTP is not permitted"),
    ],
)
async def test_every_redirect_hop_is_checked(location, reason, egress_peer, egress_guards):
    egress_peer.reply("GET", "/hop", Reply(301, headers={"Location": location}))
    guard = allowed_guard(egress_guards, egress_peer)
    async with guard.http_client(timeout=5) as client:
        with pytest.raises(EgressBlocked, match=reason):
            await client.get("https://public.test/hop")
    assert [r.path for r in egress_peer.requests] == ["/hop"]


async def test_a_redirect_between_allowed_hosts_is_followed(egress_peer, egress_guards):
    egress_peer.reply("POST", "/start", Reply(307, headers={"Location": "https://other.test/end"}))
    egress_peer.reply("POST", "/end", Reply(201, {"done": True}))
    guard = allowed_guard(egress_guards, egress_peer)
    async with guard.http_client(timeout=5) as client:
        response = await client.post("https://public.test/start", json={"n": 1})
    assert (response.status_code, response.json()) == (201, {"done": True})
    [end] = egress_peer.requests_to("POST", "/end")
    assert end.headers["host"] == "other.test"
    assert end.json() == {"n": 1}


async def test_redirects_stop_at_max_redirects(egress_peer, egress_guards):
    egress_peer.reply("GET", "/loop", Reply(302, headers={"Location": "/loop"}))
    guard = allowed_guard(egress_guards, egress_peer)
    async with guard.http_client(timeout=5, max_redirects=2) as client:
        with pytest.raises(httpx.TooManyRedirects):
            await client.get("https://public.test/loop")
    assert len(egress_peer.requests_to("GET", "/loop")) == 3


# -- reaching allowed peers -------------------------------------------------------------------------


async def test_an_allowed_peer_is_reached_over_verified_https(egress_peer, egress_guards):
    guard = allowed_guard(egress_guards, egress_peer)
    async with guard.http_client(timeout=5, headers={"User-Agent": "Workflows"}) as client:
        response = await client.get("https://public.test/ping?x=1")
        by_ip = await client.get(f"https://127.0.0.1:{egress_peer.port}/ip")
    assert response.json() == {"ok": True}
    assert by_ip.status_code == 200
    [ping] = egress_peer.requests_to("GET", "/ping")
    assert (ping.query, ping.headers["host"], ping.headers["user-agent"]) == (
        "x=1",
        "public.test",
        "Workflows",
    )


async def test_the_trust_store_comes_from_ssl_cert_file(egress_peer, egress_ca, egress_guards, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE")
    guard = allowed_guard(egress_guards, egress_peer)
    async with guard.http_client(timeout=5) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get("https://public.test/untrusted")
    assert egress_peer.requests == []

    # the same guard picks up a changed SSL_CERT_FILE for its next client
    monkeypatch.setenv("SSL_CERT_FILE", str(egress_ca.ca_bundle))
    async with guard.http_client(timeout=5) as client:
        assert (await client.get("https://public.test/trusted")).status_code == 200


async def test_a_client_made_outside_a_coroutine_still_goes_through_the_guard(egress_peer):
    guard = EgressGuard(["127.0.0.1/32"], {"public.test": f"127.0.0.1:{egress_peer.port}"})
    client = await asyncio.to_thread(guard.http_client, timeout=5)  # no running loop in that thread
    async with client:
        assert (await client.get("https://public.test/sync-made")).status_code == 200
        with pytest.raises(EgressBlocked, match="private address"):
            await client.get("https://10.0.0.1/")


async def test_a_certificate_for_another_hostname_is_rejected(egress_trusted, egress_guards):
    async with HttpsPeer(egress_trusted, ("someone-else.test",)) as impostor:
        guard = allowed_guard(egress_guards, impostor)
        async with guard.http_client(timeout=5) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED.*[Hh]ostname mismatch"):
                await client.get("https://public.test/")
        assert impostor.requests == []


async def test_a_port_override_points_a_provider_host_at_a_local_peer(egress_peer, egress_guards):
    guard = egress_guards(["127.0.0.1/32"], {"hooks.slack.com": f"127.0.0.1:{egress_peer.port}"})
    async with guard.http_client(timeout=5) as client:
        response = await client.post("https://hooks.slack.com/services/T/B/x", json={"text": "hi"})
    assert response.status_code == 200
    assert egress_peer.requests_to("POST", "/services/T/B/x")[0].json() == {"text": "hi"}


async def test_plain_http_is_refused_unless_allowed(egress_tcp_peer, egress_guards):
    guard = egress_guards(["127.0.0.1/32"], {"plain.test": f"127.0.0.1:{egress_tcp_peer.port}"})
    async with guard.http_client(timeout=5) as client:
        with pytest.raises(EgressBlocked, match="http://plain.test refused: plain HTTP is not permitted"):
            await client.get("http://plain.test/secret-path")
    assert egress_tcp_peer.connections == 0
    async with guard.http_client(timeout=5, require_https=False) as client:
        response = await client.get("http://plain.test/")
    assert response.text == "plain"


async def test_each_new_connection_resolves_once_and_uses_the_checked_address(
    egress_peer, egress_guards, monkeypatch
):
    """A DNS-rebinding resolver: first a permitted address, then a forbidden one."""
    answers = [["127.0.0.1"], ["127.0.0.2"]]
    lookups: list[str] = []
    guard = egress_guards(["127.0.0.1/32"])

    async def rebinding_lookup(name, port):
        lookups.append(name)
        return answers[min(len(lookups), len(answers)) - 1]

    monkeypatch.setattr(guard, "_lookup", rebinding_lookup)
    egress_peer.reply("GET", "/", Reply(200, "bye", headers={"Connection": "close"}))
    url = f"https://public.test:{egress_peer.port}/"
    async with guard.http_client(timeout=5) as client:
        first = await client.get(url)
        with pytest.raises(EgressBlocked, match="127.0.0.2"):
            await client.get(url)
    assert first.text == "bye"
    assert lookups == ["public.test", "public.test"]
    assert len(egress_peer.requests) == 1


def counted_lookups(guard: EgressGuard, monkeypatch) -> list[str]:
    """Every name the guard resolves, answered with 127.0.0.1: a new connection means a lookup."""
    lookups: list[str] = []

    async def counting_lookup(name, port):
        lookups.append(name)
        return ["127.0.0.1"]

    monkeypatch.setattr(guard, "_lookup", counting_lookup)
    return lookups


async def test_a_compressed_reply_is_decoded_once(egress_peer, egress_guards):
    # aiohttp carries the bytes as received and httpx decodes Content-Encoding: decoding twice (or
    # never) would hand the action garbage.
    import gzip

    guard = allowed_guard(egress_guards, egress_peer)
    egress_peer.reply(
        "GET", "/gz", Reply(200, gzip.compress(b'{"ok": true}'), headers={"Content-Encoding": "gzip"})
    )
    async with guard.http_client(timeout=5) as client:
        reply = await client.get(f"https://public.test:{egress_peer.port}/gz")
    assert reply.json() == {"ok": True}


async def test_a_slow_reply_is_an_httpx_timeout(egress_peer, egress_guards):
    guard = allowed_guard(egress_guards, egress_peer)
    egress_peer.reply("GET", "/slow", Reply(200, b"late", delay=2.0))
    async with guard.http_client(timeout=0.3) as client:
        with pytest.raises(httpx.TimeoutException):
            await client.get(f"https://public.test:{egress_peer.port}/slow")


async def test_pooled_connections_are_reused_across_clients(egress_peer, egress_guards, monkeypatch):
    guard = egress_guards(["127.0.0.1/32"])
    lookups = counted_lookups(guard, monkeypatch)
    for _ in range(3):
        async with guard.http_client(timeout=5) as client:
            for _ in range(5):
                assert (await client.get(f"https://public.test:{egress_peer.port}/")).status_code == 200
    assert lookups == ["public.test"]
    assert len(egress_peer.requests) == 15


async def test_a_burst_to_one_host_opens_connections_and_then_settles_back_to_one(
    egress_peer, egress_guards, monkeypatch
):
    guard = egress_guards(["127.0.0.1/32"])
    lookups = counted_lookups(guard, monkeypatch)
    egress_peer.reply("GET", "/slow", Reply(200, b"ok", delay=0.2))
    url = f"https://public.test:{egress_peer.port}/slow"
    async with guard.http_client(timeout=10) as client:
        replies = await asyncio.gather(*(client.get(url) for _ in range(40)))
    assert [r.status_code for r in replies] == [200] * 40
    assert len(lookups) == 40  # all at once: a connection each

    # Every connection went back to the pool, so light traffic reuses one: no new lookups.
    lookups.clear()
    async with guard.http_client(timeout=10) as client:
        for _ in range(5):
            assert (await client.get(url)).status_code == 200
    assert lookups == []


# -- raw connections ----------------------------------------------------------------------------------


async def test_open_connection_and_connect_socket_reach_an_allowed_server(egress_tcp_peer, egress_guards):
    guard = egress_guards(["127.0.0.1/32"], {"mail.test": "127.0.0.1"})
    reader, writer = await guard.open_connection("mail.test", egress_tcp_peer.port, timeout=5)
    writer.write(b"hello\n")
    assert await reader.read() == b"echo:hello\n"
    writer.close()

    sock = await guard.connect_socket("mail.test.", egress_tcp_peer.port, timeout=5)
    assert sock.getpeername() == ("127.0.0.1", egress_tcp_peer.port)
    assert not sock.getblocking()
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(b"again\n")
    assert await reader.read() == b"echo:again\n"
    writer.close()
    assert egress_tcp_peer.connections == 2


async def test_open_connection_with_tls_verifies_the_original_hostname(
    egress_peer, egress_trusted, egress_guards
):
    target = f"127.0.0.1:{egress_peer.port}"
    guard = egress_guards(["127.0.0.1/32"], {"public.test": target, "wrong.test": target})
    context = egress_trusted.client_context()
    # the override supplies the port, so the one asked for does not matter
    reader, writer = await guard.open_connection("public.test", 443, ssl=context, timeout=5)
    writer.write(b"GET /raw HTTP/1.1\r\nHost: public.test\r\nConnection: close\r\n\r\n")
    assert (await reader.read()).startswith(b"HTTP/1.1 200")
    writer.close()

    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        await guard.open_connection("wrong.test", 443, ssl=context, timeout=5)
    assert [r.path for r in egress_peer.requests] == ["/raw"]


async def test_a_refused_connection_is_an_os_error_not_a_block(egress_guards):
    guard = egress_guards(["127.0.0.1/32"])
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    with pytest.raises(ConnectionRefusedError):
        await guard.open_connection("127.0.0.1", port, timeout=5)
