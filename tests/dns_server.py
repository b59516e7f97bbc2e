"""A small authoritative DNS server on 127.0.0.1 (UDP) for the tests: it answers A and AAAA queries
for the names it is given, NXDOMAIN for any other name, and an empty answer for other types. gRPC
asks it through a ``dns://127.0.0.1:PORT/NAME:PORT`` target (the c-ares resolver's authority), so
a DNS name with several records is tested without touching /etc/hosts."""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
from collections import Counter

A, AAAA = 1, 28


def _read_name(packet: bytes, at: int) -> tuple[str, int]:
    """The question's name (labels, no compression in a query) and the offset after it."""
    labels: list[str] = []
    while packet[at]:
        length = packet[at]
        labels.append(packet[at + 1:at + 1 + length].decode("ascii").lower())
        at += 1 + length
    return ".".join(labels), at + 1


class DnsServer:
    """Serves ``records`` (name -> IP addresses) until closed; ``queries`` counts (name, type)."""

    def __init__(self, records: dict[str, list[str]]) -> None:
        self.records = {name.lower(): [ipaddress.ip_address(a) for a in addrs] for name, addrs in records.items()}
        self.queries: Counter[tuple[str, int]] = Counter()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port: int = self._socket.getsockname()[1]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dns-server", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                packet, sender = self._socket.recvfrom(512)
            except (TimeoutError, OSError):
                continue
            reply = self._answer(packet)
            if reply is not None:
                self._socket.sendto(reply, sender)

    def _answer(self, packet: bytes) -> bytes | None:
        if len(packet) < 12:
            return None
        ident, flags, questions = struct.unpack(">HHH", packet[:6])
        if questions != 1:
            return None
        name, end = _read_name(packet, 12)
        qtype, _qclass = struct.unpack(">HH", packet[end:end + 4])
        question = packet[12:end + 4]
        self.queries[(name, qtype)] += 1
        known = self.records.get(name)
        answers = [ip for ip in known or [] if (ip.version, qtype) in ((4, A), (6, AAAA))]
        rcode = 0 if known is not None else 3  # NXDOMAIN
        header = struct.pack(">HHHHHH", ident, 0x8400 | (flags & 0x0100) | rcode, 1, len(answers), 0, 0)
        records = b"".join(struct.pack(">HHHIH", 0xC00C, qtype, 1, 5, len(ip.packed)) + ip.packed
                           for ip in answers)  # 0xC00C: the question's name; a 5 s TTL
        return header + question + records

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self._socket.close()
