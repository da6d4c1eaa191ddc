"""A non-finite GRPO loss skips its step (no update, a warning in run.log, no metrics row), and
`grpo.max_bad_steps` of them in a row stop the run with an error that says why.

The NaN is injected here only: the fused loss that the policy's loss head calls is wrapped so
chosen calls (one per step: one micro-batch, one inner update) return a NaN loss.
"""

import pytest
import torch

from videorft.engine.config import load_config
from videorft.engine.models import policy

pytestmark = pytest.mark.slow


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _nan_on_calls(monkeypatch, bad_calls: set[int]) -> list[int]:
    real = policy.fused_linear_grpo_loss
    calls: list[int] = []

    def loss_with_nan(*args, **kwargs):
        calls.append(len(calls) + 1)
        loss, metrics = real(*args, **kwargs)
        return (loss * float("nan") if calls[-1] in bad_calls else loss), metrics

    monkeypatch.setattr(policy, "fused_linear_grpo_loss", loss_with_nan)
    return calls


def _grpo_cfg(tmp_path, world, sft_run, kit, steps: int, *overrides: str):
    config = kit.grpo_config(world, sft_run / "final", tmp_path / "grpo", encoder=None, name="grpo-nan")
    config["grpo"].update(steps=steps, save_every=1)
    path = tmp_path / "grpo-nan.yaml"
    import yaml

    path.write_text(yaml.safe_dump(config))
    return load_config(path, overrides)


def test_a_nan_loss_skips_its_step_and_is_logged(tmp_path, world, sft_run, kit, monkeypatch, one_thread):
    from videorft.engine.trainers.grpo import run

    calls = _nan_on_calls(monkeypatch, bad_calls={2})
    summary = run(_grpo_cfg(tmp_path, world, sft_run, kit, 2))
    out = tmp_path / "grpo"
    assert calls == [1, 2] and summary["steps"] == 2 and summary["skipped_steps"] == 1
    assert [r["step"] for r in kit.read_rows(out)] == [1]
    assert "step 2 skipped: non-finite loss" in (out / "run.log").read_text()
    after_1 = kit.load_weights(out / "checkpoints" / "step-000001" / "model")
    after_2 = kit.load_weights(out / "checkpoints" / "step-000002" / "model")
    assert all(torch.equal(after_1[k], after_2[k]) for k in after_1), "the skipped step changed weights"
    start = kit.load_weights(sft_run / "final")
    assert any(not torch.equal(start[k], after_1[k]) for k in start), "step 1 did not train"


def test_max_bad_steps_in_a_row_stop_the_run(tmp_path, world, sft_run, kit, monkeypatch, one_thread):
    from videorft.engine.trainers.grpo import run

    calls = _nan_on_calls(monkeypatch, bad_calls={2, 3})
    with pytest.raises(RuntimeError, match=r"stopping at step 3: 2 non-finite losses in a row "
                                           r"\(grpo.max_bad_steps=2\)"):
        run(_grpo_cfg(tmp_path, world, sft_run, kit, 4, "grpo.max_bad_steps=2"))
    assert calls == [1, 2, 3]
    log = (tmp_path / "grpo" / "run.log").read_text()
    assert "step 2 skipped" in log and "step 3 skipped" in log and "(2 in a row)" in log
