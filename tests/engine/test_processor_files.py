"""Processor files written for a model built from a config, or copied from the folder it came from."""

import json

import pytest
import torch
from transformers import AutoImageProcessor

from videorft.engine.config import TinyModelConfig
from videorft.engine.models.processor_files import (CHAT_TEMPLATE_FILE, IMAGE_PROCESSOR_FILE, PROCESSOR_FILES,
                                                    VIDEO_PROCESSOR_FILE, write_processor_files)
from videorft.engine.models.tiny import tiny_config
from videorft.loaders.qwen_preprocess import PatchSpec, patchify

RELEASED_BOUNDS = {  # (image min, image max, video min, video max) pixels of the released checkpoints
    "qwen2_vl": (3136, 12845056, 100352, 602112),
    "qwen2_5_vl": (3136, 12845056, 100352, 602112),
    "qwen3_vl": (65536, 16777216, 4096, 25165824),
}


@pytest.mark.parametrize("family", sorted(RELEASED_BOUNDS))
def test_written_files_match_the_vision_config_and_load(family, bpe_tokenizer, tmp_path):
    config = tiny_config(TinyModelConfig(family=family), bpe_tokenizer)
    assert write_processor_files(tmp_path, config, bpe_tokenizer) == dict.fromkeys(PROCESSOR_FILES, "written")
    vision = config.vision_config
    image = AutoImageProcessor.from_pretrained(tmp_path)
    video = json.loads((tmp_path / VIDEO_PROCESSOR_FILE).read_text())
    lo, hi, video_lo, video_hi = RELEASED_BOUNDS[family]
    assert (image.patch_size, image.merge_size, image.temporal_patch_size) == (
        vision.patch_size, vision.spatial_merge_size, vision.temporal_patch_size)
    assert (image.size.shortest_edge, image.size.longest_edge) == (lo, hi)
    assert (video["patch_size"], video["merge_size"], video["temporal_patch_size"]) == (
        vision.patch_size, vision.spatial_merge_size, vision.temporal_patch_size)
    assert video["size"] == {"shortest_edge": video_lo, "longest_edge": video_hi}
    assert video["processor_class"] == json.loads((tmp_path / IMAGE_PROCESSOR_FILE).read_text())["processor_class"]
    template = json.loads((tmp_path / CHAT_TEMPLATE_FILE).read_text())["chat_template"]
    assert template == bpe_tokenizer.chat_template


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_the_image_processor_cuts_patches_as_training_does(family, bpe_tokenizer, tmp_path):
    """On frames already on the grid and with do_resize=False (what the vLLM engine sends), the
    checkpoint's image processor gives training's grid and patch layout."""
    config = tiny_config(TinyModelConfig(family=family), bpe_tokenizer)
    write_processor_files(tmp_path, config, bpe_tokenizer)
    image = AutoImageProcessor.from_pretrained(tmp_path)
    spec = PatchSpec(patch_size=config.vision_config.patch_size)
    h, w = 2 * spec.factor, 3 * spec.factor
    frame = torch.randint(0, 256, (1, h, w, 3), dtype=torch.uint8)
    out = image(images=[frame[0].numpy()], do_resize=False, return_tensors="pt")
    rows, grid = patchify(frame, spec, mean=tuple(image.image_mean), std=tuple(image.image_std))
    assert out["image_grid_thw"][0].tolist() == grid.tolist() == [1, h // spec.patch_size, w // spec.patch_size]
    torch.testing.assert_close(out["pixel_values"].float(), rows, rtol=0, atol=1e-5)


def test_files_of_the_source_folder_are_copied(bpe_tokenizer, tmp_path):
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.mkdir(), dest.mkdir()
    config = tiny_config(TinyModelConfig(), bpe_tokenizer)
    released = {"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2,
                "merge_size": 2, "image_mean": [0.5] * 3, "image_std": [0.5] * 3,
                "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor"}
    (source / IMAGE_PROCESSOR_FILE).write_text(json.dumps(released))
    (source / CHAT_TEMPLATE_FILE).write_text(json.dumps({"chat_template": "{{ messages }}"}))
    done = write_processor_files(dest, config, bpe_tokenizer, source=source)
    assert done == {IMAGE_PROCESSOR_FILE: "copied", VIDEO_PROCESSOR_FILE: "written", CHAT_TEMPLATE_FILE: "copied"}
    assert json.loads((dest / IMAGE_PROCESSOR_FILE).read_text()) == released
    assert json.loads((dest / CHAT_TEMPLATE_FILE).read_text()) == {"chat_template": "{{ messages }}"}


def test_sections_of_a_single_file_processor_config_become_the_legacy_files(bpe_tokenizer, tmp_path):
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.mkdir(), dest.mkdir()
    nested = {"processor_class": "Qwen2_5_VLProcessor",
              "image_processor": {"image_processor_type": "Qwen2VLImageProcessor", "patch_size": 14,
                                  "merge_size": 2, "temporal_patch_size": 2,
                                  "size": {"shortest_edge": 1568, "longest_edge": 50176}},
              "video_processor": {"video_processor_type": "Qwen2VLVideoProcessor", "patch_size": 14}}
    (source / "processor_config.json").write_text(json.dumps(nested))
    write_processor_files(dest, tiny_config(TinyModelConfig(), bpe_tokenizer), bpe_tokenizer, source=source)
    image = AutoImageProcessor.from_pretrained(dest)
    assert (image.size.shortest_edge, image.size.longest_edge) == (1568, 50176)
    video = json.loads((dest / VIDEO_PROCESSOR_FILE).read_text())
    assert video == {**nested["video_processor"], "processor_class": "Qwen2_5_VLProcessor"}


def test_an_unknown_model_family_is_named(bpe_tokenizer, tmp_path):
    config = tiny_config(TinyModelConfig(), bpe_tokenizer)
    config.model_type = "llava"
    with pytest.raises(ValueError, match="llava"):
        write_processor_files(tmp_path, config, bpe_tokenizer)
    assert not any(tmp_path.iterdir())

