"""Reward scoring of one GRPO group: 8 completions (~400 tokens each) about one 16-frame clip.

    OMP_NUM_THREADS=1 pytest bench/bench_rewards.py --benchmark-json=bench/results/<hardware>/rewards-<yyyymmdd>.json

(One intra-op thread on small shared CPU machines: with more threads than free cores, torch's
thread pool waits on busy cores and a 15 ms group takes over 100 ms.)

Providers, side by side on the same group:
- "ours": GroupScorer: the clip is embedded once (torch resize on the frames' device), gated
  completions are skipped, the remaining texts are encoded in one batch;
- "released-style": the released code's structure with the same encoder: the 16 frames go
  through the image processor and the image tower again for every completion, and each text
  is encoded on its own, per-frame pooling.
Both produce the same accuracy/format values; the semantic values differ only by the pooling
mode and by interpolation rounding. The encoder is the tiny SigLIP of the CPU recipe
(untrained: its weights do not change the cost). On CUDA the same code runs in bf16.
Guarded: released-style's time over ours, per problem type, frame size and device.
"""

import numpy as np
import pytest
import torch

from bench.conftest import stamp
from bench.guard import fastest_round
from videorft.engine.config import RewardConfig
from videorft.engine.encoder.tiny_siglip import write_untrained_encoder
from videorft.engine.rewards import GroupScorer, SemanticScorer, accuracy_reward, format_reward, reasoning_span
from videorft.loaders.clip import VideoClip

GROUP = 8
FRAMES = 16
WORDS = 300  # about 400 tokens of reasoning
SOLUTIONS = {"multiple choice": "<answer>B</answer>",
             "free-form": "<answer>The red circle moves to the left while the blue square stays still.</answer>"}
ANSWERS = {"multiple choice": ["B", "C"],
           "free-form": ["The red circle moves left and the blue square stays.", "A green triangle spins."]}


def completions(problem_type: str) -> list[str]:
    """GROUP completions: half right, half wrong, long reasoning with decimals and abbreviations."""
    rng = np.random.default_rng(0)
    vocab = ("the red circle moves to the left while a blue square stays still near the top e.g. "
             "about 3.5 cm per second then it stops and turns around slowly").split()
    out = []
    for i in range(GROUP):
        words = " ".join(rng.choice(vocab, WORDS))
        answer = ANSWERS[problem_type][i % 2]
        out.append(f"<think>The question asks about the shapes. {words}.</think><answer>{answer}</answer>")
    return out


def clip_of(height: int, width: int, device: str) -> VideoClip:
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (FRAMES, height, width, 3), dtype=torch.uint8, generator=gen)
    return VideoClip(frames=frames.to(device), indices=list(range(FRAMES)),
                     timestamps=[i * 0.5 for i in range(FRAMES)], fps=2.0, total_frames=FRAMES)


def released_style(scorer: SemanticScorer, texts: list[str], solution: str, problem_type: str,
                   clip: VideoClip) -> list[float]:
    """The released reward's cost structure: frames re-encoded for every completion, texts one by one."""
    totals = []
    for text in texts:
        acc = accuracy_reward(text, solution, problem_type)
        fmt = format_reward(text)
        frame_emb = scorer.embed_frames(clip.frames)  # [F, D], again for every completion
        sem = scorer.score([reasoning_span(text)], frame_emb)[0]
        totals.append(acc + fmt + (sem if acc > 0 else 0.0))
    return totals


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return str(write_untrained_encoder(tmp_path_factory.mktemp("siglip")))


DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=pytest.mark.gpu)]


@pytest.mark.bench
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("size", [(112, 112), (308, 336)], ids=["112x112", "308x336"])
@pytest.mark.parametrize("problem_type", ["multiple choice", "free-form"])
@pytest.mark.parametrize("provider", ["ours", "released-style"])
def test_score_group(benchmark, guard, encoder_dir, provider, problem_type, size, device):
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    texts, solution = completions(problem_type), SOLUTIONS[problem_type]
    lengths = [400] * GROUP
    clip = clip_of(*size, device=device)
    cfg = RewardConfig()
    if provider == "ours":
        scorer = GroupScorer(cfg, SemanticScorer(encoder_dir, device=device, dtype=dtype))

        def score():
            return scorer.score_group(texts, lengths, solution, problem_type, scorer.embed_video(clip)).total
    else:
        semantic = SemanticScorer(encoder_dir, device=device, dtype=dtype, pooling="per-frame",
                                  frame_preprocess="processor")

        def score():
            return released_style(semantic, texts, solution, problem_type, clip)

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    totals = benchmark.pedantic(score, rounds=20, warmup_rounds=2)
    assert len(totals) == GROUP
    mean = benchmark.stats.stats.mean
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
    stamp(benchmark, provider, {"group": GROUP, "frames": FRAMES, "height": size[0], "width": size[1],
                                "problem_type": problem_type, "completion_tokens": lengths[0]},
          tokens_per_s=GROUP * lengths[0] / mean, ms_per_group=1e3 * mean, peak_mem_mib=peak)
    case = f"rewards/{problem_type.replace(' ', '-')}/{size[0]}x{size[1]}/{device}"
    guard.measured(case, provider, fastest_round(benchmark))


@pytest.mark.bench
def test_guarded_ratios(guard):
    """Guarded: released-style's time over ours, per group shape and device (runs after the providers)."""
    guard.ratios("rewards", [("released-style", "ours")])
