"""Datasets and loaders built from a RunConfig, with the family and patch size of the model."""

import pytest
import torch

from videorft.engine.backends import resolve_backends
from videorft.engine.config import TinyModelConfig, load_config
from videorft.engine.models.tiny import build_tiny_model
from videorft.engine.datasets import build_dataset, build_stream, read_split


def _cfg(world, *extra):
    return load_config(None, [f"data.train_file={world / 'train.jsonl'}", f"data.eval_file={world / 'test.jsonl'}",
                              f"data.media_root={world}", "video.backend=pyav", "video.min_pixels=null",
                              "video.max_pixels=3136", "video.max_frames=4", "video.preprocess=torch",
                              "data.max_samples=4", *extra])


def test_read_split_uses_data_settings(small_world):
    cfg = _cfg(small_world)
    assert len(read_split(cfg, "train", require_process=True)) == 4
    assert len(read_split(cfg, "eval")) == 4
    with pytest.raises(ValueError, match="data.train_file"):
        read_split(load_config(None), "train")


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen2_vl", "qwen3_vl"])
def test_dataset_follows_the_model_family(small_world, bpe_tokenizer, family):
    cfg = _cfg(small_world, "data.system_prompt=none")
    model = build_tiny_model(TinyModelConfig(family=family), bpe_tokenizer).eval()
    ds = build_dataset(cfg, resolve_backends(cfg), bpe_tokenizer, read_split(cfg, "eval"), "prompt",
                       model_config=model.config)
    assert ds.spec.patch_size == (16 if family == "qwen3_vl" else 14)
    (batch,) = list(build_stream(cfg, ds, batch_size=4, layout="prompt"))
    text = bpe_tokenizer.decode(batch.samples[0].prompt_ids)
    assert ("seconds>" in text) == (family == "qwen3_vl") and not text.startswith("<|im_start|>system")
    inputs = batch.model_inputs()
    # only Qwen2.5-VL's forward takes the seconds per temporal patch; the batch carries what the
    # family's forward takes and nothing else
    assert ("second_per_grid_ts" in inputs) == (family == "qwen2_5_vl")
    with torch.no_grad():
        out = model(**inputs)
    assert out.logits.shape[:2] == batch.input_ids.shape


def test_grpo_prompts_reject_an_unscorable_record_when_read(small_world, tmp_path, bpe_tokenizer):
    """An empty <answer></answer> solution stops (or, with skip, leaves) the run at start-up, not mid-step."""
    import json

    from videorft.engine.backends import resolve_backends
    from videorft.engine.rewards import check_solution
    from videorft.engine.trainers.data import build_prompt_loader
    from videorft.engine.trainers.distributed import DistInfo
    from videorft.loaders.records import RecordError

    rows = [json.loads(line) for line in (small_world / "train.jsonl").read_text().splitlines()][:4]
    rows[2]["solution"] = "<answer></answer>"
    bad = tmp_path / "train.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = _cfg(small_world, f"data.train_file={bad}")
    model = build_tiny_model(TinyModelConfig(), bpe_tokenizer)
    info = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    with pytest.raises(RecordError, match=r"train.jsonl:3: solution"):
        build_prompt_loader(cfg, resolve_backends(cfg), bpe_tokenizer, model.config, info)
    cfg.data.on_bad_record = "skip"
    assert len(read_split(cfg, "train", validate=check_solution)) == 3
    assert len(read_split(cfg, "train")) == 4                               # without the check: read as written
