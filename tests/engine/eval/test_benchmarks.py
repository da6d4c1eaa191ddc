"""The benchmark registry: each benchmark's breakdown read from the release layout, and the reader
that finds a benchmark's file in the release folder and checks its solutions."""

import json

import pytest

from videorft.engine.config import load_config
from videorft.engine.eval.benchmarks import (BENCHMARKS, MVBENCH_TASKS, PAPER_BENCHMARKS, get_benchmark,
                                             mvbench_task, numeric_id, videommmu_track)
from videorft.engine.eval.reader import eval_file, read_benchmark
from videorft.engine.eval.scoring import expected_items
from videorft.loaders.records import Record, RecordError


def _record(pid, path="./v.mp4", **extra):
    return Record(problem_id=pid, problem="?", problem_type="multiple choice", data_type="video", path=path,
                  solution="<answer>A</answer>", extra=extra)


def _cfg(root, *extra):
    return load_config(None, [f"data.eval_file={root}", f"data.media_root={root}", *extra])


def test_registry_lists_the_paper_columns_in_order():
    assert PAPER_BENCHMARKS == ("vsibench", "videommmu", "mmvu", "mvbench", "tempcompass", "videomme")
    assert [BENCHMARKS[b].title for b in PAPER_BENCHMARKS] == ["VSI-Bench", "VideoMMMU", "MMVU", "MVBench",
                                                               "TempCompass", "VideoMME"]
    with pytest.raises(ValueError, match="eval.benchmark 'vsi' is not one of"):
        get_benchmark("vsi")


@pytest.mark.parametrize("name", PAPER_BENCHMARKS)
def test_release_folder_gives_each_benchmark_its_breakdown(name, release_root, release_layout, fixture_categories):
    benchmark = get_benchmark(name)
    assert eval_file(_cfg(release_root), benchmark) == release_root / f"eval_{name}.json"
    records = read_benchmark(_cfg(release_root), benchmark)
    assert len(records) == len(release_layout[name]) and not records.skipped
    assert {benchmark.category(r) for r in records.records} == fixture_categories[name]
    assert all(r.media_path(release_root).is_file() for r in records.records)


def test_mvbench_frame_records_are_videos(release_root):
    records = read_benchmark(_cfg(release_root), get_benchmark("mvbench")).records
    episodic = [r for r in records if mvbench_task(r) == "episodic_reasoning"]
    assert [r.data_type for r in episodic] == ["video"] and episodic[0].extra["show_name"] == "Castle"


def test_mvbench_task_needs_its_block_and_its_folder():
    assert MVBENCH_TASKS[0] == "action_antonym" and MVBENCH_TASKS[-1] == "unexpected_action"
    assert mvbench_task(_record(1, "./Evaluation/MVBench/ssv2_video/1.mp4")) == "action_antonym"
    assert mvbench_task(_record(2, "./MVBench/video/ssv2_video_mp4/1.mp4")) == "action_antonym"
    assert mvbench_task(_record(401, "./Evaluation/MVBench/sta/sta_video/R.mp4")) == "action_localization"
    assert mvbench_task(_record(402, "./Evaluation/MVBench/star/Charades_v1_480/R.mp4")) is None   # star is not sta
    assert mvbench_task(_record(4001, "./Evaluation/MVBench/ssv2_video/1.mp4")) is None            # past the blocks
    assert mvbench_task(_record("x", "./a.mp4", task="scene_transition")) == "scene_transition"   # converted files


def test_videommmu_track_from_the_release_blocks():
    assert [videommmu_track(_record(i)) for i in (1, 300, 301, 600, 601, 900, 901)] == [
        "Adaptation", "Adaptation", "Comprehension", "Comprehension", "Perception", "Perception", None]
    assert videommmu_track(_record("test_Math_7", track="Perception")) == "Perception"
    assert numeric_id(_record("301#2")) == 301 and numeric_id(_record("eval_x-3")) is None


def test_reader_rejects_unscorable_solutions(tmp_path, release_root):
    rows = json.loads((release_root / "eval_videomme.json").read_text())
    rows[1]["solution"] = "<answer></answer>"
    path = tmp_path / "eval_videomme.json"
    path.write_text(json.dumps(rows, indent=4))
    with pytest.raises(RecordError, match=r"eval_videomme.json:\d+: solution: .*holds no answer"):
        read_benchmark(_cfg(tmp_path), get_benchmark("videomme"))
    records = read_benchmark(_cfg(tmp_path, "data.on_bad_record=skip"), get_benchmark("videomme"))
    assert len(records) == 2 and len(records.skipped) == 1


def test_a_short_file_is_flagged_unless_sampled(release_root):
    benchmark = get_benchmark("mvbench")
    records = read_benchmark(_cfg(release_root), benchmark)
    assert "3 records, the release has 4000" in expected_items(benchmark, records, None)
    assert expected_items(benchmark, records, max_samples=3) is None
    with pytest.raises(ValueError, match="eval.benchmark 'records' needs a record file"):
        eval_file(_cfg(release_root), get_benchmark("records"))
