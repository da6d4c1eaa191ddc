"""Rescoring saved completions (`eval.predictions`): hand-computed benchmark numbers, VSI-Bench in
both conventions and with the released float32 MRA, MVBench per task, VideoMME per duration."""

import json

import pytest

from videorft.engine.config import load_config
from videorft.engine.eval.stage import run as evaluate

MC = ["A. left", "B. right", "C. back", "D. front"]

# VSI-Bench: (problem_id, question type, truth, completion, official score, released float32 score)
VSI = [
    (0, "object_rel_direction_easy", "A", "<think>left</think><answer>A</answer>", 1.0, 1.0),
    (1, "object_rel_direction_medium", "B", "<answer>A</answer>", 0.0, 0.0),
    (2, "object_rel_direction_hard", "C", "<answer>C</answer>", 1.0, 1.0),
    (3, "object_rel_direction_hard", "D", "<answer>(D)</answer>", 0.0, 0.0),          # exact letters only
    (4, "object_rel_distance", "A", "<answer>A</answer>", 1.0, 1.0),
    (5, "object_rel_distance", "B", "B", 1.0, 1.0),                                     # whole-output fallback
    (6, "route_planning", "C", "<answer>B</answer>", 0.0, 0.0),
    (7, "obj_appearance_order", "D", "<answer>D</answer>", 1.0, 1.0),
    (8, "object_counting", "4", "<answer>5</answer>", 0.6, 0.5),        # |5-4|/4 = 0.25, on a threshold
    (9, "object_counting", "2", "<answer>3</answer>", 0.1, 0.0),        # 0.5, on the first threshold
    (10, "object_abs_distance", "2.0", "<answer>2.0</answer>", 1.0, 1.0),
    (11, "object_size_estimation", "100", "<answer>150</answer>", 0.1, 0.0),
    (12, "room_size_estimation", "20", "<answer>twenty</answer>", 0.0, 0.0),
]


def _write(tmp_path, name, records, completions, clip_file, release_writer):
    data = release_writer(tmp_path / "data", name, records, clip_file)
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("".join(json.dumps({"problem_id": pid, "completion": c}) + "\n" for pid, c in completions))
    return data, predictions


def _rescore(tmp_path, overrides, data, predictions, name, *extra):
    cfg = load_config(None, overrides(tmp_path / f"run-{len(extra)}", tmp_path / "no-model", data, tmp_path / "data",
                                      name, f"eval.predictions={predictions}", *extra))
    return evaluate(cfg)


@pytest.fixture
def vsi_files(tmp_path, make_record, clip_file, release_writer):
    records = [make_record(pid, f"Question {pid}?", "regression" if truth[0].isdigit() else "multiple choice",
                           "./Evaluation/VSIBench/arkitscenes/1.mp4", truth,
                           None if truth[0].isdigit() else MC, original_question_type=kind)
               for pid, kind, truth, *_ in VSI]
    return _write(tmp_path, "vsibench", records, [(pid, c) for pid, _, _, c, *_ in VSI], clip_file, release_writer)


def test_vsibench_in_both_conventions(tmp_path, overrides, vsi_files):
    summary = _rescore(tmp_path, overrides, *vsi_files, "vsibench")
    m = summary["metrics"]
    assert m["mean_acc"] == pytest.approx(5 / 8)                       # 8 multiple-choice items
    assert m["mean_mra"] == pytest.approx((0.6 + 0.1 + 1.0 + 0.1 + 0.0) / 5)
    assert m["score"] == pytest.approx((0.625 + 0.36) / 2)             # VideoRFT: 0.4925
    # official: the three direction levels form one task (1 + 0 + 0.5) / 3, then the mean of 8 tasks
    tasks = [0.5, 1.0, 0.0, 1.0, (0.6 + 0.1) / 2, 1.0, 0.1, 0.0]
    assert m["score_task_mean"] == pytest.approx(sum(tasks) / 8)       # 0.49375
    scores = summary["breakdown"]["scores"]
    assert scores["object_rel_direction_hard"] == 0.5 and scores["object_counting"] == pytest.approx(0.35)
    assert list(scores)[:4] == ["object_counting", "object_abs_distance", "object_size_estimation",
                                "room_size_estimation"]
    assert summary["scoring"] == {"lenient_choice": False, "mra": "official"}
    rows = [json.loads(line) for line in (tmp_path / "run-0" / "scores.jsonl").read_text().splitlines()]
    assert [r["accuracy"] for r in rows] == pytest.approx([v[4] for v in VSI])
    assert rows[5]["answer"] == "B" and rows[12]["truth"] == "20"


