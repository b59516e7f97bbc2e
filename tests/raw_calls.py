"""Calls with requests the client would not build, straight through the generated stub."""

from __future__ import annotations

from typing import Any

import grpc
from errortaxa.client.errors import from_rpc_error
from errortaxa.v1 import service_pb2_grpc


def raw_call(port: int, method: str, request: Any) -> Any:
    """One call of ``method`` on 127.0.0.1:``port``; its error as the client's exception."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            return getattr(service_pb2_grpc.ErrorTaxaStub(channel), method)(request, timeout=10)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
