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
    (_row(problem_id=[7]), "problem_id"),
    (_row(problem_id=" "), "problem_id"),
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


def test_json_lines_in_a_json_file_with_bom_and_crlf(tmp_path):
    """What the released loaders take: JSON lines in a .json file, a UTF-8 BOM, CRLF line ends."""
    path = tmp_path / "r.json"
    text = "\r\n".join(json.dumps(_row(problem_id=i)) for i in (1, 2, 3)) + "\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert [r.problem_id for r in read_records(path).records] == [1, 2, 3]
    array = tmp_path / "a.json"
    array.write_bytes(b"\xef\xbb\xbf" + ("[\r\n" + ",\r\n".join(json.dumps(_row(problem_id=i), indent=1)
                                                              for i in (1, 2)) + "\r\n]\r\n").encode())
    records = read_records(array).records
    assert [r.problem_id for r in records] == [1, 2] and records[1].origin.endswith("a.json:16")


def test_missing_or_numeric_ids_get_stable_ids(tmp_path):
    rows = [{k: v for k, v in _row().items() if k != "problem_id"}, _row(problem_id=3.0), _row(problem_id=2.5),
            _row(problem_id=None)]
    path = _write_jsonl(tmp_path / "eval_x.jsonl", rows)
    ids = [r.problem_id for r in read_records(path).records]
    assert ids == ["eval_x-1", 3, "2.5", "eval_x-4"]
    assert [r.problem_id for r in read_records(path).records] == ids          # the same on every read
    assert [r.problem_id for r in read_records(path, max_samples=1).records] == ["eval_x-1"]


def test_repeated_ids_are_reported_and_made_unique(tmp_path, caplog):
    rows = [_row(problem_id=5), _row(problem_id=5, problem="Second?"), _row(problem_id="5#2"), _row(problem_id=5)]
    path = _write_jsonl(tmp_path / "r.jsonl", rows)
    with caplog.at_level(logging.WARNING, logger="videorft"):
        out = read_records(path)
    assert [r.problem_id for r in out.records] == [5, "5#3", "5#2", "5#4"]
    assert out.records[1].problem == "Second?" and len({str(r.problem_id) for r in out.records}) == 4
    assert len(out.renamed) == 2 and out.renamed[0].startswith(f"{path}:2: problem_id: '5' repeats")
    assert "2 repeated problem_id(s) made unique" in caplog.text


def test_unscorable_solutions_are_rejected_when_read(tmp_path):
    """The scorer's solution check runs in the reader: an empty answer never reaches a training step."""
    from videorft.engine.rewards import check_solution

    rows = [_row(), _row(problem_id=8, solution="<answer></answer>"),
            _row(problem_id=9, problem_type="regression", options=[], solution="<answer>about 4</answer>"),
            _row(problem_id=10)]
    path = _write_jsonl(tmp_path / "r.jsonl", rows)
    assert len(read_records(path).records) == 4                                  # no check: read as written
    with pytest.raises(RecordError, match=r"r\.jsonl:2: solution: .*holds no answer text"):
        read_records(path, validate=check_solution)
    out = read_records(path, on_bad_record="skip", validate=check_solution)
    assert [r.problem_id for r in out.records] == [7, 10]
    assert len(out.skipped) == 2 and ":3: solution:" in out.skipped[1] and "not a number" in out.skipped[1]


def test_frame_records_with_a_video_file_are_videos(tmp_path):
    """MVBench's release marks its episodic-reasoning clips data_type "frame" though they are .mp4 files."""
    path = _write_jsonl(tmp_path / "r.jsonl", [_row(data_type="frame", path="./tvqa/a.mp4"),
                                               _row(problem_id=8, data_type="frame", path="./tvqa/a_frames")])
    out = read_records(path, on_bad_record="skip")
    assert [(r.problem_id, r.data_type) for r in out.records] == [(7, "video")]
    assert ":2: data_type: 'frame'" in out.skipped[0]


def test_max_samples(tmp_path):
    path = _write_jsonl(tmp_path / "r.jsonl", [_row(problem_id=i) for i in range(5)])
    assert [r.problem_id for r in read_records(path, max_samples=3).records] == [0, 1, 2]


def test_synthetic_world_records_load(small_world):
    for split in ("train", "test"):
        records = read_records(small_world / f"{split}.jsonl", require_process=True).records
        assert records and all(r.media_path(small_world).is_file() for r in records)
        assert all(isinstance(r, Record) and r.answer for r in records)
