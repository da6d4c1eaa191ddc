"""Scoring a whole group: the sum, switches, the accuracy gate, the length bonus."""

import numpy as np
import pytest
import torch

from videorft.engine.config import LengthBonusConfig, RewardConfig, load_config
from videorft.engine.encoder.shapes import shape_pairs
from videorft.engine.rewards import (
    EVALUATION,
    GroupScorer,
    SemanticScorer,
    accuracy_reward,
    format_reward,
    length_bonus,
    reasoning_span,
)
from videorft.loaders.clip import VideoClip

RIGHT = "<think>The question asks which shape. A red circle on the left. It stays.</think><answer>B</answer>"
WRONG = "<think>The question asks which shape. A red circle on the left. It stays.</think><answer>C</answer>"
SLOPPY = "Answer: <think>A red circle on the left.</think><answer>B</answer>"


def reward_config(**changes) -> RewardConfig:
    overrides = [f"rewards.{k}={v}" for k, v in changes.items()]
    return load_config(None, overrides).rewards


def clip_of(caption_seed: int = 0) -> VideoClip:
    frames, _ = shape_pairs(16, size=64, seed=caption_seed)
    return VideoClip(frames=torch.from_numpy(frames), indices=list(range(16)),
                     timestamps=[i / 4 for i in range(16)], fps=4.0, total_frames=16)


@pytest.mark.parametrize("accuracy,lengths,expected", [
    # two correct in the window -> both get the bonus
    ([1, 1, 0, 0], [400, 320, 400, 400], [0.2, 0.2, 0, 0]),
    # only one correct -> nobody gets it
    ([1, 0, 0, 0], [400, 400, 400, 400], [0, 0, 0, 0]),
    # window is inclusive at both ends, outside gets nothing
    ([1, 1, 1, 1], [319, 320, 512, 513], [0, 0.2, 0.2, 0]),
    # correct means accuracy above 0.1 (partial OCR / free-form credit counts)
    ([0.1, 0.11, 0.5, 0.05], [400, 400, 400, 400], [0, 0.2, 0.2, 0]),
])
def test_length_bonus_rules(accuracy, lengths, expected):
    got = length_bonus(torch.tensor(accuracy, dtype=torch.float32), torch.tensor(lengths), LengthBonusConfig())
    assert torch.allclose(got, torch.tensor(expected, dtype=torch.float32))


def test_length_bonus_settings_are_used():
    cfg = LengthBonusConfig(bonus=0.5, min_tokens=10, max_tokens=20, correct_threshold=0.0, min_correct=3)
    acc = torch.tensor([1.0, 1.0, 1.0, 0.0])
    assert length_bonus(acc, torch.tensor([15, 25, 10, 15]), cfg).tolist() == [0.5, 0.0, 0.5, 0.0]
    assert length_bonus(acc[:2], torch.tensor([15, 15]), cfg).tolist() == [0.0, 0.0]


