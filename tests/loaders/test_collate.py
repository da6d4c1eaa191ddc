"""Collation: left-padded prompts, padded SFT rows; label masking."""

import pytest
import torch

from videorft.loaders.clip import VideoClip
from videorft.loaders.collate import IGNORE, SpecialIds, collate_prompts, collate_sft, sequence_labels
from videorft.loaders.dataset import Sample, SkippedSample
from videorft.loaders.records import Record

IDS = SpecialIds(pad=0, image=91, video=92, vision_start=93, vision_end=94)


def _sample(index, n_video, text_before, text_after, response, image=False):
    """Prompt: text, vision_start, n_video pads, vision_end, text; pixel rows tagged with the index."""
    pad = IDS.image if image else IDS.video
    prompt = torch.tensor(text_before + [IDS.vision_start] + [pad] * n_video + [IDS.vision_end] + text_after)
    record = Record(problem_id=index, problem="q", problem_type="multiple choice",
                    data_type="image" if image else "video", path="./x", solution="<answer>A</answer>")
    clip = VideoClip(frames=torch.zeros(2, 4, 4, 3, dtype=torch.uint8), indices=[0, 1], timestamps=[0.0, 0.5], fps=2.0)
    return Sample(index=index, record=record, clip=clip, prompt_text=f"prompt {index}", prompt_ids=prompt,
                  pixel_values=torch.full((4 * n_video, 6), float(index)), grid_thw=torch.tensor([1, 2, 2 * n_video]),
                  second_per_grid_t=None if image else 1.0 + index,
                  response_ids=None if response is None else torch.tensor(response))


def test_prompt_batch_is_left_padded():
    a, b = _sample(0, 2, [5, 6, 7], [8], None), _sample(1, 1, [5], [8], None)
    batch = collate_prompts([a, SkippedSample(7, "f:3", "gone"), b], IDS)
    assert batch.input_ids.tolist() == [[5, 6, 7, 93, 92, 92, 94, 8], [0, 0, 0, 5, 93, 92, 94, 8]]
    assert batch.attention_mask.tolist() == [[1] * 8, [0, 0, 0, 1, 1, 1, 1, 1]]
    assert batch.mm_token_type_ids.tolist() == [[0, 0, 0, 0, 2, 2, 0, 0], [0] * 5 + [2, 0, 0]]
    assert batch.prompt_lengths.tolist() == [8, 5]
    assert [s.index for s in batch.skipped] == [7] and batch.prompt_texts == ["prompt 0", "prompt 1"]
    assert batch.vision["pixel_values_videos"][:, 0].tolist() == [0.0] * 8 + [1.0] * 4       # sample order
    assert batch.vision["second_per_grid_ts"].tolist() == [1.0, 2.0]
    assert set(batch.model_inputs()) == {"input_ids", "attention_mask", "mm_token_type_ids", "pixel_values_videos",
                                         "video_grid_thw", "second_per_grid_ts"}


def test_response_only_labels_mask_prompt_and_padding():
    a, b = _sample(0, 1, [5, 6], [8], [20, 21, 22]), _sample(1, 1, [5], [8], [30])
    batch = collate_sft([a, b], IDS, loss_on="response")
    assert batch.input_ids.tolist() == [[5, 6, 93, 92, 94, 8, 20, 21, 22], [5, 93, 92, 94, 8, 30, 0, 0, 0]]
    assert batch.labels.tolist() == [[IGNORE] * 6 + [20, 21, 22], [IGNORE] * 5 + [30] + [IGNORE] * 3]
    assert batch.attention_mask.tolist() == [[1] * 9, [1] * 6 + [0] * 3]


def test_whole_sequence_labels_still_mask_vision_tokens():
    tokens, labels = sequence_labels(_sample(0, 2, [5, 6], [8], [20, 21]), IDS, loss_on="all")
    assert tokens.tolist() == [5, 6, 93, 92, 92, 94, 8, 20, 21]
    assert labels.tolist() == [5, 6, IGNORE, IGNORE, IGNORE, IGNORE, 8, 20, 21]
    image = sequence_labels(_sample(1, 1, [5], [], [20], image=True), IDS, loss_on="all")[1]
    assert image.tolist() == [5, IGNORE, IGNORE, IGNORE, 20]
    with pytest.raises(ValueError, match="no target"):
        sequence_labels(_sample(2, 1, [5], [], None), IDS)


def test_all_skipped_gives_an_empty_batch():
    batch = collate_sft([SkippedSample(0, "f:1", "gone")], IDS)
    assert len(batch) == 0 and batch.input_ids is None and len(batch.skipped) == 1


def test_batch_to_moves_tensors_not_clips():
    batch = collate_prompts([_sample(0, 1, [5], [], None)], IDS).to("cpu")
    assert batch.input_ids.device.type == "cpu" and batch.clips[0].frames.dtype == torch.uint8
