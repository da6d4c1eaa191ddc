"""HF rollouts that prefill each prompt once and share its cache give what G prefills give."""

import pytest
import torch

from videorft.engine.config import RolloutConfig, TinyModelConfig
from videorft.engine.models.tiny import build_tiny_model
from videorft.engine.rollout.hf import HFRollout
from videorft.loaders.family import FAMILY_NAMES, family_named
from videorft.loaders.qwen_inputs import left_pad, token_type_ids
from videorft.loaders.qwen_preprocess import preprocess_video


class Prompts:
    """Two left-padded video prompts of different lengths (the PromptSource a rollout reads)."""

    records: list = []

    def __init__(self, tok, family):
        fam = family_named(family)
        rows, pixels, grids = [], [], []
        for i, (h, w) in enumerate([(64, 96), (96, 64)]):
            frames = torch.randint(0, 256, (4, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(i))
            pv, grid = preprocess_video(frames, fam.spec, max_pixels=h * w)
            msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Why?" * (i + 1)}]}]
            text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            rows.append(torch.tensor(tok(fam.expand_video(text, [grid.tolist()]))["input_ids"]))
            pixels.append(pv)
            grids.append(grid)
        ids, mask = left_pad(rows, tok.pad_token_id)
        self.inputs = {"input_ids": ids, "attention_mask": mask, "pixel_values_videos": torch.cat(pixels),
                       "video_grid_thw": torch.stack(grids),
                       "mm_token_type_ids": token_type_ids(ids, tok.convert_tokens_to_ids("<|image_pad|>"),
                                                           tok.convert_tokens_to_ids("<|video_pad|>"))}
        if fam.takes_seconds:
            self.inputs["second_per_grid_ts"] = torch.tensor([1.0, 0.5])

    def model_inputs(self):
        return self.inputs


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_one_prefill_per_prompt_samples_what_g_prefills_sample(bpe_tokenizer, family):
    model = build_tiny_model(TinyModelConfig(family=family, hidden_size=32, num_layers=2, intermediate_size=64),
                             bpe_tokenizer, seed=4)
    prompts = Prompts(bpe_tokenizer, family)
    out = {}
    for once in (False, True):
        torch.manual_seed(0)
        cfg = RolloutConfig(group_size=3, max_new_tokens=8, top_p=1.0, prefill_once=once, min_new_tokens=8)
        out[once] = HFRollout(model, bpe_tokenizer, cfg).generate(prompts)
    assert torch.equal(out[True].completion_ids, out[False].completion_ids)
    assert out[True].completion_ids.shape == (6, 8) and bool(out[True].completion_mask.all())   # min_new_tokens
    torch.testing.assert_close(out[True].logprobs, out[False].logprobs, rtol=0, atol=1e-5)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_a_frozen_towers_features_sample_what_the_pixels_sample(bpe_tokenizer, family):
    """grpo.freeze_vision: the prompts' media encoded once and handed to generate give the same
    completions and sampler log-probs as the pixels, with one prefill or G, and the tower never runs."""
    from videorft.engine.models.frozen_vision import encode_media

    model = build_tiny_model(TinyModelConfig(family=family, hidden_size=32, num_layers=2, intermediate_size=64),
                             bpe_tokenizer, seed=4)
    prompts = Prompts(bpe_tokenizer, family)
    features = encode_media(model, prompts.model_inputs())
    assert len(features.videos) == 2 and features.prompt_video == (0, 1)
    calls = []
    hook = model.model.visual.register_forward_hook(lambda *_: calls.append(1))
    for once in (False, True):
        cfg = RolloutConfig(group_size=3, max_new_tokens=8, top_p=1.0, prefill_once=once, min_new_tokens=8)
        out = {}
        for given in (None, features):
            torch.manual_seed(0)
            out[given is None] = HFRollout(model, bpe_tokenizer, cfg).generate(prompts, features=given)
        assert torch.equal(out[False].completion_ids, out[True].completion_ids), (family, once)
        torch.testing.assert_close(out[False].logprobs, out[True].logprobs, rtol=0, atol=1e-5)
    hook.remove()
    assert len(calls) == 2, "the tower ran in the rollouts that were handed features"
