"""Packing Qwen-VL samples into one row: the packed forward equals the per-sample forward."""

import pytest
import torch

from videorft.engine.config import TinyModelConfig
from videorft.engine.models.attention import VARLEN_ATTENTION, apply_attention
from videorft.engine.models.packing import (
    group_by_token_budget,
    pack_samples,
    shift_left_within,
    unpack,
    unpack_padded,
)
from videorft.engine.models.tiny import build_tiny_model
from videorft.engine.models.varlen_attention import cu_seqlens_from_lengths
from videorft.loaders.family import family_named
from videorft.loaders.qwen_inputs import token_type_ids
from videorft.loaders.qwen_preprocess import preprocess_video

ATOL = 2e-5


def _sample(tok, frames, height, width, question, answer, seconds_per_grid=1.0):
    """One chat sample (user video + question, assistant answer) as model-ready tensors."""
    video = torch.randint(0, 256, (frames, height, width, 3), dtype=torch.uint8)
    pixels, grid = preprocess_video(video, max_pixels=height * width)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]},
                {"role": "assistant", "content": [{"type": "text", "text": answer}]}]
    text = family_named("qwen2_5_vl").expand_video(tok.apply_chat_template(messages, tokenize=False), [grid.tolist()])
    ids = tok(text, return_tensors="pt")["input_ids"][0]
    answer_len = len(tok(answer + "<|im_end|>")["input_ids"])
    loss_mask = torch.zeros_like(ids)
    loss_mask[-answer_len - 1:-1] = 1                         # the answer and <|im_end|> (a newline follows)
    types = token_type_ids(ids, tok.convert_tokens_to_ids("<|image_pad|>"), tok.convert_tokens_to_ids("<|video_pad|>"))
    return {"input_ids": ids, "mm_token_type_ids": types, "pixel_values_videos": pixels,
            "video_grid_thw": grid[None], "second_per_grid_ts": torch.tensor([seconds_per_grid]),
            "labels": torch.where(loss_mask.bool(), ids, -100), "loss_mask": loss_mask}


@pytest.fixture(scope="module")
def model(bpe_tokenizer):
    return build_tiny_model(TinyModelConfig(vision_depth=3), bpe_tokenizer)


@pytest.fixture(scope="module")
def samples(bpe_tokenizer):
    torch.manual_seed(1)
    return [_sample(bpe_tokenizer, 4, 56, 84, "What moves?", "A ball rolls left."),
            _sample(bpe_tokenizer, 6, 112, 56, "How many cars pass the gate?", "Three.", 0.5),
            _sample(bpe_tokenizer, 2, 56, 56, "Colour?", "Red, mostly red.")]


def _single_inputs(sample):
    keys = ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts")
    return {"input_ids": sample["input_ids"][None], "mm_token_type_ids": sample["mm_token_type_ids"][None],
            **{k: sample[k] for k in keys}}


@pytest.mark.parametrize("attention", [VARLEN_ATTENTION, "sdpa"])
def test_packed_forward_equals_per_sample_forward(model, samples, attention):
    apply_attention(model, attention)
    packed = pack_samples(samples, model)
    assert len(set(packed.lengths)) == 3 and packed.video_grid_thw.shape == (3, 3)
    with torch.no_grad():
        out = model(**packed.model_inputs(), output_hidden_states=True)
        singles = [model(**_single_inputs(s), output_hidden_states=True) for s in samples]
    apply_attention(model, "sdpa")
    for layer in (0, 1, -1):                                   # embeddings, first layer, final norm
        for got, single in zip(unpack(out.hidden_states[layer], packed.cu_seqlens), singles):
            torch.testing.assert_close(got, single.hidden_states[layer][0], atol=ATOL, rtol=1e-4)
    for got, single in zip(unpack(out.logits, packed.cu_seqlens), singles):
        torch.testing.assert_close(got, single.logits[0], atol=ATOL, rtol=1e-4)


