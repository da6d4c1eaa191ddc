"""`videorft sft` end to end on the tiny world: metrics, TensorBoard, checkpoints, the final model."""

import pytest
import torch

pytestmark = pytest.mark.slow

SFT_KEYS = {"step", "loss", "grad_norm", "lr", "tokens_per_s", "peak_mem_mb", "epoch",
            "time/decode", "time/preprocess", "time/update"}


def test_every_step_logs_the_required_metrics(sft_run, kit):
    rows = kit.read_rows(sft_run)
    assert [r["step"] for r in rows] == list(range(1, kit.SFT_STEPS + 1))
    for row in rows:
        assert SFT_KEYS <= set(row), SFT_KEYS - set(row)
        assert all(isinstance(row[k], (int, float)) for k in SFT_KEYS), row
        assert row["tokens_per_s"] > 0 and row["peak_mem_mb"] > 0


def test_logged_lr_is_the_one_each_step_applied(sft_run, kit):
    rows = kit.read_rows(sft_run)                    # lr 5e-3, 5 warm-up steps, then cosine to 0
    assert [r["lr"] for r in rows[:5]] == pytest.approx([1e-3, 2e-3, 3e-3, 4e-3, 5e-3])
    assert rows[-1]["lr"] < 1e-5 and all(a["lr"] >= b["lr"] for a, b in zip(rows[4:], rows[5:]))


def test_loss_falls_as_the_format_is_learned(sft_run, kit):
    losses = [r["loss"] for r in kit.read_rows(sft_run)]
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.5 * first, (first, last)


def test_tensorboard_events_are_written(sft_run):
    events = list((sft_run / "tb").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(sft_run / "tb"))
    acc.Reload()
    assert {"loss", "lr", "time/update"} <= set(acc.Tags()["scalars"])
    assert len(acc.Scalars("loss")) == len(acc.Scalars("lr")) > 1


def test_final_model_loads_in_transformers_and_has_trained(sft_run, base_model, kit):
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    final = sft_run / "final"
    model = AutoModelForImageTextToText.from_pretrained(final)
    assert AutoTokenizer.from_pretrained(final).pad_token_id is not None
    assert model.config.text_config.hidden_size == 64
    before, after = kit.load_weights(base_model), kit.load_weights(final)
    assert before.keys() == after.keys()
    changed = [k for k, v in before.items() if not torch.equal(v, after[k])]
    assert "model.layers.0.self_attn.q_proj.weight" in changed and "lm_head.weight" in changed
    assert len(changed) > len(before) // 2, f"only {len(changed)} of {len(before)} tensors changed"
    assert (sft_run / "checkpoints" / "latest").read_text().strip() == f"step-{kit.SFT_STEPS:06d}"
