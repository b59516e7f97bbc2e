from google.protobuf import any_pb2 as _any_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from errortaxa.v1 import options_pb2 as _options_pb2
from errortaxa.v1 import samples_pb2 as _samples_pb2
from errortaxa.v1 import taxonomy_pb2 as _taxonomy_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RuleOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RULE_OUTCOME_UNSPECIFIED: _ClassVar[RuleOutcome]
    RULE_OUTCOME_HELD: _ClassVar[RuleOutcome]
    RULE_OUTCOME_FAILED: _ClassVar[RuleOutcome]
    RULE_OUTCOME_NOT_EVALUATED: _ClassVar[RuleOutcome]
    RULE_OUTCOME_SKIPPED: _ClassVar[RuleOutcome]
RULE_OUTCOME_UNSPECIFIED: RuleOutcome
RULE_OUTCOME_HELD: RuleOutcome
RULE_OUTCOME_FAILED: RuleOutcome
RULE_OUTCOME_NOT_EVALUATED: RuleOutcome
RULE_OUTCOME_SKIPPED: RuleOutcome

class ResultOptions(_message.Message):
    __slots__ = ("evidence", "records", "summary", "structured")
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    STRUCTURED_FIELD_NUMBER: _ClassVar[int]
    evidence: bool
    records: bool
    summary: bool
    structured: bool
    def __init__(self, evidence: bool = ..., records: bool = ..., summary: bool = ..., structured: bool = ...) -> None: ...

class ClassifyRequest(_message.Message):
    __slots__ = ("taxonomy", "samples", "dataset", "options", "sequence")
    TAXONOMY_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    taxonomy: _taxonomy_pb2.TaxonomyRef
    samples: _samples_pb2.SampleColumns
    dataset: _samples_pb2.DatasetPredictions
    options: ResultOptions
    sequence: int
    def __init__(self, taxonomy: _Optional[_Union[_taxonomy_pb2.TaxonomyRef, _Mapping]] = ..., samples: _Optional[_Union[_samples_pb2.SampleColumns, _Mapping]] = ..., dataset: _Optional[_Union[_samples_pb2.DatasetPredictions, _Mapping]] = ..., options: _Optional[_Union[ResultOptions, _Mapping]] = ..., sequence: _Optional[int] = ...) -> None: ...

class AxisDecisions(_message.Message):
    __slots__ = ("axis", "values", "rules", "value", "rule", "witness", "not_evaluated")
    AXIS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    WITNESS_FIELD_NUMBER: _ClassVar[int]
    NOT_EVALUATED_FIELD_NUMBER: _ClassVar[int]
    axis: str
    values: _containers.RepeatedScalarFieldContainer[str]
    rules: _containers.RepeatedScalarFieldContainer[str]
    value: _containers.RepeatedScalarFieldContainer[int]
    rule: _containers.RepeatedScalarFieldContainer[int]
    witness: _containers.RepeatedScalarFieldContainer[int]
    not_evaluated: bytes
    def __init__(self, axis: _Optional[str] = ..., values: _Optional[_Iterable[str]] = ..., rules: _Optional[_Iterable[str]] = ..., value: _Optional[_Iterable[int]] = ..., rule: _Optional[_Iterable[int]] = ..., witness: _Optional[_Iterable[int]] = ..., not_evaluated: _Optional[bytes] = ...) -> None: ...

class ClassifyResponse(_message.Message):
    __slots__ = ("taxonomy", "axes", "evidence_json", "record_json", "summary", "sequence", "count", "rows", "evidence", "records")
    TAXONOMY_FIELD_NUMBER: _ClassVar[int]
    AXES_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_JSON_FIELD_NUMBER: _ClassVar[int]
    RECORD_JSON_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    taxonomy: _taxonomy_pb2.TaxonomyInfo
    axes: _containers.RepeatedCompositeFieldContainer[AxisDecisions]
    evidence_json: _containers.RepeatedScalarFieldContainer[str]
    record_json: _containers.RepeatedScalarFieldContainer[str]
    summary: Summary
    sequence: int
    count: int
    rows: _containers.RepeatedScalarFieldContainer[int]
    evidence: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    records: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    def __init__(self, taxonomy: _Optional[_Union[_taxonomy_pb2.TaxonomyInfo, _Mapping]] = ..., axes: _Optional[_Iterable[_Union[AxisDecisions, _Mapping]]] = ..., evidence_json: _Optional[_Iterable[str]] = ..., record_json: _Optional[_Iterable[str]] = ..., summary: _Optional[_Union[Summary, _Mapping]] = ..., sequence: _Optional[int] = ..., count: _Optional[int] = ..., rows: _Optional[_Iterable[int]] = ..., evidence: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ..., records: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ...) -> None: ...