def test_text_rewards_sum_without_semantic():
    scorer = GroupScorer(reward_config(functions="[accuracy,format]"))
    completions = [RIGHT, WRONG, SLOPPY, ""]
    out = scorer.score_group(completions, [400, 400, 400, 1], "<answer>B</answer>", "multiple choice")
    assert out.per_function["accuracy"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert out.per_function["format"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert out.per_function["length_bonus"].tolist() == pytest.approx([0.2, 0.0, 0.2, 0.0])
    assert out.total.tolist() == pytest.approx([2.2, 1.0, 1.2, 0.0])
    assert "semantic" not in out.per_function and out.total.dtype == torch.float32


def test_switches_remove_terms_from_the_total():
    completions = [RIGHT, RIGHT, WRONG]
    only_format = GroupScorer(reward_config(functions="[format]", **{"length_bonus.enabled": "false"}))
    out = only_format.score_group(completions, [400] * 3, "<answer>B</answer>", "multiple choice")
    assert out.total.tolist() == [1.0, 1.0, 1.0]
    assert out.per_function["accuracy"].tolist() == [1.0, 1.0, 0.0]  # still logged
    assert "length_bonus" not in out.per_function


def test_semantic_gate_and_sum(untrained_encoder):
    semantic = SemanticScorer(untrained_encoder, weight=50.0, pooling="per-frame")
    clip = clip_of()
    video = semantic.embed_video(clip)
    completions = [RIGHT, WRONG, RIGHT.replace("red circle", "blue square"), WRONG.replace("circle", "cube")]
    ungated = semantic.score([reasoning_span(c) for c in completions], video)
    assert min(ungated) > 0  # large w makes every positive cosine count; the gate must do the zeroing

    gated = GroupScorer(reward_config(), semantic=semantic)
    out = gated.score_group(completions, [100] * 4, "<answer>B</answer>", "multiple choice", video)
    acc = [accuracy_reward(c, "<answer>B</answer>", "multiple choice") for c in completions]
    assert out.per_function["semantic"].tolist() == pytest.approx([u if a > 0 else 0.0 for u, a in zip(ungated, acc)])
    expected_total = [a + format_reward(c) + s for a, c, s in
                      zip(acc, completions, out.per_function["semantic"].tolist())]
    assert out.total.tolist() == pytest.approx(expected_total)
    assert out.per_function["length_bonus"].tolist() == [0.0] * 4   # 100 tokens: outside the window

    open_gate = GroupScorer(reward_config(**{"semantic.gate_on_accuracy": "false"}), semantic=semantic)
    out = open_gate.score_group(completions, [100] * 4, "<answer>B</answer>", "multiple choice", video)
    assert out.per_function["semantic"].tolist() == pytest.approx(ungated)


def test_semantic_is_zero_without_a_video(untrained_encoder):
    scorer = GroupScorer(reward_config(), semantic=SemanticScorer(untrained_encoder))
    out = scorer.score_group([RIGHT, RIGHT], [400, 400], "<answer>B</answer>", "multiple choice", None)
    assert out.per_function["semantic"].tolist() == [0.0, 0.0]
    assert scorer.embed_video(None) is None


def test_from_config_loads_the_encoder(untrained_encoder):
    cfg = reward_config(**{"semantic.encoder_path": untrained_encoder, "semantic.pooling": "per-frame",
                           "semantic.num_frames": 4})
    scorer = GroupScorer.from_config(cfg)
    assert scorer.semantic.pooling == "per-frame" and scorer.semantic.num_frames == 4
    assert scorer.embed_video(clip_of()).shape == (4, 64)


def test_bad_configs_name_the_field():
    with pytest.raises(ValueError, match="encoder_path"):
        GroupScorer.from_config(reward_config())
    with pytest.raises(ValueError, match="rewards.functions.*did you mean 'format'"):
        GroupScorer(reward_config(functions="[accuracy,formatt]"))
    with pytest.raises(ValueError, match="listed twice"):
        GroupScorer(reward_config(functions="[accuracy,accuracy]"))
    with pytest.raises(ValueError, match="SemanticScorer"):
        GroupScorer(reward_config())
    scorer = GroupScorer(reward_config(functions="[accuracy]"))
    with pytest.raises(ValueError, match="lengths"):
        scorer.score_group([RIGHT, RIGHT], [1], "B", "multiple choice")
    with pytest.raises(ValueError, match="problem_type"):
        scorer.score_group([RIGHT], [1], "B", "mcq")


def test_evaluation_rules_flow_through_the_group():
    scorer = GroupScorer(reward_config(functions="[accuracy]", **{"length_bonus.enabled": "false"}),
                         rules=EVALUATION)
    out = scorer.score_group(["<answer>9.3</answer>", "10"], [5, 5], "<answer>10</answer>", "regression")
    assert out.total.tolist() == pytest.approx([0.9, 1.0])  # MRA, whole-output fallback


def test_ocr_group_total_sums_partial_accuracy_format_and_bonus():
    scorer = GroupScorer(reward_config(functions="[accuracy,format]"))
    completions = [f"<think>t</think><answer>{x}</answer>" for x in ["EXIT ONLY", "EXIT", "exit only", ""]]
    out = scorer.score_group(completions, [330] * 4, "<answer>EXIT ONLY</answer>", "OCR")
    assert out.per_function["accuracy"].tolist() == [1.0, 0.5, 0.0, 0.0]
    assert out.per_function["format"].tolist() == [1.0] * 4
    assert np.allclose(out.per_function["length_bonus"].numpy(), [0.2, 0.2, 0.0, 0.0])   # partial credit counts
    assert np.allclose(out.total.numpy(), [2.2, 1.7, 1.0, 1.0])
