from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
RPC_FIELD_NUMBER: _ClassVar[int]
rpc: _descriptor.FieldDescriptor

class RpcDeclaration(_message.Message):
    __slots__ = ("authorization", "admission", "idempotent")
    class Authorization(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        AUTHORIZATION_UNSPECIFIED: _ClassVar[RpcDeclaration.Authorization]
        PUBLIC: _ClassVar[RpcDeclaration.Authorization]
        READ: _ClassVar[RpcDeclaration.Authorization]
        ADMIN: _ClassVar[RpcDeclaration.Authorization]
    AUTHORIZATION_UNSPECIFIED: RpcDeclaration.Authorization
    PUBLIC: RpcDeclaration.Authorization
    READ: RpcDeclaration.Authorization
    ADMIN: RpcDeclaration.Authorization
    class Admission(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ADMISSION_UNSPECIFIED: _ClassVar[RpcDeclaration.Admission]
        UNCOUNTED: _ClassVar[RpcDeclaration.Admission]
        COMPUTING: _ClassVar[RpcDeclaration.Admission]
        STREAM: _ClassVar[RpcDeclaration.Admission]
    ADMISSION_UNSPECIFIED: RpcDeclaration.Admission
    UNCOUNTED: RpcDeclaration.Admission
    COMPUTING: RpcDeclaration.Admission
    STREAM: RpcDeclaration.Admission
    AUTHORIZATION_FIELD_NUMBER: _ClassVar[int]
    ADMISSION_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENT_FIELD_NUMBER: _ClassVar[int]
    authorization: RpcDeclaration.Authorization
    admission: RpcDeclaration.Admission
    idempotent: bool
    def __init__(self, authorization: _Optional[_Union[RpcDeclaration.Authorization, str]] = ..., admission: _Optional[_Union[RpcDeclaration.Admission, str]] = ..., idempotent: bool = ...) -> None: ...
