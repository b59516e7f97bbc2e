from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SampleColumns(_message.Message):
    __slots__ = ("target", "pred", "label_offsets", "label_values", "problematic", "images", "ids", "oov", "providers")
    class ProvidersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ProviderInputs
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ProviderInputs, _Mapping]] = ...) -> None: ...
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PRED_FIELD_NUMBER: _ClassVar[int]
    LABEL_OFFSETS_FIELD_NUMBER: _ClassVar[int]
    LABEL_VALUES_FIELD_NUMBER: _ClassVar[int]
    PROBLEMATIC_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    OOV_FIELD_NUMBER: _ClassVar[int]
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    target: _containers.RepeatedScalarFieldContainer[int]
    pred: _containers.RepeatedScalarFieldContainer[int]
    label_offsets: _containers.RepeatedScalarFieldContainer[int]
    label_values: _containers.RepeatedScalarFieldContainer[int]
    problematic: _containers.RepeatedScalarFieldContainer[bool]
    images: _containers.RepeatedScalarFieldContainer[str]
    ids: _containers.RepeatedScalarFieldContainer[str]
    oov: OovEvidence
    providers: _containers.MessageMap[str, ProviderInputs]
    def __init__(self, target: _Optional[_Iterable[int]] = ..., pred: _Optional[_Iterable[int]] = ..., label_offsets: _Optional[_Iterable[int]] = ..., label_values: _Optional[_Iterable[int]] = ..., problematic: _Optional[_Iterable[bool]] = ..., images: _Optional[_Iterable[str]] = ..., ids: _Optional[_Iterable[str]] = ..., oov: _Optional[_Union[OovEvidence, _Mapping]] = ..., providers: _Optional[_Mapping[str, ProviderInputs]] = ...) -> None: ...

class ProviderInputs(_message.Message):
    __slots__ = ("columns",)
    class ColumnsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: InputColumn
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[InputColumn, _Mapping]] = ...) -> None: ...
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.MessageMap[str, InputColumn]
    def __init__(self, columns: _Optional[_Mapping[str, InputColumn]] = ...) -> None: ...

class InputColumn(_message.Message):
    __slots__ = ("cols", "float32_values", "int32_values", "bytes_values", "string_values")
    COLS_FIELD_NUMBER: _ClassVar[int]
    FLOAT32_VALUES_FIELD_NUMBER: _ClassVar[int]
    INT32_VALUES_FIELD_NUMBER: _ClassVar[int]
    BYTES_VALUES_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUES_FIELD_NUMBER: _ClassVar[int]
    cols: int
    float32_values: _containers.RepeatedScalarFieldContainer[float]
    int32_values: _containers.RepeatedScalarFieldContainer[int]
    bytes_values: _containers.RepeatedScalarFieldContainer[bytes]
    string_values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cols: _Optional[int] = ..., float32_values: _Optional[_Iterable[float]] = ..., int32_values: _Optional[_Iterable[int]] = ..., bytes_values: _Optional[_Iterable[bytes]] = ..., string_values: _Optional[_Iterable[str]] = ...) -> None: ...

class OovEvidence(_message.Message):
    __slots__ = ("evidence_json", "embeddings", "image_bytes", "knn_classes")
    EVIDENCE_JSON_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    KNN_CLASSES_FIELD_NUMBER: _ClassVar[int]
    evidence_json: _containers.RepeatedScalarFieldContainer[str]
    embeddings: FloatMatrix
    image_bytes: _containers.RepeatedScalarFieldContainer[bytes]
    knn_classes: IntMatrix
    def __init__(self, evidence_json: _Optional[_Iterable[str]] = ..., embeddings: _Optional[_Union[FloatMatrix, _Mapping]] = ..., image_bytes: _Optional[_Iterable[bytes]] = ..., knn_classes: _Optional[_Union[IntMatrix, _Mapping]] = ...) -> None: ...

class FloatMatrix(_message.Message):
    __slots__ = ("rows", "cols", "values")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    rows: int
    cols: int
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, rows: _Optional[int] = ..., cols: _Optional[int] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class IntMatrix(_message.Message):
    __slots__ = ("rows", "cols", "values")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    rows: int
    cols: int
    values: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, rows: _Optional[int] = ..., cols: _Optional[int] = ..., values: _Optional[_Iterable[int]] = ...) -> None: ...

class DatasetPredictions(_message.Message):
    __slots__ = ("dataset", "pred", "logits", "images", "offset", "oov", "providers")
    class ProvidersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ProviderInputs
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ProviderInputs, _Mapping]] = ...) -> None: ...
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PRED_FIELD_NUMBER: _ClassVar[int]
    LOGITS_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    OOV_FIELD_NUMBER: _ClassVar[int]
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    pred: _containers.RepeatedScalarFieldContainer[int]
    logits: FloatMatrix
    images: _containers.RepeatedScalarFieldContainer[str]
    offset: int
    oov: OovEvidence
    providers: _containers.MessageMap[str, ProviderInputs]
    def __init__(self, dataset: _Optional[str] = ..., pred: _Optional[_Iterable[int]] = ..., logits: _Optional[_Union[FloatMatrix, _Mapping]] = ..., images: _Optional[_Iterable[str]] = ..., offset: _Optional[int] = ..., oov: _Optional[_Union[OovEvidence, _Mapping]] = ..., providers: _Optional[_Mapping[str, ProviderInputs]] = ...) -> None: ...
