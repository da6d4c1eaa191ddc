"""Decode throughput: 16 sampled frames from a 10 s 854x480 30 fps clip, every backend side by side.

Clips are encoded here with PyAV: H.264 with x264's default GOP (250 frames), H.264 with a
30-frame GOP (where seeking pays) and VP9. "decord-get_batch" is the plain decord call
qwen-vl-utils makes (reader construction included), the baseline that "auto" must match or
beat on the CPU. DALI runs on VP9 only on the CPU, on every codec on CUDA. Guarded, where decord
is installed: decord-get_batch's time over "auto"'s and over "pyav"'s, per clip.

    pytest bench/bench_video_decode.py --benchmark-json=bench/results/<hardware>/video_decode-<date>.json
"""

import pytest

from bench.conftest import stamp
from bench.guard import fastest_round
from videorft.loaders.sampling import sample_indices
from videorft.loaders.video import installed_decoders, load_video, resolve_decoder
from videorft.loaders.video_probe import probe_video
from videorft.loaders.video_writer import encode_video, panning_frames

HEIGHT, WIDTH, FPS, SECONDS, SAMPLED = 480, 854, 30, 10, 16
CLIPS = {"h264": ("h264", None, ".mp4"), "h264-gop30": ("h264", 30, ".mp4"), "vp9": ("vp9", None, ".webm")}
PROVIDERS = ["auto", "pyav", "opencv", "decord", "decord-get_batch", "dali"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("decode")
    out = {}
    for name, (codec, gop, suffix) in CLIPS.items():
        frames = panning_frames(FPS * SECONDS, HEIGHT, WIDTH)
        out[name] = encode_video(root / f"{name}{suffix}", frames, FPS, codec, gop=gop, crf=23, threads=2)
    return out


def decord_get_batch(path):
    """What qwen-vl-utils does: open a VideoReader, pick uniform indices, get_batch."""
    import decord

    reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=0)
    idx = sample_indices(len(reader), SAMPLED)
    return reader.get_batch(idx).asnumpy()


def skip_reason(provider, clip):
    have = installed_decoders()
    if provider == "decord-get_batch":
        return None if "decord" in have else "decord not installed"
    if provider == "auto":
        return None
    if provider not in have:
        return f"{provider} not installed"
    if provider == "dali":
        from videorft.loaders.decode_dali import dali_supports
        import torch

        codec = CLIPS[clip][0]
        if not dali_supports(codec, "cuda" if torch.cuda.is_available() else "cpu"):
            return f"DALI cannot decode {codec} on this device"
    return None


@pytest.mark.bench
@pytest.mark.parametrize("clip", list(CLIPS))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_decode_16_frames(benchmark, guard, clips, clip, provider):
    reason = skip_reason(provider, clip)
    if reason:
        pytest.skip(reason)
    path = clips[clip]
    if provider == "decord-get_batch":
        run = lambda: decord_get_batch(path)                                   # noqa: E731
    else:
        run = lambda: load_video(path, num_frames=SAMPLED, backend=provider)   # noqa: E731
    out = benchmark.pedantic(run, rounds=10, warmup_rounds=1)
    frames = out.frames if hasattr(out, "frames") else out
    assert frames.shape[0] == SAMPLED
    index = probe_video(path)
    stamp(benchmark, provider, {"codec": CLIPS[clip][0], "gop": CLIPS[clip][1] or "default",
                                "height": HEIGHT, "width": WIDTH, "total_frames": index.total_frames,
                                "sampled": SAMPLED, "keyframes": len(index.keyframes)},
          frames_per_s=SAMPLED / benchmark.stats.stats.mean,
          resolved=resolve_decoder("auto") if provider == "auto" else provider)
    guard.measured(f"video_decode/{clip}", provider, fastest_round(benchmark))


@pytest.mark.bench
def test_guarded_ratios(guard):
    """Guarded: decord-get_batch's time over our decoder's ("auto", "pyav"), per clip (runs after the providers)."""
    guard.ratios("video_decode", [("decord-get_batch", "auto"), ("decord-get_batch", "pyav")])
