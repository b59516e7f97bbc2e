"""Readers (errortaxa.engine.inputs) and the co-occurrence table (errortaxa.engine.knowledge.cooccurrence)."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from errortaxa.engine.inputs import (
    Columns,
    InputError,
    InputNeedsMore,
    InputNotFound,
    LabeledImages,
    ReadOptions,
    read_labels,
    read_predictions,
    read_sample_list,
    validation_image_name,
)
from errortaxa.engine.inputs.formats import jsonl as jsonl_format
from errortaxa.engine.inputs.formats.jsonl import read_jsonl
from errortaxa.engine.inputs.formats.multilabel_csv import load_multilabel_csv
from errortaxa.engine.inputs.formats.real_json import load_real_json
from errortaxa.engine.inputs.formats.targets import load_targets
from errortaxa.engine.knowledge.cooccurrence import (
    DEFAULT_COOCCURRENCE,
    cooccurrence_provenance,
    load_class_counts,
    load_cooccurrence,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "real.json").is_file(), reason="../shared/data is absent")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path: Path, records: Sequence[object]) -> Path:
    return write(path, "".join(json.dumps(r) + "\n" for r in records))


def joined(path: Path, labels: LabeledImages) -> tuple[object, int]:
    """Predictions read through the registry, joined with a label set."""
    return read_predictions(path).with_labels(labels)


def one_line(error: pytest.ExceptionInfo[InputError]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------------------------
# JSONL


def test_read_jsonl_columns(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "in.jsonl", [
        {"image": "ILSVRC2012_val_00000001.JPEG", "target": 65, "labels": [65, 66], "pred": 66},
        {"image": "ILSVRC2012_val_00000002.JPEG", "target": 970, "labels": [], "pred": 3,
         "problematic": True, "wrong_labels": [1, 2], "extra": {"ignored": 1}},
    ])
    batch = read_jsonl(path)
    assert batch.target.dtype == np.int32 and batch.target.tolist() == [65, 970]
    assert batch.pred.tolist() == [66, 3]
    assert batch.label_offsets.tolist() == [0, 2, 2] and batch.label_values.tolist() == [65, 66]
    assert batch.problematic.tolist() == [False, True]
    assert batch.images == ["ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG"]
    assert batch.ids is None
    batch.validate(1000)


def test_read_jsonl_ids_and_missing_images(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "in.jsonl", [
        {"id": 7, "target": 1, "labels": [1], "pred": 1},
        {"id": "b", "image": "x.JPEG", "target": 2, "labels": [2], "pred": 3},
        {"image": "y.JPEG", "target": 2, "labels": [2], "pred": 3},
    ])
    batch = read_jsonl(path)
    assert batch.ids == ["7", "b", "y.JPEG"]
    assert batch.images == ["", "x.JPEG", "y.JPEG"]
    only_ids = read_jsonl(jsonl(tmp_path / "ids.jsonl", [{"id": 1, "target": 1, "labels": [1], "pred": 1}]))
    assert only_ids.images is None and only_ids.ids == ["1"]


def test_read_jsonl_blank_lines_crlf_and_empty(tmp_path: Path) -> None:
    record = '{"image": "a.JPEG", "target": 1, "labels": [1, 2], "pred": 2}'
    irregular = read_jsonl(write(tmp_path / "crlf.jsonl", f"\r\n{record}\r\n   \r\n{record}"))
    regular = read_jsonl(write(tmp_path / "lf.jsonl", f"{record}\n{record}\n"))
    for column in ("target", "pred", "label_offsets", "label_values", "problematic"):
        assert np.array_equal(getattr(irregular, column), getattr(regular, column))
    assert irregular.images == regular.images == ["a.JPEG", "a.JPEG"]
    empty = read_jsonl(write(tmp_path / "empty.jsonl", ""))
    assert len(empty) == 0 and empty.label_offsets.tolist() == [0]


def test_read_jsonl_fast_and_checked_paths_agree(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    records = [{"image": validation_image_name(i), "target": int(rng.integers(1000)),
                "labels": rng.integers(1000, size=int(rng.integers(0, 4))).tolist(),
                "pred": int(rng.integers(1000)), "problematic": bool(rng.integers(2))} for i in range(500)]
    path = jsonl(tmp_path / "in.jsonl", records)
    fast = read_jsonl(path)
    checked = jsonl_format._read_jsonl_checked(path, path.read_text(), 1000)
    for column in ("target", "pred", "label_offsets", "label_values", "problematic"):
        assert np.array_equal(getattr(fast, column), getattr(checked, column))
    assert fast.images == checked.images == [r["image"] for r in records]


GOOD = {"image": "a.JPEG", "target": 1, "labels": [1], "pred": 1}


@pytest.mark.parametrize(("line", "expected"), [
    ('{"image": "a.JPEG", "target": 1, "labels": [1], "pred": 1000}',
     "field 'pred': class id 1000 is outside 0..999"),
    ('{"image": "a.JPEG", "target": 1, "labels": [1], "pred": -1}',
     "field 'pred': class id -1 is outside 0..999"),
    ('{"image": "a.JPEG", "target": true, "labels": [1], "pred": 1}',
     "field 'target': must be an integer class id, got boolean true"),
    ('{"image": "a.JPEG", "target": 1.0, "labels": [1], "pred": 1}',
     "field 'target': must be an integer class id, got number 1.0"),
    ('{"image": "a.JPEG", "target": "1", "labels": [1], "pred": 1}',
     "field 'target': must be an integer class id, got string '1'"),
    ('{"image": "a.JPEG", "labels": [1], "pred": 1}', "field 'target': missing"),
    ('{"image": "a.JPEG", "target": 1, "pred": 1}', "field 'labels': missing"),
    ('{"image": "a.JPEG", "target": 1, "labels": [1]}', "field 'pred': missing"),
    ('{"image": "a.JPEG", "target": 1, "labels": 1, "pred": 1}',
     "field 'labels': must be an array of class ids, got integer 1"),
    ('{"image": "a.JPEG", "target": 1, "labels": [1, false], "pred": 1}',
     "field 'labels[1]': must be an integer class id, got boolean false"),
    ('{"image": "a.JPEG", "target": 1, "labels": [1, 2000], "pred": 1}',
     "field 'labels[1]': class id 2000 is outside 0..999"),
    ('{"target": 1, "labels": [1], "pred": 1}', "field 'image': missing (a record needs 'image' or 'id')"),
    ('{"image": "", "target": 1, "labels": [1], "pred": 1}',
     "field 'image': must be a non-empty string, got string ''"),
    ('{"image": 5, "target": 1, "labels": [1], "pred": 1}',
     "field 'image': must be a non-empty string, got integer 5"),
    ('{"id": true, "target": 1, "labels": [1], "pred": 1}',
     "field 'id': must be a non-empty string or an integer, got boolean true"),
    ('{"image": "a.JPEG", "target": 1, "labels": [1], "pred": 1, "problematic": 1}',
     "field 'problematic': must be true or false, got integer 1"),
    ('{"image": "a.JPEG", "target": 1, "labels": [1], "pred": 1, "wrong_labels": [1000]}',
     "field 'wrong_labels[0]': class id 1000 is outside 0..999"),
    ('{"image": "a.JPEG", "target": 10000000000000000000000, "labels": [1], "pred": 1}',
     "field 'target': class id 10000000000000000000000 is outside 0..999"),
    ('[1, 2]', "must be a JSON object, got an array"),
    ('{"image": "a.JPEG", "target": 1,', "invalid JSON"),
    ('{"image": "a.JPEG", "target": 1, "labels": [1], "pred": 1} {"x": 1}', "invalid JSON"),
])
def test_read_jsonl_errors(tmp_path: Path, line: str, expected: str) -> None:
    good = json.dumps(GOOD)
    # record 17 is line 17: 14 good records, a blank line, one more good record, then the bad one
    text = "\n".join([good] * 14 + ["", good, line, good]) + "\n"
    path = write(tmp_path / "in.jsonl", text)
    with pytest.raises(InputError) as error:
        read_jsonl(path)
    message = one_line(error)
    assert message.startswith(f"{path} record 17: ")
    assert expected in message
    assert error.value.record == 17


def test_read_jsonl_example_message_and_attributes(tmp_path: Path) -> None:
    path = write(tmp_path / "in.jsonl", json.dumps({**GOOD, "pred": 1000}) + "\n")
    with pytest.raises(InputError) as error:
        read_jsonl(path)
    assert str(error.value) == f"{path} record 1: field 'pred': class id 1000 is outside 0..999"
    assert (error.value.path, error.value.record, error.value.field) == (str(path), 1, "pred")
    assert isinstance(error.value, ValueError)


def test_read_jsonl_object_over_two_lines_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "in.jsonl", json.dumps(GOOD) + '\n{"image": "a.JPEG", "target": 1,\n'
                 '"labels": [1], "pred": 1}\n')
    with pytest.raises(InputError, match="record 2: invalid JSON"):
        read_jsonl(path)


def test_read_jsonl_num_classes_and_io_errors(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "in.jsonl", [{**GOOD, "target": 10, "labels": [10]}])
    with pytest.raises(InputError, match=r"field 'target': class id 10 is outside 0\.\.9"):
        read_jsonl(path, num_classes=10)
    assert read_jsonl(path, num_classes=11).target.tolist() == [10]
    with pytest.raises(InputNotFound, match=r"missing\.jsonl: cannot read"):
        read_jsonl(tmp_path / "missing.jsonl")
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(json.dumps(GOOD).encode() + b"\n\xff\n")
    with pytest.raises(InputError, match="record 2: not UTF-8"):
        read_jsonl(bad)


# ---------------------------------------------------------------------------------------------
# label sets


def small_labels() -> LabeledImages:
    return LabeledImages.from_lists(images=["a", "b", "c"], target=[1, 2, 3], labels=[[1, 5], [], [3]],
                                    problematic=[False, True, False], source="small")


def test_labeled_images_api() -> None:
    labels = small_labels()
    assert len(labels) == 3 and labels.index_of("b") == 1
    with pytest.raises(KeyError, match="'z' has no labels in small"):
        labels.index_of("z")
    assert labels.indices_of(["c", "z", "a"]).tolist() == [2, -1, 0]
    picked = labels.take([2, 0])
    assert picked.images == ["c", "a"] and picked.target.tolist() == [3, 1]
    assert picked.labels_of(0) == [3] and picked.labels_of(1) == [1, 5]
    masked = labels.take(np.array([False, True, True]))
    assert masked.images == ["b", "c"] and masked.labels_of(0) == []
    assert masked.problematic.tolist() == [True, False]
    batch = labels.to_batch([1, 1, 1])
    assert batch.labels_of(0) == [1, 5] and batch.images == ["a", "b", "c"]
    batch.validate(1000)


CSV_HEADER = ("id,category,original_label,proposed_labels,manually_validated,unclear_multi_labels,"
              "wrong_multi_labels,is_problematic\n")


def test_load_multilabel_csv_small(tmp_path: Path) -> None:
    path = write(tmp_path / "ml.csv", CSV_HEADER +
                 'ILSVRC2012_val_00000001.JPEG,A,24,24,True,,,False\n'
                 'ILSVRC2012_val_00000002.JPEG,M,582,"415, 813, 868",True,"813, 1","467, 582",True\n'
                 'ILSVRC2012_val_00000003.JPEG,Z,5,,True,,,True\n')
    labels = load_multilabel_csv(path)
    assert labels.images[1] == "ILSVRC2012_val_00000002.JPEG"
    assert labels.target.tolist() == [24, 582, 5]
    assert [labels.labels_of(i) for i in range(3)] == [[24], [415, 813, 868, 1], []]
    assert labels.problematic.tolist() == [False, True, True]


@pytest.mark.parametrize(("row", "expected"), [
    ('ILSVRC2012_val_00000009.JPEG,A,24,"24, x",True,,,False',
     "field 'proposed_labels': 'x' is not a class id"),
    ('ILSVRC2012_val_00000009.JPEG,A,24,24,True,"1000",,False',
     "field 'unclear_multi_labels': class id 1000 is outside 0..999"),
    ('ILSVRC2012_val_00000009.JPEG,A,-1,24,True,,,False', "field 'original_label': '-1' is not a class id"),
    ('ILSVRC2012_val_00000009.JPEG,A,24,24,True,,,maybe',
     "field 'is_problematic': 'maybe' is not True or False"),
    ('ILSVRC2012_val_00000001.JPEG,A,24,24,True,,,False',
     "field 'id': duplicate image 'ILSVRC2012_val_00000001.JPEG' (first at record 2)"),
    ('ILSVRC2012_val_00000009.JPEG,A,24,24,True,,False', "has 7 fields, the header has 8"),
])
def test_load_multilabel_csv_errors(tmp_path: Path, row: str, expected: str) -> None:
    path = write(tmp_path / "ml.csv", CSV_HEADER + "ILSVRC2012_val_00000001.JPEG,A,24,24,True,,,False\n\n"
                 + row + "\n")
    with pytest.raises(InputError) as error:
        load_multilabel_csv(path)
    assert one_line(error).startswith(f"{path} record 4: ")
    assert expected in str(error.value)


def test_load_multilabel_csv_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path / "ml.csv", "id,original_label,proposed_labels,is_problematic\n")
    with pytest.raises(InputError, match="record 1: field 'unclear_multi_labels': missing column"):
        load_multilabel_csv(path)


def test_load_targets_formats_and_errors(tmp_path: Path) -> None:
    plain = load_targets(write(tmp_path / "t.txt", "# header\n65\n970\n\n230\n"))
    assert plain.images == [validation_image_name(i) for i in range(3)]
    assert plain.target.tolist() == [65, 970, 230] and plain.labels_of(1) == [970]
    named = load_targets(write(tmp_path / "val.txt", "x.JPEG 3\ny.JPEG 4\n"))
    assert named.images == ["x.JPEG", "y.JPEG"] and named.target.tolist() == [3, 4]
    for text, expected in [("1\n2 3\n", "record 2: expected one class id like the first record"),
                           ("a 1\nb\n", "record 2: expected 'file label' like the first record"),
                           ("a 1\na 2\n", "record 2: field 'image': duplicate image 'a'"),
                           ("a 1\nb 1000\n", "record 2: field 'label': class id 1000 is outside")]:
        with pytest.raises(InputError, match=expected):
            load_targets(write(tmp_path / "bad.txt", text))


def test_load_real_json(tmp_path: Path) -> None:
    real = write(tmp_path / "real.json", "[[], [970, 795], [230, 231, 230]]")
    write(tmp_path / "originals.txt", "\n".join(f"{validation_image_name(i)} {t}" for i, t in
                                                enumerate([65, 970, 232])))
    labels = load_real_json(real, tmp_path / "originals.txt")
    assert labels.images == [validation_image_name(1), validation_image_name(2)]
    assert labels.target.tolist() == [970, 232] and labels.skipped == 1
    assert labels.labels_of(1) == [230, 231] and not labels.problematic.any()
    with pytest.raises(InputNeedsMore, match="need the original validation labels"):
        load_real_json(real)
    write(tmp_path / "imagenet_val_labels_caffe.txt", "65\n970\n232\n")
    assert load_real_json(real).target.tolist() == [970, 232]
    assert load_real_json(real, load_targets(tmp_path / "originals.txt")).target.tolist() == [970, 232]


@pytest.mark.parametrize(("text", "expected"), [
    ('[[1], [2, "3"]]', "record 2 (ILSVRC2012_val_00000002.JPEG): field '[1]': must be an integer class id"),
    ("[[1], [2, 1000]]", "record 2 (ILSVRC2012_val_00000002.JPEG): field '[1]': class id 1000 is outside"),
    ("[[1], 2]", "record 2 (ILSVRC2012_val_00000002.JPEG): must be an array of class ids"),
    ("[[1], [2], [3], [4]]", "record 4 (ILSVRC2012_val_00000004.JPEG): no original label"),
    ('{"a": 1}', "must be a JSON array of label lists"),
    ("[[1], [2]", "invalid JSON"),
])
def test_load_real_json_errors(tmp_path: Path, text: str, expected: str) -> None:
    write(tmp_path / "imagenet_val_labels_caffe.txt", "1\n2\n3\n")
    with pytest.raises(InputError) as error:
        load_real_json(write(tmp_path / "real.json", text))
    assert expected in one_line(error)


def test_load_label_file_dispatch(tmp_path: Path) -> None:
    write(tmp_path / "val.txt", "1\n2\n")
    row = CSV_HEADER + "a.JPEG,A,1,1,True,,,False\n"
    assert len(read_labels(write(tmp_path / "ml.csv", row))) == 1
    assert len(read_labels(write(tmp_path / "ml.labels", row))) == 1
    assert read_labels(write(tmp_path / "r.json", "[[5], []]")).target.tolist() == [1]
    assert read_labels(write(tmp_path / "r.labels", " [[5], [6]]")).target.tolist() == [1, 2]
    assert read_labels(write(tmp_path / "t.labels", "7\n8\n")).target.tolist() == [7, 8]


# ---------------------------------------------------------------------------------------------
# predictions


def val_labels(n: int = 50_000) -> LabeledImages:
    rows = np.arange(0, n, 2)  # every other image has labels
    return LabeledImages.from_lists(images=[validation_image_name(int(i)) for i in rows],
                                    target=(rows % 1000).tolist(), labels=[[int(i % 1000)] for i in rows])


def test_read_predictions_npz_top1_and_logits(tmp_path: Path) -> None:
    labels = val_labels()
    top1 = (np.arange(50_000) * 7 % 1000).astype(np.int64)
    np.savez(tmp_path / "p.npz", top1=top1, probs=np.zeros((3, 3)))
    batch, skipped = joined(tmp_path / "p.npz", labels)
    assert skipped == 25_000 and len(batch) == 25_000
    assert batch.pred.tolist() == top1[::2].tolist()
    assert batch.images is not None
    assert batch.images[:2] == [validation_image_name(0), validation_image_name(2)]
    assert batch.target.tolist() == labels.target.tolist()
    batch.validate(1000)
    logits = np.zeros((50_000, 1000), dtype=np.float32)
    logits[np.arange(50_000), top1] = 1.0
    np.savez(tmp_path / "l.npz", logits=logits)
    assert joined(tmp_path / "l.npz", labels)[0].pred.tolist() == top1[::2].tolist()
    np.save(tmp_path / "only.npy", top1)
    assert joined(tmp_path / "only.npy", labels)[1] == 25_000
    np.savez(tmp_path / "single.npz", whatever=top1)  # refused (it was read silently), unless named
    with pytest.raises(InputError) as error:
        joined(tmp_path / "single.npz", labels)
    assert one_line(error) == (f"{tmp_path / 'single.npz'}: no prediction array: expected one of top1, pred, logits, "
                               "probs, probabilities, found whatever (name another with --columns pred=NAME)")
    named = read_predictions(tmp_path / "single.npz", ReadOptions(columns=Columns(pred="whatever")))
    assert named.with_labels(labels)[1] == 25_000


def test_read_predictions_npz_with_images(tmp_path: Path) -> None:
    labels = small_labels()
    np.savez(tmp_path / "p.npz", pred=np.array([5, 6, 7, 8]), images=np.array(["c", "zz", "a", "b"]))
    batch, skipped = joined(tmp_path / "p.npz", labels)
    assert skipped == 1 and batch.images == ["c", "a", "b"]
    assert batch.pred.tolist() == [5, 7, 8] and batch.target.tolist() == [3, 1, 2]
    assert [batch.labels_of(i) for i in range(3)] == [[3], [1, 5], []]
    assert batch.problematic.tolist() == [False, False, True]
    np.savez(tmp_path / "b.npz", pred=np.array([5]), images=np.array([b"a"]))
    assert joined(tmp_path / "b.npz", labels)[0].images == ["a"]


def npz_error(tmp_path: Path, **arrays: np.ndarray) -> str:
    path = tmp_path / "p.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]
    with pytest.raises(InputError) as error:
        joined(path, small_labels())
    message = one_line(error)
    assert message.startswith(f"{path}")
    return message


def test_read_predictions_npz_errors(tmp_path: Path) -> None:
    names = np.array(["a", "b", "c"])
    assert "field 'top1': has 3 rows; without an 'images' array" in npz_error(
        tmp_path, top1=np.array([1, 2, 3]))
    assert "field 'top1': 1-D predictions must be integer class ids, not float64" in npz_error(
        tmp_path, top1=np.array([1.0, 2.0, 3.0]), images=names)
    assert "field 'logits': scores must be [N, 1000], got [3, 10]" in npz_error(
        tmp_path, logits=np.zeros((3, 10)), images=names)
    assert "field 'top1': must be int[N] or float[N, 1000], got shape [3, 1, 1]" in npz_error(
        tmp_path, top1=np.zeros((3, 1, 1)), images=names)
    assert "key 'top1' row 1 (b): class id 1000 is outside 0..999" in npz_error(
        tmp_path, top1=np.array([1, 1000, 3]), images=names)
    nan = np.zeros((3, 1000))
    nan[2, 5] = np.nan
    assert "key 'logits' row 2 (c): scores hold NaN or infinity" in npz_error(
        tmp_path, logits=nan, images=names)
    assert "field 'images': has 2 names for 3 prediction rows" in npz_error(
        tmp_path, top1=np.array([1, 2, 3]), images=names[:2])
    assert "key 'images' row 2: duplicate image 'a'" in npz_error(
        tmp_path, top1=np.array([1, 2, 3]), images=np.array(["a", "b", "a"]))
    assert "field 'images': must be a 1-D array of file names" in npz_error(
        tmp_path, top1=np.array([1, 2, 3]), images=np.array([1, 2, 3]))
    assert "no prediction array" in npz_error(tmp_path, a=np.zeros(3), b=np.zeros(3))
    assert "field 'top1': cannot load" in npz_error(tmp_path, top1=np.array([{}, {}, {}], dtype=object))
    write(tmp_path / "junk.npz", "not a zip")
    with pytest.raises(InputError, match=r"junk\.npz: cannot read as \.npz"):
        joined(tmp_path / "junk.npz", small_labels())


# ---------------------------------------------------------------------------------------------
# sample lists


def test_read_sample_list(tmp_path: Path) -> None:
    path = write(tmp_path / "s.txt",
                 "# a comment\nILSVRC2012_val_00003189.JPEG\n\n  b.JPEG   # why\nb.JPEG\n")
    assert read_sample_list(path) == frozenset({"ILSVRC2012_val_00003189.JPEG", "b.JPEG"})
    with pytest.raises(InputError, match=r"s2\.txt record 2: expected one image file name, got 2 fields"):
        read_sample_list(write(tmp_path / "s2.txt", "a.JPEG\na.JPEG 5\n"))


# ---------------------------------------------------------------------------------------------
# the shared data


@needs_data
def test_multilabel_csv_on_the_real_data() -> None:
    labels = load_multilabel_csv(DATA / "imagenet2012_multilabel_validation.csv")
    assert len(labels) == 20_000 and int(labels.problematic.sum()) == 1_308
    sizes = np.diff(labels.label_offsets)
    # REFERENCE.md's "451 with an empty label set" counts empty proposed_labels (category Z);
    # with unclear_multi_labels added (the reference's label set) 311 sets are empty, all problematic.
    assert int((sizes == 0).sum()) == 311 and not (sizes[~labels.problematic] == 0).any()
    with open(DATA / "imagenet2012_multilabel_validation.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sum(1 for r in rows if not r["proposed_labels"].strip() and r["is_problematic"] == "True") == 451
    # non-problematic samples always have their target among the labels
    ok = ~labels.problematic
    rows_ok = np.flatnonzero(ok)
    assert all(int(labels.target[i]) in labels.labels_of(int(i)) for i in rows_ok)


@needs_data
def test_real_json_and_targets_on_the_real_data() -> None:
    real = load_real_json(DATA / "real.json")
    assert len(real) == 46_837 and real.skipped == 3_163
    originals = load_targets(DATA / "imagenet_val_labels_caffe.txt")
    assert len(originals) == 50_000 and originals.images[0] == "ILSVRC2012_val_00000001.JPEG"
    assert int(originals.target[0]) == 65
    assert len(read_sample_list(DATA / "non_prototypical.txt")) > 0


def recount(pairs: list[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """Co-occurrence counts recomputed independently from the source files."""
    with open(DATA / "imagenet2012_multilabel_validation.csv", newline="") as handle:
        excluded = {row["id"] for row in csv.DictReader(handle)}
    lines = (DATA / "imagenet_val_labels_caffe.txt").read_text().split("\n")
    original = [int(line.split()[1]) for line in lines if line.strip()]
    counts = dict.fromkeys(pairs, 0)
    for i, entry in enumerate(json.loads((DATA / "real.json").read_text())):
        if not entry or f"ILSVRC2012_val_{i + 1:08d}.JPEG" in excluded:
            continue
        labels = set(entry) | {original[i]}
        for a, b in pairs:
            counts[(a, b)] += a in labels and b in labels
    return counts


@needs_data
def test_cooccurrence_table_matches_the_data() -> None:
    table = load_cooccurrence()
    assert table.shape == (1000, 1000) and table.dtype == np.int32
    assert np.array_equal(table, table.T) and not table.diagonal().any()
    top = np.argwhere(np.triu(table) == table.max())[0]
    pairs = [(int(top[0]), int(top[1])), (248, 250), (836, 837), (620, 681), (1, 2), (0, 999)]
    ones = np.argwhere(np.triu(table) == 1)[:2]
    pairs += [(int(a), int(b)) for a, b in ones]
    expected = recount(pairs)
    assert {p: int(table[p]) for p in pairs} == expected
    assert int(table[ones[0][0], ones[0][1]]) == 1 and table.max() > 2


@needs_data
def test_cooccurrence_explains_the_reference_spurious_correlations() -> None:
    table = load_cooccurrence()
    for line in (DATA / "anchor-decisions-dev.jsonl").read_text().split("\n"):
        if not line.strip():
            continue
        record = json.loads(line)
        common = any(table[record["pred"], label] >= 2 for label in record["multi_labels"]
                     if label != record["pred"])
        if record["category"] == "spurious_correlation":
            assert common, record
        elif record["category"] == "model_failure":
            assert not common, record


def test_cooccurrence_file_and_provenance() -> None:
    table = load_cooccurrence(DEFAULT_COOCCURRENCE)
    start = time.perf_counter()
    load_cooccurrence()
    assert time.perf_counter() - start < 0.25  # a few ms in practice
    provenance = cooccurrence_provenance()
    assert provenance["license"].startswith("Apache-2.0")
    assert {s["file"] for s in provenance["sources"]} == {
        "real.json", "imagenet_val_labels_caffe.txt", "imagenet2012_multilabel_validation.csv"}
    stats = provenance["statistics"]
    assert stats["pairs"] == int(np.count_nonzero(np.triu(table)))
    assert stats["images_counted"] == 28_098
    class_counts = load_class_counts()
    assert class_counts.shape == (1000,) and int(class_counts.sum()) >= stats["images_counted"]
    pairs = list(combinations(range(3), 2))
    assert all(table[a, b] == table[b, a] for a, b in pairs)


def test_load_cooccurrence_rejects_bad_tables(tmp_path: Path) -> None:
    path = tmp_path / "t.npz"
    np.savez(path, pairs=np.array([[3, 3]], dtype=np.uint16), counts=np.array([1], dtype=np.int32),
             num_classes=np.int64(10))
    with pytest.raises(ValueError, match="0 <= a < b < 10"):
        load_cooccurrence(path)
    np.savez(path, pairs=np.array([[1, 3]], dtype=np.uint16), counts=np.array([4], dtype=np.int32),
             num_classes=np.int64(10))
    small = load_cooccurrence(path)
    assert small.shape == (10, 10) and small[1, 3] == small[3, 1] == 4 and small.sum() == 8
