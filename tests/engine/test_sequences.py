import pytest
import torch

from videorft.engine.rollout.types import Rollouts
from videorft.engine.trainers.sequences import (MicroBatch, build_sequences, micro_batch_shares, micro_batches,
                                                select_rows)
from videorft.kernels import LOSS_AGGREGATIONS, fused_linear_grpo_loss
from videorft.kernels.testing import make_head


def _prompts():
    # two prompts, left-padded to 4 tokens; video 0 has 2x2x2 patches, video 1 has 2x2x4
    ids = torch.tensor([[0, 11, 12, 13], [21, 22, 23, 24]])
    grid = torch.tensor([[2, 2, 2], [2, 2, 4]])
    pixels = torch.cat([torch.full((8, 3), 0.0), torch.full((16, 3), 1.0)])
    types = torch.tensor([[0, 0, 2, 0], [0, 2, 2, 0]])                    # both prompts show a video
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "mm_token_type_ids": types,
            "pixel_values_videos": pixels, "video_grid_thw": grid, "second_per_grid_ts": torch.tensor([1.0, 0.5])}


def test_build_sequences_repeats_prompts_and_appends_completions():
    comp = torch.tensor([[1, 2], [3, 9], [4, 9], [5, 6], [7, 8], [9, 0]])
    mask = torch.tensor([[1, 1], [1, 1], [1, 1], [1, 1], [1, 1], [1, 0]])
    seq = build_sequences(_prompts(), Rollouts(comp, mask, [""] * 6, 3), torch.device("cpu"))
    assert seq.inputs["input_ids"].shape == (6, 6) and seq.prompt_len == 4
    assert seq.inputs["input_ids"][4].tolist() == [21, 22, 23, 24, 7, 8]
    assert seq.inputs["attention_mask"][0].tolist() == [0, 1, 1, 1, 1, 1]
    assert seq.inputs["attention_mask"][5].tolist() == [1, 1, 1, 1, 1, 0]
    assert seq.video_index.tolist() == [0, 0, 0, 1, 1, 1]
    assert seq.inputs["pixel_values_videos"].shape[0] == 24          # each video stored once


def test_select_rows_keeps_only_the_videos_it_needs():
    comp = torch.ones(6, 2, dtype=torch.long)
    seq = build_sequences(_prompts(), Rollouts(comp, torch.ones_like(comp), [""] * 6, 3), torch.device("cpu"))
    sub = select_rows(seq, torch.tensor([4, 5]))
    assert sub.video_index.tolist() == [0, 0]
    assert sub.inputs["video_grid_thw"].tolist() == [[2, 2, 4]]
    assert torch.equal(sub.inputs["pixel_values_videos"], torch.ones(16, 3))
    assert sub.inputs["second_per_grid_ts"].tolist() == [0.5]
    mixed = select_rows(seq, torch.tensor([2, 3]))
    assert mixed.video_index.tolist() == [0, 1] and mixed.inputs["pixel_values_videos"].shape[0] == 24


def test_micro_batches_cover_all_rows_once():
    chunks = micro_batches(7, 3)
    assert [c.rows.tolist() for c in chunks] == [[0, 1, 2], [3, 4, 5], [6]]
    assert not any(c.padding for c in chunks)
    assert [c.rows.tolist() for c in micro_batches(4, 0)] == [[0, 1, 2, 3]]