def _image_sample(tok, height, width, question):
    """A user image + question: one frame patchified like an image (the frame is repeated in time)."""
    pixels, grid = preprocess_video(torch.randint(0, 256, (1, height, width, 3), dtype=torch.uint8),
                                    max_pixels=height * width)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    text = text.replace("<|image_pad|>", "<|image_pad|>" * (int(grid.prod()) // 4))
    ids = tok(text, return_tensors="pt")["input_ids"][0]
    types = token_type_ids(ids, tok.convert_tokens_to_ids("<|image_pad|>"), tok.convert_tokens_to_ids("<|video_pad|>"))
    return {"input_ids": ids, "mm_token_type_ids": types, "pixel_values": pixels, "image_grid_thw": grid[None]}


def test_image_text_only_and_video_samples_pack_together(model, samples, bpe_tokenizer):
    image = _image_sample(bpe_tokenizer, 84, 56, "What is shown?")
    text_ids = bpe_tokenizer("Plain text, no media at all.", return_tensors="pt")["input_ids"][0]
    text_only = {"input_ids": text_ids, "mm_token_type_ids": torch.zeros_like(text_ids)}
    mixed = [image, samples[0], text_only]
    apply_attention(model, VARLEN_ATTENTION)
    packed = pack_samples(mixed, model)
    assert packed.image_grid_thw.shape == (1, 3) and packed.video_grid_thw.shape == (1, 3)
    with torch.no_grad():
        hidden = model.model(**packed.model_inputs()).last_hidden_state
        singles = [model.model(**{k: v[None] if k in ("input_ids", "mm_token_type_ids") else v
                                  for k, v in s.items() if k not in ("labels", "loss_mask")}).last_hidden_state[0]
                   for s in mixed]
    apply_attention(model, "sdpa")
    for got, want in zip(unpack(hidden, packed.cu_seqlens), singles):
        torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-4)


def _masked_token_logp(logits, targets, mask):
    """Sum of log p(target) over masked-in positions (one scalar)."""
    logp = logits.float().log_softmax(-1).gather(-1, targets.clamp(min=0)[..., None])[..., 0]
    return (logp * mask).sum()


def test_packed_gradients_equal_summed_per_sample_gradients(model, samples):
    apply_attention(model, VARLEN_ATTENTION)
    packed = pack_samples(samples, model)
    model.zero_grad()
    logits = model(**packed.model_inputs()).logits[0]                      # [T, V]
    targets = shift_left_within(packed.input_ids[0], packed.cu_seqlens)    # [T]
    mask = shift_left_within(packed.loss_mask[0], packed.cu_seqlens)
    _masked_token_logp(logits, targets, mask).backward()
    packed_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    model.zero_grad()
    for s in samples:
        logits = model(**_single_inputs(s)).logits[0]
        _masked_token_logp(logits[:-1], s["input_ids"][1:], s["loss_mask"][1:]).backward()
    single_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    apply_attention(model, "sdpa")
    assert packed_grads.keys() == single_grads.keys()
    assert any(n.startswith("model.visual.") for n in packed_grads)        # the vision tower is trained too
    for name, grad in packed_grads.items():
        torch.testing.assert_close(grad, single_grads[name], atol=1e-4, rtol=1e-4, msg=name)


def test_positions_are_each_samples_own_mrope_positions(model, samples):
    packed = pack_samples(samples, model)
    assert packed.position_ids.shape == (4, 1, sum(packed.lengths))
    for i, s in enumerate(samples):
        single = _single_inputs(s)
        want, delta = model.model.get_rope_index(single["input_ids"], single["mm_token_type_ids"],
                                                 video_grid_thw=single["video_grid_thw"],
                                                 second_per_grid_ts=single["second_per_grid_ts"])
        start, end = packed.cu_seqlens[i], packed.cu_seqlens[i + 1]
        torch.testing.assert_close(packed.position_ids[1:, 0, start:end], want[:, 0])
        assert packed.position_ids[0, 0, start:end].tolist() == list(range(end - start))
        assert int(packed.rope_deltas[i]) == int(delta) < 0
    # the half-second sampling of sample 1 doubles the temporal spacing of its video positions
    assert not torch.equal(packed.position_ids[1:, 0, packed.cu_seqlens[1]:packed.cu_seqlens[2]],
                           pack_samples([{**samples[1], "second_per_grid_ts": torch.tensor([1.0])}],
                                        model).position_ids[1:, 0])


def test_carried_fields_and_padding_removal(model, samples):
    packed = pack_samples(samples, model)
    assert torch.equal(packed.labels[0], torch.cat([s["labels"] for s in samples]))
    assert torch.equal(packed.pixel_values_videos, torch.cat([s["pixel_values_videos"] for s in samples]))
    # a left-padded row with its attention_mask packs exactly like the unpadded sample
    s = samples[0]
    padded = {k: (torch.cat([torch.zeros(3, dtype=v.dtype), v]) if k in ("input_ids", "mm_token_type_ids",
              "labels", "loss_mask") else v) for k, v in s.items()}
    padded["attention_mask"] = torch.cat([torch.zeros(3, dtype=torch.long), torch.ones_like(s["input_ids"])])
    a, b = pack_samples([s], model), pack_samples([padded], model)
    assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.position_ids, b.position_ids)
    # a field missing from one sample is left out rather than misaligned
    assert pack_samples([samples[0], {k: v for k, v in samples[1].items() if k != "labels"}], model).labels is None


def test_bad_samples_are_named(model, samples):
    with pytest.raises(KeyError, match="sample 1: mm_token_type_ids is missing"):
        pack_samples([samples[0], {k: v for k, v in samples[1].items() if k != "mm_token_type_ids"}], model)
    short = dict(samples[2], input_ids=samples[2]["input_ids"][1:])
    with pytest.raises(ValueError, match="sample 0: mm_token_type_ids has"):
        pack_samples([short], model)
    wrong_grid = dict(samples[0], video_grid_thw=torch.tensor([[2, 4, 4]]))
    with pytest.raises(ValueError, match="sample 0: pixel_values_videos has"):
        pack_samples([wrong_grid], model)
    fewer_pads = dict(samples[0], mm_token_type_ids=samples[0]["mm_token_type_ids"].clone())
    fewer_pads["mm_token_type_ids"][fewer_pads["mm_token_type_ids"] == 2] = 0
    with pytest.raises(ValueError, match="sample 0: 0 placeholder tokens"):
        pack_samples([fewer_pads], model)
    with pytest.raises(ValueError, match="at least one"):
        pack_samples([], model)


