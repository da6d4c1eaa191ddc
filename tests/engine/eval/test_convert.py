"""`videorft convert-benchmark`: each benchmark's own release (the layout lmms-eval reads) becomes a
records file that the evaluation reads with the right breakdown and answers."""

import json

import pytest

from videorft.engine.config import load_config
from videorft.engine.eval.benchmarks import get_benchmark
from videorft.engine.eval.convert import run as convert
from videorft.engine.eval.reader import read_benchmark


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _json(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2))
    return path


def _convert(tmp_path, name, source, video_dir, *extra):
    out = tmp_path / "out" / f"eval_{name}.json"
    cfg = load_config(None, [f"run.output_dir={tmp_path / 'run'}", f"convert.benchmark={name}",
                             f"convert.source={source}", f"convert.output_file={out}",
                             f"convert.video_dir={video_dir}", *extra])
    summary = convert(cfg)
    records = read_benchmark(load_config(None, [f"data.eval_file={out.parent}", f"eval.benchmark={name}"]),
                             get_benchmark(name)).records
    return summary, records


def _view(records, name):
    category = get_benchmark(name).category
    return [(r.problem_type, r.answer, category(r), r.path) for r in records]


def test_vsibench(tmp_path):
    source = _jsonl(tmp_path / "vsi" / "test.jsonl", [
        {"id": 11, "dataset": "arkitscenes", "scene_name": "41069025", "question_type": "object_counting",
         "question": "How many chair(s) are in this room?", "options": None, "ground_truth": "4"},
        {"id": 12, "dataset": "scannet", "scene_name": "scene0011_00", "question_type": "object_rel_direction_hard",
         "question": "Is the lamp left or right?", "options": ["A. left", "B. right"], "ground_truth": "B"},
        {"id": 13, "dataset": "scannet", "scene_name": "scene0011_00", "question_type": "route_planning",
         "question": "Which turn?", "options": ["turn left", "turn right"], "ground_truth": "turn right"},
        {"id": 14, "dataset": "scannet", "scene_name": "x", "question_type": "object_height", "question": "?",
         "options": None, "ground_truth": "1"},
    ])
    summary, records = _convert(tmp_path, "vsibench", source, "VSI-Bench")
    assert summary["written"] == 3 and summary["skipped"] == {"unknown question_type 'object_height'": 1}
    assert _view(records, "vsibench") == [
        ("regression", "4", "object_counting", "./VSI-Bench/arkitscenes/41069025.mp4"),
        ("multiple choice", "B", "object_rel_direction_hard", "./VSI-Bench/scannet/scene0011_00.mp4"),
        ("multiple choice", "B", "route_planning", "./VSI-Bench/scannet/scene0011_00.mp4")]
    assert records[2].options == ["A. turn left", "B. turn right"] and records[0].options == []
    assert [r.problem_id for r in records] == [1, 2, 3] and records[0].extra["source_id"] == 11


def test_videommmu_tracks_come_from_the_split_folders(tmp_path):
    mc = {"question": "What kind of sugar is this?", "options": ["aldose", "ketose"], "answer": "A",
          "question_type": "multiple-choice"}
    _json(tmp_path / "mmmu" / "Perception" / "test.json", [{"id": "validation_Biology_3", **mc}])
    _jsonl(tmp_path / "mmmu" / "Comprehension" / "test.jsonl", [{"id": "dev_Art_Theory_1", **mc, "answer": "B"}])
    _jsonl(tmp_path / "mmmu" / "Adaptation" / "test.jsonl", [
        {"id": "test_Math_7", "question": "Compute the area.", "options": [], "answer": "12.5",
         "question_type": "open"},
        {"id": "test_History_2", "question": "Which treaty?", "options": [], "answer": "Versailles",
         "question_type": "open"}])
    summary, records = _convert(tmp_path, "videommmu", tmp_path / "mmmu", "VideoMMMU")
    assert summary["skipped"] == {"open question without a numerical answer": 1}
    assert sorted(_view(records, "videommmu")) == [
        ("multiple choice", "A", "Perception", "./VideoMMMU/Science/validation_Biology_3.mp4"),
        ("multiple choice", "B", "Comprehension", "./VideoMMMU/Art/dev_Art_Theory_1.mp4"),
        ("numerical", "12.5", "Adaptation", "./VideoMMMU/Science/test_Math_7.mp4")]


def test_mmvu_keeps_the_multiple_choice_items(tmp_path):
    source = _json(tmp_path / "mmvu.json", [
        {"id": "q0", "video_path": "videos/Chemistry/0.mp4", "question": "How many grams?",
         "choices": {"A": "10.0", "B": "5.0", "C": "12.0", "D": "", "E": ""}, "answer": "A",
         "question_type": "multiple-choice"},
        {"id": "q1", "video_path": "videos/Law/3.mp4", "question": "Which doctrine?",
         "choices": json.dumps({"A": "estoppel", "B": "laches"}), "answer": "B", "question_type": "multiple-choice"},
        {"id": "q2", "video_path": "videos/Art/1.mp4", "question": "Name the style.", "choices": {},
         "answer": "Baroque", "question_type": "open-ended"}])
    summary, records = _convert(tmp_path, "mmvu", source, "MMVU")
    assert summary["written"] == 2 and len(summary["skipped"]) == 1
    assert _view(records, "mmvu") == [
        ("multiple choice", "A", "Science", "./MMVU/videos/Chemistry/0.mp4"),
        ("multiple choice", "B", "Humanities & Social Science", "./MMVU/videos/Law/3.mp4")]
    assert records[0].options == ["A. 10.0", "B. 5.0", "C. 12.0"]