class Summary(_message.Message):
    __slots__ = ("counts", "samples", "json", "data")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.ScalarMap[str, int]
    samples: int
    json: str
    data: _struct_pb2.Struct
    def __init__(self, counts: _Optional[_Mapping[str, int]] = ..., samples: _Optional[int] = ..., json: _Optional[str] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("taxonomy", "samples", "dataset", "index")
    TAXONOMY_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    taxonomy: _taxonomy_pb2.TaxonomyRef
    samples: _samples_pb2.SampleColumns
    dataset: _samples_pb2.DatasetPredictions
    index: int
    def __init__(self, taxonomy: _Optional[_Union[_taxonomy_pb2.TaxonomyRef, _Mapping]] = ..., samples: _Optional[_Union[_samples_pb2.SampleColumns, _Mapping]] = ..., dataset: _Optional[_Union[_samples_pb2.DatasetPredictions, _Mapping]] = ..., index: _Optional[int] = ...) -> None: ...

class RuleTrace(_message.Message):
    __slots__ = ("axis", "rule", "value", "outcome", "reason", "decided", "json", "data")
    AXIS_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DECIDED_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    axis: str
    rule: str
    value: str
    outcome: RuleOutcome
    reason: str
    decided: bool
    json: str
    data: _struct_pb2.Struct
    def __init__(self, axis: _Optional[str] = ..., rule: _Optional[str] = ..., value: _Optional[str] = ..., outcome: _Optional[_Union[RuleOutcome, str]] = ..., reason: _Optional[str] = ..., decided: bool = ..., json: _Optional[str] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("taxonomy", "traces", "record_json", "record")
    TAXONOMY_FIELD_NUMBER: _ClassVar[int]
    TRACES_FIELD_NUMBER: _ClassVar[int]
    RECORD_JSON_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    taxonomy: _taxonomy_pb2.TaxonomyInfo
    traces: _containers.RepeatedCompositeFieldContainer[RuleTrace]
    record_json: str
    record: _struct_pb2.Struct
    def __init__(self, taxonomy: _Optional[_Union[_taxonomy_pb2.TaxonomyInfo, _Mapping]] = ..., traces: _Optional[_Iterable[_Union[RuleTrace, _Mapping]]] = ..., record_json: _Optional[str] = ..., record: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ListTaxonomiesRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListTaxonomiesResponse(_message.Message):
    __slots__ = ("taxonomies",)
    TAXONOMIES_FIELD_NUMBER: _ClassVar[int]
    taxonomies: _containers.RepeatedCompositeFieldContainer[_taxonomy_pb2.TaxonomyInfo]
    def __init__(self, taxonomies: _Optional[_Iterable[_Union[_taxonomy_pb2.TaxonomyInfo, _Mapping]]] = ...) -> None: ...

class GetTaxonomyRequest(_message.Message):
    __slots__ = ("taxonomy",)
    TAXONOMY_FIELD_NUMBER: _ClassVar[int]
    taxonomy: _taxonomy_pb2.TaxonomyRef
    def __init__(self, taxonomy: _Optional[_Union[_taxonomy_pb2.TaxonomyRef, _Mapping]] = ...) -> None: ...

class GetTaxonomyResponse(_message.Message):
    __slots__ = ("taxonomy", "yaml")
    TAXONOMY_FIELD_NUMBER: _ClassVar[int]
    YAML_FIELD_NUMBER: _ClassVar[int]
    taxonomy: _taxonomy_pb2.TaxonomyInfo
    yaml: str
    def __init__(self, taxonomy: _Optional[_Union[_taxonomy_pb2.TaxonomyInfo, _Mapping]] = ..., yaml: _Optional[str] = ...) -> None: ...

class ValidateTaxonomyRequest(_message.Message):
    __slots__ = ("yaml", "filename")
    YAML_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    yaml: str
    filename: str
    def __init__(self, yaml: _Optional[str] = ..., filename: _Optional[str] = ...) -> None: ...

class ValidateTaxonomyResponse(_message.Message):
    __slots__ = ("ok", "problems", "taxonomy")
    OK_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    TAXONOMY_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    problems: _containers.RepeatedCompositeFieldContainer[_taxonomy_pb2.Problem]
    taxonomy: _taxonomy_pb2.TaxonomyInfo
    def __init__(self, ok: bool = ..., problems: _Optional[_Iterable[_Union[_taxonomy_pb2.Problem, _Mapping]]] = ..., taxonomy: _Optional[_Union[_taxonomy_pb2.TaxonomyInfo, _Mapping]] = ...) -> None: ...

class PutTaxonomyRequest(_message.Message):
    __slots__ = ("yaml", "activate", "filename")
    YAML_FIELD_NUMBER: _ClassVar[int]
    ACTIVATE_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    yaml: str
    activate: bool
    filename: str
    def __init__(self, yaml: _Optional[str] = ..., activate: bool = ..., filename: _Optional[str] = ...) -> None: ...

class PutTaxonomyResponse(_message.Message):
    __slots__ = ("taxonomy", "created", "problems")
    TAXONOMY_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    taxonomy: _taxonomy_pb2.TaxonomyInfo
    created: bool
    problems: _containers.RepeatedCompositeFieldContainer[_taxonomy_pb2.Problem]
    def __init__(self, taxonomy: _Optional[_Union[_taxonomy_pb2.TaxonomyInfo, _Mapping]] = ..., created: bool = ..., problems: _Optional[_Iterable[_Union[_taxonomy_pb2.Problem, _Mapping]]] = ...) -> None: ...

class ActivateTaxonomyRequest(_message.Message):
    __slots__ = ("taxonomy",)
    TAXONOMY_FIELD_NUMBER: _ClassVar[int]
    taxonomy: _taxonomy_pb2.TaxonomyRef
    def __init__(self, taxonomy: _Optional[_Union[_taxonomy_pb2.TaxonomyRef, _Mapping]] = ...) -> None: ...

class ActivateTaxonomyResponse(_message.Message):
    __slots__ = ("taxonomy", "previous")
    TAXONOMY_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    taxonomy: _taxonomy_pb2.TaxonomyInfo
    previous: _taxonomy_pb2.TaxonomyRef
    def __init__(self, taxonomy: _Optional[_Union[_taxonomy_pb2.TaxonomyInfo, _Mapping]] = ..., previous: _Optional[_Union[_taxonomy_pb2.TaxonomyRef, _Mapping]] = ...) -> None: ...

class DeleteTaxonomyRequest(_message.Message):
    __slots__ = ("taxonomy",)
    TAXONOMY_FIELD_NUMBER: _ClassVar[int]
    taxonomy: _taxonomy_pb2.TaxonomyRef
    def __init__(self, taxonomy: _Optional[_Union[_taxonomy_pb2.TaxonomyRef, _Mapping]] = ...) -> None: ...

class DeleteTaxonomyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DatasetInfo(_message.Message):
    __slots__ = ("name", "size", "problematic", "multi_label", "empty", "source", "format", "first_images")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    PROBLEMATIC_FIELD_NUMBER: _ClassVar[int]
    MULTI_LABEL_FIELD_NUMBER: _ClassVar[int]
    EMPTY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    FIRST_IMAGES_FIELD_NUMBER: _ClassVar[int]
    name: str
    size: int
    problematic: int
    multi_label: int
    empty: int
    source: str
    format: str
    first_images: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., size: _Optional[int] = ..., problematic: _Optional[int] = ..., multi_label: _Optional[int] = ..., empty: _Optional[int] = ..., source: _Optional[str] = ..., format: _Optional[str] = ..., first_images: _Optional[_Iterable[str]] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets",)
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[DatasetInfo]
    def __init__(self, datasets: _Optional[_Iterable[_Union[DatasetInfo, _Mapping]]] = ...) -> None: ...

class GetDatasetRequest(_message.Message):
    __slots__ = ("name", "include_images")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_IMAGES_FIELD_NUMBER: _ClassVar[int]
    name: str
    include_images: bool
    def __init__(self, name: _Optional[str] = ..., include_images: bool = ...) -> None: ...

class GetDatasetResponse(_message.Message):
    __slots__ = ("dataset", "images")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    dataset: DatasetInfo
    images: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, dataset: _Optional[_Union[DatasetInfo, _Mapping]] = ..., images: _Optional[_Iterable[str]] = ...) -> None: ...

class RegisterDatasetRequest(_message.Message):
    __slots__ = ("name", "path", "replace")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    name: str
    path: str
    replace: bool
    def __init__(self, name: _Optional[str] = ..., path: _Optional[str] = ..., replace: bool = ...) -> None: ...

class RegisterDatasetResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: DatasetInfo
    def __init__(self, dataset: _Optional[_Union[DatasetInfo, _Mapping]] = ...) -> None: ...

class ListProvidersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListProvidersResponse(_message.Message):
    __slots__ = ("providers",)
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    providers: _containers.RepeatedCompositeFieldContainer[ProviderInfo]
    def __init__(self, providers: _Optional[_Iterable[_Union[ProviderInfo, _Mapping]]] = ...) -> None: ...

class ProviderInfo(_message.Message):
    __slots__ = ("name", "summary", "configured", "tests", "inputs", "schema_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    CONFIGURED_FIELD_NUMBER: _ClassVar[int]
    TESTS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    summary: str
    configured: bool
    tests: _containers.RepeatedCompositeFieldContainer[ProviderTest]
    inputs: _containers.RepeatedCompositeFieldContainer[ProviderInput]
    schema_json: str
    def __init__(self, name: _Optional[str] = ..., summary: _Optional[str] = ..., configured: bool = ..., tests: _Optional[_Iterable[_Union[ProviderTest, _Mapping]]] = ..., inputs: _Optional[_Iterable[_Union[ProviderInput, _Mapping]]] = ..., schema_json: _Optional[str] = ...) -> None: ...

class ProviderTest(_message.Message):
    __slots__ = ("name", "description", "params_schema_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    params_schema_json: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., params_schema_json: _Optional[str] = ...) -> None: ...

class ProviderInput(_message.Message):
    __slots__ = ("name", "dtype", "width", "description", "finite", "class_ids")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    FINITE_FIELD_NUMBER: _ClassVar[int]
    CLASS_IDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: str
    width: int
    description: str
    finite: bool
    class_ids: bool
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[str] = ..., width: _Optional[int] = ..., description: _Optional[str] = ..., finite: bool = ..., class_ids: bool = ...) -> None: ...

class ErrorDetail(_message.Message):
    __slots__ = ("field", "sample_index", "problems", "reason", "row")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_INDEX_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ROW_FIELD_NUMBER: _ClassVar[int]
    field: str
    sample_index: int
    problems: _containers.RepeatedCompositeFieldContainer[_taxonomy_pb2.Problem]
    reason: str
    row: int
    def __init__(self, field: _Optional[str] = ..., sample_index: _Optional[int] = ..., problems: _Optional[_Iterable[_Union[_taxonomy_pb2.Problem, _Mapping]]] = ..., reason: _Optional[str] = ..., row: _Optional[int] = ...) -> None: ...

class Status(_message.Message):
    __slots__ = ("code", "message", "details")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    details: _containers.RepeatedCompositeFieldContainer[_any_pb2.Any]
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., details: _Optional[_Iterable[_Union[_any_pb2.Any, _Mapping]]] = ...) -> None: ...