def test_unpack_helpers():
    cu = cu_seqlens_from_lengths([2, 3, 1])
    x = torch.arange(12.0).view(1, 6, 2).requires_grad_(True)                 # [1, T, H]
    assert [p.shape[0] for p in unpack(x, cu)] == [2, 3, 1]
    padded, mask = unpack_padded(x, cu, pad_value=-1.0)
    assert padded.shape == (3, 3, 2) and mask.tolist() == [[1, 1, 0], [1, 1, 1], [1, 0, 0]]
    assert torch.equal(padded[1, :, 0], torch.tensor([4.0, 6.0, 8.0])) and padded[2, 1, 0] == -1
    padded.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))                            # every token reaches the loss once
    ids = torch.tensor([[10, 11, 20, 21, 22, 30]])
    assert shift_left_within(ids, cu, fill=-5).tolist() == [[11, -5, 21, 22, -5, -5]]
    with pytest.raises(ValueError, match="expected"):
        unpack(torch.zeros(1, 5, 2), cu)


def test_group_by_token_budget():
    packs = group_by_token_budget([700, 300, 900, 100, 1200], max_tokens=1000)
    assert sorted(sum(packs, [])) == [0, 1, 2, 3, 4]
    assert [4] in packs                                                     # longer than the budget: alone
    lengths = [700, 300, 900, 100, 1200]
    assert all(sum(lengths[i] for i in p) <= 1000 for p in packs if p != [4])
    assert len(packs) == 3


def _realistic_model(tok):
    """Random Qwen2.5-VL with the 7B's attention shapes (LM head_dim 128, GQA; ViT 16 heads of 80), 2+4 layers."""
    from transformers import AutoModelForImageTextToText

    from videorft.engine.models.tiny import tiny_config

    config = tiny_config(TinyModelConfig(hidden_size=1024, num_layers=2, num_heads=8, num_kv_heads=2,
                                         intermediate_size=2048, vision_depth=4, vision_hidden_size=1280), tok)
    config.vision_config.num_heads = 16
    config.vision_config.window_size = 112
    config.vision_config.fullatt_block_indexes = [1, 3]
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32).cuda().eval()
    return model.to(torch.bfloat16).to(torch.float32)   # bf16-representable weights: every run uses the same


def _error_vs_fp32(model, samples, packed, attention, dtype):
    """Max abs error of the packed last hidden state (and two gradients) against per-sample fp32 sdpa."""
    probe = ("model.visual.blocks.0.attn.qkv.weight", "model.language_model.layers.1.self_attn.q_proj.weight")
    results = {}
    for name, precision in (("sdpa", torch.float32), (attention, dtype)):
        model.to(precision)
        apply_attention(model, name)
        model.zero_grad()
        if precision == torch.float32:
            outs = [model.model(**{k: v.cuda() for k, v in _single_inputs(s).items()}).last_hidden_state[0]
                    for s in samples]
            hidden = torch.cat(outs)
        else:
            hidden = model.model(**packed.model_inputs()).last_hidden_state[0]
        weights = torch.linspace(-1, 1, hidden.numel(), device="cuda").view_as(hidden)
        (hidden.float() * weights).sum().backward()
        params = dict(model.named_parameters())
        results[precision] = (hidden.float().detach(), [params[p].grad.float().clone() for p in probe])
    (h32, g32), (h16, g16) = results[torch.float32], results[dtype]
    return [(h16 - h32).abs().max().item()] + [(a - b).abs().max().item() for a, b in zip(g16, g32)]


@pytest.mark.gpu
def test_packed_flash_forward_matches_per_sample_fp32_at_bf16(bpe_tokenizer):
    pytest.importorskip("flash_attn")
    model = _realistic_model(bpe_tokenizer)
    # about 14.5k vision patches (3.6k language-model video tokens) in three videos of different shapes
    samples = [_sample(bpe_tokenizer, 16, 448, 336, "What happens first?", "The door opens."),
               _sample(bpe_tokenizer, 8, 448, 448, "Count the birds.", "Four birds."),
               _sample(bpe_tokenizer, 12, 280, 504, "Which way does it turn?", "Left, then right.")]
    packed = pack_samples(samples, model).to("cuda")
    assert packed.video_grid_thw.prod(-1).sum() > 14000
    err_varlen = _error_vs_fp32(model, samples, packed, VARLEN_ATTENTION, torch.bfloat16)
    err_sdpa = _error_vs_fp32(model, samples, packed, "sdpa", torch.bfloat16)
    for mine, torch_own in zip(err_varlen, err_sdpa):
        assert mine <= 2 * torch_own + 1e-2, (err_varlen, err_sdpa)