def test_released_float32_mra_moves_vsibench(tmp_path, overrides, vsi_files):
    summary = _rescore(tmp_path, overrides, *vsi_files, "vsibench", "eval.released_mra=true")
    m = summary["metrics"]
    assert m["mean_mra"] == pytest.approx((0.5 + 0.0 + 1.0 + 0.0 + 0.0) / 5, abs=1e-6)
    assert m["score"] == pytest.approx((0.625 + 0.3) / 2, abs=1e-6)
    assert m["score_task_mean"] == pytest.approx((0.5 + 1 + 0 + 1 + 0.25 + 1 + 0 + 0) / 8, abs=1e-6)
    assert summary["scoring"]["mra"] == "released-float32"


def test_mvbench_per_task(tmp_path, overrides, make_record, clip_file, release_writer):
    folders = {1: "ssv2_video", 2: "ssv2_video", 201: "perception/videos", 3801: "FunQA_test/test",
               205: "clevrer/video_validation"}                          # 205 sits in action_count's block
    records = [make_record(pid, "What happens?", "multiple choice", f"./Evaluation/MVBench/{folder}/{pid}.mp4", "C",
                           MC[:3], original_question_type="") for pid, folder in folders.items()]
    completions = [(1, "<answer>C</answer>"), (2, "<answer>B</answer>"), (201, "<answer>C</answer>"),
                   (3801, "C"), (205, "<answer>A</answer>"), (9999, "<answer>C</answer>")]
    summary = _rescore(tmp_path, overrides, *_write(tmp_path, "mvbench", records, completions, clip_file,
                                                    release_writer), "mvbench")
    assert summary["metrics"]["score"] == pytest.approx(3 / 5)
    assert summary["breakdown"]["scores"] == {"action_antonym": 0.5, "action_count": 1.0, "unexpected_action": 1.0}
    assert summary["breakdown"]["counts"] == {"action_antonym": 2, "action_count": 1, "unexpected_action": 1}
    assert summary["breakdown"]["uncategorised"] == 1                   # its folder is not action_count's
    assert summary["unmatched_predictions"] == 1 and "score_task_mean" not in summary["metrics"]


def test_videomme_per_duration_and_lenient_letters(tmp_path, overrides, make_record, clip_file, release_writer):
    durations = {1: "short", 2: "short", 3: "medium", 4: "long", 5: "long"}
    records = [make_record(pid, "Which one?", "multiple choice", f"./Evaluation/VideoMME/{pid}.mp4", "B", MC,
                           duration=d, domain="Knowledge") for pid, d in durations.items()]
    completions = [(1, "<answer>B</answer>"), (2, "<answer>A</answer>"), (3, "<answer>B</answer>"),
                   (4, "<answer>(B)</answer>")]                          # record 5 has no completion
    files = _write(tmp_path, "videomme", records, completions, clip_file, release_writer)
    exact = _rescore(tmp_path, overrides, *files, "videomme")
    assert exact["metrics"]["score"] == pytest.approx(2 / 4) and exact["unanswered"] == 1
    assert exact["breakdown"]["scores"] == {"short": 0.5, "medium": 1.0, "long": 0.0}
    lenient = _rescore(tmp_path, overrides, *files, "videomme", "eval.lenient_choice=true")
    assert lenient["metrics"]["score"] == pytest.approx(3 / 4) and lenient["breakdown"]["scores"]["long"] == 1.0


def test_predictions_file_errors_name_the_line(tmp_path, overrides, vsi_files):
    data, predictions = vsi_files
    predictions.write_text(predictions.read_text() + '{"problem_id": 99, "compl')          # torn last line: dropped
    assert _rescore(tmp_path, overrides, data, predictions, "vsibench")["count"] == len(VSI)
    predictions.write_text('{"problem_id": 0}\n' + predictions.read_text())
    with pytest.raises(ValueError, match=r"predictions.jsonl:1: completion: missing"):
        _rescore(tmp_path, overrides, data, predictions, "vsibench")
