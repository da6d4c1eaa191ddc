"""`videorft train-encoder`: train the tiny SigLIP behind the CPU pipeline's semantic reward.

Reads frame/caption pairs of the synthetic world (`videorft.loaders.synth.captions.caption_pairs`),
trains a tiny SiglipModel with the sigmoid loss, saves it to run.output_dir like a released
SigLIP checkpoint, then reloads it through the reward's own SemanticScorer and reports how often
a held-out frame is closer to its caption than to a mismatched one.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from videorft.engine.backends import resolve_device
from videorft.engine.config import EncoderTrainConfig, RunConfig
from videorft.engine.encoder.tiny_siglip import (
    build_caption_tokenizer,
    build_image_processor,
    build_tiny_siglip,
    save_encoder,
)
from videorft.engine.encoder.train import caption_groups, pair_accuracy, pixel_batches, tokenize, train_encoder
from videorft.engine.rewards.frame_transform import FrameTransform
from videorft.engine.rewards.semantic import SemanticScorer
from videorft.engine.run_dir import RunDir, log

PairSource = Callable[[str, str, int], tuple[np.ndarray, list[str]]]


def world_pairs(world_dir: str, split: str, frames_per_video: int) -> tuple[np.ndarray, list[str]]:
    """The synthetic world's (uint8 [N, H, W, 3] frames, N captions) for `split`."""
    from videorft.loaders.synth.captions import caption_pairs

    frames, captions = caption_pairs(world_dir, split, frames_per_video=frames_per_video)
    frames = frames.cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{world_dir} split {split!r}: frames must be uint8 [N, H, W, 3], "
                         f"got {frames.dtype} {frames.shape}")
    if len(captions) != len(frames) or len(frames) == 0:
        raise ValueError(f"{world_dir} split {split!r}: {len(frames)} frames but {len(captions)} captions")
    return frames, list(captions)


def held_out_accuracy(scorer: SemanticScorer, frames: np.ndarray, captions: list[str], seed: int = 0,
                      chunk: int = 256) -> float:
    """`pair_accuracy` of held-out pairs, embedded by the saved encoder through the reward's scorer."""
    image = torch.cat([scorer.embed_frames(torch.from_numpy(frames[i:i + chunk]))
                       for i in range(0, len(frames), chunk)])  # [N, D]
    text = torch.cat([scorer.embed_texts(captions[i:i + chunk]) for i in range(0, len(captions), chunk)])
    return pair_accuracy(image, text, captions, seed)


def train_and_save(cfg: EncoderTrainConfig, train: tuple[np.ndarray, list[str]], out_dir: str,
                   device: torch.device, seed: int = 0,
                   on_step: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """Build tokenizer, model and processor, train on `train` pairs, save all three to `out_dir`."""
    frames, captions = train
    tokenizer = build_caption_tokenizer(captions, cfg.vocab_size, cfg.max_text_tokens)
    processor = build_image_processor(cfg.image_size)
    model = build_tiny_siglip(cfg, len(tokenizer), seed=seed).to(device)
    pixels = pixel_batches(FrameTransform.from_image_processor(processor), frames).to(device)  # [N, 3, S, S]
    ids = tokenize(tokenizer, captions, cfg.max_text_tokens).to(device)  # [N, L]
    history = train_encoder(model, pixels, ids, caption_groups(captions).to(device), cfg, seed, on_step)
    save_encoder(out_dir, model.cpu(), tokenizer, processor)
    params = sum(p.numel() for p in model.parameters())
    return {"parameters": params, "first_loss": history.losses[0], "final_loss": history.losses[-1]}


def run(cfg: RunConfig, pairs: PairSource = world_pairs) -> dict[str, Any]:
    """Train on the train split, save to run.output_dir, check on the held-out split."""
    run_dir = RunDir(cfg, "train-encoder")
    device = resolve_device(cfg.run.device)
    run_dir.record_backends({"device": str(device)})
    enc = cfg.encoder
    world = enc.world_dir or cfg.synth.output_dir
    train = pairs(world, enc.train_split, enc.frames_per_video)
    held_out = pairs(world, enc.eval_split, enc.frames_per_video)
    log.info("training the tiny SigLIP on %d pairs from %s (%d distinct captions)",
             len(train[1]), world, len(set(train[1])))

    def on_step(step: int, loss: float) -> None:
        if step % cfg.run.log_every == 0 or step == enc.steps - 1:
            run_dir.metrics.write(step, {"encoder/loss": loss})

    result = train_and_save(enc, train, str(run_dir.path), device, cfg.run.seed, on_step)
    scorer = SemanticScorer(str(run_dir.path), device=device)
    result["pair_accuracy"] = held_out_accuracy(scorer, *held_out, seed=cfg.run.seed)
    result["path"] = str(run_dir.path)
    log.info("tiny SigLIP (%d parameters) saved to %s; loss %.3f -> %.3f; held-out pair accuracy %.3f",
             result["parameters"], run_dir.path, result["first_loss"], result["final_loss"],
             result["pair_accuracy"])
    run_dir.metrics.write(enc.steps, {"encoder/pair_accuracy": result["pair_accuracy"]})
    run_dir.close()
    return result
