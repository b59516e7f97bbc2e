"""Python client for the ErrorTaxa gRPC service (depends on grpcio, protobuf and numpy only).

    from errortaxa.client import Client

    with Client("localhost:50051", token="s3cret") as client:
        result = client.classify(target=[250, 65], labels=[[250, 248], [65]], pred=[248, 66])
        print(result.category, result.taxonomy.ref)

See docs/SERVICE.md for the API.
"""

__version__ = "0.1.0"  # the errortaxa-client distribution's version (its pyproject.toml reads it here)

from errortaxa.client.aio import AsyncClient
from errortaxa.client.client import Client
from errortaxa.client.columns import Samples, dataset_predictions
from errortaxa.client.errors import (
    AlreadyExists,
    DeadlineExceeded,
    ErrorTaxaError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Problem,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from errortaxa.client.results import (
    AxisInfo,
    AxisResult,
    ClassifyResult,
    DatasetInfo,
    Explanation,
    RuleTrace,
    StoredTaxonomy,
    Summary,
    TaxonomyInfo,
    Validation,
)

__all__ = [
    "AlreadyExists",
    "AsyncClient",
    "AxisInfo",
    "AxisResult",
    "ClassifyResult",
    "Client",
    "DatasetInfo",
    "DeadlineExceeded",
    "ErrorTaxaError",
    "Explanation",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "Problem",
    "ResourceExhausted",
    "RuleTrace",
    "Samples",
    "StoredTaxonomy",
    "Summary",
    "TaxonomyInfo",
    "Unauthenticated",
    "Unavailable",
    "Validation",
    "__version__",
    "dataset_predictions",
]
