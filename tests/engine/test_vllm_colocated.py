"""The vLLM engine's own logic that runs without vLLM: context budget, executor choice, outputs.

vLLM is not installable in the CPU venv; its CompletionOutput is stood in for by plain objects
with the same two fields the engine reads (token_ids, and logprobs as one {token: Logprob} per
position, what SamplingParams(logprobs=0) returns). The engine itself ran on vLLM's CPU build
(see the report of that run); these tests pin the conversion and the guards.
"""

from types import SimpleNamespace

import pytest
import torch

from videorft.engine.config import VideoConfig
from videorft.engine.rollout.vllm_colocated import _as_rollouts, _executor_backend, default_max_model_len


def test_default_context_is_the_prompt_budget_plus_new_tokens():
    recipe = VideoConfig(min_frames=16, max_frames=16, min_pixels=128 * 28 * 28, max_pixels=128 * 28 * 28)
    assert default_max_model_len(recipe, 1024) == 8 * 128 + 1024 + 1024                # 3072
    assert default_max_model_len(VideoConfig(max_frames=32, max_pixels=256 * 28 * 28), 1024) == 16 * 256 + 2048
    assert default_max_model_len(VideoConfig(max_pixels=None), 1024) is None


def test_a_single_process_keeps_vllms_default_executor_and_refuses_tensor_parallel():
    assert not torch.distributed.is_initialized()
    assert _executor_backend(1) is None
    with pytest.raises(ValueError, match="rollout.vllm_tensor_parallel_size=2 needs a launch"):
        _executor_backend(2)


def _completion(tokens, logprobs):
    return SimpleNamespace(token_ids=tokens,
                           logprobs=[{t: SimpleNamespace(logprob=lp)} for t, lp in zip(tokens, logprobs)])


def test_completions_become_padded_rows_with_their_sampler_logprobs(bpe_tokenizer):
    eos, pad = bpe_tokenizer.eos_token_id, bpe_tokenizer.pad_token_id
    rows = [_completion([11, 12, eos], [-0.5, -1.0, -0.25]), _completion([13], [-2.0]),
            _completion([14, 15, 16, 17], [-0.1, -0.2, -0.3, -0.4])]
    out = _as_rollouts(rows, bpe_tokenizer, group_size=3)
    assert out.completion_ids.tolist() == [[11, 12, eos, pad], [13, pad, pad, pad], [14, 15, 16, 17]]
    assert out.completion_mask.tolist() == [[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]]
    assert out.logprobs.dtype == torch.float32
    expected = [[-0.5, -1.0, -0.25, 0.0], [-2.0, 0.0, 0.0, 0.0], [-0.1, -0.2, -0.3, -0.4]]
    assert torch.equal(out.logprobs, torch.tensor(expected))
    assert out.lengths.tolist() == [3, 1, 4] and out.group_size == 3
