"""A run killed with SIGKILL after a checkpoint and started again ends exactly where an
uninterrupted run with the same seeds ends: the same final weights, the same metrics rows."""

import pytest
import torch

pytestmark = pytest.mark.slow

def _assert_same_run(resumed, reference, kit, steps: int) -> None:
    rows, expected = kit.training_rows(resumed), kit.training_rows(reference)
    assert [r["step"] for r in rows] == list(range(1, steps + 1)), "rows lost or duplicated by the restart"
    for got, want in zip(rows, expected):
        assert got == want, f"step {want['step']}: {got} != {want}"
    a, b = kit.load_weights(resumed / "final"), kit.load_weights(reference / "final")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def test_sft_resumed_after_sigkill_matches_the_uninterrupted_run(tmp_path, world, base_model, sft_run, kit):
    config = kit.sft_config(world, base_model, tmp_path / "sft")
    killed_at = kit.kill_after_checkpoint("sft", config, tmp_path)
    assert 0 < killed_at < kit.SFT_STEPS
    summary = kit.run_stage("sft", config, tmp_path)
    assert summary["steps"] == kit.SFT_STEPS
    assert "resumed from" in (tmp_path / "sft" / "run.log").read_text()
    _assert_same_run(tmp_path / "sft", sft_run, kit, kit.SFT_STEPS)


def test_grpo_resumed_after_sigkill_matches_the_uninterrupted_run(tmp_path, world, sft_run, encoder, grpo_run, kit):
    config = kit.grpo_config(world, sft_run / "final", tmp_path / "grpo", encoder)
    killed_at = kit.kill_after_checkpoint("grpo", config, tmp_path)
    assert 0 < killed_at < kit.GRPO_STEPS
    summary = kit.run_stage("grpo", config, tmp_path)
    assert summary["steps"] == kit.GRPO_STEPS
    assert "resumed from" in (tmp_path / "grpo" / "run.log").read_text()
    _assert_same_run(tmp_path / "grpo", grpo_run, kit, kit.GRPO_STEPS)
