"""The Python client balancing over the records of one DNS name: a real DNS server on 127.0.0.1
(tests/dns_server.py) gives the name an IPv4 and an IPv6 loopback record, one replica listens on
each, and `Client("dns://DNS/NAME:PORT")` spreads its calls over both."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from dns_server import AAAA, DnsServer
from errortaxa.client import Client
from errortaxa.server import RunningServer
from test_service import small_batch, start

NAME = "replicas.errortaxa.test"


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture()
def replicas() -> Iterator[list[RunningServer]]:
    """Two replicas on one port number: 127.0.0.1 and ::1."""
    if not _ipv6_loopback():
        pytest.skip("no IPv6 loopback (::1) to put the second replica on")
    first = start()
    try:
        second = start(host="::1", port=first.port)
    except Exception:
        first.stop(0)
        raise
    yield [first, second]
    first.stop(0)
    second.stop(0)


def test_a_client_balances_over_the_records_of_a_dns_name(replicas: list[RunningServer]) -> None:
    port = replicas[0].port
    dns = DnsServer({NAME: ["127.0.0.1", "::1"]})
    try:
        with Client(f"dns://127.0.0.1:{dns.port}/{NAME}:{port}", timeout=30) as client:
            for _ in range(20):
                assert client.classify(**small_batch()).version == "1.0"
        assert dns.queries[(NAME, AAAA)] >= 1  # the name was resolved by this server, not /etc/hosts
        calls = [s.metrics.samples["Classify"] for s in replicas]
        assert all(c >= 5 for c in calls), calls  # round robin: each record took its share
    finally:
        dns.close()
