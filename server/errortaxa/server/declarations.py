"""What every method the server answers declares: who may call it, how it is admitted, whether a
client may send it again; everything else is undeclared and refused.

- errortaxa.v1.ErrorTaxa: the ``(errortaxa.v1.rpc)`` option on each method of
  protos/errortaxa/v1/service.proto (options.proto), read here from the generated descriptor.
- Health and reflection, whose protos are not ours to annotate: ``FOREIGN`` below, the one place
  that declares them, every method public and uncounted.

The interceptor looks each call up with :func:`declaration`. A method of no service here, a method
without the option, or one with an UNSPECIFIED level or admission has none: it is refused with
PERMISSION_DENIED whatever the token (and with no tokens configured too). So is a request stream
that is not a bidirectional stream with the stream admission, and a stream admission on a method
that does not stream its requests, and a computing admission on a method that streams its answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from errortaxa.server.reflection import V1, V1ALPHA
from errortaxa.v1 import options_pb2, service_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from grpc_health.v1 import health

PUBLIC, READ, ADMIN = "public", "read", "admin"
UNCOUNTED, COMPUTING, STREAM = "uncounted", "computing", "stream"
_RPC = options_pb2.RpcDeclaration
#: The (errortaxa.v1.rpc) extension (the generated stub types it as a plain FieldDescriptor).
_EXTENSION: Any = options_pb2.rpc
_LEVELS = {_RPC.PUBLIC: PUBLIC, _RPC.READ: READ, _RPC.ADMIN: ADMIN}
_ADMISSIONS = {_RPC.UNCOUNTED: UNCOUNTED, _RPC.COMPUTING: COMPUTING, _RPC.STREAM: STREAM}

#: The service this server implements, as the .proto names it.
SERVICE: ServiceDescriptor = service_pb2.DESCRIPTOR.services_by_name["ErrorTaxa"]
SERVICE_NAME: str = SERVICE.full_name


@dataclass(frozen=True)
class Declaration:
    """One method's declaration: ``authorization`` public / read / admin, ``admission`` uncounted /
    computing / stream, ``idempotent``."""

    authorization: str
    admission: str
    idempotent: bool


def declared(method: MethodDescriptor) -> Declaration | None:
    """The declaration of a method of ours, None when it has no complete and sound one."""
    options = method.GetOptions()
    if not options.HasExtension(_EXTENSION):
        return None
    rpc: options_pb2.RpcDeclaration = options.Extensions[_EXTENSION]
    level, admission = _LEVELS.get(rpc.authorization), _ADMISSIONS.get(rpc.admission)
    if level is None or admission is None:
        return None
    if method.client_streaming and (admission != STREAM or not method.server_streaming):
        return None  # a request stream is admitted as a stream, and answered by one
    if admission == STREAM and not method.client_streaming:
        return None
    if admission == COMPUTING and method.server_streaming:
        return None  # its slot would be given back before the answers are sent
    return Declaration(level, admission, rpc.idempotent)


def service_declarations(service: ServiceDescriptor) -> dict[str, Declaration]:
    """Method path -> declaration of every declared method of ``service``."""
    found = {f"/{service.full_name}/{m.name}": declared(m) for m in service.methods}
    return {path: d for path, d in found.items() if d is not None}


#: Services whose protos are not ours: every method public (see Tokens: no token needed only with
#: public_health) and uncounted (answered on the reserved threads).
FOREIGN: Mapping[str, Declaration] = MappingProxyType({
    name: Declaration(PUBLIC, UNCOUNTED, idempotent=True) for name in (health.SERVICE_NAME, V1, V1ALPHA)})
DECLARATIONS: Mapping[str, Declaration] = MappingProxyType(service_declarations(SERVICE))


def declaration(method: str) -> Declaration | None:
    """The declaration of the method at ``method`` (``/package.Service/Method``); None: undeclared."""
    found = DECLARATIONS.get(method)
    if found is not None:
        return found
    service, _, name = method[1:].rpartition("/")
    return FOREIGN.get(service) if method.startswith("/") and name else None
