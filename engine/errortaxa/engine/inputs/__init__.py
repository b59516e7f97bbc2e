"""Reading input files: predictions, label sets and sample lists, through one registry of formats.

Each format is a module of :mod:`errortaxa.engine.inputs.formats` that registers a reader (see
:mod:`errortaxa.engine.inputs.registry`); :func:`read_predictions`, :func:`read_labels` and
:func:`read_sample_list` detect a file's format from its content and suffix. Every reader raises
an :class:`InputFileError` (:class:`InputError` for a malformed file, :class:`InputNotFound`,
:class:`InputNeedsMore`) with a one-line message that names the file, the record (the 1-based
line number for line-oriented files, the 1-based entry for JSON arrays, the key and row for array
files) and the field, e.g.
``in.jsonl record 17: field 'pred': class id 1000 is outside 0..999``.

Validation images are named ``ILSVRC2012_val_{i+1:08d}.JPEG`` for row ``i`` (file order).
"""

# The formats subpackage first: importing it later (the registry does, on first use) would bind its
# name over the ``formats`` function below.
import errortaxa.engine.inputs.formats  # noqa: F401
from errortaxa.engine.inputs.errors import InputError, InputFileError, InputNeedsMore, InputNotFound
from errortaxa.engine.inputs.labels import LabeledImages
from errortaxa.engine.inputs.predictions import Predictions
from errortaxa.engine.inputs.registry import (
    LABELS,
    PREDICTIONS,
    SAMPLE_LIST,
    Format,
    ReadOptions,
    detect,
    formats,
    read_labels,
    read_predictions,
    read_sample_list,
    recognised,
    suffixes,
)
from errortaxa.engine.inputs.tables import Columns
from errortaxa.engine.inputs.validation import NUM_VALIDATION_IMAGES, validation_image_name, validation_images

__all__ = [
    "LABELS",
    "NUM_VALIDATION_IMAGES",
    "PREDICTIONS",
    "SAMPLE_LIST",
    "Columns",
    "Format",
    "InputError",
    "InputFileError",
    "InputNeedsMore",
    "InputNotFound",
    "LabeledImages",
    "Predictions",
    "ReadOptions",
    "detect",
    "formats",
    "read_labels",
    "read_predictions",
    "read_sample_list",
    "recognised",
    "suffixes",
    "validation_image_name",
    "validation_images",
]
