"""The tiny SigLIP: tokenizer, sigmoid loss, training on shapes, save/load round trip, the stage."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoProcessor, SiglipModel

from videorft.engine.config import EncoderTrainConfig, load_config
from videorft.engine.encoder import build_caption_tokenizer, build_tiny_siglip, pair_accuracy, sigmoid_pair_loss
from videorft.engine.encoder.shapes import shape_pairs
from videorft.engine.encoder.stage import held_out_accuracy, run
from videorft.engine.encoder.train import batch_loss, caption_groups, tokenize
from videorft.engine.rewards import SemanticScorer

ROOT = Path(__file__).resolve().parents[3]


def test_caption_tokenizer_lowercases_pads_and_truncates():
    tok = build_caption_tokenizer(["a red circle on the left"], vocab_size=400, max_length=64)
    upper, lower = tok("A RED Circle")["input_ids"], tok("a red circle")["input_ids"]
    assert upper == lower and upper[-1] == tok.eos_token_id
    assert tok.pad_token_id == 0 and tok.eos_token_id == 1
    assert tok.model_max_length == 64
    ids = tokenize(tok, ["short", "word " * 200, "ünïcödé 红色 3.5"], 64)
    assert ids.shape == (3, 64)
    assert ids[0, -1] == tok.pad_token_id and ids[1, -1] == tok.eos_token_id  # padded; cut keeps </s>
    assert (ids[2] > 1).sum() > 3                                             # non-ASCII text encodes
    assert set(tok(["x"], return_tensors="pt")) == {"input_ids"}


def test_sigmoid_loss_matches_siglip_reference_on_distinct_captions():
    cfg = EncoderTrainConfig(hidden_size=32, intermediate_size=64, num_heads=2)
    model = build_tiny_siglip(cfg, vocab_size=300, seed=1)
    ids = torch.randint(2, 300, (5, 64))
    pixels = torch.randn(5, 3, cfg.image_size, cfg.image_size)
    reference = model(input_ids=ids, pixel_values=pixels, return_loss=True).loss
    ours = batch_loss(model, pixels, ids, torch.arange(5))
    assert torch.allclose(ours, reference, rtol=1e-5, atol=1e-5)


def test_repeated_captions_are_positives():
    logits = torch.tensor([[2.0, 2.0, -3.0]])  # one distinct text vs three images
    same = torch.tensor([[True, True, False]])
    expected = -(torch.nn.functional.logsigmoid(torch.tensor(2.0)) * 2 + torch.nn.functional.logsigmoid(torch.tensor(3.0)))
    assert torch.allclose(sigmoid_pair_loss(logits, same), expected)
    assert caption_groups(["A red", "a red ", "blue"]).tolist() == [0, 0, 1]


def test_pair_accuracy_counts_wins():
    eye = torch.eye(3)
    captions = ["a", "b", "c"]
    assert pair_accuracy(eye, eye, captions) == 1.0
    assert pair_accuracy(eye, eye[[1, 2, 0]], captions) == 0.0
    with pytest.raises(ValueError, match="two different captions"):
        pair_accuracy(eye[:2], eye[:2], ["same", "same"])


def test_trained_encoder_prefers_matching_captions(trained_encoder):
    """The acceptance bar: on held-out pairs the matching caption wins at least 90% of the time."""
    assert trained_encoder.result["final_loss"] < 0.5 * trained_encoder.result["first_loss"]
    scorer = SemanticScorer(trained_encoder.path)
    accuracy = held_out_accuracy(scorer, *trained_encoder.held_out)
    assert accuracy >= 0.9, accuracy


def test_saved_encoder_loads_like_a_siglip_checkpoint(trained_encoder):
    model = SiglipModel.from_pretrained(trained_encoder.path).eval()
    processor = AutoProcessor.from_pretrained(trained_encoder.path)
    assert type(processor).__name__ == "SiglipProcessor"
    frames, captions = trained_encoder.held_out
    inputs = processor(text=captions[:4], images=list(frames[:4]), padding="max_length", return_tensors="pt")
    assert inputs["input_ids"].shape == (4, 64)
    with torch.no_grad():
        out = model(input_ids=inputs["input_ids"], pixel_values=inputs["pixel_values"])
    scorer = SemanticScorer(trained_encoder.path, frame_preprocess="processor")
    assert torch.allclose(scorer.embed_texts(captions[:4]), out.text_embeds, atol=1e-5)
    assert torch.allclose(scorer.embed_frames(torch.from_numpy(frames[:4])), out.image_embeds, atol=1e-5)


def small_pairs(world_dir: str, split: str, frames_per_video: int):
    assert world_dir == "world-under-test" and frames_per_video == 8
    return shape_pairs(64 if split == "train" else 24, size=32, seed=0 if split == "train" else 1)


def test_stage_writes_a_run_directory(tmp_path):
    cfg = load_config(ROOT / "recipes/tiny/encoder.yaml", [
        f"run.output_dir={tmp_path / 'enc'}", "run.tensorboard=false", "run.progress=false",
        "run.log_every=1", "encoder.world_dir=world-under-test", "encoder.steps=3", "encoder.batch_size=16"])
    result = run(cfg, pairs=small_pairs)
    out = tmp_path / "enc"
    for name in ("config.yaml", "backends.json", "metrics.jsonl", "config.json", "model.safetensors",
                 "tokenizer.json", "preprocessor_config.json"):
        assert (out / name).exists(), name
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "encoder/loss" in r] == [0, 1, 2]
    assert result["path"] == str(out)
    _assert_reports_the_saved_encoder(result, rows, small_pairs("world-under-test", "test", 8))


def _assert_reports_the_saved_encoder(result, rows, held_out):
    """The stage's accuracy is the held-out split's, scored by the encoder as saved (and logged)."""
    again = held_out_accuracy(SemanticScorer(result["path"]), *held_out, seed=0)
    assert result["pair_accuracy"] == pytest.approx(again, abs=1e-9)
    assert rows[-1]["encoder/pair_accuracy"] == pytest.approx(result["pair_accuracy"], abs=1e-9)


def test_recipe_and_config_section():
    cfg = load_config(ROOT / "recipes/tiny/encoder.yaml")
    assert cfg.encoder.max_text_tokens == 64 and cfg.encoder.image_size % cfg.encoder.patch_size == 0
    with pytest.raises(ValueError, match="encoder.lr"):
        load_config(None, ["encoder.lr=fast"])


def test_image_size_must_fit_patches():
    with pytest.raises(ValueError, match="patch_size"):
        build_tiny_siglip(EncoderTrainConfig(image_size=30, patch_size=8), vocab_size=100)


def test_shape_pairs_are_reproducible():
    a, ca = shape_pairs(5, size=32, seed=3)
    b, cb = shape_pairs(5, size=32, seed=3)
    assert a.dtype == np.uint8 and a.shape == (5, 32, 32, 3)
    assert np.array_equal(a, b) and ca == cb


def test_stage_reads_a_real_synthetic_world(tmp_path):
    from videorft.engine.config import SynthConfig
    from videorft.engine.encoder.stage import world_pairs
    from videorft.loaders.synth.world import generate_world

    world = tmp_path / "world"
    generate_world(SynthConfig(output_dir=str(world), num_train=6, num_test=3, seed=2, width=64, height=64,
                               fps=8, duration_s=2.0, difficulty="easy"))
    frames, captions = world_pairs(str(world), "train", 4)
    assert frames.dtype == np.uint8 and frames.shape == (24, 64, 64, 3) and len(captions) == 24
    assert all(c.startswith("a ") for c in captions)
    cfg = load_config(ROOT / "recipes/tiny/encoder.yaml", [
        f"run.output_dir={tmp_path / 'enc'}", "run.tensorboard=false", "run.progress=false",
        f"encoder.world_dir={world}", "encoder.frames_per_video=4", "encoder.steps=2", "encoder.batch_size=8"])
    result = run(cfg)
    assert (tmp_path / "enc" / "model.safetensors").exists()
    rows = [json.loads(line) for line in (tmp_path / "enc" / "metrics.jsonl").read_text().splitlines()]
    _assert_reports_the_saved_encoder(result, rows, world_pairs(str(world), "test", 4))
    with pytest.raises(FileNotFoundError, match="synth"):
        world_pairs(str(tmp_path / "missing"), "train", 4)
