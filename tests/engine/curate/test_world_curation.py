"""Curation on the synthetic world (the `world` backend): drops by reason, the "without revision"
ablation, shards and merge, the representation schema and its one retry, stage-file recovery."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from videorft.engine.config import load_config
from videorft.engine.config_loader import ConfigError
from videorft.engine.curate.backends.base import Backend
from videorft.engine.curate.backends.retry import backoff_seconds, retry_after_seconds, retryable_status
from videorft.engine.curate.backends.world_caption import world_representation
from videorft.engine.curate.handlers import represent
from videorft.engine.curate.pool import read_pool
from videorft.engine.curate.representation import RepresentationError, parse_representation
from videorft.engine.curate.requests import Completion
from videorft.engine.curate.stage import check_stages, curate
from videorft.engine.curate.store import StageFile
from videorft.engine.rewards import format_reward
from videorft.loaders.records import read_records
from videorft.loaders.synth.scene import Scene

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "tiny" / "curate.yaml"


def world_cfg(world: Path, out: Path, *extra: str):
    return load_config(RECIPE, [f"data.media_root={world}", f"curate.input_file={world / 'train.jsonl'}",
                                f"curate.output_dir={out}", f"run.output_dir={out}", "run.progress=false",
                                "curate.world.mistake_rate=0.5", "curate.world.leak_rate=0.5", *extra])


@pytest.fixture(scope="module")
def curated(easy_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("world_curation")
    return out, curate(world_cfg(easy_world, out))


def test_world_curation_keeps_right_leak_free_chains_as_sft_records(curated):
    out, stats = curated
    filt = stats["filter"]
    assert filt["kept"] + sum(filt["dropped"].values()) == filt["total"] == 24
    assert filt["dropped"].get("wrong_answer", 0) > 0 and "leak" not in filt["dropped"]
    records = read_records(out / "cot.jsonl", require_process=True).records
    assert len(records) == filt["kept"]
    for r in records:
        assert format_reward(f"{r.process} {r.solution}") == 1.0
        assert "metadata" not in r.process and "00:00" not in r.process
    rows = [json.loads(line) for line in (out / "filter.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rows if not r["kept"]].count("wrong_answer") == filt["dropped"]["wrong_answer"]


def test_rerun_of_a_finished_curation_makes_no_call(curated, easy_world):
    out, _ = curated
    before = {p.name: p.read_bytes() for p in out.glob("*.jsonl")}
    stats = curate(world_cfg(easy_world, out))
    assert all(s["requests"] == 0 and s["cache_hits"] == 0 for s in stats["stages"].values())
    assert before == {p.name: p.read_bytes() for p in out.glob("*.jsonl")}


def test_without_revision_the_filter_drops_the_leaks(easy_world, tmp_path, curated):
    stats = curate(world_cfg(easy_world, tmp_path, "curate.stages=[represent,reason,filter]"))
    assert stats["filter"]["dropped"].get("leak", 0) > 0
    assert stats["filter"]["kept"] < curated[1]["filter"]["kept"]


def test_shards_merge_into_the_unsharded_result(easy_world, tmp_path, curated):
    from videorft.engine.cli import main

    overrides = [f"data.media_root={easy_world}", f"curate.input_file={easy_world / 'train.jsonl'}",
                 f"curate.output_dir={tmp_path}", f"run.output_dir={tmp_path}", "run.progress=false",
                 "curate.world.mistake_rate=0.5", "curate.world.leak_rate=0.5"]
    for i in range(2):
        curate(world_cfg(easy_world, tmp_path, f"curate.shard={i}/3"))
    assert main(["curate", "--merge", "--config", str(RECIPE), *overrides]) == 2      # shard 2 has not run
    curate(world_cfg(easy_world, tmp_path, "curate.shard=2/3"))
    sizes = [len((tmp_path / "shards" / f"{i}-of-3" / "represent.jsonl").read_text().splitlines()) for i in range(3)]
    assert sum(sizes) == 24 and min(sizes) > 0
    assert main(["curate", "--merge", "--config", str(RECIPE), *overrides]) == 0
    assert (tmp_path / "cot.jsonl").read_bytes() == (curated[0] / "cot.jsonl").read_bytes()
    assert json.loads((tmp_path / "stats.json").read_text())["filter"] == curated[1]["filter"]


def test_stage_list_and_shard_are_checked():
    with pytest.raises(ConfigError, match="needs 'reason'"):
        check_stages(["represent", "revise"])
    with pytest.raises(ConfigError, match="pipeline order"):
        check_stages(["reason", "represent"])
    from videorft.engine.curate.pool import parse_shard
    with pytest.raises(ConfigError, match="curate.shard"):
        parse_shard("3/3")


def test_duplicate_questions_are_dropped_before_any_call(easy_world, tmp_path):
    lines = (easy_world / "train.jsonl").read_text().splitlines()[:4]
    twin = json.loads(lines[0])
    twin["problem_id"] = "copy"
    twin["problem"] = "  " + twin["problem"].upper()
    (tmp_path / "pool.jsonl").write_text("\n".join(lines + [json.dumps(twin)]) + "\n")
    pool = read_pool(str(tmp_path / "pool.jsonl"))
    assert len(pool.samples) == 4 and pool.duplicates == 1


def test_representation_errors_name_the_field():
    scene_doc = {"video_caption": "x", "frames": [{"timestamp": "00:00:01", "caption": "c", "key_elements": {
        "objects": "circle", "actions": [], "scene": "grey", "notable_features": [], "spatial_relations": [],
        "human_attributes": None, "potential_interactions": []}}]}
    with pytest.raises(RepresentationError, match=r"frames\[0\].key_elements.objects"):
        parse_representation(json.dumps(scene_doc), 1)
    scene_doc["frames"][0]["key_elements"]["objects"] = ["circle"]
    assert parse_representation("```json\n" + json.dumps(scene_doc) + "\n```", 1).frames[0].caption == "c"
    with pytest.raises(RepresentationError, match="expected 2 entries"):
        parse_representation(json.dumps(scene_doc), 2)
    with pytest.raises(RepresentationError, match="does not parse"):
        parse_representation("{'video_caption': 1}", 1)


class FirstAnswerBroken(Backend):
    """A model that forgets the closing brace the first time and gets it right when told."""

    def __init__(self, scene: Scene):
        self.scene, self.seen = scene, []

    async def complete(self, request):
        self.seen.append(request.messages)
        text = json.dumps(world_representation(self.scene, request.frames.indices, request.frames.timestamps))
        return Completion(text=text[:-1] if len(self.seen) == 1 else text)


def test_invalid_representation_is_retried_once_with_the_error(easy_world):
    cfg = world_cfg(easy_world, easy_world / "unused")
    sample = read_pool(str(easy_world / "train.jsonl")).samples[0]
    scene = Scene.from_dict(json.loads((easy_world / "scenes" / f"{sample.record.problem_id}.json").read_text()))
    model = FirstAnswerBroken(scene)
    row = asyncio.run(represent(sample, cfg.curate.represent, str(easy_world), model.complete, {}))
    assert row["status"] == "ok" and len(model.seen) == 2
    assert "could not be used" in model.seen[1][-1]["content"]


def test_stage_file_cuts_a_torn_line_and_refuses_duplicates(tmp_path):
    path = tmp_path / "reason.jsonl"
    path.write_text('{"id": "a", "status": "ok"}\n{"id": "b", "sta')
    store = StageFile(path)
    assert "a" in store and "b" not in store
    store.append({"id": "b", "status": "ok"})
    with pytest.raises(ValueError, match="already has a line"):
        store.append({"id": "a", "status": "ok"})
    store.compact(["b", "a"])
    store.close()
    assert [json.loads(x)["id"] for x in path.read_text().splitlines()] == ["b", "a"]


def test_retry_policy():
    assert retryable_status(429) and retryable_status(503) and retryable_status(500)
    assert not retryable_status(400) and not retryable_status(401)
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert backoff_seconds(0, 0.01, retry_after=3.0) == 3.0
    import random
    delays = [backoff_seconds(a, 1.0, rng=random.Random(a)) for a in range(10)]
    assert 0.5 <= delays[0] < 1.5 and all(d < 90 for d in delays) and delays[3] > delays[0]


def test_unreadable_video_is_counted_and_the_rest_curated(easy_world, tmp_path):
    """A file that is not a video finishes its sample as unusable; the others are curated."""
    world = tmp_path / "world"
    (world / "videos").mkdir(parents=True)
    (world / "scenes").symlink_to(easy_world / "scenes")
    for video in (easy_world / "videos").iterdir():
        (world / "videos" / video.name).symlink_to(video)
    lines = (easy_world / "train.jsonl").read_text().splitlines()[:3]
    broken = json.loads(lines[1])
    broken["path"] = "./videos/garbage.mp4"
    (world / "videos" / "garbage.mp4").write_bytes(b"not a video")
    (world / "train.jsonl").write_text("\n".join([lines[0], json.dumps(broken), lines[2]]) + "\n")
    stats = curate(world_cfg(world, tmp_path / "out"))
    assert stats["stages"]["represent"]["invalid"] == 1
    assert stats["filter"]["dropped"]["no_representation"] == 1 and stats["filter"]["total"] == 3
    row = json.loads((tmp_path / "out" / "represent.jsonl").read_text().splitlines()[1])
    assert "garbage.mp4" in row["error"]


def test_free_form_answers_are_judged_by_text_similarity(tmp_path):
    """Free-form chains pass through the SigLIP text tower: the world's own description is kept,
    an unrelated answer is dropped as low_similarity; without an encoder the run refuses to start."""
    from videorft.engine.config import CurateFilterConfig, SynthConfig
    from videorft.engine.curate.chain_filter import AnswerSimilarity, judge
    from videorft.engine.encoder.tiny_siglip import write_untrained_encoder
    from videorft.loaders.synth.world import generate_world

    world = tmp_path / "world"
    generate_world(SynthConfig(output_dir=str(world), num_train=4, num_test=1, seed=2, width=112, height=112,
                               duration_s=3.0, difficulty="medium", max_objects=2, question_kinds=["describe"]))
    encoder = str(write_untrained_encoder(tmp_path / "siglip", seed=0))
    with pytest.raises(ConfigError, match="encoder_path"):
        curate(world_cfg(world, tmp_path / "none", "curate.world.mistake_rate=0"))
    stats = curate(world_cfg(world, tmp_path / "out", "curate.world.mistake_rate=0", "curate.world.leak_rate=0",
                             f"curate.filter.encoder_path={encoder}", "curate.filter.semantic_threshold=0.99"))
    assert stats["filter"]["kept"] == 4
    sample = read_pool(str(world / "train.jsonl")).samples[0]
    similarity = AnswerSimilarity(encoder)
    strict = CurateFilterConfig(semantic_threshold=0.99)
    think = "I see two shapes on a grey background and follow each one until the end of the clip."
    reason, score = judge(sample, think, "Nothing at all happens in this empty room.", strict, similarity)
    assert reason == "low_similarity" and score < 0.99


def test_report_prints_the_curation_table_first(curated, tmp_path, capsys):
    from videorft.engine import report

    out, stats = curated
    evals = {}
    for label, acc in (("sft", 0.5), ("grpo", 0.6)):
        (tmp_path / label).mkdir()
        (tmp_path / label / "eval.json").write_text(json.dumps({"metrics": {"accuracy": acc, "format": 1.0}}))
        evals[label] = str(tmp_path / label)
    cfg = load_config(None, [f"run.output_dir={tmp_path / 'report'}", f"report.output_file={tmp_path / 'r.json'}",
                             f"report.curation={out / 'stats.json'}", "report.columns=[accuracy,format]"])
    cfg.report.evaluations = evals
    report.run(cfg)
    printed = capsys.readouterr().out
    assert printed.index("dropped: wrong_answer") < printed.index("grpo   0.600")
    assert json.loads((tmp_path / "r.json").read_text())["curation"]["filter"] == stats["filter"]
    cfg.report.curation = str(tmp_path / "missing.json")
    with pytest.raises(FileNotFoundError, match="report.curation"):
        report.run(cfg)


@pytest.mark.parametrize("name", ["curate.yaml", "sft.yaml", "grpo.yaml", "eval_sft.yaml", "eval_grpo.yaml"])
def test_without_revision_recipe_differs_from_the_tiny_pipeline_only_in_revision(name):
    """recipes/tiny_norevise repeats the tiny pipeline's settings; only its paths and the stage list differ."""
    from videorft.engine.config_loader import to_dict

    recipes = RECIPE.parents[1]
    tiny, ablation = (to_dict(load_config(recipes / folder / name)) for folder in ("tiny", "tiny_norevise"))
    if name == "curate.yaml":
        assert ablation["curate"]["stages"] == [s for s in tiny["curate"]["stages"] if s != "revise"]
        ablation["curate"]["stages"] = tiny["curate"]["stages"]
    same = json.dumps(ablation).replace("runs/tiny_norevise/", "runs/tiny/").replace("tiny-norevise-", "tiny-")
    assert json.loads(same) == tiny
