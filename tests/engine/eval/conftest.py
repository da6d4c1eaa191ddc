"""Shared set-up of the benchmark tests: the six benchmarks' evaluation files in the Video-R1 /
VideoRFT release layout (a few questions each, real videos encoded here), a tiny saved model, and
one tiny-model evaluation of each benchmark (run once per session, in this process).

The records copy the release files' field layout: VSI-Bench's `original_question_type` and null
options on numerical items, VideoMMMU's URL data_source and its three 300-question track blocks,
MMVU's videos/<subject>/ folders, MVBench's 200-question task blocks and its "frame" records,
VideoMME's twelve extra keys.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from videorft.engine.config import load_config

VIDEO = {"backend": "pyav", "fps": 2.0, "min_frames": 4, "max_frames": 4, "min_pixels": 3136, "max_pixels": 3136,
         "preprocess": "torch"}
"""4 frames of 56x56 per clip: 8 video tokens per prompt."""

MC = ["A. left", "B. right", "C. behind", "D. in front"]


def release_record(pid: int, problem: str, kind: str, path: str, answer: str, options=None, data_type="video",
                   data_source="", **extra) -> dict:
    """A record with the key set and order of the release's evaluation files."""
    return {"problem_id": pid, "problem": problem, "data_type": data_type, "problem_type": kind, **extra,
            "options": options, "process": "", "solution": f"<answer>{answer}</answer>", "path": path,
            "data_source": data_source}


def _videomme(pid: int, duration: str, answer: str) -> dict:
    vid = f"v{pid:03d}"
    fields = {"video_id": f"{pid:03d}", "duration": duration, "domain": "Knowledge", "sub_category": "Astronomy",
              "url": f"https://www.youtube.com/watch?v={vid}", "videoID": vid, "question_id": f"{pid:03d}-1",
              "task_type": "Counting Problem", "question": "How many planets are shown?", "options": MC,
              "answer": answer}
    record = release_record(pid, "How many planets are shown?", "multiple choice", f"./Evaluation/VideoMME/{vid}.mp4",
                            answer, MC, original_question_type="Counting Problem", subtitle="")
    return {**fields, **record}


RELEASE: dict[str, list[dict[str, Any]]] = {
    "vsibench": [
        release_record(0, "How many chair(s) are in this room?", "regression",
                       "./Evaluation/VSIBench/arkitscenes/41069025.mp4", "4", original_question_type="object_counting"),
        release_record(1, "What is the length of the longest dimension of the table, in centimeters?", "regression",
                       "./Evaluation/VSIBench/scannet/scene0011_00.mp4", "120",
                       original_question_type="object_size_estimation"),
        release_record(2, "If I stand by the sofa facing the TV, is the lamp to my left or right?", "multiple choice",
                       "./Evaluation/VSIBench/arkitscenes/41069025.mp4", "B", MC[:2],
                       original_question_type="object_rel_direction_easy"),
        release_record(3, "Which route reaches the door?", "multiple choice",
                       "./Evaluation/VSIBench/scannet/scene0011_00.mp4", "C", MC,
                       original_question_type="route_planning"),
    ],
    "videommmu": [
        release_record(1, "What kind of sugar is this?", "multiple choice", "./Evaluation/VideoMMMU/dev_Biology_3.mp4",
                       "A", ["A. aldose", "B. ketose"], original_question_type="multiple-choice",
                       data_source="https://www.youtube.com/watch?v=x1"),
        release_record(301, "Which compound follows?", "multiple choice", "./Evaluation/VideoMMMU/dev_Biology_3.mp4",
                       "B", ["A. ribose", "B. xylose"], original_question_type="multiple-choice",
                       data_source="https://www.youtube.com/watch?v=x1"),
        release_record(601, "How many carbon atoms does it have?", "numerical",
                       "./Evaluation/VideoMMMU/dev_Biology_3.mp4", "5", original_question_type="open",
                       data_source="https://www.youtube.com/watch?v=x1"),
    ],
    "mmvu": [
        release_record(1, "How many grams of precipitate form?", "multiple choice",
                       "./Evaluation/MMVU/videos/Chemistry/0.mp4", "A", ["A. 10.0", "B. 5.0", "C. 12.0"],
                       original_question_type="multiple-choice", data_source="https://www.youtube.com/watch?v=c"),
        release_record(2, "Which doctrine applies?", "multiple choice", "./Evaluation/MMVU/videos/Law/3.mp4", "B",
                       ["A. estoppel", "B. laches"], original_question_type="multiple-choice",
                       data_source="https://www.youtube.com/watch?v=l"),
    ],
    "mvbench": [
        {"video": "166583.webm", "question": "What is the action performed?", **release_record(
            1, "What is the action performed?", "multiple choice", "./Evaluation/MVBench/ssv2_video/166583.mp4",
            "C", ["A. Not sure", "B. Scattering something", "C. Piling something up"], original_question_type=""),
         "answer": "Piling something up", "subtitle": ""},
        {"video": "AJTDO.mp4", "question": "What will the person do next?", **release_record(
            601, "What will the person do next?", "multiple choice",
            "./Evaluation/MVBench/star/Charades_v1_480/AJTDO.mp4", "A", MC, original_question_type=""),
         "answer": "left", "subtitle": "", "start": 11.1, "end": 19.6},
        {"video": "castle_clip_14", "question": "Why did he dress up?", **release_record(
            1601, "Why did he dress up?", "multiple choice",
            "./Evaluation/MVBench/tvqa/frames_fps3_hq/castle_clip_14.mp4", "A", MC, original_question_type="",
            data_type="frame"), "answer": "left", "subtitle": "", "show_name": "Castle", "fps": 3},
    ],
    "tempcompass": [
        release_record(1, "In which direction is the car moving?", "multiple choice",
                       "./Evaluation/TempCompass/videos/1020474958.mp4", "B", MC, dim="direction"),
        release_record(2, "How fast does the car move?", "multiple choice",
                       "./Evaluation/TempCompass/videos/1020474958.mp4", "A", ["A. slowly", "B. quickly"], dim="speed"),
    ],
    "videomme": [_videomme(1, "short", "C"), _videomme(2, "medium", "A"), _videomme(3, "long", "D")],
}
"""A few questions of each benchmark in its release layout."""

