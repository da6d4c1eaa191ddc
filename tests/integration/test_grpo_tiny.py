"""`videorft grpo` end to end on the tiny world (GSPO ratio, sampler TIS): every metric of the step,
plots, the final model, and the same run without prefix sharing."""

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow

PHASES = ("decode", "preprocess", "rollout", "reward", "logprob", "update", "sync")
GRPO_KEYS = {"step", "loss", "reward", "reward/accuracy", "reward/format", "reward/semantic", "accuracy", "kl",
             "clip_fraction", "entropy", "all_correct", "all_wrong", "completion_length", "tokens_per_s",
             "peak_mem_mb", "grad_norm", "lr", "model_tflops_per_s", "rollout_is_mean", "rollout_is_max",
             "rollout_is_cut_fraction", "rollout_kl"} | {f"time/{p}" for p in PHASES}


def test_every_step_logs_the_required_metrics(grpo_run, kit):
    rows = kit.read_rows(grpo_run)
    assert [r["step"] for r in rows] == list(range(1, kit.GRPO_STEPS + 1))
    for row in rows:
        assert GRPO_KEYS <= set(row), GRPO_KEYS - set(row)
        assert all(isinstance(row[k], (int, float)) for k in GRPO_KEYS), row
        assert row["accuracy"] == row["reward/accuracy"]               # the accuracy reward's mean
        assert row["clip_fraction"] == 0.0                               # one update per step: ratio 1, no clip
        # groups all right add 1 to the mean accuracy, groups all wrong add 0
        assert row["all_correct"] <= row["accuracy"] <= 1.0 - row["all_wrong"]
        assert 0 < row["completion_length"] <= 40
        assert row["entropy"] > 0 and row["kl"] >= 0
        assert row["reward"] == pytest.approx(row["reward/accuracy"] + row["reward/format"] + row["reward/semantic"],
                                              abs=1e-5)
        assert row["tokens_per_s"] > 0 and row["peak_mem_mb"] > 0
        # HF's sampler and the trainer compute the same log-probs, up to rounding
        assert row["rollout_kl"] < 1e-4 and 0.99 < row["rollout_is_mean"] <= row["rollout_is_max"] < 1.01
        assert all(row[f"time/{p}"] >= 0 for p in PHASES) and row["time/rollout"] > 0 and row["time/update"] > 0


def test_rewards_vary_so_the_policy_gets_a_gradient(grpo_run, kit):
    rows = kit.read_rows(grpo_run)
    assert max(r["reward/format"] for r in rows) > 0, "the SFT model never produced the answer format"
    assert any(r["grad_norm"] > 0 for r in rows)
    assert rows[0]["kl"] == pytest.approx(0.0, abs=1e-6)       # first step: policy == reference
    assert max(r["kl"] for r in rows[1:]) > 0


def test_tensorboard_and_plots_are_written(grpo_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(grpo_run / "tb"))
    acc.Reload()
    assert {"reward", "reward/format", "kl", "time/rollout"} <= set(acc.Tags()["scalars"])
    from PIL import Image

    rewards, phases = Image.open(grpo_run / "rewards.png"), Image.open(grpo_run / "phases.png")
    assert (rewards.size, phases.size) == ((770, 440), (1430, 396))
    # four series (reward, accuracy, format, semantic) in matplotlib's first four cycle colours: each
    # shows at least in its legend sample (curves of equal values may hide one another)
    rgb = np.asarray(rewards.convert("RGB"), dtype=np.int16)                            # [H, W, 3]
    for colour in ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)):
        assert (np.abs(rgb - np.array(colour)).max(axis=-1) <= 8).sum() > 20, colour


def test_final_model_loads_in_transformers_and_has_moved(grpo_run, sft_run, kit):
    from transformers import AutoModelForImageTextToText

    final = grpo_run / "final"
    model = AutoModelForImageTextToText.from_pretrained(final)
    assert model.config.text_config.hidden_size == 64
    before, after = kit.load_weights(sft_run / "final"), kit.load_weights(final)
    assert before.keys() == after.keys()
    assert not torch.equal(before["model.layers.1.mlp.up_proj.weight"], after["model.layers.1.mlp.up_proj.weight"])
    assert not torch.equal(before["lm_head.weight"], after["lm_head.weight"])
    assert torch.equal(kit.load_weights(grpo_run / "checkpoints" / f"step-{kit.GRPO_STEPS:06d}" / "model")
                       ["lm_head.weight"], after["lm_head.weight"])


def test_profile_steps_write_a_trace_with_the_phases(grpo_run):
    """run.profile_steps=2: one Chrome-trace JSON whose events carry the step's phase labels."""
    import json

    traces = sorted((grpo_run / "profile").glob("*.json"))
    assert len(traces) == 1
    names = {event.get("name") for event in json.loads(traces[0].read_text())["traceEvents"]}
    assert {"rollout", "reward", "logprob", "update", "sync"} <= names


def test_without_prefix_sharing_the_run_ends_with_the_same_weights(grpo_run, world, sft_run, encoder,
                                                                     integration_root, kit):
    """grpo.prefix_sharing=false (each completion with its own copy of the prompt): the same samples
    and the same updates, so the final weights agree up to fp32 rounding."""
    out = integration_root / "grpo_per_row"
    config = kit.grpo_config(world, sft_run / "final", out, encoder, name="grpo_per_row")
    config["grpo"]["prefix_sharing"] = False
    config["run"]["profile_steps"] = 0
    kit.run_stage("grpo", config, integration_root)
    shared, per_row = kit.load_weights(grpo_run / "final"), kit.load_weights(out / "final")
    assert shared.keys() == per_row.keys()
    start = kit.load_weights(sft_run / "final")
    for name, weight in shared.items():
        moved = float((weight - start[name]).abs().max())
        torch.testing.assert_close(per_row[name], weight, rtol=0, atol=1e-3 * moved + 1e-6, msg=name)
    assert [r["reward"] for r in kit.read_rows(out)] == [r["reward"] for r in kit.read_rows(grpo_run)]
