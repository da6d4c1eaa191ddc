"""VideoQADataset: one decode per sample, the clip kept next to the policy inputs, true-fps
M-RoPE timing, skipped media, images, and batches a real tiny Qwen2.5-VL accepts."""

import logging
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from videorft.engine.config import DataConfig, TinyModelConfig, VideoConfig
from videorft.loaders.dataloader import build_loader
from videorft.loaders.dataset import Sample, SkippedSample, VideoQADataset, temporal_patch_times
from videorft.loaders.preprocess import video_inputs
from videorft.loaders.records import Record, read_records
from videorft.loaders.video import load_video_from_config

VIDEO = VideoConfig(backend="pyav", fps=2.0, min_frames=4, max_frames=4, min_pixels=None, max_pixels=56 * 56,
                    preprocess="torch")


class CountingDecoder:
    """load_video with the test's VideoConfig, remembering every clip it returns."""

    def __init__(self):
        self.clips = []

    def __call__(self, path):
        clip = load_video_from_config(path, VIDEO)
        self.clips.append(clip)
        return clip


def _dataset(root, tok, mode="prompt", records=None, decoder=None, video_cfg=VIDEO, **kw):
    records = records if records is not None else read_records(root / "train.jsonl").records
    return VideoQADataset(records, tok, video_cfg, DataConfig(media_root=str(root)), mode, decoder=decoder, **kw)


def test_each_video_is_decoded_once_and_the_clip_travels_with_the_batch(small_world, bpe_tokenizer):
    decoder = CountingDecoder()
    ds = _dataset(small_world, bpe_tokenizer, decoder=decoder)
    batches = list(build_loader(ds, batch_size=5, layout="prompt"))
    assert len(decoder.clips) == len(ds) == sum(len(b) for b in batches)
    for batch in batches:
        offset = 0
        for clip, sample in zip(batch.clips, batch.samples):
            assert any(clip is c for c in decoder.clips)                # the very object that was decoded
            rows = video_inputs(clip, VIDEO.min_pixels, VIDEO.max_pixels, "torch")["pixel_values_videos"]
            n = rows.shape[0]
            assert torch.equal(batch.vision["pixel_values_videos"][offset:offset + n], rows)
            offset += n
        assert offset == batch.vision["pixel_values_videos"].shape[0]


def test_backends_handed_down_are_used_and_nothing_is_probed_per_clip(small_world, bpe_tokenizer, monkeypatch):
    import dataclasses

    import videorft.loaders.video as video

    chosen = "opencv" if "opencv" in video.installed_decoders() else "pyav"
    auto = dataclasses.replace(VIDEO, backend="auto", preprocess="auto")
    ds = _dataset(small_world, bpe_tokenizer, video_cfg=auto, video_decoder=chosen, preprocess="torch")
    assert ds[0].clip.extra["decoder"] == chosen                       # the decoder is imported once per process

    def probe(name):
        raise AssertionError(f"{name} probed while reading a clip")

    monkeypatch.setattr(video, "has_package", probe)
    assert [ds[i].clip.extra["decoder"] for i in range(1, 4)] == [chosen] * 3
    assert (ds.video_decoder, ds.decoder_fallback, ds.preprocess) == (chosen, None, "torch")


def test_without_backends_handed_down_the_dataset_resolves_once(small_world, bpe_tokenizer):
    import dataclasses

    from videorft.loaders.video import resolve_video_backends

    ds = _dataset(small_world, bpe_tokenizer, video_cfg=dataclasses.replace(VIDEO, backend="auto", preprocess="auto"))
    assert (ds.video_decoder, ds.decoder_fallback, ds.preprocess) == resolve_video_backends("auto", "auto")
    assert ds[0].clip.extra["decoder"] == ds.video_decoder


def test_time_per_grid_comes_from_the_true_sampling_rate(small_world, bpe_tokenizer):
    sample = _dataset(small_world, bpe_tokenizer)[0]
    # 3 s clip at 8 fps, 4 frames sampled: 4/3 frames per second, so 2 frames span 1.5 s.
    assert sample.clip.frames.shape == (4, 56, 56, 3)
    assert sample.second_per_grid_t == pytest.approx(1.5)
    assert sample.grid_thw.tolist() == [2, 4, 4]
    assert int((sample.prompt_ids == bpe_tokenizer.convert_tokens_to_ids("<|video_pad|>")).sum()) == 2 * 4 * 4 // 4


