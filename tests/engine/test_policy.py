"""The policy wrapper against the plain transformers model it wraps."""

import pytest
import torch

from videorft.engine.config import TinyModelConfig
from videorft.engine.models.policy import GRPOLossInputs, PolicyModel
from videorft.engine.models.tiny import build_tiny_model
from videorft.engine.rollout.types import Rollouts
from videorft.engine.trainers.sequences import build_sequences
from videorft.loaders.family import family_named
from videorft.loaders.qwen_inputs import left_pad, token_type_ids
from videorft.loaders.qwen_preprocess import preprocess_video


@pytest.fixture(scope="module")
def setup(bpe_tokenizer):
    tok = bpe_tokenizer
    model = build_tiny_model(TinyModelConfig(hidden_size=32, num_layers=2, intermediate_size=64), tok, seed=0)
    rows, pixels, grids = [], [], []
    for i, (h, w, q) in enumerate([(56, 84, "What moves?"), (84, 56, "Which colour is it?")]):
        video = torch.randint(0, 256, (4, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(i))
        pv, grid = preprocess_video(video, max_pixels=h * w)
        msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": q}]}]
        text = family_named("qwen2_5_vl").expand_video(
            tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True), [grid.tolist()])
        rows.append(torch.tensor(tok(text)["input_ids"]))
        pixels.append(pv)
        grids.append(grid)
    ids, mask = left_pad(rows, tok.pad_token_id)
    inputs = {"input_ids": ids, "attention_mask": mask,
              "mm_token_type_ids": token_type_ids(ids, tok.convert_tokens_to_ids("<|image_pad|>"),
                                                  tok.convert_tokens_to_ids("<|video_pad|>")),
              "pixel_values_videos": torch.cat(pixels), "video_grid_thw": torch.stack(grids),
              "second_per_grid_ts": torch.tensor([1.0, 0.5])}
    completions = torch.randint(10, 300, (6, 5))
    completions[1, 3:] = tok.eos_token_id
    c_mask = torch.ones_like(completions)
    c_mask[1, 4:] = 0
    seq = build_sequences(inputs, Rollouts(completions, c_mask, [""] * 6, group_size=3), torch.device("cpu"))
    return PolicyModel(model, kernel_backend="torch"), seq


def _repeated_inputs(seq):
    """The same rows with every row's video tensors repeated (no sharing of the vision tower)."""
    grid = seq.inputs["video_grid_thw"]
    counts = grid.prod(dim=1).tolist()
    per_video = torch.split(seq.inputs["pixel_values_videos"], counts)
    inputs = {k: seq.inputs[k] for k in ("input_ids", "attention_mask", "mm_token_type_ids")}
    inputs["pixel_values_videos"] = torch.cat([per_video[i] for i in seq.video_index.tolist()])
    inputs["video_grid_thw"] = grid[seq.video_index]
    inputs["second_per_grid_ts"] = seq.inputs["second_per_grid_ts"][seq.video_index]
    return inputs


def test_shared_vision_features_equal_a_per_row_forward(setup):
    policy, seq = setup
    with torch.no_grad():
        shared = policy.hidden_states(seq.inputs, seq.video_index)
        repeated = policy.hidden_states(_repeated_inputs(seq))
    torch.testing.assert_close(shared, repeated, rtol=1e-5, atol=1e-5)


def test_token_logprobs_match_the_full_logits_of_the_hf_model(setup):
    policy, seq = setup
    with torch.no_grad():
        logp = policy(seq.inputs, seq.completion_ids, seq.prompt_len, video_index=seq.video_index,
                      temperature=0.7)                                                    # [6, 5]
        masked = policy(seq.inputs, seq.completion_ids, seq.prompt_len, video_index=seq.video_index,
                        mask=seq.completion_mask, temperature=0.7)                        # [6, 5]
        logits = policy.model(**_repeated_inputs(seq)).logits.float()                     # [6, L+C, V]
    c = seq.completion_ids.shape[1]
    ref = torch.log_softmax(logits[:, seq.prompt_len - 1:seq.prompt_len - 1 + c] / 0.7, dim=-1)
    ref = ref.gather(-1, seq.completion_ids.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(logp, ref, rtol=1e-4, atol=1e-4)
    # with a mask the head runs on the masked-in positions only; the others read 0
    keep = seq.completion_mask > 0
    assert not keep.all()
    torch.testing.assert_close(masked[keep], ref[keep], rtol=1e-4, atol=1e-4)
    assert torch.equal(masked[~keep], torch.zeros_like(masked[~keep]))


def test_grpo_loss_gradient_reaches_vision_tower_and_head(setup):
    policy, seq = setup
    policy.zero_grad()
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5, 0.0, 2.0])
    grpo = GRPOLossInputs(mask=seq.completion_mask, advantages=adv, options={"beta": 0.0})
    loss, metrics = policy(seq.inputs, seq.completion_ids, seq.prompt_len, video_index=seq.video_index, grpo=grpo)
    loss.backward()
    assert torch.isfinite(loss) and "clip_fraction" in metrics
    assert policy.head.weight is policy.model.lm_head.weight
    assert policy.model.lm_head.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.model.model.visual.parameters())


def test_missing_token_types_is_an_error(setup):
    policy, seq = setup
    inputs = {k: v for k, v in seq.inputs.items() if k != "mm_token_type_ids"}
    with pytest.raises(ValueError, match="mm_token_type_ids"):
        policy.hidden_states(inputs, seq.video_index)


def test_packed_sft_loss_equals_the_padded_loss(tmp_path, bpe_tokenizer):
    """SFT with sft.packing: one varlen row gives the same loss as the padded batch."""
    from videorft.engine.trainers.sft import IGNORE, packed_batch
    from videorft.loaders.collate import SpecialIds, collate_sft
    from videorft.loaders.dataset import Sample
    from videorft.loaders.records import Record
    from videorft.loaders.clip import VideoClip

    tok = bpe_tokenizer
    model = build_tiny_model(TinyModelConfig(hidden_size=32, num_layers=2, intermediate_size=64), tok, seed=1)
    samples = []
    for i, (h, w, answer) in enumerate([(56, 84, "A"), (84, 56, "red")]):
        frames = torch.randint(0, 256, (4, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(i))
        pv, grid = preprocess_video(frames, max_pixels=h * w)
        msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": f"Q{i}?"}]}]
        text = family_named("qwen2_5_vl").expand_video(
            tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True), [grid.tolist()])
        record = Record(problem_id=i, problem=f"Q{i}?", problem_type="multiple choice", data_type="video",
                        path="x.mp4", solution=f"<answer>{answer}</answer>")
        clip = VideoClip(frames, list(range(4)), [0.0, 0.5, 1.0, 1.5], fps=2.0, total_frames=4)
        samples.append(Sample(i, record, clip, text, torch.tensor(tok(text)["input_ids"]), pv, grid, 1.0,
                              torch.tensor(tok(f"<think>t</think><answer>{answer}</answer>")["input_ids"]
                                           + [tok.eos_token_id])))
    batch = collate_sft(samples, SpecialIds.from_tokenizer(tok), loss_on="all")
    policy = PolicyModel(model, kernel_backend="torch")

    def loss_of(inputs, labels):
        targets = labels[:, 1:]
        logp = policy(inputs, targets.clamp(min=0), 1)
        return -(logp * (targets != IGNORE)).sum() / (targets != IGNORE).sum()

    with torch.no_grad():
        padded = loss_of(batch.model_inputs(), batch.labels)
        packed = loss_of(*packed_batch(batch, model))
    torch.testing.assert_close(packed, padded, rtol=1e-4, atol=1e-5)
