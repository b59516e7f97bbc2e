"""API tokens: read tokens and admin tokens, sent as ``authorization: Bearer <token>`` metadata,
checked against the level a method declares (declarations.py).

With no token configured every declared method is open (a server for 127.0.0.1: tokens travel in
clear text without TLS anyway); undeclared methods are refused before the tokens are looked at."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass

import grpc
from errortaxa.server.declarations import ADMIN, PUBLIC, READ

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Denied:
    code: grpc.StatusCode
    message: str


@dataclass(frozen=True)
class Identity:
    name: str
    role: str


class Tokens:
    """Checks a call's token against the configured ones (constant-time comparisons)."""

    def __init__(self, read: dict[str, str], admin: dict[str, str], *, public_health: bool = False) -> None:
        self._tokens = [(token.encode(), Identity(name, READ)) for name, token in read.items()]
        self._tokens += [(token.encode(), Identity(name, ADMIN)) for name, token in admin.items()]
        self.enabled = bool(self._tokens)
        self.public_health = public_health

    def _lookup(self, token: str) -> Identity | None:
        given = token.encode()
        found = None
        for secret, identity in self._tokens:  # no early exit: time does not depend on which matched
            if hmac.compare_digest(secret, given):
                found = identity
        return found

    def check(self, level: str, method: str, metadata: Iterable[tuple[str, str | bytes]] | None
              ) -> Identity | Denied:
        """The caller's identity, or why the call of ``method`` (declared at ``level``: public,
        read or admin) is refused."""
        if not self.enabled or (self.public_health and level == PUBLIC):
            return Identity(ANONYMOUS, ADMIN if not self.enabled else READ)
        values = [value for key, value in metadata or () if key == "authorization"]
        if len(values) > 1:
            return Denied(grpc.StatusCode.UNAUTHENTICATED, "send one 'authorization' entry, not several")
        token = None
        if values:
            text = values[0].decode(errors="replace") if isinstance(values[0], bytes) else values[0]
            scheme, _, rest = text.strip().partition(" ")
            if scheme.lower() != "bearer" or not rest.strip():
                return Denied(grpc.StatusCode.UNAUTHENTICATED, "the 'authorization' entry must read 'Bearer <token>'")
            token = rest.strip()
        if not token:
            return Denied(grpc.StatusCode.UNAUTHENTICATED,
                          "this server needs a token: send metadata 'authorization: Bearer <token>'")
        identity = self._lookup(token)
        if identity is None:
            return Denied(grpc.StatusCode.UNAUTHENTICATED, "unknown token")
        if level == ADMIN and identity.role != ADMIN:
            return Denied(grpc.StatusCode.PERMISSION_DENIED,
                          f"{method.rsplit('/', 1)[-1]} needs an admin token; '{identity.name}' is a read token")
        return identity