@pytest.mark.parametrize("loss_agg", LOSS_AGGREGATIONS)
def test_weighted_micro_batch_losses_add_up_to_the_full_batch_loss(loss_agg):
    """Chunks of unequal size, one with a fully masked row: the shares make the weighted chunk
    losses (and their gradients) sum to the loss of all rows at once."""
    hidden, weight, targets = make_head((7, 5), 16, 40, seed=3)
    mask = (torch.rand(7, 5, generator=torch.Generator().manual_seed(1)) > 0.3).float()
    mask[2] = 0.0
    adv = torch.linspace(-1.0, 1.0, 7)
    ref = torch.randn(7, 5) - 4.0

    def loss_of(rows, h):
        return fused_linear_grpo_loss(h[rows], weight, targets[rows], mask[rows], adv[rows], ref_logp=ref[rows],
                                      loss_agg=loss_agg, backend="torch")[0]

    full_h = hidden.clone().requires_grad_(True)
    full = loss_of(torch.arange(7), full_h)
    full.backward()
    chunks = micro_batches(7, 3)
    shares = micro_batch_shares(mask, chunks, loss_agg)
    part_h = hidden.clone().requires_grad_(True)
    total = sum(share * loss_of(c.rows, part_h) for c, share in zip(chunks, shares))
    total.backward()
    torch.testing.assert_close(total, full, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(part_h.grad, full_h.grad, rtol=1e-5, atol=1e-6)
    assert micro_batch_shares(mask, [MicroBatch(torch.arange(3), padding=True)], loss_agg) == [0.0]


def test_image_and_text_prompts_mix_with_video_prompts():
    inputs = _prompts()
    inputs["mm_token_type_ids"] = torch.tensor([[0, 1, 1, 0], [0, 2, 2, 0]])   # prompt 0 shows an image
    inputs["pixel_values_videos"] = inputs["pixel_values_videos"][8:]           # only prompt 1's video
    inputs["video_grid_thw"] = inputs["video_grid_thw"][1:]
    inputs["second_per_grid_ts"] = inputs["second_per_grid_ts"][1:]
    inputs["pixel_values"] = torch.full((4, 3), 7.0)
    inputs["image_grid_thw"] = torch.tensor([[1, 2, 2]])
    comp = torch.ones(4, 2, dtype=torch.long)
    seq = build_sequences(inputs, Rollouts(comp, torch.ones_like(comp), [""] * 4, 2), torch.device("cpu"))
    assert seq.row_video.tolist() == [-1, -1, 0, 0] and seq.video_index.tolist() == [0, 0]
    assert seq.row_image.tolist() == [0, 1, -1, -1]
    assert seq.inputs["pixel_values"].shape[0] == 8 and seq.inputs["image_grid_thw"].shape[0] == 2
    sub = select_rows(seq, torch.tensor([1, 2]))
    assert sub.row_video.tolist() == [-1, 0] and sub.row_image.tolist() == [0, -1]
    assert sub.inputs["pixel_values"].shape[0] == 4 and sub.inputs["pixel_values_videos"].shape[0] == 16


def test_frozen_features_follow_rows_like_the_pixels_they_replace():
    """Encoded media (grpo.freeze_vision) are indexed exactly as the pixel blocks: a video once per
    prompt, an image once per image row, and a sub-batch keeps only those of its rows."""
    from videorft.engine.models.frozen_vision import Encoded, MediaFeatures

    inputs = _prompts()
    inputs["mm_token_type_ids"] = torch.tensor([[0, 1, 1, 0], [0, 2, 2, 0]])   # prompt 0 an image, 1 a video
    inputs["video_grid_thw"] = inputs["video_grid_thw"][1:]
    inputs["second_per_grid_ts"] = inputs["second_per_grid_ts"][1:]
    inputs["image_grid_thw"] = torch.tensor([[1, 2, 2]])
    video, image = Encoded(torch.full((4, 2), 1.0)), Encoded(torch.full((1, 2), 2.0))
    features = MediaFeatures((video,), (image,), prompt_video=(-1, 0), prompt_image=(0, -1))
    comp = torch.ones(4, 2, dtype=torch.long)
    seq = build_sequences(inputs, Rollouts(comp, torch.ones_like(comp), [""] * 4, 2), torch.device("cpu"), features)
    assert "pixel_values_videos" not in seq.inputs and "pixel_values" not in seq.inputs
    assert seq.features.videos == (video,) and seq.features.images == (image, image)      # one per image row
    assert seq.inputs["image_grid_thw"].shape[0] == 2 and seq.row_image.tolist() == [0, 1, -1, -1]
    sub = select_rows(seq, torch.tensor([1, 2, 3]))
    assert sub.features.videos == (video,) and sub.features.images == (image,)
    assert sub.inputs["video_grid_thw"].tolist() == [[2, 2, 4]] and sub.inputs["image_grid_thw"].shape[0] == 1
    outputs = sub.features.encoder_outputs(sub.video_index)
    assert len(outputs["video"].pooler_output) == 2 and len(outputs["image"].pooler_output) == 1
    # dynamic sampling regroups prompts of several draws: the video prompt first, then the image one
    regrouped = MediaFeatures.join([features.of_prompts([1]), features.of_prompts([0])])
    assert regrouped.prompt_video == (0, -1) and regrouped.prompt_image == (-1, 0)
    assert regrouped.videos == (video,) and regrouped.images == (image,)
