"""gRPC server reflection under both names clients use: grpc.reflection.v1 and grpc.reflection.v1alpha.

grpcio-reflection ships only v1alpha. The two protocols have the same messages, field for field,
under another package name, so one servicer on the v1alpha message classes answers both: v1 is
one more handler whose bytes decode as the v1alpha messages. The v1 file's descriptor (the v1alpha
one re-packaged) is served too, so ``grpc.reflection.v1.ServerReflection`` is describable.

Symbols resolve as grpcurl asks for them: services, messages, enums, fields and also methods
(``errortaxa.v1.ErrorTaxa.Classify``), which the protobuf pool does not index.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import Descriptor, FileDescriptor
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

V1ALPHA = "grpc.reflection.v1alpha.ServerReflection"
V1 = "grpc.reflection.v1.ServerReflection"
V1_FILE = "grpc/reflection/v1/reflection.proto"
SERVICES = (V1, V1ALPHA)


def v1_file() -> descriptor_pb2.FileDescriptorProto:
    """grpc/reflection/v1/reflection.proto: the v1alpha file under the v1 package (as grpc-proto has it)."""
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    old, new = f".{proto.package}.", ".grpc.reflection.v1."
    proto.name, proto.package = V1_FILE, "grpc.reflection.v1"
    for message in proto.message_type:
        for fld in message.field:
            if fld.type_name.startswith(old):
                fld.type_name = new + fld.type_name[len(old):]
    for method in proto.service[0].method:
        method.input_type = new + method.input_type[len(old):]
        method.output_type = new + method.output_type[len(old):]
    proto.options.Clear()
    proto.options.java_package = "io.grpc.reflection.v1"
    proto.options.java_outer_classname = "ServerReflectionProto"
    proto.options.java_multiple_files = True
    proto.options.go_package = "google.golang.org/grpc/reflection/grpc_reflection_v1"
    return proto


def _v1_pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(v1_file())
    return pool


class Descriptors:
    """Look-ups over the generated code's pool, then the v1 reflection file."""

    def __init__(self, pools: Sequence[descriptor_pool.DescriptorPool]) -> None:
        self.pools = pools

    def _first(self, lookup: str, name: object) -> object:
        for pool in self.pools:
            try:
                return getattr(pool, lookup)(name)
            except KeyError:
                continue
        raise KeyError(name)

    def file_by_name(self, name: str) -> FileDescriptor:
        return self._first("FindFileByName", name)  # type: ignore[return-value]

    def file_containing_symbol(self, symbol: str) -> FileDescriptor:
        try:
            return self._first("FindFileContainingSymbol", symbol)  # type: ignore[return-value]
        except KeyError:
            parent, _, member = symbol.rpartition(".")
            service = self._first("FindServiceByName", parent)  # a method: Service.Method
            if member not in service.methods_by_name:  # type: ignore[attr-defined]
                raise KeyError(symbol) from None
            return service.file  # type: ignore[attr-defined]

    def _message(self, name: str) -> Descriptor:
        return self._first("FindMessageTypeByName", name)  # type: ignore[return-value]

    def extension(self, containing_type: str, number: int) -> FileDescriptor:
        message = self._message(containing_type)
        return message.file.pool.FindExtensionByNumber(message, number).file  # type: ignore[attr-defined]

    def extension_numbers(self, containing_type: str) -> list[int]:
        message = self._message(containing_type)
        return sorted(ext.number for ext in message.file.pool.FindAllExtensions(message))


def _with_dependencies(file: FileDescriptor) -> list[bytes]:
    """The file and every file it imports, transitively, each once, as serialized FileDescriptorProtos."""
    seen: dict[str, FileDescriptor] = {}
    todo = [file]
    while todo:
        current = todo.pop()
        if current.name in seen:
            continue
        seen[current.name] = current
        todo.extend(current.dependencies)
    out = []
    for descriptor in seen.values():
        proto = descriptor_pb2.FileDescriptorProto()
        descriptor.CopyToProto(proto)
        out.append(proto.SerializeToString())
    return out


class ReflectionServicer(reflection_pb2_grpc.ServerReflectionServicer):
    """ServerReflectionInfo on the v1alpha messages (the v1 ones are the same on the wire)."""

    def __init__(self, service_names: Iterable[str], descriptors: Descriptors) -> None:
        self.service_names = tuple(sorted(set(service_names)))
        self.descriptors = descriptors

    def ServerReflectionInfo(self, request_iterator: Iterator[reflection_pb2.ServerReflectionRequest],
                             context: grpc.ServicerContext) -> Iterator[reflection_pb2.ServerReflectionResponse]:
        for request in request_iterator:
            yield self.answer(request)

    def answer(self, request: reflection_pb2.ServerReflectionRequest) -> reflection_pb2.ServerReflectionResponse:
        kind = request.WhichOneof("message_request")
        found = self.descriptors
        try:
            if kind == "file_by_filename":
                return _files(request, found.file_by_name(request.file_by_filename))
            if kind == "file_containing_symbol":
                return _files(request, found.file_containing_symbol(request.file_containing_symbol))
            if kind == "file_containing_extension":
                ext = request.file_containing_extension
                return _files(request, found.extension(ext.containing_type, ext.extension_number))
            if kind == "all_extension_numbers_of_type":
                name = request.all_extension_numbers_of_type
                return reflection_pb2.ServerReflectionResponse(
                    original_request=request,
                    all_extension_numbers_response=reflection_pb2.ExtensionNumberResponse(
                        base_type_name=name, extension_number=found.extension_numbers(name)))
            if kind == "list_services":
                return reflection_pb2.ServerReflectionResponse(
                    original_request=request,
                    list_services_response=reflection_pb2.ListServiceResponse(
                        service=[reflection_pb2.ServiceResponse(name=name) for name in self.service_names]))
        except KeyError:
            return _error(request, grpc.StatusCode.NOT_FOUND, f"not found: {getattr(request, kind or '')}")
        return _error(request, grpc.StatusCode.INVALID_ARGUMENT, "the request names no question")


def _files(request: reflection_pb2.ServerReflectionRequest, file: FileDescriptor
           ) -> reflection_pb2.ServerReflectionResponse:
    return reflection_pb2.ServerReflectionResponse(
        original_request=request,
        file_descriptor_response=reflection_pb2.FileDescriptorResponse(file_descriptor_proto=_with_dependencies(file)))


def _error(request: reflection_pb2.ServerReflectionRequest, code: grpc.StatusCode, message: str
           ) -> reflection_pb2.ServerReflectionResponse:
    return reflection_pb2.ServerReflectionResponse(
        original_request=request,
        error_response=reflection_pb2.ErrorResponse(error_code=code.value[0], error_message=message[:1024]))


def enable_reflection(server: grpc.Server, service_names: Iterable[str]) -> None:
    """Serve reflection v1 and v1alpha on ``server``, listing ``service_names`` and both reflection services."""
    servicer = ReflectionServicer((*service_names, *SERVICES),
                                  Descriptors((descriptor_pool.Default(), _v1_pool())))
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.method_handlers_generic_handler(V1, {"ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)})
    server.add_generic_rpc_handlers((v1,))