def test_mvbench_tasks_come_from_the_json_files(tmp_path):
    _json(tmp_path / "mv" / "json" / "action_antonym.json", [
        {"video": "166583.mp4", "question": "What is the action performed?",
         "candidates": ["Not sure", "Scattering something down", "Piling something up"],
         "answer": "Piling something up"}])
    _json(tmp_path / "mv" / "json" / "episodic_reasoning.json", [
        {"video": "castle_14.mp4", "question": "Why did he dress up?", "candidates": ["a bet", "trust"],
         "answer": "trust", "start": 0.0, "end": 38.3}])
    summary, records = _convert(tmp_path, "mvbench", tmp_path / "mv", "MVBench/video")
    assert _view(records, "mvbench") == [
        ("multiple choice", "C", "action_antonym", "./MVBench/video/ssv2_video_mp4/166583.mp4"),
        ("multiple choice", "B", "episodic_reasoning", "./MVBench/video/tvqa/video_fps3_hq_segment/castle_14.mp4")]
    assert records[1].extra["end"] == 38.3 and records[0].options[2] == "C. Piling something up"


def test_tempcompass_multi_choice_options_are_split_from_the_question(tmp_path):
    _jsonl(tmp_path / "tc" / "multi-choice" / "test.jsonl", [
        {"video_id": "1020474958", "question": "In which direction is the car moving?\nA. left\nB. right\nC. up",
         "answer": "B. right", "dim": "direction"}])
    _jsonl(tmp_path / "tc" / "yes_no" / "test.jsonl", [
        {"video_id": "1020474958", "question": "Is the car moving left?", "answer": "no", "dim": "direction"}])
    summary, records = _convert(tmp_path, "tempcompass", tmp_path / "tc", "TempCompass/videos")
    assert summary["source_files"] == [str(tmp_path / "tc" / "multi-choice" / "test.jsonl")]
    assert _view(records, "tempcompass") == [
        ("multiple choice", "B", "direction", "./TempCompass/videos/1020474958.mp4")]
    assert records[0].problem == "In which direction is the car moving?"
    assert records[0].options == ["A. left", "B. right", "C. up"]


def test_videomme_keeps_its_fields_and_checks_the_videos(tmp_path, clip_file):
    rows = [{"video_id": "001", "duration": d, "domain": "Knowledge", "sub_category": "Astronomy",
             "url": "https://www.youtube.com/watch?v=v1", "videoID": f"v{i}", "question_id": f"001-{i}",
             "task_type": "Counting Problem", "question": "How many planets?", "options": ["A. 1", "B. 2", "C. 3"],
             "answer": "C"} for i, d in enumerate(("short", "long"))]
    media = tmp_path / "media"
    (media / "Video-MME" / "data").mkdir(parents=True)
    (media / "Video-MME" / "data" / "v0.mp4").write_bytes(clip_file.read_bytes())
    summary, records = _convert(tmp_path, "videomme", _json(tmp_path / "mme.json", rows), "Video-MME/data",
                                "convert.check_media=true", f"data.media_root={media}")
    assert summary["missing_media"] == 1
    assert _view(records, "videomme") == [("multiple choice", "C", "short", "./Video-MME/data/v0.mp4"),
                                          ("multiple choice", "C", "long", "./Video-MME/data/v1.mp4")]
    assert records[0].extra["task_type"] == "Counting Problem" and records[0].extra["source_id"] == "001-0"


def test_parquet_sources(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [{"videoID": "v9", "duration": "medium", "question": "Which?", "options": ["A. x", "B. y"], "answer": "A",
             "question_id": "9-1"}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "test.parquet")
    _, records = _convert(tmp_path, "videomme", tmp_path / "test.parquet", "mme")
    assert _view(records, "videomme") == [("multiple choice", "A", "medium", "./mme/v9.mp4")]


def test_bad_sources_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="convert.benchmark is required"):
        convert(load_config(None, [f"run.output_dir={tmp_path}"]))
    bad = _json(tmp_path / "bad.json", [{"videoID": "v1", "question": "?"}])
    with pytest.raises(ValueError, match=r"bad.json: item .*missing or malformed field 'options'"):
        _convert(tmp_path, "videomme", bad, "")
    assert not (tmp_path / "out" / "eval_videomme.json").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no"):
        _convert(tmp_path, "mvbench", tmp_path / "empty", "")
    _json(tmp_path / "mv" / "json" / "fine_grained_pose.json", [
        {"video": "a.mp4", "question": "Which pose?", "candidates": ["sit", "stand"], "answer": "jump"},
        {"video": "b.mp4", "question": "Which pose?", "candidates": ["sit", "stand"], "answer": "stand"}])
    summary, records = _convert(tmp_path, "mvbench", tmp_path / "mv", "")
    assert summary["skipped"] == {"answer is not among the candidates": 1}
    assert [(r.path, r.answer) for r in records] == [("./nturgbd_convert/b.mp4", "B")]