CATEGORIES = {
    "vsibench": {"object_counting", "object_size_estimation", "object_rel_direction_easy", "route_planning"},
    "videommmu": {"Adaptation", "Comprehension", "Perception"},
    "mmvu": {"Science", "Humanities & Social Science"},
    "mvbench": {"action_antonym", "action_prediction", "episodic_reasoning"},
    "tempcompass": {"direction", "speed"},
    "videomme": {"short", "medium", "long"},
}
"""The breakdown each benchmark's fixture questions fall into."""


def write_release(root: Path, name: str, records: list[dict], clip: Path) -> Path:
    """Write eval_<name>.json (indent 4, as released) and a copy of `clip` at every record's path."""
    for record in records:
        target = root / record["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copyfile(clip, target)
    path = root / f"eval_{name}.json"
    path.write_text(json.dumps(records, indent=4), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def clip_file(tmp_path_factory) -> Path:
    """One real 2-second H.264 clip (8 frames of 64x64)."""
    from videorft.loaders.video_writer import encode_video, pattern_frames

    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    encode_video(path, pattern_frames(8, 64, 64, seed=3), fps=4)
    return path


@pytest.fixture(scope="session")
def release_root(tmp_path_factory, clip_file) -> Path:
    """A media root holding the six eval_<name>.json files and their videos."""
    root = tmp_path_factory.mktemp("video_r1_eval")
    for name, records in RELEASE.items():
        write_release(root, name, records, clip_file)
    return root


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random-weight tiny Qwen2.5-VL and its tokenizer, saved as a checkpoint."""
    from videorft.engine.models.init_stage import run as init_model

    out = tmp_path_factory.mktemp("tiny_model")
    cfg = load_config(None, [f"run.output_dir={out}", "run.device=cpu", "model.source=tiny", "model.dtype=float32",
                             "model.tiny.vision_depth=1", "run.progress=false"])
    init_model(cfg)
    return out


def eval_overrides(run_dir: Path, model: Path, data: Path, media_root: Path, benchmark: str,
                   *extra: str) -> list[str]:
    """Overrides of a CPU evaluation of the tiny model (greedy HF generate, 8 new tokens)."""
    video = [f"video.{k}={v}" for k, v in VIDEO.items()]
    return [f"run.output_dir={run_dir}", "run.device=cpu", "run.progress=false", "model.source=pretrained",
            f"model.path={model}", "model.dtype=float32", "model.attention=sdpa", *video,
            f"data.eval_file={data}", f"data.media_root={media_root}", "data.template=eval", "data.num_workers=0",
            "rollout.backend=hf", f"eval.benchmark={benchmark}", "eval.max_new_tokens=8", "eval.batch_size=1",
            *extra]
    # batch_size 1: answers do not depend on which records share a padded batch, so runs compare


@pytest.fixture(scope="session")
def overrides():
    """eval_overrides, for the tests."""
    return eval_overrides


@pytest.fixture(scope="session")
def tiny_evaluations(tmp_path_factory, release_root, tiny_model_dir) -> dict[str, Path]:
    """`videorft eval` of the tiny model on each of the six benchmarks: benchmark -> run directory."""
    from videorft.engine.eval.stage import run as evaluate

    out = tmp_path_factory.mktemp("tiny_evals")
    runs = {}
    for name in RELEASE:
        runs[name] = out / name
        evaluate(load_config(None, eval_overrides(runs[name], tiny_model_dir, release_root, release_root, name,
                                                  "eval.batch_size=2")))
    return runs


@pytest.fixture(scope="session")
def release_layout() -> dict[str, list[dict[str, Any]]]:
    """The fixture questions of each benchmark (release layout)."""
    return RELEASE


@pytest.fixture(scope="session")
def fixture_categories() -> dict[str, set[str]]:
    """The breakdown categories of each benchmark's fixture questions."""
    return CATEGORIES


@pytest.fixture(scope="session")
def make_record():
    """release_record, for tests that build their own files."""
    return release_record


@pytest.fixture(scope="session")
def release_writer():
    """write_release, for tests that build their own files."""
    return write_release
