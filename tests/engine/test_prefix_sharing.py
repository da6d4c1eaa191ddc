"""A shared-prefix row computes exactly what the per-row layout computes, for every family.

Oracle: the per-row path of PolicyModel (each of the G completions with its own copy of the
prompt) on the same weights with stock SDPA attention. Checked: log-probs, the fused GRPO loss
and the gradient of every parameter (vision tower included), with completions of unequal
lengths, a fully masked completion, a prompt without video and several groups in one row.
"""

import copy

import pytest
import torch

from videorft.engine.config import TinyModelConfig
from videorft.engine.models.attention import apply_attention
from videorft.engine.models.policy import GRPOLossInputs, PolicyModel
from videorft.engine.models.prefix_sharing import share_prefixes
from videorft.engine.models.tiny import build_tiny_model
from videorft.engine.rollout.types import Rollouts
from videorft.engine.trainers.sequences import build_sequences
from videorft.loaders.family import FAMILY_NAMES, family_named
from videorft.loaders.qwen_inputs import left_pad, token_type_ids
from videorft.loaders.qwen_preprocess import preprocess_video

G = 3
TINY = dict(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64, vision_depth=1,
            vision_hidden_size=32)


def _prompts(tok, family):
    """Two video prompts of different sizes and a text-only one, left-padded."""
    fam = family_named(family)
    rows, pixels, grids, seconds = [], [], [], []
    for i, (h, w, question) in enumerate([(64, 96, "What moves?"), (96, 64, "Which colour?"), (None, None, "Hi?")]):
        content = [{"type": "text", "text": question}]
        if h is not None:
            content.insert(0, {"type": "video"})
        text = tok.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                       add_generation_prompt=True)
        if h is not None:
            frames = torch.randint(0, 256, (4, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(i))
            pv, grid = preprocess_video(frames, fam.spec, max_pixels=h * w)
            text = fam.expand_video(text, [grid.tolist()], [[0.25 * (i + 1), 0.75 * (i + 1)]])
            pixels.append(pv)
            grids.append(grid)
            seconds.append(0.5 * (i + 1))
        rows.append(torch.tensor(tok(text)["input_ids"]))
    ids, mask = left_pad(rows, tok.pad_token_id)
    inputs = {"input_ids": ids, "attention_mask": mask,
              "mm_token_type_ids": token_type_ids(ids, tok.convert_tokens_to_ids("<|image_pad|>"),
                                                  tok.convert_tokens_to_ids("<|video_pad|>")),
              "pixel_values_videos": torch.cat(pixels), "video_grid_thw": torch.stack(grids)}
    if fam.takes_seconds:
        inputs["second_per_grid_ts"] = torch.tensor(seconds)
    return inputs


def _rollouts(tok):
    """3 prompts x G=3 completions of unequal lengths (EOS early in some), one fully masked."""
    gen = torch.Generator().manual_seed(5)
    ids = torch.randint(20, 300, (3 * G, 7), generator=gen)
    mask = torch.ones_like(ids)
    for row, eos_at in ((0, 2), (4, 5), (7, 0)):
        ids[row, eos_at] = tok.eos_token_id
        mask[row, eos_at + 1:] = 0
    mask[5] = 0                                   # a completion that counts nowhere
    return Rollouts(ids, mask, [""] * (3 * G), G)


@pytest.fixture(scope="module", params=FAMILY_NAMES)
def setup(request, bpe_tokenizer):
    family = request.param
    model = build_tiny_model(TinyModelConfig(family=family, **TINY), bpe_tokenizer, seed=2).float()
    oracle = PolicyModel(model, "torch")                            # stock SDPA, per row
    shared_model = copy.deepcopy(model)
    apply_attention(shared_model, "videorft_varlen")
    seq = build_sequences(_prompts(bpe_tokenizer, family), _rollouts(bpe_tokenizer), torch.device("cpu"))
    policy = PolicyModel(shared_model, "torch")
    shared = share_prefixes(seq, G, policy.family.rope_index(policy.model))
    return family, oracle, policy, seq, shared


def test_the_row_holds_each_prompt_once(setup):
    _, _, _, seq, shared = setup
    prompts = int(seq.inputs["attention_mask"][::G, :seq.prompt_len].sum())
    completions = int(seq.completion_mask.sum(1).clamp(min=1).sum())
    assert shared.inputs["input_ids"].shape == (1, prompts + completions)
    assert shared.inputs["pixel_values_videos"].shape == seq.inputs["pixel_values_videos"].shape


def test_log_probs_equal_the_per_row_path(setup):
    _, oracle, policy, seq, shared = setup
    with torch.no_grad():
        want = oracle(seq.inputs, seq.completion_ids, seq.prompt_len, video_index=seq.video_index,
                      mask=seq.completion_mask, temperature=0.8)
        got = policy(None, seq.completion_ids, mask=seq.completion_mask, temperature=0.8, shared=shared)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_loss_and_every_gradient_equal_the_per_row_path(setup):
    family, oracle, policy, seq, shared = setup
    adv = torch.linspace(-1.0, 1.0, seq.rows)
    with torch.no_grad():
        ref = oracle(seq.inputs, seq.completion_ids, seq.prompt_len, video_index=seq.video_index,
                     mask=seq.completion_mask) - 0.05
    grpo = GRPOLossInputs(mask=seq.completion_mask, advantages=adv, ref_logp=ref, options={"beta": 0.04})
    results = []
    for model, kwargs in ((oracle, dict(inputs=seq.inputs, target_start=seq.prompt_len, video_index=seq.video_index)),
                          (policy, dict(inputs=None, shared=shared))):
        model.zero_grad()
        loss, _ = model(targets=seq.completion_ids, grpo=grpo, **kwargs)
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (want_loss, want), (got_loss, got) = results
    torch.testing.assert_close(got_loss, want_loss, rtol=1e-5, atol=1e-6)
    assert got.keys() == want.keys() and any(".visual." in n for n in want), family
    for name, grad in want.items():
        scale = float(grad.abs().max())
        torch.testing.assert_close(got[name], grad, rtol=0, atol=1e-4 * scale + 1e-9, msg=f"{family}: {name}")


def test_a_stock_attention_is_refused(setup, bpe_tokenizer):
    _, oracle, _, seq, shared = setup
    with pytest.raises(ValueError, match="prefix sharing needs"):
        oracle(None, seq.completion_ids, mask=seq.completion_mask, shared=shared)


@pytest.mark.parametrize("layout", ["per-row", "shared"])
def test_a_frozen_towers_features_give_the_same_loss_and_language_gradients(setup, bpe_tokenizer, layout):
    """grpo.freeze_vision: the media encoded once, without gradient, in place of the pixels. Loss and
    every language-model gradient equal the pixel path's, the tower gets no gradient and never runs."""
    from videorft.engine.models.frozen_vision import encode_media, freeze_vision_tower

    family, oracle, policy, seq, shared = setup
    prompts = _prompts(bpe_tokenizer, family)
    adv = torch.linspace(-1.0, 1.0, seq.rows)
    grpo = GRPOLossInputs(mask=seq.completion_mask, advantages=adv, options={"beta": 0.0})
    oracle.zero_grad()
    want_loss, _ = oracle(targets=seq.completion_ids, grpo=grpo, inputs=seq.inputs, target_start=seq.prompt_len,
                          video_index=seq.video_index)
    want_loss.backward()
    want = {n: p.grad.clone() for n, p in oracle.named_parameters() if p.grad is not None and ".visual." not in n}

    frozen = copy.deepcopy(policy if layout == "shared" else oracle)
    freeze_vision_tower(frozen.model)
    frozen_seq = build_sequences(prompts, _rollouts(bpe_tokenizer), torch.device("cpu"),
                                 encode_media(frozen.model, prompts))
    assert "pixel_values_videos" not in frozen_seq.inputs and len(frozen_seq.features.videos) == 2
    calls = []
    hook = frozen.model.model.visual.register_forward_hook(lambda *_: calls.append(1))
    if layout == "shared":
        kwargs = dict(inputs=None, shared=share_prefixes(frozen_seq, G, frozen.family.rope_index(frozen.model)))
    else:
        kwargs = dict(inputs=frozen_seq.inputs, target_start=frozen_seq.prompt_len,
                      video_index=frozen_seq.video_index, features=frozen_seq.features)
    got_loss, _ = frozen(targets=frozen_seq.completion_ids, grpo=grpo, **kwargs)
    got_loss.backward()
    hook.remove()
    assert not calls, "the frozen tower ran again"
    torch.testing.assert_close(got_loss.detach(), want_loss.detach(), rtol=1e-5, atol=1e-6)
    got = {n: p.grad for n, p in frozen.named_parameters() if p.grad is not None}
    assert got.keys() == want.keys(), f"{family}: gradients reached {set(got) ^ set(want)}"
    for name, grad in want.items():
        scale = float(grad.abs().max())
        torch.testing.assert_close(got[name], grad, rtol=0, atol=1e-4 * scale + 1e-9, msg=f"{family}: {name}")