def test_qwen3_layout_writes_patch_times():
    assert temporal_patch_times([0.0, 0.5, 1.0, 1.5, 2.0]) == [0.25, 1.25, 2.0]


def _broken_world(src, dst):
    shutil.copytree(src, dst)
    records = read_records(dst / "train.jsonl").records[:6]
    (dst / records[1].path).write_bytes(b"\x00not a video at all" * 50)                   # garbage
    data = (dst / records[3].path).read_bytes()
    (dst / records[3].path).write_bytes(data[: len(data) // 3])                           # truncated
    (dst / records[4].path).unlink()                                                      # missing
    return records


def test_unreadable_media_is_skipped_counted_and_logged(small_world, tmp_path, bpe_tokenizer, caplog):
    records = _broken_world(small_world, tmp_path / "w")
    ds = _dataset(tmp_path / "w", bpe_tokenizer, records=records)
    assert isinstance(ds[1], SkippedSample) and "unreadable media" in ds[1].reason
    assert isinstance(ds[4], SkippedSample) and "does not exist" in ds[4].reason
    stream = build_loader(ds, batch_size=2, layout="prompt")
    with caplog.at_level(logging.WARNING, logger="videorft"):
        seen = [s.index for b in stream for s in b.samples]
    assert seen == [0, 2, 5] and stream.skipped == 3
    assert caplog.text.count("skipped sample") == 3 and records[3].origin in caplog.text


def test_sft_samples_and_max_length(small_world, bpe_tokenizer):
    ds = _dataset(small_world, bpe_tokenizer, mode="sft")
    sample = ds[0]
    text = bpe_tokenizer.decode(sample.response_ids)
    assert text == ds.records[0].process + "\n" + ds.records[0].solution + "<|im_end|>"
    short = _dataset(small_world, bpe_tokenizer, mode="sft", max_length=sample.length - 1)
    assert isinstance(short[0], SkippedSample) and "max_length" in short[0].reason


def _image_record(root, name="img.png"):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (70, 90, 3), dtype=np.uint8)).save(root / name)
    return Record(problem_id="img-1", problem="What is shown?", problem_type="free-form", data_type="image",
                  path=f"./{name}", solution="<answer>noise</answer>", process="<think>Noise.</think>")


def test_image_records_and_mixed_batches(small_world, tmp_path, bpe_tokenizer):
    shutil.copytree(small_world, tmp_path / "w")
    records = [_image_record(tmp_path / "w")] + read_records(tmp_path / "w" / "train.jsonl").records[:2]
    ds = _dataset(tmp_path / "w", bpe_tokenizer, records=records)
    image = ds[0]
    assert isinstance(image, Sample) and image.clip.frames.shape == (1, 70, 90, 3)
    gt, gh, gw = image.grid_thw.tolist()
    assert gt == 1 and int((image.prompt_ids == bpe_tokenizer.convert_tokens_to_ids("<|image_pad|>")).sum()) == gh * gw // 4
    (batch,) = list(build_loader(ds, batch_size=3, layout="prompt"))
    assert batch.vision["image_grid_thw"].tolist() == [[gt, gh, gw]] and batch.vision["video_grid_thw"].shape == (2, 3)
    assert batch.vision["second_per_grid_ts"].shape == (2,)


@pytest.fixture(scope="module")
def tiny_model(bpe_tokenizer):
    from videorft.engine.models.tiny import build_tiny_model

    return build_tiny_model(TinyModelConfig(), bpe_tokenizer).eval()


@pytest.mark.parametrize("layout", ["prompt", "sft"])
def test_tiny_qwen2_5_vl_accepts_every_layout(small_world, tmp_path, bpe_tokenizer, tiny_model, layout):
    shutil.copytree(small_world, tmp_path / "w")
    records = read_records(tmp_path / "w" / "train.jsonl").records[:3] + [_image_record(tmp_path / "w")]
    ds = _dataset(tmp_path / "w", bpe_tokenizer, mode="prompt" if layout == "prompt" else "sft", records=records)
    (batch,) = list(build_loader(ds, batch_size=4, layout=layout))
    inputs = batch.model_inputs()
    with torch.no_grad():
        if layout == "prompt":
            out = tiny_model.generate(**inputs, max_new_tokens=3, do_sample=False)
            assert out.shape == (4, batch.input_ids.shape[1] + 3)
        else:
            loss = tiny_model(**inputs, labels=batch.labels).loss
            assert torch.isfinite(loss) and loss.item() > 0
