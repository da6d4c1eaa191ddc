"""The colocated vLLM engine's weight and memory protocol, against a recorder in vLLM's place.

What these tests check is the order of calls the engine makes on vLLM's `LLM` (the calls
themselves are checked against vLLM 0.32's source and run on GPUs only): every weight sync
streams the policy's weights under their transformers names and then resets the prefix,
multimodal-processor and encoder caches; sleep is level 2; a rollout after a sleep reloads the
discarded weights from the policy before it wakes the KV cache.
"""

import pytest
import torch

from videorft.engine.config import RolloutConfig
from videorft.engine.rollout.vllm_colocated import VLLMRollout

CACHE_RESETS = ["reset_prefix_cache", "reset_mm_cache", "reset_encoder_cache"]


class RecordingLLM:
    """Records the calls VLLMRollout makes on vllm.LLM, with the weight names it loads."""

    def __init__(self):
        self.calls: list = []
        self.llm_engine = self

    def apply_model(self, fn):
        fn(self)

    def load_weights(self, weights):
        self.calls.append(("load", [name for name, _ in weights]))

    def sleep(self, level):
        self.calls.append(("sleep", level))

    def wake_up(self, tags):
        self.calls.append(("wake_up", tuple(tags)))

    def __getattr__(self, name):
        if name.startswith("reset_"):
            return lambda: self.calls.append(name)
        raise AttributeError(name)


def _policy() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))


def _engine(policy, sleep: bool = True) -> VLLMRollout:
    """A VLLMRollout around a recorder (the constructor needs vLLM and a GPU)."""
    engine = VLLMRollout.__new__(VLLMRollout)
    engine.model, engine.cfg, engine.llm = policy, RolloutConfig(vllm_sleep=sleep), RecordingLLM()
    engine._asleep, engine._tp_group = set(), None
    return engine


def _loaded(calls) -> list[str]:
    return [name for call in calls if call[0] == "load" for name in call[1]]


@pytest.mark.parametrize("sleep", [True, False])
def test_every_sync_streams_each_module_then_resets_the_three_caches(sleep):
    policy = _policy()
    engine = _engine(policy, sleep)
    for _ in range(2):
        engine.llm.calls.clear()
        engine.sync_weights(policy)
        calls = engine.llm.calls
        assert [c[0] for c in calls[:3]] == ["load"] * 3                        # one call per module
        assert _loaded(calls) == [name for name, _ in policy.named_parameters()]
        assert calls[3:] == CACHE_RESETS


def test_sleep_is_level_two_and_a_sync_wakes_the_weights_only():
    policy = _policy()
    engine = _engine(policy)
    engine.sleep()
    engine.sync_weights(policy)
    calls = engine.llm.calls
    assert calls[0] == ("sleep", 2)
    assert calls[1] == ("wake_up", ("weights",))
    assert calls[-3:] == CACHE_RESETS
    assert ("wake_up", ("kv_cache",)) not in calls                    # the update still has that memory
    engine.llm.calls.clear()
    engine.wake()
    assert engine.llm.calls == [("wake_up", ("kv_cache",))]


def test_a_rollout_after_a_sleep_without_sync_reloads_the_policy_first():
    """A step skipped before its sync leaves the weights discarded: the next wake reloads them."""
    policy = _policy()
    engine = _engine(policy)
    engine.sleep()
    engine.llm.calls.clear()
    engine.wake()
    calls = engine.llm.calls
    assert calls[0] == ("wake_up", ("weights",))
    assert _loaded(calls) == [name for name, _ in policy.named_parameters()]
    assert calls[-4:] == [*CACHE_RESETS, ("wake_up", ("kv_cache",))]


def test_without_sleep_mode_nothing_sleeps_and_an_engine_without_a_policy_cannot_reload():
    engine = _engine(_policy(), sleep=False)
    engine.sleep()
    engine.wake()
    assert engine.llm.calls == []
    stale = _engine(None)
    stale.sleep()
    with pytest.raises(RuntimeError, match="no policy model"):
        stale.wake()
