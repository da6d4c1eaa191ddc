"""Record files: JSON and JSONL round trips, errors that name file, line and field, skipping."""

import json
import logging
from pathlib import Path

import pytest

from videorft.loaders.records import Record, RecordError, read_records, write_records
from videorft.loaders.schema import PROBLEM_TYPES


def _row(**kw):
    row = {"problem_id": 7, "problem": "What colour is the large shape?", "problem_type": "multiple choice",
           "data_type": "video", "path": "./videos/a.mp4", "options": ["A. red", "B. blue"],
           "process": "<think>It is red.</think>", "solution": "<answer>A</answer>", "data_source": "test"}
    row.update(kw)
    return row


def _write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_round_trip_keeps_every_field(tmp_path, suffix):
    rows = [_row(), _row(problem_id="b-2", problem_type="OCR", options=[], solution="<answer>STOP</answer>",
                     data_type="image", path="./img/b.png", original_question_type="sign")]
    src = tmp_path / f"in{suffix}"
    write_records(rows, src)
    records = read_records(src).records
    assert [r.to_dict() for r in records] == rows
    write_records(records, tmp_path / f"out{suffix}")
    assert [r.to_dict() for r in read_records(tmp_path / f"out{suffix}").records] == rows
    assert records[1].extra == {"original_question_type": "sign"} and records[1].answer == "STOP"


def test_media_path_resolves_under_one_root(tmp_path):
    record = read_records(_write_jsonl(tmp_path / "r.jsonl", [_row()])).records[0]
    assert record.media_path("/data/world") == Path("/data/world/videos/a.mp4")
    assert record.origin == f"{tmp_path / 'r.jsonl'}:1"


@pytest.mark.parametrize("bad, field", [
    (_row(problem_type="yes/no"), "problem_type"),
    (_row(data_type="audio"), "data_type"),
    ({k: v for k, v in _row().items() if k != "solution"}, "solution"),
    ({k: v for k, v in _row().items() if k != "problem_id"}, "problem_id"),
    (_row(problem=""), "problem"),
    (_row(options="A. red"), "options"),
    (_row(path=3), "path"),
])
def test_bad_line_names_file_line_and_field(tmp_path, bad, field):
    path = _write_jsonl(tmp_path / "r.jsonl", [_row(), "", _row(problem_id=8), bad])
    with pytest.raises(RecordError) as err:
        read_records(path)
    assert str(err.value).startswith(f"{path}:4: {field}")


def test_unknown_problem_type_lists_the_allowed_ones(tmp_path):
    path = _write_jsonl(tmp_path / "r.jsonl", [_row(problem_type="Multiple Choice")])
    with pytest.raises(RecordError, match="not one of") as err:
        read_records(path)
    assert all(t in str(err.value) for t in PROBLEM_TYPES)


def test_broken_json_line_is_named(tmp_path):
    path = _write_jsonl(tmp_path / "r.jsonl", [_row(), '{"problem_id": 1, "problem": '])
    with pytest.raises(RecordError, match=r"r\.jsonl:2: not valid JSON"):
        read_records(path)


def test_json_array_errors_give_the_line_of_the_item(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("[\n" + json.dumps(_row()) + ",\n" + json.dumps(_row(data_type="gif"), indent=1) + "\n]\n")
    with pytest.raises(RecordError, match=r"r\.json:3: data_type"):
        read_records(path)


def test_skip_mode_counts_and_logs(tmp_path, caplog):
    path = _write_jsonl(tmp_path / "r.jsonl", [_row(), _row(problem_type="essay"), "not json", _row(problem_id=9)])
    with caplog.at_level(logging.WARNING, logger="videorft"):
        out = read_records(path, on_bad_record="skip")
    assert [r.problem_id for r in out.records] == [7, 9]
    assert len(out.skipped) == 2 and ":2: problem_type" in out.skipped[0] and ":3: not valid JSON" in out.skipped[1]
    assert "skipped 2 bad record(s)" in caplog.text


def test_sft_data_needs_reasoning(tmp_path):
    path = _write_jsonl(tmp_path / "r.jsonl", [_row(process="")])
    assert read_records(path).records[0].process == ""
    with pytest.raises(RecordError, match=r":1: process"):
        read_records(path, require_process=True)


def test_max_samples(tmp_path):
    path = _write_jsonl(tmp_path / "r.jsonl", [_row(problem_id=i) for i in range(5)])
    assert [r.problem_id for r in read_records(path, max_samples=3).records] == [0, 1, 2]


def test_synthetic_world_records_load(small_world):
    for split in ("train", "test"):
        records = read_records(small_world / f"{split}.jsonl", require_process=True).records
        assert records and all(r.media_path(small_world).is_file() for r in records)
        assert all(isinstance(r, Record) and r.answer for r in records)
