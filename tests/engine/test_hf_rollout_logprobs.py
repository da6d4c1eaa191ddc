"""HF rollouts report each sampled token's log-prob under the sampler's own distribution."""

from types import SimpleNamespace

import pytest
import torch

from videorft.engine.config import RolloutConfig, TinyModelConfig
from videorft.engine.models.tiny import build_tiny_model
from videorft.engine.rollout.hf import HFRollout
from videorft.engine.rollout.types import RolloutEngine, suppressed_token_ids
from videorft.loaders.family import family_named
from videorft.loaders.qwen_inputs import left_pad, token_type_ids
from videorft.loaders.qwen_preprocess import preprocess_video

GROUP = 3


class _Prompts(SimpleNamespace):
    def model_inputs(self):
        return self.inputs


@pytest.fixture(scope="module")
def setup(bpe_tokenizer):
    """A tiny Qwen2.5-VL and two video prompts of different lengths (so one is left-padded)."""
    tok = bpe_tokenizer
    model = build_tiny_model(TinyModelConfig(hidden_size=32, num_layers=2, intermediate_size=64), tok, seed=0)
    rows, pixels, grids = [], [], []
    for i, (h, w, q) in enumerate([(56, 84, "What moves across the frame from left to right?"),
                                   (84, 56, "Colour?")]):
        video = torch.randint(0, 256, (4, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(i))
        pv, grid = preprocess_video(video, max_pixels=h * w)
        msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": q}]}]
        text = family_named("qwen2_5_vl").expand_video(tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True),
                                         [grid.tolist()])
        rows.append(torch.tensor(tok(text)["input_ids"]))
        pixels.append(pv)
        grids.append(grid)
    ids, mask = left_pad(rows, tok.pad_token_id)
    assert mask[1].sum() < mask[0].sum() and mask[1, 0] == 0                      # prompt 1 is left-padded
    inputs = {"input_ids": ids, "attention_mask": mask,
              "mm_token_type_ids": token_type_ids(ids, tok.convert_tokens_to_ids("<|image_pad|>"),
                                                  tok.convert_tokens_to_ids("<|video_pad|>")),
              "pixel_values_videos": torch.cat(pixels), "video_grid_thw": torch.stack(grids),
              "second_per_grid_ts": torch.tensor([1.0, 0.5])}
    return model, tok, _Prompts(inputs=inputs)


def _teacher_forced(model, tok, inputs, completions, temperature: float | None) -> torch.Tensor:
    """log p(completion token) from one forward over prompt + completion, for every row."""
    p = inputs["input_ids"].shape[0]
    g = completions.shape[0] // p
    owner = torch.arange(p).repeat_interleave(g)                                 # prompt of each row
    blocks = torch.split(inputs["pixel_values_videos"], inputs["video_grid_thw"].prod(dim=1).tolist())
    ids = torch.cat([inputs["input_ids"][owner], completions], dim=1)           # [R, L+C]
    full = {"input_ids": ids,
            "attention_mask": torch.cat([inputs["attention_mask"][owner], torch.ones_like(completions)], dim=1),
            "mm_token_type_ids": torch.cat([inputs["mm_token_type_ids"][owner], torch.zeros_like(completions)], 1),
            "pixel_values_videos": torch.cat([blocks[i] for i in owner.tolist()]),
            "video_grid_thw": inputs["video_grid_thw"][owner],
            "second_per_grid_ts": inputs["second_per_grid_ts"][owner]}
    with torch.no_grad():
        logits = model(**full).logits.float()                                    # [R, L+C, V]
    width, c = inputs["input_ids"].shape[1], completions.shape[1]
    logits = logits[:, width - 1:width - 1 + c]                                  # predicts each completion token
    logits[..., suppressed_token_ids(tok)] = float("-inf")                       # the sampler never offers them
    if temperature is not None:
        logits = logits / temperature
    return torch.log_softmax(logits, dim=-1).gather(-1, completions.unsqueeze(-1)).squeeze(-1)


def test_sampled_logprobs_equal_a_teacher_forced_recomputation(setup):
    model, tok, prompts = setup
    rollout = HFRollout(model, tok, RolloutConfig(group_size=GROUP, temperature=0.7, top_p=1.0, top_k=0,
                                                  max_new_tokens=12))
    assert isinstance(rollout, RolloutEngine)
    out = rollout.generate(prompts)
    assert out.logprobs.dtype == torch.float32 and out.logprobs.shape == out.completion_ids.shape == (6, 12)
    mask = out.completion_mask.bool()
    assert torch.all(out.logprobs[~mask] == 0) and torch.all(out.logprobs[mask] < 0)
    ref = _teacher_forced(model, tok, prompts.inputs, out.completion_ids, temperature=0.7)
    torch.testing.assert_close(out.logprobs[mask], ref[mask], rtol=1e-4, atol=1e-4)


def test_greedy_logprobs_are_the_untempered_log_softmax(setup):
    model, tok, prompts = setup
    rollout = HFRollout(model, tok, RolloutConfig(group_size=1, temperature=0.7, max_new_tokens=6))
    out = rollout.generate(prompts, greedy=True)
    mask = out.completion_mask.bool()
    ref = _teacher_forced(model, tok, prompts.inputs, out.completion_ids, temperature=None)
    torch.testing.assert_close(out.logprobs[mask], ref[mask], rtol=1e-4, atol=1e-4)


def test_a_nucleus_cut_renormalises_over_the_kept_tokens(setup):
    """With top_p < 1 the sampler's log-prob is the tempered one plus -log(kept mass) >= 0."""
    model, tok, prompts = setup
    rollout = HFRollout(model, tok, RolloutConfig(group_size=GROUP, temperature=1.0, top_p=0.3, max_new_tokens=6))
    out = rollout.generate(prompts)
    mask = out.completion_mask.bool()
    full = _teacher_forced(model, tok, prompts.inputs, out.completion_ids, temperature=1.0)
    assert torch.all(out.logprobs[mask] >= full[mask] - 1e-5)
    assert torch.any(out.logprobs[mask] > full[mask] + 1e-3)
