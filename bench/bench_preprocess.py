"""Preprocessing throughput: 16 frames of a 854x480 clip -> Qwen2.5-VL patch rows, per path.

Providers side by side: "torch" (loaders/qwen_preprocess.py), "native" (the fused C++ kernel),
"gpu" (torch ops on CUDA frames, CUDA only) and "transformers" (Qwen2VLVideoProcessor, only
where torchvision is installed). Budgets: 128*28*28 (training) and 256*28*28 (evaluation)
pixels per frame. Guarded: the torch path's time over the native kernel's, per budget.

    pytest bench/bench_preprocess.py --benchmark-json=bench/results/<hardware>/preprocess-<date>.json
"""

import importlib.util

import numpy as np
import pytest
import torch

from bench.conftest import stamp
from bench.guard import fastest_round
from videorft.loaders.preprocess import native_module, preprocess_frames, target_size
from videorft.loaders.video_writer import panning_frames

FRAMES, HEIGHT, WIDTH = 16, 480, 854
BUDGETS = {"128x28x28": 128 * 28 * 28, "256x28x28": 256 * 28 * 28}
PROVIDERS = ["torch", "native", "gpu", "transformers"]


@pytest.fixture(scope="module")
def frames():
    return torch.from_numpy(np.stack(list(panning_frames(FRAMES, HEIGHT, WIDTH))))   # [16, 480, 854, 3]


def transformers_run(frames, budget):
    from transformers import Qwen2VLVideoProcessor

    processor = Qwen2VLVideoProcessor(min_pixels=budget, max_pixels=budget)
    video = frames.permute(0, 3, 1, 2)                                            # [T, 3, H, W]
    return lambda: processor(videos=[video], return_tensors="pt")["pixel_values_videos"]


def skip_reason(provider):
    if provider == "native" and native_module() is None:
        return "videorft._native not built"
    if provider == "gpu" and not torch.cuda.is_available():
        return "needs CUDA"
    if provider == "transformers" and importlib.util.find_spec("torchvision") is None:
        return "transformers' video processor needs torchvision"
    return None


@pytest.mark.bench
@pytest.mark.parametrize("budget", list(BUDGETS))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_preprocess_16_frames(benchmark, guard, frames, provider, budget):
    reason = skip_reason(provider)
    if reason:
        pytest.skip(reason)
    pixels = BUDGETS[budget]
    size = target_size(HEIGHT, WIDTH, pixels, pixels)
    if provider == "transformers":
        run = transformers_run(frames, pixels)
    elif provider == "gpu":
        on_device = frames.cuda()

        def run():
            rows, _ = preprocess_frames(on_device, size, backend="gpu")
            torch.cuda.synchronize()
            return rows
    else:
        run = lambda: preprocess_frames(frames, size, backend=provider)[0]      # noqa: E731
    rows = benchmark.pedantic(run, rounds=10, warmup_rounds=2)
    assert rows.shape[-1] == 1176
    mean_s = benchmark.stats.stats.mean
    tokens = FRAMES // 2 * (size[0] // 28) * (size[1] // 28)                     # merged visual tokens
    stamp(benchmark, provider, {"frames": FRAMES, "height": HEIGHT, "width": WIDTH, "target": list(size),
                                "budget": budget},
          tokens_per_s=tokens / mean_s, frames_per_s=FRAMES / mean_s,
          gb_per_s=(frames.numel() + rows.numel() * 4) / mean_s / 1e9, threads=torch.get_num_threads())
    guard.measured(f"preprocess/{budget}", provider, fastest_round(benchmark))


@pytest.mark.bench
def test_guarded_ratios(guard):
    """Guarded: the torch path's time over the native kernel's, per budget (runs after the providers)."""
    guard.ratios("preprocess", [("torch", "native")])
