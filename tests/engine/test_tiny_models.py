"""Tiny real transformers Qwen-VL models on a video: forward, generate, M-RoPE, save/load."""

import pytest
import torch

from videorft.engine.config import TinyModelConfig
from videorft.engine.models.tiny import build_tiny_model
from videorft.loaders.family import family_named
from videorft.loaders.qwen_inputs import token_type_ids, video_token_count
from videorft.loaders.qwen_preprocess import preprocess_video


def _video_inputs(tok, family="qwen2_5_vl", frames=4):
    spec = family_named(family).spec
    video = torch.randint(0, 256, (frames, 64, 96, 3), dtype=torch.uint8)
    pixel_values, grid = preprocess_video(video, spec, max_pixels=64 * 96)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What moves?"}]}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    text = family_named(family).expand_video(text, [grid.tolist()])
    ids = tok(text, return_tensors="pt")["input_ids"]
    inputs = dict(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values_videos=pixel_values,
                  video_grid_thw=grid[None],
                  mm_token_type_ids=token_type_ids(ids, tok.convert_tokens_to_ids("<|image_pad|>"),
                                                   tok.convert_tokens_to_ids("<|video_pad|>")))
    if family == "qwen2_5_vl":
        inputs["second_per_grid_ts"] = torch.tensor([1.0])
    return inputs, grid


def test_qwen2_5_vl_forward_uses_3d_mrope_positions(bpe_tokenizer):
    model = build_tiny_model(TinyModelConfig(), bpe_tokenizer)
    inputs, grid = _video_inputs(bpe_tokenizer)
    video_mask = inputs["mm_token_type_ids"][0] == 2
    assert int(video_mask.sum()) == video_token_count(grid.tolist())

    positions, deltas = model.model.get_rope_index(
        inputs["input_ids"], inputs["mm_token_type_ids"], video_grid_thw=inputs["video_grid_thw"],
        second_per_grid_ts=inputs["second_per_grid_ts"], attention_mask=inputs["attention_mask"])
    assert positions.shape == (3, 1, inputs["input_ids"].shape[1])
    t_pos, h_pos, w_pos = positions[:, 0, video_mask]
    assert not torch.equal(h_pos, w_pos) and not torch.equal(t_pos, h_pos)    # 3 distinct axes
    assert int(h_pos.max() - h_pos.min()) == grid[1] // 2 - 1                   # merged rows
    assert int(deltas) < 0                                                       # video compressed the span

    with torch.no_grad():
        with_types = model(**inputs).logits
        without = model(**{k: v for k, v in inputs.items() if k != "mm_token_type_ids"}).logits
    # dropping mm_token_type_ids silently falls back to 1-D positions: the logits change
    assert not torch.allclose(with_types[0, video_mask.nonzero()[-1, 0] + 1:],
                              without[0, video_mask.nonzero()[-1, 0] + 1:])


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen2_vl", "qwen3_vl"])
def test_generate_on_a_video(bpe_tokenizer, family):
    model = build_tiny_model(TinyModelConfig(family=family), bpe_tokenizer)
    inputs, _ = _video_inputs(bpe_tokenizer, family)
    out = model.generate(**inputs, max_new_tokens=6, do_sample=True, num_return_sequences=3,
                         pad_token_id=bpe_tokenizer.pad_token_id)
    prompt_len = inputs["input_ids"].shape[1]
    assert out.shape[0] == 3 and prompt_len < out.shape[1] <= prompt_len + 6
    assert torch.equal(out[:, :prompt_len], inputs["input_ids"].expand(3, -1))


def test_save_and_load_round_trip(tmp_path, bpe_tokenizer):
    from transformers import AutoModelForImageTextToText

    model = build_tiny_model(TinyModelConfig(), bpe_tokenizer, seed=3)
    model.save_pretrained(tmp_path, safe_serialization=True)
    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path).eval()
    inputs, _ = _video_inputs(bpe_tokenizer)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits)


def test_seed_controls_weights(bpe_tokenizer):
    a = build_tiny_model(TinyModelConfig(), bpe_tokenizer, seed=1)
    b = build_tiny_model(TinyModelConfig(), bpe_tokenizer, seed=1)
    c = build_tiny_model(TinyModelConfig(), bpe_tokenizer, seed=2)
    assert torch.equal(a.lm_head.weight, b.lm_head.weight)
    assert not torch.equal(a.lm_head.weight, c.lm_head.weight)
