import numpy as np
import pytest
import torch

from videorft.loaders.qwen_preprocess import PatchSpec, patchify, preprocess_video, resize_frames, smart_resize


@pytest.mark.parametrize("h, w, lo, hi, expect", [
    (480, 854, 128 * 28 * 28, 128 * 28 * 28, (224, 420)),      # the 16:9 training case
    (720, 1280, 128 * 28 * 28, 128 * 28 * 28, (224, 420)),
    (56, 56, 56 * 56, 28 * 28 * 1280, (56, 56)),                # already on the grid
    (10, 10, 56 * 56, 28 * 28 * 1280, (56, 56)),                # grown to min_pixels
    (480, 854, 256 * 28 * 28, 256 * 28 * 28, (308, 588)),      # evaluation resolution
])
def test_smart_resize_cases(h, w, lo, hi, expect):
    rh, rw = smart_resize(h, w, 28, lo, hi)
    assert (rh, rw) == expect
    assert rh % 28 == 0 and rw % 28 == 0


def test_smart_resize_rejects_extreme_aspect():
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 4000)


def test_patch_layout_matches_transformers_image_processor():
    """Two identical frames are one image to the reference processor: rows must agree exactly."""
    from transformers import Qwen2VLImageProcessorPil

    img = np.random.default_rng(0).integers(0, 256, (56, 84, 3), dtype=np.uint8)
    ref = Qwen2VLImageProcessorPil()(images=[img], do_resize=False, return_tensors="pt")
    ours, grid = patchify(torch.from_numpy(img)[None].repeat(2, 1, 1, 1))
    assert grid.tolist() == ref["image_grid_thw"][0].tolist() == [1, 4, 6]
    torch.testing.assert_close(ours, ref["pixel_values"], rtol=0, atol=1e-6)


def test_patch_rows_follow_merge_order():
    """Row r of the output holds the patch that an explicit loop over (t, bh, bw, mh, mw) names."""
    spec = PatchSpec()
    frames = torch.randint(0, 256, (4, 56, 112, 3), dtype=torch.uint8)
    rows, (gt, gh, gw) = patchify(frames, spec)
    x = (frames.float() / 255 - torch.tensor([0.48145466, 0.4578275, 0.40821073])) / torch.tensor(
        [0.26862954, 0.26130258, 0.27577711])                                     # [T, H, W, C]
    r = 0
    for t in range(gt):
        for bh in range(gh // 2):
            for bw in range(gw // 2):
                for mh in range(2):
                    for mw in range(2):
                        y, xx = (bh * 2 + mh) * 14, (bw * 2 + mw) * 14
                        patch = x[2 * t:2 * t + 2, y:y + 14, xx:xx + 14]               # [2, 14, 14, C]
                        torch.testing.assert_close(rows[r], patch.permute(3, 0, 1, 2).reshape(-1))
                        r += 1
    assert r == rows.shape[0]


def test_odd_frame_count_repeats_the_last_frame():
    frames = torch.randint(0, 256, (3, 28, 28, 3), dtype=torch.uint8)
    rows, grid = patchify(frames)
    padded, grid4 = patchify(torch.cat([frames, frames[-1:]]))
    assert grid.tolist() == grid4.tolist() == [2, 2, 2]
    torch.testing.assert_close(rows, padded)


def test_preprocess_video_resizes_into_the_pixel_budget():
    frames = torch.randint(0, 256, (16, 480, 854, 3), dtype=torch.uint8)
    rows, grid = preprocess_video(frames, min_pixels=128 * 28 * 28, max_pixels=128 * 28 * 28)
    assert grid.tolist() == [8, 16, 30]
    assert rows.shape == (8 * 16 * 30, 3 * 2 * 14 * 14)


def test_resize_keeps_uint8_range_and_identity():
    frames = torch.randint(0, 256, (2, 50, 70, 3), dtype=torch.uint8)
    assert resize_frames(frames, (50, 70)) is frames
    out = resize_frames(frames, (28, 56))
    assert out.dtype == torch.uint8 and out.shape == (2, 28, 56, 3)
