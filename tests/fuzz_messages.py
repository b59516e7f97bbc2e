"""Hypothesis strategies for protobuf messages, built from their descriptors (every field, nested
messages to a bounded depth), and the RPCs of errortaxa.v1.ErrorTaxa to fuzz with them."""

from __future__ import annotations

from typing import Any

from errortaxa.v1 import service_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

SERVICE = service_pb2.DESCRIPTOR.services_by_name["ErrorTaxa"]
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

#: Values worth trying more often than chance gives them: class ids at the edges, names of things
#: the server has, sizes that break shapes.
_INTS = st.one_of(st.sampled_from([0, 1, -1, 248, 250, 999, 1000, 2**31 - 1, -(2**31)]),
                  st.integers(-3, 1200))
_STRINGS = st.one_of(
    st.sampled_from(["", "peychev2023", "1.0", "multilabel", "imagenet/peychev2023", "../../etc/passwd",
                     "/etc/passwd", "x" * 5000, "{}", '{"oov": {"fine_grained_oov": true}}', "[" * 3000,
                     "schema: errortaxa/v1\nname: t\nversion: '1'\n", "\x00", "é"]),
    st.text(max_size=40))


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t in (FieldDescriptor.TYPE_BOOL,):
        return st.booleans()
    if t in (FieldDescriptor.TYPE_STRING,):
        return _STRINGS
    if t in (FieldDescriptor.TYPE_BYTES,):
        return st.one_of(st.binary(max_size=64), st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"]))
    if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return st.one_of(st.floats(width=32), st.sampled_from([0.0, 1.0, float("nan"), float("inf")]))
    if t == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([v.number for v in field.enum_type.values] + [99])
    bounds = INT64 if t in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64) \
        else (0, 2**64 - 1) if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64) \
        else (0, 2**32 - 1) if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32) else INT32
    return st.one_of(_INTS.filter(lambda v: bounds[0] <= v <= bounds[1]), st.integers(*bounds))


#: map keys: the providers and input columns the server declares, and others
_KEYS = st.one_of(st.sampled_from(["oov", "echo", "embeddings", "knn_classes", "image_bytes", "votes", "note"]),
                  _STRINGS)


def _is_map(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def messages(descriptor: Descriptor, depth: int = 4) -> st.SearchStrategy[Message]:
    """Messages of ``descriptor``: every field set or not, repeated fields of 0-6 entries, maps of
    0-3 (provider inputs keyed by provider, then column)."""
    cls = _class_of(descriptor)
    parts: dict[str, st.SearchStrategy[Any]] = {}
    maps: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if _is_map(field):
            if depth > 0:
                value = field.message_type.fields_by_name["value"]
                inner = messages(value.message_type, depth - 1) if value.type == FieldDescriptor.TYPE_MESSAGE \
                    else _scalar(value)
                maps[field.name] = st.dictionaries(_KEYS, inner, max_size=3)
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth <= 0:
                continue
            inner = messages(field.message_type, depth - 1)
        else:
            inner = _scalar(field)
        if field.is_repeated:
            parts[field.name] = st.lists(inner, max_size=6)
        else:
            parts[field.name] = st.none() | inner

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        msg = cls()
        for name, strategy in parts.items():
            value = draw(strategy)
            if value is None or value == []:
                continue
            field = descriptor.fields_by_name[name]
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                if field.is_repeated:
                    getattr(msg, name).extend(value)
                elif not (field.containing_oneof and msg.WhichOneof(field.containing_oneof.name)):
                    getattr(msg, name).CopyFrom(value)
            elif field.is_repeated:
                getattr(msg, name).extend(value)
            elif not (field.containing_oneof and msg.WhichOneof(field.containing_oneof.name)):
                setattr(msg, name, value)
        for name, strategy in maps.items():
            target = getattr(msg, name)
            for key, value in draw(strategy).items():
                if isinstance(value, Message):
                    target[key].CopyFrom(value)
                else:
                    target[key] = value
        return msg

    return build()


def _class_of(descriptor: Descriptor) -> type[Message]:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)
