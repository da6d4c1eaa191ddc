"""`videorft eval` end to end: the tiny model answers each of the six benchmarks from its release
file, an interrupted evaluation resumes without losing or repeating a record, and two ranks under
torchrun split the records and rank 0 merges them into one eval.json."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from videorft.engine.config import load_config
from videorft.engine.eval.benchmarks import PAPER_BENCHMARKS
from videorft.engine.eval.stage import run as evaluate


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("name", PAPER_BENCHMARKS)
def test_tiny_model_answers_each_benchmark(name, tiny_evaluations, release_layout, fixture_categories):
    run_dir = tiny_evaluations[name]
    summary = json.loads((run_dir / "eval.json").read_text())
    n = len(release_layout[name])
    assert summary["benchmark"] == name and summary["count"] == summary["records"] == n
    assert summary["unanswered"] == summary["skipped_records"] == summary["unmatched_predictions"] == 0
    assert summary["decoding"] == {"backend": "hf", "greedy": True, "temperature": 0.1, "top_p": 0.001,
                                   "max_new_tokens": 8}
    assert summary["scoring"] == {"lenient_choice": False, "mra": "official"}
    assert set(summary["breakdown"]["scores"]) == fixture_categories[name]
    assert sum(summary["breakdown"]["counts"].values()) == n and summary["breakdown"]["uncategorised"] == 0
    predictions = _lines(run_dir / "predictions.jsonl")
    assert [p["problem_id"] for p in predictions] == [str(r["problem_id"]) for r in release_layout[name]]
    assert all(isinstance(p["completion"], str) for p in predictions)
    rows = _lines(run_dir / "scores.jsonl")
    non_reg = [r["accuracy"] for r in rows if r["problem_type"] != "regression"]
    reg = [r["accuracy"] for r in rows if r["problem_type"] == "regression"]
    parts = [sum(v) / len(v) for v in (non_reg, reg) if v]
    assert summary["metrics"]["score"] == pytest.approx(sum(parts) / len(parts))
    assert ("score_task_mean" in summary["metrics"]) == (name == "vsibench")


def test_rescoring_a_run_gives_its_numbers_without_a_model(tiny_evaluations, release_root, tmp_path, overrides):
    source = tiny_evaluations["mvbench"]
    cfg = load_config(None, overrides(tmp_path / "rescored", tmp_path / "no-model", release_root, release_root,
                                      "mvbench", f"eval.predictions={source / 'predictions.jsonl'}"))
    summary = evaluate(cfg)
    original = json.loads((source / "eval.json").read_text())
    assert summary["metrics"] == original["metrics"] and summary["breakdown"] == original["breakdown"]
    assert summary["rescored"] == str(source / "predictions.jsonl") and "decoding" not in summary


def test_interrupted_evaluation_resumes_by_unique_id(tmp_path, clip_file, tiny_model_dir, release_writer,
                                                    make_record, overrides):
    """A torn last line and a repeated id in the file: the rerun answers exactly the missing records."""
    options = ["A. red", "B. blue"]
    records = [make_record(5, "Which colour?", "multiple choice", "./v/a.mp4", "A", options),
               make_record(5, "Which colour now?", "multiple choice", "./v/a.mp4", "B", options),
               make_record(6, "How many?", "numerical", "./v/b.mp4", "3")]
    data = release_writer(tmp_path / "data", "records", records, clip_file)
    run_dir = tmp_path / "run"
    cfg = load_config(None, overrides(run_dir, tiny_model_dir, data, tmp_path / "data", "records"))
    first = evaluate(cfg)
    predictions = run_dir / "predictions.jsonl"
    full = predictions.read_text().splitlines()
    assert [json.loads(line)["problem_id"] for line in full] == ["5", "5#2", "6"]
    assert first["renamed_ids"] == 1 and first["count"] == 3
    predictions.write_text(full[0] + "\n" + full[1][:25])            # killed while writing the second
    second = evaluate(cfg)
    assert "rank 0: 2 of its 3 records to answer (1 answered before" in (run_dir / "run.log").read_text()
    assert predictions.read_text().splitlines() == full               # greedy: the same answers, once each
    assert second["metrics"] == first["metrics"] and second["by_source"] == first["by_source"]
    third = evaluate(cfg)                                              # nothing left: no model is loaded
    assert "rank 0: 0 of its 3 records to answer" in (run_dir / "run.log").read_text()
    assert third["metrics"] == first["metrics"]


@pytest.mark.slow
def test_two_ranks_split_the_records_and_rank_0_merges(tmp_path, release_root, tiny_model_dir, overrides,
                                                       release_layout):
    """torchrun --nproc_per_node 2 on CPU (gloo): each rank answers every other record."""
    run_dir = tmp_path / "ddp"
    config = tmp_path / "eval.yaml"
    pairs = [o.split("=", 1) for o in overrides(run_dir, tiny_model_dir, release_root, release_root, "vsibench")]
    tree: dict = {}
    for key, value in pairs:
        section, field = key.split(".", 1)
        tree.setdefault(section, {})[field.replace(".", "_")] = yaml.safe_load(value)
    config.write_text(yaml.safe_dump(tree))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "videorft.engine.cli", "eval", "--config", str(config)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
    assert "rank 0: 2 of its 2 records to answer" in out.stderr and "rank 1: 2 of its 2 records" in out.stderr
    summary = json.loads((run_dir / "eval.json").read_text())
    assert summary["world_size"] == 2 and summary["count"] == summary["records"] == 4
    ids = [json.loads(line)["problem_id"] for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert ids == [str(r["problem_id"]) for r in release_layout["vsibench"]]         # merged in record order
    assert not list(run_dir.glob("predictions.rank*.jsonl"))
    assert set(summary["breakdown"]["scores"]) == {"object_counting", "object_size_estimation",
                                                   "object_rel_direction_easy", "route_planning"}


def test_7b_recipe_evaluates_as_released():
    from pathlib import Path

    from videorft.engine.eval.generate import decoding_for

    cfg = load_config(Path(__file__).resolve().parents[3] / "recipes" / "qwen2_5_vl_7b" / "eval.yaml")
    assert (cfg.video.min_frames, cfg.video.max_frames) == (32, 32)
    assert (cfg.video.min_pixels, cfg.video.max_pixels) == (256 * 28 * 28, int(256 * 28 * 28 * 1.05))
    assert (cfg.data.template, cfg.data.system_prompt, cfg.rollout.backend) == ("eval", "default", "vllm")
    vllm = decoding_for(cfg.eval, "vllm")
    assert (vllm.greedy, vllm.temperature, vllm.top_p, vllm.max_new_tokens) == (False, 0.1, 0.001, 1024)
    assert decoding_for(cfg.eval, "hf").greedy                                   # HF decodes greedily
    cfg.eval.temperature = 0.0
    assert decoding_for(cfg.eval, "vllm").greedy


def test_vllm_gets_chunks_of_decoded_clips_and_no_hf_model(tiny_model_dir, release_root, tmp_path, overrides):
    """What the vLLM engine is handed, built on CPU: the tokenizer and config only, whole chunks of
    prompts with their clips, and no patch rows (vLLM preprocesses the frames itself)."""
    import dataclasses

    import torch

    from videorft.engine.backends import resolve_backends
    from videorft.engine.eval.benchmarks import get_benchmark
    from videorft.engine.eval.generate import load_policy, prompt_batches
    from videorft.engine.eval.reader import read_benchmark
    from videorft.engine.datasets import build_dataset

    cfg = load_config(None, overrides(tmp_path, tiny_model_dir, release_root, release_root, "vsibench",
                                      "eval.batch_size=3"))
    backends = dataclasses.replace(resolve_backends(cfg), rollout="vllm")
    model, tokenizer, config = load_policy(cfg, backends, torch.device("cpu"))
    assert model is None and config.model_type == "qwen2_5_vl" and tokenizer.eos_token
    records = read_benchmark(cfg, get_benchmark("vsibench"))
    dataset = build_dataset(cfg, backends, tokenizer, records, "prompt", model_config=config)
    _, batches, total = prompt_batches(cfg, dataset, "vllm")
    chunks = list(batches)
    assert total == 2 and [len(c) for c in chunks] == [3, 1]
    sample = chunks[0].samples[0]
    assert sample.pixel_values.numel() == 0 and sample.clip.frames.shape[0] == 4
    assert chunks[0].prompt_texts[0].count("<|video_pad|>") == 1 and "C. behind\nD. in front\n\nPlease think" \
        in chunks[1].prompt_texts[0]


def test_the_next_chunk_is_assembled_ahead_and_errors_reach_the_caller():
    from videorft.engine.eval.generate import one_ahead

    def chunks():
        yield "first"
        raise OSError("disk gone")

    ahead = one_ahead(chunks())
    assert next(ahead) == "first"
    with pytest.raises(OSError, match="disk gone"):
        next(ahead)
    assert list(one_ahead(iter(range(5)))) == [0, 1, 2, 3, 4]
