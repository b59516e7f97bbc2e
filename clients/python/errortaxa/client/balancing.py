"""Calls across replicas with gRPC's own machinery: the channel's target (one address, several, or
a DNS name with several records), the ``round_robin`` load-balancing policy (every call goes to the
next ready replica) and a retry policy for UNAVAILABLE on the idempotent methods only, both in the
channel's service config. gRPC retries a unary call (on another replica when one went away); the
client has no retry loop of its own for them. A ClassifyStream is not retried by gRPC once answers
have arrived: the client's stream feed sends the unanswered batches again on a new stream, pinned
to the version of the stream's first answer (errortaxa.client._core.StreamFeed).

docs/SERVICE.md ("Clients across replicas") gives the same service config for other languages.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Sequence
from typing import Any

from errortaxa.v1 import options_pb2, service_pb2

SERVICE = "errortaxa.v1.ErrorTaxa"
HEALTH = ("grpc.health.v1.Health", "Check")
MAX_ATTEMPTS = 5  # gRPC's limit (larger maxAttempts are clamped to it)



def _declared() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the unary methods the .proto declares idempotent, the streaming methods), from the
    ``(errortaxa.v1.rpc)`` declaration in the descriptor (errortaxa.client.rpcs.Method reads the
    same). Not idempotent: DeleteTaxonomy and RegisterDataset (a retry after a lost answer would
    report NOT_FOUND / ALREADY_EXISTS for a change that was made)."""
    option: Any = options_pb2.rpc
    service = service_pb2.DESCRIPTOR.services_by_name["ErrorTaxa"]
    idempotent, streaming = [], []
    for method in service.methods:
        if method.client_streaming or method.server_streaming:
            streaming.append(method.name)
            continue
        options = method.GetOptions()
        if options.HasExtension(option) and options.Extensions[option].idempotent:
            idempotent.append(method.name)
    return tuple(idempotent), tuple(streaming)


IDEMPOTENT, STREAMING = _declared()  # streams wait for a ready replica; their retries are the stream feed's


def _seconds(value: float) -> str:
    return f"{max(value, 0.001):.3f}s"


def service_config(retries: int, initial_backoff: float, max_backoff: float) -> str:
    """The channel's service config (JSON): round_robin; the idempotent methods retried on
    UNAVAILABLE (``retries`` times, at most MAX_ATTEMPTS - 1, with exponential backoff and jitter
    between ``initial_backoff`` and ``max_backoff``) and waiting for a ready replica (up to their
    deadline) rather than failing while none is; health checks retried but never waiting.
    ``retries`` 0: no retries, no waiting."""
    config: dict[str, object] = {"loadBalancingConfig": [{"round_robin": {}}]}
    if retries <= 0:
        return json.dumps(config)
    policy = {"maxAttempts": min(retries + 1, MAX_ATTEMPTS), "initialBackoff": _seconds(initial_backoff),
              "maxBackoff": _seconds(max(max_backoff, initial_backoff)), "backoffMultiplier": 2,
              "retryableStatusCodes": ["UNAVAILABLE"]}
    config["methodConfig"] = [
        {"name": [{"service": SERVICE, "method": m} for m in IDEMPOTENT], "waitForReady": True,
         "retryPolicy": policy},
        {"name": [{"service": SERVICE, "method": m} for m in STREAMING], "waitForReady": True},
        {"name": [{"service": HEALTH[0], "method": HEALTH[1]}], "retryPolicy": policy},
    ]
    return json.dumps(config)


def channel_target(target: str | Sequence[str]) -> str:
    """The gRPC target of one address (as given: ``host:port``, ``dns:///name:port`` for every
    record of a name, ``unix:...``) or of several ``host:port`` addresses (an ``ipv4:`` or
    ``ipv6:`` list; names among them are resolved once, here)."""
    if isinstance(target, str):
        return target
    addresses = list(target)
    if not addresses:
        raise ValueError("no server address given")
    if len(addresses) == 1:
        return addresses[0]
    resolved: list[tuple[int, str]] = []
    for address in addresses:
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"{address!r}: expected HOST:PORT")
        host = host.strip("[]")
        try:
            ip = ipaddress.ip_address(host)
            resolved.append((ip.version, f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"))
            continue
        except ValueError:
            pass
        for family, _, _, _, sockaddr in socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM):
            version = 6 if family == socket.AF_INET6 else 4
            item = f"[{sockaddr[0]}]:{port}" if version == 6 else f"{sockaddr[0]}:{port}"
            if (version, item) not in resolved:
                resolved.append((version, item))
    versions = {v for v, _ in resolved}
    if len(versions) > 1:  # one scheme per target: keep IPv4 when both are there
        resolved = [(v, a) for v, a in resolved if v == 4]
    version = resolved[0][0]
    return f"ipv{version}:" + ",".join(a for _, a in resolved)
